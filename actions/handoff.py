"""转人工: the conversation goes to the staff queue and the bot falls silent.

The action opens a handoff (bot.services.handoff), tells the user honestly when a
person will answer (the queue ahead, the service centre's opening hours), and pauses
the conversation the Rasa way (``ConversationPaused``): Rasa keeps recording what the
user writes, for staff, and answers nothing until staff hand it back
(``ConversationResumed``, bot.gateway.handoff).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.appointments import _in_session
from bot.services import handoff, veterans
from bot.services import stations as network


def paused() -> List[EventType]:
    """Pause, then listen: what the user writes meanwhile is recorded as after a bot turn."""
    return [ConversationPaused(), ActionExecuted("action_listen")]


def now() -> dt.datetime:
    return dt.datetime.now(network.SHANGHAI)


def user_station_id(session, openid: str) -> Optional[int]:
    """The station of the bound veteran's household, for the staff scope; None if unknown."""
    veteran = veterans.by_openid(session, openid)
    if veteran is None:
        return None
    station = veteran.station or network.for_community(session, veteran.street, veteran.community)
    return station.id if station is not None else None


def queue_message(session, view: handoff.HandoffView, current: dt.datetime) -> str:
    ahead = handoff.waiting_ahead(session, view)
    queue = f"前面还有{ahead}位在等候。" if ahead else ""
    return queue + handoff.expected_reply(session, current)


def hand_over(session, openid: str, reason: str, current: dt.datetime, **kwargs: Any) -> str:
    """Open (or find) the user's handoff; the words about when a person will answer."""
    view = handoff.open_handoff(session, openid, reason, current, station_id=user_station_id(session, openid),
                                **kwargs)
    return queue_message(session, view, current)


class ActionRequestHuman(Action):
    def name(self) -> Text:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        openid, current = tracker.sender_id, now()
        when = await _in_session(lambda session: hand_over(session, openid, "request_human", current))
        dispatcher.utter_message(text=f"好的，已为您转接人工服务。{when}\n"
                                      "您可以先把要办的事情发在这里，工作人员接待后会在这里回复您。")
        return paused()
