"""Personal numbers at rest: ID card and phone numbers.

A database dump must not reveal them, yet staff and the bot must find a
veteran by them. Each number is therefore stored three ways:
- a keyed hash (HMAC-SHA256) for exact lookup, unique in the database;
- an AES-GCM ciphertext, for the rare screen that must show the whole number;
- a masked copy for everyday display (``110105********1234``, ``138****5678``).
The keys are derived (HKDF) from VETBOT_SECRET_KEY, or from VETBOT_PII_KEY when
a bureau keeps a separate key for personal data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot import idcard

_CIPHER_PREFIX = "v1:"


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"vetbot-pii", info=purpose).derive(
        secret.encode("utf-8")
    )


def normalize_phone(raw: str) -> str:
    """Digits only, without +86 / 0086; full-width digits accepted."""
    text = raw.translate(str.maketrans("０１２３４５６７８９＋", "0123456789+"))
    digits = re.sub(r"[^\d]", "", text)
    for prefix in ("0086", "86"):
        if len(digits) == 11 + len(prefix) and digits.startswith(prefix):
            digits = digits[len(prefix):]
    return digits


MOBILE = re.compile(r"^1[3-9]\d{9}$")


def mask_id(number: str) -> str:
    """``110105********1234``: the area code and the last four stay visible."""
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_phone(number: str) -> str:
    """``138****5678``."""
    if len(number) < 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


@dataclass(frozen=True)
class Protected:
    lookup: str
    cipher: str
    masked: str


class PiiVault:
    """Keyed hashing and encryption of personal numbers."""

    def __init__(self, secret: str):
        if not secret:
            raise ValueError("a secret key is required (VETBOT_SECRET_KEY)")
        self._hash_key = _derive(secret, b"lookup-hash")
        self._aead = AESGCM(_derive(secret, b"encrypt"))

    @classmethod
    def from_settings(cls, settings) -> "PiiVault":
        return cls(os.environ.get("VETBOT_PII_KEY", "").strip() or settings.secret_key)

    def lookup_hash(self, kind: str, value: str) -> str:
        """Hex HMAC of ``kind:value``; the kind keeps an ID and a phone from colliding."""
        message = f"{kind}:{value}".encode("utf-8")
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def encrypt(self, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), None)
        return _CIPHER_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        if not token.startswith(_CIPHER_PREFIX):
            raise ValueError("unknown ciphertext format")
        raw = base64.urlsafe_b64decode(token[len(_CIPHER_PREFIX):].encode("ascii"))
        return self._aead.decrypt(raw[:12], raw[12:], None).decode("utf-8")

    def id_lookup(self, raw: str) -> str:
        return self.lookup_hash("id", idcard.normalize(raw))

    def phone_lookup(self, raw: str) -> str:
        return self.lookup_hash("phone", normalize_phone(raw))

    def protect_id(self, raw: str) -> Protected:
        number = idcard.normalize(raw)
        return Protected(self.lookup_hash("id", number), self.encrypt(number), mask_id(number))

    def protect_phone(self, raw: str) -> Protected:
        number = normalize_phone(raw)
        return Protected(self.lookup_hash("phone", number), self.encrypt(number), mask_phone(number))
