"""Rasa input channels that redact personal numbers before Rasa sees the text.

``credentials.yml`` registers ``bot.channels.RedactingRestInput`` instead of
Rasa's ``rest`` channel, at the same URL (/webhooks/rest/webhook), so the
terminal chat and the tests talk to it unchanged. The WeChat gateway redacts
with the same function (bot.redaction) before it calls Rasa.

When a message had numbers removed, the user is told once per conversation:
the channel runs ``action_privacy_notice`` through the agent (as Rasa's
``/conversations/<id>/execute`` endpoint does) before the message itself, so
the notice is part of the conversation's record like any bot message.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint
from sanic.request import Request

from bot.redaction import redact

log = logging.getLogger(__name__)

NOTICE_ACTION = "action_privacy_notice"
NOTICE_SLOT = "privacy_notice_given"


class RedactingRestInput(RestInput):
    def __init__(self) -> None:
        self._app = None  # the Sanic app, for its agent; set by the first request

    @classmethod
    def name(cls) -> Text:
        return "rest"

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        self._app = req.app
        return await super()._extract_sender(req)

    def _extract_message(self, req: Request) -> Optional[Text]:
        text = super()._extract_message(req)
        return redact(text).text if text else text

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
            if (message.metadata or {}).get("redacted"):
                await self._notify_once(message)
            await on_new_message(message)

        return super().blueprint(handle)

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
