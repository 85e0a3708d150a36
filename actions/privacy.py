"""Tell the user, once per conversation, not to send personal numbers in chat.

The edge (bot.channels, the WeChat gateway) has already replaced the numbers
with markers and runs this action before the message itself, when the
conversation has not had the notice yet. The action ends with action_listen,
so that the dialogue policies see the user's message exactly as without it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SlotSet
from rasa_sdk.executor import CollectingDispatcher


class ActionPrivacyNotice(Action):
    def name(self) -> Text:
        return "action_privacy_notice"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        if tracker.get_slot("privacy_notice_given"):
            return [ActionExecuted("action_listen")]
        dispatcher.utter_message(response="utter_privacy_notice")
        return [SlotSet("privacy_notice_given", True), ActionExecuted("action_listen")]
