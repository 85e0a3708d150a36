"""bind_identity / unbind_identity: the chat side of 身份绑定.

The chat never asks for an ID number: binding sends a one-time link to the H5
page (bot.gateway.binding), where bot.services.identity does the checking.
The conversation's sender id is the user's OpenID (the gateway sets it so).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Dict, List, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from bot.services import identity, veterans

LINK_MINUTES = int(identity.LINK_TTL.total_seconds() // 60)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ActionBindIdentity(Action):
    """Already bound → say so; locked → say when to retry; else send a binding link."""

    def name(self) -> Text:
        return "action_bind_identity"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        openid = tracker.sender_id
        settings, vault, now = resources.settings(), resources.vault(), _now()

        def work() -> Tuple[str, Any]:
            with resources.open_session() as session:
                binding = identity.binding_for(session, openid)
                if binding is not None:
                    return "bound", veterans.masked_name(binding.veteran.name)
                return "link", identity.issue_link(session, vault, openid,
                                                   settings.public_base_url, now)

        # SQLAlchemy blocks; the action server's event loop serves other users meanwhile.
        kind, result = await asyncio.to_thread(work)
        if kind == "bound":
            dispatcher.utter_message(response="utter_identity_already_bound", veteran_name=result)
        elif result.ok:
            dispatcher.utter_message(response="utter_identity_binding_link", link=result.url,
                                     minutes=LINK_MINUTES)
        else:
            dispatcher.utter_message(response="utter_identity_binding_locked",
                                     retry_at=identity.format_beijing(result.locked_until))
        return []


class ActionUnbindIdentity(Action):
    """解除绑定: removes this OpenID's binding, or says there was none."""

    def name(self) -> Text:
        return "action_unbind_identity"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        openid = tracker.sender_id
        vault, now = resources.vault(), _now()

        def work() -> bool:
            with resources.open_session() as session:
                return identity.unbind(session, vault, openid, now)

        if await asyncio.to_thread(work):
            dispatcher.utter_message(response="utter_identity_unbound")
        else:
            dispatcher.utter_message(response="utter_identity_not_bound")
        return []
