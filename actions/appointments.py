"""预约办事 in chat: the booking form, looking up, cancelling and moving bookings.

Thin translation between the tracker and bot.services.appointments, where the
schedule's rules live (the console will call the same functions). Each call
opens one database session; the numbered lists the questions send are read
back by number in the validators (WeChat has no buttons in a text chat).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import select

from actions import resources
from actions.menu import buttons_offered
from bot.choices import is_bare_choice, parse_choice
from bot.clock import SHANGHAI, local_time
from bot.db.models import Station
from bot.payloads import parse_payload
from bot.services import appointments as booking
from bot.services import stations as network
from bot.services import veterans
from bot.timeparse import parse_when

FORM_SLOTS = ("appointment_service", "appointment_station", "appointment_time", "appointment_options",
              "appointment_time_problem", "appointment_time_wanted", "appointment_confirmed", "booking_target",
              "cancel_confirmed")
MAX_SUGGESTIONS = 3
AFFIRM_WORDS = ("确认", "是的", "是", "对", "好", "好的", "可以", "行", "没问题", "嗯", "确定")
DENY_WORDS = ("不", "否", "算了", "不用", "不要", "取消", "不对", "先不")
# At the summary: the user wants another time, not to drop the booking.
CHANGE_TIME = re.compile(r"(改|换|调|变)(个|一下|一个)?(时间|日子|天|时段)|时间不对|(换|改)(到|成)"
                         r"|^(我要)?改(约|一下)|重新(约|选)")


def now() -> dt.datetime:
    """Beijing time now (a function, so that tests can fix the clock)."""
    return dt.datetime.now(SHANGHAI)


def _text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


def _intent(tracker: Tracker) -> str:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name") or ""


def chosen_button(tracker: Tracker) -> Dict[str, Any]:
    """The parse data of the button the user picked by number, or {}. A message that
    names a date or time is no pick, whatever numerals it holds ("下周三上午" at the
    station list is not station 3, "换成下周二下午3点" at the times is not option 3)."""
    buttons = buttons_offered(tracker)
    text = _text(tracker)
    if buttons and not is_bare_choice(text) and parse_when(text, now()) is not None:
        return {}
    choice = parse_choice(text) if buttons else None
    if not buttons or choice is None or not 1 <= choice <= len(buttons):
        return {}
    return parse_payload(buttons[choice - 1]["payload"]) or {}


def chosen_entities(tracker: Tracker) -> Dict[str, Any]:
    """The entities of the button the user picked by number, or {}."""
    return {e["entity"]: e["value"] for e in chosen_button(tracker).get("entities", [])}


def yes_or_no(tracker: Tracker) -> Optional[bool]:
    """The user's answer to a yes/no question: by intent, by number (1 yes, 2 no), by word."""
    intent = _intent(tracker)
    if intent == "affirm":
        return True
    if intent in ("deny", "stop"):
        return False
    picked = (chosen_button(tracker).get("intent") or {}).get("name")
    if picked in ("affirm", "deny"):
        return picked == "affirm"
    text = _text(tracker).strip("。！!，, ")
    if any(text.startswith(word) for word in DENY_WORDS):
        return False
    if text in AFFIRM_WORDS:
        return True
    return None


YES_NO_BUTTONS = [{"title": "确认", "payload": "/affirm"}, {"title": "不了", "payload": "/deny"}]


async def _in_session(work):
    def run():
        with resources.open_session() as session:
            return work(session)

    return await asyncio.to_thread(run)


# --- the booking form ----------------------------------------------------------------


def names_a_time(tracker: Tracker) -> bool:
    """The latest message gives a date or time ("元旦那天上午", "1月5号上午"), not a pick."""
    if any(e.get("entity") == "datetime" for e in (tracker.latest_message or {}).get("entities") or []):
        return True
    text = _text(tracker)
    return not is_bare_choice(text) and parse_when(text, now()) is not None


# Intents a message can be read as and still be the answer to "what time" ("下午有吗"
# read as a policy question or a greeting, "换成下周二" as moving a booking).
TIME_IN_PASSING = ("faq", "greet", "help", "bot_challenge", "goodbye", "thank", "reschedule_appointment")


def time_said_in_passing(tracker: Tracker) -> Dict[Text, Any]:
    """At the time question (or the list of free times): a message that names a time
    is the answer, whatever intent the NLU gave it; the slot mappings only take the
    intents that mean "here is what I want". And in a whole request ("我想约这周日上午
    去安亭办报到") a time the NLU did not mark as one is read from the text."""
    text, intent = _text(tracker), _intent(tracker)
    if tracker.get_slot("requested_slot") == "appointment_time" and intent in TIME_IN_PASSING:
        return {"appointment_time": text} if names_a_time(tracker) else {}
    marked = any(e.get("entity") == "datetime" for e in (tracker.latest_message or {}).get("entities") or [])
    if intent in ("book_appointment", "reschedule_appointment") and not marked \
            and not tracker.get_slot("appointment_time") and not text.startswith("/"):
        request = parse_when(text, now())
        if request is not None and not is_bare_choice(text):
            return {"appointment_time": request.matched}
    return {}


async def pending_time(tracker: Tracker, where) -> Dict[Text, Any]:
    """A time said before the form could check it (before the station, or before
    the booking to move was known), checked now that it can be."""
    wanted = tracker.get_slot("appointment_time_wanted")
    if not wanted or tracker.get_slot("appointment_time"):
        return {}
    return {**await check_time(wanted, tracker, where, from_message=False), "appointment_time_wanted": None}


class ValidateAppointmentForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_appointment_form"

    # The NLU may miss the service or the place inside a whole request ("我想约明天上午
    # 去安亭办报到"); the data's names and aliases find them in the text.
    async def extract_appointment_service(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                          domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("appointment_service") or _intent(tracker) != "book_appointment":
            return {}
        text = _text(tracker)
        service = await _in_session(lambda session: booking.find_service(session, text))
        return {"appointment_service": service.code} if service else {}

    async def extract_appointment_station(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                          domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("appointment_station") or _intent(tracker) != "book_appointment":
            return {}
        text = _text(tracker)
        found = await _in_session(lambda session: [s.name for s in network.find_by_place(session, text)])
        return {"appointment_station": found[0]} if found else {}

    async def extract_appointment_time(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        return time_said_in_passing(tracker)

    def _where(self, tracker: Tracker):
        return lambda session: (_station_id(session, tracker.get_slot("appointment_station")),
                                tracker.get_slot("appointment_service"))

    async def _ready(self, tracker: Tracker) -> bool:
        """Service and station are both known and checked (codes, not words still to check)."""
        station, service = tracker.get_slot("appointment_station"), tracker.get_slot("appointment_service")
        if not station or not service:
            return False

        def work(session):
            known = session.execute(select(Station.id).where(Station.code == station)).scalar()
            return known is not None and booking.service_by_code(session, service) is not None

        return await _in_session(work)

    async def validate_appointment_service(self, value: Any, dispatcher: CollectingDispatcher,
                                           tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        wanted = chosen_entities(tracker).get("service_type") or value

        def work(session):
            service = booking.find_service(session, str(wanted or ""))
            return service.code if service else None

        code = await _in_session(work)
        if code is None:
            if names_a_time(tracker):
                return {"appointment_service": None}  # the time is kept (appointment_time_wanted)
            dispatcher.utter_message(text="抱歉，没有找到这项业务。")
            return {"appointment_service": None}
        tracker.slots["appointment_service"] = code
        if await self._ready(tracker):
            return {"appointment_service": code, **await pending_time(tracker, self._where(tracker))}
        return {"appointment_service": code}

    async def validate_appointment_station(self, value: Any, dispatcher: CollectingDispatcher,
                                           tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        wanted = chosen_entities(tracker).get("station") or str(value or "")
        service_code = tracker.get_slot("appointment_service")

        def work(session):
            found = network.find_by_place(session, wanted)
            if not found:
                return None, None
            offering = {s.id for s in booking.stations_offering(session, service_code)}
            for station in found:
                if station.id in offering:
                    return station.code, None
            # A community station that does not offer the service: its town station may.
            for station in found:
                parent = station.parent
                while parent is not None:
                    if parent.id in offering:
                        return None, (f"{station.name}不办理{booking.service_name(session, service_code)}，"
                                      f"可以到{parent.name}办理。")
                    parent = parent.parent
            return None, f"{found[0].name}不办理{booking.service_name(session, service_code)}。"

        code, problem = await _in_session(work)
        if code is None:
            if problem is None and names_a_time(tracker):
                # A time given at the station question is kept, not called a wrong place.
                return {"appointment_station": None}
            dispatcher.utter_message(text=problem or "抱歉，没有找到这个服务站。")
            return {"appointment_station": None}
        result = {"appointment_station": code, "appointment_options": None, "appointment_time_problem": None}
        tracker.slots.update(result)
        if await self._ready(tracker):
            result.update(await pending_time(tracker, self._where(tracker)))
        return result

    async def validate_appointment_time(self, value: Any, dispatcher: CollectingDispatcher,
                                        tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if not await self._ready(tracker):
            # Said before the station (or the service) was known: keep it for then.
            return {"appointment_time": None, "appointment_time_wanted": str(value)}
        return await check_time(value, tracker, self._where(tracker))

    async def validate_appointment_confirmed(self, value: Any, dispatcher: CollectingDispatcher,
                                             tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return await confirm_or_change_time(tracker, dispatcher, self._where(tracker),
                                            "请回复“1”确认预约，或回复“2”不预约。")


async def confirm_or_change_time(tracker: Tracker, dispatcher: CollectingDispatcher, where,
                                 ask_again: str) -> Dict[Text, Any]:
    """The answer at the summary: yes, no, or another time ("不对 我要下周二下午",
    "时间不对，我要改时间"), which goes back to the time instead of dropping the booking."""
    text = _text(tracker)
    if names_a_time(tracker) and not is_bare_choice(text):
        checked = await check_time(text, tracker, where, from_message=False)
        return {**checked, "appointment_confirmed": None}
    if CHANGE_TIME.search(text):
        return {"appointment_time": None, "appointment_options": None, "appointment_time_problem": None,
                "appointment_confirmed": None}
    answer = yes_or_no(tracker)
    if answer is None:
        dispatcher.utter_message(text=ask_again)
    return {"appointment_confirmed": answer}


def _station_id(session, code: Optional[str]) -> int:
    return session.execute(select(Station.id).where(Station.code == code)).scalar_one()


def _target(session, tracker: Tracker) -> booking.AppointmentView:
    """The booking being moved or cancelled (booking_target), the user's own."""
    return booking.find(session, tracker.sender_id, tracker.get_slot("booking_target"),
                        veteran_id=veterans.id_by_openid(session, tracker.sender_id))


async def check_time(value: Any, tracker: Tracker, where, from_message: bool = True) -> Dict[Text, Any]:
    """The appointment_time slot: a free slot's ISO start, or options and why.

    ``where(session)`` gives the (station id, service code) the time is for.
    ``from_message``: the latest message may pick an offered time by number; a
    message that reads as a date or time ("换成下周二下午3点") is a time, not a
    pick. False when ``value`` was said earlier (a time kept for later)."""
    current = now()
    options = tracker.get_slot("appointment_options") or []
    picked = chosen_entities(tracker).get("datetime") if from_message else None
    text = _text(tracker)
    whole = parse_when(text, current) if from_message else None  # the latest message as a time
    if from_message and options and not picked and (is_bare_choice(text) or whole is None):
        choice = parse_choice(text)
        if choice is not None and 1 <= choice <= len(options):
            picked = options[choice - 1]

    def work(session):
        station_id, service_code = where(session)
        if picked:
            start = local_time(dt.datetime.fromisoformat(str(picked)))
            return booking.check_request(session, station_id, service_code, start.date(), start.date(),
                                 start.time(), None, current)
        if any(word in str(value or "") for word in ("最早", "尽快", "越快越好", "都行", "随便")):
            return booking.check_request(session, station_id, service_code, current.date(), None, None, None, current)
        request = parse_when(str(value or ""), current)
        if request is not None and whole is not None and len(whole.matched) > len(request.matched):
            # The whole message may say more than the entity the NLU cut from it
            # ("下周二下午三点半": the entity stops at 三点).
            request = whole
        if request is None:
            return None
        day, latest_day = request.day, request.latest_day
        if day is None and options and from_message:
            # "下午有吗", "三点呢" at the list of free times: the day of that list.
            day = latest_day = local_time(dt.datetime.fromisoformat(str(options[0]))).date()
        return booking.check_request(session, station_id, service_code, day, latest_day,
                                     request.start, request.part, current)

    result = await _in_session(work)
    if result is None:
        return {"appointment_time": None, "appointment_time_problem": "没有听懂您说的时间。",
                "appointment_options": options or None}
    if result.exact is not None:
        return {"appointment_time": result.exact.start.isoformat(), "appointment_options": None,
                "appointment_time_problem": None}
    return {"appointment_time": None, "appointment_time_problem": result.problem,
            "appointment_options": [slot.start.isoformat() for slot in result.alternatives] or None}


class ActionAskAppointmentService(Action):
    def name(self) -> Text:
        return "action_ask_appointment_service"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        services = await _in_session(lambda session: [(s.code, s.name) for s in booking.all_services(session)])
        buttons = [{"title": name, "payload": f'/inform{{"service_type": "{name}"}}'} for _, name in services]
        dispatcher.utter_message(text="请问您要预约办理哪项业务？请回复数字：", buttons=buttons)
        return []


def doing(service_name: str) -> str:
    """办理退役报到, 办理优待证 (not 办理优待证办理)."""
    return "办理" + (service_name[: -len("办理")] if service_name.endswith("办理") else service_name)


class ActionAskAppointmentStation(Action):
    """Suggests the bound veteran's own station, or the nearest to a shared location."""

    def name(self) -> Text:
        return "action_ask_appointment_station"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        service_code = tracker.get_slot("appointment_service")
        latitude, longitude = tracker.get_slot("latitude"), tracker.get_slot("longitude")
        openid = tracker.sender_id

        def work(session):
            offering = booking.stations_offering(session, service_code)
            offering_ids = {s.id for s in offering}
            service_name = booking.service_name(session, service_code)
            suggestions: List[Station] = []
            leads: List[str] = []
            away: Dict[int, float] = {}  # station id → km from the shared location
            veteran = veterans.by_openid(session, openid)
            if veteran is not None:
                home = veteran.station or network.for_community(session, veteran.street, veteran.community)
                while home is not None and home.id not in offering_ids:
                    home = home.parent
                if home is not None:
                    suggestions.append(home)
                    leads.append(f"按您登记的户籍地，建议到{home.name}办理。")
            if latitude is not None and longitude is not None:
                closest = network.nearest(session, float(latitude), float(longitude), limit=None)
                away = {station.id: km for station, km in closest}
                nearest_offering = next(((s, km) for s, km in closest if s.id in offering_ids), None)
                if nearest_offering is not None:
                    station, km = nearest_offering
                    nearest_any, km_any = closest[0]
                    if nearest_any.id != station.id:
                        # The station nearest to the user does not do this: say so, and which
                        # is the nearest that does, rather than silently suggest one farther away.
                        leads.append(f"离您最近的{nearest_any.name}（约{km_any:.1f}公里）不能预约{doing(service_name)}；"
                                     f"可以办理的服务站中，离您最近的是{station.name}（约{km:.1f}公里）。")
                    elif suggestions and suggestions[0].id == station.id:
                        leads[-1] = leads[-1].rstrip("。") + f"（离您约{km:.1f}公里）。"
                    else:
                        leads.append(f"离您最近的是{station.name}（约{km:.1f}公里）。")
                for station, _km in closest:
                    if len(suggestions) >= MAX_SUGGESTIONS:
                        break
                    if station.id in offering_ids and station not in suggestions:
                        suggestions.append(station)
            district = next((s for s in offering if s.tier == "district"), None)
            if district is not None and district not in suggestions:
                suggestions.append(district)
            chosen = suggestions[:MAX_SUGGESTIONS]
            if not chosen:
                # Offered at the towns' stations only: list those to pick from by number.
                chosen = [s for s in offering if s.tier == "street"]
            listed = [(s.name, (f"约{away[s.id]:.1f}公里，" if s.id in away else "") + s.address) for s in chosen]
            return "".join(leads), listed, service_name

        lead, suggestions, service_name = await _in_session(work)
        text = (lead + "\n" if lead else "") + (
            f"请问您想到哪个服务站{doing(service_name)}？可以回复数字，也可以直接输入街道（镇）或社区名称：")
        buttons = [{"title": f"{name}（{address}）", "payload": f'/inform{{"station": "{name}"}}'}
                   for name, address in suggestions]
        dispatcher.utter_message(text=text, buttons=buttons)
        return []


def example_date() -> str:
    """A date to show as an example of the answer: ten days ahead, inside the booking
    window (a fixed "12月5号" read as next year's once it had passed)."""
    day = now().date() + dt.timedelta(days=10)
    return f"{day.month}月{day.day}号"


class ActionAskAppointmentTime(Action):
    def name(self) -> Text:
        return "action_ask_appointment_time"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        problem = tracker.get_slot("appointment_time_problem")
        options = tracker.get_slot("appointment_options") or []
        if options:
            service_code = tracker.get_slot("appointment_service")
            if tracker.active_loop_name == "reschedule_form":
                service_code = await _in_session(lambda session: _target(session, tracker).service_code)
            labels = await _in_session(lambda session: [
                booking.format_slot(dt.datetime.fromisoformat(o), dt.datetime.fromisoformat(o) + dt.timedelta(minutes=booking.service_by_code(session, service_code).slot_minutes)) for o in options])
            buttons = [{"title": label, "payload": f'/inform{{"datetime": "{o}"}}'}
                       for label, o in zip(labels, options)]
            dispatcher.utter_message(text=(problem + "\n" if problem else "") +
                                     "以下时间可以预约，请回复数字选择，或者告诉我其他时间：", buttons=buttons)
        elif problem:
            dispatcher.utter_message(text=problem + "请换一个时间，例如“明天上午”“下周三下午两点”。")
        else:
            dispatcher.utter_message(text=f"请问您想约哪天、什么时间？例如“明天上午”“下周三下午两点”“{example_date()}”。")
        return []


class ActionAskAppointmentConfirmed(Action):
    def name(self) -> Text:
        return "action_ask_appointment_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        start = dt.datetime.fromisoformat(tracker.get_slot("appointment_time"))
        service_code = tracker.get_slot("appointment_service")
        station_code = tracker.get_slot("appointment_station")
        target = tracker.get_slot("booking_target")

        def work(session):
            station = session.execute(select(Station).where(Station.code == station_code)).scalar_one()
            return booking.describe_request(session, station.id, service_code, start)

        if tracker.active_loop_name == "reschedule_form":
            def work(session):  # noqa: F811 - moving a booking: its own summary
                view = _target(session, tracker)
                new_slot = booking.format_slot(start, start + (view.end - view.start))
                return (f"将{view.service_name}预约（{view.code}）从{booking.format_slot(view.start, view.end)}"
                        f"改到{new_slot}，地点不变：{view.station_name}。")

        summary = await _in_session(work)
        dispatcher.utter_message(text=f"请核对预约信息：\n{summary}\n确认预约吗？请回复数字：",
                                 buttons=YES_NO_BUTTONS)
        return []


class ActionSubmitAppointment(Action):
    def name(self) -> Text:
        return "action_submit_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        if not tracker.get_slot("appointment_confirmed"):
            dispatcher.utter_message(response="utter_booking_not_confirmed")
            return reset_events()
        start = dt.datetime.fromisoformat(tracker.get_slot("appointment_time"))
        service_code = tracker.get_slot("appointment_service")
        station_code = tracker.get_slot("appointment_station")
        openid = tracker.sender_id

        def work(session):
            station = session.execute(select(Station).where(Station.code == station_code)).scalar_one()
            return booking.book(session, openid, station.id, service_code, start, now(),
                                veteran_id=veterans.id_by_openid(session, openid))

        result = await _in_session(work)
        dispatcher.utter_message(text=booking.booking_reply(result, tracker.get_slot("service_phone")))
        if result.status in (booking.BookingStatus.FULL, booking.BookingStatus.UNAVAILABLE):
            # Taken meanwhile: keep the service and the station, ask for another time.
            return [SlotSet("appointment_time", None), SlotSet("appointment_confirmed", None),
                    SlotSet("appointment_options", None), SlotSet("appointment_time_problem", None),
                    FollowupAction("appointment_form")]
        return reset_events()


def reset_events() -> List[EventType]:
    return [SlotSet(name, None) for name in FORM_SLOTS]


class ActionResetBooking(Action):
    """After 'stop' in a form: nothing is submitted, nothing is kept half-filled."""

    def name(self) -> Text:
        return "action_reset_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        stopped = next((e.get("name") for e in reversed(tracker.events)
                        if e.get("event") == "active_loop" and e.get("name")), None)
        if stopped == "appointment_form" and _intent(tracker) in ("reschedule_appointment", "cancel_appointment"):
            dispatcher.utter_message(response="utter_booking_set_aside")  # and on to the other form
        elif stopped in ("reschedule_form", "cancel_form"):
            dispatcher.utter_message(response="utter_cancel_not_confirmed")  # 好的，预约保持不变。
        else:
            dispatcher.utter_message(response="utter_booking_stopped")
        return reset_events()


# --- looking up, cancelling, moving -------------------------------------------------------


class ActionQueryAppointment(Action):
    def name(self) -> Text:
        return "action_query_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        openid = tracker.sender_id

        def work(session):
            views = booking.upcoming(session, openid, now(), veteran_id=veterans.id_by_openid(session, openid))
            return [booking.describe_appointment(view) for view in views]

        described = await _in_session(work)
        if not described:
            dispatcher.utter_message(text="您目前没有待办理的预约。需要预约请发送“预约”。")
            return []
        lines = [f"您有{len(described)}个预约："]
        for number, text in enumerate(described, 1):
            lines.append(f"{number}. {text}")
        lines.append("如需取消或改约，请发送“取消预约”或“改约”。")
        dispatcher.utter_message(text="\n".join(lines))
        return []


class _TargetValidation:
    """booking_target: which of the user's bookings (by number or booking code);
    with only one booking, that one."""

    async def extract_booking_target(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("booking_target"):
            return {}
        openid = tracker.sender_id

        def work(session):
            return booking.upcoming(session, openid, now(), veteran_id=veterans.id_by_openid(session, openid))

        views = await _in_session(work)
        return {"booking_target": views[0].code} if len(views) == 1 else {}

    async def validate_booking_target(self, value: Any, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        code = chosen_entities(tracker).get("booking_code") or str(value or "").strip().upper()
        openid = tracker.sender_id

        def work(session):
            return booking.find(session, openid, code, veteran_id=veterans.id_by_openid(session, openid))

        view = await _in_session(work) if code else None
        if view is None:
            if names_a_time(tracker):
                return {"booking_target": None}  # the new time is kept until the booking is chosen
            dispatcher.utter_message(text="没有找到这个预约，请回复列表中的数字。")
            return {"booking_target": None}
        result = {"booking_target": view.code}
        tracker.slots.update(result)
        if "appointment_time" in self.domain_slots(domain):
            result.update(await pending_time(tracker, _target_where(tracker)))
        return result

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        """Nothing to ask when the user holds no booking: the submit action says so."""
        openid = tracker.sender_id

        def work(session):
            return booking.upcoming(session, openid, now(), veteran_id=veterans.id_by_openid(session, openid))

        if not await _in_session(work):
            return []
        return domain_slots


class ValidateCancelForm(_TargetValidation, FormValidationAction):
    def name(self) -> Text:
        return "validate_cancel_form"

    async def validate_cancel_confirmed(self, value: Any, dispatcher: CollectingDispatcher,
                                        tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        answer = yes_or_no(tracker)
        if answer is None:
            dispatcher.utter_message(text="请回复“1”确认取消，或回复“2”保留预约。")
        return {"cancel_confirmed": answer}


class ValidateRescheduleForm(_TargetValidation, FormValidationAction):
    def name(self) -> Text:
        return "validate_reschedule_form"

    async def extract_appointment_time(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        return time_said_in_passing(tracker)

    async def validate_appointment_time(self, value: Any, dispatcher: CollectingDispatcher,
                                        tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if not tracker.get_slot("booking_target"):
            return {"appointment_time": None, "appointment_time_wanted": str(value)}
        return await check_time(value, tracker, _target_where(tracker))

    async def validate_appointment_confirmed(self, value: Any, dispatcher: CollectingDispatcher,
                                             tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return await confirm_or_change_time(tracker, dispatcher, _target_where(tracker),
                                            "请回复“1”确认改约，或回复“2”保留原预约。")


def _target_where(tracker: Tracker):
    def where(session):
        view = _target(session, tracker)
        return view.station_id, view.service_code

    return where


class ActionAskBookingTarget(Action):
    def name(self) -> Text:
        return "action_ask_booking_target"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        openid = tracker.sender_id

        def work(session):
            views = booking.upcoming(session, openid, now(), veteran_id=veterans.id_by_openid(session, openid))
            return [(v.code, booking.short_description(v)) for v in views]

        views = await _in_session(work)
        verb = "改约" if tracker.active_loop_name == "reschedule_form" else "取消"
        buttons = [{"title": text, "payload": f'/inform{{"booking_code": "{code}"}}'} for code, text in views]
        dispatcher.utter_message(text=f"请问要{verb}哪个预约？请回复数字：", buttons=buttons)
        return []


class ActionAskCancelConfirmed(Action):
    def name(self) -> Text:
        return "action_ask_cancel_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        target = tracker.get_slot("booking_target")
        openid = tracker.sender_id

        def work(session):
            view = booking.find(session, openid, target, veteran_id=veterans.id_by_openid(session, openid))
            return booking.short_description(view)

        text = await _in_session(work)
        dispatcher.utter_message(text=f"确认取消这个预约吗？\n{text}\n请回复数字：", buttons=YES_NO_BUTTONS)
        return []


class ActionSubmitCancel(Action):
    def name(self) -> Text:
        return "action_submit_cancel"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        target = tracker.get_slot("booking_target")
        if not target:
            dispatcher.utter_message(text="您目前没有待办理的预约，不需要取消。")
            return reset_events()
        if not tracker.get_slot("cancel_confirmed"):
            dispatcher.utter_message(response="utter_cancel_not_confirmed")
            return reset_events()
        openid = tracker.sender_id

        def work(session):
            return booking.cancel(session, openid, target, now(), veteran_id=veterans.id_by_openid(session, openid))

        view = await _in_session(work)
        if view is None:
            dispatcher.utter_message(text="这个预约已经取消或已过期，不需要再取消。")
        else:
            dispatcher.utter_message(text=f"已为您取消预约（{view.code}），名额已释放给其他人。需要时请重新发送“预约”。")
        return reset_events()


class ActionSubmitReschedule(Action):
    def name(self) -> Text:
        return "action_submit_reschedule"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        target = tracker.get_slot("booking_target")
        if not target:
            dispatcher.utter_message(text="您目前没有待办理的预约。需要预约请发送“预约”。")
            return reset_events()
        if not tracker.get_slot("appointment_confirmed"):
            dispatcher.utter_message(text="好的，原预约保持不变。")
            return reset_events()
        start = dt.datetime.fromisoformat(tracker.get_slot("appointment_time"))
        openid = tracker.sender_id

        def work(session):
            return booking.reschedule(session, openid, target, start, now(),
                                      veteran_id=veterans.id_by_openid(session, openid))

        result = await _in_session(work)
        dispatcher.utter_message(text=booking.booking_reply(result, tracker.get_slot("service_phone")))
        return reset_events()
