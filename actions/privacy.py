"""Tell the user, once per conversation, not to send personal numbers in chat.

The edge (bot.channels, the WeChat gateway) has already replaced the numbers
with markers; this action sees a marker in the latest message. It is the custom
slot mapping of ``privacy_notice_given``, so Rasa runs it after every user
message (action_extract_slots), before the answer to the message itself.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.redaction import LABELS, kinds_in


class ActionPrivacyNotice(Action):
    def name(self) -> Text:
        return "action_privacy_notice"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        if tracker.get_slot("privacy_notice_given"):
            return []
        kinds = kinds_in(tracker.latest_message.get("text") or "")
        if not kinds:
            return []
        what = "、".join(LABELS[kind] for kind in kinds)
        dispatcher.utter_message(response="utter_privacy_notice", removed=what)
        return [SlotSet("privacy_notice_given", True)]
