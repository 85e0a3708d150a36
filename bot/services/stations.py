"""退役军人服务中心（站）: the service network, where a veteran should go and when it is open.

The network is data that staff edit (data/stations.yml); ``load_stations``
validates it and upserts it into the database. The queries answer the three
ways a user tells us where they are: by naming a place in free text
(``find_by_place``), by sharing a WeChat location (``nearest``), or through
the household on the roster (``for_community``). Opening hours follow the
weekly timetable except on statutory holidays (all closed) and 调休 make-up
working days (open as on a weekday), both taken from ``chinese_calendar`` and,
for the years it does not know yet, from data/holidays.yml (``day_status``).
All times are Beijing time (bot.clock: ``SHANGHAI`` and ``local_time`` are re-exported here).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

import chinese_calendar
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, local_time  # noqa: F401 - SHANGHAI is re-exported (tests, benchmarks)
from bot.db.models import STATION_TIERS, OpeningHours, Station
from bot.services.datafile import DataFileError
from bot.settings import PROJECT_ROOT, holidays_file
from bot.text import normalize

log = logging.getLogger(__name__)

Period = Tuple[dt.time, dt.time]

# --------------------------------------------------------------------------------------
# Loading data/stations.yml
# --------------------------------------------------------------------------------------

REQUIRED_FIELDS = ("code", "name", "tier", "district", "address", "phone", "hours")
OPTIONAL_FIELDS = ("parent", "street", "community", "latitude", "longitude", "aliases")
MAX_LENGTHS = {"code": 32, "name": 100, "district": 50, "street": 50, "community": 50,
               "address": 200, "phone": 30}
PARENT_TIER = {"street": "district", "community": "street"}

_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_DAY = r"(?:周|星期|礼拜)([一二三四五六日天])"
_DAY_RANGE = re.compile(rf"{_DAY}(?:\s*(?:至|到|-|—|~|～)\s*(?:(?:周|星期|礼拜)?([一二三四五六日天])))?")
_PERIOD = re.compile(r"(\d{1,2})[:：](\d{2})\s*(?:-|—|–|~|～|至|到)\s*(\d{1,2})[:：](\d{2})")


class StationDataError(DataFileError):
    """The stations file is wrong; ``problems`` lists every mistake found, one per line."""


@dataclass
class _Entry:
    """One station as read from the file, validated."""

    code: str
    name: str
    tier: str
    parent: Optional[str]
    district: str
    street: Optional[str]
    community: Optional[str]
    address: str
    phone: str
    latitude: Optional[float]
    longitude: Optional[float]
    aliases: List[str]
    hours: List[Tuple[int, dt.time, dt.time]]


def parse_days(spec: str) -> List[int]:
    """``周一至周五`` → [0, 1, 2, 3, 4]; also ``周六``, ``周一、周三``, ``工作日``, ``每天``."""
    spec = spec.strip()
    if spec == "工作日":
        return [0, 1, 2, 3, 4]
    if spec in ("每天", "每日"):
        return list(range(7))
    days: List[int] = []
    for part in re.split(r"[、,，/\s]+", spec):
        match = _DAY_RANGE.fullmatch(part)
        if not match:
            raise ValueError(f"cannot read the days {spec!r} (write e.g. 周一至周五, 周六, 周一、周三)")
        first = _WEEKDAY[match.group(1)]
        last = _WEEKDAY[match.group(2)] if match.group(2) else first
        if last < first:
            raise ValueError(f"days {spec!r} run backwards")
        days.extend(range(first, last + 1))
    return days


def parse_period(text: object) -> Period:
    """``"9:00-11:30"`` → (09:00, 11:30)."""
    if not isinstance(text, str):
        raise ValueError(f"time {text!r} must be written in quotes, like \"9:00-11:30\"")
    match = _PERIOD.fullmatch(text.strip())
    if not match:
        raise ValueError(f"cannot read the time {text!r} (write e.g. \"9:00-11:30\")")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"time {text!r} is not a time of day")
    opens, closes = dt.time(h1, m1), dt.time(h2, m2)
    if opens >= closes:
        raise ValueError(f"time {text!r} closes before it opens")
    return opens, closes


def _parse_profile(raw: object) -> List[Tuple[int, dt.time, dt.time]]:
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError("must map days to a list of times, e.g. 周一至周五: [\"9:00-11:30\"]")
    rows: List[Tuple[int, dt.time, dt.time]] = []
    for days, periods in raw.items():
        if isinstance(periods, str):
            periods = [periods]
        if not isinstance(periods, list) or not periods:
            raise ValueError(f"{days}: give a list of times, e.g. [\"9:00-11:30\", \"13:30-17:00\"]")
        parsed = [parse_period(p) for p in periods]
        for weekday in parse_days(str(days)):
            rows.extend((weekday, opens, closes) for opens, closes in parsed)
    rows.sort()
    for (day_a, _, closes_a), (day_b, opens_b, _) in zip(rows, rows[1:]):
        if day_a == day_b and opens_b < closes_a:
            raise ValueError(f"periods overlap on weekday {day_a + 1} (周{'一二三四五六日'[day_a]})")
    return rows


def _text(value: object) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError
    return value.strip() or None


def _read_entries(data: object) -> List[_Entry]:
    problems: List[str] = []
    if not isinstance(data, Mapping):
        raise StationDataError("stations file", ["the file must contain hours_profiles: and stations:"])

    profiles: Dict[str, List[Tuple[int, dt.time, dt.time]]] = {}
    raw_profiles = data.get("hours_profiles") or {}
    if not isinstance(raw_profiles, Mapping):
        problems.append("hours_profiles: must map a profile name to its opening hours")
        raw_profiles = {}
    for name, raw in raw_profiles.items():
        try:
            profiles[str(name)] = _parse_profile(raw)
        except ValueError as error:
            problems.append(f"hours profile {name!r}: {error}")

    raw_stations = data.get("stations")
    if not isinstance(raw_stations, list) or not raw_stations:
        problems.append("stations: must be a list of stations")
        raw_stations = []

    entries: List[_Entry] = []
    codes: Dict[str, int] = {}
    names: Dict[str, str] = {}
    for position, raw in enumerate(raw_stations, start=1):
        if not isinstance(raw, Mapping):
            problems.append(f"station #{position}: must be a mapping of fields")
            continue
        code = raw.get("code")
        label = f"station {code} ({raw.get('name')})" if code else f"station #{position} ({raw.get('name')})"
        before = len(problems)

        def bad(field: str, message: str) -> None:
            problems.append(f"{label}: {field}: {message}")

        for field in raw:
            if field not in REQUIRED_FIELDS + OPTIONAL_FIELDS:
                bad(str(field), "unknown field (misspelt?)")
        values: Dict[str, Optional[str]] = {}
        for field in REQUIRED_FIELDS + ("parent", "street", "community"):
            try:
                values[field] = _text(raw.get(field))
            except TypeError:
                bad(field, "must be text")
                values[field] = None
                continue
            if values[field] is None and field in REQUIRED_FIELDS:
                bad(field, "missing")
            elif values[field] and len(values[field]) > MAX_LENGTHS.get(field, 10_000):
                bad(field, f"longer than {MAX_LENGTHS[field]} characters")

        tier = values["tier"]
        if tier and tier not in STATION_TIERS:
            bad("tier", f"{tier!r} is not one of {', '.join(STATION_TIERS)}")
        if tier == "district" and values["parent"]:
            bad("parent", "the district centre has no parent")
        if tier in PARENT_TIER and not values["parent"]:
            bad("parent", "missing")
        if tier in ("street", "community") and not values["street"]:
            bad("street", "missing")
        if tier == "community" and not values["community"]:
            bad("community", "missing")
        if tier in ("district", "street") and values["community"]:
            bad("community", "only community stations name a community")
        if tier == "district" and values["street"]:
            bad("street", "the district centre belongs to no street")

        coordinates: List[Optional[float]] = []
        for field, limit in (("latitude", 90), ("longitude", 180)):
            value = raw.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                bad(field, f"{value!r} is not a number")
                value = None
            elif value is not None and not -limit <= value <= limit:
                bad(field, f"{value} is out of range")
                value = None
            coordinates.append(None if value is None else float(value))
        if (raw.get("latitude") is None) != (raw.get("longitude") is None):
            bad("latitude/longitude", "give both or neither")

        aliases = raw.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            bad("aliases", "must be a list of names, e.g. [菊园, 菊园新区]")
            aliases = []
        aliases = [normalize(a.strip()) for a in aliases]

        hours: List[Tuple[int, dt.time, dt.time]] = []
        if values["hours"] is not None:
            if values["hours"] in profiles:
                hours = profiles[values["hours"]]
            elif values["hours"] not in raw_profiles:
                bad("hours", f"unknown hours profile {values['hours']!r} (defined: {', '.join(profiles)})")

        if values["code"] and values["code"] in codes:
            bad("code", f"duplicate code (also station #{codes[values['code']]})")
        if values["name"] and values["name"] in names:
            bad("name", f"duplicate name (also station {names[values['name']]})")
        if values["code"]:
            codes.setdefault(values["code"], position)
        if values["name"]:
            names.setdefault(values["name"], values["code"] or f"#{position}")
        if len(problems) > before:
            continue
        entries.append(
            _Entry(
                code=values["code"], name=values["name"], tier=tier, parent=values["parent"],
                district=values["district"], street=values["street"], community=values["community"],
                address=values["address"], phone=values["phone"], latitude=coordinates[0],
                longitude=coordinates[1], aliases=aliases, hours=hours,
            )
        )

    by_code = {e.code: e for e in entries}
    owner: Dict[str, str] = {}
    for entry in entries:
        label = f"station {entry.code} ({entry.name})"
        if entry.parent:
            parent = by_code.get(entry.parent)
            if parent is None:
                if entry.parent not in codes:
                    problems.append(f"{label}: parent: unknown station code {entry.parent!r}")
            elif parent.tier != PARENT_TIER[entry.tier]:
                problems.append(
                    f"{label}: parent: {entry.parent} is a {parent.tier} station; "
                    f"a {entry.tier} station's parent must be a {PARENT_TIER[entry.tier]} station"
                )
            elif entry.tier == "community" and parent.street != entry.street:
                problems.append(
                    f"{label}: street: {entry.street!r} differs from its parent's street {parent.street!r}"
                )
        for key in _explicit_keys(entry):
            other = owner.setdefault(key, entry.code)
            if other != entry.code and (key in entry.aliases or key in by_code[other].aliases):
                problems.append(f"{label}: aliases: {key!r} already names station {other}")
    if problems:
        raise StationDataError("stations file", problems)
    return entries


def load_stations(session: Session, path: Union[str, Path]) -> int:
    """Validate the stations file and upsert it by code; returns the number of stations.

    Reloading an unchanged file changes nothing; an edited file updates the
    stations it names and replaces their opening hours. Stations that are no
    longer in the file are left alone (veterans and records may point at them).
    Raises StationDataError, naming the station and the field, for a bad file.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise StationDataError(str(path), [f"not valid YAML: {error}"]) from error
    try:
        entries = _read_entries(data)
    except StationDataError as error:
        raise StationDataError(str(path), error.problems) from None

    existing = {s.code: s for s in session.execute(select(Station)).scalars()}
    rank = {tier: i for i, tier in enumerate(STATION_TIERS)}
    for entry in sorted(entries, key=lambda e: rank[e.tier]):  # parents before children
        station = existing.get(entry.code)
        if station is None:
            station = Station(code=entry.code)
            session.add(station)
            existing[entry.code] = station
        wanted = {
            "name": entry.name, "tier": entry.tier, "district": entry.district, "street": entry.street,
            "community": entry.community, "address": entry.address, "phone": entry.phone,
            "latitude": entry.latitude, "longitude": entry.longitude, "aliases": entry.aliases,
        }
        for field, value in wanted.items():
            if getattr(station, field) != value:
                setattr(station, field, value)
        parent = existing[entry.parent] if entry.parent else None
        if station.parent is not parent:
            station.parent = parent
        current = sorted((h.weekday, h.opens, h.closes) for h in station.hours)
        if current != entry.hours:
            if station.hours:
                station.hours.clear()
                session.flush()  # delete first: the new rows may repeat (weekday, opens)
            station.hours.extend(OpeningHours(weekday=d, opens=o, closes=c) for d, o, c in entry.hours)
    session.flush()
    log.info("stations loaded", extra={"stations": len(entries), "source": str(path)})
    return len(entries)


# --------------------------------------------------------------------------------------
# Finding a station
# --------------------------------------------------------------------------------------

NAME_SUFFIXES = ("退役军人服务中心", "退役军人服务站", "服务中心", "服务站")
PLACE_SUFFIXES = ("街道", "新区", "社区", "镇", "村")
_TIER_RANK = {"community": 0, "street": 1, "district": 2}  # most specific first


def strip_suffix(name: str, suffixes: Iterable[str] = PLACE_SUFFIXES) -> str:
    """``安亭镇`` → ``安亭``, ``菊园新区`` → ``菊园``: one suffix, and only if two characters stay."""
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def _place_of(station) -> Optional[str]:
    """The place a station serves, by its tier: the district, the street or the community."""
    return {"district": station.district, "street": station.street, "community": station.community}.get(
        station.tier
    )


def _explicit_keys(station) -> Set[str]:
    keys = {station.name, *station.aliases}
    if _place_of(station):
        keys.add(_place_of(station))
    return {normalize(k) for k in keys if k and len(k) >= 2}


def _derived_keys(station) -> Set[str]:
    keys = {strip_suffix(station.name, NAME_SUFFIXES)}
    place = _place_of(station)
    if place:
        keys.add(strip_suffix(place))
    return {normalize(k) for k in keys if len(k) >= 2}


def _ancestors(station: Station, by_id: Mapping[int, Station]) -> Set[int]:
    found: Set[int] = set()
    parent_id = station.parent_id
    while parent_id is not None and parent_id not in found:
        found.add(parent_id)
        parent_id = by_id[parent_id].parent_id if parent_id in by_id else None
    return found


def _place_index(stations: Sequence[Station]) -> Dict[str, Set[int]]:
    """Words users type → the stations they name.

    Names, aliases and the place a station serves win over the same word derived
    by dropping a suffix from another station's names. When a derived word
    still names a station and its ancestor, the ancestor keeps it: the user
    said the shorter, broader word.
    """
    by_id = {s.id: s for s in stations}
    explicit: Dict[str, Set[int]] = {}
    derived: Dict[str, Set[int]] = {}
    for station in stations:
        for key in _explicit_keys(station):
            explicit.setdefault(key, set()).add(station.id)
        for key in _derived_keys(station):
            derived.setdefault(key, set()).add(station.id)
    index = dict(explicit)
    for key, ids in derived.items():
        if key in index:
            continue
        ancestors = set().union(*(_ancestors(by_id[i], by_id) for i in ids))
        index[key] = (ids & ancestors) or ids
    return index


def _all_stations(session: Session) -> List[Station]:
    return list(session.execute(select(Station).order_by(Station.code)).scalars())


def find_by_place(session: Session, text: str) -> List[Station]:
    """The stations a user's words name, most specific first; empty when none.

    ``text`` is free text without spaces between words ("菊园新区附近的服务站在哪").
    Every name, alias and place name (with or without 街道/镇/新区/社区/村 and
    服务站) is looked for in it; a word inside a longer matched word does not
    count ("嘉定" inside "嘉定新城"), and a station named together with its
    parent or the district ("安亭镇黄渡社区") stands for both.
    """
    cleaned = re.sub(r"\s+", "", normalize(text or ""))
    if not cleaned:
        return []
    stations = _all_stations(session)
    by_id = {s.id: s for s in stations}
    spans: List[Tuple[int, int, Set[int]]] = []
    for key, ids in _place_index(stations).items():
        start = cleaned.find(key)
        while start != -1:
            spans.append((start, start + len(key), ids))
            start = cleaned.find(key, start + 1)
    kept = [
        (start, end, ids)
        for start, end, ids in spans
        if not any(s <= start and end <= e and e - s > end - start for s, e, _ in spans)
    ]
    first_seen: Dict[int, int] = {}
    for start, _, ids in sorted(kept, key=lambda span: span[0]):
        for station_id in ids:
            first_seen.setdefault(station_id, start)
    covered = set().union(*(_ancestors(by_id[i], by_id) for i in first_seen)) if first_seen else set()
    found = [by_id[i] for i in first_seen if i not in covered]
    return sorted(found, key=lambda s: (_TIER_RANK[s.tier], first_seen[s.id], s.code))


EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def nearest(session: Session, latitude: float, longitude: float,
            limit: Optional[int] = 3) -> List[Tuple[Station, float]]:
    """The stations closest to a point, with their distance in km, closest first
    (``limit=None``: every station)."""
    distances = [
        (station, haversine_km(latitude, longitude, station.latitude, station.longitude))
        for station in _all_stations(session)
        if station.latitude is not None and station.longitude is not None
    ]
    distances.sort(key=lambda pair: (pair[1], pair[0].code))
    return distances[:limit]


def _same_place(recorded: Optional[str], given: Optional[str], aliases: Sequence[str] = ()) -> bool:
    if not recorded or not given:
        return False
    given = normalize(given.strip())
    return given == recorded or strip_suffix(given) == strip_suffix(recorded) or given in aliases


def for_community(session: Session, street: Optional[str], community: Optional[str]) -> Optional[Station]:
    """The station for a household: its community station, else its street station,
    else the district centre (None only when no stations are loaded)."""
    stations = _all_stations(session)
    street_station = next(
        (s for s in stations if s.tier == "street" and _same_place(s.street, street, s.aliases)), None
    )
    if community:
        candidates = [
            s for s in stations
            if s.tier == "community" and _same_place(s.community, community, s.aliases)
            and (street_station is None or s.parent_id == street_station.id)
        ]
        # Without a street, a community name shared by two towns is ambiguous.
        if len(candidates) == 1 or (candidates and street_station is not None):
            return candidates[0]
    if street_station is not None:
        return street_station
    return next((s for s in stations if s.tier == "district"), None)


# --------------------------------------------------------------------------------------
# Opening hours
# --------------------------------------------------------------------------------------

WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}


@dataclass(frozen=True)
class DayStatus:
    """What kind of day a date is for the stations."""

    # "normal", "holiday" (法定节假日), "makeup" (调休上班), or "unknown": a year whose
    # holiday schedule neither chinesecalendar nor data/holidays.yml has (the weekly
    # hours apply, but the day cannot be booked: bot.services.appointments).
    kind: str
    holiday: Optional[str] = None  # the holiday's Chinese name, for holiday and makeup days


# --------------------------------------------------------------------------------------
# data/holidays.yml: the years chinesecalendar does not know yet, and open_days
# --------------------------------------------------------------------------------------

HOLIDAY_FIELDS = ("name", "date", "from", "to", "makeup")
MAX_HOLIDAY_DAYS = 31  # 放假 lasts days, not weeks: a longer range is a mistyped date
MAX_HOLIDAY_NAME = 20
CALENDAR_WARNING_DAYS = 60  # warn when the holiday data ends within this many days


class HolidayDataError(DataFileError):
    """The holidays file is wrong; ``problems`` lists every mistake found, one per line."""


@dataclass(frozen=True)
class HolidayCalendar:
    """data/holidays.yml, validated: for each year entered (the year of the State
    Council's notice), the dates it names (放假 → holiday, 上班 → makeup); and the
    open_days staff open although their year's schedule is unknown."""

    years: Mapping[int, Mapping[dt.date, DayStatus]] = field(default_factory=dict)
    open_days: FrozenSet[dt.date] = frozenset()
    source: str = "holidays file"

    @property
    def last_year(self) -> Optional[int]:
        return max(self.years, default=None)


@lru_cache(maxsize=None)
def chinese_calendar_years() -> Tuple[int, int]:
    """The first and last year chinesecalendar has the State Council's schedule for."""
    known = chinese_calendar.holidays
    return min(known).year, max(known).year


def _calendar_knows(year: int) -> bool:
    first, last = chinese_calendar_years()
    return first <= year <= last


def day_span(raw: Mapping[str, Any], parse_date: Callable[[object], dt.date], max_days: int,
             too_long: str, neither: str) -> List[dt.date]:
    """The days of a data-file entry that gives ``date:`` (one day) or ``from:`` and
    ``to:`` (both included, fewer than ``max_days`` apart): holidays, closures.
    ValueError says what is wrong (``too_long``, ``neither``: the file's own words)."""
    if raw.get("date") is not None:
        if raw.get("from") is not None or raw.get("to") is not None:
            raise ValueError("give either date: or from: and to:, not both")
        return [parse_date(raw["date"])]
    if raw.get("from") is not None and raw.get("to") is not None:
        first, last = parse_date(raw["from"]), parse_date(raw["to"])
        if last < first:
            raise ValueError(f"to: {last} is before from: {first}")
        if (last - first).days >= max_days:
            raise ValueError(too_long)
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    raise ValueError(neither)


def _holiday_date(value: object) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date like 2027-01-01")


def _in_notice_year(day: dt.date, year: int) -> bool:
    """A year's notice names days of that year, and maybe the last days of December
    before it (元旦 from 30 December)."""
    return day.year == year or (day.year == year - 1 and day.month == 12)


def read_holidays(data: object, source: str = "holidays file") -> HolidayCalendar:
    """Validate the parsed holidays file; raises HolidayDataError listing every problem."""
    problems: List[str] = []
    if data is None:
        return HolidayCalendar(source=source)
    if not isinstance(data, Mapping):
        raise HolidayDataError(source, ["the file must contain years: (by year, the holidays) and open_days:"])
    for key in data:
        if key not in ("years", "open_days"):
            problems.append(f"{key}: unknown section (misspelt? the sections are years: and open_days:)")

    raw_years = data.get("years") or {}
    if not isinstance(raw_years, Mapping):
        problems.append("years: must map a year (2027:) to the list of its holidays")
        raw_years = {}
    years: Dict[int, Dict[dt.date, DayStatus]] = {}
    for year, holidays in raw_years.items():
        if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2100:
            problems.append(f"years: {year!r} is not a year like 2027")
            continue
        if not isinstance(holidays, list) or not holidays:
            problems.append(f"{year}: list the holidays of the State Council's notice for {year} "
                            f"(name, from/to, makeup)")
            continue
        named: Dict[dt.date, DayStatus] = {}
        where: Dict[dt.date, str] = {}
        for position, raw in enumerate(holidays, start=1):
            label = f"{year} holiday #{position}"
            if not isinstance(raw, Mapping):
                problems.append(f"{label}: must be a mapping of fields (name, from, to, makeup)")
                continue
            label = f"{label} ({raw.get('name')})"
            before = len(problems)

            def bad(field_name: str, message: str) -> None:
                problems.append(f"{label}: {field_name}: {message}")

            for key in raw:
                if key not in HOLIDAY_FIELDS:
                    bad(str(key), "unknown field (misspelt?)")
            name = raw.get("name")
            if not isinstance(name, str) or not name.strip():
                bad("name", "missing (it is shown to users, e.g. 春节)")
                name = None
            elif len(name.strip()) > MAX_HOLIDAY_NAME:
                bad("name", f"longer than {MAX_HOLIDAY_NAME} characters")
            else:
                name = name.strip()
            days: List[dt.date] = []
            try:
                days = day_span(raw, _holiday_date, MAX_HOLIDAY_DAYS,
                                too_long=f"longer than {MAX_HOLIDAY_DAYS} days (a misspelt month?)",
                                neither="give date: (one day) or from: and to: (the days off, both included)")
            except ValueError as error:
                bad("date", str(error))
            outside = [d for d in days if not _in_notice_year(d, year)]
            if outside:
                bad("date", f"{outside[0]} is not in {year} (write each year's notice under its own year)")
            makeup: List[dt.date] = []
            raw_makeup = raw.get("makeup")
            if raw_makeup is not None:
                if not isinstance(raw_makeup, list):
                    raw_makeup = [raw_makeup]
                for value in raw_makeup:
                    try:
                        day = _holiday_date(value)
                    except ValueError as error:
                        bad("makeup", str(error))
                        continue
                    if not _in_notice_year(day, year):
                        bad("makeup", f"{day} is not in {year}")
                    elif day.weekday() < 5:
                        bad("makeup", f"{day} is a {WEEKDAY_NAMES[day.weekday()]}; 调休上班 days are "
                                      f"Saturdays or Sundays (a misspelt date?)")
                    elif day in days:
                        bad("makeup", f"{day} is also one of the days off")
                    else:
                        makeup.append(day)
            if len(problems) > before:
                continue
            entry = [(d, "holiday") for d in days] + [(d, "makeup") for d in makeup]
            clashes = [(d, kind) for d, kind in entry if d in named]
            if clashes:
                day, kind = clashes[0]
                more = f" (and {len(clashes) - 1} more day(s))" if len(clashes) > 1 else ""
                bad("date" if kind == "holiday" else "makeup", f"{day} is already named by {where[day]}{more}")
                continue
            for day, kind in entry:
                named[day] = DayStatus(kind, name)
                where[day] = f"{year} {name}"
        years[year] = named

    open_days: Set[dt.date] = set()
    raw_open = data.get("open_days") or []
    if not isinstance(raw_open, list):
        problems.append("open_days: must be a list of dates, e.g. [2027-01-04, 2027-01-05]")
        raw_open = []
    for value in raw_open:
        try:
            day = _holiday_date(value)
        except ValueError as error:
            problems.append(f"open_days: {error}")
            continue
        if day in open_days:
            problems.append(f"open_days: {day} is listed twice")
        elif day.year in raw_years:
            problems.append(f"open_days: {day}: the schedule of {day.year} is entered under years:, "
                            f"which decides this day; remove it from open_days")
        open_days.add(day)
    if problems:
        raise HolidayDataError(source, problems)
    return HolidayCalendar(years=years, open_days=frozenset(open_days), source=source)


def load_holidays(path: Union[str, Path]) -> HolidayCalendar:
    """Read and validate the holidays file; raises HolidayDataError (listing every
    problem) for a bad one. A missing file is an empty calendar."""
    path = Path(path)
    source = _shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return HolidayCalendar(source=source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise HolidayDataError(source, [f"not valid YAML: {error}"]) from error
    except ValueError as error:  # YAML reads 2027-04-31 as a date, which does not exist
        raise HolidayDataError(source, [f"a date that does not exist: {error}"]) from error
    try:
        return read_holidays(data, source)
    except HolidayDataError as error:
        raise HolidayDataError(source, error.problems) from None


def _shown(path: Path) -> str:
    """data/holidays.yml rather than the whole path, for a file in the project."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


class _HolidaySource:
    """The holidays file every process reads, re-read when it changes on disk.

    A file that turns bad while running keeps the last good calendar (the error
    is logged, once per change); without one, every unknown year stays unknown,
    which refuses bookings rather than allowing them on a holiday."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fixed: Optional[HolidayCalendar] = None
        self.path: Optional[Path] = None  # None: VETBOT_HOLIDAYS_FILE, else data/holidays.yml
        self.stamp: Optional[Tuple[str, int, int]] = None
        self.calendar = HolidayCalendar()

    def current(self) -> HolidayCalendar:
        if self.fixed is not None:
            return self.fixed
        path = self.path or holidays_file()
        try:
            info = os.stat(path)
            stamp = (str(path), info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = (str(path), 0, -1)
        with self.lock:
            if stamp == self.stamp:
                return self.calendar
            self.stamp = stamp
            try:
                self.calendar = load_holidays(path)
                if stamp[2] < 0:
                    log.warning("no holidays file; years chinesecalendar does not know cannot be booked",
                                extra={"source": str(path)})
            except HolidayDataError as error:
                log.error("the holidays file is wrong; keeping the last good one: %s", error,
                          extra={"source": str(path), "problems": error.problems})
            return self.calendar


_holidays = _HolidaySource()


def use_holidays(source: Union[None, str, Path, HolidayCalendar] = None) -> None:
    """Where ``day_status`` takes the holidays file from: a calendar (tests), a path,
    or None for VETBOT_HOLIDAYS_FILE / data/holidays.yml."""
    with _holidays.lock:
        _holidays.fixed = source if isinstance(source, HolidayCalendar) else None
        _holidays.path = None if source is None or isinstance(source, HolidayCalendar) else Path(source)
        _holidays.stamp = None
        _holidays.calendar = HolidayCalendar()


def holiday_calendar() -> HolidayCalendar:
    """The holidays file in use, as ``day_status`` reads it."""
    return _holidays.current()


_warned_years: Set[int] = set()


def _from_chinese_calendar(day: dt.date) -> Optional[DayStatus]:
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None  # chinesecalendar knows the State Council's schedule only up to its release year
    if name is None:
        return DayStatus("normal")
    chinese = HOLIDAY_NAMES.get(name, name)
    if on_holiday:
        return DayStatus("holiday", chinese)
    if day.weekday() >= 5:
        return DayStatus("makeup", chinese)
    return DayStatus("normal")


def day_status(day: dt.date, calendar: Optional[HolidayCalendar] = None) -> DayStatus:
    """Holiday, 调休 make-up day, ordinary day, or "unknown".

    chinesecalendar decides the years it knows; for a later year, the year entered
    in data/holidays.yml (``calendar``, default: the file in use) decides; failing
    both, an open_days date is an ordinary day and any other is "unknown". A late
    December day named by the next year's notice in the file (元旦 from 30 December)
    follows the file even in a year chinesecalendar knows, which could not know it.
    """
    if isinstance(day, dt.datetime):
        day = day.date()
    next_year = day.year + 1
    if day.month == 12 and not _calendar_knows(next_year):
        calendar = calendar or holiday_calendar()
        named = calendar.years.get(next_year, {}).get(day)
        if named is not None:
            return named
    known = _from_chinese_calendar(day)
    if known is not None:
        return known
    calendar = calendar or holiday_calendar()
    if day.year in calendar.years:
        return calendar.years[day.year].get(day, DayStatus("normal"))
    if day in calendar.open_days:
        return DayStatus("normal")
    if day.year not in _warned_years:
        _warned_years.add(day.year)
        log.warning("no holiday schedule for this year: the weekly hours apply, booking is closed",
                    extra={"year": day.year, "source": calendar.source})
    return DayStatus("unknown")


def schedule_known(day: dt.date) -> bool:
    """Whether the holiday schedule of a day is known (or staff opened it: open_days),
    so that it can be booked."""
    return day_status(day).kind != "unknown"


@dataclass(frozen=True)
class CalendarCoverage:
    """How far the holiday data reaches, and the warning when it ends soon."""

    last_day: dt.date  # the last day whose holiday status is known
    days_left: int  # from today to last_day (negative: already past)
    warning_zh: Optional[str]
    warning_en: Optional[str]

    @property
    def ok(self) -> bool:
        return self.warning_zh is None


def calendar_coverage(today: dt.date, calendar: Optional[HolidayCalendar] = None,
                      within_days: int = CALENDAR_WARNING_DAYS) -> CalendarCoverage:
    """The last day the holiday data covers (chinesecalendar's last year, then the
    years entered in the holidays file that follow it without a gap), with a warning,
    in Chinese and in English, when it ends within ``within_days`` days of ``today``."""
    calendar = calendar or holiday_calendar()
    last_year = chinese_calendar_years()[1]
    while last_year + 1 in calendar.years:
        last_year += 1
    last_day = dt.date(last_year, 12, 31)
    days_left = (last_day - today).days
    if days_left > within_days:
        return CalendarCoverage(last_day, days_left, None, None)
    missing = last_year + 1
    if days_left >= 0:
        when_zh = f"节假日数据只到{last_year}年12月31日（还有{days_left}天）"
        when_en = f"the holiday data ends on {last_day.isoformat()} (in {days_left} days)"
    else:
        when_zh = f"节假日数据只到{last_year}年12月31日（已过去{-days_left}天）"
        when_en = f"the holiday data ended on {last_day.isoformat()} ({-days_left} days ago)"
    warning_zh = (f"提醒：{when_zh}。国务院办公厅发布{missing}年部分节假日安排的通知后，请照通知把放假和调休日期"
                  f"填入 {calendar.source}（或升级 chinesecalendar）；在此之前，{missing}年的日期不开放预约"
                  f"（open_days 中列出的日期除外）。")
    warning_en = (f"Warning: {when_en}. Once the State Council publishes its {missing} holiday notice, enter "
                  f"the days off and the make-up working days in {calendar.source} (or upgrade chinesecalendar); "
                  f"until then {missing} dates cannot be booked (except those in open_days).")
    return CalendarCoverage(last_day, days_left, warning_zh, warning_en)


def _weekly(station: Station, weekday: int) -> List[Period]:
    return sorted((h.opens, h.closes) for h in station.hours if h.weekday == weekday)


def closure_on(station: Station, day: dt.date) -> Optional[str]:
    """The reason a station is closed on a date by a one-off closure (data/closures.yml), or None."""
    for closure in getattr(station, "closures", None) or ():
        if closure.day == day:
            return closure.reason
    return None


def hours_on(station: Station, day: dt.date) -> List[Period]:
    """The (opens, closes) periods of a station on a date; empty when it is closed.

    Closed on statutory holidays and on its one-off closure days; on a 调休
    make-up working day the station keeps its Monday-to-Friday hours (those of
    the first weekday it opens). On a day whose holiday schedule is unknown (a
    year neither chinesecalendar nor data/holidays.yml has) the weekly hours
    apply: "open now" and waiting times stay useful; booking such a day is
    refused by ``bot.services.appointments`` (``schedule_known``).
    """
    if closure_on(station, day) is not None:
        return []
    status = day_status(day)
    if status.kind == "holiday":
        return []
    if status.kind == "makeup":
        for weekday in range(5):
            periods = _weekly(station, weekday)
            if periods:
                return periods
        return []
    return _weekly(station, day.weekday())


def is_open(station: Station, now: dt.datetime) -> bool:
    """Open at this moment: opening time included, closing time excluded."""
    local = local_time(now)
    moment = local.time().replace(tzinfo=None)
    return any(opens <= moment < closes for opens, closes in hours_on(station, local.date()))


def next_open_day(station: Station, after: dt.date, horizon_days: int = 45) -> Optional[dt.date]:
    """The first day after ``after`` on which the station opens."""
    for offset in range(1, horizon_days + 1):
        day = after + dt.timedelta(days=offset)
        if hours_on(station, day):
            return day
    return None


def format_time(moment: dt.time) -> str:
    return f"{moment.hour}:{moment.minute:02d}"


def format_periods(periods: Sequence[Period]) -> str:
    """``9:00—11:30，13:30—17:00``."""
    return "，".join(f"{format_time(o)}—{format_time(c)}" for o, c in periods)


def format_day(day: dt.date) -> str:
    """``10月8日（周四）``; ``10月10日（周六，调休工作日）`` on a make-up working day."""
    note = "，调休工作日" if day_status(day).kind == "makeup" else ""
    return f"{day.month}月{day.day}日（{WEEKDAY_NAMES[day.weekday()]}{note}）"


def describe(station: Station, now: dt.datetime) -> str:
    """The answer block for one station: name, address, phone and whether it is open."""
    local = local_time(now)
    today = local.date()
    moment = local.time().replace(tzinfo=None)
    periods = hours_on(station, today)
    status = day_status(today)
    lines = [f"【{station.name}】", f"地址：{station.address}", f"电话：{station.phone}"]
    if periods:
        note = "（调休工作日）" if status.kind == "makeup" else ""
        lines.append(f"今日{note}办公时间：{format_periods(periods)}")
    else:
        reason = closure_on(station, today) or (
            f"{status.holiday}假期" if status.kind == "holiday" else WEEKDAY_NAMES[today.weekday()]
        )
        lines.append(f"今日（{reason}）不办公。")
    if any(opens <= moment < closes for opens, closes in periods):
        lines.append("现在正在办公，欢迎前来办理。")
        return "\n".join(lines)
    later = [opens for opens, _ in periods if opens > moment]
    if later:
        lines.append(f"现在不在办公时间，今天{format_time(later[0])}起办公。")
        return "\n".join(lines)
    lines.append("现在不在办公时间。")
    upcoming = next_open_day(station, today)
    if upcoming is not None:
        lines.append(f"下一个办公日：{format_day(upcoming)}{format_periods(hours_on(station, upcoming))}。")
    return "\n".join(lines)
