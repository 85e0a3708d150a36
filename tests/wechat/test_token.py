"""bot.wechat.token against the mock WeChat API: caching, early refresh, single flight, invalidation."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.wechat.mockapi import TOKEN_TTL_SECONDS
from bot.wechat.token import (
    REFRESH_MARGIN_SECONDS,
    AccessToken,
    AccessTokenStore,
    MemoryTokenBackend,
    RedisTokenBackend,
    TokenError,
)
from tests.wechat.conftest import TEST_APPID, TEST_SECRET


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def store(session, api_base, clock=time.time, backend=None, secret=TEST_SECRET) -> AccessTokenStore:
    return AccessTokenStore(session, api_base, TEST_APPID, secret, backend=backend, clock=clock)


async def test_the_token_is_fetched_once_and_then_cached(session, api_base, mock_state):
    tokens = store(session, api_base)
    first, second = await tokens.get(), await tokens.get()
    assert first == second
    assert first in mock_state.tokens
    assert mock_state.token_requests == 1


async def test_the_token_is_renewed_before_it_expires(session, api_base, mock_state):
    clock = Clock()
    tokens = store(session, api_base, clock=clock)
    first = await tokens.get()
    clock.now += TOKEN_TTL_SECONDS - REFRESH_MARGIN_SECONDS - 5
    assert await tokens.get() == first
    clock.now += 10  # inside the margin: renew now, while the old one still works
    second = await tokens.get()
    assert second != first
    assert mock_state.token_requests == 2


async def test_concurrent_callers_share_one_fetch(session, api_base, mock_state):
    tokens = store(session, api_base)
    values = await asyncio.gather(*(tokens.get() for _ in range(20)))
    assert len(set(values)) == 1
    assert mock_state.token_requests == 1


async def test_invalidate_makes_the_next_call_fetch_a_new_token(session, api_base, mock_state):
    tokens = store(session, api_base)
    first = await tokens.get()
    await tokens.invalidate(first)
    second = await tokens.get()
    assert second != first
    await tokens.invalidate(first)  # a late invalidation of the old token keeps the new one
    assert await tokens.get() == second
    assert mock_state.token_requests == 2


async def test_wrong_credentials_are_a_token_error_with_wechats_errcode(session, api_base):
    with pytest.raises(TokenError) as error:
        await store(session, api_base, secret="not-the-secret").get()
    assert error.value.errcode == 40125


async def test_an_unreachable_api_is_a_token_error_without_errcode(session):
    with pytest.raises(TokenError) as error:
        await store(session, "http://127.0.0.1:9").get()
    assert error.value.errcode is None


async def test_a_failed_renewal_keeps_using_the_still_valid_token(session, api_base, mock_state):
    clock = Clock()
    tokens = store(session, api_base, clock=clock)
    first = await tokens.get()
    clock.now += TOKEN_TTL_SECONDS - REFRESH_MARGIN_SECONDS + 1
    mock_state.secret = "rotated"  # the next fetch is refused
    assert await tokens.get() == first
    clock.now += REFRESH_MARGIN_SECONDS  # now expired: no fallback
    with pytest.raises(TokenError):
        await tokens.get()


async def test_the_token_never_appears_in_its_repr(session, api_base):
    tokens = store(session, api_base)
    value = await tokens.get()
    token = await tokens._backend.load()
    assert value not in repr(token)


async def test_memory_backend_discards_only_the_named_token():
    backend = MemoryTokenBackend()
    await backend.save(AccessToken("new", time.time() + 100))
    await backend.discard("old")
    assert (await backend.load()).value == "new"
    await backend.discard("new")
    assert await backend.load() is None


async def test_gateways_sharing_redis_share_one_token(session, api_base, mock_state, redis_client):
    gateways = [store(session, api_base, backend=RedisTokenBackend(redis_client, TEST_APPID)) for _ in range(3)]
    values = await asyncio.gather(*(gateway.get() for gateway in gateways for _ in range(5)))
    assert len(set(values)) == 1
    assert mock_state.token_requests == 1
    await gateways[0].invalidate(values[0])
    renewed = await gateways[1].get()
    assert renewed != values[0] and await gateways[2].get() == renewed
    assert mock_state.token_requests == 2
    assert 0 < await redis_client.ttl(f"vetbot:wechat:token:{TEST_APPID}") <= TOKEN_TTL_SECONDS
