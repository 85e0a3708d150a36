"""转人工: the conversation goes to the staff queue and the bot falls silent.

Three ways in: the user asks (action_request_human), the bot fails to understand twice
in a row (action_default_fallback, Rasa's own fallback action overridden here), and an
urgent complaint (actions/complaints.py).

The action opens a handoff (bot.services.handoff), tells the user honestly when a
person will answer (the queue ahead, the service centre's opening hours), and pauses
the conversation the Rasa way (``ConversationPaused``): Rasa keeps recording what the
user writes, for staff, and answers nothing until staff hand it back
(``ConversationResumed``, bot.gateway.handoff). Meanwhile the WeChat gateway answers
for it: "已收到" now and then, the 24-hour lines for words of danger, and leaving the
queue ("不用人工了", "菜单" …) while nobody has claimed it (bot.gateway.handoff.while_held).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.appointments import _in_session
from actions.menu import previous_turn
from bot.clock import SHANGHAI
from bot.services import handoff


def paused() -> List[EventType]:
    """Pause, then listen: what the user writes meanwhile is recorded as after a bot turn."""
    return [ConversationPaused(), ActionExecuted("action_listen")]


def now() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


def hand_over(session, openid: str, reason: str, current: dt.datetime, **kwargs: Any) -> str:
    """Open (or find) the user's handoff; the words about when a person will answer."""
    view = handoff.open_handoff(session, openid, reason, current, station_id=handoff.station_for_openid(session, openid),
                                **kwargs)
    return handoff.queue_message(session, view, current)


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


# What Rasa runs when it gives up on a message: the two-stage fallback's loop, its
# questions, and the default fallback itself.
FALLBACK_ACTIONS = frozenset({"action_two_stage_fallback", "action_default_ask_affirmation",
                              "action_default_ask_rephrase", "action_default_fallback"})


def fallback_before(tracker: Tracker) -> bool:
    """Whether the user's previous message, too, ended in a fallback (the message before
    the latest one was not understood either)."""
    return any(e.get("event") == "action" and e.get("name") in FALLBACK_ACTIONS for e in previous_turn(tracker))


class ActionDefaultFallback(Action):
    """Rasa's ``action_default_fallback``, overridden: runs when the two-stage fallback
    gives up (two unclear messages, or both readings refused) and when no policy is sure
    what to do. Two failures in a row hand the conversation to staff; a first failure
    answers utter_default (with the 转人工 button), like Rasa's own, and is reverted."""

    def name(self) -> Text:
        return "action_default_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        if not fallback_before(tracker):
            dispatcher.utter_message(response="utter_default")
            return [UserUtteranceReverted()]
        openid, current = tracker.sender_id, now()
        when = await _in_session(lambda session: hand_over(session, openid, "fallback", current))
        dispatcher.utter_message(text=f"抱歉，我还是没能理解您的意思，已为您转接人工服务。{when}\n"
                                      "您可以先把要办的事情发在这里，工作人员接待后会在这里回复您。")
        return paused()
