"""预约时间: the dates and times veterans type or dictate when booking a visit.

A veteran booking a service-station appointment answers "哪天来？" in free text,
often through WeChat voice recognition: "明天上午", "后天下午三点", "下周三",
"12月5号", "5号下午", "月底", "周五下午两点半吧". ``parse_when`` finds the day
(or range of days) and the time or part of the day in such a message, and
``describe_when`` writes it back in the confirmation ("12月5日（周六）下午3:00").

Everything is Beijing time. The rules for what people leave unsaid:

* A time without 上午/下午 is read with office hours in mind: 1–6 点 are in the
  afternoon (三点 → 15:00), 7–12 点 in the morning or at noon.
* A date already past with no year said (12月5号 said on 12月28日) is next
  year's; a day of the month already past (5号 said on the 22nd) is next
  month's, and a day the month does not have (31号 in November) is the next
  month that has it. A year or month said explicitly is taken as said, even
  if past: the booking form can tell the veteran the day is gone, which is
  better than not having understood.
* Weeks start on Monday. 下周三 is Wednesday of the next calendar week,
  下下周三 the one after. 周三 and 这周三 are this week's Wednesday, or next
  week's once this week's is past. When the weekday said is today's, 这周四
  means today, but a bare 周四 means next week's, unless a time later than now
  is said with it (周四下午4点 said on Thursday at 15:00 is today): someone
  who means today says 今天.
* Ranges: 这周/这周内 is today to Sunday, 下周 Monday to Sunday, 周末 Saturday
  and Sunday; 月底 the last five days of the month, 月初 the 1st–5th, 月中 the
  11th–20th, 下个月 the whole of next month. A range that has begun starts
  today; a bare 月初/月中 already over means next month's.
* 3天后 is three days from today; 明早 and 今晚 say a part of the day too.
* The holidays on a fixed date are their first day, the next one to come (today
  included): 元旦 1 January, 劳动节/五一 1 May, 国庆/国庆节 1 October. The lunar
  ones (春节, 端午, 中秋) move every year and are not understood; 十一 is not
  National Day here, since 十一点 and 十一月 are far more common.
* Past days (昨天, 上周三, 上个月) are not understood: nobody books the past.
* When a message names more than one day or time, the first one counts.

Nothing here depends on the model or the database; the text is normalised the
same way the NLU normalises it (full-width to half-width, traditional to
simplified), which keeps its length, so ``matched`` is cut from the text as the
veteran wrote it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterable, Optional

from bot.choices import chinese_to_int
from bot.clock import SHANGHAI
from bot.text import to_halfwidth, to_simplified


MORNING, NOON, AFTERNOON, EVENING = "上午", "中午", "下午", "晚上"
PARTS_OF_DAY = (MORNING, NOON, AFTERNOON, EVENING)
WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


@dataclass(frozen=True)
class WhenRequest:
    day: Optional[dt.date]  # the first acceptable day; None when no day was said
    latest_day: Optional[dt.date]  # the last acceptable day of a range; == day for a single day
    start: Optional[dt.time]  # an exact time when one was said (三点 → 15:00)
    part: Optional[str]  # 上午 | 中午 | 下午 | 晚上 when a part of the day was said
    matched: str  # the substring of the input that was understood


# --- numbers -----------------------------------------------------------------

_CN = "零〇一二两三四五六七八九十"
_NUM = rf"(?:[0-9]{{1,2}}|[{_CN}]{{1,3}})"
# A number that continues another one (the "5" of "12345", the "一" of "十一")
# is not the start of a date or a time.
_NOT_AFTER_NUMBER = rf"(?<![0-9{_CN}百千万.])"


def _number(text: str) -> Optional[int]:
    """12, 十二, 两, 二十五, 零五 → their value; None for anything else."""
    text = text.replace(" ", "")
    if text.isascii() and text.isdigit():
        return int(text)
    if len(text) == 2 and text[0] in "零〇" and text[1] != "十":
        text = text[1]  # 三点零五
    if "两" in text and text != "两":
        return None  # 两 stands alone (两点); 二十两 and 两十 are not numbers
    return chinese_to_int(text)


def _year_number(text: str) -> int:
    """2026 or 二〇二六: a year is read digit by digit."""
    if text.isdigit():
        return int(text)
    return int("".join(str(chinese_to_int(char) or 0) for char in text))


# --- what can be found in a message ------------------------------------------


@dataclass(frozen=True)
class _Day:
    start: int
    end: int
    day: dt.date
    latest_day: dt.date
    part: Optional[str] = None  # 明早 and 今晚 say a part of the day with the day
    today_if_later: bool = False  # a bare weekday that is today's: today only if a later time is said


@dataclass(frozen=True)
class _Part:
    start: int
    end: int
    part: str


@dataclass(frozen=True)
class _Clock:
    start: int
    end: int
    hour: int
    minute: int
    chinese_one: bool  # a bare 一点, which is as often "a little" as one o'clock


_RELATIVE_DAYS = {
    "今天": (0, None), "今儿": (0, None), "今日": (0, None),
    "今早": (0, MORNING), "今晚": (0, EVENING),
    "明天": (1, None), "明儿": (1, None), "明日": (1, None),
    "明早": (1, MORNING), "明晚": (1, EVENING),
    "后天": (2, None), "大后天": (3, None),
}
_RELATIVE_DAY = re.compile(
    r"大后天|后天|今天|今儿|今日|今早|今晚|明天|明儿|明日|明早|明晚"
    rf"|{_NOT_AFTER_NUMBER}(?P<days>{_NUM})\s*天\s*(?:以|之)?后"
)

_WEEK = re.compile(
    r"(?:(?P<ref>下下个?|下个?|这个?|本|上上个?|上个?|每)\s*)?"
    # 周围, 周边, 周年 and 周到 are not weeks
    r"(?:周(?![围边年岁到全期转折])|星期|礼拜)(?P<weekday>[一二三四五六日天末1-7])?(?:之内|以内|内)?"
)
_WEEKDAY_INDEX = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}

_MONTH_REF = r"下下个?月|下个?月|这个?月|本月|上上个?月|上个?月"
_MONTH_SPAN = re.compile(
    rf"(?P<ref>{_MONTH_REF})\s*(?P<tail>底|末|初|中旬|中|之内|以内|内|里)?"
    rf"|{_NOT_AFTER_NUMBER}(?P<month>{_NUM})\s*月份?(?P<month_tail>底|末|初|中旬|中)"
    # 三个月中 and 每月底 are durations and habits, not days
    r"|(?<![个每])月(?P<bare_tail>底|末|初|中旬|中)"
)

# 元旦, 五一, 国庆: the first day of the holiday. 五一 only standing alone (not in 十五一,
# 五一点, 五一号 …).
_FIXED_HOLIDAY = re.compile(
    rf"元旦节?|(?:五一\s*)?(?:国际)?劳动节|{_NOT_AFTER_NUMBER}五一(?:节)?(?![0-9{_CN}点时号日月分])|国庆节?"
)


def _fixed_holiday(said: str) -> tuple[int, int]:
    """(month, day) of 元旦, 劳动节/五一 or 国庆."""
    if "元旦" in said:
        return 1, 1
    if "国庆" in said:
        return 10, 1
    return 5, 1

_FULL_DATE = re.compile(
    rf"(?:(?P<year>[0-9]{{4}}|[零〇一二三四五六七八九]{{4}})\s*年\s*|(?P<said_year>今年|明年)\s*)?"
    rf"{_NOT_AFTER_NUMBER}(?P<month>{_NUM})\s*月\s*(?P<day>{_NUM})(?![0-9])\s*(?:号|日)?"
)
_ISO_DATE = re.compile(
    r"(?<![0-9])(?P<year>[0-9]{4})\s*[-/.年]\s*(?P<month>[0-9]{1,2})\s*[-/.月]\s*"
    r"(?P<day>[0-9]{1,2})(?![0-9])\s*(?:号|日)?"
)
# 12.5 and 12/5 are dates, but 3.5万, 1-2个工作日 and 1/3的人 are not.
_SHORT_DATE = re.compile(
    r"(?<![0-9./:-])(?P<month>[0-9]{1,2})[./-](?P<day>[0-9]{1,2})(?![0-9./:-])"
    r"(?!\s*[万千百亿元块角分%倍个人天周月年岁次斤克米里公项条张位小点期楼层户的])"
)
_DAY_OF_MONTH = re.compile(
    rf"(?:(?P<ref>{_MONTH_REF})\s*|(?<![月{_CN}0-9百千万.]))(?P<day>{_NUM})\s*(?:号|日)"
    # 3号楼, 1号线, 2号窗口 are places
    r"(?!\s*[楼线门窗房室院床柜位机车厅馆口码])"
)

_PART_WORDS = {
    "上午": MORNING, "早上": MORNING, "早晨": MORNING, "清晨": MORNING, "早": MORNING,
    "中午": NOON, "午间": NOON,
    "下午": AFTERNOON, "午后": AFTERNOON,
    "晚上": EVENING, "傍晚": EVENING, "夜里": EVENING, "夜间": EVENING, "晚": EVENING,
}
# 早8点 and 晚7点 are parts of the day; 早一点 and 晚一点 are "a bit earlier/later".
_PART = re.compile(
    r"上午|早上|早晨|清晨|中午|午间|下午|午后|晚上|傍晚|夜里|夜间"
    r"|[早晚](?=\s*[0-9两二三四五六七八九十])"
)

_CLOCK = re.compile(
    rf"(?<!第){_NOT_AFTER_NUMBER}(?P<hour>{_NUM})\s*(?P<unit>点|时)(?P<oclock>\s*钟)?"
    rf"(?P<minutes>\s*(?:半|[13一三]\s*刻|整|过?\s*(?P<minute>[0-9]{{1,2}}|[{_CN}]{{1,3}})(?![0-9])\s*(?P<fen>分)?))?"
)
_COLON_TIME = re.compile(r"(?<![0-9:.])(?P<hour>[0-9]{1,2})\s*:\s*(?P<minute>[0-9]{2})(?![0-9:])")


def _days(text: str, today: dt.date) -> list[_Day]:
    found: list[_Day] = []

    def add(match: re.Match, span: Optional[tuple[dt.date, dt.date]], **extra) -> None:
        if span is not None:
            found.append(_Day(match.start(), match.end(), span[0], span[1], **extra))

    for m in _RELATIVE_DAY.finditer(text):
        if m["days"]:
            ahead = _number(m["days"])
            if ahead and ahead <= 60:
                day = today + dt.timedelta(days=ahead)
                add(m, (day, day))
            continue
        offset, part = _RELATIVE_DAYS[m.group()]
        day = today + dt.timedelta(days=offset)
        add(m, (day, day), part=part)
    for m in _WEEK.finditer(text):
        resolved = _week(m["ref"], m["weekday"], today)
        if resolved is not None:
            add(m, resolved[:2], today_if_later=resolved[2])
    for m in _MONTH_SPAN.finditer(text):
        add(m, _month_span(m, today))
    for m in _FIXED_HOLIDAY.finditer(text):
        month, day = _fixed_holiday(m.group())
        add(m, _single(_calendar_date(None, month, day, today)))
    for m in _FULL_DATE.finditer(text):
        if m["year"]:
            year: Optional[int] = _year_number(m["year"])
        elif m["said_year"]:
            year = today.year + (m["said_year"] == "明年")
        else:
            year = None
        add(m, _single(_calendar_date(year, _number(m["month"]), _number(m["day"]), today)))
    for m in _ISO_DATE.finditer(text):
        add(m, _single(_calendar_date(int(m["year"]), int(m["month"]), int(m["day"]), today)))
    for m in _SHORT_DATE.finditer(text):
        add(m, _single(_calendar_date(None, int(m["month"]), int(m["day"]), today)))
    for m in _DAY_OF_MONTH.finditer(text):
        add(m, _single(_day_of_month(m["ref"], _number(m["day"]), today)))
    return found


def _single(day: Optional[dt.date]) -> Optional[tuple[dt.date, dt.date]]:
    return None if day is None else (day, day)


def _week(ref: Optional[str], weekday: Optional[str], today: dt.date) -> Optional[tuple[dt.date, dt.date, bool]]:
    """(first day, last day, today_if_later) for 周三, 下周三, 这周, 下周末, ..."""
    ref = (ref or "").rstrip("个")
    if ref not in ("", "这", "本", "下", "下下"):
        return None  # 上周三 is past, 每周三 is a habit
    if not weekday and not ref:
        return None  # 周 alone is a surname or "a week", not a day
    monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=ref.count("下"))
    sunday = monday + dt.timedelta(days=6)
    if not weekday:
        return max(monday, today), sunday, False
    if weekday == "末":
        return max(monday + dt.timedelta(days=5), today), sunday, False
    index = int(weekday) - 1 if weekday.isdigit() else _WEEKDAY_INDEX[weekday]
    day = monday + dt.timedelta(days=index)
    if ref.startswith("下"):
        return day, day, False
    if day < today:
        day += dt.timedelta(weeks=1)
    elif day == today and not ref:
        later = day + dt.timedelta(weeks=1)
        return later, later, True
    return day, day, False


def _month_span(m: re.Match, today: dt.date) -> Optional[tuple[dt.date, dt.date]]:
    """月底, 下个月初, 12月底, 这个月内, 下个月: a range of days within one month."""
    if m["ref"]:
        ref = m["ref"].replace("个", "")
        if ref.startswith("上"):
            return None
        year, month = _add_months(today.year, today.month, ref.count("下"))
        tail, rolls_over = m["tail"], False
    elif m["month"]:
        month_said = _number(m["month"])
        if month_said is None or not 1 <= month_said <= 12:
            return None
        year, month, tail, rolls_over = today.year, month_said, m["month_tail"], True
    else:
        year, month, tail, rolls_over = today.year, today.month, m["bare_tail"], True
    first, last = _span_in_month(year, month, tail)
    if last < today and rolls_over:
        # 月初 said on the 22nd is next month's; 3月底 said in November is next year's
        year, month = _add_months(year, month, 1 if m["bare_tail"] else 12)
        first, last = _span_in_month(year, month, tail)
    if first <= today <= last:
        first = today
    return first, last


def _span_in_month(year: int, month: int, tail: Optional[str]) -> tuple[dt.date, dt.date]:
    last = calendar.monthrange(year, month)[1]
    first_day, last_day = {
        "底": (last - 4, last), "末": (last - 4, last),
        "初": (1, 5), "中": (11, 20), "中旬": (11, 20),
    }.get(tail or "", (1, last))
    return dt.date(year, month, first_day), dt.date(year, month, last_day)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + months
    return index // 12, index % 12 + 1


def _calendar_date(
    year: Optional[int], month: Optional[int], day: Optional[int], today: dt.date
) -> Optional[dt.date]:
    """A month and day, this year's or, once past, next year's; None for 2月30号."""
    if month is None or day is None:
        return None
    try:
        if year is not None:
            return dt.date(year, month, day)
        date = dt.date(today.year, month, day)
        return date if date >= today else dt.date(today.year + 1, month, day)
    except ValueError:
        return None


def _day_of_month(ref: Optional[str], day: Optional[int], today: dt.date) -> Optional[dt.date]:
    """5号: this month's 5th, or the next month that has a 5th still to come."""
    if day is None or not 1 <= day <= 31:
        return None
    if ref:
        ref = ref.replace("个", "")
        if ref.startswith("上"):
            return None
        year, month = _add_months(today.year, today.month, ref.count("下"))
        try:
            return dt.date(year, month, day)
        except ValueError:
            return None
    for ahead in range(13):
        year, month = _add_months(today.year, today.month, ahead)
        if day <= calendar.monthrange(year, month)[1] and dt.date(year, month, day) >= today:
            return dt.date(year, month, day)
    return None


def _parts(text: str) -> list[_Part]:
    return [_Part(m.start(), m.end(), _PART_WORDS[m.group()]) for m in _PART.finditer(text)]


def _clocks(text: str) -> list[_Clock]:
    found = []
    for m in _CLOCK.finditer(text):
        hour_text = m["hour"]
        if m["unit"] == "时" and not hour_text.isdigit():
            continue  # 一时半会儿: Chinese numerals with 时 are not clock times in chat
        hour = _number(hour_text)
        if hour is None:
            continue
        end = m.end()
        minutes = (m["minutes"] or "").replace(" ", "")
        if not minutes:
            minute = 0
        elif minutes == "半":
            minute = 30
        elif minutes.endswith("刻"):
            minute = 15 if minutes[0] in "1一" else 45
        elif minutes == "整":
            minute = 0
        else:
            minute_text = m["minute"]
            said = _number(minute_text)
            # 三点五 could be 3:05 or 3:50; only 三点零五, 三点五分 and 3点15 are clear
            if said is None or said > 59 or (said < 10 and len(minute_text) == 1 and not m["fen"]):
                minute, end = 0, m.end("oclock") if m["oclock"] else m.end("unit")
            else:
                minute = said
        bare_one = hour_text == "一" and minute == 0 and not m["oclock"] and end == m.end("unit")
        found.append(_Clock(m.start(), end, hour, minute, bare_one))
    for m in _COLON_TIME.finditer(text):
        hour, minute = int(m["hour"]), int(m["minute"])
        if minute <= 59:
            found.append(_Clock(m.start(), m.end(), hour, minute, False))
    return sorted(found, key=lambda clock: clock.start)


def _hour_of_day(hour: int, part: Optional[str]) -> Optional[int]:
    """The 24-hour hour for 三点 said with (or without) 上午/下午."""
    if not 0 <= hour <= 23:
        return None
    if hour > 12 or hour == 0:
        return hour  # already a 24-hour clock
    if part == MORNING:
        return hour
    if part == NOON:
        return hour if hour >= 11 else hour + 12
    if part == AFTERNOON:
        return hour if hour == 12 else hour + 12
    if part == EVENING:
        return hour + 12 if 5 <= hour <= 11 else None  # 晚上12点 is tomorrow, not a visit
    # Office hours: nobody books a visit at three in the night.
    return hour + 12 if hour <= 6 else hour


def _first(candidates: Iterable[_Day]) -> Optional[_Day]:
    """The leftmost day expression, the longest where two start together (下个月5号 over 下个月)."""
    return min(candidates, key=lambda found: (found.start, -found.end), default=None)


def _to_beijing(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is not None and now.utcoffset() is not None:
        return now.astimezone(SHANGHAI).replace(tzinfo=None)
    return now


def parse_when(text: str, now: dt.datetime) -> Optional[WhenRequest]:
    """The day and time asked for in ``text``; None when the text holds no date or time expression at all."""
    now = _to_beijing(now)
    today = now.date()
    normal = to_simplified(to_halfwidth(text))

    found_day = _first(_days(normal, today))
    if found_day is not None:
        # Mask the day so its characters are not read again: the 一 of 下周一三点
        # is the weekday, not part of the hour.
        rest = normal[: found_day.start] + " " * (found_day.end - found_day.start) + normal[found_day.end :]
    else:
        rest = normal

    parts = _parts(rest)
    if found_day is not None and found_day.part:
        parts.insert(0, _Part(found_day.start, found_day.end, found_day.part))
        parts.sort(key=lambda part: part.start)
    spans_before = [(part.end, part.part) for part in parts]
    if found_day is not None:
        spans_before.append((found_day.end, found_day.part or ""))

    clock: Optional[_Clock] = None
    for candidate in _clocks(rest):
        if candidate.chinese_one:
            # 一点 is one o'clock only right after a day or a part of the day that allows it
            # (明天一点, 下午一点), not in 快一点 or 有一点问题.
            before = normal[: candidate.start].rstrip()
            if not any(end == len(before) and said != MORNING for end, said in spans_before):
                continue
        clock = candidate
        break

    part: Optional[_Part] = None
    if parts:
        before_clock = [p for p in parts if clock is not None and p.end <= clock.start]
        part = before_clock[-1] if before_clock else parts[0]

    start: Optional[dt.time] = None
    if clock is not None:
        hour = _hour_of_day(clock.hour, part.part if part else None)
        if hour is None:
            clock = None
        else:
            start = dt.time(hour, clock.minute)

    if found_day is None and part is None and clock is None:
        return None

    day = latest_day = None
    if found_day is not None:
        day, latest_day = found_day.day, found_day.latest_day
        if found_day.today_if_later and start is not None and dt.datetime.combine(today, start) > now:
            day = latest_day = today

    pieces = [piece for piece in (found_day, part, clock) if piece is not None]
    first = min(piece.start for piece in pieces)
    last = max(piece.end for piece in pieces)
    return WhenRequest(
        day=day,
        latest_day=latest_day,
        start=start,
        part=part.part if part else None,
        matched=text[first:last].strip(),
    )


# --- saying it back -----------------------------------------------------------

_HOURS_OF_PART = {MORNING: range(0, 12), NOON: range(11, 15), AFTERNOON: range(12, 20), EVENING: range(17, 24)}


def _describe_day(day: dt.date) -> str:
    return f"{day.month}月{day.day}日（{WEEKDAY_NAMES[day.weekday()]}）"


def _describe_time(start: dt.time, part: Optional[str]) -> str:
    if part is None or start.hour not in _HOURS_OF_PART[part]:
        if start.hour < 6:
            part = "凌晨"
        elif start.hour < 12:
            part = MORNING
        elif start.hour == 12:
            part = NOON
        elif start.hour < 18:
            part = AFTERNOON
        else:
            part = EVENING
    hour = start.hour - 12 if start.hour > 12 else start.hour
    return f"{part}{hour}:{start.minute:02d}"


def describe_when(request: WhenRequest) -> str:
    """The request in the words of a confirmation: 12月5日（周六）下午3:00, 11月26日（周四）至11月30日（周一）."""
    said = ""
    if request.day is not None:
        said = _describe_day(request.day)
        if request.latest_day is not None and request.latest_day != request.day:
            said += "至" + _describe_day(request.latest_day)
    if request.start is not None:
        said += _describe_time(request.start, request.part)
    elif request.part is not None:
        said += request.part
    return said
