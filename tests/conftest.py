"""Shared fixtures: trackers built the way the action server builds them, the test
databases, and small helpers the database tests share."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher


def user_event(text: str, intent: str, confidence: float = 0.99, **parse: Any) -> Dict[str, Any]:
    parse_data = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": []}
    parse_data.update(parse)
    return {"event": "user", "text": text, "parse_data": parse_data}


def bot_event(text: str, buttons: Optional[List[Dict[str, str]]] = None) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "data": {"buttons": buttons} if buttons else {}}


def make_tracker(events: List[Dict[str, Any]], slots: Optional[Dict[str, Any]] = None) -> Tracker:
    latest = next((e["parse_data"] for e in reversed(events) if e["event"] == "user"), {})
    return Tracker(
        sender_id="test-user",
        slots=slots or {},
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


# --- the veteran database, on SQLite and on a real PostgreSQL server ---------------

TEST_SECRET = "test-secret-not-for-production"


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster for the whole test run (bot.testing.postgres).

    `make test` installs the server and sets VETBOT_REQUIRE_POSTGRES=1, so there
    a missing server fails the run instead of skipping the PostgreSQL half.
    """
    import os

    from bot.testing.postgres import TemporaryPostgres, find_bindir

    if find_bindir() is None:
        message = "PostgreSQL server not installed (scripts/ensure-postgres.sh installs it)"
        if os.environ.get("VETBOT_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = TemporaryPostgres().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A new database migrated to the latest schema, once per backend."""
    from bot.db.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'vetbot.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    upgrade(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """SQLite only, for tests that check logic rather than the database."""
    from bot.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'vetbot.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(database_url):
    from bot.db.session import make_engine

    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine):
    from bot.db.session import make_session_factory

    return make_session_factory(engine)


@pytest.fixture
def vault():
    from bot.pii import PiiVault

    return PiiVault(TEST_SECRET)


def station_id(factory, code: str) -> int:
    """The id of station ``code`` in ``factory``'s database (data/stations.yml loaded)."""
    from sqlalchemy import select

    from bot.db.models import Station
    from bot.db.session import session_scope

    with session_scope(factory) as session:
        return session.execute(select(Station.id).where(Station.code == code)).scalar_one()


@pytest.fixture
def holidays_file(tmp_path):
    """An empty holidays file in use (so 2027 is unknown); ``holidays_file(data)`` writes
    another one, which the calendar reloads as any edited file (by its mtime)."""
    import os

    import yaml

    from bot.services.stations import use_holidays

    path = tmp_path / "holidays.yml"

    def write(data):
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        stat = os.stat(path)  # a new mtime even within the file system's time resolution
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        return path

    write({"years": None, "open_days": []})
    use_holidays(path)
    yield write
    use_holidays(None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server():
    """A throwaway redis-server on a free local port, without persistence, for the whole run.

    Skipped when Debian's redis-server is not installed; VETBOT_REQUIRE_REDIS=1
    turns the skip into a failure (for CI that installs it). VETBOT_TEST_REDIS_URL
    names a server already running instead: scripts/test-clock.sh starts one outside
    faketime, under which redis-server does not start.
    """
    given = os.environ.get("VETBOT_TEST_REDIS_URL")
    if given:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server not installed (Debian package redis-server); Redis backends not tested"
        if os.environ.get("VETBOT_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="vetbot-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
