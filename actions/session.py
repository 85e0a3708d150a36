"""action_session_start: fills the configuration slots every response uses."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import Settings

CONFIG_SLOTS = ("service_phone", "bureau_name")


class ActionSessionStart(Action):
    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        settings = Settings.from_env()
        events: List[EventType] = [SessionStarted()]
        # Carry over what the user told us before (session_config says so),
        # except the configuration slots, which are always read afresh.
        for slot, value in tracker.current_slot_values().items():
            if value is not None and slot not in CONFIG_SLOTS:
                events.append(SlotSet(slot, value))
        events.append(SlotSet("service_phone", settings.service_phone))
        events.append(SlotSet("bureau_name", settings.bureau_name))
        events.append(ActionExecuted("action_listen"))
        return events
