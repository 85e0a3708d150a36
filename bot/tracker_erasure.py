"""Deleting a user's conversation inside the Rasa process, under Rasa's lock.

Rasa 3.6 has no API to delete a conversation. When a user unfollows the account,
the gateway asks for it through the REST channel (bot.channels: ``POST
/webhooks/rest/forget``, with the installation's JWT); the channel deletes the
conversation here, through the tracker store Rasa itself was configured with
(endpoints.yml: SQL on SQLite or PostgreSQL, Redis, or in memory) and while holding
the conversation's lock from Rasa's lock store (in memory, or Redis across
processes), so that a turn in flight cannot write the conversation back after it
was deleted: the turn finishes first, or starts afterwards on an empty one.
"""

from __future__ import annotations

from typing import Any, Text

from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore, RedisTrackerStore, SQLTrackerStore


class ErasureUnsupported(Exception):
    """The configured tracker store has no way to delete here."""


def _innermost(tracker_store: Any) -> Any:
    # AwaitableTrackerStore and FailSafeTrackerStore wrap the configured store.
    seen = 0
    while hasattr(tracker_store, "_tracker_store") and seen < 5:
        tracker_store = tracker_store._tracker_store
        seen += 1
    return tracker_store


def _erase_from(store: Any, sender_id: Text) -> int:
    """Delete ``sender_id``'s conversation from ``store``; the number of stored events
    (SQL) or conversations (others) that went."""
    if isinstance(store, SQLTrackerStore):
        with store.session_scope() as session:
            gone = (session.query(store.SQLEvent)
                    .filter(store.SQLEvent.sender_id == sender_id)
                    .delete(synchronize_session=False))
            session.commit()
            return int(gone or 0)
    if isinstance(store, RedisTrackerStore):
        return int(store.red.delete(store.key_prefix + sender_id) or 0)
    if isinstance(store, InMemoryTrackerStore):
        return 1 if store.store.pop(sender_id, None) is not None else 0
    raise ErasureUnsupported(type(store).__name__)


async def erase(agent: Any, sender_id: Text) -> int:
    """Delete the conversation of ``sender_id`` from the agent's tracker store while
    holding its lock; also from a fail-safe store's in-memory fallback, if one was
    used while the database was down."""
    async with agent.lock_store.lock(sender_id):
        outer = agent.tracker_store
        gone = _erase_from(_innermost(outer), sender_id)
        fallback = getattr(_innermost_failsafe(outer), "_fallback_tracker_store", None)
        if fallback is not None:
            gone += _erase_from(fallback, sender_id)
        return gone


def _innermost_failsafe(tracker_store: Any) -> Any:
    seen = 0
    while tracker_store is not None and seen < 5:
        if isinstance(tracker_store, FailSafeTrackerStore):
            return tracker_store
        tracker_store = getattr(tracker_store, "_tracker_store", None)
        seen += 1
    return None
