"""bot.wechat.dedup: WeChat's retries get the first attempt's reply; the work runs once."""

from __future__ import annotations

import asyncio

import pytest

from bot.wechat.dedup import DONE, MISSING, PENDING, MemoryReplyCache, RedisReplyCache


@pytest.fixture(params=["memory", "redis"])
def make_cache(request):
    """A factory: every call is another gateway sharing the same store (Redis), or the same cache (memory)."""
    if request.param == "memory":
        cache = MemoryReplyCache()
        return lambda: cache
    client = request.getfixturevalue("redis_client")
    return lambda: RedisReplyCache(client, poll_interval=0.01)


class Turn:
    """The work behind a message: counts its runs, takes ``delay`` seconds, returns the reply."""

    def __init__(self, reply, delay: float = 0.1, fail: bool = False) -> None:
        self.reply, self.delay, self.fail = reply, delay, fail
        self.runs = 0

    async def __call__(self):
        self.runs += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("rasa unavailable")
        return self.reply


REPLY = {"passive": ["您好，请问需要办理什么业务？"], "deferred": False}


async def test_concurrent_duplicates_run_the_work_once_and_share_its_reply(make_cache):
    turn = Turn(REPLY)
    outcomes = await asyncio.gather(*(make_cache().run_once("msg:o1:1", turn, wait_timeout=2.0) for _ in range(3)))
    assert turn.runs == 1
    assert [outcome.first for outcome in outcomes].count(True) == 1
    assert all(outcome.ready and outcome.reply == REPLY for outcome in outcomes)


async def test_a_later_retry_gets_the_stored_reply_without_running(make_cache):
    turn = Turn(REPLY, delay=0)
    first = await make_cache().run_once("msg:o1:2", turn, wait_timeout=1.0)
    retry = await make_cache().run_once("msg:o1:2", turn, wait_timeout=1.0)
    assert (first.first, retry.first, turn.runs) == (True, False, 1)
    assert retry.reply == REPLY


async def test_different_keys_each_run(make_cache):
    turn = Turn(REPLY, delay=0)
    await make_cache().run_once("msg:o1:3", turn, wait_timeout=1.0)
    await make_cache().run_once("msg:o2:3", turn, wait_timeout=1.0)
    assert turn.runs == 2


async def test_a_failed_first_attempt_lets_the_retry_run(make_cache):
    failing = Turn(REPLY, delay=0, fail=True)
    with pytest.raises(RuntimeError):
        await make_cache().run_once("msg:o1:4", failing, wait_timeout=1.0)
    working = Turn(REPLY, delay=0)
    retry = await make_cache().run_once("msg:o1:4", working, wait_timeout=1.0)
    assert (retry.first, retry.reply, working.runs) == (True, REPLY, 1)


async def test_a_retry_waiting_on_a_failing_first_attempt_runs_the_work_itself(make_cache):
    failing, working = Turn(REPLY, delay=0.1, fail=True), Turn(REPLY, delay=0)
    first = asyncio.ensure_future(make_cache().run_once("msg:o1:5", failing, wait_timeout=1.0))
    await asyncio.sleep(0.02)
    retry = await make_cache().run_once("msg:o1:5", working, wait_timeout=1.0)
    with pytest.raises(RuntimeError):
        await first
    assert (retry.first, retry.ready, working.runs) == (True, True, 1)


async def test_the_turn_finishes_and_is_stored_even_when_the_first_request_is_cancelled(make_cache):
    # WeChat hangs up after 5 s and aiohttp cancels the handler; the turn must not run twice.
    turn = Turn(REPLY, delay=0.2)
    first = asyncio.ensure_future(make_cache().run_once("msg:o1:6", turn, wait_timeout=1.0))
    await asyncio.sleep(0.05)
    first.cancel()
    retry = await make_cache().run_once("msg:o1:6", turn, wait_timeout=1.0)
    assert (retry.first, retry.ready, retry.reply, turn.runs) == (False, True, REPLY, 1)


async def test_a_retry_that_cannot_wait_long_enough_is_told_so(make_cache):
    turn = Turn(REPLY, delay=0.3)
    first = asyncio.ensure_future(make_cache().run_once("msg:o1:7", turn, wait_timeout=1.0))
    await asyncio.sleep(0.02)
    impatient = await make_cache().run_once("msg:o1:7", turn, wait_timeout=0.05)
    assert (impatient.first, impatient.ready) == (False, False)
    await first
    later = await make_cache().run_once("msg:o1:7", turn, wait_timeout=0.05)
    assert (later.ready, later.reply, turn.runs) == (True, REPLY, 1)


async def test_wait_reports_pending_done_and_missing(make_cache):
    cache = make_cache()
    assert await cache.wait("msg:o1:8", 0.01) == (MISSING, None)
    assert await cache.claim("msg:o1:8")
    assert not await make_cache().claim("msg:o1:8")
    assert await cache.wait("msg:o1:8", 0.01) == (PENDING, None)
    await cache.store("msg:o1:8", ["好的"])
    assert await make_cache().wait("msg:o1:8", 0.01) == (DONE, ["好的"])


async def test_memory_entries_expire():
    now = [100.0]
    cache = MemoryReplyCache(ttl_seconds=60, clock=lambda: now[0])
    turn = Turn(REPLY, delay=0)
    await cache.run_once("msg:o1:9", turn, wait_timeout=0.1)
    now[0] += 61
    again = await cache.run_once("msg:o1:9", turn, wait_timeout=0.1)
    assert (again.first, turn.runs) == (True, 2)


async def test_redis_entries_carry_a_ttl(redis_client):
    cache = RedisReplyCache(redis_client, ttl_seconds=120)
    await cache.run_once("msg:o1:10", Turn(REPLY, delay=0), wait_timeout=0.1)
    ttl = await redis_client.ttl("vetbot:wechat:reply:msg:o1:10")
    assert 0 < ttl <= 120
