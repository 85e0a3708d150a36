"""The database commands of `vetbot`, run the way a bureau's staff run them."""

import csv
import datetime as dt

from sqlalchemy import func, select

from bot import idcard
from bot.cli import main
from bot.db.models import Station, Veteran
from bot.db.session import make_engine, make_session_factory, session_scope


def _count(url, model):
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            return session.execute(select(func.count()).select_from(model)).scalar()
    finally:
        engine.dispose()


def test_seed_loads_the_network_and_the_veterans(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VETBOT_VAR_DIR", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["seed", "--veterans", "25", "--quiet", "--database-url", url]) == 0
    assert "新增退役军人 25 名" in capsys.readouterr().out
    assert _count(url, Veteran) == 26  # with the demo veteran
    assert _count(url, Station) >= 13  # the centre and a station per street at least


def test_import_roster_reports_bad_rows_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VETBOT_VAR_DIR", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    good = idcard.make("310114", dt.date(1980, 3, 9), 15)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    roster = tmp_path / "花名册.csv"
    with roster.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["姓名", "身份证号", "手机号", "入伍时间", "退役时间"])
        writer.writerow(["王建国", good, "13912345678", "1998-12", "2003-12"])
        writer.writerow(["李强", bad, "13912345679", "1998-12", "2003-12"])
    assert main(["import-roster", str(roster), "--database-url", url]) == 2
    out = capsys.readouterr().out
    assert "新增 1" in out and "有误 1" in out
    report = (tmp_path / "花名册.errors.csv").read_text(encoding="utf-8-sig")
    assert "校验位" in report and bad not in report
    assert _count(url, Veteran) == 1


def test_import_roster_explains_a_missing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VETBOT_VAR_DIR", str(tmp_path))
    assert main(["import-roster", str(tmp_path / "没有.xlsx"), "--database-url",
                 f"sqlite:///{tmp_path / 'cli.db'}"]) == 1
    assert "导入失败" in capsys.readouterr().err
