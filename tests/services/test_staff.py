"""Staff accounts: creation rules, argon2 hashes, sign-in and its throttling, data scope
on the real service network (data/stations.yml), and the append-only audit log.

Runs on SQLite and on PostgreSQL (the `session_factory` fixture)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from bot.db.models import AuditEntry, ConsoleSession, StaffAccount, StaffLoginFailure, Station
from bot.db.session import session_scope
from bot.services import staff
from bot.services.staff import (
    ADDRESS_FAILURE_LIMIT,
    USERNAME_FAILURE_LIMIT,
    SignInStatus,
    StaffError,
    audit,
    audit_entries,
    authenticate,
    create_account,
)
from bot.services.scope import Scope
from bot.services.stations import load_stations
from bot.settings import PROJECT_ROOT

STATIONS_FILE = PROJECT_ROOT / "data" / "stations.yml"
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)
TEST_PASSWORD = "Test-Only-Pass-2026"  # a test value, not a real credential
OTHER_TEST_PASSWORD = "Another-Test-Pass-77"
ADDRESS = "192.0.2.10"  # TEST-NET-1


@pytest.fixture
def loaded(session_factory):
    with session_scope(session_factory) as session:
        load_stations(session, STATIONS_FILE)
    return session_factory


def station_id(session, code: str) -> int:
    return session.execute(select(Station.id).where(Station.code == code)).scalar_one()


def codes(session, ids) -> set:
    return set(session.execute(select(Station.code).where(Station.id.in_(ids))).scalars())


def make(factory, username="wangkz", role="station", station="JD-AT", name="王科长", password=TEST_PASSWORD):
    with session_scope(factory) as session:
        account = create_account(session, username, name, password, role, station, NOW)
        return account.id


# --- accounts and passwords -------------------------------------------------------------


def test_the_hash_is_argon2id_and_never_the_password(loaded):
    make(loaded, username="ＷangKZ")  # full-width and upper case fold to the stored name
    with session_scope(loaded) as session:
        account = session.execute(select(StaffAccount)).scalar_one()
        dump = " ".join(str(v) for v in session.execute(text("SELECT * FROM staff_accounts")).one())
        assert account.station.code == "JD-AT"
    assert account.username == "wangkz"
    assert account.password_hash.startswith("$argon2id$v=19$")
    assert TEST_PASSWORD not in dump
    assert account.active and account.password_changed_at is not None


@pytest.mark.parametrize("kwargs, expected", [
    ({"username": "ab"}, "用户名须为3至32位"),
    ({"username": "1wang"}, "以英文字母开头"),
    ({"username": "王科长"}, "用户名须为3至32位"),
    ({"name": " "}, "请填写姓名"),
    ({"role": "boss"}, "角色只能是"),
    ({"role": "station", "station": None}, "必须指定所属站点"),
    ({"role": "station", "station": "XX-NOPE"}, "没有代码为 XX-NOPE 的站点"),
    ({"role": "station", "station": "JD"}, "区中心的工作人员请使用 district 角色"),
    ({"role": "district", "station": "JD-AT"}, "不是区中心"),
    ({"role": "admin", "station": "JD"}, "不属于某个站点"),
    ({"password": "Short-1"}, "密码至少需要10位"),
    ({"password": "alllowercaseletters"}, "至少三类"),
    ({"password": "Wangkz-2026-secure"}, "不能包含用户名"),
    ({"password": "Password@123"}, "太常见"),
])
def test_create_account_explains_what_is_wrong_in_chinese(loaded, kwargs, expected):
    with pytest.raises(StaffError) as error:
        make(loaded, **kwargs)
    assert expected in error.value.message
    with session_scope(loaded) as session:
        assert session.execute(select(func.count()).select_from(StaffAccount)).scalar_one() == 0


def test_a_username_is_taken_once(loaded):
    make(loaded)
    with pytest.raises(StaffError, match="已被使用"):
        make(loaded, username="WANGKZ", station="JD-JDZ")


def test_the_database_refuses_what_the_rules_refuse(loaded):
    """The CHECKs hold even for a writer that skips the service."""
    good = dict(username="direct", display_name="直接写入", role="station", active=True,
                password_hash=staff.hash_password(TEST_PASSWORD), created_at=NOW, password_changed_at=NOW)
    with session_scope(loaded) as session:
        good["station_id"] = station_id(session, "JD-AT")
    for bad in ({"password_hash": TEST_PASSWORD}, {"station_id": None}, {"role": "boss"},
                {"role": "admin"}, {"username": "Direct"}):
        with pytest.raises(IntegrityError), session_scope(loaded) as session:
            session.execute(insert(StaffAccount.__table__), [dict(good, **bad)])
    with session_scope(loaded) as session:
        session.execute(insert(StaffAccount.__table__), [good])


def test_change_password_needs_the_old_one_and_ends_other_sessions(loaded, vault):
    account_id = make(loaded)
    with session_scope(loaded) as session:
        for key in ("a" * 64, "b" * 64):
            session.add(ConsoleSession(id=key, staff_id=account_id, csrf_secret="c" * 64, created_at=NOW,
                                       last_seen_at=NOW, expires_at=NOW + dt.timedelta(hours=8)))
    with session_scope(loaded) as session:
        account = session.get(StaffAccount, account_id)
        with pytest.raises(StaffError, match="原密码不正确"):
            staff.change_password(session, account, "Wrong-Pass-2026", OTHER_TEST_PASSWORD, NOW)
        with pytest.raises(StaffError, match="至少需要10位"):
            staff.change_password(session, account, TEST_PASSWORD, "Sh0rt!", NOW)
        staff.change_password(session, account, TEST_PASSWORD, OTHER_TEST_PASSWORD, NOW, keep_session="a" * 64)
    with session_scope(loaded) as session:
        assert list(session.execute(select(ConsoleSession.id)).scalars()) == ["a" * 64]
        assert authenticate(session, vault, "wangkz", TEST_PASSWORD, ADDRESS, NOW).status is SignInStatus.WRONG
        assert authenticate(session, vault, "wangkz", OTHER_TEST_PASSWORD, ADDRESS, NOW).status is SignInStatus.OK


# --- sign-in and throttling ---------------------------------------------------------------


def test_sign_in_success_records_the_time_and_clears_failures(loaded, vault):
    make(loaded)
    with session_scope(loaded) as session:
        assert authenticate(session, vault, "wangkz", "Wrong-Pass-2026", ADDRESS, NOW).status is SignInStatus.WRONG
    with session_scope(loaded) as session:
        result = authenticate(session, vault, " WangKZ ", TEST_PASSWORD, ADDRESS, NOW)
        assert result.status is SignInStatus.OK and result.account.username == "wangkz"
    with session_scope(loaded) as session:
        account = session.execute(select(StaffAccount)).scalar_one()
        assert account.last_login_at is not None
        assert session.execute(select(func.count()).select_from(StaffLoginFailure)).scalar_one() == 0


def test_unknown_user_and_wrong_password_get_the_same_answer(loaded, vault):
    make(loaded)
    with session_scope(loaded) as session:
        unknown = authenticate(session, vault, "nobody", TEST_PASSWORD, ADDRESS, NOW)
        wrong = authenticate(session, vault, "wangkz", "Wrong-Pass-2026", ADDRESS, NOW)
    assert unknown.status is wrong.status is SignInStatus.WRONG
    assert unknown.message == wrong.message == "用户名或密码错误。"


def test_failures_are_stored_without_the_name_typed(loaded, vault):
    typed = "Typed-Password-In-Name-Field"
    with session_scope(loaded) as session:
        authenticate(session, vault, typed, TEST_PASSWORD, ADDRESS, NOW)
    with session_scope(loaded) as session:
        row = session.execute(select(StaffLoginFailure)).scalar_one()
    assert typed.lower() not in row.username_key and len(row.username_key) == 64
    assert row.address == ADDRESS


def test_deactivated_accounts_cannot_sign_in_and_lose_their_sessions(loaded, vault):
    account_id = make(loaded)
    with session_scope(loaded) as session:
        session.add(ConsoleSession(id="a" * 64, staff_id=account_id, csrf_secret="c" * 64, created_at=NOW,
                                   last_seen_at=NOW, expires_at=NOW + dt.timedelta(hours=8)))
    with session_scope(loaded) as session:
        staff.deactivate(session, session.get(StaffAccount, account_id), NOW)
    with session_scope(loaded) as session:
        result = authenticate(session, vault, "wangkz", TEST_PASSWORD, ADDRESS, NOW)
        assert result.status is SignInStatus.WRONG and result.message == "用户名或密码错误。"
        assert session.execute(select(func.count()).select_from(ConsoleSession)).scalar_one() == 0


def test_five_failures_for_a_name_throttle_it_even_with_the_right_password(loaded, vault):
    make(loaded)
    for minute in range(USERNAME_FAILURE_LIMIT):
        with session_scope(loaded) as session:
            at = NOW + dt.timedelta(minutes=minute)
            assert authenticate(session, vault, "wangkz", "Wrong-Pass-2026", ADDRESS, at).status is SignInStatus.WRONG
    later = NOW + dt.timedelta(minutes=5)
    with session_scope(loaded) as session:
        result = authenticate(session, vault, "wangkz", TEST_PASSWORD, "192.0.2.99", later)
        assert result.status is SignInStatus.THROTTLED
        assert result.message == "登录失败次数过多，为保护账号安全，请10分钟后再试。"
        # Another name from the same address is not affected.
        assert authenticate(session, vault, "nobody", TEST_PASSWORD, ADDRESS, later).status is SignInStatus.WRONG
    # The window slides: once the first failure is 15 minutes old, one more try is allowed.
    with session_scope(loaded) as session:
        result = authenticate(session, vault, "wangkz", TEST_PASSWORD, ADDRESS, NOW + dt.timedelta(minutes=15))
        assert result.status is SignInStatus.OK


def test_twenty_failures_from_an_address_throttle_it(loaded, vault):
    make(loaded)
    for n in range(ADDRESS_FAILURE_LIMIT):
        with session_scope(loaded) as session:  # a different name each time: the per-name limit is not hit
            authenticate(session, vault, f"guess{n}", "Wrong-Pass-2026", ADDRESS, NOW)
    with session_scope(loaded) as session:
        result = authenticate(session, vault, "wangkz", TEST_PASSWORD, ADDRESS, NOW + dt.timedelta(minutes=1))
        assert result.status is SignInStatus.THROTTLED and "14分钟后再试" in result.message
        assert authenticate(session, vault, "wangkz", TEST_PASSWORD, "192.0.2.11", NOW).status is SignInStatus.OK


def test_old_failures_are_pruned(loaded, vault):
    with session_scope(loaded) as session:
        authenticate(session, vault, "nobody", "x", ADDRESS, NOW)
    with session_scope(loaded) as session:
        authenticate(session, vault, "nobody", "x", ADDRESS, NOW + dt.timedelta(hours=1))
        times = session.execute(select(StaffLoginFailure.failed_at)).scalars().all()
    assert len(times) == 1


# --- data scope on the real network -------------------------------------------------------


def test_scope_for_each_role(loaded):
    with session_scope(loaded) as session:
        total = session.execute(select(func.count()).select_from(Station)).scalar_one()
    ids = {}
    for username, role, code in (("admin1", "admin", None), ("district1", "district", "JD"),
                                 ("street1", "station", "JD-AT"), ("village1", "station", "JD-AT-HD"),
                                 ("trainer1", "trainer", None)):
        ids[role if role != "station" else code] = make(loaded, username=username, role=role, station=code)

    with session_scope(loaded) as session:
        def scope(key):
            return Scope.of(session, session.get(StaffAccount, ids[key]))

        assert len(scope("admin").station_ids) == total == 60
        assert len(scope("district").station_ids) == total  # the demo district's whole tree
        assert codes(session, scope("JD-AT").station_ids) == {"JD-AT", "JD-AT-HD", "JD-AT-FT", "JD-AT-XT", "JD-AT-XZ"}
        assert codes(session, scope("JD-AT-HD").station_ids) == {"JD-AT-HD"}
        assert scope("trainer").station_ids == frozenset()

        street = scope("JD-AT")
        assert street.station(station_id(session, "JD-AT-FT"))
        assert not street.station(station_id(session, "JD-XCL"))
        assert not street.station(station_id(session, "JD"))  # not upwards
        assert not street.station(None)  # unrouted records: the district's
        assert scope("district").station(None)
        assert not scope("trainer").station(station_id(session, "JD-AT"))

        # The same rule as a WHERE clause, for the console's lists.
        for key, expected in (("JD-AT", 5), ("trainer", 0), ("admin", total), ("district", total)):
            query = select(func.count()).select_from(Station).where(scope(key).where_station(Station.id))
            assert session.execute(query).scalar_one() == expected


# --- the audit log ------------------------------------------------------------------------


def test_audit_rows_are_written_redacted_and_read_by_admins_only(loaded):
    admin_id = make(loaded, username="admin1", role="admin", station=None)
    station_id_ = make(loaded, username="wangkz")
    with session_scope(loaded) as session:
        viewer = session.get(StaffAccount, station_id_)
        audit(session, viewer, "veteran.view", "veteran", 42, "查看档案 身份证号11010519491231002X 手机13812345678",
              NOW)
    with session_scope(loaded) as session:
        admin = session.get(StaffAccount, admin_id)
        entries = audit_entries(session, admin, object_type="veteran")
        assert [(e.action, e.object_id, e.staff_id) for e in entries] == [("veteran.view", "42", station_id_)]
        detail = entries[0].detail
        assert "11010519491231002X" not in detail and "13812345678" not in detail
        assert "[身份证号已隐去]" in detail and "[手机号已隐去]" in detail
        # Account creations were audited too, newest first.
        actions = [e.action for e in audit_entries(session, admin)]
        assert actions == ["veteran.view", "staff.create", "staff.create"]
        with pytest.raises(StaffError, match="只有系统管理员"):
            audit_entries(session, session.get(StaffAccount, station_id_))


def test_the_audit_log_is_append_only_in_the_database(loaded):
    make(loaded)
    for statement in (update(AuditEntry).values(detail="改写"), AuditEntry.__table__.delete()):
        with pytest.raises(IntegrityError), session_scope(loaded) as session:
            session.execute(statement)
    with session_scope(loaded) as session:
        assert session.execute(select(AuditEntry.detail)).scalar_one() == "wangkz（服务站工作人员，安亭镇退役军人服务站）"
