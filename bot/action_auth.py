"""The action server refuses calls without the shared token.

rasa-sdk 3.6 has no authentication of its own: anyone who could reach its port could
POST /webhook naming ``action_query_my_benefits`` and any ``sender_id`` and read that
user's records. Rasa sends the token of endpoints.yml (``action_endpoint.token``) as
the query parameter ``token`` on every call; this request middleware, attached through
rasa-sdk's plugin hook (``rasa_sdk_plugins``), answers 401 to any call without it.
``/health`` stays open (it tells nothing; the gateway polls it).
"""

from __future__ import annotations

import hmac
import logging

from sanic import Sanic, response

from bot.settings import internal_token

log = logging.getLogger(__name__)

OPEN_PATHS = ("/health",)


def expected_token() -> str:
    """The token of this installation (VETBOT_ACTION_TOKEN, else derived from the key)."""
    return internal_token("VETBOT_ACTION_TOKEN")


def require_token(app: Sanic, token: str) -> None:
    """Attach the check to a rasa-sdk app."""
    if not token:
        raise ValueError("the action server needs a token")
    wanted = token.encode("utf-8")

    @app.middleware("request")
    async def check_token(request):
        if request.path in OPEN_PATHS:
            return None
        given = (request.args.get("token") or "").encode("utf-8")
        if hmac.compare_digest(given, wanted):
            return None
        log.warning("action server call refused (no or wrong token): %s %s", request.method, request.path)
        return response.json({"error": "unauthorised"}, status=401)
