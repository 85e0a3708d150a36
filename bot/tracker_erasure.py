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

from typing import Any, List, Text

from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore, RedisTrackerStore, SQLTrackerStore


class ErasureUnsupported(Exception):
    """The configured tracker store has no way to delete here."""


def _layers(tracker_store: Any) -> List[Any]:
    """The store and what it wraps, outermost first: Rasa's FailSafeTrackerStore and
    AwaitableTrackerStore wrap the configured store (``_tracker_store``)."""
    layers = [tracker_store]
    while hasattr(layers[-1], "_tracker_store") and len(layers) < 6:
        layers.append(layers[-1]._tracker_store)
    return layers


def _innermost(tracker_store: Any) -> Any:
    return _layers(tracker_store)[-1]


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
        layers = _layers(agent.tracker_store)
        gone = _erase_from(layers[-1], sender_id)
        for layer in layers:
            if isinstance(layer, FailSafeTrackerStore) and layer._fallback_tracker_store is not None:
                gone += _erase_from(layer._fallback_tracker_store, sender_id)
        return gone
