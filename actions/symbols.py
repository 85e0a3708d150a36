"""action_answer_symbols: a message of emoji or punctuation only (intent symbols_only,
set by the NLU component bot.nlu.symbols).

A thumbs-up, OK hand, folded hands, applause, heart or rose is thanks, answered as
intent ``thank`` is (utter_thank); anything else gets one short friendly line
(utter_symbols_only). Never a misunderstanding, so never a step towards the handoff
that two fallbacks in a row start. Inside a form nothing is said: Rasa goes back to
the form, which asks its question again (the symbols were no answer to it).
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.symbols import THANKS, symbol_kind

# The one loop that is not a form (it has ended by the time this action runs).
TWO_STAGE_FALLBACK = "action_two_stage_fallback"


class ActionAnswerSymbols(Action):
    def name(self) -> Text:
        return "action_answer_symbols"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if tracker.active_loop_name not in (None, TWO_STAGE_FALLBACK):  # a form
            return []
        text = (tracker.latest_message or {}).get("text")
        if symbol_kind(text) == THANKS:
            dispatcher.utter_message(response="utter_thank")
        else:
            dispatcher.utter_message(response="utter_symbols_only")
        return []
