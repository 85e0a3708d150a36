"""Rasa input channels that redact personal numbers before Rasa sees the text.

``credentials.yml`` registers ``bot.channels.RedactingRestInput`` instead of
Rasa's ``rest`` channel, at the same URL (/webhooks/rest/webhook), so the
terminal chat and the tests talk to it unchanged. The WeChat gateway redacts
with the same function (bot.redaction) before it calls Rasa.

When the bot has just asked for a phone number (a complaint's case phone: the
conversation's ``requested_slot`` is one of bot.services.contacts.PURPOSES), the
number the user types is kept for that action, protected, in the veteran database
(bot.services.contacts); Rasa still sees only the marker.

When a message had numbers removed, the user is told once per conversation:
the channel runs ``action_privacy_notice`` through the agent (as Rasa's
``/conversations/<id>/execute`` endpoint does) before the message itself, so
the notice is part of the conversation's record like any bot message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Text, Tuple

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

from bot import rasa_auth, resources
from bot.redaction import MARKERS, redact
from bot.services import contacts
from bot.settings import internal_token

log = logging.getLogger(__name__)

NOTICE_ACTION = "action_privacy_notice"
NOTICE_SLOT = "privacy_notice_given"
AWAIT_SECONDS = 30 * 60  # as long as a contact draft lives
# While a phone number is awaited: any run of 7 to 12 digits (a local number, or one
# split oddly) is a phone number too.
BARE_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){6,11}(?![0-9A-Za-z])")


class RedactingRestInput(RestInput):
    def __init__(self) -> None:
        self._rasa_secret: Optional[str] = None  # bot/rasa_auth.py; read on first use
        self._app = None  # the Sanic app, for its agent; set by the first request
        # Phone numbers taken out of the message being received, by sender, until the
        # handler has decided whether the bot asked for one (a few milliseconds).
        self._phones: Dict[Text, Tuple[str, ...]] = {}
        # Senders whose conversation waits for a phone number (as of their last turn):
        # there, a bare number (a landline without its area code) is taken out too.
        self._awaiting: Dict[Text, float] = {}

    @classmethod
    def name(cls) -> Text:
        return "rest"

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        self._app = req.app
        return await super()._extract_sender(req)

    def _extract_message(self, req: Request) -> Optional[Text]:
        text = super()._extract_message(req)
        if not text:
            return text
        result = redact(text)
        sender = (req.json or {}).get("sender") if isinstance(req.json, dict) else None
        sender = str(sender) if sender is not None else None
        phones = list(result.phones)
        cleaned = result.text
        if sender is not None and time.monotonic() - self._awaiting.get(sender, -AWAIT_SECONDS) < AWAIT_SECONDS:
            def take(match: "re.Match[str]") -> str:
                phones.append(re.sub(r"\D", "", match.group(0)))
                return MARKERS["phone"]

            cleaned = BARE_NUMBER.sub(take, cleaned)
        if phones and sender is not None:
            self._phones[sender] = tuple(phones)
        return cleaned

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        metadata = super().get_metadata(request)
        text = super()._extract_message(request)
        kinds = redact(text).kinds if text else ()
        if not kinds:
            return metadata
        # The metadata the client sent may itself carry numbers: keep only our note.
        return {"redacted": list(kinds)}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def handle(message: UserMessage) -> None:
            phones = self._phones.pop(message.sender_id, ())
            plausible = [p for p in phones if contacts.plausible_phone(p)]
            kept = bool(phones) and await self._keep_asked_phone(message.sender_id, plausible[0] if plausible else "")
            if (message.metadata or {}).get("redacted") and not kept:
                await self._notify_once(message)
            await on_new_message(message)
            if await self._asking_for_phone(message.sender_id):
                self._awaiting[message.sender_id] = time.monotonic()
            else:
                self._awaiting.pop(message.sender_id, None)

        blueprint = super().blueprint(handle)

        @blueprint.middleware("request")
        async def require_token(request: Request):
            # A message here is answered as the sender it names (their records, their
            # bookings): only the gateway and our own clients may send one.
            if request.method == "POST" and not rasa_auth.authorised(request.headers.get("Authorization"),
                                                                      self._secret()):
                log.warning("REST channel call refused (no or wrong token)")
                return response.json({"error": "unauthorised"}, status=401)
            return None

        return blueprint

    def _secret(self) -> str:
        if self._rasa_secret is None:
            self._rasa_secret = internal_token("VETBOT_RASA_TOKEN")
        return self._rasa_secret

    async def _asking_for_phone(self, sender_id: Text) -> Optional[str]:
        """The purpose (bot.services.contacts.PURPOSES) when the bot has just asked this
        sender for a phone number, else None."""
        agent = getattr(getattr(self._app, "ctx", None), "agent", None)
        if agent is None or agent.tracker_store is None:
            return None
        try:
            tracker = await agent.tracker_store.retrieve(sender_id)
        except Exception as error:
            log.warning("conversation state not read: %s", type(error).__name__)
            return None
        if tracker is None or not tracker.active_loop_name:
            return None
        purpose = tracker.get_slot("requested_slot")
        return purpose if purpose in contacts.PURPOSES else None

    async def _keep_asked_phone(self, sender_id: Text, number: str) -> bool:
        """Keep ``number`` for the action that asked for it; False when nothing asked."""
        try:
            purpose = await self._asking_for_phone(sender_id)
            if purpose is None or not contacts.plausible_phone(number):
                return False

            def save() -> None:
                with resources.open_session() as session:
                    contacts.save(session, resources.vault(), sender_id, purpose, number,
                                  dt.datetime.now(dt.timezone.utc))

            await asyncio.to_thread(save)
            return True
        except Exception as error:  # the action will ask again; the number is not logged
            log.warning("phone number not kept: %s", type(error).__name__)
            return False

    async def _notify_once(self, message: UserMessage) -> None:
        agent = getattr(getattr(self._app, "ctx", None), "agent", None)
        if agent is None or agent.processor is None:
            return
        try:
            async with agent.lock_store.lock(message.sender_id):
                tracker = await agent.processor.get_tracker(message.sender_id)
                if tracker.get_slot(NOTICE_SLOT):
                    return
                await agent.execute_action(message.sender_id, NOTICE_ACTION, message.output_channel,
                                           policy=None, confidence=None)
        except Exception as error:  # the notice must never cost the user their answer
            log.warning("privacy notice not sent: %s", type(error).__name__)
