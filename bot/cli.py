"""`vetbot`: the command line of 荣军助手.

    vetbot train      train a model when none matches the data
    vetbot serve      run Rasa and the action server in the foreground; Ctrl-C stops all
    vetbot chat       chat in the terminal with the running assistant, as a simulated WeChat user
    vetbot create-staff USER --role R [--station CODE] --name NAME   a console account (工作台账号)
    vetbot staff passwd|reset|deactivate|activate|unlock USER          look after one (bot.console.accounts_cli)
    vetbot validate   rasa data validate; unexpected warnings fail
    vetbot evaluate   score the NLU on the held-out split and write the report
    vetbot db upgrade migrate the veteran database to the latest schema
    vetbot pii rewrap bind the ciphertexts written before 0011 to their rows (serve does it at start)
    vetbot load-stations  (re)load the service network from data/stations.yml
    vetbot load-services  (re)load bookable services and closures (data/services.yml, closures.yml)
    vetbot calendar-check check data/holidays.yml; warn when the holiday data ends within 60 days
    vetbot seed --veterans N      demo veterans (default 5,000)
    vetbot import-roster FILE     the bureau's roster (.xlsx / .csv, Chinese headers)
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional


def cmd_train(args: argparse.Namespace) -> int:
    from bot.training import train

    return train(force=args.force)


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.serve import serve

    return serve()


def cmd_create_staff(args: argparse.Namespace) -> int:
    from bot.console.accounts_cli import run_create_staff

    return run_create_staff(args)


def cmd_staff(args: argparse.Namespace) -> int:
    from bot.console.accounts_cli import run_staff

    return run_staff(args)


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.chat import chat, chat_wechat

    if args.rest:
        return chat(sender=args.sender)
    return chat_wechat(openid=args.sender)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bot.evaluation import evaluate

    return evaluate(model=args.model, out_dir=args.out)


def cmd_validate(args: argparse.Namespace) -> int:
    from bot.validate import validate

    return validate()


def _database(args: argparse.Namespace):
    """Settings (with --database-url applied), a session factory and the PII vault."""
    from bot.db.session import make_engine, make_session_factory
    from bot.pii import PiiVault
    from bot.settings import Settings

    environ = dict(os.environ)
    if getattr(args, "database_url", None):
        environ["VETBOT_DATABASE_URL"] = args.database_url
    settings = Settings.from_env(environ)
    engine = make_engine(settings.database_url)
    return settings, engine, make_session_factory(engine), PiiVault.from_settings(settings)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade

    settings, engine, _, _ = _database(args)
    engine.dispose()
    upgrade(settings.database_url)
    print("数据库已升级到最新结构。")
    return 0


def cmd_pii_rewrap(args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade
    from bot.services.rewrap import rewrap_all, summary_zh

    settings, engine, factory, vault = _database(args)
    try:
        upgrade(settings.database_url)
        counts = rewrap_all(factory, vault)
    finally:
        engine.dispose()
    print(summary_zh(counts))
    return 1 if any(count.unreadable for count in counts) else 0


def cmd_load_stations(args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade
    from bot.db.session import session_scope
    from bot.services.stations import StationDataError, load_stations

    settings, engine, factory, _ = _database(args)
    upgrade(settings.database_url)
    path = args.file or settings.stations_file
    try:
        with session_scope(factory) as session:
            count = load_stations(session, path)
    except StationDataError as error:
        print(f"服务站数据有误，未做任何更改：{error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"已载入 {count} 个服务中心（站）：{path}")
    return 0


def cmd_load_services(args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade
    from bot.db.session import session_scope
    from bot.services.appointments import ServiceDataError, load_services

    settings, engine, factory, _ = _database(args)
    upgrade(settings.database_url)
    try:
        with session_scope(factory) as session:
            count = load_services(session, settings.services_file, settings.closures_file)
    except ServiceDataError as error:
        problems = getattr(error, "problems", None) or [str(error)]
        print("服务事项数据有误，未做任何更改：\n" + "\n".join(f"- {p}" for p in problems), file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"已载入 {count} 项可预约服务：{settings.services_file}（闭站安排：{settings.closures_file}）")
    return 0


def cmd_calendar_check(args: argparse.Namespace) -> int:
    """Exit 1 only for a malformed holidays file; the coming end of the data is a warning."""
    import datetime as dt

    from bot.clock import SHANGHAI
    from bot.services.stations import HolidayDataError, calendar_coverage, load_holidays
    from bot.settings import holidays_file

    path = args.file or holidays_file()
    try:
        calendar = load_holidays(path)
    except HolidayDataError as error:
        print(f"节假日数据有误（{path}）：\n" + "\n".join(f"- {p}" for p in error.problems), file=sys.stderr)
        print(f"The holidays file {path} is wrong; fix the problems above.", file=sys.stderr)
        return 1
    today = args.today or dt.datetime.now(SHANGHAI).date()
    coverage = calendar_coverage(today, calendar, within_days=args.days)
    if coverage.ok:
        last = coverage.last_day
        print(f"节假日数据覆盖至{last.year}年{last.month}月{last.day}日（还有{coverage.days_left}天）。")
        print(f"The holiday data covers up to {last.isoformat()} ({coverage.days_left} days from now).")
    else:
        print(coverage.warning_zh)
        print(coverage.warning_en)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    import time

    from bot.db.migrate import upgrade
    from bot.db.session import session_scope
    from bot.seed import seed
    from bot.services.stations import load_stations

    settings, engine, factory, vault = _database(args)
    try:
        upgrade(settings.database_url)
        with session_scope(factory) as session:
            load_stations(session, settings.stations_file)
        started = time.monotonic()
        result = seed(factory, vault, args.veterans, random_seed=args.random_seed,
                      progress=not args.quiet)
        elapsed = time.monotonic() - started
    finally:
        engine.dispose()
    print(f"新增退役军人 {result.veterans} 名、优抚类别 {result.entitlements} 条、"
          f"申请 {result.applications} 件（办理记录 {result.steps} 条）、定期补助 {result.subsidies} 条，"
          f"用时 {elapsed:.1f} 秒。")
    return 0


def cmd_import_roster(args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade
    from bot.services.roster import RosterError, import_roster, summary_zh

    settings, engine, factory, vault = _database(args)
    try:
        upgrade(settings.database_url)
        result = import_roster(factory, vault, args.file, report_path=args.report)
    except (RosterError, FileNotFoundError) as error:
        print(f"导入失败，未做任何更改：{error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(summary_zh(result))
    return 0 if result.rejected == 0 else 2


def _iso_date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-12-07") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vetbot", description="荣军助手 (vetbot)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train the model if the data changed")
    train.add_argument("--force", action="store_true", help="retrain even if nothing changed")
    train.set_defaults(func=cmd_train)

    serve = sub.add_parser("serve", help="run the whole assistant in the foreground")
    serve.set_defaults(func=cmd_serve)

    chat = sub.add_parser("chat", help="chat with the running assistant in the terminal, as a WeChat user")
    chat.add_argument("--sender", default=None, help="the OpenID / conversation id (default: a new one)")
    chat.add_argument("--rest", action="store_true",
                      help="talk to Rasa's REST channel directly instead of through the WeChat gateway")
    chat.set_defaults(func=cmd_chat)

    validate = sub.add_parser("validate", help="rasa data validate, failing on unexpected warnings")
    validate.set_defaults(func=cmd_validate)

    evaluate = sub.add_parser("evaluate", help="evaluate the NLU on the held-out split")
    evaluate.add_argument("--model", default=None, help="model file (default: the latest in models/)")
    evaluate.add_argument("--out", default="docs/evaluation", help="report directory")
    evaluate.set_defaults(func=cmd_evaluate)

    db = sub.add_parser("db", help="the veteran database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_sub.add_parser("upgrade", help="migrate to the latest schema (Alembic)")
    db_upgrade.add_argument("--database-url", default=None, help="default: VETBOT_DATABASE_URL")
    db_upgrade.set_defaults(func=cmd_db_upgrade)

    pii = sub.add_parser("pii", help="personal numbers at rest")
    pii_sub = pii.add_subparsers(dest="pii_command", required=True)
    pii_rewrap = pii_sub.add_parser(
        "rewrap", help="seal the ciphertexts of before the row binding again, bound to their rows (idempotent)")
    pii_rewrap.add_argument("--database-url", default=None, help="default: VETBOT_DATABASE_URL")
    pii_rewrap.set_defaults(func=cmd_pii_rewrap)

    stations = sub.add_parser("load-stations", help="(re)load the service network from its data file")
    stations.add_argument("file", nargs="?", default=None, help="default: data/stations.yml")
    stations.add_argument("--database-url", default=None, help="default: VETBOT_DATABASE_URL")
    stations.set_defaults(func=cmd_load_stations)

    services = sub.add_parser("load-services", help="(re)load bookable services and closures")
    services.add_argument("--database-url", default=None, help="default: VETBOT_DATABASE_URL")
    services.set_defaults(func=cmd_load_services)

    calendar = sub.add_parser("calendar-check",
                              help="check the holidays file; warn when the holiday data ends within 60 days")
    calendar.add_argument("--file", default=None, help="default: VETBOT_HOLIDAYS_FILE or data/holidays.yml")
    calendar.add_argument("--today", type=_iso_date, default=None, help="YYYY-MM-DD (default: today in Beijing)")
    calendar.add_argument("--days", type=int, default=60, help="warn this many days ahead (default 60)")
    calendar.set_defaults(func=cmd_calendar_check)

    seed = sub.add_parser("seed", help="demo veterans with realistic records")
    seed.add_argument("--veterans", type=int, default=5000, help="how many (default 5000)")
    seed.add_argument("--random-seed", type=int, default=2026,
                      help="same seed, same people: seeding again adds none twice")
    seed.add_argument("--database-url", default=None, help="default: VETBOT_DATABASE_URL")
    seed.add_argument("--quiet", action="store_true", help="no progress bar")
    seed.set_defaults(func=cmd_seed)

    roster = sub.add_parser("import-roster", help="import the bureau's roster (.xlsx or .csv)")
    roster.add_argument("file", help="roster file with Chinese column headers (姓名, 身份证号, 手机号 …)")
    roster.add_argument("--report", default=None, help="error report (default: <file>.errors.csv)")
    roster.add_argument("--database-url", default=None, help="default: VETBOT_DATABASE_URL")
    roster.set_defaults(func=cmd_import_roster)
    from bot.console.accounts_cli import add_create_staff_arguments, add_staff_arguments

    create_staff = sub.add_parser("create-staff",
                                  help="create a console account (password asked twice, or VETBOT_STAFF_PASSWORD)")
    add_create_staff_arguments(create_staff)
    create_staff.set_defaults(func=cmd_create_staff)

    staff = sub.add_parser("staff", help="console accounts: passwd, reset, deactivate, activate, unlock USERNAME")
    add_staff_arguments(staff)
    staff.set_defaults(func=cmd_staff)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    # No internet at run time: Rasa's telemetry stays off for every process we start.
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
