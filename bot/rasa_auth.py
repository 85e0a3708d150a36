"""Rasa's HTTP API and our REST channel need a token.

Rasa runs with ``--jwt-secret`` (bot/rasa_server.py passes the installation's
``rasa_token``, VETBOT_RASA_TOKEN or derived from the secret key); every endpoint of
its HTTP API (trackers, events, model, status) then answers 401 without a JSON Web
Token signed with that secret. The REST channel that carries users' messages
(bot.channels.RedactingRestInput) checks the same token, for a message sent there
is answered as that user. The gateway, the console, ``vetbot chat`` and the tests
send ``Authorization: Bearer <token>`` (``headers``).
"""

from __future__ import annotations

import hmac
from typing import Dict, Optional

import jwt

ALGORITHM = "HS256"
# Rasa lets the role "admin" reach every conversation (rasa.server.requires_auth).
CLAIMS = {"user": {"username": "vetbot", "role": "admin"}}


def bearer(secret: str) -> str:
    """The JSON Web Token for this installation's internal callers."""
    if not secret:
        raise ValueError("no Rasa token configured")
    return jwt.encode(CLAIMS, secret, algorithm=ALGORITHM)


def headers(secret: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {bearer(secret)}"}


def authorised(header: Optional[str], secret: str) -> bool:
    """Whether an Authorization header carries a token signed with ``secret``."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token or not secret:
        return False
    try:
        claims = jwt.decode(token.strip(), secret, algorithms=[ALGORITHM])
    except jwt.PyJWTError:
        return False
    return hmac.compare_digest(str((claims.get("user") or {}).get("role", "")), "admin")
