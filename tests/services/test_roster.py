"""花名册导入: bot.services.roster on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import logging
import zipfile
from pathlib import Path
from typing import Dict, List, Sequence

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from bot import idcard
from bot.db.models import Station, Veteran
from bot.db.session import session_scope
from bot.pii import VETERAN_ID, VETERAN_PHONE, mask_id
from bot.services import roster
from bot.services.roster import RosterError, import_roster, summary_zh

TODAY = dt.date(2024, 6, 1)
AREA = "310114"


def make_id(birth: dt.date, sequence: int, x: bool = False) -> str:
    """A valid ID; the first sequence from ``sequence`` on (same parity) whose check char is or is not X."""
    while (idcard.make(AREA, birth, sequence)[-1] == "X") != x:
        sequence += 2
    return idcard.make(AREA, birth, sequence)


ZHANG = make_id(dt.date(1970, 5, 12), 11)  # 男
LI = make_id(dt.date(1972, 3, 8), 22)  # 女
WANG = make_id(dt.date(1968, 11, 30), 31)  # 男
ZHAO = make_id(dt.date(1975, 1, 1), 41)
QIAN = make_id(dt.date(1976, 2, 2), 51)
SUN = make_id(dt.date(1977, 3, 3), 62)  # 女
ZHOU = make_id(dt.date(1978, 4, 4), 71)
WU = make_id(dt.date(1979, 5, 5), 81)
ZHENG = make_id(dt.date(1980, 6, 6), 91)
FENG = make_id(dt.date(1981, 7, 7), 13)
HAN = make_id(dt.date(1983, 9, 9), 17)
_CHEN_VALID = make_id(dt.date(1982, 8, 8), 15)
CHEN_BAD = _CHEN_VALID[:17] + ("0" if _CHEN_VALID[17] != "0" else "1")  # wrong check digit

HEADER = ["姓名", " 身份证号 ", "手机号码", "性别", "出生日期", "入伍时间", "退役日期", "军种", "安置方式",
          "优抚类别", "户籍区", "街道", "社区", "状态", "去世时间", "备注"]
GOOD = [
    ["张三", ZHANG, "138 1234 5678", "男", "1970-05-12", "1988年9月", "1992/12/1", "陆军", "复员",
     "残疾军人（六级）、参战退役人员", "嘉定区", "菊园新区", "嘉呈社区", "在世", "", "党员"],
    ["李秀英", LI, "", "女", "", "19900301", "2010.9.1", "海军", "转业", "", "嘉定区", "安亭镇", "黄渡村", "", "", ""],
    ["王五", WANG.lower(), "+86 139-0000-1111", "", "", "199009", "2000-09-01", "武警部队", "自主就业",
     "在乡复员军人; 参战退役人员", "嘉定区", "马陆镇", "", "已故", "2020年3月5日", ""],
]
BAD = [
    ["陈六", CHEN_BAD, "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["赵七", ZHAO, "", "", "", "1995-09-01", "1993-12-01", "", "", "", "", "", "", "", "", ""],
    ["钱八", QIAN, "1381234", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["李秀英", LI, "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["孙九", SUN, "", "男", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["周十", ZHOU, "", "", "", "1996-09-01", "2030-01-01", "", "", "", "", "", "", "", "", ""],
    ["", WU, "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ["郑一", ZHENG, "", "", "", "", "", "", "退伍", "", "", "", "", "", "", ""],
    ["冯二", FENG, "010-1234", "", "", "", "", "", "", "", "", "", "", "健在", "", ""],
    ["13987654321", HAN, "", "", "", "", "", "", "", "", "", "", "", "", "", ""],  # columns shifted
]
# Header is row 1, the good rows 2-4, a blank row 5, the bad rows from 6 on.
EXPECTED_REPORT = [
    ["6", "陈六", mask_id(CHEN_BAD), "身份证号校验位不正确，请核对是否有输错的数字"],
    ["7", "赵七", mask_id(ZHAO), "退役时间应晚于入伍时间"],
    ["8", "钱八", mask_id(QIAN), "手机号不是有效的11位大陆手机号"],
    ["9", "李秀英", mask_id(LI), "身份证号与第3行重复"],
    ["10", "孙九", mask_id(SUN), "性别（男）与身份证号不符（身份证号为女性）"],
    ["11", "周十", mask_id(ZHOU), "退役时间晚于今天"],
    ["12", "", mask_id(WU), "姓名为空"],
    ["13", "郑一", mask_id(ZHENG),
     "退役类别“退伍”不在允许范围（转业、复员、退休、自主就业、安排工作、供养、逐月领取退役金、其他）"],
    ["14", "冯二", mask_id(FENG), "手机号不是有效的11位大陆手机号；状态“健在”应为在世、已故、失联之一"],
    ["15", "***", mask_id(HAN), "姓名中不应有数字，请检查各列是否错位"],
]
ALL_IDS = [ZHANG, LI, WANG, ZHAO, QIAN, SUN, ZHOU, WU, ZHENG, FENG, HAN, CHEN_BAD]


def write_csv(path: Path, rows: Sequence[Sequence[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def roster_rows(good: List[List[str]] = GOOD) -> List[List[str]]:
    return [HEADER, *good, [""] * len(HEADER), *BAD]


def read_report(path: Path) -> List[List[str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def add_stations(session_factory) -> Dict[str, int]:
    with session_scope(session_factory) as s:
        centre = Station(code="JD", name="嘉定区退役军人服务中心", tier="district", district="嘉定区",
                         address="博乐路1号", phone="021-00000000")
        s.add(centre)
        s.flush()
        juyuan = Station(code="JD-JY", name="菊园新区退役军人服务站", tier="street", parent_id=centre.id,
                         district="嘉定区", street="菊园新区", address="环城路1号", phone="021-00000001")
        anting = Station(code="JD-AT", name="安亭镇退役军人服务站", tier="street", parent_id=centre.id,
                         district="嘉定区", street="安亭镇", address="墨玉路1号", phone="021-00000002")
        s.add_all([juyuan, anting])
        s.flush()
        jiacheng = Station(code="JD-JY-JC", name="嘉呈社区退役军人服务站", tier="community", parent_id=juyuan.id,
                           district="嘉定区", street="菊园新区", community="嘉呈社区", address="嘉呈路1号",
                           phone="021-00000003")
        s.add(jiacheng)
        s.flush()
        return {"菊园新区": juyuan.id, "安亭镇": anting.id, "嘉呈社区": jiacheng.id}


def veterans_by_id(session_factory, vault) -> Dict[str, Veteran]:
    """Every veteran, keyed by the decrypted ID number."""
    with session_scope(session_factory) as s:
        found = s.execute(select(Veteran).options(selectinload(Veteran.entitlements))).scalars().all()
        return {vault.decrypt(v.id_cipher, VETERAN_ID, v.id_hash): v for v in found}


def categories(veteran: Veteran) -> set:
    return {e.category for e in veteran.entitlements}


# --- the whole file ----------------------------------------------------------------


def test_csv_import_stores_good_rows_and_reports_every_problem(session_factory, vault, tmp_path, caplog):
    stations = add_stations(session_factory)
    path = write_csv(tmp_path / "花名册.csv", roster_rows(), encoding="utf-8-sig")
    caplog.set_level(logging.DEBUG)

    result = import_roster(session_factory, vault, path, today=TODAY)

    report = tmp_path / "花名册.errors.csv"
    assert (result.total, result.inserted, result.updated, result.unchanged, result.rejected) == (13, 3, 0, 0, 10)
    assert result.report_path == report
    assert result.ignored_columns == ("备注",)
    assert summary_zh(result) == f"共 13 行：新增 3，更新 0，未变化 0，有误 10（见 {report}）。未识别、已忽略的列：备注"

    veterans = veterans_by_id(session_factory, vault)
    assert set(veterans) == {ZHANG, LI, WANG}
    zhang, li, wang = veterans[ZHANG], veterans[LI], veterans[WANG]
    assert (zhang.name, zhang.gender, zhang.birth_date) == ("张三", "男", dt.date(1970, 5, 12))
    assert (zhang.enlisted_on, zhang.discharged_on) == (dt.date(1988, 9, 1), dt.date(1992, 12, 1))
    assert (zhang.branch, zhang.discharge_category, zhang.status, zhang.deceased_on) == ("陆军", "复员", "在世", None)
    assert (zhang.district, zhang.street, zhang.community) == ("嘉定区", "菊园新区", "嘉呈社区")
    assert zhang.station_id == stations["嘉呈社区"]
    assert vault.decrypt(zhang.phone_cipher, VETERAN_PHONE, zhang.id_hash) == "13812345678"
    assert zhang.phone_masked == "138****5678"
    assert zhang.phone_hash == vault.phone_lookup("13812345678")
    assert zhang.id_hash == vault.id_lookup(ZHANG) and zhang.id_masked == mask_id(ZHANG)
    assert categories(zhang) == {"残疾军人（六级）", "参战退役人员"}

    assert (li.name, li.gender, li.birth_date) == ("李秀英", "女", dt.date(1972, 3, 8))
    assert (li.enlisted_on, li.discharged_on) == (dt.date(1990, 3, 1), dt.date(2010, 9, 1))
    assert (li.phone_hash, li.phone_cipher, li.phone_masked) == (None, None, None)
    assert li.station_id == stations["安亭镇"]  # no station for 黄渡村: the street's
    assert (li.status, categories(li)) == ("在世", set())

    assert vault.decrypt(wang.phone_cipher, VETERAN_PHONE, wang.id_hash) == "13900001111"
    assert (wang.enlisted_on, wang.discharged_on) == (dt.date(1990, 9, 1), dt.date(2000, 9, 1))
    assert (wang.status, wang.deceased_on) == ("已故", dt.date(2020, 3, 5))
    assert wang.station_id is None  # 马陆镇 has no station here
    assert categories(wang) == {"在乡复员军人", "参战退役人员"}

    assert read_report(report) == [["行号", "姓名", "身份证号", "问题"], *EXPECTED_REPORT]
    text = report.read_text(encoding="utf-8-sig")
    for secret in ALL_IDS + ["13812345678", "1381234", "13900001111", "13987654321"]:
        assert secret not in text
        assert secret not in caplog.text


def test_reimport_changes_nothing_and_one_new_phone_updates_one_veteran(session_factory, vault, tmp_path):
    add_stations(session_factory)
    path = write_csv(tmp_path / "roster.csv", roster_rows())
    import_roster(session_factory, vault, path, today=TODAY)
    before = {k: v.updated_at for k, v in veterans_by_id(session_factory, vault).items()}

    again = import_roster(session_factory, vault, path, today=TODAY)
    assert (again.total, again.inserted, again.updated, again.unchanged, again.rejected) == (13, 0, 0, 3, 10)
    assert {k: v.updated_at for k, v in veterans_by_id(session_factory, vault).items()} == before

    changed = [list(row) for row in GOOD]
    changed[0][2] = "13812340000"
    write_csv(path, roster_rows(changed))
    third = import_roster(session_factory, vault, path, today=TODAY)
    assert (third.inserted, third.updated, third.unchanged, third.rejected) == (0, 1, 2, 10)
    after = veterans_by_id(session_factory, vault)
    assert {k for k, v in after.items() if v.updated_at != before[k]} == {ZHANG}
    assert vault.decrypt(after[ZHANG].phone_cipher, VETERAN_PHONE, after[ZHANG].id_hash) == "13812340000"
    assert after[ZHANG].phone_masked == "138****0000"


def write_exact_numbers(path: Path, numbers: Sequence[int]) -> None:
    """Store these number cells with all their digits, as some exporters do (openpyxl and Excel keep 16/15)."""
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode("utf-8")
    for number in numbers:
        rounded = f"<v>{'%.16g' % number}</v>"
        assert rounded in sheet
        sheet = sheet.replace(rounded, f"<v>{number}</v>")
    parts["xl/worksheets/sheet1.xml"] = sheet.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)


def test_xlsx_with_title_row_numeric_cells_and_datetimes(session_factory, vault, tmp_path):
    numeric = make_id(dt.date(1971, 1, 15), 17)
    with_x = make_id(dt.date(1973, 4, 20), 24, x=True)  # 女
    lost = make_id(dt.date(1974, 6, 1), 33)
    ambiguous = make_id(dt.date(1966, 2, 2), 35)
    book = Workbook()
    sheet = book.active
    sheet.append(["嘉定区退役军人花名册（2024年）"])
    sheet.append(["姓名", "公民身份号码", "联系电话", "性别", "入伍日期", "退伍时间", "服役军种", "退役类别",
                  "户籍街道", "户籍社区", "状态", ""])
    sheet.append(["张三", int(numeric), 13812345678, "男", dt.datetime(1988, 9, 1), dt.datetime(1992, 12, 1),
                  "陆军", "复员", "菊园新区", "嘉呈社区", "在世"])
    sheet.append(["李四", float(lost), None, None, None, None])
    sheet.append(["王五", ambiguous, None, None, 1990.1, "2000-09-01"])
    sheet.append([])
    sheet.append(["赵六", with_x.lower(), "139 0000 1111", "女", "1995年3月", dt.datetime(2000, 3, 1),
                  "空军", "退休", None, None, None])
    path = tmp_path / "roster.xlsx"
    book.save(path)
    write_exact_numbers(path, [int(numeric)])

    result = import_roster(session_factory, vault, path, tmp_path / "out" / "errors.csv", today=TODAY)

    assert (result.total, result.inserted, result.rejected) == (4, 2, 2)
    assert result.ignored_columns == ()
    veterans = veterans_by_id(session_factory, vault)
    assert set(veterans) == {numeric, with_x}
    assert veterans[numeric].enlisted_on == dt.date(1988, 9, 1)
    assert vault.decrypt(veterans[numeric].phone_cipher, VETERAN_PHONE, veterans[numeric].id_hash) == "13812345678"
    assert veterans[numeric].station_id is None  # no stations in this database
    assert (veterans[with_x].gender, veterans[with_x].enlisted_on) == ("女", dt.date(1995, 3, 1))
    assert read_report(tmp_path / "out" / "errors.csv")[1:] == [
        ["4", "李四", mask_id(idcard.normalize(roster._text(float(lost)))),
         "身份证号被 Excel 存成了数字，后几位已丢失；请把该列设为文本格式后重新录入"],
        ["5", "王五", mask_id(ambiguous),
         "入伍时间“1990.1”是数字格式，分不清是1月还是10月，请写成“2010年10月”或“2010-10-01”"],
    ]


def test_gb18030_csv_and_a_clean_import_removes_the_old_report(session_factory, vault, tmp_path):
    path = write_csv(tmp_path / "roster.csv", [["姓名", "身份证号码", "街道/镇", "村/社区"],
                                               ["喆𠮷", ZHANG, "菊园新区", "嘉呈社区"]], encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    stale = tmp_path / "roster.errors.csv"
    stale.write_text("old report", encoding="utf-8")

    result = import_roster(session_factory, vault, path, today=TODAY)

    assert (result.total, result.inserted, result.rejected, result.report_path) == (1, 1, 0, None)
    assert summary_zh(result) == "共 1 行：新增 1，更新 0，未变化 0，有误 0"
    assert not stale.exists()
    veteran = veterans_by_id(session_factory, vault)[ZHANG]
    assert (veteran.name, veteran.street, veteran.community) == ("喆𠮷", "菊园新区", "嘉呈社区")


def test_missing_required_column_fails_before_any_row(session_factory, vault, tmp_path):
    path = write_csv(tmp_path / "roster.csv", [["姓名", "手机号"], ["张三", "13812345678"]])
    with pytest.raises(RosterError, match="缺少必需的列：身份证号"):
        import_roster(session_factory, vault, path, today=TODAY)
    assert not (tmp_path / "roster.errors.csv").exists()
    with session_scope(session_factory) as s:
        assert s.execute(select(func.count()).select_from(Veteran)).scalar_one() == 0


# --- partial files, the stored values, the database's last word -----------------------


def test_columns_the_file_lacks_are_left_alone(session_factory, vault, tmp_path):
    import_roster(session_factory, vault, write_csv(tmp_path / "full.csv", roster_rows()), today=TODAY)
    path = write_csv(tmp_path / "part.csv", [["姓名", "身份证号", "退役时间", "优抚类别"],
                                             ["张三", ZHANG, "1993-01-01", "参战退役人员"],
                                             ["李秀英", LI, "2010-09-01", ""]])

    result = import_roster(session_factory, vault, path, today=TODAY)

    assert (result.updated, result.unchanged, result.rejected) == (1, 1, 0)
    zhang = veterans_by_id(session_factory, vault)[ZHANG]
    assert zhang.discharged_on == dt.date(1993, 1, 1)
    assert categories(zhang) == {"参战退役人员"}
    assert vault.decrypt(zhang.phone_cipher, VETERAN_PHONE, zhang.id_hash) == "13812345678"  # no phone column: kept
    assert (zhang.enlisted_on, zhang.branch) == (dt.date(1988, 9, 1), "陆军")


def test_contradiction_with_stored_values_is_rejected(session_factory, vault, tmp_path, monkeypatch):
    import_roster(session_factory, vault, write_csv(tmp_path / "full.csv", roster_rows()), today=TODAY)
    newcomer = make_id(dt.date(1985, 1, 1), 19)
    path = write_csv(tmp_path / "part.csv", [["姓名", "身份证号", "退役时间"],
                                             ["张三", ZHANG, "1985-01-01"],  # stored 入伍 1988-09
                                             ["新人", newcomer, "2010-01-01"]])

    result = import_roster(session_factory, vault, path, today=TODAY)
    assert (result.inserted, result.rejected) == (1, 1)
    assert read_report(result.report_path)[1:] == [
        ["2", "张三", mask_id(ZHANG), "退役时间应晚于入伍时间（与库中已有的时间对照）"]
    ]

    # Were the check missing, the database would refuse the row, and only that row.
    monkeypatch.setattr(roster, "_merged_problems", lambda merged: [])
    other = make_id(dt.date(1986, 1, 1), 19)
    write_csv(path, [["姓名", "身份证号", "退役时间"], ["张三", ZHANG, "1985-01-01"], ["又一人", other, "2010-01-01"]])
    result = import_roster(session_factory, vault, path, today=TODAY)
    assert (result.inserted, result.rejected) == (1, 1)
    assert read_report(result.report_path)[1:] == [["2", "张三", mask_id(ZHANG), "数据库拒绝：退役时间应晚于入伍时间"]]
    veterans = veterans_by_id(session_factory, vault)
    assert veterans[ZHANG].discharged_on == dt.date(1992, 12, 1)
    assert other in veterans


def test_status_and_death_date(session_factory, vault, tmp_path):
    a, b, c = (make_id(dt.date(1950, 1, 1), s) for s in (11, 21, 31))
    path = write_csv(tmp_path / "roster.csv", [["姓名", "身份证号", "状态", "去世时间"],
                                               ["甲", a, "在世", "2020-01-01"],
                                               ["乙", b, "已故", ""],
                                               ["丙", c, "失联", ""]])
    result = import_roster(session_factory, vault, path, today=TODAY)
    assert (result.inserted, result.rejected) == (2, 1)
    assert read_report(result.report_path)[1:] == [["2", "甲", mask_id(a), "填写了去世时间，但状态不是“已故”"]]

    # A file with 状态 but no 去世时间 that revives a veteran also clears the date.
    write_csv(path, [["姓名", "身份证号", "状态", "去世时间"], ["乙", b, "已故", "2021-02-03"]])
    import_roster(session_factory, vault, path, today=TODAY)
    write_csv(path, [["姓名", "身份证号", "状态"], ["乙", b, "在世"]])
    assert import_roster(session_factory, vault, path, today=TODAY).updated == 1
    assert (veterans_by_id(session_factory, vault)[b].status, veterans_by_id(session_factory, vault)[b].deceased_on) \
        == ("在世", None)


def test_many_rows_in_several_batches(session_factory, vault, tmp_path):
    rows = [["姓名", "身份证号", "手机号", "入伍时间", "退役时间", "优抚类别"]]
    for n in range(1200):
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=n)
        rows.append(["老兵" + "甲乙丙丁戊己庚辛壬癸"[n % 10], make_id(birth, 11 + 2 * (n % 400)), f"139{n:08d}",
                     "1980-09-01", "1985-09-01", "在乡复员军人"])
    path = write_csv(tmp_path / "roster.csv", rows)

    first = import_roster(session_factory, vault, path, today=TODAY, batch_size=500)
    second = import_roster(session_factory, vault, path, today=TODAY, batch_size=500)

    assert (first.total, first.inserted, first.rejected) == (1200, 1200, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 1200)


# --- pieces ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, expected, exact",
    [
        ("2010-09-01", dt.date(2010, 9, 1), True),
        ("2010/9/1", dt.date(2010, 9, 1), True),
        ("2010.9.1", dt.date(2010, 9, 1), True),
        ("2010年9月1日", dt.date(2010, 9, 1), True),
        ("２０１０年９月", dt.date(2010, 9, 1), False),
        ("2010.09", dt.date(2010, 9, 1), False),
        ("201009", dt.date(2010, 9, 1), False),
        ("20100901", dt.date(2010, 9, 1), True),
        (20100901, dt.date(2010, 9, 1), True),
        ("2010-09-01 00:00:00", dt.date(2010, 9, 1), True),
        ("2010-09-01 9:30", dt.date(2010, 9, 1), True),
        ("2010 年 9 月", dt.date(2010, 9, 1), False),
        (dt.datetime(2010, 9, 1, 0, 0), dt.date(2010, 9, 1), True),
        (40422, dt.date(2010, 9, 1), True),  # an Excel serial without a date format
        (2010.09, dt.date(2010, 9, 1), False),
    ],
)
def test_dates(cell, expected, exact):
    day = roster._parse_date(cell)
    assert (day.date, day.exact) == (expected, exact)


@pytest.mark.parametrize("cell", ["2010-02-30", "2010", "九月", "2010-13", "1850-01-01", 2010])
def test_not_dates(cell):
    with pytest.raises(ValueError):
        roster._parse_date(cell)


def test_month_precision_does_not_make_a_sixteen_year_old_too_young(tmp_path):
    born = make_id(dt.date(1990, 9, 20), 11)
    checked = roster._check_row(2, {"name": "甲", "id_number": born, "enlisted_on": "2006年9月"},
                                frozenset({"name", "id_number", "enlisted_on"}), {}, TODAY)
    assert isinstance(checked, roster._Record)
    checked = roster._check_row(3, {"name": "乙", "id_number": born, "enlisted_on": "2006年8月"},
                                frozenset({"name", "id_number", "enlisted_on"}), {}, TODAY)
    assert checked.problems == ["入伍时未满16周岁"]


def test_header_synonyms_and_annotations():
    layout = roster._layout([" *姓名", "身份证号码\n", "出生日期（yyyy-mm-dd）", "联系电话", "手机号", "籍贯", None])
    assert layout.positions == {"name": 0, "id_number": 1, "birth_date": 2, "phone": 3}
    assert layout.ignored == ("手机号", "籍贯")
