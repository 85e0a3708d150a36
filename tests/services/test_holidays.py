"""Holidays beyond chinesecalendar: data/holidays.yml, the "unknown" days of a year
whose schedule is not published, booking refusing them (unless in open_days), and
the warning that the holiday data is about to end.

chinesecalendar 1.11.0 knows the State Council's schedule up to 2026. Every test
here fixes the clock and the holidays file (an empty one unless it says otherwise),
so that nothing depends on today's date or on what staff enter in data/holidays.yml.
The 2027 schedule written below is made up for the tests: it is NOT the real one.
Database tests run on SQLite and on PostgreSQL (the `session_factory` fixture)."""

from __future__ import annotations

import datetime as dt
import logging
import re

import chinese_calendar
import pytest
import yaml
from sqlalchemy import select

from bot import cli
from bot.db.models import Station
from bot.db.session import session_scope
from bot.services import appointments as ap
from bot.services import handoff
from bot.services import stations as network
from bot.services.appointments import BookingStatus
from bot.services.stations import (
    SHANGHAI,
    DayStatus,
    HolidayCalendar,
    HolidayDataError,
    calendar_coverage,
    day_status,
    describe,
    hours_on,
    load_holidays,
    load_stations,
    read_holidays,
    use_holidays,
)
from bot.settings import PROJECT_ROOT, Settings

DATA = PROJECT_ROOT / "data"
HOLIDAYS_FILE = DATA / "holidays.yml"
T = dt.time
STREET_DAY = [(T(9), T(11, 30)), (T(13, 30), T(17))]

LATE_DECEMBER = dt.datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI)  # a Monday; bookable up to 2027-01-27
NEW_YEAR = dt.date(2027, 1, 1)  # a Friday
FIRST_MONDAY = dt.date(2027, 1, 4)
REFUSAL = "2027年1月1日的节假日安排尚未公布，暂不能预约这一天。"

# Made up for the tests (not the State Council's 2027 schedule, which is not known here).
TEST_2027 = [
    {"name": "元旦", "from": "2027-01-01", "to": "2027-01-03", "makeup": ["2027-01-09"]},
    {"name": "春节", "from": dt.date(2027, 2, 6), "to": dt.date(2027, 2, 12),
     "makeup": [dt.date(2027, 1, 31), dt.date(2027, 2, 20)]},
]


def at(year, month, day, hour=0, minute=0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def write(path, data):
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def holidays(holidays_file):
    """An empty holidays file (2027 unknown); ``holidays(data)`` writes another one."""
    return holidays_file


@pytest.fixture
def loaded(session_factory):
    with session_scope(session_factory) as session:
        load_stations(session, DATA / "stations.yml")
        ap.load_services(session, DATA / "services.yml", DATA / "closures.yml", now=LATE_DECEMBER)
    return session_factory


def sid(session, code):
    return session.execute(select(Station.id).where(Station.code == code)).scalar_one()


def by_code(session, code) -> Station:
    return session.execute(select(Station).where(Station.code == code)).scalar_one()


def request(factory, day, latest_day=None, start=None, part=None, code="JD-JQ", service="preferential_card",
            now=LATE_DECEMBER):
    with session_scope(factory) as session:
        return ap.check_request(session, sid(session, code), service, day, latest_day, start, part, now)


def book(factory, openid, start, code="JD-JQ", service="preferential_card", now=LATE_DECEMBER):
    with session_scope(factory) as session:
        return ap.book(session, openid, sid(session, code), service, start, now)


def free_days(factory, first, last, code="JD-JQ", service="preferential_card", now=LATE_DECEMBER):
    with session_scope(factory) as session:
        return {s.start.date() for s in ap.free_slots(session, sid(session, code), service, first, last, now)}


# --- day_status ------------------------------------------------------------------------------


def _as_before(day: dt.date) -> DayStatus:
    """day_status as it was before data/holidays.yml, for the years chinesecalendar knows."""
    on_holiday, name = chinese_calendar.get_holiday_detail(day)
    if name is None:
        return DayStatus("normal")
    chinese = network.HOLIDAY_NAMES.get(name, name)
    if on_holiday:
        return DayStatus("holiday", chinese)
    return DayStatus("makeup", chinese) if day.weekday() >= 5 else DayStatus("normal")


def test_years_chinesecalendar_knows_are_unchanged_whatever_the_file_says(holidays):
    first, last = network.chinese_calendar_years()
    assert (first, last) == (2004, 2026)
    # The file says 2026 and 2025 differently, and opens 元旦 2026: chinesecalendar still decides.
    holidays({"years": {2026: [{"name": "元旦", "date": "2026-01-05"}],
                        2025: [{"name": "国庆节", "from": "2025-10-01", "to": "2025-10-03"}]},
              "open_days": ["2024-10-01"]})
    assert sorted(network.holiday_calendar().years) == [2025, 2026]
    day = dt.date(first, 1, 1)
    while day.year <= last:
        assert day_status(day) == _as_before(day), day
        day += dt.timedelta(days=1)
    assert day_status(dt.date(2026, 10, 2)) == DayStatus("holiday", "国庆节")
    assert day_status(dt.date(2026, 10, 10)) == DayStatus("makeup", "国庆节")
    assert day_status(dt.date(2026, 1, 5)) == DayStatus("normal")


def test_a_year_nobody_knows_is_unknown_but_keeps_its_weekly_hours(loaded, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.services.stations"):
        assert day_status(NEW_YEAR) == DayStatus("unknown")
        assert day_status(dt.date(2027, 2, 10)).kind == "unknown"
    with session_scope(loaded) as session:
        station = by_code(session, "JD-JQ")
        assert hours_on(station, NEW_YEAR) == STREET_DAY  # a Friday
        assert hours_on(station, dt.date(2027, 1, 2)) == []  # a Saturday
        # The station finder still answers from the weekly hours …
        text = describe(station, at(2027, 1, 4, 10))
        assert "今日办公时间：9:00—11:30，13:30—17:00" in text and "现在正在办公" in text
        # … and so does the handoff's waiting time.
        assert handoff.expected_reply(session, at(2027, 1, 4, 10), station) == "现在是工作时间，工作人员会尽快回复您。"
        assert "1月4日（周一）09:00" in handoff.expected_reply(session, at(2027, 1, 2, 10), station)


def test_a_year_entered_in_the_file_follows_it(loaded, holidays):
    holidays({"years": {2027: TEST_2027}})
    assert day_status(NEW_YEAR) == DayStatus("holiday", "元旦")
    assert day_status(dt.date(2027, 2, 10)) == DayStatus("holiday", "春节")
    assert day_status(dt.date(2027, 1, 9)) == DayStatus("makeup", "元旦")
    assert day_status(FIRST_MONDAY) == DayStatus("normal")
    assert day_status(dt.date(2027, 3, 6)) == DayStatus("normal")  # an ordinary Saturday
    with session_scope(loaded) as session:
        station = by_code(session, "JD-JQ")
        assert hours_on(station, NEW_YEAR) == []
        assert hours_on(station, dt.date(2027, 1, 9)) == STREET_DAY  # the make-up Saturday
        assert network.format_day(dt.date(2027, 1, 9)) == "1月9日（周六，调休工作日）"
        assert "今日（元旦假期）不办公。" in describe(station, at(2027, 1, 1, 10))


def test_the_next_years_notice_may_name_the_last_days_of_december(holidays):
    assert day_status(dt.date(2026, 12, 31)) == DayStatus("normal")
    holidays({"years": {2027: [{"name": "元旦", "from": "2026-12-31", "to": "2027-01-02",
                                "makeup": ["2026-12-27"]}]}})
    assert day_status(dt.date(2026, 12, 31)) == DayStatus("holiday", "元旦")
    assert day_status(dt.date(2026, 12, 27)) == DayStatus("makeup", "元旦")
    assert day_status(dt.date(2026, 12, 30)) == DayStatus("normal")
    assert day_status(dt.date(2027, 1, 3)) == DayStatus("normal")  # a Sunday after the holiday


def test_open_days_are_ordinary_days(holidays):
    holidays({"years": None, "open_days": [FIRST_MONDAY.isoformat(), dt.date(2027, 1, 5)]})
    assert day_status(FIRST_MONDAY) == DayStatus("normal")
    assert day_status(dt.date(2027, 1, 5)) == DayStatus("normal")
    assert day_status(dt.date(2027, 1, 6)) == DayStatus("unknown")


def test_the_file_is_read_again_when_it_changes_and_a_bad_edit_keeps_the_last_good_one(holidays, caplog):
    assert day_status(NEW_YEAR).kind == "unknown"
    holidays({"years": {2027: TEST_2027}})
    assert day_status(NEW_YEAR) == DayStatus("holiday", "元旦")
    with caplog.at_level(logging.ERROR, logger="bot.services.stations"):
        holidays({"years": {2027: [{"name": "元旦", "from": "2027-01-03", "to": "2027-01-01"}]}})
        assert day_status(NEW_YEAR) == DayStatus("holiday", "元旦")
    assert "the holidays file is wrong" in caplog.text and "is before from" in caplog.text


def test_without_a_file_every_unknown_year_stays_unknown(tmp_path):
    use_holidays(tmp_path / "missing.yml")
    assert day_status(NEW_YEAR).kind == "unknown"
    assert day_status(dt.date(2026, 10, 2)).kind == "holiday"


def test_the_setting_names_the_file():
    assert Settings.from_env({"VETBOT_SECRET_KEY": "k"}).holidays_file == HOLIDAYS_FILE
    assert Settings.from_env({"VETBOT_SECRET_KEY": "k", "VETBOT_HOLIDAYS_FILE": "/srv/h.yml"}).holidays_file.as_posix() \
        == "/srv/h.yml"


def test_use_holidays_takes_the_file_from_the_setting(tmp_path, monkeypatch, holidays):
    other = write(tmp_path / "other.yml", {"years": {2027: TEST_2027}})
    monkeypatch.setenv("VETBOT_HOLIDAYS_FILE", str(other))
    use_holidays(None)
    assert day_status(NEW_YEAR) == DayStatus("holiday", "元旦")
    assert network.holiday_calendar().source == str(other)
    use_holidays(HolidayCalendar())
    assert day_status(NEW_YEAR).kind == "unknown"


# --- the data file ---------------------------------------------------------------------------


def test_the_real_file_loads_and_explains_itself():
    calendar = load_holidays(HOLIDAYS_FILE)
    assert calendar.source == "data/holidays.yml"
    text = HOLIDAYS_FILE.read_text(encoding="utf-8")
    assert "国务院办公厅" in text[:400] and "open_days" in text
    assert "2027: 待国务院办公厅通知发布后填写" in text
    # Whatever staff enter, it is only for the years chinesecalendar does not know.
    assert all(year > network.chinese_calendar_years()[1] for year in calendar.years)


def test_the_example_in_the_files_header_is_the_real_2026_schedule():
    """The commented example (2026) must agree with chinesecalendar, date by date."""
    lines = HOLIDAYS_FILE.read_text(encoding="utf-8").splitlines()
    start = lines.index("#   years:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        block.append(line[4:])
    example = read_holidays(yaml.safe_load("\n".join(block)))
    named = example.years[2026]
    day = dt.date(2026, 1, 1)
    while day.year == 2026:
        expected = _as_before(day)
        assert named.get(day, DayStatus("normal")) == expected, day
        day += dt.timedelta(days=1)


GOOD = {"years": {2027: TEST_2027}, "open_days": ["2028-01-03"]}


def _broken():
    return {
        "year": {},  # misspelt section
        "years": {
            "2027年": [{"name": "元旦", "date": "2027-01-01"}],  # not a year
            2027: [
                {"name": "元旦", "from": "2027-01-03", "to": "2027-01-01"},  # backwards
                {"from": "2027-02-06", "to": "2027-02-12"},  # no name
                {"name": "清明节", "date": "2027-04-31"},  # no such day
                {"name": "劳动节", "from": "2027-05-01", "to": "2027-05-05"},
                {"name": "端午节", "date": "2027-06-12", "makeup": ["2027-06-12"]},  # off and at work
                {"name": "中秋节", "from": "2027-05-04", "to": "2027-05-06"},  # overlaps 劳动节
                {"name": "国庆节", "date": "2028-10-01", "makeup": ["2027-04-26"]},  # another year; a Monday
                {"name": "国庆节", "dates": "2027-10-01"},  # misspelt field
                "国庆节",  # not a mapping
            ],
            2029: [],  # nothing
        },
        "open_days": ["2027-01-04", "2028-02-30", "2028-01-03", "2028-01-03"],
    }


BROKEN_PROBLEMS = [
    "year: unknown section",
    "years: '2027年' is not a year like 2027",
    "2027 holiday #1 (元旦): date: to: 2027-01-01 is before from: 2027-01-03",
    "2027 holiday #2 (None): name: missing",
    "2027 holiday #3 (清明节): date: '2027-04-31' is not a date like 2027-01-01",
    "2027 holiday #5 (端午节): makeup: 2027-06-12 is also one of the days off",
    "2027 holiday #6 (中秋节): date: 2027-05-04 is already named by 2027 劳动节 (and 1 more day(s))",
    "2027 holiday #7 (国庆节): date: 2028-10-01 is not in 2027",
    "2027 holiday #7 (国庆节): makeup: 2027-04-26 is a 周一; 调休上班 days are Saturdays or Sundays",
    "2027 holiday #8 (国庆节): dates: unknown field",
    "2027 holiday #8 (国庆节): date: give date: (one day) or from: and to:",
    "2027 holiday #9: must be a mapping of fields",
    "2029: list the holidays of the State Council's notice for 2029",
    "open_days: 2027-01-04: the schedule of 2027 is entered under years:",
    "open_days: '2028-02-30' is not a date like 2027-01-01",
    "open_days: 2028-01-03 is listed twice",
]


def test_a_good_file_reads():
    calendar = read_holidays(GOOD)
    assert sorted(calendar.years) == [2027] and calendar.open_days == {dt.date(2028, 1, 3)}
    assert len([s for s in calendar.years[2027].values() if s.kind == "holiday"]) == 10
    assert calendar.years[2027][dt.date(2027, 2, 20)] == DayStatus("makeup", "春节")


def test_a_bad_file_is_refused_listing_every_problem(tmp_path):
    path = write(tmp_path / "holidays.yml", _broken())
    with pytest.raises(HolidayDataError) as caught:
        load_holidays(path)
    problems = caught.value.problems
    for expected in BROKEN_PROBLEMS:
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert len(problems) == len(BROKEN_PROBLEMS), problems
    message = str(caught.value)
    assert message.startswith(f"{path}: {len(BROKEN_PROBLEMS)} problem(s):\n  - ")


@pytest.mark.parametrize("text, expected", [
    ("years: [2027]\n", "years: must map a year"),
    ("- 2027-01-01\n", "the file must contain years:"),
    ("years:\n  2027:\n    - name: 元旦\n      date: 2027-01-01\n     to: x\n", "not valid YAML"),
    ("years: {}\nopen_days: 2027-01-04\n", "open_days: must be a list of dates"),
    ("years:\n  2027:\n    - name: 清明节\n      date: 2027-04-31\n", "a date that does not exist"),
    ("years:\n  2027:\n    - name: 春节\n      from: 2027-01-01\n      to: 2027-03-01\n", "longer than 31 days"),
    ("years:\n  2027:\n    - name: 春节\n      date: 2027-02-06\n      from: 2027-02-06\n      to: 2027-02-07\n",
     "give either date: or from: and to:, not both"),
    ("years:\n  2027:\n    - name: 春节\n", "give date: (one day) or from: and to:"),
])
def test_more_bad_files(tmp_path, text, expected):
    path = tmp_path / "holidays.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HolidayDataError) as caught:
        load_holidays(path)
    assert expected in str(caught.value)


# --- booking ---------------------------------------------------------------------------------


def test_an_unknown_day_is_refused_with_the_reason_and_the_times_that_can_be_had(loaded):
    found = request(loaded, NEW_YEAR, NEW_YEAR, start=T(9))
    assert found.exact is None
    assert found.problem == REFUSAL
    assert (found.availability.reason, found.availability.closed_because) == ("closed_day", "unknown")
    assert [s.start for s in found.alternatives] == [at(2026, 12, 31, 9), at(2026, 12, 31, 9, 20),
                                                     at(2026, 12, 31, 9, 40)]
    # A day without a time, a part of the day, a range: the same reason.
    assert request(loaded, NEW_YEAR).problem == REFUSAL
    assert request(loaded, NEW_YEAR, part="上午").problem == REFUSAL
    early_january = request(loaded, NEW_YEAR, dt.date(2027, 1, 5))
    assert early_january.problem == "2027年1月1日至1月5日的节假日安排尚未公布，暂不能预约这几天。"
    assert early_january.alternatives and all(s.start.year == 2026 for s in early_january.alternatives)
    evenings = request(loaded, dt.date(2026, 12, 30), dt.date(2027, 1, 3), part="晚上")
    assert evenings.problem == ("12月30日（周三）至1月3日（周日）晚上没有可以预约的时段；"
                                "2027年1月1日起的节假日安排尚未公布，暂不能预约。")


def test_no_slots_are_offered_on_unknown_days(loaded):
    days = free_days(loaded, LATE_DECEMBER.date(), dt.date(2027, 1, 27))
    assert days == {dt.date(2026, 12, 28), dt.date(2026, 12, 29), dt.date(2026, 12, 30), dt.date(2026, 12, 31)}
    # The earliest free times ("越快越好") and a request beyond: nothing in 2027 either.
    assert all(s.start.year == 2026 for s in request(loaded, None).alternatives)


def test_booking_an_unknown_day_is_refused(loaded):
    result = book(loaded, "o-newyear", at(2027, 1, 1, 9))
    assert result.status is BookingStatus.UNAVAILABLE
    assert ap.booking_reply(result) == REFUSAL + "请换一个时间。"
    monday = book(loaded, "o-monday", at(2027, 1, 4, 9))
    assert ap.explain(monday.availability) == "2027年1月4日的节假日安排尚未公布，暂不能预约这一天。"


def test_an_open_day_can_be_booked(loaded, holidays):
    holidays({"open_days": [FIRST_MONDAY]})
    found = request(loaded, FIRST_MONDAY, FIRST_MONDAY, start=T(9))
    assert found.exact is not None and found.exact.start == at(2027, 1, 4, 9) and found.problem is None
    assert book(loaded, "o-monday", at(2027, 1, 4, 9)).status is BookingStatus.BOOKED
    assert FIRST_MONDAY in free_days(loaded, FIRST_MONDAY, dt.date(2027, 1, 8))
    assert free_days(loaded, dt.date(2027, 1, 5), dt.date(2027, 1, 8)) == set()
    assert request(loaded, NEW_YEAR, start=T(9)).problem == REFUSAL  # still not open


def test_a_year_entered_in_the_file_is_booked_by_it(loaded, holidays):
    holidays({"years": {2027: TEST_2027}})
    refused = request(loaded, NEW_YEAR, NEW_YEAR, start=T(9))
    assert refused.problem == "1月1日（周五）是元旦假期，江桥镇退役军人服务站不办公。"
    assert refused.alternatives[0].start == at(2026, 12, 31, 9)
    makeup = request(loaded, dt.date(2027, 1, 9), dt.date(2027, 1, 9), start=T(13, 50))  # the make-up Saturday
    assert makeup.exact is not None and makeup.exact.start == at(2027, 1, 9, 13, 50)
    assert book(loaded, "o-monday", at(2027, 1, 4, 9)).status is BookingStatus.BOOKED
    days = free_days(loaded, dt.date(2026, 12, 31), dt.date(2027, 1, 10))
    assert days == {dt.date(2026, 12, 31), dt.date(2027, 1, 4), dt.date(2027, 1, 5), dt.date(2027, 1, 6),
                    dt.date(2027, 1, 7), dt.date(2027, 1, 8), dt.date(2027, 1, 9)}


def test_a_known_year_books_as_before(loaded):
    september = at(2026, 9, 28, 8)
    golden_week = request(loaded, dt.date(2026, 10, 2), now=september)
    assert golden_week.problem == "10月2日（周五）是国庆节假期，江桥镇退役军人服务站不办公。"
    makeup = request(loaded, dt.date(2026, 10, 10), dt.date(2026, 10, 10), start=T(9), now=september)
    assert makeup.exact is not None
    assert free_days(loaded, dt.date(2026, 10, 1), dt.date(2026, 10, 10), now=september) == {
        dt.date(2026, 10, 8), dt.date(2026, 10, 9), dt.date(2026, 10, 10)}


def test_the_day_view_shows_an_unknown_day_closed_for_booking_with_its_bookings(loaded, holidays):
    holidays({"open_days": [FIRST_MONDAY]})
    assert book(loaded, "o-monday", at(2027, 1, 4, 9)).status is BookingStatus.BOOKED
    holidays({"open_days": []})  # staff took the day back out: the booking stays
    with session_scope(loaded) as session:
        schedule = ap.day_schedule(session, sid(session, "JD-JQ"), FIRST_MONDAY)
        new_year = ap.day_schedule(session, sid(session, "JD-JQ"), NEW_YEAR)
    assert (schedule.closed_because, schedule.periods) == ("unknown", ())
    assert schedule.closed_reason.startswith("2027年1月4日（周一）的节假日安排尚未公布，暂不开放预约。")
    assert "open_days" in schedule.closed_reason
    [booking] = schedule.bookings
    assert booking.start == at(2027, 1, 4, 9)
    assert all(not slot.in_hours for service in schedule.services for slot in service.slots)
    assert new_year.closed_because == "unknown" and not new_year.bookings
    assert all(not service.slots for service in new_year.services)


# --- the warning that the data ends soon -----------------------------------------------------


def test_the_warning_appears_within_60_days_of_the_end_and_not_before():
    empty = HolidayCalendar(source="data/holidays.yml")
    now = calendar_coverage(dt.date(2026, 12, 7), empty)
    assert not now.ok and now.last_day == dt.date(2026, 12, 31) and now.days_left == 24
    assert now.warning_zh.startswith("提醒：节假日数据只到2026年12月31日（还有24天）。")
    assert "2027年部分节假日安排的通知" in now.warning_zh and "data/holidays.yml" in now.warning_zh
    assert "2027年的日期不开放预约" in now.warning_zh
    assert now.warning_en.startswith("Warning: the holiday data ends on 2026-12-31 (in 24 days).")
    assert not calendar_coverage(dt.date(2026, 11, 1), empty).ok  # 60 days before
    before = calendar_coverage(dt.date(2026, 10, 31), empty)  # 61 days before
    assert before.ok and before.warning_zh is None and before.warning_en is None
    late = calendar_coverage(dt.date(2027, 1, 3), empty)
    assert "已过去3天" in late.warning_zh and "3 days ago" in late.warning_en


def test_a_year_entered_in_the_file_moves_the_end():
    entered = read_holidays({"years": {2027: TEST_2027}})
    assert calendar_coverage(dt.date(2026, 12, 7), entered).ok
    coverage = calendar_coverage(dt.date(2027, 11, 15), entered)
    assert coverage.last_day == dt.date(2027, 12, 31) and "2028年" in coverage.warning_zh
    gap = read_holidays({"years": {2028: [{"name": "元旦", "date": "2028-01-01"}]}})
    assert calendar_coverage(dt.date(2026, 12, 7), gap).last_day == dt.date(2026, 12, 31)
    open_only = read_holidays({"open_days": ["2027-01-04"]})
    assert not calendar_coverage(dt.date(2026, 12, 7), open_only).ok


def test_calendar_check_prints_the_warning_and_exits_0(tmp_path, capsys):
    assert cli.main(["calendar-check", "--today", "2026-12-07"]) == 0  # the real file, as make validate runs it
    out = capsys.readouterr().out
    assert "提醒：节假日数据只到2026年12月31日（还有24天）" in out
    assert "Warning: the holiday data ends on 2026-12-31 (in 24 days)" in out

    assert cli.main(["calendar-check", "--today", "2026-10-31"]) == 0
    out = capsys.readouterr().out
    assert "节假日数据覆盖至2026年12月31日（还有61天）" in out and "提醒" not in out

    entered = write(tmp_path / "entered.yml", {"years": {2027: TEST_2027}})
    assert cli.main(["calendar-check", "--today", "2026-12-07", "--file", str(entered)]) == 0
    assert "覆盖至2027年12月31日" in capsys.readouterr().out


def test_calendar_check_exits_1_on_a_malformed_file(tmp_path, capsys):
    path = write(tmp_path / "holidays.yml", _broken())
    assert cli.main(["calendar-check", "--today", "2026-12-07", "--file", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("节假日数据有误")
    assert len(re.findall(r"^- ", err, re.M)) == len(BROKEN_PROBLEMS)


def test_make_validate_runs_the_check():
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    validate = makefile.split("\nvalidate:", 1)[1].split("\n\n", 1)[0]
    assert "$(VENV)/bin/vetbot calendar-check" in validate
