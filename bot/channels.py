"""Rasa input channels that redact personal numbers before Rasa sees the text.

``credentials.yml`` registers ``bot.channels.RedactingRestInput`` instead of
Rasa's ``rest`` channel, at the same URL (/webhooks/rest/webhook), so the
terminal chat and the tests talk to it unchanged. The WeChat gateway redacts
with the same function (bot.redaction) before it calls Rasa.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Text

from rasa.core.channels.rest import RestInput
from sanic.request import Request

from bot.redaction import redact


class RedactingRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "rest"

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
