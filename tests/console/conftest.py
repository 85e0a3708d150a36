"""Fixtures of the console's tests: the demo stations with one account per role (and a
second station), and a client of the real app on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.db.session import session_scope
from bot.gateway.app import PathOnlyAccessLogger
from bot.services.staff import create_account
from bot.services.stations import load_stations
from tests.console.helpers import ACCOUNTS, STATIONS_FILE, TEST_PASSWORD, build_console_app, make_settings


@pytest.fixture
def accounts(session_factory):
    now = dt.datetime.now(dt.timezone.utc)
    with session_scope(session_factory) as session:
        load_stations(session, STATIONS_FILE)
        for username, name, role, station in ACCOUNTS:
            create_account(session, username, name, TEST_PASSWORD, role, station, now)
    return session_factory


@pytest.fixture
async def console_client(aiohttp_server, aiohttp_client, database_url, tmp_path, accounts, vault):
    """A client of the gateway app with the console (not signed in)."""
    server = await aiohttp_server(build_console_app(make_settings(database_url, tmp_path), accounts, vault),
                                  access_log_class=PathOnlyAccessLogger)
    return await aiohttp_client(server)
