"""The booking, cancelling and moving forms' actions against a migrated SQLite
database with the real data files loaded, on a fixed clock."""

from __future__ import annotations

import datetime as dt

import pytest

from actions import appointments as appointment_actions
from actions.appointments import (
    ActionAskAppointmentStation,
    ActionAskAppointmentTime,
    ActionQueryAppointment,
    ActionSubmitAppointment,
    ActionSubmitCancel,
    ValidateAppointmentForm,
    ValidateCancelForm,
)
from bot.db.session import session_scope
from bot.services import appointments as booking
from bot.services.appointments import load_services
from bot.services.stations import SHANGHAI
from bot.settings import PROJECT_ROOT
from tests.actions.test_stations import bind_veteran
from tests.conftest import bot_event, make_tracker, user_event

# Monday 23 November 2026, 9:00 in Beijing: an ordinary working week ahead.
MONDAY_9AM = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
TUESDAY_10AM = dt.datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def factory(stations_db, monkeypatch):
    with session_scope(stations_db) as session:
        load_services(session, PROJECT_ROOT / "data" / "services.yml", PROJECT_ROOT / "data" / "closures.yml")
    monkeypatch.setattr(appointment_actions, "now", lambda: MONDAY_9AM)
    return stations_db


def _station_id(factory, code):
    with session_scope(factory) as session:
        return appointment_actions._station_id(session, code)


async def _validate(dispatcher, slot, value, events, slots):
    tracker = make_tracker(events, slots={**slots, "requested_slot": slot})
    method = getattr(ValidateAppointmentForm(), f"validate_{slot}")
    return await method(value, dispatcher, tracker, {})


@pytest.mark.parametrize("said, code", [
    ("我要办优待证", "preferential_card"),
    ("退伍报到", "report_in"),
    ("帮扶申请", "hardship_aid"),
])
async def test_service_by_name(factory, dispatcher, said, code):
    result = await _validate(dispatcher, "appointment_service", said,
                             [user_event(said, "inform")], {})
    assert result == {"appointment_service": code}


async def test_service_by_number_from_the_list(factory, dispatcher):
    buttons = [{"title": "退役报到", "payload": '/inform{"service_type": "退役报到"}'},
               {"title": "优待证办理", "payload": '/inform{"service_type": "优待证办理"}'}]
    events = [bot_event("请问您要预约办理哪项业务？", buttons), user_event("2", "choose_option")]
    result = await _validate(dispatcher, "appointment_service", "2", events, {})
    assert result == {"appointment_service": "preferential_card"}


async def test_unknown_service_is_asked_again(factory, dispatcher):
    result = await _validate(dispatcher, "appointment_service", "买菜", [user_event("买菜", "inform")], {})
    assert result == {"appointment_service": None}
    assert "没有找到这项业务" in dispatcher.messages[0]["text"]


async def test_station_by_place_name(factory, dispatcher):
    result = await _validate(dispatcher, "appointment_station", "安亭镇",
                             [user_event("安亭镇", "inform")], {"appointment_service": "report_in"})
    assert result["appointment_station"] == "JD-AT"


async def test_community_station_that_does_not_offer_the_service_points_to_its_town(factory, dispatcher):
    result = await _validate(dispatcher, "appointment_station", "黄渡社区",
                             [user_event("黄渡社区", "inform")], {"appointment_service": "report_in"})
    assert result == {"appointment_station": None}
    assert "可以到安亭镇退役军人服务站办理" in dispatcher.messages[0]["text"]


async def test_free_exact_time_is_taken(factory, dispatcher):
    result = await _validate(dispatcher, "appointment_time", "明天上午10点", [user_event("明天上午10点", "inform")],
                             {"appointment_service": "report_in", "appointment_station": "JD-AT"})
    assert result == {"appointment_time": TUESDAY_10AM.isoformat(), "appointment_options": None,
                      "appointment_time_problem": None}


async def test_a_closed_day_gets_the_reason_and_numbered_alternatives(factory, dispatcher):
    result = await _validate(dispatcher, "appointment_time", "这周六上午10点",
                             [user_event("这周六上午10点", "inform")],
                             {"appointment_service": "report_in", "appointment_station": "JD-AT"})
    assert result["appointment_time"] is None
    assert "不办公" in result["appointment_time_problem"]
    options = [dt.datetime.fromisoformat(o) for o in result["appointment_options"]]
    assert len(options) == 3 and all(o.weekday() < 5 for o in options)


async def test_a_part_of_day_offers_the_earliest_free_slots_in_it(factory, dispatcher):
    result = await _validate(dispatcher, "appointment_time", "后天下午", [user_event("后天下午", "inform")],
                             {"appointment_service": "report_in", "appointment_station": "JD-AT"})
    options = [dt.datetime.fromisoformat(o) for o in result["appointment_options"]]
    assert result["appointment_time"] is None and not result["appointment_time_problem"]
    assert [o.date() for o in options] == [dt.date(2026, 11, 25)] * 3 and all(o.hour >= 13 for o in options)


async def test_a_number_picks_an_offered_time(factory, dispatcher):
    options = [dt.datetime(2026, 11, 25, 13, 30, tzinfo=SHANGHAI).isoformat(),
               dt.datetime(2026, 11, 25, 14, 0, tzinfo=SHANGHAI).isoformat()]
    result = await _validate(dispatcher, "appointment_time", "2", [user_event("2", "choose_option")],
                             {"appointment_service": "report_in", "appointment_station": "JD-AT",
                              "appointment_options": options})
    assert result["appointment_time"] == options[1]


async def test_words_that_are_no_time_are_asked_again(factory, dispatcher):
    result = await _validate(dispatcher, "appointment_time", "嗯嗯", [user_event("嗯嗯", "inform")],
                             {"appointment_service": "report_in", "appointment_station": "JD-AT"})
    assert result["appointment_time"] is None and "没有听懂" in result["appointment_time_problem"]


@pytest.mark.parametrize("events, expected", [
    ([user_event("确认", "affirm")], True),
    ([user_event("不约了", "deny")], False),
    ([bot_event("确认预约吗？", [{"title": "确认", "payload": "/affirm"}, {"title": "不了", "payload": "/deny"}]),
      user_event("2", "choose_option")], False),
    ([user_event("啊这", "inform")], None),
])
async def test_confirmation(factory, dispatcher, events, expected):
    result = await _validate(dispatcher, "appointment_confirmed", "x", events, {})
    assert result == {"appointment_confirmed": expected}


async def test_time_question_lists_the_options_by_number(factory, dispatcher):
    options = [dt.datetime(2026, 11, 25, 13, 30, tzinfo=SHANGHAI).isoformat()]
    tracker = make_tracker([], slots={"appointment_service": "report_in", "appointment_options": options,
                                      "appointment_time_problem": "11月28日（周六）安亭镇退役军人服务站不办公。"})
    await ActionAskAppointmentTime().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["text"].startswith("11月28日（周六）安亭镇退役军人服务站不办公。\n以下时间可以预约")
    assert message["buttons"][0]["title"] == "11月25日（周三）13:30—14:00"


async def test_station_question_suggests_the_bound_veterans_own_town_station(factory, dispatcher, vault):
    bind_veteran(factory, vault, "test-user", "安亭镇", "黄渡社区", station_code="JD-AT-HD")
    tracker = make_tracker([], slots={"appointment_service": "report_in"})
    await ActionAskAppointmentStation().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["text"].startswith("按您登记的户籍地，建议到安亭镇退役军人服务站办理。")
    assert message["buttons"][0]["title"].startswith("安亭镇退役军人服务站")


def _form_slots(start=TUESDAY_10AM, confirmed=True):
    return {"appointment_service": "report_in", "appointment_station": "JD-AT",
            "appointment_time": start.isoformat(), "appointment_confirmed": confirmed}


async def test_submit_books_and_clears_the_form(factory, dispatcher):
    events = await ActionSubmitAppointment().run(dispatcher, make_tracker([], slots=_form_slots()), {})
    text = dispatcher.messages[0]["text"]
    assert text.startswith("预约成功！") and "预约码：" in text and "本人居民身份证" in text
    assert all(e["event"] == "slot" and e["value"] is None for e in events)
    with session_scope(factory) as session:
        [view] = booking.upcoming(session, "test-user", MONDAY_9AM)
    assert view.start == TUESDAY_10AM and view.station_name == "安亭镇退役军人服务站"


async def test_submit_of_a_slot_taken_meanwhile_asks_for_another_time(factory, dispatcher):
    station_id = _station_id(factory, "JD-AT")
    with session_scope(factory) as session:
        for n in range(10):  # fill every seat of the slot
            result = booking.book(session, f"other-{n}", station_id, "report_in", TUESDAY_10AM, MONDAY_9AM)
            if result.status is booking.BookingStatus.FULL:
                break
    events = await ActionSubmitAppointment().run(dispatcher, make_tracker([], slots=_form_slots()), {})
    assert "约满" in dispatcher.messages[0]["text"]
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "appointment_form"}
    assert {e["name"] for e in events if e["event"] == "slot"} == {
        "appointment_time", "appointment_confirmed", "appointment_options", "appointment_time_problem"}


async def test_submit_not_confirmed_books_nothing(factory, dispatcher):
    await ActionSubmitAppointment().run(dispatcher, make_tracker([], slots=_form_slots(confirmed=False)), {})
    assert dispatcher.messages[0]["response"] == "utter_booking_not_confirmed"
    with session_scope(factory) as session:
        assert booking.upcoming(session, "test-user", MONDAY_9AM) == []


async def test_query_lists_own_bookings_only(factory, dispatcher):
    station_id = _station_id(factory, "JD-AT")
    with session_scope(factory) as session:
        mine = booking.book(session, "test-user", station_id, "report_in", TUESDAY_10AM, MONDAY_9AM)
        booking.book(session, "someone-else", station_id, "report_in", TUESDAY_10AM, MONDAY_9AM)
    await ActionQueryAppointment().run(dispatcher, make_tracker([user_event("我约的哪天", "query_appointment")]), {})
    text = dispatcher.messages[0]["text"]
    assert text.startswith("您有1个预约：") and mine.appointment.code in text


async def test_nothing_to_cancel_skips_the_questions(factory, dispatcher):
    tracker = make_tracker([user_event("取消预约", "cancel_appointment")])
    assert await ValidateCancelForm().required_slots(["booking_target", "cancel_confirmed"],
                                                    dispatcher, tracker, {}) == []
    await ActionSubmitCancel().run(dispatcher, tracker, {})
    assert "没有待办理的预约" in dispatcher.messages[0]["text"]


async def test_cancel_by_number_then_confirm_frees_the_seat(factory, dispatcher):
    station_id = _station_id(factory, "JD-AT")
    seats = free_seats(factory, station_id)
    with session_scope(factory) as session:
        code = booking.book(session, "test-user", station_id, "report_in", TUESDAY_10AM, MONDAY_9AM).appointment.code
    assert free_seats(factory, station_id) == seats - 1
    buttons = [{"title": "预约", "payload": f'/inform{{"booking_code": "{code}"}}'}]
    tracker = make_tracker([bot_event("请问要取消哪个预约？", buttons), user_event("1", "choose_option")],
                           slots={"requested_slot": "booking_target"})
    assert await ValidateCancelForm().validate_booking_target("1", dispatcher, tracker, {}) == {
        "booking_target": code}
    done = make_tracker([], slots={"booking_target": code, "cancel_confirmed": True})
    await ActionSubmitCancel().run(dispatcher, done, {})
    assert f"已为您取消预约（{code}）" in dispatcher.messages[-1]["text"]
    with session_scope(factory) as session:
        assert booking.upcoming(session, "test-user", MONDAY_9AM) == []
    assert free_seats(factory, station_id) == seats


def free_seats(factory, station_id):
    """Free seats of the Tuesday 10:00 slot."""
    with session_scope(factory) as session:
        return booking.check_requested(session, station_id, "report_in", TUESDAY_10AM, MONDAY_9AM).slot.free


async def test_someone_elses_booking_code_is_not_found(factory, dispatcher):
    station_id = _station_id(factory, "JD-AT")
    with session_scope(factory) as session:
        code = booking.book(session, "someone-else", station_id, "report_in", TUESDAY_10AM,
                            MONDAY_9AM).appointment.code
    tracker = make_tracker([user_event(code, "inform")], slots={"requested_slot": "booking_target"})
    assert await ValidateCancelForm().validate_booking_target(code, dispatcher, tracker, {}) == {
        "booking_target": None}


async def test_station_question_suggests_the_nearest_to_a_shared_location(factory, dispatcher):
    # A point in 南翔 (the station file's coordinates put 南翔镇's station close by).
    with session_scope(factory) as session:
        from bot.db.models import Station
        from sqlalchemy import select

        nanxiang = session.execute(select(Station).where(Station.name.like("南翔镇%"),
                                                         Station.tier == "street")).scalar_one()
        point = (nanxiang.latitude + 0.001, nanxiang.longitude + 0.001)
    tracker = make_tracker([], slots={"appointment_service": "report_in", "latitude": point[0],
                                      "longitude": point[1]})
    await ActionAskAppointmentStation().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["text"].startswith(f"离您最近的是{nanxiang.name}（约0.")
    assert message["buttons"][0]["title"].startswith(nanxiang.name)
    assert len(message["buttons"]) == 3  # the three nearest that offer 退役报到


def _station(factory, code):
    with session_scope(factory) as session:
        from bot.db.models import Station
        from sqlalchemy import select

        station = session.execute(select(Station).where(Station.code == code)).scalar_one()
        return station.name, station.latitude, station.longitude


async def test_a_nearer_station_that_does_not_offer_the_service_is_named_not_skipped(factory, dispatcher):
    # Next to 方泰社区's station, which does not issue 优待证 (the towns' stations do).
    fangtai, latitude, longitude = _station(factory, "JD-AT-FT")
    tracker = make_tracker([], slots={"appointment_service": "preferential_card", "latitude": latitude + 0.001,
                                      "longitude": longitude})
    await ActionAskAppointmentStation().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    first = message["buttons"][0]["title"]
    town = first.split("（")[0]
    assert message["text"].startswith(f"离您最近的{fangtai}（约0.1公里）不能预约办理优待证；"
                                      f"可以办理的服务站中，离您最近的是{town}（约")
    assert "不办理优待证办理" not in message["text"]
    # Every suggestion says how far it is, nearest first.
    distances = [float(b["title"].split("（约")[1].split("公里")[0]) for b in message["buttons"]]
    assert distances == sorted(distances) and len(distances) == 3


async def test_the_home_station_and_a_nearer_one_to_the_shared_location_are_both_named(factory, dispatcher, vault):
    from tests.actions.test_stations import bind_veteran

    bind_veteran(factory, vault, "test-user", "安亭镇", None, station_code="JD-AT")
    nanxiang, latitude, longitude = _station(factory, "JD-NX")
    tracker = make_tracker([], slots={"appointment_service": "preferential_card", "latitude": latitude,
                                      "longitude": longitude})
    await ActionAskAppointmentStation().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["text"].startswith(f"按您登记的户籍地，建议到安亭镇退役军人服务站办理。离您最近的是{nanxiang}（约0.0公里）。")
    titles = [b["title"] for b in message["buttons"]]
    assert titles[0].startswith("安亭镇退役军人服务站（约") and titles[1].startswith(f"{nanxiang}（约0.0公里，")
