"""Migration 0012 (staff lifecycle): must_change_password added with false for the
accounts already there, and removed again, on SQLite and on PostgreSQL."""

import datetime as dt

from sqlalchemy import inspect, text

from bot.db.migrate import downgrade, upgrade
from bot.db.session import make_engine
from bot.services.staff import hash_password

TEST_PASSWORD = "Test-Only-Pass-2026"  # a test value, not a real credential


def _columns(engine) -> set:
    return {column["name"] for column in inspect(engine).get_columns("staff_accounts")}


def test_0012_adds_must_change_password_false_for_existing_accounts(database_url):
    engine = make_engine(database_url)
    now = dt.datetime(2026, 12, 8, 1, 0, tzinfo=dt.timezone.utc)
    try:
        downgrade(database_url, "0011")
        assert "must_change_password" not in _columns(engine)
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO staff_accounts (username, display_name, password_hash, role, active, created_at, "
                "password_changed_at) VALUES ('admin1', '李管理', :hash, 'admin', true, :now, :now)"),
                {"hash": hash_password(TEST_PASSWORD), "now": now})
        upgrade(database_url)
        with engine.connect() as connection:
            assert connection.execute(text(
                "SELECT must_change_password FROM staff_accounts WHERE username = 'admin1'")).scalar_one() in (False, 0)
        downgrade(database_url, "0011")
        assert "must_change_password" not in _columns(engine)
        with engine.connect() as connection:  # the account itself is kept
            assert connection.execute(text("SELECT count(*) FROM staff_accounts")).scalar_one() == 1
        upgrade(database_url)
        assert "must_change_password" in _columns(engine)
    finally:
        engine.dispose()
