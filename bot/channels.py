"""Rasa input channels that redact personal numbers before Rasa sees the text.

``credentials.yml`` registers ``bot.channels.RedactingRestInput`` instead of
Rasa's ``rest`` channel, at the same URL (/webhooks/rest/webhook), so the
terminal chat and the tests talk to it unchanged. The WeChat gateway redacts
with the same function (bot.redaction) before it calls Rasa.

When the bot has just asked for a phone number (a complaint's case phone: the
conversation's ``requested_slot`` is one of bot.services.contacts.PURPOSES, asked
within the last 30 minutes), the number the user types is kept for that action,
protected, in the veteran database (bot.services.contacts); Rasa still sees only the
marker. There, a bare number (a landline without its area code) is taken out too.

The channel keeps no state of its own, so any number of Rasa processes behind a
load balancer behave as one: whether a phone number is awaited is read from the
conversation in Rasa's tracker store (shared by them all), and the numbers taken
out of a message travel with that request only (a context variable), never in a
table keyed by sender that could leak to another request or grow without end.

``POST /webhooks/rest/forget`` (same token) deletes a user's conversation under
Rasa's lock, for the gateway when the user unfollows (bot.tracker_erasure).

When a message had numbers removed, the user is told once per conversation:
the channel runs ``action_privacy_notice`` through the agent (as Rasa's
``/conversations/<id>/execute`` endpoint does) before the message itself, so
the notice is part of the conversation's record like any bot message.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import re
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

from bot import rasa_auth, resources, tracker_erasure
from bot.redaction import MARKERS, redact
from bot.services import contacts
from bot.settings import internal_token

log = logging.getLogger(__name__)

NOTICE_ACTION = "action_privacy_notice"
NOTICE_SLOT = "privacy_notice_given"
AWAIT_SECONDS = 30 * 60  # as long as a contact draft lives
# The numbers taken out of the message of the request being handled.
_TAKEN: "contextvars.ContextVar[Tuple[str, ...]]" = contextvars.ContextVar("vetbot_taken_phones", default=())
# While a phone number is awaited: any run of 7 to 12 digits (a local number, or one
# split oddly) is a phone number too.
BARE_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){6,11}(?![0-9A-Za-z])")


class RedactingRestInput(RestInput):
    def __init__(self) -> None:
        self._rasa_secret: Optional[str] = None  # bot/rasa_auth.py; read on first use
        self._app = None  # the Sanic app, for its agent; set by the first request

    @classmethod
    def name(cls) -> Text:
        return "rest"

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        self._app = req.app
        return await super()._extract_sender(req)

    def _extract_message(self, req: Request) -> Optional[Text]:
        text = super()._extract_message(req)
        _TAKEN.set(())
        if not text:
            return text
        result = redact(text)
        _TAKEN.set(tuple(result.phones))
        return result.text

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
            kept = await self._take_phones(message)
            if (message.metadata or {}).get("redacted") and not kept:
                await self._notify_once(message)
            await on_new_message(message)

        blueprint = super().blueprint(handle)

        @blueprint.route("/forget", methods=["POST"])
        async def forget(request: Request):
            # The gateway, when a user unfollows: their conversation goes, under Rasa's lock.
            sender = (request.json or {}).get("sender") if isinstance(request.json, dict) else None
            agent = getattr(request.app.ctx, "agent", None)
            if not isinstance(sender, str) or not sender or agent is None or agent.tracker_store is None:
                return response.json({"error": "sender and a loaded agent are required"}, status=400)
            try:
                gone = await tracker_erasure.erase(agent, sender)
            except tracker_erasure.ErasureUnsupported as error:
                log.error("conversation not deleted: tracker store %s cannot delete", error)
                return response.json({"error": "tracker store cannot delete"}, status=501)
            return response.json({"deleted": gone})

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

    async def _take_phones(self, message: UserMessage) -> bool:
        """Before Rasa sees ``message``: when the bot has just asked this sender for a
        phone number, bare numbers come out of the text too, and the number given is
        kept for the action that asked. True when a number was kept."""
        phones: List[str] = list(_TAKEN.get())
        if not phones and not BARE_NUMBER.search(message.text or ""):
            return False  # no number to take or keep: the conversation need not be read
        purpose = await self._asking_for_phone(message.sender_id)
        if purpose is not None and message.text:
            bare = take_bare_numbers(message.text)
            if bare.phones:
                message.text = bare.text
                phones.extend(bare.phones)
                kinds = list((message.metadata or {}).get("redacted") or [])
                message.metadata = {"redacted": kinds + ([] if "phone" in kinds else ["phone"])}
        plausible = [p for p in phones if contacts.plausible_phone(p)]
        return bool(plausible) and purpose is not None and await self._keep_phone(
            message.sender_id, purpose, plausible[0])

    def _secret(self) -> str:
        if self._rasa_secret is None:
            self._rasa_secret = internal_token("VETBOT_RASA_TOKEN")
        return self._rasa_secret

    async def _asking_for_phone(self, sender_id: Text) -> Optional[str]:
        """The purpose (bot.services.contacts.PURPOSES) when the bot asked this sender
        for a phone number at its last turn, within AWAIT_SECONDS; else None. Read from
        Rasa's tracker store, which every Rasa process shares."""
        agent = getattr(getattr(self._app, "ctx", None), "agent", None)
        if agent is None or agent.tracker_store is None:
            return None
        try:
            tracker = await agent.tracker_store.retrieve(sender_id)
        except Exception as error:
            log.warning("conversation state not read: %s", type(error).__name__)
            return None
        if tracker is None or not tracker.active_loop_name or not tracker.events:
            return None
        if time.time() - tracker.events[-1].timestamp > AWAIT_SECONDS:
            return None  # asked long ago: the number typed now may be anything
        purpose = tracker.get_slot("requested_slot")
        return purpose if purpose in contacts.PURPOSES else None

    async def _keep_phone(self, sender_id: Text, purpose: str, number: str) -> bool:
        """Keep ``number`` for the action that asked for it (``purpose``)."""
        try:
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


class _Taken:
    def __init__(self, text: str, phones: Tuple[str, ...]):
        self.text, self.phones = text, phones


def take_bare_numbers(text: str) -> _Taken:
    """While a phone number is awaited: every run of 7 to 12 digits left in the
    (already redacted) ``text`` is a phone number too."""
    phones: List[str] = []

    def take(match: "re.Match[str]") -> str:
        phones.append(re.sub(r"\D", "", match.group(0)))
        return MARKERS["phone"]

    return _Taken(BARE_NUMBER.sub(take, text), tuple(phones))
