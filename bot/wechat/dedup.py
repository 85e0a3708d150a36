"""WeChat's retries get the first attempt's reply; the turn runs once.

WeChat posts a message again when it has no answer within 5 seconds (three
tries in all). ``ReplyCache.run_once(key, work)`` runs ``work`` for the first
attempt and stores what it returns; an attempt with the same key (see
``protocol.dedup_key``) waits for that reply instead of running ``work`` again.

The work runs as its own task: if the first attempt's request is cancelled
(WeChat hung up), the turn still finishes and its reply is still stored for
the retry. If the work fails, the key is released and the next attempt runs
it. Replies are stored as JSON, so both backends hand back equal values.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

log = logging.getLogger(__name__)

# WeChat's three tries span about 15 seconds; keep the answer well past that.
DEFAULT_TTL_SECONDS = 600

DONE = "done"        # the first attempt stored its reply
PENDING = "pending"  # the first attempt is still running
MISSING = "missing"  # no attempt holds the key (never seen, released or expired)


@dataclass(frozen=True)
class Outcome:
    """``first``: this call ran the work. ``ready``: ``reply`` holds the turn's reply."""

    first: bool
    ready: bool
    reply: Any = None


def _as_json(reply: Any) -> str:
    return json.dumps(reply, ensure_ascii=False)


class ReplyCache(ABC):
    """Claim a key, store its reply, wait for it; ``run_once`` puts the three together."""

    @abstractmethod
    async def claim(self, key: str) -> bool:
        """True when this attempt is the first and must ``store`` or ``release`` the key."""

    @abstractmethod
    async def store(self, key: str, reply: Any) -> None:
        """Keep the reply (anything JSON can hold) for the attempts that follow."""

    @abstractmethod
    async def release(self, key: str) -> None:
        """The first attempt failed: forget the key so that the next attempt runs the work."""

    @abstractmethod
    async def wait(self, key: str, timeout: float) -> Tuple[str, Any]:
        """(DONE, reply), or (PENDING, None) after ``timeout`` seconds, or (MISSING, None)."""

    async def run_once(self, key: str, work: Callable[[], Awaitable[Any]], wait_timeout: float) -> Outcome:
        """Run ``work`` if no attempt with ``key`` ran it, else wait up to ``wait_timeout`` for its reply."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_timeout
        while True:
            if await self.claim(key):
                task = asyncio.ensure_future(self._run_and_store(key, work))
                task.add_done_callback(_log_failure)
                reply = await asyncio.shield(task)
                return Outcome(first=True, ready=True, reply=reply)
            remaining = deadline - loop.time()
            state, reply = await self.wait(key, max(remaining, 0.0))
            if state == DONE:
                return Outcome(first=False, ready=True, reply=reply)
            if state == PENDING or deadline - loop.time() <= 0:
                return Outcome(first=False, ready=False)
            # MISSING: the first attempt gave up; this one runs the work if it can claim the key.

    async def _run_and_store(self, key: str, work: Callable[[], Awaitable[Any]]) -> Any:
        try:
            reply = await work()
        except BaseException:
            await asyncio.shield(self.release(key))
            raise
        await self.store(key, reply)
        return reply


def _log_failure(task: "asyncio.Future[Any]") -> None:
    # The caller may be gone (cancelled); the failure must not vanish unseen.
    if not task.cancelled() and task.exception() is not None:
        log.warning("de-duplicated turn failed: %s", type(task.exception()).__name__)


class _Entry:
    __slots__ = ("done", "reply", "expires_at", "event")

    def __init__(self, expires_at: float) -> None:
        self.done = False
        self.reply: Optional[str] = None
        self.expires_at = expires_at
        self.event = asyncio.Event()


class MemoryReplyCache(ReplyCache):
    """One process's keys (the embedded default); entries expire ``ttl_seconds`` after their last write."""

    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: Dict[str, _Entry] = {}
        self._next_sweep = 0.0

    def _live(self, key: str) -> Optional[_Entry]:
        now = self._clock()
        if now >= self._next_sweep:  # a full sweep at most once a second
            self._next_sweep = now + 1.0
            for stale in [k for k, entry in self._entries.items() if entry.expires_at <= now]:
                self._entries.pop(stale).event.set()
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= now:
            self._entries.pop(key).event.set()
            return None
        return entry

    async def claim(self, key: str) -> bool:
        if self._live(key) is not None:
            return False
        self._entries[key] = _Entry(self._clock() + self._ttl)
        return True

    async def store(self, key: str, reply: Any) -> None:
        entry = self._live(key)
        if entry is None:  # expired while the work ran: keep the answer anyway
            entry = self._entries[key] = _Entry(0.0)
        entry.reply = _as_json(reply)
        entry.done = True
        entry.expires_at = self._clock() + self._ttl
        entry.event.set()

    async def release(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            entry.event.set()

    async def wait(self, key: str, timeout: float) -> Tuple[str, Any]:
        entry = self._live(key)
        if entry is None:
            return MISSING, None
        if not entry.done:
            try:
                await asyncio.wait_for(entry.event.wait(), timeout)
            except asyncio.TimeoutError:
                return PENDING, None
        if entry.done:
            return DONE, json.loads(entry.reply or "null")
        return MISSING, None


class RedisReplyCache(ReplyCache):
    """Keys shared by every gateway, on a ``redis.asyncio`` client; a waiting retry polls.

    The key holds ``{"state": "pending", "owner": …}`` while the first attempt
    runs and ``{"state": "done", "reply": …}`` after; both expire after ``ttl_seconds``.
    """

    # Delete the key only if it still holds this attempt's pending marker.
    _RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

    def __init__(self, redis: Any, ttl_seconds: int = DEFAULT_TTL_SECONDS,
                 prefix: str = "vetbot:wechat:reply:", poll_interval: float = 0.05) -> None:
        self._redis = redis
        self._ttl = int(ttl_seconds)
        self._prefix = prefix
        self._poll = poll_interval
        self._markers: Dict[str, str] = {}  # key → this process's pending marker

    async def claim(self, key: str) -> bool:
        marker = json.dumps({"state": PENDING, "owner": uuid.uuid4().hex})
        if await self._redis.set(self._prefix + key, marker, nx=True, ex=self._ttl):
            self._markers[key] = marker
            return True
        return False

    async def store(self, key: str, reply: Any) -> None:
        value = json.dumps({"state": DONE, "reply": reply}, ensure_ascii=False)
        await self._redis.set(self._prefix + key, value, ex=self._ttl)
        self._markers.pop(key, None)

    async def release(self, key: str) -> None:
        marker = self._markers.pop(key, None)
        if marker is not None:
            await self._redis.eval(self._RELEASE, 1, self._prefix + key, marker)

    async def wait(self, key: str, timeout: float) -> Tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            raw = await self._redis.get(self._prefix + key)
            if raw is None:
                return MISSING, None
            value = json.loads(raw)
            if value.get("state") == DONE:
                return DONE, value.get("reply")
            if time.monotonic() >= deadline:
                return PENDING, None
            await asyncio.sleep(min(self._poll, max(deadline - time.monotonic(), 0.0)))
