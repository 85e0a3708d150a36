"""Migration 0007 (staff console): up and down again, and the audit log's append-only
triggers on SQLite and on PostgreSQL."""

import datetime as dt

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from bot.db.migrate import downgrade, upgrade
from bot.db.session import make_engine

STAFF_TABLES = {"staff_accounts", "staff_login_failures", "console_sessions", "audit_log"}


def _append_only(engine) -> None:
    now = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.timezone.utc)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO audit_log (action, object_type, at) VALUES ('login', 'staff_account', :at)"),
                           {"at": now})
    for statement in ("UPDATE audit_log SET detail = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(IntegrityError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


def test_0007_goes_down_and_up_with_its_triggers(database_url):
    engine = make_engine(database_url)
    try:
        _append_only(engine)
        downgrade(database_url, "0006")
        assert not STAFF_TABLES & set(inspect(engine).get_table_names())
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                assert connection.execute(text(
                    "SELECT count(*) FROM pg_proc WHERE proname = 'audit_log_append_only'")).scalar_one() == 0
        upgrade(database_url)
        assert STAFF_TABLES <= set(inspect(engine).get_table_names())
        _append_only(engine)
    finally:
        engine.dispose()
