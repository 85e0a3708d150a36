"""Chinese text normalisation shared by the NLU pipeline and the WeChat edge.

Traditional characters become simplified (OpenCC's maintained tables, not a
hand-written list) and full-width ASCII becomes half-width. Both conversions
keep the text's length, so entity offsets annotated on the original text stay
valid after normalisation.
"""

from __future__ import annotations

from functools import lru_cache

import opencc

_FULLWIDTH_OFFSET = 0xFEE0  # U+FF01..U+FF5E map onto U+0021..U+007E
_HALFWIDTH = {cp: cp - _FULLWIDTH_OFFSET for cp in range(0xFF01, 0xFF5F)}
_HALFWIDTH[0x3000] = 0x20  # ideographic space


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def to_halfwidth(text: str) -> str:
    """Full-width letters, digits, punctuation and spaces to half-width."""
    return text.translate(_HALFWIDTH)


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese, length-preserving.

    OpenCC converts whole phrases, which is the most accurate; in the rare case
    where a phrase conversion changes the length, fall back to converting one
    character at a time and keep any character whose conversion is not a single
    character.
    """
    converter = _converter()
    converted = converter.convert(text)
    if len(converted) == len(text):
        return converted
    chars = []
    for char in text:
        single = converter.convert(char)
        chars.append(single if len(single) == 1 else char)
    return "".join(chars)


def blank_redaction_markers(text: str) -> str:
    """Markers such as [身份证号已隐去] (bot.redaction) become spaces of the same length:
    what the user asked should decide the intent, not the marker's words."""
    from bot.redaction import MARKERS

    for marker in MARKERS.values():
        if marker in text:
            text = text.replace(marker, " " * len(marker))
    return text


def normalize(text: str) -> str:
    """The normalisation every channel's text gets before the NLU sees it."""
    return blank_redaction_markers(to_simplified(to_halfwidth(text)))
