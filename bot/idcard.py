"""居民身份证号码 (GB 11643-1999): parsing, checking and, for demo data, making.

An 18-character number is 6 digits of area code, 8 of birth date, 3 of
sequence (odd for men, even for women) and a check character computed with
ISO 7064 MOD 11-2 (``X`` stands for 10).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Optional

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")


def check_char(first17: str) -> str:
    """The 18th character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS))
    return CHECK_CHARS[total % 11]


def normalize(raw: str) -> str:
    """Upper-case, without spaces or the full-width forms phones sometimes type."""
    text = raw.strip().replace(" ", "").replace("\u3000", "")
    text = text.translate(str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX"))
    return text.upper()


@dataclass(frozen=True)
class IdCard:
    number: str
    area_code: str
    birth_date: dt.date
    gender: str  # "男" or "女"


def parse(raw: str) -> Optional[IdCard]:
    """The parsed number, or None when it is not a valid 18-character ID number."""
    number = normalize(raw)
    if not _SHAPE.match(number) or check_char(number[:17]) != number[17]:
        return None
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None
    if birth.year < 1900:
        return None
    gender = "男" if int(number[16]) % 2 == 1 else "女"
    return IdCard(number=number, area_code=number[:6], birth_date=birth, gender=gender)


def problem(raw: str) -> Optional[str]:
    """Why ``raw`` is not a valid ID number, in Chinese, or None when it is."""
    number = normalize(raw)
    if not number:
        return "身份证号为空"
    if len(number) != 18:
        return f"身份证号应为18位，现为{len(number)}位"
    if not _SHAPE.match(number):
        return "身份证号只能由数字组成，最后一位可以是X"
    try:
        dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return "身份证号中的出生日期不存在"
    if check_char(number[:17]) != number[17]:
        return "身份证号校验位不正确，请核对是否有输错的数字"
    return None


def make(area_code: str, birth_date: dt.date, sequence: int) -> str:
    """A valid number; ``sequence`` (0-999) is odd for men and even for women."""
    first17 = f"{area_code}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)
