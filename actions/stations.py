"""action_find_station: which service station to go to, where it is, whether it is open now.

The evidence of where the user is, strongest first: a place they name (the
`station` entity, else place words in their message), a location they shared
in WeChat (slots `latitude`/`longitude`), the household of the veteran bound
to this WeChat user. Without any, we ask where they live and give the
district centre's details meanwhile.

The answer to that question ("安亭", "我住外冈": intent ``inform``) comes back here by a
rule (an ``inform`` right after this action, nlu_data/rules/records.yml) and finds the
station as usual. An ``inform`` after a station answer that names no place and answers
no question of ours ("明天上午") is not for the station finder: it gets the usual answer
to a bare ``inform``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import resources
from actions.menu import previous_turn
from bot.clock import SHANGHAI
from bot.db.models import Station
from bot.services import veterans
from bot.services.stations import describe, find_by_place, for_community, nearest

MAX_STATIONS = 2

ASK_WHERE = (
    "请告诉我您住在哪个街道（镇）或村（社区），例如“安亭镇”“菊园新区”，"
    "也可以通过微信发送您的位置，我帮您查找离您最近的服务站。\n"
    "区退役军人服务中心的信息如下："
)


def asked_where(tracker: Tracker) -> bool:
    """Whether the bot's last message before the user's latest one asked where they live."""
    question = ASK_WHERE.split("\n", 1)[0]
    said = next((e for e in previous_turn(tracker) if e.get("event") == "bot"), None)
    return said is not None and (said.get("text") or "").startswith(question)


def now() -> dt.datetime:
    """Beijing time now (a function, so that tests can fix the clock)."""
    return dt.datetime.now(SHANGHAI)


def shared_location(tracker: Tracker) -> Optional[Tuple[float, float]]:
    """The location the user shared, if the slots hold one (they may not exist yet)."""
    try:
        latitude = tracker.get_slot("latitude")
        longitude = tracker.get_slot("longitude")
        if latitude is None or longitude is None:
            return None
        latitude, longitude = float(latitude), float(longitude)
    except (TypeError, ValueError):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return latitude, longitude


def _with_parent(stations: List[Station]) -> List[Station]:
    """A single community station comes with its street station, which handles most business."""
    if len(stations) == 1 and stations[0].tier == "community" and stations[0].parent is not None:
        return [stations[0], stations[0].parent]
    return stations


def _named(session: Session, tracker: Tracker) -> List[Station]:
    found: List[Station] = []
    for value in tracker.get_latest_entity_values("station"):
        found.extend(s for s in find_by_place(session, str(value)) if s not in found)
    if not found:
        found = find_by_place(session, (tracker.latest_message or {}).get("text") or "")
    return found


def _household(session: Session, sender_id: str) -> Optional[Station]:
    veteran = veterans.by_openid(session, sender_id)
    if veteran is None:
        return None
    return veteran.station or for_community(session, veteran.street, veteran.community)


def answer(session: Session, tracker: Tracker, moment: dt.datetime) -> str:
    """The reply, without the closing service-phone line."""
    named = _named(session, tracker)
    if named:
        stations = _with_parent(named)[:MAX_STATIONS]
        blocks = [describe(s, moment) for s in stations]
        intro = "为您找到以下服务站：" if len(blocks) > 1 else None
        return "\n\n".join([intro, *blocks] if intro else blocks)

    location = shared_location(tracker)
    closest = nearest(session, *location, limit=MAX_STATIONS) if location else []
    if closest:
        blocks = []
        for station, km in closest:
            lines = describe(station, moment).split("\n")
            lines.insert(1, f"距离：约{km:.1f}公里")
            blocks.append("\n".join(lines))
        return "\n\n".join(["离您发送的位置最近的服务站：", *blocks])

    household = _household(session, tracker.sender_id)
    if household is not None:
        stations = _with_parent([household])[:MAX_STATIONS]
        blocks = [describe(s, moment) for s in stations]
        return "\n\n".join(["根据您登记的户籍所在地，您可以到以下服务站办理：", *blocks])

    centre = session.execute(select(Station).where(Station.tier == "district")).scalars().first()
    return "\n\n".join([ASK_WHERE, describe(centre, moment)] if centre else [ASK_WHERE.rsplit("\n", 1)[0]])


class ActionFindStation(Action):
    def name(self) -> Text:
        return "action_find_station"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        moment = now()
        # An inform after this action's answer: ours when it names a place or answers our question.
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        bare_inform = intent == "inform" and not asked_where(tracker)

        def work() -> Optional[str]:
            with resources.open_session() as session:
                if bare_inform and not _named(session, tracker):
                    return None
                return answer(session, tracker, moment)

        # The database calls block; keep them off the action server's event loop.
        reply = await asyncio.to_thread(work)
        if reply is None:
            dispatcher.utter_message(response="utter_inform_without_context")
            return []
        phone = tracker.get_slot("service_phone") or resources.settings().service_phone
        dispatcher.utter_message(text=f"{reply}\n\n如需其他帮助，请拨打服务电话 {phone}。")
        return []
