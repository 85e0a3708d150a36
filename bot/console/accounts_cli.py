"""``vetbot create-staff``: create a console account from the terminal.

    vetbot create-staff wangkz --role station --station JD-AT --name 王科长

The password is asked twice (not echoed), or taken from VETBOT_STAFF_PASSWORD for
scripts and tests. Errors are printed in Chinese and exit with 1; nothing is created
then. The heavy imports wait until the command runs, so building the CLI's parser
stays fast.
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


def _password(environ: Mapping[str, str]) -> Optional[str]:
    given = environ.get(PASSWORD_VARIABLE)
    if given:
        return given
    try:
        first = getpass.getpass("请输入新账号的密码：")
        second = getpass.getpass("请再输入一次：")
    except (EOFError, KeyboardInterrupt):
        print("\n已取消，未创建账号。", file=sys.stderr)
        return None
    if first != second:
        print("两次输入的密码不一致，未创建账号。", file=sys.stderr)
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
