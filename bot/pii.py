"""Personal numbers at rest: ID card and phone numbers.

A database dump must not reveal them, yet staff and the bot must find a
veteran by them. Each number is therefore stored three ways:
- a keyed hash (HMAC-SHA256) for exact lookup, unique in the database;
- an AES-GCM ciphertext, for the rare screen that must show the whole number;
- a masked copy for everyday display (``3101**************``, ``138****5678``).
The keys are derived (HKDF) from VETBOT_SECRET_KEY, or from VETBOT_PII_KEY when
a bureau keeps a separate key for personal data.

An ID's mask shows the first four digits (province and prefecture) only. The
birth date is stored in clear (greetings, age checks) and the gender and the
district usually give the parity of the 17th digit and the area code, so any
further digit, the last four included, would let the whole number be rebuilt
from a dump with the check digit (GB 11643); with four digits some 500
candidates remain for each veteran, and only the keyed hash could tell them
apart.

A ciphertext is bound to the place it is stored: table, column and the row's
key (``CipherColumn``) are its AES-GCM associated data ("v2:"), so that one
copied into another row or column does not decrypt. "v1:" ciphertexts, from
before the binding, still decrypt until ``bot.services.rewrap`` has sealed
them again (``vetbot pii rewrap``; ``vetbot serve`` does it at start).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot import idcard

_UNBOUND = "v1:"  # AES-GCM without associated data: readable, never written any more
_BOUND = "v2:"  # AES-GCM with the CipherColumn and the row key as associated data


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
    """``3101**************``: the province and prefecture (first four digits) only.

    The birth date, the gender and the district are stored in clear beside the
    mask; with the last four digits shown as well, the check digit would single out
    the whole number (see the module's docstring)."""
    return number[:4] + "*" * (len(number) - 4)


def mask_phone(number: str) -> str:
    """``138****5678``."""
    if len(number) < 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


@dataclass(frozen=True)
class CipherColumn:
    """A column that holds ciphertexts, and the column of the same row whose value
    names the row (a value known before the row is inserted and never changed)."""

    table: str
    column: str
    key_column: str

    def associated_data(self, row_key: str) -> bytes:
        if not row_key:
            raise ValueError(f"{self.table}.{self.column}: a ciphertext needs its row's {self.key_column}")
        return "\x1f".join(("vetbot-pii", self.table, self.column, row_key)).encode("utf-8")


# Every ciphertext column of the veteran database, and what binds each to its row.
# A veteran's phone is bound to the veteran (id_hash), not to its own phone_hash, so
# that a phone's hash and ciphertext copied together from another veteran fail too.
VETERAN_ID = CipherColumn("veterans", "id_cipher", "id_hash")
VETERAN_PHONE = CipherColumn("veterans", "phone_cipher", "id_hash")
CASE_PHONE = CipherColumn("complaint_cases", "phone_cipher", "case_number")
DRAFT_PHONE = CipherColumn("contact_drafts", "phone_cipher", "openid")
ACCESS_TOKEN = CipherColumn("wechat_tokens", "token_cipher", "appid")
CIPHER_COLUMNS = (VETERAN_ID, VETERAN_PHONE, CASE_PHONE, DRAFT_PHONE, ACCESS_TOKEN)


class NotDecryptable(ValueError):
    """A ciphertext this vault cannot open where it is: moved from another row or
    column, altered, or sealed with another key."""


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
        return cls(settings.pii_key or settings.secret_key)

    def lookup_hash(self, kind: str, value: str) -> str:
        """Hex HMAC of ``kind:value``; the kind keeps an ID and a phone from colliding."""
        message = f"{kind}:{value}".encode("utf-8")
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def encrypt(self, value: str, where: CipherColumn, row_key: str) -> str:
        """A "v2:" ciphertext that decrypts only in ``where`` of the row whose key is ``row_key``."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), where.associated_data(row_key))
        return _BOUND + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, where: CipherColumn, row_key: str) -> str:
        """The value of a ciphertext read from ``where`` in the row whose key is ``row_key``;
        NotDecryptable when it was not sealed there (or not with this key). A "v1:"
        ciphertext, from before the binding, is read without associated data."""
        if token.startswith(_BOUND):
            associated = where.associated_data(row_key)
        elif token.startswith(_UNBOUND):
            associated = None
        else:
            raise NotDecryptable("unknown ciphertext format")
        try:
            raw = base64.urlsafe_b64decode(token[3:].encode("ascii"))
            return self._aead.decrypt(raw[:12], raw[12:], associated).decode("utf-8")
        except (InvalidTag, ValueError) as error:  # ValueError: damaged base64 or text
            raise NotDecryptable(f"{where.table}.{where.column}: the ciphertext does not open in this row"
                                 ) from error

    @staticmethod
    def is_bound(token: str) -> bool:
        return token.startswith(_BOUND)

    def rewrap(self, token: str, where: CipherColumn, row_key: str) -> str:
        """``token`` bound to its row: a "v1:" ciphertext sealed again as "v2:"; a "v2:" one
        as it is. NotDecryptable when it does not open."""
        if self.is_bound(token):
            return token
        return self.encrypt(self.decrypt(token, where, row_key), where, row_key)

    def id_lookup(self, raw: str) -> str:
        return self.lookup_hash("id", idcard.normalize(raw))

    def phone_lookup(self, raw: str) -> str:
        return self.lookup_hash("phone", normalize_phone(raw))

    def protect_id(self, raw: str) -> Protected:
        """A veteran's ID number, its ciphertext bound to the row by its own keyed hash (VETERAN_ID)."""
        number = idcard.normalize(raw)
        lookup = self.lookup_hash("id", number)
        return Protected(lookup, self.encrypt(number, VETERAN_ID, lookup), mask_id(number))

    def protect_phone(self, raw: str, where: CipherColumn, row_key: str) -> Protected:
        """A phone number to store in ``where`` of the row whose key is ``row_key``."""
        number = normalize_phone(raw)
        return Protected(self.lookup_hash("phone", number), self.encrypt(number, where, row_key),
                         mask_phone(number))
