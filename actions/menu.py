"""action_choose_option: a numbered reply picks an entry of the last list sent."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, UserUttered, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from bot.choices import parse_choice
from bot.payloads import parse_payload


def previous_turn(tracker: Tracker) -> List[Dict[str, Any]]:
    """The events between the user's previous message and the latest one (what the bot
    did with the previous message), latest first."""
    found: List[Dict[str, Any]] = []
    users_seen = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            users_seen += 1
            if users_seen == 2:
                break
        elif users_seen == 1:
            found.append(event)
    return found


def buttons_offered(tracker: Tracker) -> Optional[List[Dict[str, Any]]]:
    """Buttons of the bot's last message, if the user is answering it now.

    Walks back from the user's latest message. Bot messages since the user's
    previous turn count; a repeat of the same user text (Rasa's two-stage
    fallback re-adds the clarified message) is skipped.
    """
    events = list(tracker.events)
    current_text = (tracker.latest_message or {}).get("text")
    passed_current = False
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            if not passed_current or event.get("text") == current_text:
                passed_current = True
                continue
            return None
        if kind == "bot" and passed_current:
            buttons = (event.get("data") or {}).get("buttons")
            if buttons:
                return buttons
            return None
    return None


class ActionChooseOption(Action):
    def name(self) -> Text:
        return "action_choose_option"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        buttons = buttons_offered(tracker)
        if not buttons:
            dispatcher.utter_message(response="utter_no_menu_to_choose")
            return []
        choice = parse_choice(tracker.latest_message.get("text") or "")
        if choice is None or not 1 <= choice <= len(buttons):
            dispatcher.utter_message(response="utter_choose_in_range", max_option=len(buttons))
            # Offer the same list again so that the next number refers to it.
            dispatcher.utter_message(text="", buttons=buttons)
            return []
        button = buttons[choice - 1]
        parse_data = parse_payload(button["payload"])
        if parse_data is None:
            dispatcher.utter_message(response="utter_no_menu_to_choose")
            return []
        # Replace the number with what it stands for, as if the user had
        # pressed the button: the dialogue goes on from that intent. This is
        # how Rasa's two-stage fallback re-adds a clarified message: the
        # rewind also removes the action_listen before the user's turn.
        parse_data["text"] = button["title"]
        return [
            UserUtteranceReverted(),
            ActionExecuted("action_listen"),
            UserUttered(
                text=button["title"],
                parse_data=parse_data,
                input_channel=tracker.get_latest_input_channel(),
            ),
        ]
