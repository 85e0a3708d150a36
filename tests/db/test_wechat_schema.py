"""Migration 0005 (WeChat state) with data in the outbox: rows survive the SQLite table copy,
the new CHECKs hold, and the way down keeps a given-up row from being sent.

Runs on SQLite and on a real PostgreSQL server (fixture database_url)."""

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.db.migrate import downgrade, upgrade
from bot.db.session import make_engine

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
ROW = {"openid": "o-1", "kind": "appointment_reminder", "ref": "appointment:YY7KQ4M2XD", "payload": "{}",
       "due_at": NOW, "created_at": NOW}


def test_0005_keeps_the_outbox_and_adds_give_up_and_resume(database_url):
    engine = make_engine(database_url)
    try:
        downgrade(database_url, "0004")
        with engine.begin() as connection:
            for attempts in (0, 2):
                connection.execute(text(
                    "INSERT INTO outbox (openid, kind, ref, payload, due_at, created_at, attempts)"
                    " VALUES (:openid, :kind, :ref, :payload, :due_at, :created_at, :attempts)"),
                    dict(ROW, attempts=attempts))
        upgrade(database_url)
        with engine.begin() as connection:
            rows = connection.execute(text("SELECT attempts, parts_sent, failed_at FROM outbox ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [(0, 0, None), (2, 0, None)]
            connection.execute(text("UPDATE outbox SET failed_at = :now WHERE attempts = 2"), {"now": NOW})
        for bad in ("sent_at = failed_at", "parts_sent = -1", "attempts = -1"):
            with pytest.raises(IntegrityError), engine.begin() as connection:
                connection.execute(text(f"UPDATE outbox SET {bad} WHERE attempts = 2"))
        with pytest.raises(IntegrityError), engine.begin() as connection:  # a token in clear and encrypted
            connection.execute(text("INSERT INTO wechat_tokens (appid, updated_at, token_cipher, token_plain)"
                                    " VALUES ('wx1', :now, 'v1:x', 'plain')"), {"now": NOW})
        downgrade(database_url, "0004")
        with engine.begin() as connection:  # given up: must not become due again without failed_at
            rows = connection.execute(text("SELECT attempts, sent_at IS NOT NULL FROM outbox ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [(0, False), (2, True)]
        upgrade(database_url)
    finally:
        engine.dispose()
