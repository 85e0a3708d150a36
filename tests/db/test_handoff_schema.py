"""Migration 0010 (handoffs.acknowledged_at) with handoffs in the table: the rows survive
up and down, the column takes the time of the last acknowledgement, and the partial
unique index (one open handoff per user) is still there afterwards.

Runs on SQLite and on a real PostgreSQL server (fixture database_url)."""

import datetime as dt

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from bot.db.migrate import downgrade, upgrade
from bot.db.session import as_utc, make_engine

NOW = dt.datetime(2026, 12, 7, 18, 0, tzinfo=dt.timezone.utc)  # 02:00 in Beijing
INSERT = ("INSERT INTO handoffs (openid, reason, urgent, state, created_at)"
          " VALUES (:openid, 'request_human', false, 'waiting', :at)")


def _columns(engine):
    return {column["name"] for column in inspect(engine).get_columns("handoffs")}


def _one_open_per_user(engine):
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(INSERT), {"openid": "o-1", "at": NOW})


def test_0010_adds_the_acknowledgement_time_and_keeps_the_queue(database_url):
    engine = make_engine(database_url)
    try:
        downgrade(database_url, "0009")
        assert "acknowledged_at" not in _columns(engine)
        with engine.begin() as connection:
            connection.execute(text(INSERT), {"openid": "o-1", "at": NOW})
        upgrade(database_url)
        assert "acknowledged_at" in _columns(engine)
        with engine.begin() as connection:
            assert connection.execute(text("SELECT openid, state, acknowledged_at FROM handoffs")).one() \
                == ("o-1", "waiting", None)
            connection.execute(text("UPDATE handoffs SET acknowledged_at = :at"), {"at": NOW})
            stored = connection.execute(text("SELECT acknowledged_at FROM handoffs")).scalar_one()
        assert as_utc(stored if isinstance(stored, dt.datetime) else dt.datetime.fromisoformat(stored)) == NOW
        _one_open_per_user(engine)
        downgrade(database_url, "0009")
        assert "acknowledged_at" not in _columns(engine)
        with engine.begin() as connection:
            assert connection.execute(text("SELECT openid, state FROM handoffs")).one() == ("o-1", "waiting")
        _one_open_per_user(engine)
        upgrade(database_url)
        assert "acknowledged_at" in _columns(engine)
    finally:
        engine.dispose()
