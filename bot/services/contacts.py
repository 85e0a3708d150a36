"""Phone numbers typed in chat when the bot asked for one.

A complaint can be answered on a phone given for that case. Typed in chat, the
number would reach Rasa's tracker store and logs, so the chat channel (bot.channels)
takes it out of the message first: when the conversation is waiting for a phone
(``requested_slot`` is one of PURPOSES), the number goes here, protected like every
phone number (keyed hash, AES-GCM, masked copy), and Rasa sees only the marker.
The action that asked then takes the draft (``take``); drafts older than
DRAFT_TTL are ignored and purged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.db.models import ContactDraft
from bot.db.session import as_utc, execute_write
from bot.pii import DRAFT_PHONE, PiiVault, normalize_phone

DRAFT_TTL = dt.timedelta(minutes=30)
PURPOSES = ("complaint_phone",)


@dataclass(frozen=True)
class Draft:
    openid: str
    lookup: str
    cipher: str  # bound to this user's draft row (DRAFT_PHONE): opened with ``number``
    masked: str

    def number(self, vault: PiiVault) -> str:
        """The number in clear, for the action that stores it elsewhere (sealed again there)."""
        return vault.decrypt(self.cipher, DRAFT_PHONE, self.openid)


def plausible_phone(number: str) -> bool:
    """A mobile (11 digits from 1) or a landline with its area code (10–12 digits from 0)."""
    digits = normalize_phone(number)
    return (len(digits) == 11 and digits.startswith("1")) or (10 <= len(digits) <= 12 and digits.startswith("0"))


def save(session: Session, vault: PiiVault, openid: str, purpose: str, number: str, now: dt.datetime) -> str:
    """Keep the number for ``openid`` (replacing an earlier draft); returns the masked copy."""
    if purpose not in PURPOSES:
        raise ValueError(f"not a contact purpose: {purpose}")
    now = as_utc(now)
    protected = vault.protect_phone(normalize_phone(number), DRAFT_PHONE, openid)
    execute_write(session, delete(ContactDraft).where(
        ContactDraft.openid == openid, ContactDraft.purpose == purpose), synchronize_session=False)
    session.add(ContactDraft(openid=openid, purpose=purpose, phone_hash=protected.lookup,
                             phone_cipher=protected.cipher, phone_masked=protected.masked, created_at=now))
    session.flush()
    return protected.masked


def peek(session: Session, openid: str, purpose: str, now: dt.datetime) -> Optional[Draft]:
    """The user's latest draft for ``purpose`` if it is recent enough, without removing it."""
    row = session.execute(
        select(ContactDraft).where(ContactDraft.openid == openid, ContactDraft.purpose == purpose,
                                   ContactDraft.created_at > as_utc(now) - DRAFT_TTL)
        .order_by(ContactDraft.id.desc()).limit(1)).scalar_one_or_none()
    return None if row is None else Draft(row.openid, row.phone_hash, row.phone_cipher, row.phone_masked)


def take(session: Session, openid: str, purpose: str, now: dt.datetime) -> Optional[Draft]:
    """The draft (as ``peek``), and every draft of this user for ``purpose`` deleted."""
    draft = peek(session, openid, purpose, now)
    execute_write(session, delete(ContactDraft).where(
        ContactDraft.openid == openid, ContactDraft.purpose == purpose), synchronize_session=False)
    return draft


def purge_expired(session: Session, now: dt.datetime) -> int:
    """Delete drafts nobody took in time; returns how many."""
    result = execute_write(session, delete(ContactDraft).where(
        ContactDraft.created_at <= as_utc(now) - DRAFT_TTL), synchronize_session=False)
    return result.rowcount or 0


def erase_contact_drafts(session: Session, openid: str, now: dt.datetime) -> None:
    session.execute(delete(ContactDraft).where(ContactDraft.openid == openid),
                    execution_options={"synchronize_session": False})
