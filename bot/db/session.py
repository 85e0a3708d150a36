"""Engines and sessions. Nothing connects at import time; callers open one
session per request or per action call (``with session_scope(factory) as s``)."""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker


log = logging.getLogger(__name__)

# How long a write waits, in all, for SQLite's single write lock (execute_write).
SQLITE_LOCK_WAIT = 30.0


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite enforces foreign keys only when asked, per connection.
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True, connect_args={"timeout": 10}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode = WAL")
        return engine
    return create_engine(url, future=True, pool_pre_ping=True, **kwargs)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC. SQLite hands stored timestamps back naive; they were stored as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def dialect_insert(session: Session, model):
    """INSERT for this session's database, with its ON CONFLICT clauses (PostgreSQL
    or SQLite, the two the project runs on)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model)


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session: Session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def _is_locked(error: OperationalError) -> bool:
    return "database is locked" in str(error.orig)


def execute_write(session: Session, statement, **options):
    """Execute a write; on SQLite, wait for the database's single write lock.

    SQLite lets one connection write at a time; the others wait in its busy
    handler (busy_timeout, 10 s, above) and then fail with "database
    is locked". Two hundred bookings racing for one slot can queue for longer
    than that on a slow disk, and nothing guarantees a waiter its turn. The first
    write of a transaction is the only one that can meet the lock (from then on
    the connection holds it), and when it fails it has changed nothing and
    released its read snapshot, so trying the same statement again, after a
    random pause, is safe: the transaction simply starts later. PostgreSQL
    locks rows, not the database, and never answers "locked".
    """
    deadline = time.monotonic() + SQLITE_LOCK_WAIT
    pause = 0.005
    while True:
        try:
            return session.execute(statement, execution_options=options)
        except OperationalError as error:
            if not _is_locked(error) or time.monotonic() > deadline:
                raise
            log.info("database locked; trying again")
            time.sleep(random.uniform(0, pause))
            pause = min(pause * 2, 0.25)
