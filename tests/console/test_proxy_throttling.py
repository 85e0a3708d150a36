"""Sign-in throttling by the real client's address behind a reverse proxy
(VETBOT_TRUSTED_PROXIES, bot/client_address.py), through the real console on SQLite.

The test client connects from 127.0.0.1: as the trusted proxy in the first tests, as
an untrusted peer forging X-Forwarded-For in the last."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.db.models import StaffLoginFailure
from bot.db.session import session_scope
from bot.gateway.app import PathOnlyAccessLogger
from bot.services.staff import ADDRESS_FAILURE_LIMIT
from tests.console.helpers import TEST_PASSWORD, build_console_app, hidden, make_settings

WRONG = "Wrong-Pass-2026"


async def console(aiohttp_server, aiohttp_client, url, tmp_path, factory, vault, trusted: str):
    settings = make_settings(url, tmp_path, VETBOT_TRUSTED_PROXIES=trusted)
    server = await aiohttp_server(build_console_app(settings, factory, vault), access_log_class=PathOnlyAccessLogger)
    return await aiohttp_client(server)


async def sign_in_from(client, forwarded_for: str, username: str, password: str) -> int:
    """A sign-in from a fresh browser, through a proxy that says the client is ``forwarded_for``."""
    client.session.cookie_jar.clear()
    headers = {"X-Forwarded-For": forwarded_for}
    html = await (await client.get("/console/login", headers=headers)).text()
    response = await client.post("/console/login", headers=headers, allow_redirects=False,
                                 data={"csrf": hidden(html, "csrf"), "username": username, "password": password})
    return response.status


def recorded_addresses(factory) -> set:
    with session_scope(factory) as session:
        return set(session.execute(select(StaffLoginFailure.address)).scalars())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_failures_through_a_trusted_proxy_do_not_lock_out_other_clients(
        aiohttp_server, aiohttp_client, database_url, tmp_path, accounts, vault):
    client = await console(aiohttp_server, aiohttp_client, database_url, tmp_path, accounts, vault,
                           trusted="127.0.0.1, 10.0.0.0/8")
    # Twenty failures, each from another client behind the proxy (names vary, so that
    # no name is throttled either): no address reaches its limit.
    senders = [f"203.0.113.{n}" for n in range(1, ADDRESS_FAILURE_LIMIT + 1)]
    for n, sender in enumerate(senders):
        assert await sign_in_from(client, sender, f"guess{n}", WRONG) == 401
    assert recorded_addresses(accounts) == set(senders)
    # What each client wrote itself, left of what the proxies saw, is not believed.
    assert await sign_in_from(client, "1.2.3.4, 198.51.100.23, 10.1.2.3", "wangkz", TEST_PASSWORD) == 303

    # Twenty failures from one client lock that client out, and only that client.
    attacker = "192.0.2.66"
    for n in range(ADDRESS_FAILURE_LIMIT):
        assert await sign_in_from(client, attacker, f"other{n}", WRONG) == 401
    assert await sign_in_from(client, attacker, "zhoumq", TEST_PASSWORD) == 429
    assert await sign_in_from(client, "198.51.100.23", "zhoumq", TEST_PASSWORD) == 303
    assert "127.0.0.1" not in recorded_addresses(accounts)


@pytest.mark.parametrize("trusted", ["", "10.0.0.5"])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_forged_header_from_an_untrusted_peer_is_ignored(
        aiohttp_server, aiohttp_client, database_url, tmp_path, accounts, vault, trusted):
    client = await console(aiohttp_server, aiohttp_client, database_url, tmp_path, accounts, vault, trusted=trusted)
    # The peer writes another X-Forwarded-For each time, hoping to look like twenty clients …
    for n in range(ADDRESS_FAILURE_LIMIT):
        assert await sign_in_from(client, f"203.0.113.{n + 1}", f"guess{n}", WRONG) == 401
    # … but every failure counts against the peer itself, which is now paused whatever it claims.
    assert recorded_addresses(accounts) == {"127.0.0.1"}
    assert await sign_in_from(client, "198.51.100.23", "wangkz", TEST_PASSWORD) == 429
