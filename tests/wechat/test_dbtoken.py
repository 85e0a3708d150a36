"""bot.wechat.dbtoken: the shared access_token in the database, against the mock WeChat API.

Every test runs on SQLite and on a real PostgreSQL server (fixture session_factory).
"Processes" are AccessTokenStore instances, each with its own backend object and,
where it matters, its own engine: all they share is the database.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from bot.db.models import WechatToken
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.pii import ACCESS_TOKEN, PiiVault
from bot.wechat.client import WechatClient
from bot.wechat.dbtoken import DatabaseTokenBackend
from bot.wechat.token import AccessToken, AccessTokenStore, TokenError
from tests.wechat.conftest import TEST_APPID, TEST_SECRET

OPENID = "oDbTokenTestUser00000000001"


def store(session, api_base, backend) -> AccessTokenStore:
    return AccessTokenStore(session, api_base, TEST_APPID, TEST_SECRET, backend=backend)


def stored_row(factory):
    with session_scope(factory) as db:
        return db.execute(select(WechatToken).where(WechatToken.appid == TEST_APPID)).scalar_one_or_none()


@pytest.fixture
def other_factory(database_url):
    """A second engine on the same database: another gateway process."""
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
async def test_gateways_sharing_the_database_fetch_the_token_once(session, api_base, mock_state, session_factory,
                                                                  other_factory, vault, encrypted):
    key = vault if encrypted else None
    gateways = [store(session, api_base, DatabaseTokenBackend(factory, TEST_APPID, vault=key))
                for factory in (session_factory, other_factory, session_factory)]
    values = await asyncio.gather(*(gateway.get() for gateway in gateways for _ in range(5)))
    assert len(set(values)) == 1
    assert values[0] in mock_state.tokens
    assert mock_state.token_requests == 1
    row = stored_row(session_factory)
    assert row.refreshing_until is None and row.refresh_holder is None  # the lock was released
    if encrypted:
        assert row.token_plain is None and values[0] not in row.token_cipher
        assert vault.decrypt(row.token_cipher, ACCESS_TOKEN, TEST_APPID) == values[0]
    else:
        assert row.token_cipher is None and row.token_plain == values[0]


async def test_invalidate_makes_every_gateway_fetch_one_new_token(session, api_base, mock_state, session_factory,
                                                                  other_factory, vault):
    first_gateway = store(session, api_base, DatabaseTokenBackend(session_factory, TEST_APPID, vault=vault))
    second_gateway = store(session, api_base, DatabaseTokenBackend(other_factory, TEST_APPID, vault=vault))
    first = await first_gateway.get()
    assert await second_gateway.get() == first
    await first_gateway.invalidate(first)
    assert stored_row(session_factory).token_cipher is None
    renewed = await asyncio.gather(second_gateway.get(), first_gateway.get(), second_gateway.get())
    assert set(renewed) == {renewed[0]} and renewed[0] != first
    await second_gateway.invalidate(first)  # a late invalidation of the old token keeps the new one
    assert await first_gateway.get() == renewed[0]
    assert mock_state.token_requests == 2


async def test_a_token_survives_the_round_trip_with_its_expiry(session_factory, vault):
    backend = DatabaseTokenBackend(session_factory, TEST_APPID, vault=vault)
    assert await backend.load() is None
    expires_at = time.time() + 7200.123456
    await backend.save(AccessToken("token-one", expires_at))
    loaded = await backend.load()
    assert loaded.value == "token-one" and loaded.expires_at == pytest.approx(expires_at, abs=1e-5)
    await backend.discard("some-other-token")  # not the stored one: kept
    assert (await backend.load()).value == "token-one"
    await backend.save(AccessToken("token-two", expires_at + 10))
    assert (await backend.load()).value == "token-two"
    await backend.discard("token-two")
    assert await backend.load() is None


async def test_a_gateway_with_another_key_or_none_fetches_its_own(session, api_base, mock_state, session_factory):
    encrypted = store(session, api_base, DatabaseTokenBackend(session_factory, TEST_APPID, vault=PiiVault("key-a")))
    other_key = store(session, api_base, DatabaseTokenBackend(session_factory, TEST_APPID, vault=PiiVault("key-b")))
    no_key = store(session, api_base, DatabaseTokenBackend(session_factory, TEST_APPID))
    first = await encrypted.get()
    second = await other_key.get()  # cannot read it: fetches and stores one under its key
    assert second != first and mock_state.token_requests == 2
    third = await no_key.get()  # cannot read that either
    assert third not in (first, second) and mock_state.token_requests == 3
    assert stored_row(session_factory).token_plain == third
    assert await encrypted.get() == third  # a plain token is readable with or without a key
    assert mock_state.token_requests == 3


async def test_a_held_refresh_lock_makes_another_gateway_wait_for_the_holders_token(
        session, api_base, mock_state, session_factory, other_factory, vault):
    holder = DatabaseTokenBackend(session_factory, TEST_APPID, vault=vault)
    waiting = store(session, api_base, DatabaseTokenBackend(other_factory, TEST_APPID, vault=vault,
                                                            poll_interval=0.02))
    async with holder.refresh_lock():
        pending = asyncio.ensure_future(waiting.get())
        await asyncio.sleep(0.3)
        assert not pending.done() and mock_state.token_requests == 0  # it waits instead of fetching
        await holder.save(AccessToken("fetched-by-the-holder", time.time() + 7200))
    assert await asyncio.wait_for(pending, 10) == "fetched-by-the-holder"
    assert mock_state.token_requests == 0


async def test_the_lock_times_out_for_waiters_and_lapses_for_a_vanished_holder(session_factory, other_factory):
    # The lease is measured on the backends' clock, which the test moves: no timing involved.
    clock = {"now": 1_800_000_000.0}

    def now() -> float:
        return clock["now"]

    vanishing = DatabaseTokenBackend(session_factory, TEST_APPID, lock_timeout=30, clock=now)
    impatient = DatabaseTokenBackend(other_factory, TEST_APPID, lock_wait=0.2, poll_interval=0.02, clock=now)
    patient = DatabaseTokenBackend(other_factory, TEST_APPID, lock_wait=30, poll_interval=0.02, clock=now)
    async with vanishing.refresh_lock():
        with pytest.raises(TokenError) as error:
            async with impatient.refresh_lock():
                pass  # pragma: no cover - never reached
        assert error.value.errcode is None

        # The holder does not release (as if its process died); the patient one waits
        # until the claim's 30 s have passed on the clock.
        async def time_passes() -> None:
            await asyncio.sleep(0.3)
            clock["now"] += 31

        passing = asyncio.ensure_future(time_passes())
        async with patient.refresh_lock():
            assert passing.done()  # not before the lease lapsed
            # The late holder's release must not free the claim the patient one holds now.
            await vanishing._run(vanishing._release, "not-the-patient-holder")
            with pytest.raises(TokenError):
                async with impatient.refresh_lock():
                    pass  # pragma: no cover - never reached
    async with impatient.refresh_lock():  # released by its holder: free at once
        pass


async def test_an_unusable_database_is_a_token_error_and_a_retryable_send(session, api_base, tmp_path, mock_state):
    engine = make_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no wechat_tokens table
    try:
        backend = DatabaseTokenBackend(make_session_factory(engine), TEST_APPID)
        with pytest.raises(TokenError) as error:
            await backend.load()
        assert error.value.errcode is None
        await backend.discard("anything")  # logged, not raised: the caller's send goes on
        client = WechatClient(session, api_base, store(session, api_base, backend))
        result = await client.send_text(OPENID, "你好")
        assert (result.ok, result.errcode, result.retryable) == (False, None, True)
        assert mock_state.send_requests == 0
    finally:
        engine.dispose()


async def test_the_token_never_appears_in_the_log(session, api_base, session_factory, caplog):
    caplog.set_level("DEBUG")
    gateway = store(session, api_base, DatabaseTokenBackend(session_factory, TEST_APPID, vault=PiiVault("key-a")))
    value = await gateway.get()
    await gateway.invalidate(value)
    await store(session, api_base, DatabaseTokenBackend(session_factory, TEST_APPID)).get()
    assert caplog.records and value not in caplog.text
