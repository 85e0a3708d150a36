"""Phone numbers typed in chat when the bot asked for one (bot.services.contacts):
kept protected, taken once, gone after 30 minutes and on unfollow. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text

from bot.db.models import ContactDraft
from bot.db.session import session_scope
from bot.services import contacts, erasure

NOW = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.timezone.utc)


def _count(factory) -> int:
    with session_scope(factory) as session:
        return session.execute(select(func.count()).select_from(ContactDraft)).scalar_one()


def test_a_draft_is_kept_protected_and_taken_once(session_factory, vault):
    with session_scope(session_factory) as session:
        assert contacts.save(session, vault, "o-1", "complaint_phone", "138 1234 5678", NOW) == "138****5678"
        contacts.save(session, vault, "o-2", "complaint_phone", "13900000000", NOW)
    with session_scope(session_factory) as session:
        raw = session.execute(text("SELECT * FROM contact_drafts")).mappings().all()
        assert all("13812345678" not in str(dict(row)) for row in raw)
        draft = contacts.peek(session, "o-1", "complaint_phone", NOW + dt.timedelta(minutes=5))
        assert draft.masked == "138****5678" and draft.number(vault) == "13812345678"
        assert draft.lookup == vault.phone_lookup("13812345678")
    with session_scope(session_factory) as session:
        assert contacts.take(session, "o-1", "complaint_phone", NOW).masked == "138****5678"
    with session_scope(session_factory) as session:
        assert contacts.take(session, "o-1", "complaint_phone", NOW) is None
        assert contacts.peek(session, "o-2", "complaint_phone", NOW) is not None  # another user's stays


def test_a_new_number_replaces_the_old_one(session_factory, vault):
    with session_scope(session_factory) as session:
        contacts.save(session, vault, "o-1", "complaint_phone", "13812345678", NOW)
        contacts.save(session, vault, "o-1", "complaint_phone", "021-69590001", NOW + dt.timedelta(seconds=1))
    assert _count(session_factory) == 1
    with session_scope(session_factory) as session:
        assert contacts.peek(session, "o-1", "complaint_phone", NOW).masked == "021****0001"


def test_old_drafts_are_ignored_and_purged(session_factory, vault):
    with session_scope(session_factory) as session:
        contacts.save(session, vault, "o-1", "complaint_phone", "13812345678", NOW)
        contacts.save(session, vault, "o-2", "complaint_phone", "13812345679", NOW + dt.timedelta(minutes=20))
    later = NOW + contacts.DRAFT_TTL + dt.timedelta(seconds=1)
    with session_scope(session_factory) as session:
        assert contacts.peek(session, "o-1", "complaint_phone", later) is None
        assert contacts.purge_expired(session, later) == 1
    assert _count(session_factory) == 1


def test_unfollow_deletes_drafts(session_factory, vault):
    with session_scope(session_factory) as session:
        contacts.save(session, vault, "o-1", "complaint_phone", "13812345678", NOW)
    with session_scope(session_factory) as session:
        erasure.forget_openid(session, vault, "o-1", NOW)
    assert _count(session_factory) == 0


def test_only_known_purposes(session_factory, vault):
    with pytest.raises(ValueError), session_scope(session_factory) as session:
        contacts.save(session, vault, "o-1", "anything", "13812345678", NOW)


@pytest.mark.parametrize("number, plausible", [
    ("13812345678", True), ("02169590001", True), ("051082345678", True), ("0108234567", True),
    ("69590001", False), ("12345", False), ("23812345678", False),
])
def test_plausible_phone(number, plausible):
    assert contacts.plausible_phone(number) is plausible
