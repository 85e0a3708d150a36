"""The console's 预约 pages: a station's day with its slots and bookings, recording who
came (and undoing it), the data scope, CSRF and the audit trail. Through the real
aiohttp application, on SQLite and on PostgreSQL; bookings are made by the real
booking service. The console's clock is fixed (bot.console.appointments.now_utc), so
nothing depends on today's date; holidays come from chinesecalendar."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from types import SimpleNamespace

import pytest
import yaml
from sqlalchemy import select

import bot.console.appointments as pages
from bot.db.models import Appointment, AuditEntry, Slot, StaffAccount, Station
from bot.db.session import as_utc, session_scope
from bot.services import appointments as ap
from bot.services.appointments import BookingStatus
from bot.services.stations import SHANGHAI
from bot.settings import PROJECT_ROOT
from tests.console.helpers import audit_actions, form_csrf, session_token, sign_in
from tests.services.veterans import add_veteran
from tests.conftest import station_id

SERVICES_FILE = PROJECT_ROOT / "data" / "services.yml"
BOOKED_AT = dt.datetime(2026, 11, 30, 8, tzinfo=SHANGHAI)  # a Monday; bookable up to 2026-12-30
DAY = dt.date(2026, 12, 3)  # a Thursday: 安亭 opens 9:00—11:30 and 13:30—17:00
CLOSED_FOR_WORKS = dt.date(2026, 12, 10)
NATIONAL_DAY = dt.date(2026, 10, 1)  # 国庆节, a Thursday
TODAY_HEADING = '<h2>12月3日（周四） <span class="muted">今天</span></h2>'
ID_NUMBER_LIKE = re.compile(r"\d{17}[\dX]|1[3-9]\d{9}")


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI)


@pytest.fixture
def clock(monkeypatch):
    """The console's clock: 10:00 on DAY unless a test moves it."""
    now = SimpleNamespace(value=at(DAY, 10))
    monkeypatch.setattr(pages, "now_utc", lambda: now.value.astimezone(dt.timezone.utc))
    return now


def book(factory, openid: str, code: str, service: str, start: dt.datetime, veteran_id=None) -> ap.AppointmentView:
    with session_scope(factory) as session:
        station = session.execute(select(Station.id).where(Station.code == code)).scalar_one()
        result = ap.book(session, openid, station, service, start, BOOKED_AT, veteran_id=veteran_id)
    assert result.status is BookingStatus.BOOKED, result.status
    return result.appointment


def row(factory, code: str) -> Appointment:
    with session_scope(factory) as session:
        return session.execute(select(Appointment).where(Appointment.code == code)).scalar_one()


def appointment_id(factory, code: str) -> int:
    return row(factory, code).id


def staff_id(factory, username: str) -> int:
    with session_scope(factory) as session:
        return session.execute(select(StaffAccount.id).where(StaffAccount.username == username)).scalar_one()


def audit_rows(factory, action: str):
    with session_scope(factory) as session:
        return session.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
                               ).scalars().all()


@pytest.fixture
def booked(accounts, vault, tmp_path):
    """The services of data/services.yml, and on DAY at 安亭 (JD-AT): 9:00 退役报到 full
    (张三明, bound, and an unbound user), 14:00 cancelled, 15:00 booked; one the next day;
    a 9:00 one at 马陆 (JD-ML); and one at 安亭 on a day closed afterwards."""
    with session_scope(accounts) as session:
        ap.load_services(session, SERVICES_FILE, now=BOOKED_AT)
    veteran = add_veteran(accounts, vault, name="张三明", phone="13812345678")
    codes = {
        "zhang": book(accounts, "o-zhang", "JD-AT", "report_in", at(DAY, 9), veteran.veteran_id).code,
        "unbound": book(accounts, "o-unbound", "JD-AT", "report_in", at(DAY, 9)).code,
        "cancelled": book(accounts, "o-cancel", "JD-AT", "report_in", at(DAY, 14)).code,
        "afternoon": book(accounts, "o-later", "JD-AT", "report_in", at(DAY, 15)).code,
        "tomorrow": book(accounts, "o-tomorrow", "JD-AT", "consultation", at(DAY + dt.timedelta(days=1), 9)).code,
        "malu": book(accounts, "o-malu", "JD-ML", "report_in", at(DAY, 9)).code,
        "stranded": book(accounts, "o-stranded", "JD-AT", "preferential_card", at(CLOSED_FOR_WORKS, 9, 20)).code,
    }
    with session_scope(accounts) as session:
        assert ap.cancel(session, "o-cancel", codes["cancelled"], BOOKED_AT).status == "cancelled"
    # A closure added after the booking on that day was made.
    closures = tmp_path / "closures.yml"
    closures.write_text(yaml.safe_dump({"closures": [
        {"station": "JD-AT", "date": CLOSED_FOR_WORKS.isoformat(), "reason": "站点装修"}]}, allow_unicode=True),
        encoding="utf-8")
    with session_scope(accounts) as session:
        ap.load_services(session, SERVICES_FILE, closures, now=BOOKED_AT)
    return SimpleNamespace(codes=codes, veteran=veteran)


def day_url(code: str = "JD-AT", day: dt.date = DAY) -> str:
    return f"/console/appointments?station={code}&day={day.isoformat()}"


def slot_row(html: str, start: str) -> str:
    """The table row (and the rows under it) of a slot starting at ``start`` (9:00)."""
    match = re.search(rf"<td[^>]*>{start}—.*?</tr>", html, re.S)
    assert match, f"no slot at {start}"
    return match.group(0)


async def switch(client, username: str) -> None:
    """Sign in as someone else in the same browser (the old session's cookie dropped)."""
    client.session.cookie_jar.clear()
    assert (await sign_in(client, username)).status == 303


async def mark(client, factory, username: str, code: str, kind: str, csrf=None):
    path = f"/console/appointments/{appointment_id(factory, code)}/{kind}"
    csrf = session_token(factory, username, path) if csrf is None else csrf
    return await client.post(path, data={"csrf": csrf}, allow_redirects=False)


# --- the day view --------------------------------------------------------------------------


async def test_day_view_lists_every_slot_with_seats_and_the_bookings(console_client, accounts, booked, clock, vault):
    assert (await sign_in(console_client, "wangkz")).status == 303
    response = await console_client.get(day_url())
    html = await response.text()
    assert response.status == 200
    assert "安亭镇退役军人服务站" in html and TODAY_HEADING in html
    assert "办公时间：9:00—11:30，13:30—17:00" in html
    assert "当日预约3人：已办理0人，未到场0人，尚未登记3人；另有已取消1个。" in html
    for heading in ("退役报到", "优待证办理", "帮扶申请", "政策咨询"):  # what 安亭 offers
        assert f"<h2>{heading}</h2>" in html
    assert "每个时段30分钟，可约2人" in html

    report_in = html.split("<h2>退役报到</h2>")[1].split("<h2>")[0]
    # Every slot of the day's hours, booked or free: 5 in the morning, 7 in the afternoon.
    starts = re.findall(r"<td[^>]*>(\d\d?:\d\d)—\d\d?:\d\d", report_in)
    assert starts == ["9:00", "9:30", "10:00", "10:30", "11:00",
                      "13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30"]
    nine = slot_row(report_in, "9:00")
    assert "2/2" in nine and booked.codes["zhang"] in nine and "张三明" in nine
    nine_block = report_in.split("9:00—9:30")[1].split("9:30—10:00")[0]
    assert booked.codes["unbound"] in nine_block and "未绑定身份" in nine_block
    assert nine_block.count("已预约") == 2
    two = report_in.split("14:00—14:30")[1].split("14:30—15:00")[0]
    assert "0/2" in two and booked.codes["cancelled"] in two and "已取消" in two  # the seat is free again
    assert "0/2" in slot_row(report_in, "16:30") and "无预约" in slot_row(report_in, "16:30")
    # Other stations' and other days' bookings are not here; nor any ID or phone number.
    assert booked.codes["malu"] not in html and booked.codes["tomorrow"] not in html
    assert booked.veteran.id_number not in html and "13812345678" not in html
    # (The forms' CSRF tokens are hex strings, which may hold long runs of digits.)
    assert not ID_NUMBER_LIKE.search(re.sub(r'name="csrf" value="[0-9a-f]+"', "", html)) and "o-zhang" not in html
    assert "<script" not in html

    # Only 安亭 and its communities in the station list: never 马陆.
    options = re.findall(r'<option value="([^"]+)"', html)
    assert options[0] == "JD-AT" and all(o.startswith("JD-AT") for o in options) and len(options) == 5
    # Days before and after.
    assert 'href="/console/appointments?station=JD-AT&amp;day=2026-12-02"' in html
    assert 'href="/console/appointments?station=JD-AT&amp;day=2026-12-04"' in html

    [entry] = audit_rows(accounts, "appointments.view")
    assert (entry.staff_id, entry.object_type, entry.object_id, entry.detail) == (
        staff_id(accounts, "wangkz"), "station", str(station_id(accounts, "JD-AT")), "2026-12-03")


async def test_default_station_and_day_and_a_bad_date(console_client, accounts, booked, clock):
    assert (await sign_in(console_client, "zhoumq")).status == 303
    html = await (await console_client.get("/console/appointments")).text()
    assert "预约 · 马陆镇退役军人服务站" in html and TODAY_HEADING in html
    assert booked.codes["malu"] in html
    html = await (await console_client.get("/console/appointments?day=2026-13-45")).text()
    assert "日期格式有误" in html and TODAY_HEADING in html

    await switch(console_client, "admin1")
    html = await (await console_client.get("/console/appointments")).text()
    assert "预约 · 嘉定区退役军人服务中心" in html  # the first station; admins have none of their own
    html = await (await console_client.get(f"/console/appointments?station={station_id(accounts, 'JD-AT')}"
                                           f"&day={DAY.isoformat()}")).text()
    assert "预约 · 安亭镇退役军人服务站" in html and booked.codes["zhang"] in html  # by id as well as by code


async def test_closed_days_show_why(console_client, accounts, booked, clock):
    assert (await sign_in(console_client, "wangkz")).status == 303
    html = await (await console_client.get(day_url(day=NATIONAL_DAY))).text()
    assert "10月1日（周四）是国庆节假期，安亭镇退役军人服务站不办公。" in html
    assert "办公时间" not in html and "当日没有预约。" in html and "<table>" not in html

    html = await (await console_client.get(day_url(day=dt.date(2026, 12, 5)))).text()
    assert "12月5日（周六）安亭镇退役军人服务站不办公。" in html

    # A closure published after a booking was made on that day: the reason, and the booking.
    html = await (await console_client.get(day_url(day=CLOSED_FOR_WORKS))).text()
    assert "12月10日（周四）安亭镇退役军人服务站因站点装修暂停办公。" in html
    assert "当天仍有闭站安排公布前约定的预约" in html
    card = html.split("<h2>优待证办理</h2>")[1].split("</table>")[0]
    assert booked.codes["stranded"] in card and "9:20—9:40" in card and "1/2" in card
    assert "<h2>退役报到</h2>" not in html  # no slots and no bookings: nothing to show


# --- recording who came --------------------------------------------------------------------


async def test_mark_attended_and_no_show(console_client, accounts, booked, clock):
    assert (await sign_in(console_client, "wangkz")).status == 303
    html = await (await console_client.get(day_url())).text()
    zhang = appointment_id(accounts, booked.codes["zhang"])
    unbound = appointment_id(accounts, booked.codes["unbound"])
    afternoon = appointment_id(accounts, booked.codes["afternoon"])
    # The 9:00 slot has begun: both buttons; 15:00 has not: arrival (early) only; cancelled: none.
    for path in (f"/console/appointments/{zhang}/attended", f"/console/appointments/{zhang}/no-show",
                 f"/console/appointments/{afternoon}/attended"):
        assert f'action="{path}"' in html
    assert f"/console/appointments/{afternoon}/no-show" not in html
    assert f"/console/appointments/{appointment_id(accounts, booked.codes['cancelled'])}/" not in html

    path = f"/console/appointments/{zhang}/attended"
    response = await console_client.post(path, data={"csrf": form_csrf(html, path)}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == (f"/console/appointments?station=JD-AT&day=2026-12-03"
                                            f"&done=attended&appointment={zhang}#a{zhang}")
    html = await (await console_client.get(response.headers["Location"].split("#")[0])).text()
    assert f"预约{booked.codes['zhang']}已登记为“已办理”。" in html
    row_html = html.split(f'id="a{zhang}"')[1].split("</tr>")[0]
    assert "已办理" in row_html and "王科长 10:00登记" in row_html and "撤销登记" in row_html
    assert "当日预约3人：已办理1人，未到场0人，尚未登记2人" in html

    path = f"/console/appointments/{unbound}/no-show"
    response = await console_client.post(path, data={"csrf": form_csrf(html, path)}, allow_redirects=False)
    assert response.status == 303

    saved = row(accounts, booked.codes["zhang"])
    assert saved.status == "attended" and saved.marked_by == staff_id(accounts, "wangkz")
    assert as_utc(saved.marked_at) == at(DAY, 10).astimezone(dt.timezone.utc) and saved.cancelled_at is None
    assert row(accounts, booked.codes["unbound"]).status == "no_show"
    with session_scope(accounts) as session:  # the seats stay taken: the time has been used
        assert session.execute(select(Slot.booked).where(Slot.id == saved.slot_id)).scalar_one() == 2

    attended, no_show = audit_rows(accounts, "appointments.attended"), audit_rows(accounts, "appointments.no_show")
    assert [(e.object_type, e.object_id) for e in attended] == [("appointment", str(zhang))]
    assert [e.object_id for e in no_show] == [str(unbound)]
    assert booked.codes["zhang"] in attended[0].detail and "已办理" in attended[0].detail
    assert audit_actions(accounts).count("appointments.view") == 2  # every opening of the page

    # Arriving early for the 15:00 slot the same morning.
    response = await mark(console_client, accounts, "wangkz", booked.codes["afternoon"], "attended")
    assert response.status == 303 and row(accounts, booked.codes["afternoon"]).status == "attended"


async def test_refusals_are_polite_and_change_nothing(console_client, accounts, booked, clock):
    assert (await sign_in(console_client, "wangkz")).status == 303
    cases = [
        ("afternoon", "no-show", "的时段（12月3日（周四）15:00）尚未开始，不能登记为未到场。"),
        ("tomorrow", "attended", "的办理时间是12月4日（周五）9:00，尚未到办理当天，不能登记。"),
        ("tomorrow", "no-show", "尚未到办理当天，不能登记。"),
        ("cancelled", "attended", "已取消，不能登记到场情况。"),
        ("cancelled", "no-show", "已取消，不能登记到场情况。"),
        ("zhang", "undo", "目前为“已预约”，没有可撤销的登记。"),
    ]
    for name, kind, words in cases:
        before = row(accounts, booked.codes[name])
        response = await mark(console_client, accounts, "wangkz", booked.codes[name], kind)
        html = await response.text()
        assert response.status == 409, (name, kind)
        message = re.search(r'<div class="message">(.*?)</div>', html).group(1)
        assert message.startswith(f"预约{booked.codes[name]}") and message.endswith(words), message
        assert "安亭镇退役军人服务站" in html  # the day view again, as it stands
        after = row(accounts, booked.codes[name])
        assert (after.status, after.marked_at, after.marked_by) == (before.status, None, None)
    for action in ("appointments.attended", "appointments.no_show", "appointments.undo"):
        assert audit_rows(accounts, action) == []


async def test_two_staff_marking_at_once_record_it_once(console_client, aiohttp_client, accounts, booked, clock):
    """wangkz and district1 (who also sees 安亭) both click for the same booking: one
    record is made; the other is told who made it."""
    other = await aiohttp_client(console_client.server)
    assert (await sign_in(console_client, "wangkz")).status == 303
    assert (await sign_in(other, "district1")).status == 303
    code = booked.codes["zhang"]
    responses = await asyncio.gather(mark(console_client, accounts, "wangkz", code, "attended"),
                                     mark(other, accounts, "district1", code, "no-show"))
    statuses = sorted(r.status for r in responses)
    assert statuses == [303, 409]
    refused = await next(r for r in responses if r.status == 409).text()
    saved = row(accounts, code)
    winner = {"attended": "王科长", "no_show": "赵主任"}[saved.status]
    assert f"预约{code}已登记为“{ap.STATUS_NAMES[saved.status]}”（{winner}，10:00登记），无需重复登记。" in refused
    marks = audit_rows(accounts, "appointments.attended") + audit_rows(accounts, "appointments.no_show")
    assert len(marks) == 1

    # A second click on the same button later changes nothing either.
    response = await mark(console_client, accounts, "wangkz", code, "attended")
    assert response.status == 409 and "无需重复登记" in await response.text()
    assert row(accounts, code).status == saved.status


async def test_undo_the_same_day_only(console_client, accounts, booked, clock):
    assert (await sign_in(console_client, "wangkz")).status == 303
    code = booked.codes["zhang"]
    assert (await mark(console_client, accounts, "wangkz", code, "no-show")).status == 303
    clock.value = at(DAY, 10, 5)
    response = await mark(console_client, accounts, "wangkz", code, "undo")
    assert response.status == 303 and "done=undo" in response.headers["Location"]
    html = await (await console_client.get(response.headers["Location"].split("#")[0])).text()
    assert f"预约{code}的登记已撤销，恢复为“已预约”。" in html
    saved = row(accounts, code)
    assert (saved.status, saved.marked_at, saved.marked_by) == ("booked", None, None)
    assert len(audit_rows(accounts, "appointments.undo")) == 1

    # Recorded again, then the next day: too late to undo.
    assert (await mark(console_client, accounts, "wangkz", code, "attended")).status == 303
    clock.value = at(DAY + dt.timedelta(days=1), 9)
    html = await (await console_client.get(day_url())).text()
    assert "撤销登记" not in html
    response = await mark(console_client, accounts, "wangkz", code, "undo")
    assert response.status == 409 and "不是今天所做，不能撤销" in await response.text()
    assert row(accounts, code).status == "attended"


# --- who may see and do what ---------------------------------------------------------------


async def test_another_areas_station_and_booking_are_not_found(console_client, accounts, booked, clock):
    assert (await sign_in(console_client, "wangkz")).status == 303
    nowhere = await console_client.get(day_url("NO-SUCH"))
    nowhere_body = await nowhere.text()
    for station in ("JD-ML", str(station_id(accounts, "JD-ML")), "JD", "99999"):
        response = await console_client.get(day_url(station))
        assert response.status == 404 and await response.text() == nowhere_body, station
    assert booked.codes["malu"] not in nowhere_body

    malu = appointment_id(accounts, booked.codes["malu"])
    nonexistent = "/console/appointments/999999/attended"
    missing = await console_client.post(nonexistent, data={"csrf": session_token(accounts, "wangkz", nonexistent)},
                                        allow_redirects=False)
    missing_body = await missing.text()
    assert missing.status == 404
    for kind in ("attended", "no-show", "undo"):
        response = await mark(console_client, accounts, "wangkz", booked.codes["malu"], kind)
        assert response.status == 404 and await response.text() == missing_body
    assert row(accounts, booked.codes["malu"]).status == "booked"
    assert not any(a.startswith("appointments.") and a != "appointments.view" for a in audit_actions(accounts))
    assert audit_rows(accounts, "appointments.view") == []  # nothing was shown

    # 马陆's own staff, and the district, can.
    await switch(console_client, "zhoumq")
    assert (await mark(console_client, accounts, "zhoumq", booked.codes["malu"], "attended")).status == 303
    assert row(accounts, booked.codes["malu"]).marked_by == staff_id(accounts, "zhoumq")
    await switch(console_client, "district1")
    response = await console_client.get(day_url("JD-ML"))
    assert response.status == 200 and booked.codes["malu"] in await response.text()
    assert f"/console/appointments/{malu}/undo" in await (await console_client.get(day_url("JD-ML"))).text()


async def test_trainers_are_refused(console_client, accounts, booked, clock):
    assert (await sign_in(console_client, "trainer1")).status == 303
    response = await console_client.get(day_url())
    html = await response.text()
    assert response.status == 403 and "无权查看此页面" in html and booked.codes["zhang"] not in html
    response = await mark(console_client, accounts, "trainer1", booked.codes["zhang"], "attended")
    assert response.status == 403
    assert row(accounts, booked.codes["zhang"]).status == "booked"
    assert 'href="/console/appointments"' not in await (await console_client.get("/console")).text()


async def test_a_post_without_the_forms_token_is_refused(console_client, accounts, booked, clock):
    assert (await sign_in(console_client, "wangkz")).status == 303
    zhang, unbound = (appointment_id(accounts, booked.codes[n]) for n in ("zhang", "unbound"))
    for data in ({}, {"csrf": "forged"},
                 # a real token, but of another booking's form
                 {"csrf": session_token(accounts, "wangkz", f"/console/appointments/{unbound}/attended")}):
        response = await console_client.post(f"/console/appointments/{zhang}/attended", data=data,
                                             allow_redirects=False)
        assert response.status == 403 and "页面已失效" in await response.text()
    assert row(accounts, booked.codes["zhang"]).status == "booked"
    assert audit_rows(accounts, "appointments.attended") == []


async def test_the_audit_log_names_the_actions(console_client, accounts, booked, clock):
    assert (await sign_in(console_client, "wangkz")).status == 303
    await console_client.get(day_url())
    assert (await mark(console_client, accounts, "wangkz", booked.codes["zhang"], "attended")).status == 303
    assert (await mark(console_client, accounts, "wangkz", booked.codes["zhang"], "undo")).status == 303
    await switch(console_client, "admin1")
    html = await (await console_client.get("/console/audit")).text()
    for label in ("查看预约日程", "登记已到场", "撤销到场登记"):
        assert label in html


# --- the service underneath ----------------------------------------------------------------


def test_day_schedule_counts_seats_and_lists_bookings(accounts, booked):
    with session_scope(accounts) as session:
        schedule = ap.day_schedule(session, station_id(accounts, "JD-AT"), DAY)
    assert schedule.periods and schedule.closed_because is None and not schedule.makeup
    report_in = next(s for s in schedule.services if s.service_code == "report_in")
    assert report_in.capacity == 2 and len(report_in.slots) == 12
    nine = report_in.slots[0]
    assert (nine.start, nine.capacity, nine.booked, nine.free) == (at(DAY, 9), 2, 2, 0)
    assert [b.veteran_name for b in nine.bookings] == ["张三明", None]
    assert all(s.in_hours for s in report_in.slots)
    hardship = next(s for s in schedule.services if s.service_code == "hardship_aid")
    assert all((s.capacity, s.booked, s.bookings) == (1, 0, ()) for s in hardship.slots)

    with session_scope(accounts) as session:
        closed = ap.day_schedule(session, station_id(accounts, "JD-AT"), CLOSED_FOR_WORKS)
        holiday = ap.day_schedule(session, station_id(accounts, "JD-AT"), NATIONAL_DAY)
    assert (closed.closed_because, closed.closure, closed.periods) == ("closure", "站点装修", ())
    # The booking made before the closure keeps its slot, outside the (now empty) hours.
    kept = [(s.service_code, [(x.start, x.in_hours, x.booked) for x in s.slots]) for s in closed.services if s.slots]
    assert kept == [("preferential_card", [(at(CLOSED_FOR_WORKS, 9, 20), False, 1)])]
    assert (holiday.closed_because, holiday.holiday) == ("holiday", "国庆节")
    assert not any(s.slots for s in holiday.services)


@pytest.mark.parametrize("meanwhile, expected", [("cancel", "cancelled"), ("colleague", "no_show")])
def test_a_change_between_the_check_and_the_record(accounts, booked, meanwhile, expected):
    """Someone else changes the booking after this staff member's check: the guarded
    update refuses the record instead of overwriting theirs."""
    code = booked.codes["zhang" if meanwhile == "colleague" else "afternoon"]
    identifier = appointment_id(accounts, code)
    real_booking = ap._booking
    calls = []

    def stale_then_real(session, wanted):
        found = real_booking(session, wanted)
        if not calls:  # the staff member's check saw it booked; then the user cancelled
            calls.append(1)
            with session_scope(accounts) as other:
                if meanwhile == "cancel":
                    ap.cancel(other, "o-later", code, at(DAY, 10))
                else:
                    assert ap.mark_no_show(other, wanted, staff_id(accounts, "district1"), at(DAY, 10)).ok
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ap, "_booking", stale_then_real)
        with session_scope(accounts) as session:
            result = ap.mark_attended(session, identifier, staff_id(accounts, "wangkz"), at(DAY, 10, 30))
    assert result.status is {"cancel": ap.MarkStatus.CANCELLED, "colleague": ap.MarkStatus.ALREADY}[meanwhile]
    assert result.booking.status == expected and row(accounts, code).status == expected
    if meanwhile == "colleague":
        assert row(accounts, code).marked_by == staff_id(accounts, "district1")
        assert "（赵主任，10:00登记），无需重复登记" in result.message


def test_undo_is_refused_when_the_user_has_booked_the_slot_again(accounts, booked):
    """Recorded as come early for 15:00, then the same user books 15:00 again: putting
    the first back to 已预约 would hold one slot twice (the unique index), so it is refused."""
    code = booked.codes["afternoon"]
    identifier = appointment_id(accounts, code)
    with session_scope(accounts) as session:
        assert ap.mark_attended(session, identifier, staff_id(accounts, "wangkz"), at(DAY, 10)).ok
    with session_scope(accounts) as session:
        again = ap.book(session, "o-later", station_id(accounts, "JD-AT"), "report_in", at(DAY, 15), at(DAY, 10, 5))
    assert again.status is BookingStatus.BOOKED
    with session_scope(accounts) as session:
        result = ap.undo_mark(session, identifier, at(DAY, 10, 10))
    assert result.status is ap.MarkStatus.CONFLICT and "重新预约了同一时段" in result.message
    assert row(accounts, code).status == "attended"
