"""The schema: migrations up and down, and integrity enforced by the database itself.

Every test here runs on SQLite and on a real PostgreSQL server (fixture database_url).
"""

import datetime as dt

import pytest
from sqlalchemy import inspect, insert, text
from sqlalchemy.exc import IntegrityError

from bot.db.migrate import downgrade, upgrade
from bot.db.models import Base, Station, Veteran, WechatBinding
from bot.db.session import make_engine
from bot.pii import VETERAN_PHONE


def _veteran(vault, **overrides):
    protected = vault.protect_id(overrides.pop("id_number", "11010519491231002X"))
    row = dict(name="李卫国", id_hash=protected.lookup, id_cipher=protected.cipher, id_masked=protected.masked,
               birth_date=dt.date(1949, 12, 31), gender="女", enlisted_on=dt.date(1968, 3, 1),
               discharged_on=dt.date(1973, 12, 1), status="在世")
    row.update(overrides)
    return row


def test_migrations_create_every_table_and_go_down_again(database_url):
    engine = make_engine(database_url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        downgrade(database_url, "base")
        assert not set(Base.metadata.tables) & set(inspect(engine).get_table_names())
        upgrade(database_url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_models_match_the_migrations(database_url):
    """A model change without a migration fails here (alembic autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_id_number_is_unique_in_the_database(session_factory, vault):
    with session_factory() as session:
        session.execute(insert(Veteran.__table__), [_veteran(vault)])
        session.commit()
        with pytest.raises(IntegrityError):
            session.execute(insert(Veteran.__table__), [_veteran(vault, name="另一个人")])
            session.commit()


@pytest.mark.parametrize("overrides", [
    {"gender": "未知"},
    {"enlisted_on": dt.date(1975, 1, 1)},  # after discharge
    {"enlisted_on": dt.date(1940, 1, 1)},  # before birth
    {"status": "在世", "deceased_on": dt.date(2020, 1, 1)},  # a death date for the living
    {"status": "不存在的状态"},
])
def test_checks_refuse_impossible_veterans(session_factory, vault, overrides):
    with session_factory() as session:
        with pytest.raises(IntegrityError):
            session.execute(insert(Veteran.__table__), [_veteran(vault, **overrides)])
            session.commit()


def test_foreign_keys_are_enforced(session_factory):
    with session_factory() as session:
        with pytest.raises(IntegrityError):
            session.execute(insert(WechatBinding.__table__),
                            [{"openid": "o-test", "veteran_id": 999999, "bound_at": dt.datetime.now(dt.timezone.utc)}])
            session.commit()


def test_station_tiers_and_parents_are_checked(session_factory):
    base = dict(district="嘉定区", address="示例路1号", phone="021-69590000", aliases=[])
    with session_factory() as session:
        session.execute(insert(Station.__table__), [dict(base, code="C", name="中心", tier="district")])
        session.commit()
        with pytest.raises(IntegrityError):  # a street station needs its parent
            session.execute(insert(Station.__table__), [dict(base, code="S", name="站", tier="street")])
            session.commit()


def test_the_database_never_holds_a_clear_id_number(session_factory, vault, database_url):
    veteran = _veteran(vault)
    phone = vault.protect_phone("13812345678", VETERAN_PHONE, veteran["id_hash"])
    with session_factory() as session:
        session.execute(insert(Veteran.__table__), [dict(veteran, phone_hash=phone.lookup,
                                                         phone_cipher=phone.cipher, phone_masked=phone.masked)])
        session.commit()
        row = session.execute(text("SELECT * FROM veterans")).mappings().one()
    dump = " ".join(str(value) for value in row.values())
    assert "11010519491231002X" not in dump and "13812345678" not in dump
    assert row["id_masked"] == "1101**************"


def test_0004_keeps_the_register_and_its_history(database_url):
    """0004 rebuilds complaint_cases on SQLite (a CHECK changes): cases, their history rows
    (which reference the cases) and the other CHECKs survive, up and down again."""
    engine = make_engine(database_url)
    now = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.timezone.utc)
    case = dict(case_number="TS20261123-0001", openid="o-1", category="待遇发放", description="补助没发",
                reply_channel="anonymous", urgent=False, priority=3, state="registered", reopened=0,
                state_changed_at=now, created_at=now, updated_at=now)
    try:
        downgrade(database_url, "0003")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO complaint_cases (case_number, openid, category, description, reply_channel, urgent,"
                " priority, state, reopened, state_changed_at, created_at, updated_at) VALUES (:case_number,"
                " :openid, :category, :description, :reply_channel, :urgent, :priority, :state, :reopened,"
                " :state_changed_at, :created_at, :updated_at)"), case)
            case_id = connection.execute(text("SELECT id FROM complaint_cases")).scalar_one()
            connection.execute(text("INSERT INTO complaint_events (case_id, kind, to_state, actor, happened_at)"
                                    " VALUES (:id, 'transition', 'registered', 'user', :now)"), {"id": case_id, "now": now})
        upgrade(database_url)
        with engine.begin() as connection:
            assert connection.execute(text("SELECT case_number FROM complaint_cases")).scalar_one() == "TS20261123-0001"
            assert connection.execute(text("SELECT count(*) FROM complaint_events WHERE case_id = :id"),
                                      {"id": case_id}).scalar_one() == 1
            connection.execute(text("UPDATE complaint_cases SET reply_channel = 'wechat'"))
        for bad in ("reply_channel = 'pigeon'", "priority = 9", "state = 'lost'"):
            with pytest.raises(IntegrityError), engine.begin() as connection:
                connection.execute(text(f"UPDATE complaint_cases SET {bad}"))
        downgrade(database_url, "0003")
        with engine.begin() as connection:  # a WeChat-only reply has no phone: anonymous before 0004
            assert connection.execute(text("SELECT reply_channel FROM complaint_cases")).scalar_one() == "anonymous"
        upgrade(database_url)
    finally:
        engine.dispose()
