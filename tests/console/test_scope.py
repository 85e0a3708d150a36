"""Data scope, every kind of record in one place: a station account asks for each kind of
record of another station's area — by URL, and by a form post carrying a valid token for
that path — and gets exactly the page a record that does not exist gets (404), with
nothing changed. The neighbouring station's account opens the same records.

Kinds: a handoff (queue entry, transcript, its live feed, claim, reply, note, hand
back), a conversation (take over), a complaint (page, every workflow step, note, phone
reveal, take over), a station's day of appointments, an appointment (arrived, no-show,
undo)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.db.models import Appointment, AuditEntry, Handoff, WechatBinding
from bot.db.session import session_scope
from bot.gateway.app import PathOnlyAccessLogger
from bot.services import appointments as ap
from bot.services import complaints, handoff
from bot.services.appointments import BookingStatus
from bot.services.stations import SHANGHAI
from bot.settings import PROJECT_ROOT
from tests.console.helpers import build_console_app, make_settings, session_token, sign_in
from tests.services.veterans import add_veteran
from tests.conftest import station_id

BOOKED_AT = dt.datetime(2026, 11, 30, 8, tzinfo=SHANGHAI)
VISIT = dt.datetime(2026, 12, 3, 9, tzinfo=SHANGHAI)  # a Thursday 9:00, 马陆 open


@pytest.fixture
def malu(accounts, vault, tmp_path):
    """One record of each kind in 马陆镇's area (JD-ML)."""
    now = dt.datetime.now(dt.timezone.utc)
    ml = station_id(accounts, "JD-ML")
    veteran = add_veteran(accounts, vault, name="钱卫东")
    with session_scope(accounts) as session:
        from bot.db.models import Veteran

        session.get(Veteran, veteran.veteran_id).station_id = ml
        session.add(WechatBinding(openid="o-malu", veteran_id=veteran.veteran_id))
    with session_scope(accounts) as session:
        ap.load_services(session, PROJECT_ROOT / "data" / "services.yml", now=BOOKED_AT)
        booking = ap.book(session, "o-malu", ml, "report_in", VISIT, BOOKED_AT, veteran_id=veteran.veteran_id)
        assert booking.status is BookingStatus.BOOKED
        case = complaints.register(session, vault, "o-malu", veteran.veteran_id, None, "马陆镇的补贴一直没有发放",
                                   "马陆镇", ml, "case_phone", "13912345678", False, now)
        queued = handoff.open_handoff(session, "o-malu", "request_human", now, station_id=ml)
    appointment = booking.appointment
    with session_scope(accounts) as session:
        appointment_id = session.execute(select(Appointment.id).where(Appointment.code == appointment.code)
                                         ).scalar_one()
    return {"handoff": queued.id, "case": case.id, "appointment": appointment_id}


@pytest.fixture
async def client(aiohttp_server, aiohttp_client, database_url, tmp_path, accounts, vault):
    settings = make_settings(database_url, tmp_path, VETBOT_TRACKER_DB=str(tmp_path / "tracker.db"))
    server = await aiohttp_server(build_console_app(settings, accounts, vault), access_log_class=PathOnlyAccessLogger)
    return await aiohttp_client(server)


def requests_for(records):
    h, c, a = records["handoff"], records["case"], records["appointment"]
    gets = [f"/console/handoffs/{h}", f"/console/handoffs/{h}/live?after=0&sig=stale&notes=0",
            f"/console/complaints/{c}", "/console/appointments?station=JD-ML&day=2026-12-03",
            "/console/appointments?station=JD-ML-DY&day=2026-12-03"]
    posts = [(f"/console/handoffs/{h}/{action}", {"text": "看看"}) for action in ("claim", "reply", "note", "close")]
    posts += [("/console/conversations/take-over", {"openid": "o-malu"})]
    posts += [(f"/console/complaints/{c}/{action}", form) for action, form in (
        ("classify", {"category": "其他", "assigned_to": "优抚科", "priority": "3"}), ("reject", {"reason": "看看"}),
        ("handle", {}), ("answer", {"answer": "看看"}), ("follow-up", {}), ("close", {}), ("note", {"note": "看看"}),
        ("phone", {}), ("take-over", {}))]
    posts += [(f"/console/appointments/{a}/{action}", {}) for action in ("attended", "no-show", "undo")]
    return gets, posts


def snapshot(factory):
    with session_scope(factory) as session:
        return (session.execute(select(Handoff.state, Handoff.claimed_by)).all(),
                session.execute(select(Appointment.status)).all(),
                [c.state for c in complaints.list_cases(session, now=dt.datetime.now(dt.timezone.utc))])


async def test_every_kind_of_record_outside_the_area_is_not_found(client, accounts, malu):
    await sign_in(client, "wangkz")  # 安亭镇
    missing = await client.get("/console/complaints/99999")
    assert missing.status == 404
    body = await missing.text()
    before = snapshot(accounts)
    gets, posts = requests_for(malu)
    for path in gets:
        response = await client.get(path)
        assert response.status == 404 and await response.text() == body, path
    for path, form in posts:
        response = await client.post(path, data=dict(form, csrf=session_token(accounts, "wangkz", path)),
                                     allow_redirects=False)
        assert response.status == 404 and await response.text() == body, path
    assert snapshot(accounts) == before  # nothing changed
    with session_scope(accounts) as session:  # and nobody's record was shown: no view was audited
        viewed = session.execute(select(AuditEntry.action).where(AuditEntry.action.like("%view%"))).scalars().all()
    assert viewed == []

    # The lists do not show them either.
    for path, secret in (("/console/handoffs", "o-malu"), ("/console/complaints", "马陆镇的补贴"),
                         ("/console/conversations", "钱卫东")):
        assert secret not in await (await client.get(path)).text(), path


async def test_the_neighbouring_station_opens_the_same_records(client, accounts, malu):
    await sign_in(client, "zhoumq")  # 马陆镇
    gets, _ = requests_for(malu)
    for path in gets:
        if "/live" in path:
            continue  # a long poll; its scope is the transcript's
        response = await client.get(path)
        assert response.status == 200, path
    html = await (await client.get("/console/complaints")).text()
    assert "马陆镇的补贴" in html
