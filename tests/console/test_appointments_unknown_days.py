"""The console's day view on a day whose holiday schedule is not published yet (2027,
which chinesecalendar 1.11.0 does not know): closed for booking, with the reason, and
any booking made before still listed. The console's clock and the holidays file are
fixed (an empty file: 2027 unknown), so nothing depends on today's date."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

import bot.console.appointments as pages
from bot.db.models import Station
from bot.db.session import session_scope
from bot.services import appointments as ap
from bot.services.appointments import BookingStatus
from bot.services.stations import SHANGHAI
from bot.settings import PROJECT_ROOT
from tests.console.helpers import sign_in

LATE_DECEMBER = dt.datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI)
FIRST_MONDAY = dt.date(2027, 1, 4)


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(pages, "now_utc", lambda: LATE_DECEMBER.astimezone(dt.timezone.utc))


async def test_an_unknown_day_is_closed_for_booking_with_the_reason(console_client, accounts, clock, holidays_file):
    with session_scope(accounts) as session:
        ap.load_services(session, PROJECT_ROOT / "data" / "services.yml", now=LATE_DECEMBER)
    # Booked while staff had opened the day; then they took it out of open_days again.
    holidays_file({"open_days": [FIRST_MONDAY.isoformat()]})
    with session_scope(accounts) as session:
        station = session.execute(select(Station.id).where(Station.code == "JD-AT")).scalar_one()
        result = ap.book(session, "o-monday", station, "report_in",
                         dt.datetime(2027, 1, 4, 9, 0, tzinfo=SHANGHAI), LATE_DECEMBER)
    assert result.status is BookingStatus.BOOKED
    holidays_file({"open_days": []})

    assert (await sign_in(console_client, "wangkz")).status == 303
    html = await (await console_client.get(f"/console/appointments?station=JD-AT&day={FIRST_MONDAY}")).text()
    assert "2027年1月4日（周一）的节假日安排尚未公布，暂不开放预约。" in html
    assert "open_days" in html and "办公时间：" not in html
    assert "当天仍有此前约定的预约，见下表；节假日安排公布后，如当天放假，请电话联系预约人改约。" in html
    assert result.appointment.code in html
    assert "无预约" not in html  # no free slots offered that day

    html = await (await console_client.get("/console/appointments?station=JD-AT&day=2027-01-01")).text()
    assert "2027年1月1日（周五）的节假日安排尚未公布，暂不开放预约。" in html
    assert "当日没有预约。" in html and "<table>" not in html

    # A day of a year chinesecalendar knows is as before.
    html = await (await console_client.get("/console/appointments?station=JD-AT&day=2026-12-31")).text()
    assert "办公时间：9:00—11:30，13:30—17:00" in html and "尚未公布" not in html
