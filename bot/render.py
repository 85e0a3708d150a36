"""Rendering bot messages for channels without buttons (terminal, WeChat text).

Buttons become a numbered list; the user answers with the number, which the
`action_choose_option` action maps back to the button's payload.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List


def render_message(message: Dict[str, Any]) -> str:
    lines: List[str] = []
    text = (message.get("text") or "").strip()
    if text:
        lines.append(text)
    for number, button in enumerate(message.get("buttons") or [], start=1):
        lines.append(f"{number}. {button.get('title', '')}")
    return "\n".join(lines)


def render_messages(messages: Iterable[Dict[str, Any]]) -> List[str]:
    return [rendered for rendered in map(render_message, messages) if rendered]
