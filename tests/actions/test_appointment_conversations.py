"""The booking and moving forms the way people really talk (issue: conversations that
do not break): everything in one message, a time before the station, a new time typed
at a numbered list or at the summary, one booking to move. Each test runs the whole
form validation action (extraction, then validation) as Rasa calls it, on a fixed
clock and a migrated SQLite database with the real data files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from rasa_sdk import Tracker

from actions import appointments as appointment_actions
from actions.appointments import ActionAskAppointmentStation, ActionAskAppointmentTime, ActionResetBooking, \
    ValidateAppointmentForm, ValidateRescheduleForm
from bot.db.session import session_scope
from bot.services import appointments as booking
from bot.services.appointments import load_services
from bot.services.stations import SHANGHAI
from bot.settings import PROJECT_ROOT
from tests.conftest import bot_event, user_event

# Monday 23 November 2026, 9:00 in Beijing: an ordinary working week ahead.
MONDAY_9AM = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)


def _domain() -> Dict[str, Any]:
    domain: Dict[str, Any] = {"forms": {}, "slots": {}}
    for path in sorted((PROJECT_ROOT / "domain").rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        domain["forms"].update(data.get("forms") or {})
        domain["slots"].update(data.get("slots") or {})
    return domain


DOMAIN = _domain()


@pytest.fixture
def factory(stations_db, monkeypatch):
    with session_scope(stations_db) as session:
        load_services(session, PROJECT_ROOT / "data" / "services.yml", PROJECT_ROOT / "data" / "closures.yml")
    monkeypatch.setattr(appointment_actions, "now", lambda: MONDAY_9AM)
    return stations_db


def _turn(text: str, intent: str, form: str, slots: Dict[str, Any], set_now: Dict[str, Any],
          entities: List[Dict[str, Any]] = (), before: List[Dict[str, Any]] = ()) -> Tracker:
    """The tracker as the form's validation action sees it: the user's message, then
    the slots Rasa's own mappings filled from it (validated by the action)."""
    events = [*before, user_event(text, intent, entities=list(entities))]
    events += [{"event": "slot", "name": name, "value": value} for name, value in set_now.items()]
    return Tracker(sender_id="test-user", slots={**slots, **set_now}, latest_message=events[-1 - len(set_now)]["parse_data"],
                   events=events, paused=False, followup_action=None,
                   active_loop={"name": form}, latest_action_name="action_listen")


async def _run(action, tracker, dispatcher) -> Dict[str, Any]:
    events = await action.run(dispatcher, tracker, DOMAIN)
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def _datetime(value: str, start: int) -> Dict[str, Any]:
    return {"entity": "datetime", "value": value, "start": start, "end": start + len(value)}


async def test_everything_in_one_message_keeps_the_time_and_asks_only_what_is_missing(factory, dispatcher):
    text = "我想约明天上午去安亭办报到"
    tracker = _turn(text, "book_appointment", "appointment_form", {}, {"appointment_time": "明天上午"},
                    entities=[_datetime("明天上午", 3)])
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_service"] == "report_in"
    assert slots["appointment_station"] == "JD-AT"
    # Tomorrow morning's free slots are offered by number (a part of a day, no exact time).
    options = [dt.datetime.fromisoformat(o) for o in slots["appointment_options"]]
    assert options and all(o.date() == dt.date(2026, 11, 24) and o.hour < 12 for o in options)
    assert slots.get("appointment_time_wanted") is None
    assert dispatcher.messages == []


async def test_a_time_given_at_the_station_question_is_kept_not_called_a_wrong_place(factory, dispatcher):
    asked = {"appointment_service": "preferential_card", "requested_slot": "appointment_station"}
    tracker = _turn("下周三上午", "inform", "appointment_form", asked,
                    {"appointment_station": "下周三上午", "appointment_time": "下周三上午"},
                    entities=[_datetime("下周三上午", 0)])
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_station"] is None and slots["appointment_time"] is None
    assert slots["appointment_time_wanted"] == "下周三上午"
    assert not any("没有找到" in m.get("text", "") for m in dispatcher.messages)

    # The station next: the kept time is checked at once.
    tracker = _turn("江桥", "inform", "appointment_form", {**asked, "appointment_time_wanted": "下周三上午"},
                    {"appointment_station": "江桥"})
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_station"] == "JD-JQ"
    options = [dt.datetime.fromisoformat(o) for o in slots["appointment_options"]]
    assert options and all(o.date() == dt.date(2026, 12, 2) and o.hour < 12 for o in options)
    assert slots["appointment_time_wanted"] is None


@pytest.mark.parametrize("said, day, hour", [
    ("换成下周二下午3点", dt.date(2026, 12, 1), 15),
    ("还是改成下周一下午吧", dt.date(2026, 11, 30), 13),
])
async def test_a_new_time_typed_at_the_numbered_list_is_a_time_not_a_number(factory, dispatcher, said, day, hour):
    offered = [dt.datetime(2026, 11, 24, h, 0, tzinfo=SHANGHAI).isoformat() for h in (9, 10, 11)]
    known = {"appointment_service": "report_in", "appointment_station": "JD-AT",
             "appointment_options": offered, "requested_slot": "appointment_time"}
    tracker = _turn(said, "inform", "appointment_form", known, {"appointment_time": said})
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    chosen = slots["appointment_time"] or (slots["appointment_options"] or [None])[0]
    assert chosen not in offered
    start = dt.datetime.fromisoformat(chosen)
    assert start.date() == day and start.hour >= hour


async def test_a_bare_number_at_the_list_still_picks(factory, dispatcher):
    offered = [dt.datetime(2026, 11, 24, h, 0, tzinfo=SHANGHAI).isoformat() for h in (9, 10, 11)]
    known = {"appointment_service": "report_in", "appointment_station": "JD-AT",
             "appointment_options": offered, "requested_slot": "appointment_time"}
    tracker = _turn("3", "choose_option", "appointment_form", known, {"appointment_time": "3"})
    assert (await _run(ValidateAppointmentForm(), tracker, dispatcher))["appointment_time"] == offered[2]


def _at_summary():
    return {"appointment_service": "report_in", "appointment_station": "JD-AT",
            "appointment_time": dt.datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI).isoformat(),
            "requested_slot": "appointment_confirmed"}


async def test_another_time_at_the_summary_goes_back_to_the_time_instead_of_dropping_the_booking(factory, dispatcher):
    said = "不对 我要下周二下午"
    tracker = _turn(said, "deny", "appointment_form", _at_summary(), {"appointment_confirmed": said},
                    entities=[_datetime("下周二下午", 5)])
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_confirmed"] is None
    options = [dt.datetime.fromisoformat(o) for o in slots["appointment_options"]]
    assert options and all(o.date() == dt.date(2026, 12, 1) and o.hour >= 13 for o in options)


@pytest.mark.parametrize("said", ["时间不对，我要改时间", "改约", "重新选个时间"])
async def test_change_the_time_at_the_summary_asks_the_time_again(factory, dispatcher, said):
    tracker = _turn(said, "reschedule_appointment", "appointment_form", _at_summary(),
                    {"appointment_confirmed": said})
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_confirmed"] is None and slots["appointment_time"] is None
    assert slots.get("requested_slot") in (None, "appointment_time")


async def test_moving_the_only_booking_takes_it_and_the_new_time_in_the_same_message(factory, dispatcher):
    with session_scope(factory) as session:
        station_id = appointment_actions._station_id(session, "JD-AT")
        mine = booking.book(session, "test-user", station_id, "report_in",
                            dt.datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI), MONDAY_9AM)
    said = "改到下周三上午10点"
    tracker = _turn(said, "reschedule_appointment", "reschedule_form", {}, {"appointment_time": "下周三上午10点"},
                    entities=[_datetime("下周三上午10点", 2)])
    slots = await _run(ValidateRescheduleForm(), tracker, dispatcher)
    assert slots["booking_target"] == mine.appointment.code
    assert slots["appointment_time"] == dt.datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI).isoformat()


async def test_a_date_typed_at_the_booking_list_is_kept_not_an_error(factory, dispatcher):
    with session_scope(factory) as session:
        station_id = appointment_actions._station_id(session, "JD-AT")
        for day in (24, 25):  # two bookings: the form must ask which
            booking.book(session, "test-user", station_id, "report_in",
                         dt.datetime(2026, 11, day, 10, 0, tzinfo=SHANGHAI), MONDAY_9AM)
    said = "12月2号上午"
    tracker = _turn(said, "inform", "reschedule_form", {"requested_slot": "booking_target"},
                    {"booking_target": said, "appointment_time": said}, entities=[_datetime(said, 0)])
    slots = await _run(ValidateRescheduleForm(), tracker, dispatcher)
    assert slots["booking_target"] is None and slots["appointment_time_wanted"] == said
    assert not any("没有找到" in m.get("text", "") for m in dispatcher.messages)


async def test_stopping_a_move_keeps_the_booking(factory, dispatcher):
    events = [{"event": "active_loop", "name": "reschedule_form"}, user_event("算了不改了", "stop"),
              {"event": "active_loop", "name": None}]
    tracker = Tracker(sender_id="test-user", slots={}, latest_message=events[1]["parse_data"], events=events,
                      paused=False, followup_action=None, active_loop={}, latest_action_name=None)
    await ActionResetBooking().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_cancel_not_confirmed"


async def test_a_service_offered_only_at_town_stations_lists_them_to_pick_by_number(factory, dispatcher):
    tracker = Tracker(sender_id="test-user", slots={"appointment_service": "preferential_card"}, latest_message={},
                      events=[], paused=False, followup_action=None, active_loop={}, latest_action_name=None)
    await ActionAskAppointmentStation().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert "办理优待证？" in message["text"] and "优待证办理？" not in message["text"]
    assert len(message["buttons"]) >= 10
    assert any(b["title"].startswith("江桥镇退役军人服务站") for b in message["buttons"])


@pytest.mark.parametrize("said, intent, hours", [
    ("下午有吗", "faq", range(13, 18)),      # read as a policy question
    ("上午呢", "greet", range(9, 12)),       # read as a greeting
    ("换成下午吧", "reschedule_appointment", range(13, 18)),
])
async def test_a_part_of_the_day_asked_at_the_list_means_the_listed_day(factory, dispatcher, said, intent, hours):
    """"下午有吗" at a list of Tuesday-morning times: Tuesday afternoon's free times,
    whatever the NLU made of the message (Rasa's own mappings take nothing from it)."""
    offered = [dt.datetime(2026, 11, 24, h, 0, tzinfo=SHANGHAI).isoformat() for h in (9, 10, 11)]
    known = {"appointment_service": "report_in", "appointment_station": "JD-AT",
             "appointment_options": offered, "requested_slot": "appointment_time"}
    tracker = _turn(said, intent, "appointment_form", known, {})
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    options = [dt.datetime.fromisoformat(o) for o in slots["appointment_options"]]
    assert options and all(o.date() == dt.date(2026, 11, 24) and o.hour in hours for o in options)
    assert slots["appointment_time"] is None and not slots["appointment_time_problem"]


async def test_a_policy_question_at_the_time_question_is_left_to_the_policy_answer(factory, dispatcher):
    known = {"appointment_service": "report_in", "appointment_station": "JD-AT", "requested_slot": "appointment_time"}
    tracker = _turn("报到要带什么材料", "faq", "appointment_form", known, {})
    assert await _run(ValidateAppointmentForm(), tracker, dispatcher) == {}  # the form rejects; the rule answers


@pytest.mark.parametrize("intent", ["reschedule_appointment", "cancel_appointment"])
async def test_moving_or_cancelling_typed_during_a_new_booking_sets_the_new_one_aside(factory, dispatcher, intent):
    events = [{"event": "active_loop", "name": "appointment_form"}, user_event("改约", intent),
              {"event": "active_loop", "name": None}]
    tracker = Tracker(sender_id="test-user", slots={"appointment_service": "report_in"},
                      latest_message=events[1]["parse_data"], events=events,
                      paused=False, followup_action=None, active_loop={}, latest_action_name=None)
    reset = await ActionResetBooking().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_booking_set_aside"
    assert {"event": "slot", "name": "appointment_service", "value": None, "timestamp": None} in reset


async def test_the_time_question_gives_an_example_date_that_can_be_booked(factory, dispatcher):
    tracker = Tracker(sender_id="test-user", slots={"appointment_service": "report_in"}, latest_message={},
                      events=[], paused=False, followup_action=None, active_loop={"name": "appointment_form"},
                      latest_action_name=None)
    await ActionAskAppointmentTime().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["text"].endswith("“12月3号”。")  # ten days after Monday 23 November, not a date gone by


def _listed(titles):
    return bot_event("请选择：", buttons=[{"title": t, "payload": f'/inform{{"station": "{t}"}}'} for t in titles])


async def test_a_time_with_numerals_at_the_station_list_is_not_a_station_number(factory, dispatcher):
    """"下周三上午" at the numbered station list: 三 is no pick of station 3."""
    asked = {"appointment_service": "preferential_card", "requested_slot": "appointment_station"}
    stations = ["安亭镇退役军人服务站", "嘉定工业区退役军人服务站", "华亭镇退役军人服务站"]
    tracker = _turn("下周三上午", "inform", "appointment_form", asked,
                    {"appointment_station": "下周三上午", "appointment_time": "下周三上午"},
                    entities=[_datetime("下周三上午", 0)], before=[_listed(stations)])
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_station"] is None and slots["appointment_time_wanted"] == "下周三上午"
    # A bare number still picks.
    tracker = _turn("3", "choose_option", "appointment_form", asked, {"appointment_station": "3"},
                    before=[_listed(stations)])
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_station"] == "JD-HT"


async def test_a_time_with_a_digit_at_the_list_of_times_is_not_an_option_number(factory, dispatcher):
    offered = [dt.datetime(2026, 11, 25, h, 0, tzinfo=SHANGHAI).isoformat() for h in (9, 10, 11)]
    known = {"appointment_service": "report_in", "appointment_station": "JD-AT",
             "appointment_options": offered, "requested_slot": "appointment_time"}
    times = bot_event("以下时间可以预约：", buttons=[{"title": o, "payload": f'/inform{{"datetime": "{o}"}}'}
                                                   for o in offered])
    said = "换成下周二下午3点"
    tracker = _turn(said, "inform", "appointment_form", known, {"appointment_time": said}, before=[times])
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_time"] == dt.datetime(2026, 12, 1, 15, 0, tzinfo=SHANGHAI).isoformat()


async def test_half_past_is_read_from_the_message_when_the_entity_stops_short(factory, dispatcher):
    known = {"appointment_service": "report_in", "appointment_station": "JD-AT", "requested_slot": "appointment_time"}
    tracker = _turn("下周二下午三点半", "inform", "appointment_form", known, {"appointment_time": "下周二下午三点"},
                    entities=[_datetime("下周二下午三点", 0)])
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_time"] == dt.datetime(2026, 12, 1, 15, 30, tzinfo=SHANGHAI).isoformat()


async def test_a_weekday_in_a_whole_request_is_read_from_the_text_when_the_nlu_missed_it(factory, dispatcher):
    tracker = _turn("我想约这周五上午去安亭办报到", "book_appointment", "appointment_form", {}, {})
    slots = await _run(ValidateAppointmentForm(), tracker, dispatcher)
    assert slots["appointment_service"] == "report_in" and slots["appointment_station"] == "JD-AT"
    options = [dt.datetime.fromisoformat(o) for o in slots["appointment_options"]]
    assert options and all(o.date() == dt.date(2026, 11, 27) and o.hour < 12 for o in options)
