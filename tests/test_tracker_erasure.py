"""Deleting a conversation in the Rasa process (bot.tracker_erasure), on Rasa's own
tracker stores built from endpoint configurations as Rasa builds them (SQL on SQLite
and PostgreSQL, Redis, in memory), inside Rasa's ``Agent`` with its lock store (in
memory, and Redis as several Rasa processes share it). A turn in flight holding the
lock finishes first and cannot write the conversation back afterwards."""

from __future__ import annotations

import asyncio

import pytest
from rasa.core.agent import Agent
from rasa.core.lock_store import InMemoryLockStore, LockStore
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy.engine import make_url

from bot import tracker_erasure


def _sql_config(database_url: str) -> EndpointConfig:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return EndpointConfig(type="SQL", dialect="sqlite", db=url.database)
    return EndpointConfig(type="SQL", dialect="postgresql", url=url.host, port=url.port, db=url.database,
                          username=url.username, password=url.password)


def _redis_config(redis_url: str, kind: str) -> EndpointConfig:
    url = make_url(redis_url)
    return EndpointConfig(type="redis", url=url.host, port=url.port, db=int(url.database or 0),
                          **({"key_prefix": "erasure-test"} if kind == "tracker" else {}))


def _tracker_database(request, tmp_path, backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    return request.getfixturevalue("postgres_server").create_database()


@pytest.fixture(params=["sqlite", "postgresql", "redis", "memory"])
def agent(request, tmp_path):
    if request.param in ("sqlite", "postgresql"):
        config = _sql_config(_tracker_database(request, tmp_path, request.param))
        lock_store = InMemoryLockStore()
    elif request.param == "redis":
        redis_url = request.getfixturevalue("redis_server")
        config = _redis_config(redis_url, "tracker")
        lock_store = LockStore.create(_redis_config(redis_url, "lock"))  # Rasa's RedisLockStore
    else:
        config, lock_store = None, InMemoryLockStore()
    domain = Domain.empty()
    store = TrackerStore.create(config, domain)  # as Rasa does with endpoints.yml's tracker_store
    return Agent(domain=domain, tracker_store=store, lock_store=lock_store)


async def _talk(agent: Agent, sender: str, *lines: str) -> None:
    tracker = await agent.tracker_store.retrieve(sender) or DialogueStateTracker(sender, slots=[])
    for line in lines:
        tracker.update(UserUttered(line, {"name": "greet", "confidence": 1.0}))
        tracker.update(BotUttered("您好！"))
        tracker.update(ActionExecuted("action_listen"))
    await agent.tracker_store.save(tracker)


async def _said(agent: Agent, sender: str) -> list:
    tracker = await agent.tracker_store.retrieve(sender)
    return [e.text for e in tracker.events if isinstance(e, UserUttered)] if tracker else []


async def test_the_conversation_goes_and_no_other(agent):
    await _talk(agent, "o-alice", "你好", "我想预约")
    await _talk(agent, "o-bob", "你好")
    assert await tracker_erasure.erase(agent, "o-alice") > 0
    assert await _said(agent, "o-alice") == []
    assert await _said(agent, "o-bob") == ["你好"]
    assert await tracker_erasure.erase(agent, "o-alice") == 0  # again: nothing left, no error
    assert await tracker_erasure.erase(agent, "o-nobody") == 0


async def test_a_turn_in_flight_cannot_write_the_conversation_back(agent):
    await _talk(agent, "o-alice", "你好")
    async with agent.lock_store.lock("o-alice"):  # a turn holds the conversation, as Rasa's processor does
        tracker = await agent.tracker_store.retrieve("o-alice")
        erasing = asyncio.ensure_future(tracker_erasure.erase(agent, "o-alice"))
        await asyncio.sleep(0.3)
        assert not erasing.done()  # the erasure waits for the turn
        tracker.update(UserUttered("还有一件事", {"name": "inform", "confidence": 1.0}))
        await agent.tracker_store.save(tracker)
    assert await asyncio.wait_for(erasing, timeout=30) > 0
    assert await _said(agent, "o-alice") == []


async def test_without_the_lock_the_turn_would_write_it_back(tmp_path):
    """The control: why the lock. Rasa's SQL store saves the events it does not hold,
    so a turn that read the conversation before a bare delete puts all of it back."""
    domain = Domain.empty()
    config = _sql_config(f"sqlite:///{tmp_path / 'tracker.db'}")
    agent = Agent(domain=domain, tracker_store=TrackerStore.create(config, domain),
                  lock_store=InMemoryLockStore())
    await _talk(agent, "o-alice", "你好")
    tracker = await agent.tracker_store.retrieve("o-alice")
    tracker_erasure._erase_from(tracker_erasure._innermost(agent.tracker_store), "o-alice")
    tracker.update(UserUttered("还有一件事", {"name": "inform", "confidence": 1.0}))
    await agent.tracker_store.save(tracker)
    assert await _said(agent, "o-alice") == ["你好", "还有一件事"]


def test_a_store_that_cannot_delete_is_named():
    with pytest.raises(tracker_erasure.ErasureUnsupported, match="object"):
        tracker_erasure._erase_from(object(), "o-alice")
