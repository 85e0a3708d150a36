"""花名册导入: the bureau's veteran roster (.xlsx or .csv with Chinese headers) into the database.

Every row is checked in full before anything is written and every problem of a
row is reported, so that the office can correct a file in one pass. Valid rows
are upserted by the keyed hash of the ID number, one transaction per batch;
importing the same file twice changes nothing. Rejected rows go to a CSV report
that Excel opens, with the ID number masked as everywhere (bot.pii.mask_id: the
first four digits only): neither the report nor a log line ever holds an ID or
phone number in clear, nor digits that with the birth date would rebuild one.

The file is authoritative for the columns it has: a blank cell clears the field
(a blank 状态 means 在世), a column the file lacks leaves the field as it is.
Name, birth date and gender always follow the file's name and ID number.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, Generator, List, Optional, Sequence, Tuple, Union

from sqlalchemy import insert, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from bot import idcard
from bot.db.models import DISCHARGE_CATEGORIES, VETERAN_STATUSES, Entitlement, Station, Veteran, utcnow
from bot.db.session import session_scope
from bot.pii import MOBILE, VETERAN_PHONE, PiiVault, mask_id, normalize_phone

log = logging.getLogger(__name__)

BATCH_SIZE = 1000  # rows per transaction
_LOOKUP_CHUNK = 500  # bound parameters per IN (...): SQLite before 3.32 allows 999
_HEADER_SEARCH_ROWS = 10  # a title line such as "××区退役军人花名册" may sit above the header
MIN_ENLISTMENT_AGE = 16
REPORT_COLUMNS = ("行号", "姓名", "身份证号", "问题")

_Rows = Generator[Tuple[int, Sequence[Any]], None, None]  # (row number as Excel shows it, cells)


class RosterError(ValueError):
    """The file cannot be imported at all: format, encoding or missing columns."""


# --- columns -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    field: str
    header: str  # the name used in messages
    synonyms: Tuple[str, ...]
    max_length: Optional[int] = None  # of the database column, for text fields


COLUMNS = (
    _Column("name", "姓名", ("姓名",), 50),
    _Column("id_number", "身份证号", ("身份证号", "公民身份号码", "身份证号码", "身份证")),
    _Column("phone", "手机号", ("手机号", "手机号码", "联系电话", "手机")),
    _Column("gender", "性别", ("性别",)),
    _Column("birth_date", "出生日期", ("出生日期", "出生年月")),
    _Column("enlisted_on", "入伍时间", ("入伍时间", "入伍日期", "入伍年月")),
    _Column("discharged_on", "退役时间", ("退役时间", "退役日期", "退伍时间", "退伍日期", "退役年月")),
    _Column("branch", "军种", ("军种", "服役军种"), 20),
    _Column("discharge_category", "退役类别", ("退役类别", "安置方式")),
    _Column("entitlements", "优抚类别", ("优抚类别", "优抚对象类别")),
    _Column("district", "区", ("区", "户籍区", "所在区"), 50),
    _Column("street", "街道", ("街道", "镇", "户籍街道", "街道/镇", "镇/街道", "街镇", "所在街道"), 50),
    _Column("community", "社区", ("社区", "村", "户籍社区", "社区/村", "村/社区", "村居", "所在社区"), 50),
    _Column("status", "状态", ("状态",)),
    _Column("deceased_on", "去世时间", ("去世时间", "去世日期")),
)
_BY_FIELD = {c.field: c for c in COLUMNS}
_SYNONYMS = {synonym: c.field for c in COLUMNS for synonym in c.synonyms}
REQUIRED = ("name", "id_number")
_ENTITLEMENT_MAX = 30
_TEXT_FIELDS = ("branch", "district", "street", "community")


def _header_key(cell: Any) -> str:
    """``" *出生日期（yyyy-mm-dd）"`` → ``"出生日期"``: templates mark and annotate headers."""
    text = re.sub(r"\s+", "", _text(cell)).replace("／", "/")
    text = re.sub(r"[（(][^）)]*[)）]", "", text)
    return text.strip("*＊")


@dataclass(frozen=True)
class _Layout:
    positions: Dict[str, int]  # field → column index
    ignored: Tuple[str, ...]  # headers of the columns nobody reads

    @property
    def present(self) -> FrozenSet[str]:
        return frozenset(self.positions)


def _layout(header: Sequence[Any]) -> _Layout:
    positions: Dict[str, int] = {}
    ignored: List[str] = []
    for index, cell in enumerate(header):
        key = _header_key(cell)
        if not key:
            continue
        name = _SYNONYMS.get(key)
        if name is None or name in positions:  # unknown, or a second column for the same field
            ignored.append(_scrub(re.sub(r"\s+", "", _text(cell))))
        else:
            positions[name] = index
    return _Layout(positions, tuple(ignored))


# --- reading -----------------------------------------------------------------------


def _read_csv(path: Path) -> _Rows:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV")
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    # Numbered by record, as Excel numbers the rows of the same file.
    for number, values in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
        yield number, values


def _read_xlsx(path: Path) -> _Rows:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises a zoo of types for a damaged file
        raise RosterError(f"无法打开 Excel 文件：{type(exc).__name__}") from None
    try:
        sheet = workbook.worksheets[0]
        # Some programs write wrong dimensions, and read-only mode trusts them.
        sheet.reset_dimensions()
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, values
    finally:
        workbook.close()


def _read_rows(path: Path) -> _Rows:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix == ".xls":
        raise RosterError("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV")
    raise RosterError(f"不支持的文件类型“{path.suffix}”，请使用 .xlsx 或 .csv")


def _is_blank(values: Sequence[Any]) -> bool:
    return all(_text(v) == "" for v in values)


def _find_header(rows: _Rows) -> _Layout:
    """The first row naming both required columns, among the first non-empty rows."""
    best: Optional[_Layout] = None
    seen = 0
    for _number, values in rows:
        if _is_blank(values):
            continue
        layout = _layout(values)
        if all(f in layout.positions for f in REQUIRED):
            return layout
        if best is None or len(layout.positions) > len(best.positions):
            best = layout
        seen += 1
        if seen >= _HEADER_SEARCH_ROWS:
            break
    if best is None:
        raise RosterError("文件是空的，没有表头和数据")
    missing = [c for c in (_BY_FIELD[f] for f in REQUIRED) if c.field not in best.positions]
    names = "；".join(f"{c.header}（可用列名：{'、'.join(c.synonyms)}）" for c in missing)
    raise RosterError(f"花名册缺少必需的列：{names}")


# --- cells -------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed as a number: 13812345678.0
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return str(value).strip()


def _id_text(value: Any) -> Tuple[str, Optional[str]]:
    """The ID number as text, and why it cannot be trusted when a spreadsheet made it a number.

    Excel keeps 15 significant digits, so an 18-digit ID typed into a number cell has
    lost its last digits (they read as 000); such a cell or its CSV export is refused
    instead of being imported with a wrong number that happens to pass the check digit.
    """
    lost = "身份证号被 Excel 存成了数字，后几位已丢失；请把该列设为文本格式后重新录入"
    if isinstance(value, float):
        return _text(value), lost
    text = _text(value).lstrip("'‘")
    if re.fullmatch(r"\d(\.\d+)?[eE]\+?\d+", text):
        return text, lost
    return text, None


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９／．－", "0123456789/.-")
_DATE_PATTERNS = (
    (re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"), True),
    (re.compile(r"(\d{4})(\d{2})(\d{2})"), True),
    (re.compile(r"(\d{4})[-/.年](\d{1,2})月?"), False),
    (re.compile(r"(\d{4})(\d{2})"), False),
)


@dataclass(frozen=True)
class _Day:
    """A date as precise as the roster gave it: ``2010年9月`` is the first of September, month-precise."""

    date: dt.date
    exact: bool = True

    @property
    def latest(self) -> dt.date:
        """The last day it may stand for."""
        if self.exact:
            return self.date
        following = (self.date.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - dt.timedelta(days=1)


class _AmbiguousDate(ValueError):
    """A number cell such as 2010.1: January, or October that lost its zero."""


def _parse_date(value: Any) -> Optional[_Day]:
    """The date in a cell, None when blank; ValueError when it is not a date."""
    if isinstance(value, dt.datetime):
        return _Day(value.date())
    if isinstance(value, dt.date):
        return _Day(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 10000 <= value < 100000:
        from openpyxl.utils.datetime import from_excel  # a date cell without a date format (1927-2173)

        return _Day(from_excel(value).date())
    if isinstance(value, float) and re.fullmatch(r"\d{4}\.1", repr(value)):
        raise _AmbiguousDate(repr(value))  # 2010.10 typed into a number cell reads 2010.1
    text = _text(value).translate(_FULLWIDTH_DIGITS)
    text = re.sub(r"(?<=\d)(\s+|T)\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", "", text)  # "2010-09-01 00:00:00"
    text = re.sub(r"\s+", "", text)
    if not text:
        return None
    for pattern, exact in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            year, month = int(match.group(1)), int(match.group(2))
            day = int(match.group(3)) if exact else 1
            if not 1900 <= year <= 2100:
                break
            return _Day(dt.date(year, month, day), exact)  # ValueError for 2010-02-30
    raise ValueError(text)


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return dt.date(day.year + years, 3, 1)


def _quote(value: str) -> str:
    """A value to repeat in a message; long digit runs (a phone or ID in the wrong column) never are."""
    if re.search(r"\d{9,}", value):
        return ""
    return f"“{value[:20]}”"


# --- rows --------------------------------------------------------------------------


@dataclass
class _Record:
    """A valid row: the veteran's values for the columns the file has."""

    row: int
    name: str
    id_number: str
    values: Dict[str, Any]  # Veteran attribute → value; "phone" holds the normalized number
    entitlements: Optional[Tuple[str, ...]]  # None when the file has no 优抚类别 column
    clears_deceased: bool = False  # 状态 says alive and the file has no 去世时间 column
    id_hash: str = ""


@dataclass
class _Rejection:
    row: int
    name: str
    id_shown: str  # masked, never clear
    problems: List[str]


def _shown_id(number: str) -> str:
    return mask_id(number) if len(number) == 18 else "***"


def _scrub(text: str) -> str:
    """Text for the report: a long digit run (an ID or phone in the name column) is hidden."""
    return re.sub(r"\d{7,}", "***", text)


def _check_row(
    number: int,
    cells: Dict[str, Any],
    present: FrozenSet[str],
    first_rows: Dict[str, int],
    today: dt.date,
) -> Union[_Record, _Rejection]:
    """Every problem of one row, or the record to import.

    ``first_rows`` maps each ID number seen so far to its first row, valid or not:
    a later row with the same number is a duplicate whichever of the two is wrong.
    """
    problems: List[str] = []
    values: Dict[str, Any] = {}
    name, id_number, card = _check_person(number, cells, present, first_rows, problems, values)
    dates = _check_dates(cells, present, card, today, problems, values)
    status = _check_categories(cells, present, dates, problems, values)
    entitlements = _check_places_and_entitlements(cells, present, problems, values)
    if problems:
        return _Rejection(number, _scrub(name), _shown_id(id_number), problems)
    return _Record(
        row=number,
        name=name,
        id_number=id_number,
        values=values,
        entitlements=entitlements,
        clears_deceased="status" in present and "deceased_on" not in present and status != "已故",
    )


def _check_person(
    number: int,
    cells: Dict[str, Any],
    present: FrozenSet[str],
    first_rows: Dict[str, int],
    problems: List[str],
    values: Dict[str, Any],
) -> Tuple[str, str, Optional[idcard.IdCard]]:
    """姓名, 身份证号, 手机号, 性别: the name, the normalized ID number and the parsed card when valid."""
    name = _text(cells.get("name"))
    # "张  三" is aligned by hand; spaces inside a name in Latin letters are part of it.
    name = re.sub(r"\s+", "" if re.search(r"[\u4e00-\u9fff]", name) else " ", name)
    if not name:
        problems.append("姓名为空")
    elif re.search(r"\d", name):
        problems.append("姓名中不应有数字，请检查各列是否错位")
    elif len(name) > _BY_FIELD["name"].max_length:
        problems.append(f"姓名超过{_BY_FIELD['name'].max_length}个字")
    values["name"] = name

    id_raw, id_lost = _id_text(cells.get("id_number"))
    id_number = idcard.normalize(id_raw)
    card = None
    reason = id_lost or idcard.problem(id_number)
    if reason:
        problems.append(reason)
    else:
        card = idcard.parse(id_number)
        if card is None:
            problems.append("身份证号中的出生年份早于1900年")
    if id_number in first_rows:
        problems.append(f"身份证号与第{first_rows[id_number]}行重复")
    elif id_number:
        first_rows[id_number] = number
    if card:
        values["birth_date"] = card.birth_date
        values["gender"] = card.gender

    if "phone" in present:
        phone = normalize_phone(_text(cells.get("phone")))
        if phone and not MOBILE.match(phone):
            problems.append("手机号不是有效的11位大陆手机号")
        values["phone"] = phone or None

    gender = _text(cells.get("gender")).replace("性", "")  # 男性 / 女性
    if gender:
        if gender not in ("男", "女"):
            problems.append(f"性别{_quote(gender)}应为男或女")
        elif card and gender != card.gender:
            problems.append(f"性别（{gender}）与身份证号不符（身份证号为{card.gender}性）")
    return name, id_number, card


def _check_dates(
    cells: Dict[str, Any],
    present: FrozenSet[str],
    card: Optional[idcard.IdCard],
    today: dt.date,
    problems: List[str],
    values: Dict[str, Any],
) -> Dict[str, Optional[_Day]]:
    """出生日期, 入伍时间, 退役时间, 去世时间: each read, then checked against the ID and each other."""
    dates: Dict[str, Optional[_Day]] = {}
    for column in ("birth_date", "enlisted_on", "discharged_on", "deceased_on"):
        raw = cells.get(column)
        header = _BY_FIELD[column].header
        try:
            dates[column] = _parse_date(raw)
        except _AmbiguousDate:
            problems.append(f"{header}{_quote(_text(raw))}是数字格式，分不清是1月还是10月，"
                            "请写成“2010年10月”或“2010-10-01”")
            dates[column] = None
        except ValueError:
            problems.append(f"{header}{_quote(_text(raw))}无法识别为日期")
            dates[column] = None

    birth, enlisted = dates["birth_date"], dates["enlisted_on"]
    discharged, deceased = dates["discharged_on"], dates["deceased_on"]
    if birth and card:
        if birth.exact:
            same = birth.date == card.birth_date
        else:  # 出生年月
            same = (birth.date.year, birth.date.month) == (card.birth_date.year, card.birth_date.month)
        if not same:
            problems.append("出生日期与身份证号不符")
    if enlisted:
        if enlisted.date > today:
            problems.append("入伍时间晚于今天")
        # A month-precise date may stand for its last day: "2006年9月" for one born on 20 September 1990.
        if card and enlisted.latest < _add_years(card.birth_date, MIN_ENLISTMENT_AGE):
            problems.append(f"入伍时未满{MIN_ENLISTMENT_AGE}周岁")
    if discharged:
        if discharged.date > today:
            problems.append("退役时间晚于今天")
        if enlisted and discharged.date <= enlisted.date:
            problems.append("退役时间应晚于入伍时间")
    if deceased:
        if deceased.date > today:
            problems.append("去世时间晚于今天")
        if card and deceased.latest < card.birth_date:
            problems.append("去世时间早于出生日期")
    for column in ("enlisted_on", "discharged_on", "deceased_on"):
        if column in present:
            day = dates[column]
            values[column] = day.date if day else None
    return dates


def _check_categories(
    cells: Dict[str, Any],
    present: FrozenSet[str],
    dates: Dict[str, Optional[_Day]],
    problems: List[str],
    values: Dict[str, Any],
) -> str:
    """退役类别 and 状态 among the allowed values; returns the status (blank is 在世)."""
    category = _text(cells.get("discharge_category"))
    if category and category not in DISCHARGE_CATEGORIES:
        problems.append(f"退役类别{_quote(category)}不在允许范围（{'、'.join(DISCHARGE_CATEGORIES)}）")
    if "discharge_category" in present:
        values["discharge_category"] = category or None

    status = _text(cells.get("status")) or "在世"
    if status not in VETERAN_STATUSES:
        problems.append(f"状态{_quote(status)}应为{'、'.join(VETERAN_STATUSES)}之一")
    elif dates["deceased_on"] and "status" in present and status != "已故":
        problems.append("填写了去世时间，但状态不是“已故”")
    if "status" in present:
        values["status"] = status
    return status


def _check_places_and_entitlements(
    cells: Dict[str, Any],
    present: FrozenSet[str],
    problems: List[str],
    values: Dict[str, Any],
) -> Optional[Tuple[str, ...]]:
    """军种, 区/街道/社区 and 优抚类别; returns the categories, None when the file has no such column."""
    for column in _TEXT_FIELDS:
        if column in present:
            text = _text(cells.get(column))
            limit = _BY_FIELD[column].max_length or 0
            if len(text) > limit:
                problems.append(f"{_BY_FIELD[column].header}超过{limit}个字")
            values[column] = text or None
    if "entitlements" not in present:
        return None
    parts = re.split(r"[、,，;；\s]+", _text(cells.get("entitlements")))
    entitlements = tuple(dict.fromkeys(p for p in parts if p))
    if any(len(p) > _ENTITLEMENT_MAX for p in entitlements):
        problems.append(f"优抚类别每项不超过{_ENTITLEMENT_MAX}个字")
    return entitlements


# --- stations ----------------------------------------------------------------------


class _Stations:
    """The service station of an address: the community's, else the street's, else none."""

    def __init__(self, stations: Sequence[Tuple[int, str, str, Optional[str], Optional[str]]]):
        self._community: Dict[Tuple[str, str], List[Tuple[str, int]]] = {}
        self._street: Dict[str, List[Tuple[str, int]]] = {}
        for station_id, tier, district, street, community in stations:
            if tier == "community" and street and community:
                self._community.setdefault((street, community), []).append((district, station_id))
            elif tier == "street" and street:
                self._street.setdefault(street, []).append((district, station_id))

    @classmethod
    def load(cls, session: Session) -> "_Stations":
        rows = session.execute(
            select(Station.id, Station.tier, Station.district, Station.street, Station.community)
        ).all()
        return cls([tuple(r) for r in rows])

    @staticmethod
    def _pick(candidates: List[Tuple[str, int]], district: Optional[str]) -> Optional[int]:
        if district:
            candidates = [c for c in candidates if c[0] == district]
        return candidates[0][1] if len(candidates) == 1 else None  # ambiguous: leave it to staff

    def find(self, district: Optional[str], street: Optional[str], community: Optional[str]) -> Optional[int]:
        if not street:
            return None
        if community:
            found = self._pick(self._community.get((street, community), []), district)
            if found is not None:
                return found
        return self._pick(self._street.get(street, []), district)


# --- writing -----------------------------------------------------------------------

_MERGED_FIELDS = (
    "name", "birth_date", "gender", "enlisted_on", "discharged_on", "branch", "discharge_category",
    "district", "street", "community", "status", "deceased_on",
)
_NEW_VETERAN = {f: None for f in _MERGED_FIELDS} | {"status": "在世"}


def _merged_problems(merged: Dict[str, Any]) -> List[str]:
    """Contradictions between the file's values and the stored ones for the columns the file lacks."""
    problems = []
    if merged["enlisted_on"] and merged["discharged_on"] and merged["discharged_on"] <= merged["enlisted_on"]:
        problems.append("退役时间应晚于入伍时间（与库中已有的时间对照）")
    if merged["deceased_on"] and merged["status"] != "已故":
        problems.append("填写了去世时间，但状态不是“已故”")
    return problems


@dataclass
class _Inserts:
    """New veterans of a batch, inserted together with Core: the ORM's one INSERT per object is slow."""

    veterans: List[Dict[str, Any]] = field(default_factory=list)
    entitlements: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  # id_hash → categories

    def add(self, vault: PiiVault, record: _Record, merged: Dict[str, Any]) -> None:
        protected = vault.protect_id(record.id_number)
        phone = (vault.protect_phone(record.values["phone"], VETERAN_PHONE, protected.lookup)
                 if record.values.get("phone") else None)
        now = utcnow()
        self.veterans.append({
            **merged,
            "id_hash": protected.lookup, "id_cipher": protected.cipher, "id_masked": protected.masked,
            "phone_hash": phone.lookup if phone else None,
            "phone_cipher": phone.cipher if phone else None,
            "phone_masked": phone.masked if phone else None,
            "created_at": now, "updated_at": now,
        })
        if record.entitlements:
            self.entitlements[protected.lookup] = record.entitlements

    def execute(self, session: Session) -> None:
        if not self.veterans:
            return
        session.flush()  # the updates of the same batch first
        session.execute(insert(Veteran.__table__), self.veterans)
        if not self.entitlements:
            return
        hashes = list(self.entitlements)
        ids: Dict[str, int] = {}
        for start in range(0, len(hashes), _LOOKUP_CHUNK):
            chunk = hashes[start:start + _LOOKUP_CHUNK]
            ids.update(session.execute(select(Veteran.id_hash, Veteran.id).where(Veteran.id_hash.in_(chunk))).all())
        session.execute(
            insert(Entitlement.__table__),
            [{"veteran_id": ids[h], "category": c, "since": None} for h, cs in self.entitlements.items() for c in cs],
        )


def _upsert(
    session: Session,
    vault: PiiVault,
    record: _Record,
    veteran: Optional[Veteran],
    stations: _Stations,
    inserts: _Inserts,
) -> Union[str, _Rejection]:
    """Update one veteran or queue the insert; "inserted", "updated", "unchanged" or the rejection."""
    current = {f: getattr(veteran, f) for f in _MERGED_FIELDS} if veteran else dict(_NEW_VETERAN)
    merged = dict(current)
    merged.update({k: v for k, v in record.values.items() if k != "phone"})
    if record.clears_deceased:
        merged["deceased_on"] = None
    problems = _merged_problems(merged)
    if problems:
        return _Rejection(record.row, record.name, _shown_id(record.id_number), problems)
    merged["station_id"] = stations.find(merged["district"], merged["street"], merged["community"])

    if veteran is None:
        inserts.add(vault, record, merged)
        return "inserted"

    changed = False
    for name, value in merged.items():
        if getattr(veteran, name) != value:
            setattr(veteran, name, value)
            changed = True
    if "phone" in record.values:
        phone_number = record.values["phone"]
        # The cipher is randomised, so the keyed hash is what tells whether the number changed.
        if (vault.phone_lookup(phone_number) if phone_number else None) != veteran.phone_hash:
            if phone_number:
                phone = vault.protect_phone(phone_number, VETERAN_PHONE, veteran.id_hash)
                veteran.phone_hash, veteran.phone_cipher, veteran.phone_masked = (
                    phone.lookup, phone.cipher, phone.masked
                )
            else:
                veteran.phone_hash = veteran.phone_cipher = veteran.phone_masked = None
            changed = True
    if record.entitlements is not None:
        held = {e.category: e for e in veteran.entitlements}
        if set(held) != set(record.entitlements):
            # Categories kept keep their row (and its 'since'); the others go.
            veteran.entitlements = [held.get(c) or Entitlement(category=c) for c in record.entitlements]
            changed = True
    if not changed:
        return "unchanged"
    veteran.updated_at = utcnow()
    return "updated"


def _existing(session: Session, hashes: List[str], with_entitlements: bool) -> Dict[str, Veteran]:
    query = select(Veteran)
    if with_entitlements:
        query = query.options(selectinload(Veteran.entitlements))
    found: Dict[str, Veteran] = {}
    for start in range(0, len(hashes), _LOOKUP_CHUNK):
        chunk = hashes[start:start + _LOOKUP_CHUNK]
        for veteran in session.execute(query.where(Veteran.id_hash.in_(chunk))).scalars():
            found[veteran.id_hash] = veteran
    return found


_CONSTRAINT_REASONS = (
    ("service_dates", "退役时间应晚于入伍时间"),
    ("birth_before_service", "入伍时间应晚于出生日期"),
    ("deceased_date", "填写了去世时间，但状态不是“已故”"),
    ("id_hash", "身份证号已被另一次导入写入，请重新导入本文件"),
)


def _database_reason(exc: DBAPIError) -> str:
    # The driver's message may quote the row; only the constraint's name is taken from it.
    message = str(exc.orig)
    for needle, reason in _CONSTRAINT_REASONS:
        if needle in message:
            return f"数据库拒绝：{reason}"
    return f"数据库拒绝了这一行（{type(exc.orig).__name__}）"


def _write_batch(
    factory: sessionmaker,
    vault: PiiVault,
    records: List[_Record],
    stations: _Stations,
    with_entitlements: bool,
) -> List[Union[str, _Rejection]]:
    try:
        with session_scope(factory) as session:
            existing = _existing(session, [r.id_hash for r in records], with_entitlements)
            inserts = _Inserts()
            outcomes = [_upsert(session, vault, r, existing.get(r.id_hash), stations, inserts) for r in records]
            inserts.execute(session)
        return outcomes
    except (IntegrityError, DataError) as exc:  # a refused row; a lost connection is not retried
        log.warning("roster batch refused by the database (%s); retrying row by row", type(exc.orig).__name__)
    # The checks above should leave the database nothing to refuse; if it still does
    # (a rule they missed, a concurrent import), only the offending rows are lost.
    outcomes: List[Union[str, _Rejection]] = []
    for record in records:
        try:
            with session_scope(factory) as session:
                existing = _existing(session, [record.id_hash], with_entitlements)
                inserts = _Inserts()
                outcome = _upsert(session, vault, record, existing.get(record.id_hash), stations, inserts)
                inserts.execute(session)
            outcomes.append(outcome)
        except (IntegrityError, DataError) as exc:
            outcomes.append(
                _Rejection(record.row, record.name, _shown_id(record.id_number), [_database_reason(exc)])
            )
    return outcomes


# --- the import --------------------------------------------------------------------


@dataclass
class ImportResult:
    total: int = 0  # data rows in the file, blank rows not counted
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    report_path: Optional[Path] = None  # the error report, when a row was rejected
    ignored_columns: Tuple[str, ...] = field(default_factory=tuple)


def default_report_path(path: Union[str, Path]) -> Path:
    """``花名册.xlsx`` → ``花名册.errors.csv`` next to it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.errors.csv")


def _csv_safe(text: str) -> str:
    # A cell starting with = + - @ is a formula to Excel; a name is not.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _write_report(path: Path, rejections: List[_Rejection]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for r in sorted(rejections, key=lambda r: r.row):
            writer.writerow([r.row, _csv_safe(r.name), r.id_shown, _csv_safe("；".join(r.problems))])


def import_roster(
    session_factory: sessionmaker,
    vault: PiiVault,
    path: Union[str, Path],
    report_path: Union[str, Path, None] = None,
    *,
    today: Optional[dt.date] = None,
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Import the roster at ``path``; rejected rows go to ``report_path`` (default ``<name>.errors.csv``).

    Raises RosterError, before touching the database, when the file cannot be read
    or lacks a required column. With no rejected row, no report is left behind: an
    old report at ``report_path`` described an earlier run and is removed.
    """
    path = Path(path)
    report = Path(report_path) if report_path else default_report_path(path)
    today = today or dt.date.today()
    if not path.is_file():
        raise RosterError(f"找不到文件：{path}")

    rows = _read_rows(path)
    try:
        return _import_rows(session_factory, vault, rows, report, today, batch_size)
    finally:
        rows.close()  # the workbook, even when the header is refused


def _import_rows(
    session_factory: sessionmaker,
    vault: PiiVault,
    rows: _Rows,
    report: Path,
    today: dt.date,
    batch_size: int,
) -> ImportResult:
    layout = _find_header(rows)
    present = layout.present
    result = ImportResult(ignored_columns=layout.ignored)
    if layout.ignored:
        log.info("roster columns ignored: %s", "、".join(layout.ignored))

    with session_scope(session_factory) as session:
        stations = _Stations.load(session)
    rejections: List[_Rejection] = []
    first_rows: Dict[str, int] = {}
    batch: List[_Record] = []

    def flush() -> None:
        for outcome in _write_batch(session_factory, vault, batch, stations, "entitlements" in present):
            if isinstance(outcome, _Rejection):
                rejections.append(outcome)
            else:
                setattr(result, outcome, getattr(result, outcome) + 1)
        batch.clear()

    for number, values in rows:
        if _is_blank(values):
            continue
        result.total += 1
        cells = {f: values[i] if i < len(values) else None for f, i in layout.positions.items()}
        checked = _check_row(number, cells, present, first_rows, today)
        if isinstance(checked, _Rejection):
            rejections.append(checked)
            continue
        checked.id_hash = vault.id_lookup(checked.id_number)
        batch.append(checked)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()

    result.rejected = len(rejections)
    if rejections:
        _write_report(report, rejections)
        result.report_path = report
    elif report.is_file():
        report.unlink()
    log.info(
        "roster imported: total=%d inserted=%d updated=%d unchanged=%d rejected=%d",
        result.total, result.inserted, result.updated, result.unchanged, result.rejected,
    )
    return result


def summary_zh(result: ImportResult) -> str:
    """``共 120 行：新增 100，更新 5，未变化 10，有误 5（见 花名册.errors.csv）``."""
    text = (
        f"共 {result.total} 行：新增 {result.inserted}，更新 {result.updated}，"
        f"未变化 {result.unchanged}，有误 {result.rejected}"
    )
    if result.report_path:
        text += f"（见 {result.report_path}）"
    if result.ignored_columns:
        text += f"。未识别、已忽略的列：{'、'.join(result.ignored_columns)}"
    return text
