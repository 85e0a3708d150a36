"""Messages of emoji, punctuation or other symbols only: "👍👍👍", "🙏", "？？？", "。。。".

There is nothing in them for the classifiers to understand, yet they are no
misunderstanding: a thumbs-up, an OK hand, folded hands, applause, a heart or a rose
say thanks; anything else (a laugh, question marks, dots) deserves a short friendly
line. WeChat's own emoji panel sends its faces by name in brackets ("[强]" is the
thumbs-up, "[抱拳]" the cupped-fist thanks), so those count as symbols too.

``symbol_kind`` decides; the NLU component bot.nlu.symbols gives such a message the
intent ``symbols_only`` and actions/symbols.py answers it. Both read the normalised
text (bot.text), in which a personal number the channel took out is a run of spaces:
such a message is not symbols only ("13800000000。" must still reach the form that
asked for a phone number).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

from bot.redaction import MARKERS

THANKS = "thanks"
SYMBOLS = "symbols"

# Thumbs-up, OK hand, folded hands, applause, handshake, salute, hearts, flowers.
THANKS_EMOJI = frozenset("👍👌🙏👏🤝🫡❤♥💕💖💗💓💞💝🌹💐🌷")
# WeChat's names for the same ([强] thumbs-up, [抱拳] cupped fist, [合十] folded hands …).
WECHAT_THANKS = frozenset({"强", "赞", "OK", "ok", "好的", "抱拳", "握手", "鼓掌", "玫瑰", "爱心", "合十"})
# A WeChat emoji name in brackets: a few characters, no digits ([身份证号已隐去] is longer).
_WECHAT_EMOJI = re.compile(r"\[([^\[\]\s\d]{1,4})\]")
# What emoji are built of besides the pictures: variation selectors, the zero-width
# joiner, the keycap, skin tones and tag characters.
_EMOJI_PARTS = re.compile("[\ufe0e\ufe0f\u200d\u20e3\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]")
# bot.text.blank_redaction_markers leaves a removed number as spaces as long as its marker.
_REMOVED_NUMBER = " " * min(len(marker) for marker in MARKERS.values())


def symbol_kind(text: Optional[str]) -> Optional[str]:
    """THANKS or SYMBOLS for a message without a single letter or digit; None otherwise
    (words or numbers to understand, nothing at all, or a number taken out)."""
    if not text or not text.strip() or _REMOVED_NUMBER in text:
        return None
    names = _WECHAT_EMOJI.findall(text)
    rest = _EMOJI_PARTS.sub("", _WECHAT_EMOJI.sub(" ", text))
    categories = [unicodedata.category(char) for char in rest]
    if any(category[0] in "LN" for category in categories):
        return None
    # Pictures: symbols "other" (emoji), and code points this Python's Unicode tables
    # do not know yet (newer emoji such as 🫡). Punctuation and spaces go with anything.
    pictures = [char for char, category in zip(rest, categories) if category in ("So", "Cn", "Co")]
    if (pictures or names) and all(c in THANKS_EMOJI for c in pictures) and all(n in WECHAT_THANKS for n in names):
        return THANKS
    return SYMBOLS
