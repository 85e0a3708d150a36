"""action_default_ask_affirmation: the clarifying question of the two-stage fallback.

Rasa's own version asks about the top intent only; we offer the two most
likely readings, named in Chinese, plus "都不是" (which Rasa's loop treats
as a denial: payload /out_of_scope), each answerable by its number.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.labels import intent_label

# Intents that make no sense to offer back to the user as a reading.
_NOT_OFFERED = {"nlu_fallback", "out_of_scope", "choose_option", "inform", "affirm", "deny"}


def likely_readings(parse_data: Dict[str, Any], count: int = 2) -> List[str]:
    """The `count` most likely intents, with `faq` refined to `faq/<topic>`."""
    readings: List[str] = []
    for ranked in parse_data.get("intent_ranking") or []:
        name = ranked.get("name")
        if not name or name in _NOT_OFFERED:
            continue
        if name == "faq":
            selector = (parse_data.get("response_selector") or {}).get("faq") or {}
            key = (selector.get("response") or {}).get("intent_response_key")
            if key:
                name = key
        if name not in readings:
            readings.append(name)
        if len(readings) == count:
            break
    return readings


class ActionDefaultAskAffirmation(Action):
    def name(self) -> Text:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        readings = likely_readings(tracker.latest_message or {})
        if not readings:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        buttons = [{"title": intent_label(name), "payload": f"/{name}"} for name in readings]
        buttons.append({"title": "都不是", "payload": "/out_of_scope"})
        if len(readings) == 1:
            question = f"您是想了解“{intent_label(readings[0])}”吗？请回复数字："
        else:
            question = (
                f"不好意思，我不太确定您的意思。您是想了解“{intent_label(readings[0])}”"
                f"，还是“{intent_label(readings[1])}”？请回复数字："
            )
        dispatcher.utter_message(text=question, buttons=buttons)
        return []
