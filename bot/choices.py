"""Numbered choices: the user answers a menu by typing its number.

WeChat has no buttons in a text chat, so every list the bot sends is numbered
and "2", "２", "第二个" or "选2" picks the second entry.
"""

from __future__ import annotations

import re
from typing import Optional

from bot.text import normalize

_DIGITS = {"零": 0, "〇": 0, "一": 1, "壹": 1, "幺": 1, "二": 2, "两": 2, "贰": 2,
           "三": 3, "叁": 3, "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6,
           "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9}
_CHINESE_NUMBER = re.compile(r"[零〇一壹幺二两贰三叁四肆五伍六陆七柒八捌九玖十拾]+")


def chinese_to_int(numeral: str) -> Optional[int]:
    """一 → 1, 十二 → 12, 二十 → 20, 二十三 → 23 (1–99 is all a menu needs)."""
    numeral = numeral.replace("拾", "十")
    if "十" in numeral:
        tens, _, units = numeral.partition("十")
        if "十" in units:
            return None
        tens_value = _DIGITS.get(tens, None) if tens else 1
        units_value = _DIGITS.get(units, None) if units else 0
        if tens_value is None or units_value is None:
            return None
        return tens_value * 10 + units_value
    if len(numeral) == 1:
        return _DIGITS.get(numeral)
    return None


def parse_choice(text: str) -> Optional[int]:
    """The 1-based number a user chose, or None when the text names none."""
    text = normalize(text).strip()
    digits = re.findall(r"\d+", text)
    if len(digits) == 1:
        return int(digits[0])
    if digits:
        return None  # "1和2": ambiguous
    numerals = _CHINESE_NUMBER.findall(text)
    if len(numerals) == 1:
        return chinese_to_int(numerals[0])
    return None


_BARE_CHOICE = re.compile(
    r"(就|那就|那|我)?(要|选|选择|挑)?第?(\d+|[零〇一壹幺二两贰三叁四肆五伍六陆七柒八捌九玖十拾]+)"
    r"(个|项|条|种|个吧|吧)?(选项)?")


def is_bare_choice(text: str) -> bool:
    """True when the text is only a number pick ("1", "第二个", "选2", "就3吧"),
    not a sentence that happens to hold a number ("换成下周二下午3点")."""
    cleaned = re.sub(r"[\s，。,.!！?？~～、]+", "", normalize(text))
    return bool(_BARE_CHOICE.fullmatch(cleaned))
