"""`vetbot create-staff`, run as the CLI runs it, on SQLite and on PostgreSQL."""

from __future__ import annotations

import getpass

import pytest
from sqlalchemy import select

from bot.console.accounts_cli import create_staff_command
from bot.db.models import AuditEntry, StaffAccount
from bot.db.session import session_scope
from bot.services.stations import load_stations
from bot.settings import PROJECT_ROOT
from tests.conftest import TEST_SECRET

TEST_PASSWORD = "Test-Only-Pass-2026"  # a test value, not a real credential


@pytest.fixture
def environ(database_url, session_factory, tmp_path):
    with session_scope(session_factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
    return {"VETBOT_DATABASE_URL": database_url, "VETBOT_SECRET_KEY": TEST_SECRET,
            "VETBOT_VAR_DIR": str(tmp_path / "var"), "VETBOT_STAFF_PASSWORD": TEST_PASSWORD}


def test_creates_a_station_account(environ, session_factory, capsys):
    code = create_staff_command(["WangKZ", "--role", "station", "--station", "JD-AT", "--name", "王科长"], environ)
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.strip() == "已创建账号 wangkz（王科长，服务站工作人员，安亭镇退役军人服务站）。"
    assert TEST_PASSWORD not in out
    with session_scope(session_factory) as session:
        account = session.execute(select(StaffAccount)).scalar_one()
        assert account.password_hash.startswith("$argon2id$") and account.station.code == "JD-AT"
        entry = session.execute(select(AuditEntry)).scalar_one()
        assert (entry.action, entry.staff_id, entry.object_id) == ("staff.create", None, str(account.id))


@pytest.mark.parametrize("argv, password, expected", [
    (["wangkz", "--role", "station", "--station", "XX", "--name", "王科长"], TEST_PASSWORD, "没有代码为 XX 的站点"),
    (["wangkz", "--role", "station", "--name", "王科长"], TEST_PASSWORD, "必须指定所属站点"),
    (["wangkz", "--role", "trainer", "--station", "JD", "--name", "陈"], TEST_PASSWORD, "不属于某个站点"),
    (["wangkz", "--role", "admin", "--name", "李"], "short", "密码不符合要求，未创建账号：密码至少需要10位。"),
])
def test_explains_errors_in_chinese_and_creates_nothing(environ, session_factory, capsys, argv, password, expected):
    assert create_staff_command(argv, dict(environ, VETBOT_STAFF_PASSWORD=password)) == 1
    assert expected in capsys.readouterr().err
    with session_scope(session_factory) as session:
        assert session.execute(select(StaffAccount)).first() is None


def test_a_taken_username_is_refused(environ, capsys):
    argv = ["wangkz", "--role", "admin", "--name", "李管理"]
    assert create_staff_command(argv, environ) == 0
    assert create_staff_command(argv, environ) == 1
    assert "用户名 wangkz 已被使用" in capsys.readouterr().err


def test_the_password_is_asked_twice_on_the_terminal(environ, session_factory, capsys, monkeypatch):
    environ = {k: v for k, v in environ.items() if k != "VETBOT_STAFF_PASSWORD"}
    answers = iter([TEST_PASSWORD, TEST_PASSWORD + "x"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert create_staff_command(["wangkz", "--role", "admin", "--name", "李"], environ) == 1
    assert "两次输入的密码不一致" in capsys.readouterr().err

    answers = iter([TEST_PASSWORD, TEST_PASSWORD])
    assert create_staff_command(["wangkz", "--role", "admin", "--name", "李"], environ) == 0
    with session_scope(session_factory) as session:
        assert session.execute(select(StaffAccount.username)).scalar_one() == "wangkz"


def test_a_missing_role_is_an_argparse_error(environ):
    with pytest.raises(SystemExit) as exit_:
        create_staff_command(["wangkz", "--name", "李"], environ)
    assert exit_.value.code == 2
