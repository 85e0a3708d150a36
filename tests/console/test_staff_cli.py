"""`vetbot staff passwd|reset|deactivate|activate|unlock USERNAME`, run as the CLI runs
it on the configured database, on SQLite and on PostgreSQL: sessions ended, steps
audited as the command line's (with the operating system user), passwords never
printed but the one-time one."""

from __future__ import annotations

import datetime as dt
import getpass
import re

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.console.accounts_cli import staff_command
from bot.console.auth import start_session
from bot.db.models import AuditEntry, ConsoleSession, StaffAccount
from bot.db.session import session_scope
from bot.services.staff import SignInStatus, authenticate, find_account
from tests.conftest import TEST_SECRET
from tests.console.helpers import TEST_PASSWORD

NEW_PASSWORD = "Fresh-Test-Pass-2027"  # a test value, not a real credential
ADDRESS = "192.0.2.10"


@pytest.fixture
def environ(database_url, accounts, tmp_path):
    return {"VETBOT_DATABASE_URL": database_url, "VETBOT_SECRET_KEY": TEST_SECRET,
            "VETBOT_VAR_DIR": str(tmp_path / "var")}


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def open_sessions(factory, username: str, count: int = 2) -> None:
    with session_scope(factory) as session:
        for _ in range(count):
            start_session(session, find_account(session, username), now())


def session_count(factory, username: str) -> int:
    with session_scope(factory) as session:
        return session.execute(select(func.count()).select_from(ConsoleSession).join(StaffAccount)
                               .where(StaffAccount.username == username)).scalar_one()


def sign_in_status(factory, vault, username: str, password: str) -> SignInStatus:
    with session_scope(factory) as session:
        return authenticate(session, vault, username, password, ADDRESS, now()).status


def last_audit(factory):
    with session_scope(factory) as session:
        entry = session.execute(select(AuditEntry).order_by(AuditEntry.id.desc())).scalars().first()
        return entry.action, entry.staff_id, entry.object_type, entry.detail


def operator_note(username: str) -> str:
    return f"{username}（命令行：{getpass.getuser()}）"


def test_passwd_sets_a_password_and_ends_the_sessions(environ, accounts, vault, capsys):
    open_sessions(accounts, "wangkz")
    assert staff_command(["passwd", "WangKZ"], dict(environ, VETBOT_STAFF_PASSWORD=NEW_PASSWORD)) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "已为 wangkz（王科长）设置新密码，该账号原有的登录已全部退出。" and err == ""
    assert NEW_PASSWORD not in out
    assert session_count(accounts, "wangkz") == 0
    assert sign_in_status(accounts, vault, "wangkz", TEST_PASSWORD) is SignInStatus.WRONG
    assert sign_in_status(accounts, vault, "wangkz", NEW_PASSWORD) is SignInStatus.OK
    with session_scope(accounts) as session:
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == "staff.password")).scalar_one()
        assert (entry.staff_id, entry.detail) == (None, operator_note("wangkz"))


def test_passwd_keeps_the_password_rules(environ, accounts, vault, capsys):
    assert staff_command(["passwd", "wangkz"], dict(environ, VETBOT_STAFF_PASSWORD="Wangkz-Pass-2027")) == 1
    assert "密码不符合要求，未修改：密码不能包含用户名。" in capsys.readouterr().err
    assert sign_in_status(accounts, vault, "wangkz", TEST_PASSWORD) is SignInStatus.OK


def test_passwd_asks_twice_on_the_terminal(environ, accounts, vault, capsys, monkeypatch):
    answers = iter([NEW_PASSWORD, NEW_PASSWORD + "x"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert staff_command(["passwd", "wangkz"], environ) == 1
    assert "两次输入的密码不一致，密码未修改。" in capsys.readouterr().err
    assert sign_in_status(accounts, vault, "wangkz", TEST_PASSWORD) is SignInStatus.OK


def test_reset_prints_a_one_time_password_once_and_ends_the_sessions(environ, accounts, vault, capsys):
    open_sessions(accounts, "wangkz")
    assert staff_command(["reset", "wangkz"], environ) == 0
    out = capsys.readouterr().out
    assert "已为 wangkz（王科长）重置密码，该账号原有的登录已全部退出。" in out and "只显示这一次" in out
    one_time = re.search(r"临时密码（只显示这一次）：(\S+)", out).group(1)
    assert session_count(accounts, "wangkz") == 0
    with session_scope(accounts) as session:
        assert find_account(session, "wangkz").must_change_password is True
    assert sign_in_status(accounts, vault, "wangkz", TEST_PASSWORD) is SignInStatus.WRONG
    assert sign_in_status(accounts, vault, "wangkz", one_time) is SignInStatus.OK
    action, staff_id, object_type, detail = last_audit(accounts)
    assert (action, staff_id, object_type, detail) == ("staff.reset", None, "staff_account", operator_note("wangkz"))
    assert one_time not in detail


def test_deactivate_and_activate(environ, accounts, vault, capsys):
    open_sessions(accounts, "wangkz")
    assert staff_command(["deactivate", "wangkz"], environ) == 0
    assert capsys.readouterr().out.strip() == "已停用 wangkz（王科长）的账号，该账号的所有登录已即时退出。"
    assert session_count(accounts, "wangkz") == 0
    assert sign_in_status(accounts, vault, "wangkz", TEST_PASSWORD) is SignInStatus.WRONG
    assert last_audit(accounts) == ("staff.deactivate", None, "staff_account", operator_note("wangkz"))

    assert staff_command(["deactivate", "wangkz"], environ) == 1
    assert "未能办理，未做任何更改：账号 wangkz 已是停用状态。" in capsys.readouterr().err

    assert staff_command(["activate", "wangkz"], environ) == 0
    assert capsys.readouterr().out.strip() == "已启用 wangkz（王科长）的账号。"
    assert sign_in_status(accounts, vault, "wangkz", TEST_PASSWORD) is SignInStatus.OK
    assert last_audit(accounts)[0] == "staff.activate"


def test_the_last_active_admin_is_not_deactivated(environ, accounts, capsys):
    assert staff_command(["deactivate", "admin1"], environ) == 1
    assert "admin1 是唯一启用的系统管理员账号，不能停用" in capsys.readouterr().err
    with session_scope(accounts) as session:
        assert find_account(session, "admin1").active
        assert session.execute(select(func.count()).select_from(AuditEntry)
                               .where(AuditEntry.action == "staff.deactivate")).scalar_one() == 0


def test_unlock_clears_the_names_failures(environ, accounts, vault, capsys):
    for _ in range(5):
        assert sign_in_status(accounts, vault, "wangkz", "Wrong-Pass-2026") is SignInStatus.WRONG
    assert sign_in_status(accounts, vault, "wangkz", TEST_PASSWORD) is SignInStatus.THROTTLED
    assert staff_command(["unlock", "wangkz"], environ) == 0
    assert capsys.readouterr().out.strip() == "已解除 wangkz（王科长）的登录限制（清除登录失败记录 5 条）。"
    assert last_audit(accounts) == ("staff.unlock", None, "staff_account", operator_note("wangkz"))
    assert sign_in_status(accounts, vault, "wangkz", TEST_PASSWORD) is SignInStatus.OK


def test_an_unknown_name_changes_nothing(environ, accounts, capsys):
    for step in ("reset", "deactivate", "activate", "unlock"):
        assert staff_command([step, "nobody"], environ) == 1
        assert "没有用户名为 nobody 的账号，未做任何更改。" in capsys.readouterr().err
    with session_scope(accounts) as session:
        assert session.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == 5  # the creations


def test_vetbot_staff_through_the_main_command_line(environ, accounts, vault, capsys, monkeypatch):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["staff", "reset", "zhoumq"]) == 0
    assert "已为 zhoumq（周站长）重置密码" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["staff", "delete", "zhoumq"])
    assert exit_.value.code == 2
