"""预约时间: parse_when and describe_when against fixed clocks.

Four moments cover the rules that depend on "now": a Sunday morning (the week
rules, where this week has nothing left but today), a Thursday afternoon (a
weekday that is today, times already past), a Saturday three days before the
month ends, and a Monday in late December (year rollover).
"""

import datetime as dt

import pytest

from bot.timeparse import WhenRequest, describe_when, parse_when

SUNDAY = dt.datetime(2026, 11, 22, 10, 30)  # 周日上午
THURSDAY = dt.datetime(2026, 11, 26, 15, 0)  # 周四下午
MONTH_END = dt.datetime(2026, 11, 28, 9, 0)  # 周六, 30 is the last day
LATE_DECEMBER = dt.datetime(2026, 12, 28, 10, 0)  # 周一


def _date(text):
    return None if text is None else dt.date.fromisoformat(text)


def _time(text):
    return None if text is None else dt.time.fromisoformat(text)


# now, text, day, latest_day, start, part
EXPRESSIONS = [
    # the expressions named in the issue
    (SUNDAY, "明天上午", "2026-11-23", "2026-11-23", None, "上午"),
    (SUNDAY, "后天下午三点", "2026-11-24", "2026-11-24", "15:00", "下午"),
    (SUNDAY, "下周三", "2026-11-25", "2026-11-25", None, None),
    (SUNDAY, "这周六", "2026-11-28", "2026-11-28", None, None),  # this week's Saturday was yesterday
    (SUNDAY, "12月5号", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "5号下午", "2026-12-05", "2026-12-05", None, "下午"),  # the 5th has passed this month
    (SUNDAY, "月底", "2026-11-26", "2026-11-30", None, None),
    # relative days
    (SUNDAY, "今天", "2026-11-22", "2026-11-22", None, None),
    (SUNDAY, "今儿下午", "2026-11-22", "2026-11-22", None, "下午"),
    (SUNDAY, "明儿", "2026-11-23", "2026-11-23", None, None),
    (SUNDAY, "明日上午", "2026-11-23", "2026-11-23", None, "上午"),
    (SUNDAY, "大后天", "2026-11-25", "2026-11-25", None, None),
    (SUNDAY, "3天后", "2026-11-25", "2026-11-25", None, None),
    (SUNDAY, "明早9点", "2026-11-23", "2026-11-23", "09:00", "上午"),
    (SUNDAY, "今晚7点", "2026-11-22", "2026-11-22", "19:00", "晚上"),
    # weekdays, seen from a Sunday
    (SUNDAY, "下星期三", "2026-11-25", "2026-11-25", None, None),
    (SUNDAY, "下礼拜三", "2026-11-25", "2026-11-25", None, None),
    (SUNDAY, "本周六", "2026-11-28", "2026-11-28", None, None),
    (SUNDAY, "这个周六", "2026-11-28", "2026-11-28", None, None),
    (SUNDAY, "星期六", "2026-11-28", "2026-11-28", None, None),
    (SUNDAY, "礼拜六", "2026-11-28", "2026-11-28", None, None),
    (SUNDAY, "下下周一", "2026-11-30", "2026-11-30", None, None),
    (SUNDAY, "周日", "2026-11-29", "2026-11-29", None, None),  # today's weekday, no time: next week's
    (SUNDAY, "这周日", "2026-11-22", "2026-11-22", None, None),  # 这 says this week: today
    (SUNDAY, "周日11点", "2026-11-22", "2026-11-22", "11:00", None),  # later than 10:30: today
    (SUNDAY, "周日10点", "2026-11-29", "2026-11-29", "10:00", None),  # already past: next week's
    (SUNDAY, "下周一三点", "2026-11-23", "2026-11-23", "15:00", None),  # the 一 is the weekday, not the hour
    (SUNDAY, "星期一早上", "2026-11-23", "2026-11-23", None, "上午"),
    # weeks as ranges
    (SUNDAY, "下周", "2026-11-23", "2026-11-29", None, None),
    (SUNDAY, "下个星期", "2026-11-23", "2026-11-29", None, None),
    (SUNDAY, "这周内", "2026-11-22", "2026-11-22", None, None),  # Sunday: the week has only today left
    (SUNDAY, "下周末", "2026-11-28", "2026-11-29", None, None),
    # months
    (SUNDAY, "这个月底", "2026-11-26", "2026-11-30", None, None),
    (SUNDAY, "下个月初", "2026-12-01", "2026-12-05", None, None),
    (SUNDAY, "下个月5号", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "12月底", "2026-12-27", "2026-12-31", None, None),
    (SUNDAY, "下个月", "2026-12-01", "2026-12-31", None, None),
    # absolute days
    (SUNDAY, "12月5日", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "十二月五号", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "12.5", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "12-5", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "12/5", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "2026年12月5日", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "2026-12-05", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "二〇二六年十二月五日", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "五号", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "5日", "2026-12-05", "2026-12-05", None, None),
    (SUNDAY, "二十五号", "2026-11-25", "2026-11-25", None, None),
    (SUNDAY, "三十一号", "2026-12-31", "2026-12-31", None, None),  # November has no 31st
    (SUNDAY, "十一号", "2026-12-11", "2026-12-11", None, None),
    (SUNDAY, "22号", "2026-11-22", "2026-11-22", None, None),  # today is not past
    # times alone: office hours decide morning or afternoon
    (SUNDAY, "三点", None, None, "15:00", None),
    (SUNDAY, "3点", None, None, "15:00", None),
    (SUNDAY, "15点", None, None, "15:00", None),
    (SUNDAY, "15:00", None, None, "15:00", None),
    (SUNDAY, "15：00", None, None, "15:00", None),
    (SUNDAY, "下午3点", None, None, "15:00", "下午"),
    (SUNDAY, "下午三点半", None, None, "15:30", "下午"),
    (SUNDAY, "3点半", None, None, "15:30", None),
    (SUNDAY, "3点15", None, None, "15:15", None),
    (SUNDAY, "三点一刻", None, None, "15:15", None),
    (SUNDAY, "九点三刻", None, None, "09:45", None),
    (SUNDAY, "10点整", None, None, "10:00", None),
    (SUNDAY, "两点", None, None, "14:00", None),
    (SUNDAY, "十点", None, None, "10:00", None),
    (SUNDAY, "十二点", None, None, "12:00", None),
    (SUNDAY, "6点", None, None, "18:00", None),
    (SUNDAY, "7点", None, None, "07:00", None),
    (SUNDAY, "上午十点", None, None, "10:00", "上午"),
    (SUNDAY, "晚上7点", None, None, "19:00", "晚上"),
    (SUNDAY, "早8点", None, None, "08:00", "上午"),
    (SUNDAY, "中午12点", None, None, "12:00", "中午"),
    (SUNDAY, "中午一点", None, None, "13:00", "中午"),
    (SUNDAY, "三点零五", None, None, "15:05", None),
    (SUNDAY, "3点5", None, None, "15:00", None),  # 3:05 or 3:50? only the hour is certain
    (SUNDAY, "晚上十二点", None, None, None, "晚上"),  # midnight is not a visit
    (SUNDAY, "傍晚", None, None, None, "晚上"),
    (SUNDAY, "午后", None, None, None, "下午"),
    (SUNDAY, "中午", None, None, None, "中午"),
    # combinations, filler words, voice input, traditional characters, full-width digits
    (SUNDAY, "下周三上午10点", "2026-11-25", "2026-11-25", "10:00", "上午"),
    (SUNDAY, "周五下午两点半", "2026-11-27", "2026-11-27", "14:30", "下午"),
    (SUNDAY, "明天早上八点半", "2026-11-23", "2026-11-23", "08:30", "上午"),
    (SUNDAY, "下午3点吧", None, None, "15:00", "下午"),
    (SUNDAY, "我想约后天下午", "2026-11-24", "2026-11-24", None, "下午"),
    (SUNDAY, "预约退役报到 明天上午 谢谢", "2026-11-23", "2026-11-23", None, "上午"),
    (SUNDAY, "我想约下周三上午十点钟去办优待证", "2026-11-25", "2026-11-25", "10:00", "上午"),
    (SUNDAY, "下午三点 后天", "2026-11-24", "2026-11-24", "15:00", "下午"),
    (SUNDAY, "明天 下午 3 点", "2026-11-23", "2026-11-23", "15:00", "下午"),
    (SUNDAY, "明天一点", "2026-11-23", "2026-11-23", "13:00", None),
    (SUNDAY, "5号三点", "2026-12-05", "2026-12-05", "15:00", None),
    (SUNDAY, "明天下午3点到5点", "2026-11-23", "2026-11-23", "15:00", "下午"),
    (SUNDAY, "明天下午三點", "2026-11-23", "2026-11-23", "15:00", "下午"),
    (SUNDAY, "後天", "2026-11-24", "2026-11-24", None, None),
    (SUNDAY, "週三", "2026-11-25", "2026-11-25", None, None),
    (SUNDAY, "禮拜三", "2026-11-25", "2026-11-25", None, None),
    (SUNDAY, "１２月５號下午３點", "2026-12-05", "2026-12-05", "15:00", "下午"),
    (SUNDAY, "2月30号下午", None, None, None, "下午"),  # the impossible day is dropped, the rest kept
    # a Thursday afternoon: today's weekday and times already past
    (THURSDAY, "周四", "2026-12-03", "2026-12-03", None, None),
    (THURSDAY, "周四下午", "2026-12-03", "2026-12-03", None, "下午"),
    (THURSDAY, "周四下午4点", "2026-11-26", "2026-11-26", "16:00", "下午"),
    (THURSDAY, "周四下午2点", "2026-12-03", "2026-12-03", "14:00", "下午"),
    (THURSDAY, "这周四", "2026-11-26", "2026-11-26", None, None),
    (THURSDAY, "周三", "2026-12-02", "2026-12-02", None, None),
    (THURSDAY, "这周三", "2026-12-02", "2026-12-02", None, None),
    (THURSDAY, "周五", "2026-11-27", "2026-11-27", None, None),
    (THURSDAY, "这周", "2026-11-26", "2026-11-29", None, None),
    (THURSDAY, "这周内", "2026-11-26", "2026-11-29", None, None),
    (THURSDAY, "下周", "2026-11-30", "2026-12-06", None, None),
    (THURSDAY, "周末", "2026-11-28", "2026-11-29", None, None),
    (THURSDAY, "月底", "2026-11-26", "2026-11-30", None, None),  # inside the last five days: from today
    (THURSDAY, "25号", "2026-12-25", "2026-12-25", None, None),
    # three days before the month ends
    (MONTH_END, "月底", "2026-11-28", "2026-11-30", None, None),
    (MONTH_END, "30号", "2026-11-30", "2026-11-30", None, None),
    (MONTH_END, "1号", "2026-12-01", "2026-12-01", None, None),
    (MONTH_END, "月初", "2026-12-01", "2026-12-05", None, None),
    (MONTH_END, "这个月内", "2026-11-28", "2026-11-30", None, None),
    (MONTH_END, "下周六", "2026-12-05", "2026-12-05", None, None),
    # late December: next year
    (LATE_DECEMBER, "1月3号", "2027-01-03", "2027-01-03", None, None),
    (LATE_DECEMBER, "12月5号", "2027-12-05", "2027-12-05", None, None),
    (LATE_DECEMBER, "5号", "2027-01-05", "2027-01-05", None, None),
    (LATE_DECEMBER, "下个月初", "2027-01-01", "2027-01-05", None, None),
    (LATE_DECEMBER, "下周三", "2027-01-06", "2027-01-06", None, None),
    (LATE_DECEMBER, "周一", "2027-01-04", "2027-01-04", None, None),
    (LATE_DECEMBER, "周一下午3点", "2026-12-28", "2026-12-28", "15:00", "下午"),
    (LATE_DECEMBER, "周一9点", "2027-01-04", "2027-01-04", "09:00", None),
    (LATE_DECEMBER, "明年3月5号", "2027-03-05", "2027-03-05", None, None),
    (LATE_DECEMBER, "2027年1月3日", "2027-01-03", "2027-01-03", None, None),
    (LATE_DECEMBER, "今年12月5号", "2026-12-05", "2026-12-05", None, None),  # said explicitly, kept though past
    (LATE_DECEMBER, "月底", "2026-12-28", "2026-12-31", None, None),
]


@pytest.mark.parametrize(
    "now, text, day, latest_day, start, part",
    EXPRESSIONS,
    ids=[f"{row[0]:%m%d}-{row[1]}" for row in EXPRESSIONS],
)
def test_parse_when(now, text, day, latest_day, start, part):
    request = parse_when(text, now)
    assert request is not None
    assert (request.day, request.latest_day, request.start, request.part) == (
        _date(day),
        _date(latest_day),
        _time(start),
        part,
    )


@pytest.mark.parametrize(
    "text",
    [
        "我想预约", "安亭镇", "12345", "三个月没发了", "3个人", "", "   ", "你好",
        "快一点", "有一点问题", "早一点", "第三点要求", "一时半会儿", "几点",
        "13812345678", "1-2个工作日", "补贴涨了3.5万", "1/3的人",
        "5号楼", "1号线", "三十二号", "2月30号", "2月29号",
        "昨天", "上周三", "上个月5号", "每周三", "两个星期", "周师傅", "这周围有服务站吗", "24点",
    ],
)
def test_text_without_a_day_or_time_is_not_understood(text):
    assert parse_when(text, SUNDAY) is None


@pytest.mark.parametrize(
    "text, matched",
    [
        ("预约退役报到 明天上午 谢谢", "明天上午"),
        ("下午3点吧", "下午3点"),
        ("我想约后天下午", "后天下午"),
        ("明天下午三點可以嗎", "明天下午三點"),
        ("１２月５號下午３點", "１２月５號下午３點"),
        ("3点5", "3点"),
        ("下个月5号行吗", "下个月5号"),
    ],
)
def test_matched_is_cut_from_the_text_as_written(text, matched):
    assert parse_when(text, SUNDAY).matched == matched


def test_an_aware_now_is_read_in_beijing_time():
    # 2026-11-22 20:00 UTC is already Monday 04:00 in Beijing.
    late_utc = dt.datetime(2026, 11, 22, 20, 0, tzinfo=dt.timezone.utc)
    assert parse_when("今天", late_utc).day == dt.date(2026, 11, 23)
    morning_utc = dt.datetime(2026, 11, 22, 2, 30, tzinfo=dt.timezone.utc)
    assert parse_when("今天", morning_utc).day == dt.date(2026, 11, 22)


@pytest.mark.parametrize(
    "text, described",
    [
        ("12月5号下午3点", "12月5日（周六）下午3:00"),
        ("后天上午十点半", "11月24日（周二）上午10:30"),
        ("明天中午12点", "11月23日（周一）中午12:00"),
        ("周五晚上7点", "11月27日（周五）晚上7:00"),
        ("5号下午", "12月5日（周六）下午"),
        ("月底", "11月26日（周四）至11月30日（周一）"),
        ("下周上午", "11月23日（周一）至11月29日（周日）上午"),
        ("三点一刻", "下午3:15"),
        ("九点三刻", "上午9:45"),
        ("傍晚", "晚上"),
    ],
)
def test_describe_when(text, described):
    assert describe_when(parse_when(text, SUNDAY)) == described


def test_describe_when_names_the_part_from_the_clock_when_none_was_said():
    saturday = dt.date(2026, 12, 5)
    request = WhenRequest(day=saturday, latest_day=saturday, start=dt.time(15, 0), part=None, matched="")
    assert describe_when(request) == "12月5日（周六）下午3:00"


# --- holidays on a fixed date: 元旦, 劳动节/五一, 国庆 (the next one, today included) ---------

NEW_YEARS_DAY = dt.datetime(2027, 1, 1, 8, 0)  # 周五
NATIONAL_DAY_2026 = dt.datetime(2026, 10, 2, 9, 0)  # the day after 国庆节 began


@pytest.mark.parametrize("now, text, day, start, part, matched", [
    (LATE_DECEMBER, "元旦", "2027-01-01", None, None, "元旦"),
    (LATE_DECEMBER, "元旦那天上午", "2027-01-01", None, "上午", "元旦那天上午"),
    (LATE_DECEMBER, "我想元旦那天上午去办优待证", "2027-01-01", None, "上午", "元旦那天上午"),
    (LATE_DECEMBER, "元旦上午九点", "2027-01-01", "09:00", "上午", "元旦上午九点"),
    (LATE_DECEMBER, "元旦节下午", "2027-01-01", None, "下午", "元旦节下午"),
    (SUNDAY, "元旦", "2027-01-01", None, None, "元旦"),
    (NEW_YEARS_DAY, "元旦", "2027-01-01", None, None, "元旦"),  # today is the next one
    (SUNDAY, "劳动节", "2027-05-01", None, None, "劳动节"),
    (SUNDAY, "五一", "2027-05-01", None, None, "五一"),
    (SUNDAY, "五一劳动节上午", "2027-05-01", None, "上午", "五一劳动节上午"),
    (SUNDAY, "国际劳动节", "2027-05-01", None, None, "国际劳动节"),
    (SUNDAY, "五一那天下午三点", "2027-05-01", "15:00", "下午", "五一那天下午三点"),
    (dt.datetime(2026, 4, 20, 9, 0), "五一", "2026-05-01", None, None, "五一"),
    (SUNDAY, "国庆", "2027-10-01", None, None, "国庆"),
    (SUNDAY, "国庆节", "2027-10-01", None, None, "国庆节"),
    (dt.datetime(2026, 9, 20, 9, 0), "国庆节上午", "2026-10-01", None, "上午", "国庆节上午"),
    (NATIONAL_DAY_2026, "国庆", "2027-10-01", None, None, "国庆"),  # this year's has begun: next year's
])
def test_holidays_on_a_fixed_date(now, text, day, start, part, matched):
    request = parse_when(text, now)
    assert request is not None
    assert (request.day, request.latest_day, request.start, request.part, request.matched) == (
        _date(day), _date(day), _time(start), part, matched)


@pytest.mark.parametrize("text, day, start", [
    ("十一点", None, "11:00"),  # 十一 is not National Day here
    ("上午十一点", None, "11:00"),
    ("十一月", None, None),
    ("十一月三十号", "2026-11-30", None),
    ("十一号", "2026-12-11", None),
    ("十五号", "2026-12-15", None),
    ("二十五号下午", "2026-11-25", None),
    ("五一点", None, None),
    ("十五一", None, None),
])
def test_eleven_and_five_one_elsewhere_are_not_holidays(text, day, start):
    request = parse_when(text, SUNDAY)
    if day is None and start is None:
        assert request is None
        return
    assert request is not None and request.day == _date(day) and request.start == _time(start)
