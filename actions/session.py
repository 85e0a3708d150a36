"""The configuration slots every response uses ({service_phone}, {bureau_name}).

action_session_start fills them when a conversation (or a new session of it) starts;
action_configuration, the custom mapping action of both slots, checks them after every
user message, so a changed configuration (a bureau setting VETBOT_BUREAU_NAME after
trying the demo) shows from the very next message, the subscribe greeting included, also
in a session that started before the change.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import Settings

CONFIG_SLOTS = ("service_phone", "bureau_name")


def configuration(settings: Settings) -> Dict[Text, str]:
    return {"service_phone": settings.service_phone, "bureau_name": settings.bureau_name}


class ActionConfiguration(Action):
    """Run by Rasa's action_extract_slots after each user message: the slots that
    differ from the configuration (none, usually)."""

    def name(self) -> Text:
        return "action_configuration"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return [SlotSet(slot, value) for slot, value in configuration(Settings.from_env()).items()
                if tracker.get_slot(slot) != value]


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
        events.extend(SlotSet(slot, value) for slot, value in configuration(settings).items())
        events.append(ActionExecuted("action_listen"))
        return events
