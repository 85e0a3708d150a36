"""Appointments: the services file, the schedule, booking, cancelling, rescheduling,
reminders in the outbox, and what unfollowing erases.

Runs on SQLite and on PostgreSQL (the `session_factory` fixture). Racing bookings
are in test_booking_concurrency.py."""

from __future__ import annotations

import copy
import datetime as dt
import re

import pytest
import yaml
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.db.models import Appointment, Outbox, Service, Slot, Station, StationClosure, StationService
from bot.db.session import as_utc, session_scope
from bot.services import appointments as ap
from bot.services import erasure
from bot.services.appointments import BookingStatus, ServiceDataError
from bot.services.stations import SHANGHAI, describe, hours_on, load_stations
from bot.settings import PROJECT_ROOT
from tests.services.veterans import add_veteran

DATA = PROJECT_ROOT / "data"
STATIONS_FILE = DATA / "stations.yml"
SERVICES_FILE = DATA / "services.yml"
CLOSURES_FILE = DATA / "closures.yml"

TEST_CLOSURES = {"closures": [
    {"station": "JD-AT", "date": "2026-12-10", "reason": "站点装修"},
    {"station": ["JD-XCL", "JD-ZX"], "from": dt.date(2026, 12, 14), "to": dt.date(2026, 12, 15),
     "reason": "集中学习"},
]}


def at(year, month, day, hour=0, minute=0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


NOW = at(2026, 11, 30, 8)  # a Monday morning; bookable up to 2026-12-30
THURSDAY = dt.date(2026, 12, 3)


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def closures_file(tmp_path):
    return write_yaml(tmp_path / "closures.yml", TEST_CLOSURES)


@pytest.fixture
def loaded(session_factory, closures_file):
    with session_scope(session_factory) as session:
        load_stations(session, STATIONS_FILE)
        ap.load_services(session, SERVICES_FILE, closures_file, now=NOW)
    return session_factory


def sid(session, code: str) -> int:
    return session.execute(select(Station.id).where(Station.code == code)).scalar_one()


def starts(slots):
    return [s.start.strftime("%H:%M") for s in slots]


def slots_on(factory, code, service, day, now=NOW):
    with session_scope(factory) as session:
        return ap.free_slots(session, sid(session, code), service, day, day, now)


def book(factory, openid, code, service, start, now=NOW, veteran_id=None):
    with session_scope(factory) as session:
        return ap.book(session, openid, sid(session, code), service, start, now, veteran_id=veteran_id)


def check(factory, code, service, start, now=NOW):
    with session_scope(factory) as session:
        return ap.check_requested(session, sid(session, code), service, start, now)


def alternatives(factory, code, service, now=NOW, **asked):
    with session_scope(factory) as session:
        return ap.alternatives(session, sid(session, code), service, now=now, **asked)


def seats(factory, code, service, start):
    with session_scope(factory) as session:
        return session.execute(
            select(Slot.booked, Slot.capacity).join(Service, Service.id == Slot.service_id)
            .where(Slot.station_id == sid(session, code), Service.code == service,
                   Slot.start == start.astimezone(dt.timezone.utc))
        ).one()


def outbox(factory, openid=None):
    with session_scope(factory) as session:
        query = select(Outbox).order_by(Outbox.id)
        if openid is not None:
            query = query.where(Outbox.openid == openid)
        return session.execute(query).scalars().all()


# --- the data files --------------------------------------------------------------------------


def test_the_real_files_load(session_factory):
    with session_scope(session_factory) as session:
        load_stations(session, STATIONS_FILE)
        assert ap.load_services(session, SERVICES_FILE, CLOSURES_FILE) == 4
    with session_scope(session_factory) as session:
        services = {s.code: s for s in session.execute(select(Service)).scalars()}
        assert {c: s.name for c, s in services.items()} == {
            "report_in": "退役报到", "preferential_card": "优待证办理",
            "hardship_aid": "帮扶申请", "consultation": "政策咨询",
        }
        report_in = services["report_in"]
        assert "本人居民身份证" in report_in.materials and any("退役证" in m for m in report_in.materials)
        assert "30日" in report_in.note
        assert (report_in.horizon_days, report_in.lead_minutes) == (30, 30)
        assert all(s.materials for s in services.values())
        # 退役报到 at the district centre and every street station, never at a community one.
        offering = ap.stations_offering(session, "report_in")
        assert offering[0].code == "JD"
        assert {s.tier for s in offering} == {"district", "street"} and len(offering) == 13
        assert {s.tier for s in ap.stations_offering(session, "preferential_card")} == {"street"}
        assert [s.code for s in ap.offered_services(session, sid(session, "JD"))] == ["report_in", "consultation"]
        assert [s.code for s in ap.offered_services(session, sid(session, "JD-AT-HD"))] == [
            "hardship_aid", "consultation"]
        seats_at = dict(session.execute(
            select(Station.code, StationService.capacity).join(Station, Station.id == StationService.station_id)
            .where(StationService.service_id == report_in.id)).all())
        assert seats_at["JD"] == 4 and seats_at["JD-AT"] == 2
        assert session.execute(select(func.count()).select_from(StationClosure)).scalar_one() >= 1


def test_the_files_say_they_are_demo_data_and_where_report_in_happens():
    services = SERVICES_FILE.read_text(encoding="utf-8")
    assert "演示数据" in services[:300] and "before going live" in services[:600]
    assert "第十四条" in services and "第五十一条" in services  # 退役报到: where, and within 30 days
    assert "演示数据" in CLOSURES_FILE.read_text(encoding="utf-8")[:300]


def test_reloading_the_same_files_changes_nothing(loaded, closures_file):
    writes = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    engine = loaded.kw["bind"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        with session_scope(loaded) as session:
            assert ap.load_services(session, SERVICES_FILE, closures_file, now=NOW) == 4
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert writes == []
    with session_scope(loaded) as session:
        assert session.execute(select(func.count()).select_from(Service)).scalar_one() == 4
        assert session.execute(select(func.count()).select_from(StationClosure)).scalar_one() == 5


def test_an_edited_file_updates_offers_and_the_seats_of_future_slots(loaded, tmp_path, closures_file):
    first = at(2026, 12, 3, 9)
    for n in range(3):
        assert book(loaded, f"o-{n}", "JD", "report_in", first).ok
    data = yaml.safe_load(SERVICES_FILE.read_text(encoding="utf-8"))
    report_in = next(s for s in data["services"] if s["code"] == "report_in")
    report_in["capacity_at"] = {"JD": 2}  # fewer seats than already taken at 9:00
    data["services"] = [s for s in data["services"] if s["code"] != "hardship_aid"]
    edited = write_yaml(tmp_path / "services.yml", data)
    with session_scope(loaded) as session:
        assert ap.load_services(session, edited, closures_file, now=NOW) == 3
    assert seats(loaded, "JD", "report_in", first) == (3, 3)  # never below what is taken
    assert slots_on(loaded, "JD", "report_in", THURSDAY)[0].free == 2  # 9:30, not materialised
    with session_scope(loaded) as session:
        assert ap.stations_offering(session, "hardship_aid") == []
        assert session.execute(select(func.count()).select_from(Service)).scalar_one() == 4  # kept


def test_closures_follow_the_file(loaded, tmp_path):
    with session_scope(loaded) as session:
        assert hours_on(session.get(Station, sid(session, "JD-ZX")), dt.date(2026, 12, 15)) == []
    data = copy.deepcopy(TEST_CLOSURES)
    data["closures"] = data["closures"][:1]
    with session_scope(loaded) as session:
        ap.load_services(session, SERVICES_FILE, write_yaml(tmp_path / "c.yml", data), now=NOW)
    with session_scope(loaded) as session:
        assert session.execute(select(StationClosure.day)).scalars().all() == [dt.date(2026, 12, 10)]
        assert hours_on(session.get(Station, sid(session, "JD-ZX")), dt.date(2026, 12, 15)) != []


def _minimal():
    return {
        "settings": {"booking_horizon_days": 30, "minimum_lead_minutes": 30},
        "services": [{"code": "report_in", "name": "退役报到", "slot_minutes": 30, "capacity": 2,
                      "offered_at": {"tiers": ["district"]}, "materials": ["本人居民身份证"]}],
    }


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["services"][0].update(code="报到"), "service 报到 (退役报到): code:"),
    (lambda d: d["services"][0].pop("name"), "service report_in (None): name: missing"),
    (lambda d: d["services"][0].update(slot_minutes="30"), "service report_in (退役报到): slot_minutes: '30' is not a whole number"),
    (lambda d: d["services"][0].update(capacity=0), "service report_in (退役报到): capacity: 0 is not between 1 and 1000"),
    (lambda d: d["services"][0].update(materials="身份证"), "service report_in (退役报到): materials: must be a list"),
    (lambda d: d["services"][0].update(offered_at={"tiers": ["county"]}), "offered_at.tiers: ['county']"),
    (lambda d: d["services"][0].update(offered_at={"stations": ["JD-NOPE"]}),
     "service report_in (退役报到): offered_at.stations: unknown station code(s) JD-NOPE"),
    (lambda d: d["services"][0].update(offered_at={"tiers": ["district"], "except": ["JD"]}),
     "service report_in (退役报到): offered_at: offered at no station"),
    (lambda d: d["services"][0].update(capacity_at={"JD-AT": 3}),
     "service report_in (退役报到): capacity_at.JD-AT: the service is not offered at this station"),
    (lambda d: d["services"][0].update(capcity=3), "service report_in (退役报到): capcity: unknown field (misspelt?)"),
    (lambda d: d["services"].append(dict(d["services"][0], name="另一个")),
     "service report_in (另一个): code: duplicate code (also service #1)"),
    (lambda d: d["settings"].update(booking_horizon_days=400), "settings: booking_horizon_days: 400 is not between 1 and 366"),
    (lambda d: d.update(service=[]), "service: unknown section (misspelt?)"),
])
def test_a_bad_services_file_names_the_entry_and_the_field(loaded, tmp_path, change, expected):
    data = _minimal()
    change(data)
    path = write_yaml(tmp_path / "services.yml", data)
    with session_scope(loaded) as session:
        with pytest.raises(ServiceDataError) as error:
            ap.load_services(session, path)
    assert str(path) in str(error.value)
    assert any(expected in problem for problem in error.value.problems), error.value.problems


@pytest.mark.parametrize("closure, expected", [
    ({"station": "JD-NOPE", "date": "2026-12-10", "reason": "装修"}, "station: unknown station code(s) JD-NOPE"),
    ({"station": "JD", "date": "2026-13-01", "reason": "装修"}, "date: '2026-13-01' is not a date"),
    ({"station": "JD", "from": "2026-12-10", "to": "2026-12-01", "reason": "装修"}, "is before from"),
    ({"station": "JD", "date": "2026-12-10"}, "reason: missing"),
    ({"station": "JD", "reason": "装修"}, "give date: (one day) or from: and to:"),
    ({"station": "JD-AT", "date": "2026-12-10", "reason": "又一次"}, "already closed by closure #1"),
])
def test_a_bad_closures_file_names_the_entry_and_the_field(loaded, tmp_path, closure, expected):
    data = copy.deepcopy(TEST_CLOSURES)
    data["closures"].append(closure)
    path = write_yaml(tmp_path / "closures.yml", data)
    with session_scope(loaded) as session:
        with pytest.raises(ServiceDataError) as error:
            ap.load_services(session, SERVICES_FILE, path)
    assert any(f"closure #3 ({closure['station']})" in p and expected in p for p in error.value.problems), \
        error.value.problems


def test_a_bad_file_changes_nothing(loaded, tmp_path):
    data = _minimal()
    data["services"][0]["capacity"] = -1
    with session_scope(loaded) as session:
        with pytest.raises(ServiceDataError):
            ap.load_services(session, write_yaml(tmp_path / "s.yml", data))
    with session_scope(loaded) as session:
        assert session.execute(select(func.count()).select_from(Service)).scalar_one() == 4


# --- the schedule -----------------------------------------------------------------------------

MORNING = ["09:00", "09:30", "10:00", "10:30", "11:00"]
AFTERNOON = ["13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30"]


def test_slots_on_a_normal_day(loaded):
    slots = slots_on(loaded, "JD", "report_in", THURSDAY)
    assert starts(slots) == MORNING + AFTERNOON  # whole 30-minute slots; 11:00—11:30 is the last
    assert all(s.free == 4 and s.end - s.start == dt.timedelta(minutes=30) for s in slots)
    assert slots[0].start == at(2026, 12, 3, 9) and str(slots[0].start.tzinfo) == "Asia/Shanghai"
    # 20-minute slots at a village station (8:30—11:00, 13:00—16:00).
    village = slots_on(loaded, "JD-AT-XT", "consultation", THURSDAY)
    assert starts(village)[:2] == ["08:30", "08:50"] and starts(village)[-1] == "15:40"


def test_slots_on_a_weekend(loaded):
    saturday, sunday = dt.date(2026, 12, 5), dt.date(2026, 12, 6)
    assert slots_on(loaded, "JD-AT", "report_in", saturday) == []
    assert starts(slots_on(loaded, "JD", "report_in", saturday)) == MORNING  # the centre opens Saturday mornings
    assert slots_on(loaded, "JD", "report_in", sunday) == []
    reason = check(loaded, "JD-AT", "report_in", at(2026, 12, 5, 9))
    assert (reason.reason, reason.closed_because) == ("closed_day", "weekly")
    assert ap.explain(reason) == "12月5日（周六）安亭镇退役军人服务站不办公。"


def test_slots_in_golden_week_and_on_a_makeup_saturday(loaded):
    now = at(2026, 9, 28, 8)
    golden_week = dt.date(2026, 10, 2)
    assert slots_on(loaded, "JD", "report_in", golden_week, now) == []
    reason = check(loaded, "JD", "report_in", at(2026, 10, 2, 9), now)
    assert (reason.reason, reason.closed_because, reason.holiday) == ("closed_day", "holiday", "国庆节")
    assert ap.explain(reason) == "10月2日（周五）是国庆节假期，嘉定区退役军人服务中心不办公。"
    # 2026-10-10 is a Saturday worked in exchange (调休): street stations open all day.
    makeup = dt.date(2026, 10, 10)
    assert makeup.weekday() == 5
    assert starts(slots_on(loaded, "JD-AT", "report_in", makeup, now)) == MORNING + AFTERNOON
    assert starts(slots_on(loaded, "JD", "report_in", makeup, now)) == MORNING + AFTERNOON
    with session_scope(loaded) as session:
        week = ap.free_slots(session, sid(session, "JD-AT"), "report_in", dt.date(2026, 10, 1),
                             dt.date(2026, 10, 11), now)
    assert sorted({s.start.date().day for s in week}) == [8, 9, 10]


def test_slots_on_a_closure_day(loaded):
    closed = dt.date(2026, 12, 10)  # a Thursday, JD-AT 站点装修
    assert slots_on(loaded, "JD-AT", "report_in", closed) == []
    assert slots_on(loaded, "JD-AT-HD", "consultation", closed) != []  # only that station
    reason = check(loaded, "JD-AT", "report_in", at(2026, 12, 10, 9))
    assert (reason.reason, reason.closed_because, reason.closure) == ("closed_day", "closure", "站点装修")
    assert ap.explain(reason) == "12月10日（周四）安亭镇退役军人服务站因站点装修暂停办公。"
    for code in ("JD-XCL", "JD-ZX"):
        assert slots_on(loaded, code, "report_in", dt.date(2026, 12, 14)) == []
    with session_scope(loaded) as session:
        station = session.get(Station, sid(session, "JD-AT"))
        assert "今日（站点装修）不办公" in describe(station, at(2026, 12, 10, 10))


def test_the_lead_time_and_the_past(loaded):
    now = at(2026, 12, 3, 9, 50)
    assert starts(slots_on(loaded, "JD", "report_in", THURSDAY, now))[:2] == ["10:30", "11:00"]
    assert check(loaded, "JD", "report_in", at(2026, 12, 3, 9, 30), now).reason == "past"
    too_soon = check(loaded, "JD", "report_in", at(2026, 12, 3, 10), now)
    assert too_soon.reason == "too_soon"
    assert "不足30分钟" in ap.explain(too_soon)
    assert check(loaded, "JD", "report_in", at(2026, 12, 3, 10, 30), now).ok
    assert slots_on(loaded, "JD", "report_in", dt.date(2026, 12, 2), now) == []  # yesterday


def test_the_booking_horizon(loaded):
    now = at(2026, 11, 2, 8)  # bookable up to 2026-12-02 (a Wednesday)
    with session_scope(loaded) as session:
        slots = ap.free_slots(session, sid(session, "JD"), "report_in", dt.date(2026, 11, 25),
                              dt.date(2026, 12, 10), now)
    assert max(s.start.date() for s in slots) == dt.date(2026, 12, 2)
    too_far = check(loaded, "JD", "report_in", at(2026, 12, 3, 9), now)
    assert too_far.reason == "too_far" and too_far.last_day == dt.date(2026, 12, 2)
    assert ap.explain(too_far) == "目前只能预约到12月2日（周三），12月3日（周四）还不能预约。"


def test_times_that_are_not_slots(loaded):
    lunch = check(loaded, "JD", "report_in", at(2026, 12, 3, 12))
    assert lunch.reason == "outside_hours"
    assert ap.explain(lunch) == "12:00不在办公时间内，12月3日（周四）的办公时间是9:00—11:30，13:30—17:00。"
    assert check(loaded, "JD", "report_in", at(2026, 12, 3, 11, 15)).reason == "not_slot_start"
    assert check(loaded, "JD", "report_in", at(2026, 12, 3, 9, 10)).reason == "not_slot_start"
    not_here = check(loaded, "JD", "preferential_card", at(2026, 12, 3, 9))
    assert not_here.reason == "not_offered"
    assert ap.explain(not_here) == "嘉定区退役军人服务中心不办理优待证办理预约。"
    assert slots_on(loaded, "JD", "preferential_card", THURSDAY) == []
    with session_scope(loaded) as session:
        with pytest.raises(LookupError):
            ap.free_slots(session, sid(session, "JD"), "no_such_service", THURSDAY, THURSDAY, NOW)


# --- alternatives -----------------------------------------------------------------------------


def test_alternatives_to_a_full_slot_are_the_closest_on_the_same_day(loaded):
    asked = at(2026, 12, 3, 14)
    for n in range(2):
        assert book(loaded, f"o-{n}", "JD-AT", "report_in", asked).ok
    full = check(loaded, "JD-AT", "report_in", asked)
    assert full.reason == "full" and ap.explain(full) == "12月3日（周四）14:00的时段已约满。"
    assert starts(alternatives(loaded, "JD-AT", "report_in", start=asked)) == ["13:30", "14:30", "15:00"]


def test_alternatives_to_a_time_outside_the_hours(loaded):
    found = alternatives(loaded, "JD", "report_in", start=at(2026, 12, 3, 12))
    assert starts(found) == ["10:30", "11:00", "13:30"]  # the nearest (90, 60, 90 minutes away), in time order
    assert {s.start.date() for s in found} == {THURSDAY}
    assert starts(alternatives(loaded, "JD", "report_in", start=at(2026, 12, 3, 9, 10), limit=1)) == ["09:00"]


def test_alternatives_to_a_closed_day_are_the_nearest_open_times(loaded):
    found = alternatives(loaded, "JD-AT", "report_in", start=at(2026, 12, 10, 10))  # 站点装修
    assert [(s.start.date(), s.start.strftime("%H:%M")) for s in found] == [  # the nearest, in time order
        (dt.date(2026, 12, 9), "09:30"), (dt.date(2026, 12, 9), "10:00"), (dt.date(2026, 12, 11), "10:00")]
    holiday = alternatives(loaded, "JD", "report_in", now=at(2026, 9, 28, 8), start=at(2026, 10, 5, 14), limit=2)
    assert [(s.start.date(), s.start.strftime("%H:%M")) for s in holiday] == [
        (dt.date(2026, 10, 8), "13:30"), (dt.date(2026, 10, 8), "14:00")]


def test_alternatives_to_a_day_past_the_window_are_its_last_times_earliest_first(loaded):
    found = alternatives(loaded, "JD", "report_in", day=dt.date(2027, 2, 1))  # the window ends 2026-12-30
    assert len(found) == 3 and all(s.start.date() <= dt.date(2026, 12, 30) for s in found)
    assert [s.start for s in found] == sorted(s.start for s in found)


def test_alternatives_for_a_part_of_a_day(loaded):
    found = alternatives(loaded, "JD", "report_in", day=THURSDAY, part="下午")
    assert starts(found) == ["13:30", "14:00", "14:30"] and {s.start.date() for s in found} == {THURSDAY}
    assert starts(alternatives(loaded, "JD", "report_in", day=THURSDAY, part="上午", limit=1)) == ["09:00"]
    # The centre has no Saturday afternoons: the nearest afternoons after it.
    saturday_pm = alternatives(loaded, "JD", "report_in", day=dt.date(2026, 12, 5), part="下午")
    assert [(s.start.date(), s.start.strftime("%H:%M")) for s in saturday_pm] == [
        (dt.date(2026, 12, 7), "13:30"), (dt.date(2026, 12, 7), "14:00"), (dt.date(2026, 12, 7), "14:30")]
    with pytest.raises(ValueError):
        alternatives(loaded, "JD", "report_in", day=THURSDAY, part="半夜")


def test_alternatives_for_a_range_with_nothing_free_are_the_nearest_after_it(loaded):
    now = at(2026, 9, 28, 8)
    found = alternatives(loaded, "JD-AT", "report_in", now=now, day=dt.date(2026, 10, 1),
                         latest_day=dt.date(2026, 10, 7))
    assert [(s.start.date(), s.start.strftime("%H:%M")) for s in found] == [
        (dt.date(2026, 10, 8), "09:00"), (dt.date(2026, 10, 8), "09:30"), (dt.date(2026, 10, 8), "10:00")]
    in_range = alternatives(loaded, "JD-AT", "report_in", now=now, day=dt.date(2026, 10, 9),
                            latest_day=dt.date(2026, 10, 12), part="下午")
    assert [(s.start.date(), s.start.strftime("%H:%M")) for s in in_range][0] == (dt.date(2026, 10, 9), "13:30")


def test_alternatives_beyond_the_horizon_and_in_the_past(loaded):
    last = dt.date(2026, 12, 30)
    found = alternatives(loaded, "JD", "report_in", day=dt.date(2027, 1, 5))
    assert found and all(s.start.date() <= last for s in found)
    earliest = alternatives(loaded, "JD", "report_in", now=at(2026, 12, 3, 9, 50), start=at(2026, 12, 3, 9))
    assert starts(earliest)[0] == "10:30"


# --- booking ---------------------------------------------------------------------------------


def test_book_takes_a_seat_and_queues_a_reminder_for_9_the_day_before(loaded):
    start = at(2026, 12, 3, 14, 30)
    result = book(loaded, "o-alice", "JD", "report_in", start)
    assert result.status is BookingStatus.BOOKED and result.ok
    view = result.appointment
    assert re.fullmatch(r"YY[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}", view.code)
    assert (view.service_code, view.station_name, view.start, view.end, view.status) == (
        "report_in", "嘉定区退役军人服务中心", start, at(2026, 12, 3, 15), "booked")
    assert seats(loaded, "JD", "report_in", start) == (1, 4)
    assert [s.free for s in slots_on(loaded, "JD", "report_in", THURSDAY)][6:9] == [4, 3, 4]
    [reminder] = outbox(loaded, "o-alice")
    assert reminder.kind == "appointment_reminder" and reminder.sent_at is None and reminder.attempts == 0
    assert as_utc(reminder.due_at) == at(2026, 12, 2, 9)
    assert reminder.payload["code"] == view.code
    assert reminder.payload["service"] == "退役报到" and reminder.payload["station"] == "嘉定区退役军人服务中心"
    assert reminder.payload["address"] == "上海市嘉定区博乐路118号"
    assert dt.datetime.fromisoformat(reminder.payload["start"]) == start
    assert reminder.payload["materials"][0] == "本人居民身份证"
    assert "12月3日（周四）14:30—15:00" in ap.reminder_text(reminder.payload)


def test_a_reminder_already_due_goes_out_at_once(loaded):
    now = at(2026, 12, 2, 15)  # the day before, after 9:00
    book(loaded, "o-late", "JD", "report_in", at(2026, 12, 3, 9), now)
    assert as_utc(outbox(loaded, "o-late")[0].due_at) == now


def test_a_double_submit_books_once(loaded):
    start = at(2026, 12, 3, 9)
    first = book(loaded, "o-alice", "JD", "report_in", start)
    again = book(loaded, "o-alice", "JD", "report_in", start)
    assert again.status is BookingStatus.DUPLICATE and not again.ok
    assert again.appointment.code == first.appointment.code
    assert seats(loaded, "JD", "report_in", start) == (1, 4)
    assert len(outbox(loaded, "o-alice")) == 1
    # A retry arriving after the lead time has passed still gets the same answer.
    late = book(loaded, "o-alice", "JD", "report_in", start, now=at(2026, 12, 3, 8, 50))
    assert late.status is BookingStatus.DUPLICATE


def test_a_fourth_open_booking_is_refused(loaded, vault):
    veteran = add_veteran(loaded, vault)
    for hour in (9, 10, 11):
        assert book(loaded, "o-alice", "JD", "report_in", at(2026, 12, 3, hour), veteran_id=veteran.veteran_id).ok
    fourth = book(loaded, "o-alice", "JD", "consultation", at(2026, 12, 4, 9))
    assert fourth.status is BookingStatus.LIMIT
    assert [v.start.hour for v in fourth.holding] == [9, 10, 11]
    # The same veteran from another WeChat account counts too.
    assert book(loaded, "o-alice-2", "JD", "consultation", at(2026, 12, 4, 9),
                veteran_id=veteran.veteran_id).status is BookingStatus.LIMIT
    assert book(loaded, "o-bob", "JD", "consultation", at(2026, 12, 4, 9)).ok
    # Once one is over, there is room again.
    assert book(loaded, "o-alice", "JD", "consultation", at(2026, 12, 4, 9), now=at(2026, 12, 3, 9, 40)).ok


def test_a_full_slot_is_refused(loaded):
    start = at(2026, 12, 3, 9)
    assert book(loaded, "o-1", "JD-AT-HD", "hardship_aid", start).ok  # 1 seat
    full = book(loaded, "o-2", "JD-AT-HD", "hardship_aid", start)
    assert full.status is BookingStatus.FULL and full.status.label == "该时段已约满"
    assert full.availability.reason == "full"
    assert seats(loaded, "JD-AT-HD", "hardship_aid", start) == (1, 1)
    assert outbox(loaded, "o-2") == []
    assert starts(slots_on(loaded, "JD-AT-HD", "hardship_aid", THURSDAY))[0] == "09:30"


def test_an_unavailable_time_books_nothing(loaded):
    result = book(loaded, "o-1", "JD", "report_in", at(2026, 12, 6, 9))  # a Sunday
    assert result.status is BookingStatus.UNAVAILABLE and result.availability.reason == "closed_day"
    assert book(loaded, "o-1", "JD", "report_in", at(2026, 12, 3, 9, 10)).availability.reason == "not_slot_start"
    with session_scope(loaded) as session:
        assert session.execute(select(func.count()).select_from(Slot)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Appointment)).scalar_one() == 0


def test_naive_times_are_beijing_time(loaded):
    result = book(loaded, "o-1", "JD", "report_in", dt.datetime(2026, 12, 3, 9))
    assert result.ok and result.appointment.start == at(2026, 12, 3, 9)


def test_cancel_frees_the_seat_and_drops_the_reminder(loaded):
    start = at(2026, 12, 3, 9)
    code = book(loaded, "o-1", "JD-AT-HD", "hardship_aid", start).appointment.code
    with session_scope(loaded) as session:
        assert ap.cancel(session, "o-2", code, NOW) is None  # not theirs
        cancelled = ap.cancel(session, "o-1", code.lower()[:5] + " " + code.lower()[5:], NOW)
    assert cancelled.status == "cancelled"
    assert seats(loaded, "JD-AT-HD", "hardship_aid", start) == (0, 1)
    assert outbox(loaded, "o-1") == []
    with session_scope(loaded) as session:
        assert ap.cancel(session, "o-1", code, NOW).status == "cancelled"  # twice is harmless
        assert ap.upcoming(session, "o-1", NOW) == []
    assert seats(loaded, "JD-AT-HD", "hardship_aid", start) == (0, 1)
    assert book(loaded, "o-2", "JD-AT-HD", "hardship_aid", start).ok


def test_an_appointment_that_has_begun_cannot_be_cancelled(loaded):
    start = at(2026, 12, 3, 9)
    code = book(loaded, "o-1", "JD", "report_in", start).appointment.code
    with session_scope(loaded) as session:
        view = ap.cancel(session, "o-1", code, at(2026, 12, 3, 9, 5))
    assert view.status == "booked"
    assert seats(loaded, "JD", "report_in", start) == (1, 4)


def test_reschedule_moves_the_booking(loaded):
    old_start, new_start = at(2026, 12, 3, 9), at(2026, 12, 4, 14)
    old = book(loaded, "o-1", "JD", "report_in", old_start).appointment
    with session_scope(loaded) as session:
        moved = ap.reschedule(session, "o-1", old.code, new_start, NOW)
    assert moved.status is BookingStatus.BOOKED and moved.appointment.code != old.code
    assert moved.appointment.start == new_start
    assert seats(loaded, "JD", "report_in", old_start) == (0, 4)
    assert seats(loaded, "JD", "report_in", new_start) == (1, 4)
    with session_scope(loaded) as session:
        assert ap.find(session, "o-1", old.code).status == "cancelled"
        assert [v.code for v in ap.upcoming(session, "o-1", NOW)] == [moved.appointment.code]
    [reminder] = outbox(loaded, "o-1")
    assert reminder.payload["code"] == moved.appointment.code and as_utc(reminder.due_at) == at(2026, 12, 3, 9)


def test_reschedule_keeps_the_old_booking_when_the_new_time_cannot_be_had(loaded):
    old_start, wanted = at(2026, 12, 3, 9), at(2026, 12, 4, 9)
    old = book(loaded, "o-1", "JD-AT-HD", "hardship_aid", old_start).appointment
    book(loaded, "o-2", "JD-AT-HD", "hardship_aid", wanted)
    with session_scope(loaded) as session:
        assert ap.reschedule(session, "o-1", old.code, wanted, NOW).status is BookingStatus.FULL
        assert ap.reschedule(session, "o-1", old.code, at(2026, 12, 5, 9), NOW).status is BookingStatus.UNAVAILABLE
        assert ap.reschedule(session, "o-1", old.code, old_start, NOW).status is BookingStatus.DUPLICATE
        assert ap.reschedule(session, "o-2", old.code, at(2026, 12, 4, 10), NOW).status is BookingStatus.NOT_FOUND
    with session_scope(loaded) as session:
        assert ap.find(session, "o-1", old.code).status == "booked"
    assert seats(loaded, "JD-AT-HD", "hardship_aid", old_start) == (1, 1)
    assert len(outbox(loaded, "o-1")) == 1


def test_reschedule_works_at_the_limit(loaded):
    codes = [book(loaded, "o-1", "JD", "report_in", at(2026, 12, 3, h)).appointment.code for h in (9, 10, 11)]
    with session_scope(loaded) as session:
        assert ap.reschedule(session, "o-1", codes[0], at(2026, 12, 4, 9), NOW).ok
        assert len(ap.upcoming(session, "o-1", NOW)) == 3


def test_someone_elses_code_reveals_nothing(loaded, vault):
    veteran = add_veteran(loaded, vault)
    code = book(loaded, "o-1", "JD", "report_in", at(2026, 12, 3, 9), veteran_id=veteran.veteran_id).appointment.code
    with session_scope(loaded) as session:
        assert ap.find(session, "o-2", code) is None
        assert ap.find(session, "", code) is None
        assert ap.find(session, "o-1", "YY00000000") is None
        assert ap.find(session, "o-1", code).code == code
        # The veteran, bound on another account, sees it.
        assert ap.find(session, "o-other", code, veteran_id=veteran.veteran_id).code == code
        assert [v.code for v in ap.upcoming(session, "o-other", NOW, veteran_id=veteran.veteran_id)] == [code]
        assert ap.upcoming(session, "o-other", NOW) == []


def test_the_database_refuses_overbooking_and_double_holding(loaded):
    start = at(2026, 12, 3, 9)
    code = book(loaded, "o-1", "JD-AT-HD", "hardship_aid", start).appointment.code
    with session_scope(loaded) as session:
        slot = session.execute(select(Slot)).scalar_one()
        row = session.execute(select(Appointment).where(Appointment.code == code)).scalar_one()
        columns = dict(openid="o-1", slot_id=slot.id, station_id=row.station_id, service_id=row.service_id,
                       start=row.start, status="booked", created_at=row.created_at)
    with pytest.raises(IntegrityError):
        with session_scope(loaded) as session:
            session.execute(update(Slot).values(booked=Slot.booked + 1))
    with pytest.raises(IntegrityError):
        with session_scope(loaded) as session:
            session.execute(insert(Appointment), [dict(columns, code="YYDUPL1CAT")])
    with session_scope(loaded) as session:  # a cancelled one beside it is fine
        session.execute(insert(Appointment), [dict(columns, code="YYCANCELED", status="cancelled",
                                                   cancelled_at=row.created_at)])


def test_describe_appointment(loaded):
    view = book(loaded, "o-1", "JD-AT", "preferential_card", at(2026, 12, 3, 14, 10)).appointment
    text = ap.describe_appointment(view)
    assert text.splitlines() == [
        "服务：优待证办理",
        "地点：安亭镇退役军人服务站（上海市嘉定区安亭镇墨玉南路1018号（安亭镇社区事务受理服务中心内））",
        "时间：12月3日（周四）14:10—14:30",
        "请携带：",
        "· 本人居民身份证",
        "· 近期免冠证件照（电子照片由工作人员现场采集的可不带）",
        f"预约码：{view.code}",
        f"咨询电话：{view.station_phone}",
        "温馨提示：申领前须已完成退役军人信息采集；具体办理要求以当地规定为准。",
    ]
    with session_scope(loaded) as session:
        cancelled = ap.cancel(session, "o-1", view.code, NOW)
    assert ap.describe_appointment(cancelled).splitlines()[0] == "服务：优待证办理（已取消）"
    assert "温馨提示" not in ap.describe_appointment(cancelled)


def test_a_makeup_day_is_named_in_the_summary(loaded):
    now = at(2026, 9, 28, 8)
    view = book(loaded, "o-1", "JD-AT", "report_in", at(2026, 10, 10, 9), now).appointment
    assert "时间：10月10日（周六，调休工作日）9:00—9:30" in ap.describe_appointment(view)


# --- unfollow --------------------------------------------------------------------------------


def test_unfollow_cancels_upcoming_bookings_and_unlinks_past_ones(loaded, vault):
    veteran = add_veteran(loaded, vault)
    past = book(loaded, "o-1", "JD", "report_in", at(2026, 12, 3, 9), veteran_id=veteran.veteran_id).appointment
    for day in (9, 11):
        assert book(loaded, "o-1", "JD-AT-HD", "hardship_aid", at(2026, 12, day, 9)).ok
    other = book(loaded, "o-2", "JD", "report_in", at(2026, 12, 11, 9)).appointment
    later = at(2026, 12, 5, 8)  # the first one is over by now
    with session_scope(loaded) as session:
        erasure.forget_openid(session, vault, "o-1", later)
    with session_scope(loaded) as session:
        rows = session.execute(select(Appointment).order_by(Appointment.start)).scalars().all()
        assert session.execute(select(func.count()).where(Appointment.openid == "o-1")).scalar_one() == 0
        mine = [r for r in rows if r.code != other.code]
        assert [(r.code == past.code, r.status, r.openid, r.veteran_id) for r in mine] == [
            (True, "booked", None, None), (False, "cancelled", None, None), (False, "cancelled", None, None)]
        assert ap.find(session, "o-2", other.code).status == "booked"
        assert ap.upcoming(session, "o-1", later) == []
    assert seats(loaded, "JD-AT-HD", "hardship_aid", at(2026, 12, 9, 9)) == (0, 1)
    assert outbox(loaded, "o-1") == [] and len(outbox(loaded, "o-2")) == 1


# --- what the booking form asks -------------------------------------------------------------


def request(factory, code, service, day=None, latest_day=None, start=None, part=None, now=NOW):
    with session_scope(factory) as session:
        return ap.check_request(session, sid(session, code), service, day, latest_day, start, part, now)


def test_check_request_for_an_exact_free_time(loaded):
    found = request(loaded, "JD", "report_in", THURSDAY, THURSDAY, dt.time(14))
    assert found.exact.start == at(2026, 12, 3, 14) and found.problem is None and found.alternatives == []


def test_check_request_for_a_time_that_cannot_be_had(loaded):
    found = request(loaded, "JD", "report_in", THURSDAY, THURSDAY, dt.time(12))
    assert found.exact is None and found.availability.reason == "outside_hours"
    assert found.problem.startswith("12:00不在办公时间内")
    assert starts(found.alternatives) == ["10:30", "11:00", "13:30"]


def test_check_request_for_a_bare_time_already_past_means_tomorrow(loaded):
    found = request(loaded, "JD", "report_in", start=dt.time(9), now=at(2026, 12, 2, 10))
    assert found.exact.start == at(2026, 12, 3, 9)
    assert request(loaded, "JD", "report_in", start=dt.time(11), now=at(2026, 12, 2, 10)).exact.start == \
        at(2026, 12, 2, 11)


def test_check_request_for_a_day_or_part_offers_its_earliest_slots(loaded):
    found = request(loaded, "JD", "report_in", THURSDAY, THURSDAY, part="下午")
    assert found.exact is None and found.problem is None
    assert starts(found.alternatives) == ["13:30", "14:00", "14:30"]
    earliest = request(loaded, "JD", "report_in")  # "越快越好": from now
    assert earliest.problem is None and earliest.alternatives[0].start == at(2026, 11, 30, 9)


@pytest.mark.parametrize("asked, problem", [
    (dict(day=dt.date(2026, 12, 5), part="下午"), "12月5日（周六）下午不办公，当天办公时间是9:00—11:30。"),
    (dict(day=dt.date(2026, 12, 6)), "12月6日（周日）嘉定区退役军人服务中心不办公。"),
    (dict(day=dt.date(2026, 12, 3), part="晚上"), "12月3日（周四）晚上不办公，当天办公时间是9:00—11:30，13:30—17:00。"),
    (dict(day=dt.date(2027, 1, 8)), "目前只能预约到12月30日（周三），2027年1月8日（周五）还不能预约。"),
    (dict(day=dt.date(2026, 12, 7), latest_day=dt.date(2026, 12, 6)), None),  # a backwards range: its first day
])
def test_check_request_says_why_a_day_has_nothing(loaded, asked, problem):
    found = request(loaded, "JD", "report_in", **asked)
    assert found.problem == problem
    assert found.alternatives


def test_a_date_said_after_this_years_has_passed_is_named_with_its_year(loaded):
    """"12月5号" on 7 December means next year's to the parser; the bot says which
    year it read, that this year's is over, and where the bookable days end: the
    window reaches 6 January 2027, whose holidays are not published (a data file
    leaves 2027 empty here), so the last bookable day is 31 December."""
    december_7 = at(2026, 12, 7, 22)
    found = request(loaded, "JD", "report_in", dt.date(2027, 12, 5), now=december_7)
    assert found.problem == ("今年的12月5日已经过去了。目前只能预约到12月31日（周四），2027年12月5日（周日）还不能预约。"
                             "2027年1月1日起的节假日安排尚未公布。")
    exact = check(loaded, "JD", "report_in", at(2027, 12, 5, 9), december_7)
    assert ap.explain(exact).startswith("今年的12月5日已经过去了。目前只能预约到12月31日（周四），")



def test_check_request_over_golden_week_offers_the_days_after(loaded):
    found = request(loaded, "JD-AT", "report_in", dt.date(2026, 10, 1), dt.date(2026, 10, 7), now=at(2026, 9, 28, 8))
    assert found.problem == "10月1日（周四）至10月7日（周三）没有可以预约的时段。"
    assert {s.start.date() for s in found.alternatives} == {dt.date(2026, 10, 8)}
    one_day = request(loaded, "JD-AT", "report_in", dt.date(2026, 10, 2), now=at(2026, 9, 28, 8))
    assert one_day.problem == "10月2日（周五）是国庆节假期，安亭镇退役军人服务站不办公。"


def test_check_request_for_a_full_day(loaded):
    for slot in slots_on(loaded, "JD-AT-HD", "hardship_aid", THURSDAY):
        assert book(loaded, f"o-{slot.start:%H%M}", "JD-AT-HD", "hardship_aid", slot.start).ok
    found = request(loaded, "JD-AT-HD", "hardship_aid", THURSDAY)
    assert found.problem == "12月3日（周四）的时段已约满。"
    assert found.alternatives[0].start.date() == dt.date(2026, 12, 4)


def test_services_by_the_words_users_say(loaded):
    with session_scope(loaded) as session:
        assert [s.code for s in ap.all_services(session)] == [
            "report_in", "preferential_card", "hardship_aid", "consultation"]
        for words, code in (("我要退伍报到", "report_in"), ("报道", "report_in"), ("想办优待证", "preferential_card"),
                            ("困难帮扶", "hardship_aid"), ("政策咨询", "consultation"), ("report_in", "report_in"),
                            ("我想咨询一下", "consultation")):
            assert ap.find_service(session, words).code == code, words
        assert ap.find_service(session, "你好") is None
        assert ap.service_name(session, "report_in") == "退役报到"


def test_what_the_chat_says(loaded):
    with session_scope(loaded) as session:
        summary = ap.describe_request(session, sid(session, "JD"), "report_in", at(2026, 12, 3, 9))
    assert summary.splitlines()[:3] == ["服务：退役报到", "地点：嘉定区退役军人服务中心（上海市嘉定区博乐路118号）",
                                        "时间：12月3日（周四）9:00—9:30"]
    assert "预约码" not in summary and "\n· 本人居民身份证\n" in summary
    assert not re.search(r"^\d+\. ", summary, re.M)  # no numbered list inside the summary
    booked = book(loaded, "o-1", "JD", "report_in", at(2026, 12, 3, 9))
    assert ap.short_description(booked.appointment) == "12月3日（周四）9:00 退役报到（嘉定区退役军人服务中心）"
    reply = ap.booking_reply(booked, "12345")
    assert reply.startswith("预约成功！\n服务：退役报到") and booked.appointment.code in reply
    duplicate = book(loaded, "o-1", "JD", "report_in", at(2026, 12, 3, 9))
    assert ap.booking_reply(duplicate).startswith("您已经预约了这个时段")
    sunday = book(loaded, "o-1", "JD", "report_in", at(2026, 12, 6, 9))
    assert ap.booking_reply(sunday) == "12月6日（周日）嘉定区退役军人服务中心不办公。请换一个时间。"
    with session_scope(loaded) as session:
        moved = ap.reschedule(session, "o-1", booked.appointment.code, at(2026, 12, 4, 9), NOW)
    assert moved.replaced.code == booked.appointment.code and moved.replaced.status == "cancelled"
    assert ap.booking_reply(moved).startswith(f"改约成功！原预约（{booked.appointment.code}）已取消")
    for hour in (10, 11):
        book(loaded, "o-1", "JD", "report_in", at(2026, 12, 4, hour))
    limit = book(loaded, "o-1", "JD", "report_in", at(2026, 12, 7, 9))
    assert ap.booking_reply(limit).splitlines()[1] == "1. 12月4日（周五）9:00 退役报到（嘉定区退役军人服务中心）"
    for n in range(2):
        book(loaded, f"o-h{n}", "JD-AT-HD", "hardship_aid", at(2026, 12, 3, 9))
    full = book(loaded, "o-h2", "JD-AT-HD", "hardship_aid", at(2026, 12, 3, 9))
    assert ap.booking_reply(full, "12345") == "很抱歉，12月3日（周四）9:00的名额刚刚约满了，请换一个时间。如有疑问，请致电12345。"
    assert ap.booking_reply(ap.BookingResult(BookingStatus.NOT_FOUND)) == "没有找到这个预约，请核对预约码。"
