"""``vetbot create-staff`` and ``vetbot staff …``: console accounts from the terminal.

    vetbot create-staff wangkz --role station --station JD-AT --name 王科长
    vetbot staff passwd wangkz       set a password chosen by its holder (asked twice)
    vetbot staff reset wangkz        a one-time password, printed once; to be changed at sign-in
    vetbot staff deactivate wangkz   停用: every session of the account ends at once
    vetbot staff activate wangkz     启用 again
    vetbot staff unlock wangkz       forget the name's failed sign-ins (解除登录限制)

A password is asked twice (not echoed), or taken from VETBOT_STAFF_PASSWORD for
scripts and tests. Errors are printed in Chinese and exit with 1; nothing is changed
then. Each step is in the audit log as done from the command line, with the operating
system user who ran it. The heavy imports wait until the command runs, so building
the CLI's parser stays fast.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import List, Mapping, Optional

PASSWORD_VARIABLE = "VETBOT_STAFF_PASSWORD"
ROLE_HELP = "admin 系统管理员 / district 区中心工作人员 / station 服务站工作人员 / trainer 语料训练员"


def add_create_staff_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("username", help="用户名：3至32位英文字母、数字、点、下划线或连字符，字母开头")
    parser.add_argument("--role", required=True, choices=("admin", "district", "station", "trainer"), help=ROLE_HELP)
    parser.add_argument("--station", default=None,
                        help="所属站点代码（data/stations.yml 的 code）：station 与 district 角色必填")
    parser.add_argument("--name", required=True, help="姓名或称呼，显示在工作台上，如：王科长")
    parser.add_argument("--database-url", default=None, help="default: VETBOT_DATABASE_URL")
    return parser


def _password(environ: Mapping[str, str], prompt: str = "请输入新账号的密码：",
              nothing_done: str = "未创建账号") -> Optional[str]:
    given = environ.get(PASSWORD_VARIABLE)
    if given:
        return given
    try:
        first = getpass.getpass(prompt)
        second = getpass.getpass("请再输入一次：")
    except (EOFError, KeyboardInterrupt):
        print(f"\n已取消，{nothing_done}。", file=sys.stderr)
        return None
    if first != second:
        print(f"两次输入的密码不一致，{nothing_done}。", file=sys.stderr)
        return None
    return first


def run_create_staff(args: argparse.Namespace, environ: Optional[Mapping[str, str]] = None) -> int:
    import datetime as dt

    from bot.db.migrate import upgrade
    from bot.db.session import make_engine, make_session_factory, session_scope
    from bot.services.staff import ROLE_LABELS, StaffError, normalize_username, password_problem
    from bot.services import staff as staff_service
    from bot.settings import Settings

    env = dict(os.environ if environ is None else environ)
    if args.database_url:
        env["VETBOT_DATABASE_URL"] = args.database_url
    settings = Settings.from_env(env)

    password = _password(env)
    if password is None:
        return 1
    # The password's rules before the database: a typo costs no connection.
    problem = password_problem(password, normalize_username(args.username))
    if problem:
        print(f"密码不符合要求，未创建账号：{problem}", file=sys.stderr)
        return 1

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            account = staff_service.create_account(
                session, args.username, args.name, password, args.role, args.station,
                dt.datetime.now(dt.timezone.utc))
            summary = (f"已创建账号 {account.username}（{account.display_name}，{ROLE_LABELS[account.role]}"
                       f"{'，' + account.station.name if account.station is not None else ''}）。")
    except StaffError as error:
        print(f"未创建账号：{error.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(summary)
    return 0


def create_staff_command(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    """The whole command on its own: ``argv`` as after ``vetbot create-staff``."""
    parser = add_create_staff_arguments(argparse.ArgumentParser(
        prog="vetbot create-staff", description="创建工作台账号"))
    return run_create_staff(parser.parse_args(argv), environ)


# --- vetbot staff passwd|reset|deactivate|activate|unlock USERNAME ------------------------------

STAFF_STEPS = {
    "passwd": "为账号设置新密码（输入两次，或取自 VETBOT_STAFF_PASSWORD）；该账号原有的登录全部退出",
    "reset": "重置为一次性临时密码（只显示这一次），对方登录后须先设置新密码；该账号原有的登录全部退出",
    "deactivate": "停用账号：该账号的所有登录即时退出",
    "activate": "重新启用已停用的账号",
    "unlock": "解除登录限制：清除该用户名的登录失败记录",
}


def add_staff_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    steps = parser.add_subparsers(dest="staff_command", required=True)
    for name, help_text in STAFF_STEPS.items():
        step = steps.add_parser(name, help=help_text, description=help_text)
        step.add_argument("username", help="账号的用户名")
        step.add_argument("--database-url", default=None, help="default: VETBOT_DATABASE_URL")
    return parser


def _operator() -> str:
    """Who ran the command, for the audit line: the operating system user."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (getpass raises OSError or KeyError)
        return "未知用户"


def run_staff(args: argparse.Namespace, environ: Optional[Mapping[str, str]] = None) -> int:
    import datetime as dt

    from bot.db.migrate import upgrade
    from bot.db.session import make_engine, make_session_factory, session_scope
    from bot.pii import PiiVault
    from bot.services import staff as staff_service
    from bot.services.staff import StaffError, normalize_username, password_problem
    from bot.settings import Settings

    env = dict(os.environ if environ is None else environ)
    if args.database_url:
        env["VETBOT_DATABASE_URL"] = args.database_url
    settings = Settings.from_env(env)
    step, username = args.staff_command, normalize_username(args.username)

    password = None
    if step == "passwd":
        password = _password(env, f"请输入 {username} 的新密码：", "密码未修改")
        if password is None:
            return 1
        problem = password_problem(password, username)
        if problem:
            print(f"密码不符合要求，未修改：{problem}", file=sys.stderr)
            return 1

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    note = f"命令行：{_operator()}"
    try:
        with session_scope(make_session_factory(engine)) as session:
            account = staff_service.find_account(session, username)
            if account is None:
                print(f"没有用户名为 {username} 的账号，未做任何更改。", file=sys.stderr)
                return 1
            who = f"{account.username}（{account.display_name}）"
            now = dt.datetime.now(dt.timezone.utc)
            if step == "passwd":
                staff_service.set_password(session, account, password, now, note=note)
                summary = f"已为 {who}设置新密码，该账号原有的登录已全部退出。"
            elif step == "reset":
                one_time = staff_service.reset_password(session, account, now, note=note)
                summary = (f"已为 {who}重置密码，该账号原有的登录已全部退出。\n"
                           f"临时密码（只显示这一次）：{one_time}\n"
                           "请当面或电话告知本人，不要通过微信、短信或邮件发送；对方登录后须先设置自己的新密码。")
                if not account.active:
                    summary += "\n该账号目前已停用，重新启用后才能登录。"
            elif step == "deactivate":
                staff_service.deactivate(session, account, now, note=note)
                summary = f"已停用 {who}的账号，该账号的所有登录已即时退出。"
            elif step == "activate":
                staff_service.activate(session, account, now, note=note)
                summary = f"已启用 {who}的账号。"
            else:
                cleared = staff_service.unlock(session, PiiVault.from_settings(settings), account, now, note=note)
                summary = f"已解除 {who}的登录限制（清除登录失败记录 {cleared} 条）。"
    except StaffError as error:
        print(f"未能办理，未做任何更改：{error.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(summary)
    return 0


def staff_command(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    """The whole command on its own: ``argv`` as after ``vetbot staff``."""
    parser = add_staff_arguments(argparse.ArgumentParser(prog="vetbot staff", description="工作台账号的日常管理"))
    return run_staff(parser.parse_args(argv), environ)
