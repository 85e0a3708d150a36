"""query_my_benefits: the bound veteran's own records; an offer to bind otherwise."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from bot.clock import SHANGHAI
from bot.services import benefits, veterans


def now() -> dt.datetime:
    """Beijing time now (a function, so that tests can fix the clock)."""
    return dt.datetime.now(SHANGHAI)


class ActionQueryMyBenefits(Action):
    def name(self) -> Text:
        return "action_query_my_benefits"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        today = now().date()
        with resources.open_session() as session:
            veteran = veterans.by_openid(session, tracker.sender_id)
            if veteran is None:
                dispatcher.utter_message(response="utter_benefits_need_binding")
                return []
            summary = benefits.summarise(session, veteran.id, today)
            name = veterans.masked_name(veteran.name)
        text = benefits.describe(summary, name, today)
        phone = tracker.get_slot("service_phone")
        if phone:
            text += f"\n咨询电话：{phone}"
        dispatcher.utter_message(text=text)
        return []
