"""The booking form on a day whose holiday schedule is not published yet: what a real
user hit ("我要预约办优待证" → "江桥" → "1月1号上午九点" → "1" booked 元旦 2027, because
chinesecalendar 1.11.0 has no 2027). Against a migrated SQLite database with the real
data files, the clock fixed in late December 2026 and the holidays file fixed too
(an empty one: 2027 unknown), so nothing depends on today or on data/holidays.yml."""

from __future__ import annotations

import datetime as dt

import pytest

from actions import appointments as appointment_actions
from actions.appointments import ActionAskAppointmentTime, ActionSubmitAppointment, ValidateAppointmentForm
from bot.db.session import session_scope
from bot.services.appointments import load_services
from bot.services.stations import SHANGHAI
from bot.settings import PROJECT_ROOT
from tests.conftest import make_tracker, user_event

LATE_DECEMBER = dt.datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI)  # a Monday; bookable up to 2027-01-27
NEW_YEAR_9AM = dt.datetime(2027, 1, 1, 9, 0, tzinfo=SHANGHAI)
REFUSAL = "2027年1月1日的节假日安排尚未公布，暂不能预约这一天。"
PREFERENTIAL_CARD_AT_JIANGQIAO = {"appointment_service": "preferential_card", "appointment_station": "JD-JQ"}


@pytest.fixture
def factory(stations_db, monkeypatch, holidays_file):
    with session_scope(stations_db) as session:
        load_services(session, PROJECT_ROOT / "data" / "services.yml", PROJECT_ROOT / "data" / "closures.yml",
                      now=LATE_DECEMBER)
    monkeypatch.setattr(appointment_actions, "now", lambda: LATE_DECEMBER)
    return stations_db


async def _validate(dispatcher, slot, value, slots):
    tracker = make_tracker([user_event(value, "inform")], slots={**slots, "requested_slot": slot})
    return await getattr(ValidateAppointmentForm(), f"validate_{slot}")(value, dispatcher, tracker, {})


async def test_new_years_day_2027_is_refused_with_the_reason_and_the_times_that_can_be_had(factory, dispatcher):
    service = await _validate(dispatcher, "appointment_service", "我要预约办优待证", {})
    assert service == {"appointment_service": "preferential_card"}
    station = await _validate(dispatcher, "appointment_station", "江桥", service)
    assert station["appointment_station"] == "JD-JQ"

    result = await _validate(dispatcher, "appointment_time", "1月1号上午九点", PREFERENTIAL_CARD_AT_JIANGQIAO)
    assert result["appointment_time"] is None
    assert result["appointment_time_problem"] == REFUSAL
    options = [dt.datetime.fromisoformat(o) for o in result["appointment_options"]]
    assert options == [dt.datetime(2026, 12, 31, 9, 0, tzinfo=SHANGHAI),
                       dt.datetime(2026, 12, 31, 9, 20, tzinfo=SHANGHAI),
                       dt.datetime(2026, 12, 31, 9, 40, tzinfo=SHANGHAI)]

    # What the user reads next: the reason, then the times that can be booked, by number.
    tracker = make_tracker([], slots={**PREFERENTIAL_CARD_AT_JIANGQIAO, **result})
    await ActionAskAppointmentTime().run(dispatcher, tracker, {})
    message = dispatcher.messages[-1]
    assert message["text"] == REFUSAL + "\n以下时间可以预约，请回复数字选择，或者告诉我其他时间："
    assert [b["title"] for b in message["buttons"]] == [
        "12月31日（周四）9:00—9:20", "12月31日（周四）9:20—9:40", "12月31日（周四）9:40—10:00"]


@pytest.mark.parametrize("said", ["元旦那天上午", "元旦上午九点", "2027年1月1日"])
async def test_new_years_day_by_name_is_refused_too(factory, dispatcher, said):
    result = await _validate(dispatcher, "appointment_time", said, PREFERENTIAL_CARD_AT_JIANGQIAO)
    assert result["appointment_time"] is None and result["appointment_time_problem"] == REFUSAL
    assert result["appointment_options"]
    assert all(dt.datetime.fromisoformat(o).year == 2026 for o in result["appointment_options"])


async def test_a_day_staff_opened_can_be_booked(factory, dispatcher, holidays_file):
    holidays_file({"open_days": ["2027-01-01"]})
    result = await _validate(dispatcher, "appointment_time", "1月1号上午九点", PREFERENTIAL_CARD_AT_JIANGQIAO)
    assert result == {"appointment_time": NEW_YEAR_9AM.isoformat(), "appointment_options": None,
                      "appointment_time_problem": None}


async def test_a_time_picked_earlier_is_refused_at_submission(factory, dispatcher):
    """A 1 January slot offered or confirmed before the fix (or before staff took it out of
    open_days) is not booked either."""
    tracker = make_tracker([user_event("1", "affirm")],
                           slots={**PREFERENTIAL_CARD_AT_JIANGQIAO, "appointment_time": NEW_YEAR_9AM.isoformat(),
                                  "appointment_confirmed": True})
    events = await ActionSubmitAppointment().run(dispatcher, tracker, {})
    assert dispatcher.messages[-1]["text"] == REFUSAL + "请换一个时间。"
    assert "预约成功" not in dispatcher.messages[-1]["text"]
    assert {"event": "followup", "name": "appointment_form"} in [
        {k: e.get(k) for k in ("event", "name")} for e in events]
