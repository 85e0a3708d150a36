"""Personal numbers typed into chat: recognised and replaced at the edge.

Users send their ID card, mobile or bank card number even when asked not to.
Before a message reaches Rasa, its tracker store or any log line, each such
number becomes a marker (``[身份证号已隐去]``) that tells the dialogue what
happened without keeping the number. Digits may be full-width and split by
spaces or hyphens (``138 0013 8000``, ``+86-138-0013-8000``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Tuple

MARKERS = {
    "id_card": "[身份证号已隐去]",
    "mobile": "[手机号已隐去]",
    "phone": "[电话号码已隐去]",
    "bank_card": "[银行卡号已隐去]",
}

_FULL_WIDTH = str.maketrans("０１２３４５６７８９ｘＸ＋－　", "0123456789xX+- ")
# A run of digits, possibly split by single spaces or hyphens, possibly ending in X
# (ID numbers), possibly starting with +86. Letters or digits right before or after
# mean it is part of something else (a case number such as TS20261122-0007).
_CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?\d(?:[ -]?\d){9,22}(?:[ -]?[xX])?(?![0-9A-Za-z])"
)


@dataclass(frozen=True)
class Redaction:
    text: str
    kinds: Tuple[str, ...]  # what was removed, in order of appearance, each once
    # The phone numbers removed (mobile and landline, digits only), for the one place
    # that keeps a number the bot asked for (bot.channels); never printed.
    phones: Tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def changed(self) -> bool:
        return bool(self.kinds)


def _classify(raw: str) -> str:
    digits = re.sub(r"[ \-+]", "", raw)
    if digits[-1] in "xX":
        return "id_card" if len(digits) in (15, 18) else ""
    if len(digits) == 13 and digits.startswith("86") and re.fullmatch(r"1[3-9]\d{9}", digits[2:]):
        return "mobile"
    if len(digits) == 11 and re.fullmatch(r"1[3-9]\d{9}", digits):
        return "mobile"
    if len(digits) == 18 and re.fullmatch(r"\d{6}(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{4}", digits):
        return "id_card"
    if len(digits) == 15 and re.fullmatch(r"\d{8}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}", digits):
        return "id_card"
    if 16 <= len(digits) <= 19:
        return "bank_card"
    # A landline with its area code: 010 / 02x + 8 digits, 0xxx + 7 or 8 digits.
    if re.fullmatch(r"0(?:10|2\d)\d{8}|0[3-9]\d{2}\d{7,8}", digits):
        return "phone"
    return ""


def redact(text: str) -> Redaction:
    """The text with every personal number replaced by its marker."""
    if not text:
        return Redaction(text or "", ())
    normalised = text.translate(_FULL_WIDTH)
    if len(normalised) != len(text):  # translate is 1:1, but guard the offsets anyway
        normalised = text
    pieces: List[str] = []
    kinds: List[str] = []
    phones: List[str] = []
    last = 0
    for match in _CANDIDATE.finditer(normalised):
        kind = _classify(match.group(0))
        if not kind:
            continue
        pieces.append(text[last:match.start()])
        pieces.append(MARKERS[kind])
        last = match.end()
        if kind in ("mobile", "phone"):
            digits = re.sub(r"\D", "", match.group(0))
            phones.append(digits[2:] if kind == "mobile" and len(digits) == 13 else digits)
        if kind not in kinds:
            kinds.append(kind)
    if not kinds:
        return Redaction(text, ())
    pieces.append(text[last:])
    return Redaction("".join(pieces), tuple(kinds), tuple(phones))
