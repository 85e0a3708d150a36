"""What no reply of the assistant may contain, in any end-to-end conversation:
系统繁忙 (unless a test stopped a component on purpose: ``@pytest.mark.components_down``)
or an ASCII name of the domain (an intent, entity, slot, action, form or response name,
such as ``action_ask_appointment_time``). tests/e2e/conftest.py checks every reply
that ``WechatUser.say``, ``WechatUser.later_texts`` and ``say`` return."""

from __future__ import annotations

import re
from typing import List, Set

import yaml

from bot.settings import PROJECT_ROOT

DOMAIN_SECTIONS = ("intents", "entities", "slots", "actions", "forms", "responses")
# Prefixes of Rasa's own and the project's action names, wherever they appear.
IDENTIFIER_PREFIXES = ("action_", "utter_", "validate_")
FORBIDDEN_WORDS = ("系统繁忙",)


def domain_identifiers(domain_dir=PROJECT_ROOT / "domain") -> Set[str]:
    """Every ASCII name the domain declares (domain/*.yml and domain/faq/*.yml), and
    the parts of the retrieval names (utter_faq/housing → faq, housing)."""
    names: Set[str] = set()
    files = sorted(domain_dir.glob("*.yml")) + sorted((domain_dir / "faq").glob("*.yml"))
    assert files, f"no domain files under {domain_dir}"
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for section in DOMAIN_SECTIONS:
            entries = data.get(section) or []
            for entry in entries:
                name = next(iter(entry)) if isinstance(entry, dict) else entry
                if isinstance(name, str) and name.isascii():
                    names.add(name)
                    names.update(part for part in name.split("/") if part)
    return names


IDENTIFIERS = domain_identifiers()
# A name counts only as a whole ASCII word ("faq" in "faq/housing", "/inform{...}",
# "utter_faq"), never as part of a longer one (a random token in a link).
_IDENTIFIER = re.compile(
    r"(?<![A-Za-z0-9_])(" + "|".join(re.escape(n) for n in sorted(IDENTIFIERS, key=len, reverse=True))
    + r")(?![A-Za-z0-9_])")


def leaks(text: str) -> List[str]:
    """What in ``text`` a user must never read; empty when the text is fine."""
    found = [word for word in FORBIDDEN_WORDS if word in text]
    found += [prefix for prefix in IDENTIFIER_PREFIXES if prefix in text]
    found += sorted({match.group(1) for match in _IDENTIFIER.finditer(text)})
    return found
