"""Rasa's bot messages as WeChat text messages.

Each bot message becomes text with its buttons as a numbered list
(``bot.render.render_message``; the user answers with the number, see
``bot.choices``). Characters WeChat cannot show are removed, a text over the
2048-byte limit is split at sentence ends (。！？!? or a line break), and
consecutive messages are joined (blank line between) while they fit, so a
turn usually fits one passive reply. Any further chunks go out through the
customer-service API, in order.

``]]>`` is kept: ``protocol.passive_reply`` splits it across CDATA sections,
so the user sees exactly what the bot said.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, List, Mapping

from bot.render import render_message
from bot.wechat.protocol import MAX_TEXT_BYTES, xml_text

SEPARATOR = "\n\n"
# Split after sentence-final punctuation (and any closing quote or bracket) or a line break.
_SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？!?]+[”’」』）)\"']*|\n|$)")
_SOFT_BREAK = "，,；;、：: "  # where an over-long sentence is cut, when there is one
# Control characters other than the line break (C0, DEL, C1).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def sanitize(text: str) -> str:
    """``text`` with line breaks normalised to ``\\n`` and every other control character removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return xml_text(_CONTROL.sub("", text))


def message_text(message: Mapping[str, Any]) -> str:
    """One Rasa bot message (text, buttons, image, custom) as plain WeChat text."""
    parts = [render_message(dict(message))]
    image = message.get("image")
    if isinstance(image, str) and image.strip():
        parts.append(f"图片：{image.strip()}")
    custom = message.get("custom")
    if isinstance(custom, Mapping) and isinstance(custom.get("text"), str):
        parts.append(custom["text"])
    return sanitize("\n".join(part for part in parts if part)).strip()


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut(text: str, limit: int) -> int:
    """How many characters of ``text`` to take so that at most ``limit`` bytes go, preferring a soft break."""
    head = text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
    for index in range(len(head) - 1, len(head) // 2, -1):
        if head[index] in _SOFT_BREAK:
            return index + 1
    return max(len(head), 1)


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> List[str]:
    """``text`` in chunks of at most ``limit`` UTF-8 bytes, cut at sentence ends where possible."""
    if limit < 4:
        raise ValueError("limit must hold at least one character")
    chunks: List[str] = []
    current = ""
    for sentence in _SENTENCE.findall(text):
        if not sentence:
            continue
        if _size(current + sentence) <= limit:
            current += sentence
            continue
        if current.strip():
            chunks.append(current)
        current = sentence
        while _size(current) > limit:
            taken = _cut(current, limit)
            chunks.append(current[:taken])
            current = current[taken:]
    if current.strip():
        chunks.append(current)
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def pack(texts: Iterable[str], limit: int = MAX_TEXT_BYTES, separator: str = SEPARATOR) -> List[str]:
    """Consecutive texts joined by ``separator`` as long as the result stays within ``limit`` bytes."""
    packed: List[str] = []
    for text in texts:
        if packed and _size(packed[-1] + separator + text) <= limit:
            packed[-1] = packed[-1] + separator + text
        else:
            packed.append(text)
    return packed


def to_wechat_texts(messages: Iterable[Mapping[str, Any]], limit: int = MAX_TEXT_BYTES) -> List[str]:
    """The bot's messages for one turn as WeChat texts, each within ``limit`` bytes, in order.

    The first goes in the passive reply; the rest through the customer-service
    API. An empty list means there is nothing to say (answer ``success``).
    """
    chunks: List[str] = []
    for message in messages:
        text = message_text(message)
        if text:
            chunks.extend(split_text(text, limit))
    return pack(chunks, limit)
