"""预约: booking 退役报到 and the other services at the stations.

The services, where they are offered and with how many seats per slot are data
that staff edit (data/services.yml), as are one-off station closures
(data/closures.yml); ``load_services`` validates both and upserts them.

The schedule is computed, not stored: a station's slots on a day follow from its
opening hours that day (``stations.hours_on``: statutory holidays, 调休 make-up
days and closures) and the service's slot length; a day whose holiday schedule is
not known yet (a year neither chinesecalendar nor data/holidays.yml has, and not
in its open_days) has none, since it might be 春节 (``booking_hours``). A ``Slot``
row is written only when a slot is first booked, and from then on it counts the
seats taken.

No overbooking, whatever the races: ``book`` raises ``slots.booked`` by one with a
single guarded UPDATE (``WHERE booked < capacity``) that the database applies
atomically, under a CHECK that it never exceeds the capacity; a partial unique
index stops one user holding a slot twice. Writes by the same user are
serialised (a PostgreSQL advisory lock; SQLite has a single writer anyway), so
the checks for a duplicate and for the 3-booking limit see every earlier booking.

Times are Beijing time for people (``SlotView.start``, ``AppointmentView.start``)
and UTC in the database. Every function takes ``now`` so that tests control time.
The caller owns the transaction (one session per action call, ``session_scope``).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

import yaml
from sqlalchemy import and_, delete, false, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, local_time
from bot.db.models import (
    STATION_TIERS,
    Appointment,
    Outbox,
    Service,
    Slot,
    StaffAccount,
    Station,
    StationClosure,
    StationService,
    Veteran,
)
from bot.db.session import as_utc, dialect_insert, execute_write
from bot.services.datafile import DataFileError
from bot.services.scope import Scope
from bot.text import normalize
from bot.services.stations import (
    WEEKDAY_NAMES,
    Period,
    closure_on,
    day_span,
    day_status,
    format_day,
    format_periods,
    holiday_calendar,
    hours_on,
    schedule_known,
)

log = logging.getLogger(__name__)

MAX_OPEN_BOOKINGS = 3  # future bookings one user (OpenID, or the bound veteran) may hold
CODE_PREFIX = "YY"  # 预约
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read out over the phone
CODE_LENGTH = 8
REMINDER_KIND = "appointment_reminder"
REMINDER_TIME = dt.time(9, 0)  # Beijing time, the day before
LONGEST_SLOT = dt.timedelta(minutes=480)

# --------------------------------------------------------------------------------------
# Loading data/services.yml and data/closures.yml
# --------------------------------------------------------------------------------------

SERVICE_FIELDS = ("code", "name", "aliases", "slot_minutes", "capacity", "capacity_at", "offered_at",
                  "materials", "note", "horizon_days", "lead_minutes")
REQUIRED_SERVICE_FIELDS = ("code", "name", "slot_minutes", "capacity", "offered_at", "materials")
OFFERED_AT_FIELDS = ("tiers", "stations", "except")
SETTINGS = {"booking_horizon_days": (1, 366), "minimum_lead_minutes": (0, 24 * 60)}
CLOSURE_FIELDS = ("station", "date", "from", "to", "reason")
MAX_CLOSURE_DAYS = 366


class ServiceDataError(DataFileError):
    """The services or closures file is wrong; ``problems`` lists every mistake, one per line."""


@dataclass
class _ServiceEntry:
    code: str
    name: str
    slot_minutes: int
    capacity: int
    materials: List[str]
    note: Optional[str]
    aliases: List[str]
    horizon_days: int
    lead_minutes: int
    capacities: Dict[str, int]  # station code → seats per slot


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ServiceDataError(str(path), [f"not valid YAML: {error}"]) from error


def _whole(value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    if not low <= value <= high:
        raise ValueError(f"{value} is not between {low} and {high}")
    return value


def _codes(value: object) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of station codes, e.g. [JD, JD-AT]")
    return [v.strip() for v in value]


def _read_services(data: object, stations: Mapping[str, Station]) -> List[_ServiceEntry]:
    problems: List[str] = []
    if not isinstance(data, Mapping):
        raise ServiceDataError("services file", ["the file must contain settings: and services:"])
    for key in data:
        if key not in ("settings", "services"):
            problems.append(f"{key}: unknown section (misspelt?)")

    defaults = {"booking_horizon_days": 30, "minimum_lead_minutes": 30}
    settings = data.get("settings") or {}
    if not isinstance(settings, Mapping):
        problems.append("settings: must map a setting to its value")
        settings = {}
    for key, value in settings.items():
        if key not in SETTINGS:
            problems.append(f"settings: {key}: unknown setting (known: {', '.join(SETTINGS)})")
            continue
        try:
            defaults[key] = _whole(value, *SETTINGS[key])
        except ValueError as error:
            problems.append(f"settings: {key}: {error}")

    raw_services = data.get("services")
    if not isinstance(raw_services, list) or not raw_services:
        problems.append("services: must be a list of services")
        raw_services = []

    entries: List[_ServiceEntry] = []
    seen_codes: Dict[str, int] = {}
    seen_names: Dict[str, str] = {}
    for position, raw in enumerate(raw_services, start=1):
        if not isinstance(raw, Mapping):
            problems.append(f"service #{position}: must be a mapping of fields")
            continue
        code = raw.get("code")
        label = f"service {code} ({raw.get('name')})" if code else f"service #{position} ({raw.get('name')})"
        before = len(problems)

        def bad(field_name: str, message: str) -> None:
            problems.append(f"{label}: {field_name}: {message}")

        for key in raw:
            if key not in SERVICE_FIELDS:
                bad(str(key), "unknown field (misspelt?)")
        for key in REQUIRED_SERVICE_FIELDS:
            if raw.get(key) is None:
                bad(key, "missing")

        code = raw.get("code")
        if code is not None and (not isinstance(code, str) or not re.fullmatch(r"[a-z][a-z0-9_]{1,31}", code)):
            bad("code", f"{code!r} must be lower-case letters, digits and _ (at most 32), e.g. report_in")
        name = raw.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name.strip()) > 50):
            bad("name", "must be a name of at most 50 characters")
        name = name.strip() if isinstance(name, str) else name
        note = raw.get("note")
        if note is not None and (not isinstance(note, str) or len(note.strip()) > 200):
            bad("note", "must be text of at most 200 characters")
        note = note.strip() or None if isinstance(note, str) else None

        numbers: Dict[str, int] = {}
        for key, low, high, default in (
            ("slot_minutes", 5, 480, None), ("capacity", 1, 1000, None),
            ("horizon_days", *SETTINGS["booking_horizon_days"], defaults["booking_horizon_days"]),
            ("lead_minutes", *SETTINGS["minimum_lead_minutes"], defaults["minimum_lead_minutes"]),
        ):
            value = raw.get(key, default)
            if value is None:
                continue
            try:
                numbers[key] = _whole(value, low, high)
            except ValueError as error:
                bad(key, str(error))

        materials = raw.get("materials")
        if materials is not None and (
            not isinstance(materials, list) or not all(isinstance(m, str) and m.strip() for m in materials)
        ):
            bad("materials", "must be a list of things to bring, e.g. [本人居民身份证]")
            materials = None
        materials = [m.strip() for m in materials or []]
        aliases = raw.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            bad("aliases", "must be a list of words users say, e.g. [报到, 报道]")
            aliases = []
        aliases = [normalize(a.strip()) for a in aliases]

        offered: Set[str] = set()
        raw_offered = raw.get("offered_at")
        if raw_offered is not None:
            if not isinstance(raw_offered, Mapping):
                bad("offered_at", "must give tiers:, stations: and/or except:")
                raw_offered = {}
            for key in raw_offered:
                if key not in OFFERED_AT_FIELDS:
                    bad(f"offered_at.{key}", f"unknown field (known: {', '.join(OFFERED_AT_FIELDS)})")
            tiers = raw_offered.get("tiers") or []
            if isinstance(tiers, str):
                tiers = [tiers]
            if not isinstance(tiers, list) or any(t not in STATION_TIERS for t in tiers):
                bad("offered_at.tiers", f"{tiers!r}: each must be one of {', '.join(STATION_TIERS)}")
                tiers = []
            offered = {c for c, s in stations.items() if s.tier in tiers}
            for key in ("stations", "except"):
                try:
                    codes = _codes(raw_offered.get(key))
                except ValueError as error:
                    bad(f"offered_at.{key}", str(error))
                    continue
                unknown = [c for c in codes if c not in stations]
                if unknown:
                    bad(f"offered_at.{key}", f"unknown station code(s) {', '.join(unknown)}")
                if key == "stations":
                    offered |= set(codes) - set(unknown)
                else:
                    offered -= set(codes)
            if not offered and len(problems) == before:
                bad("offered_at", "offered at no station")

        capacities = {c: numbers.get("capacity", 1) for c in offered}
        capacity_at = raw.get("capacity_at") or {}
        if not isinstance(capacity_at, Mapping):
            bad("capacity_at", "must map a station code to its seats per slot, e.g. {JD: 4}")
            capacity_at = {}
        for station_code, seats in capacity_at.items():
            station_code = str(station_code)
            if station_code not in stations:
                bad(f"capacity_at.{station_code}", "unknown station code")
            elif station_code not in offered:
                bad(f"capacity_at.{station_code}", "the service is not offered at this station")
            else:
                try:
                    capacities[station_code] = _whole(seats, 1, 1000)
                except ValueError as error:
                    bad(f"capacity_at.{station_code}", str(error))

        if isinstance(code, str) and code in seen_codes:
            bad("code", f"duplicate code (also service #{seen_codes[code]})")
        if isinstance(name, str) and name in seen_names:
            bad("name", f"duplicate name (also service {seen_names[name]})")
        if isinstance(code, str):
            seen_codes.setdefault(code, position)
        if isinstance(name, str):
            seen_names.setdefault(name, code or f"#{position}")
        if len(problems) > before:
            continue
        entries.append(_ServiceEntry(
            code=code, name=name, slot_minutes=numbers["slot_minutes"], capacity=numbers["capacity"],
            materials=materials, note=note, aliases=aliases, horizon_days=numbers["horizon_days"],
            lead_minutes=numbers["lead_minutes"], capacities=capacities,
        ))
    if problems:
        raise ServiceDataError("services file", problems)
    return entries


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ValueError(f"{value!r} is a time, give a date like 2026-12-18")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date like 2026-12-18")


def _read_closures(data: object, stations: Mapping[str, Station]) -> Dict[Tuple[str, dt.date], str]:
    problems: List[str] = []
    if data is None:
        return {}
    if not isinstance(data, Mapping) or set(data) - {"closures"}:
        raise ServiceDataError("closures file", ["the file must contain only closures: (a list)"])
    raw_closures = data.get("closures") or []
    if not isinstance(raw_closures, list):
        raise ServiceDataError("closures file", ["closures: must be a list"])
    found: Dict[Tuple[str, dt.date], str] = {}
    where: Dict[Tuple[str, dt.date], int] = {}
    for position, raw in enumerate(raw_closures, start=1):
        label = f"closure #{position}"
        if not isinstance(raw, Mapping):
            problems.append(f"{label}: must be a mapping of fields")
            continue
        before = len(problems)

        def bad(field_name: str, message: str) -> None:
            problems.append(f"{label} ({raw.get('station')}): {field_name}: {message}")

        for key in raw:
            if key not in CLOSURE_FIELDS:
                bad(str(key), "unknown field (misspelt?)")
        codes: List[str] = []
        if raw.get("station") is None:
            bad("station", "missing")
        elif raw.get("station") == "all":
            codes = sorted(stations)
        else:
            try:
                codes = _codes(raw.get("station"))
            except ValueError as error:
                bad("station", str(error))
            unknown = [c for c in codes if c not in stations]
            if unknown:
                bad("station", f"unknown station code(s) {', '.join(unknown)}")
        reason = raw.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            bad("reason", "missing (it is shown to users, e.g. 站点装修)")
        elif len(reason.strip()) > 100:
            bad("reason", "longer than 100 characters")
        days: List[dt.date] = []
        try:
            days = day_span(raw, _date, MAX_CLOSURE_DAYS, too_long=f"longer than {MAX_CLOSURE_DAYS} days",
                            neither="give date: (one day) or from: and to: (a range)")
        except ValueError as error:
            bad("date", str(error))
        if len(problems) > before:
            continue
        for code in codes:
            for day in days:
                if (code, day) in found:
                    bad("date", f"{code} on {day} is already closed by closure #{where[(code, day)]}")
                    continue
                found[(code, day)] = reason.strip()
                where[(code, day)] = position
    if problems:
        raise ServiceDataError("closures file", problems)
    return found


def load_services(session: Session, path_services: Union[str, Path],
                  path_closures: Union[str, Path, None] = None, now: Optional[dt.datetime] = None) -> int:
    """Validate the services file (and the closures file, when given) and upsert them;
    returns the number of services. Stations must be loaded first.

    Reloading an unchanged file changes nothing. A service's stations and seats
    follow the file; a new capacity also applies to slots after ``now`` that were
    already materialised (never below the seats already taken). A service no
    longer in the file is offered nowhere (its row stays: bookings point at it).
    The closures in the database become exactly those of the closures file.
    Raises ServiceDataError, naming the entry and the field, for a bad file.
    """
    now = as_utc(now or dt.datetime.now(dt.timezone.utc))
    stations = {s.code: s for s in session.execute(select(Station)).scalars()}
    path_services = Path(path_services)
    try:
        entries = _read_services(_read_yaml(path_services), stations)
    except ServiceDataError as error:
        raise ServiceDataError(str(path_services), error.problems) from None
    closures = None
    if path_closures is not None:
        path_closures = Path(path_closures)
        try:
            closures = _read_closures(_read_yaml(path_closures), stations)
        except ServiceDataError as error:
            raise ServiceDataError(str(path_closures), error.problems) from None

    existing = {s.code: s for s in session.execute(select(Service)).scalars()}
    for position, entry in enumerate(entries):
        service = existing.get(entry.code)
        if service is None:
            service = Service(code=entry.code)
            session.add(service)
            existing[entry.code] = service
        wanted = {"name": entry.name, "slot_minutes": entry.slot_minutes, "default_capacity": entry.capacity,
                  "materials": entry.materials, "note": entry.note, "aliases": entry.aliases,
                  "horizon_days": entry.horizon_days,
                  "lead_minutes": entry.lead_minutes, "position": position}
        for key, value in wanted.items():
            if getattr(service, key) != value:
                setattr(service, key, value)
    session.flush()

    by_id = {s.id: s for s in stations.values()}
    offers = {(o.station_id, o.service_id): o for o in session.execute(select(StationService)).scalars()}
    wanted_offers: Dict[Tuple[int, int], int] = {}
    for entry in entries:
        service_id = existing[entry.code].id
        for station_code, seats in entry.capacities.items():
            wanted_offers[(stations[station_code].id, service_id)] = seats
    for key, offer in offers.items():
        if key not in wanted_offers:
            session.delete(offer)
    for (station_id, service_id), seats in wanted_offers.items():
        offer = offers.get((station_id, service_id))
        if offer is None:
            session.add(StationService(station_id=station_id, service_id=service_id, capacity=seats))
        elif offer.capacity != seats:
            offer.capacity = seats
            session.execute(
                update(Slot)
                .where(Slot.station_id == station_id, Slot.service_id == service_id, Slot.start > now)
                .values(capacity=func.max(Slot.booked, seats) if _dialect(session) == "sqlite"
                        else func.greatest(Slot.booked, seats)),
                execution_options={"synchronize_session": False},
            )
    session.flush()

    if closures is not None:
        current = {(c.station_id, c.day): c for c in session.execute(select(StationClosure)).scalars()}
        wanted_closures = {(stations[code].id, day): reason for (code, day), reason in closures.items()}
        for key, closure in current.items():
            if key not in wanted_closures:
                session.delete(closure)
        for (station_id, day), reason in wanted_closures.items():
            closure = current.get((station_id, day))
            if closure is None:
                session.add(StationClosure(station_id=station_id, day=day, reason=reason))
            elif closure.reason != reason:
                closure.reason = reason
        session.flush()
        for station in stations.values():
            session.expire(station, ["closures"])
        stranded = affected_by_closures(session, now)
        if stranded:
            log.warning("bookings fall on closed days; staff should contact these users",
                        extra={"appointments": len(stranded),
                               "stations": sorted({by_id[a.station_id].code for a in stranded})})
    log.info("services loaded", extra={"services": len(entries), "offers": len(wanted_offers),
                                       "closures": None if closures is None else len(closures)})
    return len(entries)


# --------------------------------------------------------------------------------------
# What is offered where
# --------------------------------------------------------------------------------------

_TIER_ORDER = {tier: n for n, tier in enumerate(STATION_TIERS)}


def offered_services(session: Session, station_id: int) -> List[Service]:
    """The services bookable at a station, in the file's order."""
    return list(session.execute(
        select(Service).join(StationService, StationService.service_id == Service.id)
        .where(StationService.station_id == station_id).order_by(Service.position, Service.code)
    ).scalars())


def stations_offering(session: Session, service_code: str) -> List[Station]:
    """The stations where a service can be booked: district centre, then streets, then communities."""
    stations = session.execute(
        select(Station).join(StationService, StationService.station_id == Station.id)
        .join(Service, Service.id == StationService.service_id).where(Service.code == service_code)
    ).scalars()
    return sorted(stations, key=lambda s: (_TIER_ORDER[s.tier], s.code))


def service_by_code(session: Session, service_code: str) -> Optional[Service]:
    return session.execute(select(Service).where(Service.code == service_code)).scalar_one_or_none()


def all_services(session: Session) -> List[Service]:
    """The services bookable somewhere, in the file's order (the menu)."""
    offered = select(StationService.service_id)
    return list(session.execute(
        select(Service).where(Service.id.in_(offered)).order_by(Service.position, Service.code)
    ).scalars())


def find_service(session: Session, text_: str) -> Optional[Service]:
    """The service a user's words name ("我要报到", "办优待证", "report_in"): by code,
    name or alias; the longest word found wins. None when none is named."""
    cleaned = re.sub(r"\s+", "", normalize(text_ or ""))
    if not cleaned:
        return None
    best: Optional[Tuple[int, int, Service]] = None
    for service in all_services(session):
        for key in (service.code, service.name, *(service.aliases or ())):
            if key and key in cleaned and (best is None or len(key) > best[0]):
                best = (len(key), service.position, service)
    return best[2] if best else None


def service_name(session: Session, service_code: str) -> str:
    """退役报到 for report_in; the code itself if there is no such service."""
    service = service_by_code(session, service_code)
    return service.name if service else service_code


# --------------------------------------------------------------------------------------
# Time helpers
# --------------------------------------------------------------------------------------



def _local(value: dt.datetime) -> dt.datetime:
    """Beijing time, for a value read from the database (naive = UTC)."""
    return as_utc(value).astimezone(SHANGHAI)


def _at(day: dt.date, moment: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, moment, tzinfo=SHANGHAI)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def format_clock(moment: dt.datetime) -> str:
    return f"{moment.hour}:{moment.minute:02d}"


def format_slot(start: dt.datetime, end: Optional[dt.datetime] = None) -> str:
    """``12月5日（周六）14:00—14:30`` in Beijing time; ``12月5日（周六）14:00`` without an end."""
    start = local_time(start)
    text_ = f"{format_day(start.date())}{format_clock(start)}"
    return text_ if end is None else f"{text_}—{format_clock(local_time(end))}"


# --------------------------------------------------------------------------------------
# The schedule
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotView:
    """A bookable time: start and end in Beijing time, ``free`` seats left."""

    station_id: int
    service_code: str
    start: dt.datetime
    end: dt.datetime
    free: int


@dataclass
class _Offer:
    station: Station
    service: Service
    capacity: Optional[int]  # None: not offered at this station

    def __post_init__(self) -> None:
        # Plain copies: ORM attribute access is slow in loops over a year of slots.
        self.length = dt.timedelta(minutes=self.service.slot_minutes)
        self.station_id = self.station.id
        self.service_code = self.service.code


def _offer(session: Session, station_id: int, service_code: str) -> _Offer:
    station = session.get(Station, station_id)
    if station is None:
        raise LookupError(f"no station with id {station_id}")
    service = service_by_code(session, service_code)
    if service is None:
        raise LookupError(f"no service {service_code!r} (load data/services.yml)")
    capacity = session.execute(
        select(StationService.capacity)
        .where(StationService.station_id == station_id, StationService.service_id == service.id)
    ).scalar_one_or_none()
    return _Offer(station, service, capacity)


def booking_hours(station: Station, day: dt.date) -> List[Period]:
    """The hours that can be booked on a day: the station's hours (``hours_on``), but
    none on a day whose holiday schedule is unknown (it might be a holiday), unless
    staff opened it in data/holidays.yml's open_days."""
    if not schedule_known(day):
        return []
    return hours_on(station, day)


def _grid(offer: _Offer, day: dt.date) -> List[dt.datetime]:
    """The slot starts of a day: from each opening, whole slots only."""
    starts = []
    length = offer.length
    for opens, closes in booking_hours(offer.station, day):
        moment, end = _at(day, opens), _at(day, closes)
        while moment + length <= end:
            starts.append(moment)
            moment += length
    return starts


def _window(offer: _Offer, now: dt.datetime) -> Tuple[dt.datetime, dt.date]:
    """The earliest bookable moment and the last bookable day."""
    local_now = local_time(now)
    earliest = local_now + dt.timedelta(minutes=offer.service.lead_minutes)
    return earliest, local_now.date() + dt.timedelta(days=offer.service.horizon_days)


def _taken(session: Session, offer: _Offer, first: dt.datetime, last: dt.datetime) -> Dict[dt.datetime, Tuple[int, int]]:
    """Materialised slots between two moments: UTC start → (capacity, booked)."""
    rows = session.execute(
        select(Slot.start, Slot.capacity, Slot.booked).where(
            Slot.station_id == offer.station.id, Slot.service_id == offer.service.id,
            Slot.start >= as_utc(first), Slot.start <= as_utc(last),
        )
    )
    return {as_utc(start): (capacity, booked) for start, capacity, booked in rows}


def _free_slots(session: Session, offer: _Offer, first_day: dt.date, last_day: dt.date,
                now: dt.datetime) -> List[SlotView]:
    if offer.capacity is None:
        return []
    earliest, horizon = _window(offer, now)
    first_day = max(first_day, earliest.date())
    last_day = min(last_day, horizon)
    if last_day < first_day:
        return []
    starts = [s for n in range((last_day - first_day).days + 1)
              for s in _grid(offer, first_day + dt.timedelta(days=n)) if s >= earliest]
    if not starts:
        return []
    taken = _taken(session, offer, starts[0], starts[-1])
    slots = []
    station_id, service_code, length, unbooked = offer.station_id, offer.service_code, offer.length, offer.capacity
    for start in starts:
        capacity, booked = taken.get(start.astimezone(dt.timezone.utc), (unbooked, 0)) if taken else (unbooked, 0)
        if capacity - booked > 0:
            slots.append(SlotView(station_id, service_code, start, start + length, capacity - booked))
    return slots


def free_slots(session: Session, station_id: int, service_code: str, first_day: dt.date, last_day: dt.date,
               now: dt.datetime) -> List[SlotView]:
    """The slots with a free seat between two days (inclusive), earliest first.

    Follows the station's hours on each day (holidays, 调休, closures); leaves out
    what has begun or begins within the lead time, days beyond the horizon and
    days whose holiday schedule is not known yet.
    Empty when the station does not offer the service. Raises LookupError for an
    unknown station or service.
    """
    return _free_slots(session, _offer(session, station_id, service_code), first_day, last_day, now)


# --------------------------------------------------------------------------------------
# Why a requested time cannot be had, and what to offer instead
# --------------------------------------------------------------------------------------

NOT_OFFERED = "not_offered"
PAST = "past"
TOO_SOON = "too_soon"  # inside the minimum lead time
TOO_FAR = "too_far"  # beyond the booking horizon
CLOSED_DAY = "closed_day"  # holiday, weekly day off, one-off closure, or holiday schedule unknown
OUTSIDE_HOURS = "outside_hours"
NOT_SLOT_START = "not_slot_start"  # within the hours but between slot starts (9:10 for 9:00—9:30)
FULL = "full"


@dataclass(frozen=True)
class Availability:
    """Whether a requested time can be booked, and if not why, with what the chat needs
    to say it plainly (``explain``)."""

    reason: Optional[str]  # None when it can be booked, else one of the constants above
    start: dt.datetime  # as asked, Beijing time
    station_name: str
    service_name: str
    closed_because: Optional[str] = None  # CLOSED_DAY: "holiday", "closure", "weekly" or "unknown"
    holiday: Optional[str] = None  # the holiday's Chinese name (国庆节)
    closure: Optional[str] = None  # the closure's reason (站点装修)
    periods: Tuple[Period, ...] = ()  # the station's hours that day
    slot: Optional[SlotView] = None  # the slot asked for, when there is one
    last_day: Optional[dt.date] = None  # the last bookable day
    lead_minutes: int = 0
    today: Optional[dt.date] = None  # Beijing date when it was checked

    @property
    def ok(self) -> bool:
        return self.reason is None


def _check(session: Session, offer: _Offer, start: dt.datetime, now: dt.datetime,
           count_seats: bool = True) -> Availability:
    start = local_time(start)
    earliest, horizon = _window(offer, now)
    day = start.date()
    base = dict(start=start, station_name=offer.station.name, service_name=offer.service.name,
                last_day=horizon, lead_minutes=offer.service.lead_minutes, today=local_time(now).date())
    if offer.capacity is None:
        return Availability(NOT_OFFERED, **base)
    if start < local_time(now):
        return Availability(PAST, **base)
    if start < earliest:
        return Availability(TOO_SOON, **base)
    if day > horizon:
        return Availability(TOO_FAR, **base)
    periods = tuple(booking_hours(offer.station, day))
    if not periods:
        closure = closure_on(offer.station, day)
        status = day_status(day)
        if closure is not None:
            return Availability(CLOSED_DAY, closed_because="closure", closure=closure, **base)
        if status.kind == "unknown":
            return Availability(CLOSED_DAY, closed_because="unknown", **base)
        if status.kind == "holiday":
            return Availability(CLOSED_DAY, closed_because="holiday", holiday=status.holiday, **base)
        return Availability(CLOSED_DAY, closed_because="weekly", **base)
    base["periods"] = periods
    moment = start.time().replace(tzinfo=None)
    if not any(opens <= moment < closes for opens, closes in periods):
        return Availability(OUTSIDE_HOURS, **base)
    if start not in _grid(offer, day):
        return Availability(NOT_SLOT_START, **base)
    capacity, booked = (offer.capacity, 0)
    if count_seats:
        capacity, booked = _taken(session, offer, start, start).get(as_utc(start), (offer.capacity, 0))
    slot = SlotView(offer.station.id, offer.service.code, start, start + offer.length, capacity - booked)
    if capacity - booked <= 0:
        return Availability(FULL, slot=slot, **base)
    return Availability(None, slot=slot, **base)


def check_requested(session: Session, station_id: int, service_code: str, start: dt.datetime,
                    now: dt.datetime) -> Availability:
    """Whether this exact time can be booked now; ``reason`` says why not.

    ``start`` may be naive (read as Beijing time) or aware.
    """
    return _check(session, _offer(session, station_id, service_code), start, now)


def explain(availability: Availability) -> str:
    """One plain Chinese sentence for why a time cannot be had (empty when it can)."""
    a = availability
    when = format_day(a.start.date())
    clock = format_clock(a.start)
    if a.reason is None:
        return ""
    if a.reason == NOT_OFFERED:
        return f"{a.station_name}不办理{a.service_name}预约。"
    if a.reason == PAST:
        return f"{when}{clock}已经过去了，请另选时间。"
    if a.reason == TOO_SOON:
        return f"{when}{clock}离现在不足{a.lead_minutes}分钟，来不及预约了，请选稍晚的时间。"
    if a.reason == TOO_FAR:
        return _past_the_window(a.start.date(), a.start.date(), a.today or a.last_day, a.last_day)
    if a.reason == CLOSED_DAY:
        if a.closed_because == "unknown":
            return unknown_schedule(a.start.date())
        if a.closed_because == "closure":
            return f"{when}{a.station_name}因{a.closure}暂停办公。"
        if a.closed_because == "holiday":
            return f"{when}是{a.holiday}假期，{a.station_name}不办公。"
        return f"{when}{a.station_name}不办公。"
    if a.reason == OUTSIDE_HOURS:
        return f"{clock}不在办公时间内，{when}的办公时间是{format_periods(a.periods)}。"
    if a.reason == NOT_SLOT_START:
        return f"{a.service_name}按时段预约，{clock}不是时段的开始时间。"
    if a.reason == FULL:
        return f"{when}{clock}的时段已约满。"
    return ""


# Slot starts that count as a part of the day (bot.timeparse says these four).
PARTS_OF_DAY = {"上午": (dt.time(0), dt.time(12)), "中午": (dt.time(11), dt.time(14)),
                "下午": (dt.time(12), dt.time(18)), "晚上": (dt.time(18), dt.time.max)}


def alternatives(session: Session, station_id: int, service_code: str, day: Optional[dt.date] = None,
                 latest_day: Optional[dt.date] = None, start: Optional[dt.datetime] = None,
                 part: Optional[str] = None, now: Optional[dt.datetime] = None, limit: int = 3) -> List[SlotView]:
    """The free slots nearest to what the user asked, best first, at most ``limit``.

    - an exact time (``start``): the closest in time on the same day; failing that
      the asked time of day, or the closest to it, on the nearest days;
    - a part of a day (``part`` 上午/下午, with ``day`` and maybe ``latest_day``):
      the earliest free in that part of the day(s);
    - a day or a range of days: the earliest free in it;
    - nothing: the earliest free from now.
    When nothing is free in the range, the nearest after it (the same part of the
    day first), and failing that the latest before it.
    """
    if now is None:
        raise TypeError("alternatives() needs now")
    offer = _offer(session, station_id, service_code)
    return _alternatives(session, offer, day, latest_day, start, part, now, limit)[0]


def _in_part(slot: SlotView, part: Optional[str]) -> bool:
    if part is None:
        return True
    low, high = PARTS_OF_DAY[part]
    return low <= slot.start.time() < high


def _alternatives(session: Session, offer: _Offer, day: Optional[dt.date], latest_day: Optional[dt.date],
                  start: Optional[dt.datetime], part: Optional[str], now: dt.datetime,
                  limit: int) -> Tuple[List[SlotView], bool]:
    """(the slots, whether they are inside what was asked). The nearest to what was
    asked are chosen and listed in time order, earliest first."""
    if part is not None and part not in PARTS_OF_DAY:
        raise ValueError(f"unknown part of day {part!r} (one of {', '.join(PARTS_OF_DAY)})")
    today = local_time(now).date()
    _, horizon = _window(offer, now)
    everything = _free_slots(session, offer, today, horizon, now)

    if start is not None:
        start = local_time(start)

        def distance(slot: SlotView) -> Tuple[int, float, dt.datetime]:
            days = abs((slot.start.date() - start.date()).days)
            if days == 0:
                return 0, abs((slot.start - start).total_seconds()), slot.start
            # Another day: the asked time of day, on the nearest days.
            moment = slot.start.replace(year=start.year, month=start.month, day=start.day)
            return days, abs((moment - start).total_seconds()), slot.start

        return sorted(sorted(everything, key=distance)[:limit], key=lambda s: s.start), False

    first = day or today
    last = max(latest_day or first, first)
    inside = [s for s in everything if first <= s.start.date() <= last and _in_part(s, part)]
    if inside:
        return inside[:limit], True
    after = [s for s in everything if s.start.date() > last]
    chosen = [s for s in after if _in_part(s, part)][:limit]
    chosen += [s for s in after if s not in chosen][: limit - len(chosen)]
    if chosen:
        return sorted(chosen, key=lambda s: s.start), False
    before = [s for s in everything if s.start.date() < first]
    return sorted(list(reversed(before))[:limit], key=lambda s: s.start), False


@dataclass(frozen=True)
class RequestCheck:
    """The answer to "when would you like to come": either the exact slot asked for
    (``exact``), or slots to offer (``alternatives``) with, when what was asked
    cannot be had, ``problem``: one plain sentence saying why."""

    exact: Optional[SlotView]
    problem: Optional[str]
    alternatives: List[SlotView]
    availability: Optional[Availability] = None  # for an exact time that cannot be had


def full_date(day: dt.date) -> str:
    """``2027年1月1日``: with the year, where the year is the point."""
    return f"{day.year}年{day.month}月{day.day}日"


def unknown_schedule(first: dt.date, last: Optional[dt.date] = None) -> str:
    """Why a day (or days) whose holiday schedule is not published cannot be booked."""
    if last is None or last == first:
        return f"{full_date(first)}的节假日安排尚未公布，暂不能预约这一天。"
    until = f"{last.month}月{last.day}日" if last.year == first.year else full_date(last)
    return f"{full_date(first)}至{until}的节假日安排尚未公布，暂不能预约这几天。"


def _span(first: dt.date, last: dt.date, part: Optional[str]) -> str:
    days = format_day(first) if first == last else f"{format_day(first)}至{format_day(last)}"
    return days + (part or "")


def _dated(day: dt.date, today: dt.date) -> str:
    """``12月5日（周日）``, with the year when it is not this year's."""
    return format_day(day) if day.year == today.year else f"{day.year}年{format_day(day)}"


def _past_the_window(first: dt.date, last: dt.date, today: dt.date, horizon: dt.date) -> str:
    """A day after the last bookable one. "12月5号" said on 7 December reads as next
    year's: say so with the year, and say this year's is over (when it was this past
    month), for that is more likely what was meant. Days whose holiday schedule is not published are not bookable, so
    the reach stops before them (and the reason is given)."""
    reach = horizon
    while reach >= today and not schedule_known(reach):
        reach -= dt.timedelta(days=1)
    asked = _dated(first, today) if first == last else f"{_dated(first, today)}至{_dated(last, today)}"
    said = ""
    if first.year > today.year:
        try:
            this_year = first.replace(year=today.year)
        except ValueError:  # 2月29日
            this_year = None
        if this_year is not None and today - dt.timedelta(days=31) <= this_year < today:  # a slip, not next year
            said = f"今年的{this_year.month}月{this_year.day}日已经过去了。"
    if reach < today:
        return said + unknown_schedule(today, horizon)
    text = f"{said}目前只能预约到{_dated(reach, today)}，{asked}还不能预约。"
    if reach < horizon:
        text += f"{full_date(reach + dt.timedelta(days=1))}起的节假日安排尚未公布。"
    return text


def _range_problem(offer: _Offer, first: dt.date, last: dt.date, part: Optional[str], now: dt.datetime) -> str:
    """Why nothing is free on the days asked."""
    today = local_time(now).date()
    _, horizon = _window(offer, now)
    if offer.capacity is None:
        return f"{offer.station.name}不办理{offer.service.name}预约。"
    if last < today:
        return f"{_span(first, last, None)}已经过去了。"
    if first > horizon:
        return _past_the_window(first, last, today, horizon)
    if first == last:
        periods = booking_hours(offer.station, first)
        if not periods:
            closure, status = closure_on(offer.station, first), day_status(first)
            if closure is not None:
                return f"{format_day(first)}{offer.station.name}因{closure}暂停办公。"
            if status.kind == "unknown":
                return unknown_schedule(first)
            if status.kind == "holiday":
                return f"{format_day(first)}是{status.holiday}假期，{offer.station.name}不办公。"
            return f"{format_day(first)}{offer.station.name}不办公。"
        if part is not None:
            low, high = PARTS_OF_DAY[part]
            if not any(opens < high and low < closes for opens, closes in periods):
                return f"{format_day(first)}{part}不办公，当天办公时间是{format_periods(periods)}。"
        if first == today:
            return f"今天{part or ''}已经没有可以预约的时段了。"
        return f"{_span(first, last, part)}的时段已约满。"
    asked = [first + dt.timedelta(days=n) for n in range((min(last, horizon) - first).days + 1)]
    unknown = [day for day in asked if day >= today and not schedule_known(day)]
    if unknown and len(unknown) == len([day for day in asked if day >= today]):
        return unknown_schedule(unknown[0], unknown[-1])
    if unknown:
        return (f"{_span(first, last, part)}没有可以预约的时段；{full_date(unknown[0])}起的节假日安排尚未公布，"
                f"暂不能预约。")
    return f"{_span(first, last, part)}没有可以预约的时段。"


def check_request(session: Session, station_id: int, service_code: str, day: Optional[dt.date],
                  latest_day: Optional[dt.date], start: Optional[dt.time], part: Optional[str],
                  now: dt.datetime, limit: int = 3) -> RequestCheck:
    """What the booking form asks after "你想什么时候来": a day (or a range of days,
    ``day``..``latest_day``), maybe a time of day (``start``, Beijing time) or a part
    of the day (上午/中午/下午/晚上); nothing at all means "the earliest".

    An exact time that can be booked comes back as ``exact``. Otherwise
    ``alternatives`` holds up to ``limit`` slots (see ``alternatives``), and
    ``problem`` says why the time asked cannot be had; for a day or a range
    with free slots in it, ``problem`` is None and the alternatives are those.
    """
    offer = _offer(session, station_id, service_code)
    today = local_time(now).date()
    if start is not None:
        if day is None:  # "三点" alone: today's, or tomorrow's once it has passed
            day = today if _at(today, start) > local_time(now) else today + dt.timedelta(days=1)
        moment = _at(day, start)
        availability = _check(session, offer, moment, now)
        if availability.ok:
            return RequestCheck(availability.slot, None, [], availability)
        slots, _ = _alternatives(session, offer, None, None, moment, None, now, limit)
        return RequestCheck(None, explain(availability), slots, availability)
    first = day or today
    last = max(latest_day or first, first)
    slots, inside = _alternatives(session, offer, first, last, None, part, now, limit)
    if inside:
        return RequestCheck(None, None, slots)
    return RequestCheck(None, _range_problem(offer, first, last, part, now), slots)


# --------------------------------------------------------------------------------------
# Appointments
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentView:
    """An appointment as the chat and the console show it (no OpenID in it)."""

    code: str
    status: str
    service_code: str
    service_name: str
    station_id: int
    station_name: str
    station_address: str
    station_phone: str
    start: dt.datetime  # Beijing time
    end: dt.datetime
    materials: Tuple[str, ...]
    note: Optional[str]
    veteran_id: Optional[int]
    created_at: dt.datetime


def _view(appointment: Appointment, service: Service, station: Station) -> AppointmentView:
    start = _local(appointment.start)
    return AppointmentView(
        code=appointment.code, status=appointment.status, service_code=service.code,
        service_name=service.name, station_id=station.id, station_name=station.name,
        station_address=station.address, station_phone=station.phone, start=start,
        end=start + dt.timedelta(minutes=service.slot_minutes), materials=tuple(service.materials or ()),
        note=service.note, veteran_id=appointment.veteran_id, created_at=_local(appointment.created_at),
    )


def _views(session: Session, condition) -> List[AppointmentView]:
    rows = session.execute(
        select(Appointment, Service, Station)
        .join(Service, Service.id == Appointment.service_id)
        .join(Station, Station.id == Appointment.station_id)
        .where(condition).order_by(Appointment.start, Appointment.id)
        .execution_options(populate_existing=True)
    ).all()
    return [_view(*row) for row in rows]


def _whose(openid: Optional[str], veteran_id: Optional[int]):
    """This user's appointments: by OpenID, and by the bound veteran when given.
    Never the blanked rows of users who unfollowed (a missing OpenID matches nothing)."""
    conditions = []
    if openid:
        conditions.append(Appointment.openid == openid)
    if veteran_id is not None:
        conditions.append(Appointment.veteran_id == veteran_id)
    return or_(*conditions) if conditions else false()


def _open(session: Session, openid: str, veteran_id: Optional[int], now: dt.datetime,
          exclude: Optional[int] = None) -> List[AppointmentView]:
    """Booked and not yet over (a slot in progress still counts)."""
    condition = and_(_whose(openid, veteran_id), Appointment.status == "booked",
                     Appointment.start > as_utc(now) - LONGEST_SLOT)
    if exclude is not None:
        condition = and_(condition, Appointment.id != exclude)
    return [v for v in _views(session, condition) if v.end > now]


def normalize_code(raw: str) -> str:
    """预约码 as typed: full-width, lower case, spaces and dashes all accepted."""
    text_ = unicodedata.normalize("NFKC", raw or "")
    return re.sub(r"[\s\-_—]", "", text_).upper()


def new_code() -> str:
    return CODE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _row_by_code(session: Session, openid: str, code: str, veteran_id: Optional[int]) -> Optional[Appointment]:
    return session.execute(
        select(Appointment).where(Appointment.code == normalize_code(code), _whose(openid, veteran_id))
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def find(session: Session, openid: str, code: str, veteran_id: Optional[int] = None) -> Optional[AppointmentView]:
    """This user's appointment with this code; None for anybody else's (it reveals nothing)."""
    found = _row_by_code(session, openid, code, veteran_id)
    if found is None:
        return None
    return _view(found, session.get(Service, found.service_id), session.get(Station, found.station_id))


def upcoming(session: Session, openid: str, now: dt.datetime, veteran_id: Optional[int] = None) -> List[AppointmentView]:
    """This user's booked appointments that are not over yet, soonest first; with
    ``veteran_id``, also those made for the veteran from another OpenID."""
    return _open(session, openid, veteran_id, as_utc(now))


# --------------------------------------------------------------------------------------
# Booking
# --------------------------------------------------------------------------------------


class BookingStatus(str, enum.Enum):
    BOOKED = "booked"
    FULL = "full"  # 已约满
    DUPLICATE = "duplicate"  # the user already holds this slot: the existing appointment
    LIMIT = "limit"  # already MAX_OPEN_BOOKINGS future bookings
    UNAVAILABLE = "unavailable"  # not a free slot time; ``availability`` says why
    NOT_FOUND = "not_found"  # reschedule: no such appointment of this user
    NOT_CHANGEABLE = "not_changeable"  # reschedule: cancelled, or begun already

    @property
    def label(self) -> str:
        return {
            "booked": "预约成功", "full": "该时段已约满", "duplicate": "您已预约过这个时段",
            "limit": f"您已有{MAX_OPEN_BOOKINGS}个未办理的预约", "unavailable": "这个时间不能预约",
            "not_found": "没有找到这个预约", "not_changeable": "这个预约已不能更改",
        }[self.value]


@dataclass
class BookingResult:
    status: BookingStatus
    appointment: Optional[AppointmentView] = None  # BOOKED: the new one; DUPLICATE: the one held
    availability: Optional[Availability] = None  # UNAVAILABLE and FULL: why
    holding: List[AppointmentView] = field(default_factory=list)  # LIMIT: the bookings held
    replaced: Optional[AppointmentView] = None  # reschedule, BOOKED: the old one, now cancelled

    @property
    def ok(self) -> bool:
        return self.status is BookingStatus.BOOKED


def _lock_key(kind: str, value: object) -> int:
    digest = hashlib.sha256(f"vetbot:{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _serialise_user(session: Session, openid: Optional[str], veteran_id: Optional[int]) -> None:
    """Writes for the same user one at a time, so that the duplicate and limit checks
    see each other's bookings. PostgreSQL: transaction-scoped advisory locks, taken
    in a fixed order. SQLite needs nothing: the first write takes the one write lock."""
    if _dialect(session) != "postgresql":
        return
    keys = sorted({_lock_key("openid", openid)} if openid else set()
                  | ({_lock_key("veteran", veteran_id)} if veteran_id is not None else set()))
    for key in keys:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})



def _slot_row(session: Session, offer: _Offer, start_utc: dt.datetime) -> int:
    """The slot's id, writing its row first if nobody has booked it yet."""
    statement = (dialect_insert(session, Slot)
                 .values(station_id=offer.station.id, service_id=offer.service.id, start=start_utc,
                         capacity=offer.capacity, booked=0)
                 .on_conflict_do_nothing(index_elements=["station_id", "service_id", "start"]))
    execute_write(session, statement)
    return session.execute(
        select(Slot.id).where(Slot.station_id == offer.station.id, Slot.service_id == offer.service.id,
                              Slot.start == start_utc)
    ).scalar_one()


def _held(session: Session, openid: str, slot_id: int) -> Optional[Appointment]:
    return session.execute(
        select(Appointment).where(Appointment.openid == openid, Appointment.slot_id == slot_id,
                                  Appointment.status == "booked")
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _held_at(session: Session, openid: str, offer: _Offer, start_utc: dt.datetime) -> Optional[Appointment]:
    return session.execute(
        select(Appointment).join(Slot, Slot.id == Appointment.slot_id).where(
            Appointment.openid == openid, Appointment.status == "booked",
            Slot.station_id == offer.station.id, Slot.service_id == offer.service.id, Slot.start == start_utc)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def reminder_due(start: dt.datetime, now: dt.datetime) -> dt.datetime:
    """09:00 Beijing time the day before the appointment; now, if that has passed."""
    due = _at(local_time(start).date() - dt.timedelta(days=1), REMINDER_TIME)
    return max(due, local_time(now))


def _reminder_ref(code: str) -> str:
    return f"appointment:{code}"


def _enqueue_reminder(session: Session, openid: str, view: AppointmentView, now: dt.datetime) -> None:
    payload = {
        "code": view.code, "service": view.service_name, "station": view.station_name,
        "address": view.station_address, "phone": view.station_phone,
        "start": view.start.isoformat(), "end": view.end.isoformat(), "materials": list(view.materials),
    }
    session.execute(Outbox.__table__.insert().values(
        openid=openid, kind=REMINDER_KIND, ref=_reminder_ref(view.code), payload=payload,
        due_at=as_utc(reminder_due(view.start, now)), created_at=as_utc(now), attempts=0,
    ))


def reminder_text(payload: Mapping[str, object]) -> str:
    """The reminder a delivery worker sends, from an outbox row's payload."""
    start, end = dt.datetime.fromisoformat(payload["start"]), dt.datetime.fromisoformat(payload["end"])
    lines = [f"【预约提醒】您预约的{payload['service']}将于{format_slot(start, end)}办理。",
             f"地点：{payload['station']}（{payload['address']}）"]
    if payload.get("materials"):
        lines.append("请携带：" + "；".join(payload["materials"]))
    lines.append(f"预约码：{payload['code']}。如不能前往，请回复“取消预约”。")
    return "\n".join(lines)


def _book(session: Session, openid: str, station_id: int, service_code: str, start: dt.datetime,
          now: dt.datetime, veteran_id: Optional[int], replacing: Optional[Appointment] = None) -> BookingResult:
    if not openid:
        raise ValueError("a booking needs the user's OpenID")
    now = as_utc(now)
    offer = _offer(session, station_id, service_code)
    start = local_time(start)
    start_utc = as_utc(start)

    def result(status: BookingStatus, row: Appointment, **extra) -> BookingResult:
        return BookingResult(status, _view(row, offer.service, offer.station), **extra)

    # A retry of a booking already made gets the same answer, whatever the clock says now.
    held = _held_at(session, openid, offer, start_utc)
    if held is not None:
        return result(BookingStatus.DUPLICATE, held)
    availability = _check(session, offer, start, now, count_seats=False)
    if not availability.ok:
        return BookingResult(BookingStatus.UNAVAILABLE, availability=availability)

    _serialise_user(session, openid, veteran_id)
    slot_id = _slot_row(session, offer, start_utc)  # on SQLite, from here on we hold the write lock
    if replacing is not None and _dialect(session) == "postgresql":
        # Both slot rows in id order, so that two users swapping slots cannot deadlock.
        session.execute(select(Slot.id).where(Slot.id.in_({slot_id, replacing.slot_id}))
                        .order_by(Slot.id).with_for_update())
    held = _held(session, openid, slot_id)
    if held is not None:
        return result(BookingStatus.DUPLICATE, held)
    holding = _open(session, openid, veteran_id, now, exclude=replacing.id if replacing else None)
    if len(holding) >= MAX_OPEN_BOOKINGS:
        return BookingResult(BookingStatus.LIMIT, holding=holding)

    for _attempt in range(3):
        code = new_code()
        try:
            with session.begin_nested():
                taken = session.execute(
                    update(Slot).where(Slot.id == slot_id, Slot.booked < Slot.capacity)
                    .values(booked=Slot.booked + 1),
                    execution_options={"synchronize_session": False},
                ).rowcount
                if taken == 0:
                    full = _check(session, offer, start, now)
                    return BookingResult(BookingStatus.FULL, availability=full)
                session.execute(Appointment.__table__.insert().values(
                    code=code, openid=openid, veteran_id=veteran_id, slot_id=slot_id,
                    station_id=offer.station.id, service_id=offer.service.id, start=start_utc,
                    status="booked", created_at=now,
                ))
        except IntegrityError:
            # Rolled back to the savepoint: the seat is free again. A concurrent double
            # submit that slipped past the checks above lands here on the unique index.
            held = _held(session, openid, slot_id)
            if held is not None:
                log.info("double submit stopped by the unique index")
                return result(BookingStatus.DUPLICATE, held)
            continue  # the code was taken (1 in 10^12): draw another
        view = _view(Appointment(code=code, status="booked", start=start_utc, veteran_id=veteran_id,
                                 created_at=now), offer.service, offer.station)
        _enqueue_reminder(session, openid, view, now)
        log.info("appointment booked", extra={"service": offer.service.code, "station": offer.station.code,
                                              "start": start.isoformat()})
        return BookingResult(BookingStatus.BOOKED, view)
    raise RuntimeError("could not draw an unused appointment code")


def book(session: Session, openid: str, station_id: int, service_code: str, start: dt.datetime,
         now: dt.datetime, veteran_id: Optional[int] = None) -> BookingResult:
    """Book one seat of a slot for this user.

    BOOKED (with the new appointment, and its reminder queued in the outbox),
    DUPLICATE (the user already holds this slot: that appointment, so that a
    WeChat retry or a double tap books nothing more), LIMIT (the user already
    holds MAX_OPEN_BOOKINGS upcoming bookings, counted by OpenID and, when given,
    by veteran), FULL (已约满) or UNAVAILABLE (not a bookable time: see
    ``availability.reason``). ``start`` may be naive (Beijing time) or aware.
    Raises LookupError for an unknown station or service.
    """
    return _book(session, openid, station_id, service_code, start, now, veteran_id)


def _cancel_row(session: Session, appointment: Appointment, now: dt.datetime) -> bool:
    """Cancel a booked appointment and free its seat; False if it was not booked any more."""
    changed = execute_write(
        session,
        update(Appointment).where(Appointment.id == appointment.id, Appointment.status == "booked")
        .values(status="cancelled", cancelled_at=as_utc(now)),
        synchronize_session=False,
    ).rowcount
    if not changed:
        return False
    session.execute(update(Slot).where(Slot.id == appointment.slot_id, Slot.booked > 0)
                    .values(booked=Slot.booked - 1), execution_options={"synchronize_session": False})
    session.execute(delete(Outbox).where(Outbox.ref == _reminder_ref(appointment.code), Outbox.sent_at.is_(None)),
                    execution_options={"synchronize_session": False})
    return True


def cancel(session: Session, openid: str, code: str, now: dt.datetime,
           veteran_id: Optional[int] = None) -> Optional[AppointmentView]:
    """取消预约: frees the seat and drops the pending reminder.

    Returns the appointment as it now stands, or None when this user has no
    appointment with this code. Check ``status``: "cancelled" (now, or already
    before: cancelling twice is harmless); anything else means it could not be
    cancelled because it has begun or is over.
    """
    now = as_utc(now)
    row = _row_by_code(session, openid, code, veteran_id)
    if row is None:
        return None
    if row.status == "booked" and as_utc(row.start) > now:
        _serialise_user(session, openid, veteran_id)
        if _cancel_row(session, row, now):
            log.info("appointment cancelled", extra={"code": row.code})
        session.refresh(row)
    return _view(row, session.get(Service, row.service_id), session.get(Station, row.station_id))


def reschedule(session: Session, openid: str, code: str, new_start: dt.datetime, now: dt.datetime,
               veteran_id: Optional[int] = None) -> BookingResult:
    """改约: the same service at the same station at another time, as one change.

    Books the new slot first (with its own code and reminder) and only then
    cancels the old appointment; if the new slot cannot be had the old one stays
    as it was. NOT_FOUND / NOT_CHANGEABLE when the code is not this user's or is
    no longer upcoming; DUPLICATE (the old appointment) for the same time.
    """
    now = as_utc(now)
    old = _row_by_code(session, openid, code, veteran_id)
    if old is None:
        return BookingResult(BookingStatus.NOT_FOUND)
    service = session.get(Service, old.service_id)
    station = session.get(Station, old.station_id)
    if old.status != "booked" or as_utc(old.start) <= now:
        return BookingResult(BookingStatus.NOT_CHANGEABLE, _view(old, service, station))
    if as_utc(local_time(new_start)) == as_utc(old.start):
        return BookingResult(BookingStatus.DUPLICATE, _view(old, service, station))
    outcome = _book(session, openid, old.station_id, service.code, new_start, now,
                    veteran_id if veteran_id is not None else old.veteran_id, replacing=old)
    if outcome.status is BookingStatus.BOOKED:
        _cancel_row(session, old, now)
        session.refresh(old)
        outcome.replaced = _view(old, service, station)
        log.info("appointment rescheduled", extra={"from": old.code, "to": outcome.appointment.code})
    return outcome


def affected_by_closures(session: Session, now: dt.datetime) -> List[AppointmentView]:
    """Upcoming booked appointments that fall on a day their station is now closed
    (a closure added after they were made): staff should contact these users."""
    candidates = _views(session, and_(Appointment.status == "booked", Appointment.start > as_utc(now)))
    if not candidates:
        return []
    closed = {(c.station_id, c.day) for c in session.execute(select(StationClosure)).scalars()}
    return [v for v in candidates if (v.station_id, v.start.date()) in closed]


# --------------------------------------------------------------------------------------
# The staff console: a station's day, and recording who came (到场登记)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayBooking:
    """One appointment as the console's day view lists it: the veteran's name when
    the booking is bound to one, never an OpenID, ID number or phone number."""

    id: int
    code: str
    status: str
    service_code: str
    service_name: str
    start: dt.datetime  # Beijing time
    end: dt.datetime
    veteran_name: Optional[str]
    marked_at: Optional[dt.datetime]  # Beijing time, when attended / no_show was recorded
    marked_by: Optional[str]  # the staff member's display name

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, self.status)


@dataclass(frozen=True)
class DaySlot:
    """A slot of the day: seats (``booked`` counts every seat taken, whether the person
    has come yet or not; cancelled bookings free theirs) and the bookings in it."""

    start: dt.datetime
    end: dt.datetime
    capacity: int
    booked: int
    bookings: Tuple[DayBooking, ...]
    in_hours: bool = True  # False: a booked slot no longer within the day's hours

    @property
    def free(self) -> int:
        return max(self.capacity - self.booked, 0)


@dataclass(frozen=True)
class ServiceDay:
    service_code: str
    service_name: str
    slot_minutes: int
    capacity: Optional[int]  # seats per slot here; None: no longer offered at this station
    slots: Tuple[DaySlot, ...]


@dataclass(frozen=True)
class DaySchedule:
    """``day_schedule``: a station's slots and bookings on one day."""

    station_id: int
    station_code: str
    station_name: str
    day: dt.date
    periods: Tuple[Period, ...]  # the hours that day; empty when closed
    closed_because: Optional[str]  # "closure", "holiday", "weekly" or "unknown" (not bookable) when closed
    holiday: Optional[str]
    closure: Optional[str]
    makeup: bool  # a 调休 make-up working day
    services: Tuple[ServiceDay, ...]

    @property
    def closed_reason(self) -> str:
        """Why the station does not open that day, in one sentence (empty when open)."""
        if self.closed_because == "closure":
            return f"{format_day(self.day)}{self.station_name}因{self.closure}暂停办公。"
        if self.closed_because == "holiday":
            return f"{format_day(self.day)}是{self.holiday}假期，{self.station_name}不办公。"
        if self.closed_because == "weekly":
            return f"{format_day(self.day)}{self.station_name}不办公。"
        if self.closed_because == "unknown":
            return (f"{full_date(self.day)}（{WEEKDAY_NAMES[self.day.weekday()]}）的节假日安排尚未公布，暂不开放预约。"
                    f"国务院办公厅通知发布后，请在 {holiday_calendar().source} 中填写当年的放假和调休安排；"
                    f"确定当天照常办公的，可以先把这一天列入其中的 open_days。")
        return ""

    @property
    def bookings(self) -> List[DayBooking]:
        return [b for s in self.services for slot in s.slots for b in slot.bookings]


def _day_bounds(day: dt.date) -> Tuple[dt.datetime, dt.datetime]:
    return as_utc(_at(day, dt.time(0))), as_utc(_at(day + dt.timedelta(days=1), dt.time(0)))


def _day_bookings(session: Session, condition) -> List[Tuple[Appointment, DayBooking]]:
    rows = session.execute(
        select(Appointment, Service, Veteran.name, StaffAccount.display_name)
        .join(Service, Service.id == Appointment.service_id)
        .outerjoin(Veteran, Veteran.id == Appointment.veteran_id)
        .outerjoin(StaffAccount, StaffAccount.id == Appointment.marked_by)
        .where(condition).order_by(Appointment.start, Appointment.id)
        .execution_options(populate_existing=True)
    ).all()
    found = []
    for row, service, veteran_name, marked_by in rows:
        start = _local(row.start)
        found.append((row, DayBooking(
            id=row.id, code=row.code, status=row.status, service_code=service.code, service_name=service.name,
            start=start, end=start + dt.timedelta(minutes=service.slot_minutes), veteran_name=veteran_name,
            marked_at=_local(row.marked_at) if row.marked_at else None, marked_by=marked_by,
        )))
    return found


def day_schedule(session: Session, station_id: int, day: dt.date) -> DaySchedule:
    """A station's day for its staff: for each service offered there, every slot of the
    day's hours (free ones too) with its seats, and the bookings made in it, whatever
    their status. A slot booked earlier that the hours no longer hold (a closure added
    since, hours changed) is listed too, with ``in_hours`` False, and so is a service
    no longer offered at the station that still has bookings that day.
    Raises LookupError for an unknown station."""
    station = session.get(Station, station_id)
    if station is None:
        raise LookupError(f"no station with id {station_id}")
    first, last = _day_bounds(day)
    periods = tuple(booking_hours(station, day))
    status = day_status(day)
    closure = closure_on(station, day)
    closed_because = None
    if not periods:
        closed_because = ("closure" if closure is not None else "unknown" if status.kind == "unknown"
                          else "holiday" if status.kind == "holiday" else "weekly")

    offers = {s.id: _offer(session, station_id, s.code) for s in offered_services(session, station_id)}
    slot_rows = session.execute(
        select(Slot).where(Slot.station_id == station_id, Slot.start >= first, Slot.start < last)
    ).scalars().all()
    bookings = _day_bookings(session, and_(Appointment.station_id == station_id,
                                           Appointment.start >= first, Appointment.start < last))
    for service_id in {r.service_id for r in slot_rows} | {row.service_id for row, _ in bookings}:
        if service_id not in offers:
            offers[service_id] = _offer(session, station_id, session.get(Service, service_id).code)

    services = []
    for service_id, offer in sorted(offers.items(), key=lambda item: (item[1].service.position, item[1].service_code)):
        rows = {as_utc(r.start): r for r in slot_rows if r.service_id == service_id}
        grid = {as_utc(s) for s in _grid(offer, day)} if offer.capacity is not None else set()
        by_start: Dict[dt.datetime, List[DayBooking]] = {}
        for row, booking in bookings:
            if row.service_id == service_id:
                by_start.setdefault(as_utc(row.start), []).append(booking)
        slots = []
        for start in sorted(grid | set(rows) | set(by_start)):
            row = rows.get(start)
            local_start = _local(start)
            slots.append(DaySlot(
                start=local_start, end=local_start + offer.length,
                capacity=row.capacity if row is not None else (offer.capacity or 0),
                booked=row.booked if row is not None else 0,
                bookings=tuple(by_start.get(start, ())), in_hours=start in grid,
            ))
        services.append(ServiceDay(offer.service_code, offer.service.name, offer.service.slot_minutes,
                                   offer.capacity, tuple(slots)))
    return DaySchedule(
        station_id=station.id, station_code=station.code, station_name=station.name, day=day, periods=periods,
        closed_because=closed_because, holiday=status.holiday if closed_because == "holiday" else None,
        closure=closure, makeup=status.kind == "makeup", services=tuple(services),
    )


def appointment_station(session: Session, appointment_id: int) -> Optional[int]:
    """The station of an appointment, or None when there is no such appointment."""
    return session.execute(select(Appointment.station_id).where(Appointment.id == appointment_id)).scalar_one_or_none()


def _outside(session: Session, appointment_id: int, scope: Optional[Scope]) -> bool:
    """Whether the appointment lies outside the staff member's ``scope`` (then it is
    NOT_FOUND to them, like one that does not exist)."""
    if scope is None:
        return False
    station_id = appointment_station(session, appointment_id)
    return station_id is None or not scope.station(station_id)


class MarkStatus(enum.Enum):
    DONE = "done"
    NOT_FOUND = "not_found"
    CANCELLED = "cancelled"  # the booking was cancelled: nothing to record
    ALREADY = "already"  # already recorded (attended or no_show), perhaps by a colleague a moment ago
    NOT_YET = "not_yet"  # the appointment's day has not come
    NOT_STARTED = "not_started"  # a no-show before the slot has begun
    NOT_MARKED = "not_marked"  # undo of a booking nothing was recorded for
    TOO_LATE = "too_late"  # undo of a record made on an earlier day
    CONFLICT = "conflict"  # undo impossible: the same user has booked that slot again since


@dataclass(frozen=True)
class MarkResult:
    status: MarkStatus
    booking: Optional[DayBooking] = None  # the appointment as it now stands

    @property
    def ok(self) -> bool:
        return self.status is MarkStatus.DONE

    @property
    def message(self) -> str:
        """What the console says, in Chinese (empty for NOT_FOUND: the page says 404)."""
        b = self.booking
        if b is None:
            return ""
        when = f"{format_day(b.start.date())}{format_clock(b.start)}"
        by = f"（{b.marked_by}，{b.marked_at:%H:%M}登记）" if b.marked_at and b.marked_by else ""
        return {
            MarkStatus.DONE: f"预约{b.code}已登记为“{b.status_name}”。" if b.status != "booked"
            else f"预约{b.code}的登记已撤销，恢复为“已预约”。",
            MarkStatus.CANCELLED: f"预约{b.code}已取消，不能登记到场情况。",
            MarkStatus.ALREADY: f"预约{b.code}已登记为“{b.status_name}”{by}，无需重复登记。如有误，请先撤销。",
            MarkStatus.NOT_YET: f"预约{b.code}的办理时间是{when}，尚未到办理当天，不能登记。",
            MarkStatus.NOT_STARTED: f"预约{b.code}的时段（{when}）尚未开始，不能登记为未到场。",
            MarkStatus.NOT_MARKED: f"预约{b.code}目前为“{b.status_name}”，没有可撤销的登记。",
            MarkStatus.TOO_LATE: f"预约{b.code}的登记不是今天所做，不能撤销。如确需更正，请联系系统管理员。",
            MarkStatus.CONFLICT: f"预约{b.code}的预约人已重新预约了同一时段，不能撤销此登记。",
        }.get(self.status, "")


def _booking(session: Session, appointment_id: int) -> Optional[DayBooking]:
    found = _day_bookings(session, Appointment.id == appointment_id)
    return found[0][1] if found else None


def _mark(session: Session, appointment_id: int, status: str, staff_id: Optional[int],
          now: dt.datetime, scope: Optional[Scope]) -> MarkResult:
    now = as_utc(now)
    booking = None if _outside(session, appointment_id, scope) else _booking(session, appointment_id)
    if booking is None:
        return MarkResult(MarkStatus.NOT_FOUND)
    if booking.status == "cancelled":
        return MarkResult(MarkStatus.CANCELLED, booking)
    if booking.status != "booked":
        return MarkResult(MarkStatus.ALREADY, booking)
    if booking.start.date() > local_time(now).date():
        return MarkResult(MarkStatus.NOT_YET, booking)
    if status == "no_show" and booking.start > now:
        return MarkResult(MarkStatus.NOT_STARTED, booking)
    # Guarded: of two staff recording the same booking at once, or a user cancelling
    # while staff record it, exactly one change happens; the other sees what it was.
    changed = execute_write(
        session,
        update(Appointment).where(Appointment.id == appointment_id, Appointment.status == "booked")
        .values(status=status, marked_at=now, marked_by=staff_id),
        synchronize_session=False,
    ).rowcount
    booking = _booking(session, appointment_id)
    if not changed:
        return MarkResult(MarkStatus.CANCELLED if booking.status == "cancelled" else MarkStatus.ALREADY, booking)
    log.info("appointment marked", extra={"code": booking.code, "status": status})
    return MarkResult(MarkStatus.DONE, booking)


def mark_attended(session: Session, appointment_id: int, staff_id: Optional[int], now: dt.datetime,
                  scope: Optional[Scope] = None) -> MarkResult:
    """已办理: the person came. Only a booking still 'booked' whose day has come (someone
    early for a later slot the same day may be received). With the staff member's
    ``scope``, only an appointment of their area (else NOT_FOUND), here and below."""
    return _mark(session, appointment_id, "attended", staff_id, now, scope)


def mark_no_show(session: Session, appointment_id: int, staff_id: Optional[int], now: dt.datetime,
                 scope: Optional[Scope] = None) -> MarkResult:
    """未到场: the person did not come. Only a booking still 'booked' whose slot has begun.
    The seat stays counted: the slot's time is gone."""
    return _mark(session, appointment_id, "no_show", staff_id, now, scope)


def undo_mark(session: Session, appointment_id: int, now: dt.datetime, scope: Optional[Scope] = None) -> MarkResult:
    """Undo a record of attended / no_show made by mistake, back to 'booked': only on
    the day (Beijing time) it was made."""
    now = as_utc(now)
    booking = None if _outside(session, appointment_id, scope) else _booking(session, appointment_id)
    if booking is None:
        return MarkResult(MarkStatus.NOT_FOUND)
    if booking.status not in ("attended", "no_show"):
        return MarkResult(MarkStatus.NOT_MARKED, booking)
    if booking.marked_at is None or booking.marked_at.date() != local_time(now).date():
        return MarkResult(MarkStatus.TOO_LATE, booking)
    try:
        with session.begin_nested():
            changed = execute_write(
                session,
                update(Appointment).where(Appointment.id == appointment_id, Appointment.status == booking.status)
                .values(status="booked", marked_at=None, marked_by=None),
                synchronize_session=False,
            ).rowcount
    except IntegrityError:
        return MarkResult(MarkStatus.CONFLICT, booking)
    now_booking = _booking(session, appointment_id)
    if not changed:
        return MarkResult(MarkStatus.NOT_MARKED if now_booking.status == "booked" else MarkStatus.ALREADY,
                          now_booking)
    log.info("appointment mark undone", extra={"code": now_booking.code})
    return MarkResult(MarkStatus.DONE, now_booking)


# --------------------------------------------------------------------------------------
# Unfollow
# --------------------------------------------------------------------------------------


def erase_appointment_data(session: Session, openid: str, now: dt.datetime) -> None:
    """On unfollow: cancel this OpenID's upcoming bookings (their seats free up), delete
    its outbox messages, and cut the link to the person on every appointment it made:
    the rows stay, without OpenID and veteran, for the statistics."""
    now = as_utc(now)
    _serialise_user(session, openid, None)
    rows = session.execute(
        select(Appointment).where(Appointment.openid == openid, Appointment.status == "booked",
                                  Appointment.start > now).order_by(Appointment.slot_id)
    ).scalars().all()
    for row in rows:
        _cancel_row(session, row, now)
    execute_write(session, delete(Outbox).where(Outbox.openid == openid), synchronize_session=False)
    session.execute(update(Appointment).where(Appointment.openid == openid).values(openid=None, veteran_id=None),
                    execution_options={"synchronize_session": False})


# --------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------

STATUS_NAMES = {"booked": "已预约", "cancelled": "已取消", "attended": "已办理", "no_show": "未到场"}


def _summary(service_name_: str, station_name: str, address: str, start: dt.datetime, end: dt.datetime,
             materials: Sequence[str]) -> List[str]:
    lines = [f"服务：{service_name_}", f"地点：{station_name}（{address}）", f"时间：{format_slot(start, end)}"]
    if len(materials) == 1:
        lines.append(f"请携带：{materials[0]}")
    elif materials:
        # Bullets, not numbers: the summary ends in a numbered question (确认/不了) and
        # "我的预约" numbers the bookings; a second numbered list would make "1" ambiguous.
        lines.append("请携带：")
        lines += [f"· {item}" for item in materials]
    return lines


def describe_appointment(view: AppointmentView) -> str:
    """The summary sent after booking and on "我的预约"."""
    lines = _summary(view.service_name, view.station_name, view.station_address, view.start, view.end,
                     view.materials)
    if view.status != "booked":
        lines[0] += f"（{STATUS_NAMES.get(view.status, view.status)}）"
    lines.append(f"预约码：{view.code}")
    lines.append(f"咨询电话：{view.station_phone}")
    if view.note and view.status == "booked":
        lines.append(f"温馨提示：{view.note}")
    return "\n".join(lines)


def describe_request(session: Session, station_id: int, service_code: str, start: dt.datetime) -> str:
    """The summary to confirm before booking: the same lines, without a code yet."""
    offer = _offer(session, station_id, service_code)
    start = local_time(start)
    return "\n".join(_summary(offer.service.name, offer.station.name, offer.station.address, start,
                              start + offer.length, offer.service.materials or ()))


def short_description(view: AppointmentView) -> str:
    """One line, for lists and buttons: ``12月3日（周四）9:00 退役报到（嘉定区退役军人服务中心）``."""
    return f"{format_slot(view.start)} {view.service_name}（{view.station_name}）"


def booking_reply(result: BookingResult, service_phone: Optional[str] = None) -> str:
    """What the chat says after ``book`` or ``reschedule``."""
    status, view = result.status, result.appointment
    help_line = f"如有疑问，请致电{service_phone}。" if service_phone else ""
    if status is BookingStatus.BOOKED:
        head = (f"改约成功！原预约（{result.replaced.code}）已取消，新的预约如下：" if result.replaced
                else "预约成功！")
        return "\n".join([head, describe_appointment(view), "如需取消或改约，直接告诉我就可以。"])
    if status is BookingStatus.DUPLICATE:
        return "您已经预约了这个时段，不用重复预约：\n" + describe_appointment(view)
    if status is BookingStatus.LIMIT:
        held = "\n".join(f"{n}. {short_description(v)}" for n, v in enumerate(result.holding, start=1))
        return (f"您已有{len(result.holding)}个还未办理的预约，最多可同时保留{MAX_OPEN_BOOKINGS}个。"
                f"请先办理或取消其中一个再预约：\n{held}")
    if status is BookingStatus.FULL:
        when = format_slot(result.availability.start) if result.availability else "这个时段"
        return f"很抱歉，{when}的名额刚刚约满了，请换一个时间。{help_line}".strip()
    if status is BookingStatus.UNAVAILABLE:
        why = explain(result.availability) if result.availability else ""
        return f"{why}请换一个时间。".strip()
    if status is BookingStatus.NOT_FOUND:
        return f"没有找到这个预约，请核对预约码。{help_line}".strip()
    if status is BookingStatus.NOT_CHANGEABLE:
        return f"这个预约已取消或已过预约时间，不能再改约。{help_line}".strip()
    return status.label
