"""Personal numbers typed into chat: recognised and replaced at the edge.

Users send their ID card, mobile or bank card number even when asked not to.
Before a message reaches Rasa, its tracker store or any log line, each such
number becomes a marker (``[身份证号已隐去]``) that tells the dialogue what
happened without keeping the number.

What people really type and dictate is recognised:

* digits that are ASCII, full-width (``１３８``) or Chinese numerals read digit by
  digit, as voice input writes them (``一三九一二三四五六七八``, with 幺 for 1,
  两 for 2, 〇/零 for 0);
* any separators between groups of digits: spaces (several, tabs, full-width),
  dots, dashes, slashes, commas, brackets (``(021)``, ``（0512）``);
* prefixes ``+86`` / ``0086`` / ``86`` (landlines also without their leading 0), and
  the 0 dialled before a mobile from a landline elsewhere (``013812345678``);
* labels glued to the digits (``tel13912345678``, ``TEL:``, ``手机号``): the label
  stays, the number goes;
* several numbers in one message, even separated by a single space
  (``13812345678 13987654321``): each is found separately;
* ID numbers of 18 or 15 characters, ending in x/X; bank cards of 16–19 digits.

How: the message is cut into *runs*, groups of digits joined by at most a few
separator characters. Within a run, numbers may start and end only where a group
starts or ends (so a case number such as ``TS20261122-0007`` or a date is not read
as something it is not), except that two numbers may be glued together, and in a
run of Chinese numerals any character may start one. Of all the ways to read the
run as numbers, the one that covers the most digits wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

MARKERS = {
    "id_card": "[身份证号已隐去]",
    "mobile": "[手机号已隐去]",
    "phone": "[电话号码已隐去]",
    "bank_card": "[银行卡号已隐去]",
}

# Each character that stands for a digit, and its script: ASCII, full-width or a
# Chinese numeral read digit by digit (幺 is how 1 is read out in phone numbers, 两 is 2).
_DIGIT: Dict[str, Tuple[str, str]] = {}
for _value, _chars in enumerate(["〇○零", "一幺", "二两", "三", "四", "五", "六", "七", "八", "九"]):
    _DIGIT[str(_value)] = (str(_value), "ascii")
    _DIGIT[chr(0xFF10 + _value)] = (str(_value), "fullwidth")
    for _char in _chars:
        _DIGIT[_char] = (str(_value), "chinese")
_X = frozenset("xXｘＸ")  # the check character of an ID number
# What may stand between two groups of digits of one number.
_SEPARATORS = frozenset(
    " \t\r\n\u3000\u00a0\u2002\u2003\u2009"
    ".．。·•,，、"
    "-－‐‑‒–—−﹣_＿~～"
    "/／\\＼"
    "()（）[]【】"
    "杠"
)
_MAX_GAP = 6  # separator characters between two groups of one run
_PLUS = frozenset("+＋")
_OPENING, _CLOSING = "(（[【", ")）]】"

_MOBILE = re.compile(r"1[3-9]\d{9}")
# A landline with its area code: 010 / 02x + 8 digits, 0xxx + 7 or 8 digits. Local numbers
# start with 2-9 (1 is let through after 010 / 02x), never with 0: 0512 138 1234 5678 is
# an area code and a mobile, not 0512-1381234 and 5678.
_LANDLINE = re.compile(r"0(?:10|2\d)[1-9]\d{7}|0[3-9]\d{2}[2-9]\d{6,7}")
_ID18 = re.compile(r"\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{4}")
_ID15 = re.compile(r"\d{8}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}")
# Card schemes' first digits (UnionPay 62, Visa 4, Mastercard 2221–2720 and 5, JCB and
# Amex 3, old domestic cards 9): a grouped run of years or amounts is not read as a card.
_CARD_START = re.compile(r"[3-69]|2[2-7]")
_SHORTEST, _LONGEST = 10, 19  # digits of the shortest (+86 21 5959 0001) and longest reading


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


def _classify(digits: str, check_x: bool, contiguous: bool) -> Tuple[str, str]:
    """(kind, phone digits) of one reading, or ("", "") when it is no personal number.

    ``digits``: the digits only; ``check_x``: an X follows them; ``contiguous``: written
    without any separator."""
    if check_x:
        return ("id_card", "") if len(digits) in (14, 17) else ("", "")
    for prefix in ("0086", "86", "0"):
        if digits.startswith(prefix):
            rest = digits[len(prefix):]
            if _MOBILE.fullmatch(rest):  # 0138…: a mobile dialled from a landline elsewhere
                return "mobile", rest
            if prefix == "0":
                continue
            if _LANDLINE.fullmatch(rest):
                return "phone", rest
            if _MOBILE.fullmatch(rest[1:]) and rest.startswith("0"):
                return "mobile", rest[1:]
            if not rest.startswith("0") and _LANDLINE.fullmatch("0" + rest):
                return "phone", "0" + rest  # +86 21 6959 0001: the area code without its 0
    if _MOBILE.fullmatch(digits):
        return "mobile", digits
    if _ID18.fullmatch(digits) or _ID15.fullmatch(digits):
        return "id_card", ""
    if _LANDLINE.fullmatch(digits):
        return "phone", digits
    if 16 <= len(digits) <= 19 and (contiguous or _CARD_START.match(digits)):
        return "bank_card", ""
    return "", ""


@dataclass
class _Token:
    start: int  # offset in the text
    value: str  # a digit, or "X"
    group: int  # tokens of one group are written next to each other, in one script
    script: str


def _runs(text: str) -> List[List[_Token]]:
    """The runs of ``text``: groups of digits joined by at most _MAX_GAP separators."""
    runs: List[List[_Token]] = []
    run: List[_Token] = []
    group = -1
    last_end = -1  # offset after the run's last token
    previous_script = ""
    for offset, char in enumerate(text):
        if char in _DIGIT:
            value, script = _DIGIT[char]
        elif char in _X and run and run[-1].value != "X" and offset - last_end <= _MAX_GAP and all(
                c in _SEPARATORS for c in text[last_end:offset]):
            value, script = "X", "x"
        else:
            continue
        glued = bool(run) and last_end == offset
        joined = bool(run) and 0 < offset - last_end <= _MAX_GAP and all(
            c in _SEPARATORS for c in text[last_end:offset])
        if not (glued or joined):
            if run:
                runs.append(run)
            run = []
        if not (glued and script == previous_script and script != "x"):
            group += 1
        run.append(_Token(offset, value, group, script))
        last_end = offset + 1
        previous_script = script
    if run:
        runs.append(run)
    return runs


def _read_run(tokens: List[_Token]) -> List[Tuple[int, int, str, str]]:
    """(first token, token after the last, kind, phone) for each number read in a run."""
    n = len(tokens)
    if n < _SHORTEST:
        return []
    values = "".join(t.value for t in tokens)
    boundary = [True] + [
        before.group != after.group or before.script == after.script == "chinese"
        for before, after in zip(tokens, tokens[1:])
    ] + [True]  # boundary[p]: a group starts at token p (or p is an end of the run)

    def reading(i: int, j: int) -> Tuple[str, str]:
        check_x = values[j - 1] == "X"
        digits = values[i:j - 1] if check_x else values[i:j]
        if "X" in digits:
            return "", ""
        return _classify(digits, check_x, tokens[i].group == tokens[j - 1 - check_x].group)

    # score[p][free]: the best reading of tokens[p:], as (digits covered, -numbers), or
    # None; free: a group starts at p (else a number must start right there). step[p][free]:
    # the number read at p (j, kind, phone), or (q, "", "") to pass over the group p..q.
    Score = Optional[Tuple[int, int]]
    score: List[List[Score]] = [[None, None] for _ in range(n)] + [[(0, 0), (0, 0)]]
    step: List[List[Tuple[int, str, str]]] = [[(n, "", ""), (n, "", "")] for _ in range(n + 1)]
    next_boundary = n
    for p in range(n - 1, -1, -1):
        best: Score = None
        for length in range(_SHORTEST, _LONGEST + 2):  # +1 for an X
            j = p + length
            if j > n:
                break
            kind, phone = reading(p, j)
            rest = score[j][boundary[j]] if kind else None
            if rest is not None and (best is None or (rest[0] + length, rest[1] - 1) > best):
                best = (rest[0] + length, rest[1] - 1)
                step[p][False] = step[p][True] = (j, kind, phone)
        score[p][False] = best
        if boundary[p]:
            skipped = score[next_boundary][True]
            if skipped is not None and (best is None or skipped > best):
                best = skipped
                step[p][True] = (next_boundary, "", "")
            score[p][True] = best
            next_boundary = p
    found: List[Tuple[int, int, str, str]] = []
    p, free = 0, True
    while p < n and score[p][free] is not None:
        j, kind, phone = step[p][free]
        if kind:
            found.append((p, j, kind, phone))
        p, free = j, boundary[j]
    return found


def redact(text: str) -> Redaction:
    """The text with every personal number replaced by its marker."""
    if not text:
        return Redaction(text or "", ())
    spans: List[Tuple[int, int, str, str]] = []
    for tokens in _runs(text):
        for i, j, kind, phone in _read_run(tokens):
            start, end = tokens[i].start, tokens[j - 1].start + 1
            if start > 0 and text[start - 1] in _PLUS:
                start -= 1
            # (021)6959 0001: the bracket opened before the number goes with it.
            inside = text[start:end]
            if start > 0 and text[start - 1] in _OPENING and (
                    sum(inside.count(c) for c in _CLOSING) > sum(inside.count(c) for c in _OPENING)):
                start -= 1
            spans.append((start, end, kind, phone))
    if not spans:
        return Redaction(text, ())
    pieces: List[str] = []
    kinds: List[str] = []
    phones: List[str] = []
    last = 0
    for start, end, kind, phone in spans:
        pieces.append(text[last:start])
        pieces.append(MARKERS[kind])
        last = end
        if kind in ("mobile", "phone"):
            phones.append(phone)
        if kind not in kinds:
            kinds.append(kind)
    pieces.append(text[last:])
    return Redaction("".join(pieces), tuple(kinds), tuple(phones))
