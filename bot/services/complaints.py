"""信访/投诉: the complaint and petition register (一案一册) and its handling workflow.

Every matter a user raises becomes one case with a number such as
``TS20261122-0007`` (the day of registration in Beijing time and that day's
sequence, given out by an atomic upsert of a per-day counter row, so that
concurrent registrations never share a number). A case moves through the states
of ``TRANSITIONS``: 登记 → 分类指导 (受理, routed to a department or station) →
承办 → 答复 → 回访 → 办结, with 不予受理 straight from registration and a
不满意 rating sending it back to 承办. Each state has a deadline from
data/complaints.yml (defaults from 《信访工作条例》, see that file), counted in
calendar or working days (``chinese_calendar``: statutory holidays and 调休).

Each step writes a ``CaseEvent``: the history is append-only, nothing here
updates or deletes it. Messages to the user (登记告知, 答复, 不予受理, 回访)
go through the outbox in the same transaction, unless the user chose to stay
anonymous. The case phone is stored as bot.pii stores numbers (keyed hash,
AES-GCM, masked), and personal numbers typed into the text are redacted.

The chat (actions/) and the staff console both call these functions; the caller
owns the transaction (``session_scope``). Every function takes ``now`` so that
tests control time; times are UTC in the database, Beijing time in views.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

import chinese_calendar
import yaml
from sqlalchemy import and_, delete, false, func, or_, select, update
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, local_time
from bot.db.models import (
    COMPLAINT_CATEGORIES,
    COMPLAINT_RATINGS,
    COMPLAINT_STATES,
    REPLY_CHANNELS,
    CaseEvent,
    ComplaintCase,
    ComplaintCounter,
    Outbox,
    Station,
    Veteran,
)
from bot.db.session import as_utc, dialect_insert, execute_write
from bot.pii import CASE_PHONE, VETERAN_PHONE, PiiVault, normalize_phone
from bot.redaction import redact
from bot.services.datafile import DataFileError
from bot.services.scope import Scope
from bot.settings import PROJECT_ROOT
from bot.text import normalize

log = logging.getLogger(__name__)

RULES_FILE = PROJECT_ROOT / "data" / "complaints.yml"
CASE_PREFIX = "TS"  # 投诉/信访
MAX_TEXT = 5000  # characters of a description or an addition
DUPLICATE_WINDOW = dt.timedelta(hours=24)
URGENT_PRIORITY, NORMAL_PRIORITY = 1, 3
ATTACHMENT_TYPES = ("image", "voice", "video", "file")  # WeChat message types carrying a media_id

STATE_NAMES = {
    "registered": "已登记", "classified": "已受理转办", "in_progress": "承办中",
    "answered": "已答复", "follow_up": "回访中", "closed": "已办结",
}
OPEN_STATES = tuple(s for s in COMPLAINT_STATES if s != "closed")

# The actions, by name as the register and the console show them.
REGISTER, CLASSIFY, HANDLE, ANSWER, FOLLOW_UP, CLOSE, REJECT, REOPEN = (
    "登记", "分类指导", "承办", "答复", "回访", "办结", "不予受理", "重新办理")

# state → {allowed next state: the action that leads there}. Nothing else is allowed.
TRANSITIONS: Dict[str, Dict[str, str]] = {
    "registered": {"classified": CLASSIFY, "closed": REJECT},
    "classified": {"in_progress": HANDLE},
    "in_progress": {"answered": ANSWER},
    "answered": {"follow_up": FOLLOW_UP},
    "follow_up": {"closed": CLOSE, "in_progress": REOPEN},
    "closed": {},
}

ACCEPTED_KIND = "complaint_accepted"
ANSWER_KIND = "complaint_answer"
REJECTED_KIND = "complaint_rejected"
FOLLOW_UP_KIND = "complaint_follow_up"
OUTBOX_KINDS = (ACCEPTED_KIND, ANSWER_KIND, REJECTED_KIND, FOLLOW_UP_KIND)


class ComplaintError(ValueError):
    """A request the register refuses; ``str(error)`` is Chinese, fit to show the user."""


class InvalidTransition(ComplaintError):
    """The case's state does not allow this step."""


class CaseClosed(ComplaintError):
    """The case is closed (办结): nothing can be added to it."""


class ComplaintDataError(DataFileError):
    """data/complaints.yml is wrong; ``problems`` lists every mistake, one per line."""


# --------------------------------------------------------------------------------------
# data/complaints.yml
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    days: int
    working_days: bool
    counted_from: str = "state_entry"  # or "accepted": from the day the case was 受理


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    keywords: Tuple[str, ...]


@dataclass(frozen=True)
class ComplaintRules:
    deadlines: Mapping[str, Deadline]  # every open state
    categories: Tuple[Category, ...]
    urgent_keywords: Tuple[str, ...]
    # Insults: taken calmly, never quoted back to the user (the case is still taken).
    abusive_words: Tuple[str, ...] = ()

    @property
    def category_names(self) -> Tuple[str, ...]:
        return tuple(c.name for c in self.categories)


def _keywords(value: object, where: str, problems: List[str]) -> Tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(k, (str, int)) and str(k).strip() for k in value):
        problems.append(f"{where}: must be a list of words, e.g. [抚恤金, 没发]")
        return ()
    return tuple(dict.fromkeys(_for_matching(str(k)) for k in value))


def parse_rules(data: object, source: str = "complaints file") -> ComplaintRules:
    problems: List[str] = []
    if not isinstance(data, Mapping):
        raise ComplaintDataError(source, ["the file must contain deadlines:, categories: and urgent_keywords:"])
    for key in data:
        if key not in ("deadlines", "categories", "urgent_keywords", "abusive_words"):
            problems.append(f"{key}: unknown section (misspelt?)")

    deadlines: Dict[str, Deadline] = {}
    raw_deadlines = data.get("deadlines")
    if not isinstance(raw_deadlines, Mapping):
        problems.append("deadlines: must map each state to its days, e.g. registered: {days: 15, working_days: false}")
        raw_deadlines = {}
    for state in raw_deadlines:
        if state not in OPEN_STATES:
            problems.append(f"deadlines: {state}: not a state with a deadline ({', '.join(OPEN_STATES)})")
    for state in OPEN_STATES:
        raw = raw_deadlines.get(state)
        if raw is None:
            problems.append(f"deadlines: {state}: missing")
            continue
        if not isinstance(raw, Mapping):
            problems.append(f"deadlines: {state}: must give days: and working_days:")
            continue
        for key in raw:
            if key not in ("days", "working_days", "counted_from"):
                problems.append(f"deadlines: {state}: {key}: unknown field (misspelt?)")
        days, working = raw.get("days"), raw.get("working_days")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
            problems.append(f"deadlines: {state}: days: {days!r} must be a whole number from 1 to 366")
            continue
        if not isinstance(working, bool):
            problems.append(f"deadlines: {state}: working_days: must be true (工作日) or false (日)")
            continue
        counted_from = raw.get("counted_from", "state_entry")
        if counted_from not in ("state_entry", "accepted"):
            problems.append(f"deadlines: {state}: counted_from: must be state_entry or accepted")
            continue
        deadlines[state] = Deadline(days, working, counted_from)

    categories: List[Category] = []
    raw_categories = data.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        problems.append("categories: must be a list of categories")
        raw_categories = []
    for position, raw in enumerate(raw_categories, start=1):
        if not isinstance(raw, Mapping):
            problems.append(f"category #{position}: must be a mapping with name:, description:, keywords:")
            continue
        name = raw.get("name")
        where = f"category {name}" if name else f"category #{position}"
        for key in raw:
            if key not in ("name", "description", "keywords"):
                problems.append(f"{where}: {key}: unknown field (misspelt?)")
        if name not in COMPLAINT_CATEGORIES:
            problems.append(f"{where}: name: must be one of {'、'.join(COMPLAINT_CATEGORIES)} "
                            "(a new category needs a database migration)")
            continue
        if name in (c.name for c in categories):
            problems.append(f"{where}: listed twice")
            continue
        description = raw.get("description")
        if not isinstance(description, str) or not description.strip():
            problems.append(f"{where}: description: missing")
            description = ""
        categories.append(Category(name, description.strip(), _keywords(raw.get("keywords"), where, problems)))
    missing = [c for c in COMPLAINT_CATEGORIES if c not in (k.name for k in categories)]
    if raw_categories and missing:
        problems.append(f"categories: missing {'、'.join(missing)}")

    urgent = _keywords(data.get("urgent_keywords"), "urgent_keywords", problems)
    if not urgent:
        problems.append("urgent_keywords: must list at least one word")
    abusive = _keywords(data.get("abusive_words"), "abusive_words", problems)
    if problems:
        raise ComplaintDataError(source, problems)
    return ComplaintRules(deadlines, tuple(categories), urgent, abusive)


def load_rules(path: Union[str, Path] = RULES_FILE) -> ComplaintRules:
    """Read and check data/complaints.yml (or another file in the same format)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ComplaintDataError(str(path), [f"not valid YAML: {error}"]) from error
    return parse_rules(data, str(path))


@lru_cache(maxsize=1)
def default_rules() -> ComplaintRules:
    return load_rules(RULES_FILE)


# --------------------------------------------------------------------------------------
# Working days and deadlines
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _warn_unknown_year(year: int) -> None:
    log.warning("no holiday schedule for this year; counting Monday to Friday", extra={"year": year})


def is_working_day(day: dt.date) -> bool:
    """工作日: not a statutory holiday or weekend, or a 调休 make-up Saturday/Sunday."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        # chinesecalendar knows the State Council's schedule only up to its release year.
        _warn_unknown_year(day.year)
        return day.weekday() < 5


def add_working_days(day: dt.date, n: int) -> dt.date:
    """The n-th working day after ``day`` (``day`` itself not counted); ``day`` for n = 0."""
    if n < 0:
        raise ValueError("n must not be negative")
    while n > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            n -= 1
    return day


def period_end(day: dt.date, days: int, working_days: bool) -> dt.date:
    """The last day of a period of ``days`` starting the day after ``day``.

    Calendar days (日): when the last day is a rest day the period ends on the next
    working day, as statutory periods are usually counted (民法典第二百零三条; not in
    policy-facts.md, so unconfirmed for 信访 — the bureau should confirm).
    """
    if working_days:
        return add_working_days(day, days)
    last = day + dt.timedelta(days=days)
    while not is_working_day(last):
        last += dt.timedelta(days=1)
    return last


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=SHANGHAI).astimezone(dt.timezone.utc)


def _due(state: str, entered: dt.datetime, accepted_at: Optional[dt.datetime], rules: ComplaintRules
         ) -> Optional[dt.datetime]:
    """The deadline of ``state`` (23:59:59 Beijing time of its last day), entered at ``entered``."""
    rule = rules.deadlines.get(state)
    if rule is None:
        return None
    start = accepted_at if rule.counted_from == "accepted" and accepted_at is not None else entered
    return _end_of(period_end(local_time(as_utc(start)).date(), rule.days, rule.working_days))


# --------------------------------------------------------------------------------------
# Recognising the category and urgency
# --------------------------------------------------------------------------------------


def _for_matching(text: str) -> str:
    return re.sub(r"\s+", "", normalize(text))


def recognise_category(text: str, rules: Optional[ComplaintRules] = None) -> Optional[str]:
    """The category whose keywords found in ``text`` are longest in total (a longer word is
    more specific: 拖欠工资 outweighs 拖欠), the earlier in the file on a tie; None if none."""
    rules = rules or default_rules()
    plain = _for_matching(text or "")
    best, best_hits = None, 0
    for category in rules.categories:
        hits = sum(len(word) for word in category.keywords if word in plain)
        if hits > best_hits:
            best, best_hits = category.name, hits
    return best


def is_urgent(text: str, rules: Optional[ComplaintRules] = None) -> bool:
    """Whether ``text`` names a risk to life or a mass incident (urgent_keywords)."""
    rules = rules or default_rules()
    plain = _for_matching(text or "")
    return any(word in plain for word in rules.urgent_keywords)


def is_abusive(text: str, rules: Optional[ComplaintRules] = None) -> bool:
    """Whether ``text`` holds an insult (abusive_words): not to be quoted back."""
    rules = rules or default_rules()
    plain = _for_matching(text or "")
    return any(word in plain for word in rules.abusive_words)


# --------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------



def _local(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    return None if value is None else as_utc(value).astimezone(SHANGHAI)


@dataclass(frozen=True)
class CaseView:
    """A case as the chat and the console show it (no OpenID, no phone number in clear)."""

    id: int
    case_number: str
    state: str
    category: str
    description: str
    place: Optional[str]
    station_id: Optional[int]
    reply_channel: str
    phone_masked: Optional[str]
    urgent: bool
    priority: int
    assigned_to: Optional[str]
    assigned_station_id: Optional[int]
    answer_text: Optional[str]  # the answer; for 不予受理, the reason
    rating: Optional[str]
    reopened: int
    veteran_id: Optional[int]
    created_at: dt.datetime  # Beijing time, like every time here
    accepted_at: Optional[dt.datetime]
    state_changed_at: dt.datetime
    due_at: Optional[dt.datetime]
    closed_at: Optional[dt.datetime]
    reply_by: Optional[dt.date]  # when the user can expect the decision or the answer
    is_overdue: bool
    rejected: bool  # closed by 不予受理

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    @property
    def due_on(self) -> Optional[dt.date]:
        return None if self.due_at is None else self.due_at.date()


@dataclass(frozen=True)
class EventView:
    kind: str
    from_state: Optional[str]
    to_state: Optional[str]
    action: Optional[str]
    actor: str
    note: Optional[str]
    happened_at: dt.datetime  # Beijing time


def _view(row: ComplaintCase, now: dt.datetime, rules: ComplaintRules) -> CaseView:
    due_at = _local(row.due_at)
    reply_by = None
    if row.state in ("registered", "in_progress") and due_at is not None:
        reply_by = due_at.date()
    elif row.state == "classified":
        answer_due = _due("in_progress", row.state_changed_at, row.accepted_at, rules)
        reply_by = _local(answer_due).date() if answer_due else None
    return CaseView(
        id=row.id, case_number=row.case_number, state=row.state, category=row.category,
        description=row.description, place=row.place, station_id=row.station_id,
        reply_channel=row.reply_channel, phone_masked=row.phone_masked, urgent=bool(row.urgent),
        priority=row.priority, assigned_to=row.assigned_to, assigned_station_id=row.assigned_station_id,
        answer_text=row.answer_text, rating=row.rating, reopened=row.reopened, veteran_id=row.veteran_id,
        created_at=_local(row.created_at), accepted_at=_local(row.accepted_at),
        state_changed_at=_local(row.state_changed_at), due_at=due_at, closed_at=_local(row.closed_at),
        reply_by=reply_by, is_overdue=row.state != "closed" and row.due_at is not None and as_utc(row.due_at) < as_utc(now),
        rejected=row.state == "closed" and row.accepted_at is None,
    )


def normalize_case_number(raw: str) -> Optional[str]:
    """``ts20261122-7``, ``TS 20261122 0007``, full-width … → ``TS20261122-0007``; None if not one."""
    text_ = re.sub(r"[\s\-_—－]", "", unicodedata.normalize("NFKC", raw or "")).upper()
    match = re.fullmatch(rf"{CASE_PREFIX}(\d{{8}})(\d{{1,6}})", text_)
    if not match:
        return None
    return format_case_number(match.group(1), int(match.group(2)))


def format_case_number(day: Union[dt.date, str], sequence: int) -> str:
    day = day.strftime("%Y%m%d") if isinstance(day, dt.date) else day
    return f"{CASE_PREFIX}{day}-{sequence:04d}"


def _whose(openid: Optional[str], veteran_id: Optional[int]):
    """This user's cases: by OpenID and, when given, by the bound veteran. A blank
    OpenID (the user unfollowed) matches nothing."""
    conditions = []
    if openid:
        conditions.append(ComplaintCase.openid == openid)
    if veteran_id is not None:
        conditions.append(ComplaintCase.veteran_id == veteran_id)
    return or_(*conditions) if conditions else false()


def _fresh(statement):
    return statement.execution_options(populate_existing=True)


def _row(session: Session, case_id: int) -> ComplaintCase:
    row = session.execute(_fresh(select(ComplaintCase).where(ComplaintCase.id == case_id))).scalar_one_or_none()
    if row is None:
        raise LookupError(f"no complaint case {case_id}")
    return row


def _row_for_user(session: Session, case_number: str, openid: str, veteran_id: Optional[int]
                  ) -> Optional[ComplaintCase]:
    number = normalize_case_number(case_number)
    if number is None:
        return None
    return session.execute(_fresh(select(ComplaintCase).where(
        ComplaintCase.case_number == number, _whose(openid, veteran_id)))).scalar_one_or_none()


def _now(now: Optional[dt.datetime]) -> dt.datetime:
    return as_utc(now) if now is not None else dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------------------------
# Registering
# --------------------------------------------------------------------------------------



def _next_number(session: Session, day: dt.date) -> str:
    """The day's next case number. One upsert raises the counter atomically: on PostgreSQL
    the row lock makes a concurrent registration wait until this transaction ends, on
    SQLite the single write lock does; a rolled-back registration gives its number back."""
    statement = dialect_insert(session, ComplaintCounter).values(day=day, last_number=1)
    statement = statement.on_conflict_do_update(
        index_elements=[ComplaintCounter.day], set_={"last_number": ComplaintCounter.last_number + 1})
    execute_write(session, statement)
    sequence = session.execute(
        select(ComplaintCounter.last_number).where(ComplaintCounter.day == day)).scalar_one()
    return format_case_number(day, sequence)


def _clean_text(text_: Optional[str], what: str, required: bool = True) -> Optional[str]:
    cleaned = redact((text_ or "").strip()).text.strip()
    if not cleaned:
        if required:
            raise ComplaintError(f"请说一下{what}。")
        return None
    if len(cleaned) > MAX_TEXT:
        raise ComplaintError(f"{what}太长了，请控制在{MAX_TEXT}字以内，可以分几次补充。")
    return cleaned


def _event(session: Session, case_id: int, kind: str, actor: str, now: dt.datetime, note: Optional[str] = None,
           from_state: Optional[str] = None, to_state: Optional[str] = None, action: Optional[str] = None) -> None:
    session.add(CaseEvent(case_id=case_id, kind=kind, from_state=from_state, to_state=to_state, action=action,
                          actor=actor[:50], note=note, happened_at=now))
    session.flush()


def register(session: Session, vault: PiiVault, openid: Optional[str], veteran_id: Optional[int],
             category: Optional[str], description: str, place: Optional[str], station_id: Optional[int],
             reply_channel: str, case_phone: Optional[str], urgent: bool, now: dt.datetime,
             *, rules: Optional[ComplaintRules] = None, actor: str = "user") -> CaseView:
    """登记: a new case, its first history row, and the 登记告知 in the outbox (unless anonymous).

    ``category`` None: recognised from the description (其他 if nothing matches).
    ``reply_channel``: bound_phone (the bound veteran's phone on the roster; needs
    ``veteran_id``), case_phone (``case_phone``, stored as bot.pii protects a phone
    bound to the case number; a contact draft from chat is opened first), wechat (answered in
    WeChat only, no phone) or anonymous (no messages, and no link to the veteran; the
    OpenID stays so that the user can follow the case in chat). Urgent when ``urgent`` or the description names an urgency
    keyword; urgent cases get priority 1. Raises ComplaintError (a Chinese message)
    for a missing description, an unknown category or channel, or a wrong phone.
    """
    rules = rules or default_rules()
    now = as_utc(now)
    description = _clean_text(description, "您要反映的问题")
    place = _clean_text(place, "地点", required=False)
    if category is None:
        category = recognise_category(description, rules) or "其他"
    if category not in rules.category_names:
        raise ComplaintError(f"问题类别只能是{'、'.join(rules.category_names)}之一。")
    if reply_channel not in REPLY_CHANNELS:
        raise ComplaintError("请选择答复方式：已绑定的手机号、另留电话、微信答复或匿名。")
    phone = None
    if reply_channel == "case_phone":
        phone = normalize_phone(case_phone or "")
        if not (7 <= len(phone) <= 12):
            raise ComplaintError("请留一个能联系到您的电话号码（手机或座机）。")
    elif case_phone:
        raise ComplaintError("只有选择“另留电话”时才需要留电话。")
    if reply_channel == "bound_phone" and veteran_id is None:
        raise ComplaintError("您还没有绑定身份，不能用绑定的手机号接收答复；可以另留电话或选择匿名。")
    if reply_channel == "anonymous":
        veteran_id = None
    if station_id is not None and session.get(Station, station_id) is None:
        raise LookupError(f"no station {station_id}")
    urgent = bool(urgent) or is_urgent(description, rules)

    # The counter upsert is this transaction's first write (on SQLite it waits for the lock).
    number = _next_number(session, local_time(now).date())
    protected = vault.protect_phone(phone, CASE_PHONE, number) if phone else None
    row = ComplaintCase(
        case_number=number, openid=openid or None, veteran_id=veteran_id, category=category,
        description=description, place=place, station_id=station_id, reply_channel=reply_channel,
        phone_hash=protected.lookup if protected else None, phone_cipher=protected.cipher if protected else None,
        phone_masked=protected.masked if protected else None, urgent=urgent,
        priority=URGENT_PRIORITY if urgent else NORMAL_PRIORITY, state="registered", reopened=0,
        state_changed_at=now, due_at=_due("registered", now, None, rules), created_at=now, updated_at=now,
    )
    session.add(row)
    session.flush()
    _event(session, row.id, "transition", actor, now, to_state="registered", action=REGISTER,
           note="紧急" if urgent else None)
    view = _view(row, now, rules)
    _notify(session, row, ACCEPTED_KIND, now, {"due": view.reply_by.isoformat()})
    log.info("complaint registered", extra={"case": number, "category": category, "urgent": urgent})
    return view


# --------------------------------------------------------------------------------------
# The workflow
# --------------------------------------------------------------------------------------


def _check(case: ComplaintCase, to_state: str, action: str) -> None:
    allowed = TRANSITIONS[case.state]
    if to_state not in allowed:
        raise InvalidTransition(
            f"当前状态“{STATE_NAMES[case.state]}”不能直接转为“{STATE_NAMES[to_state]}”（案件{case.case_number}）。")
    if allowed[to_state] != action:
        raise InvalidTransition(
            f"当前状态“{STATE_NAMES[case.state]}”只能通过“{allowed[to_state]}”转为“{STATE_NAMES[to_state]}”，"
            f"不能“{action}”（案件{case.case_number}）。")


def _transition(session: Session, row: ComplaintCase, to_state: str, action: str, actor: str, now: dt.datetime,
                rules: ComplaintRules, note: Optional[str] = None, **values) -> ComplaintCase:
    """Move one case along ``TRANSITIONS`` and write its history row.

    The UPDATE is guarded by the state read, so two staff members acting on the same
    case at once cannot both move it: the second gets InvalidTransition."""
    now = as_utc(now)
    _check(row, to_state, action)
    accepted_at = values.get("accepted_at", row.accepted_at)
    anchor_accepted = None if action == REOPEN else accepted_at  # a reopened case counts anew
    changes = dict(state=to_state, state_changed_at=now, updated_at=now,
                   due_at=_due(to_state, now, anchor_accepted, rules),
                   closed_at=now if to_state == "closed" else None, **values)
    changed = execute_write(
        session,
        update(ComplaintCase).where(ComplaintCase.id == row.id, ComplaintCase.state == row.state).values(**changes),
        synchronize_session=False,
    ).rowcount
    if not changed:
        row = _row(session, row.id)
        _check(row, to_state, action)  # raises: someone moved it first
        raise InvalidTransition(f"案件{row.case_number}刚刚被其他人处理过，请刷新后再试。")
    _event(session, row.id, "transition", actor, now, note=note, from_state=row.state, to_state=to_state,
           action=action)
    log.info("complaint moved", extra={"case": row.case_number, "from": row.state, "to": to_state})
    return _row(session, row.id)


def classify(session: Session, case_id: int, actor: str, category: str, assigned_to: Optional[str],
             station_id: Optional[int] = None, note: Optional[str] = None, *, now: dt.datetime,
             priority: Optional[int] = None, rules: Optional[ComplaintRules] = None,
             scope: Optional[Scope] = None) -> CaseView:
    """分类指导: accept (受理) the case, confirm or change its category and route it to a
    department or a station (``station_id``; its name is ``assigned_to`` when that is not given).
    With the staff member's ``scope``, only to a station of their area."""
    rules = rules or default_rules()
    if category not in rules.category_names:
        raise ComplaintError(f"问题类别只能是{'、'.join(rules.category_names)}之一。")
    if station_id is not None and scope is not None and not scope.station(station_id):
        raise ComplaintError("请从列表中选择承办服务站。")
    if station_id is not None:
        station = session.get(Station, station_id)
        if station is None:
            raise LookupError(f"no station {station_id}")
        assigned_to = assigned_to or station.name
    if not assigned_to or not assigned_to.strip():
        raise ComplaintError("请指定承办部门或服务站。")
    if priority is not None and priority not in (1, 2, 3):
        raise ComplaintError("优先级只能是1（最高）、2或3（一般）。")
    row = _row(session, case_id)
    values = dict(category=category, assigned_to=assigned_to.strip()[:100], assigned_station_id=station_id,
                  accepted_at=as_utc(now))
    if priority is not None:
        values["priority"] = priority
    changed = f"类别由“{row.category}”改为“{category}”；" if category != row.category else ""
    text_ = f"{changed}转{values['assigned_to']}办理" + (f"。{note}" if note else "")
    row = _transition(session, row, "classified", CLASSIFY, actor, now, rules, note=text_, **values)
    return _view(row, as_utc(now), rules)


def start_handling(session: Session, case_id: int, actor: str, note: Optional[str] = None, *,
                   now: dt.datetime, rules: Optional[ComplaintRules] = None) -> CaseView:
    """承办: the assigned unit takes the case up; the answer is due 60日 from acceptance."""
    rules = rules or default_rules()
    row = _transition(session, _row(session, case_id), "in_progress", HANDLE, actor, now, rules, note=note)
    return _view(row, as_utc(now), rules)


def answer(session: Session, case_id: int, actor: str, answer_text: str, note: Optional[str] = None, *,
           now: dt.datetime, rules: Optional[ComplaintRules] = None) -> CaseView:
    """答复: the handling result; sent to the user through the outbox unless anonymous."""
    rules = rules or default_rules()
    text_ = (answer_text or "").strip()
    if not text_:
        raise ComplaintError("答复内容不能为空。")
    row = _transition(session, _row(session, case_id), "answered", ANSWER, actor, now, rules, note=note,
                      answer_text=text_)
    _notify(session, row, ANSWER_KIND, as_utc(now), {"answer": text_, "assigned_to": row.assigned_to})
    return _view(row, as_utc(now), rules)


def start_follow_up(session: Session, case_id: int, actor: str, note: Optional[str] = None, *,
                    now: dt.datetime, rules: Optional[ComplaintRules] = None) -> CaseView:
    """回访: ask the user to rate the handling (through the outbox unless anonymous)."""
    rules = rules or default_rules()
    row = _transition(session, _row(session, case_id), "follow_up", FOLLOW_UP, actor, now, rules, note=note)
    view = _view(row, as_utc(now), rules)
    _notify(session, row, FOLLOW_UP_KIND, as_utc(now), {"until": view.due_on.isoformat()})
    return view


def close(session: Session, case_id: int, actor: str, note: Optional[str] = None, *,
          now: dt.datetime, rules: Optional[ComplaintRules] = None) -> CaseView:
    """办结 by staff, from 回访 (e.g. the user gave no rating within the window)."""
    rules = rules or default_rules()
    row = _transition(session, _row(session, case_id), "closed", CLOSE, actor, now, rules, note=note)
    return _view(row, as_utc(now), rules)


def reject(session: Session, case_id: int, actor: str, reason: str, *, now: dt.datetime,
           rules: Optional[ComplaintRules] = None) -> CaseView:
    """不予受理: close a registered case; the user is told why (outbox, unless anonymous)."""
    rules = rules or default_rules()
    reason = (reason or "").strip()
    if not reason:
        raise ComplaintError("不予受理须说明理由，理由会告知反映人。")
    row = _transition(session, _row(session, case_id), "closed", REJECT, actor, now, rules, note=reason,
                      answer_text=reason)
    _notify(session, row, REJECTED_KIND, as_utc(now), {"reason": reason})
    return _view(row, as_utc(now), rules)


def rate(session: Session, case_number: str, openid: str, rating: str, now: dt.datetime,
         veteran_id: Optional[int] = None, *, comment: Optional[str] = None,
         rules: Optional[ComplaintRules] = None) -> Optional[CaseView]:
    """The user's rating from chat, on their own case once it is answered.

    满意 / 基本满意 close the case (办结); 不满意 reopens it (重新办理, back to 承办,
    counted in ``reopened``). None when the number is not this user's. Raises
    InvalidTransition (a Chinese message for the user) before the answer or after 办结,
    ComplaintError for a rating that is not one of the three.
    """
    rules = rules or default_rules()
    now = as_utc(now)
    row = _row_for_user(session, case_number, openid, veteran_id)
    if row is None:
        return None
    rating = (rating or "").strip()
    if rating not in COMPLAINT_RATINGS:
        raise ComplaintError("请回复“满意”“基本满意”或“不满意”。")
    if row.state in ("registered", "classified", "in_progress"):
        raise InvalidTransition(f"您反映的问题（{row.case_number}）还在办理中，答复后才能评价。")
    if row.state == "closed":
        raise InvalidTransition(f"您反映的问题（{row.case_number}）已办结，无需再评价。")
    if row.state == "answered":
        row = _transition(session, row, "follow_up", FOLLOW_UP, "user", now, rules, note="用户在回访前作出评价")
    comment = _clean_text(comment, "意见", required=False)
    note = f"用户评价：{rating}" + (f"。意见：{comment}" if comment else "")
    if rating == "不满意":
        row = _transition(session, row, "in_progress", REOPEN, "user", now, rules, note=note, rating=rating,
                          reopened=ComplaintCase.reopened + 1)
    else:
        row = _transition(session, row, "closed", CLOSE, "user", now, rules, note=note, rating=rating)
    return _view(row, now, rules)


def _user_addition(session: Session, case_number: str, openid: str, veteran_id: Optional[int], kind: str,
                   note: str, now: dt.datetime, rules: Optional[ComplaintRules]) -> Optional[CaseView]:
    rules = rules or default_rules()
    now = as_utc(now)
    row = _row_for_user(session, case_number, openid, veteran_id)
    if row is None:
        return None
    if row.state == "closed":
        raise CaseClosed(f"您反映的问题（{row.case_number}）已办结，不能再补充。如有新的问题，请重新反映。")
    execute_write(session, update(ComplaintCase).where(ComplaintCase.id == row.id).values(updated_at=now),
           synchronize_session=False)
    _event(session, row.id, kind, "user", now, note=note)
    return _view(_row(session, row.id), now, rules)


def add_information(session: Session, case_number: str, openid: str, text: str, now: dt.datetime,
                    veteran_id: Optional[int] = None, *, rules: Optional[ComplaintRules] = None
                    ) -> Optional[CaseView]:
    """补充情况: the user adds to their own open case. None when the number is not theirs;
    CaseClosed once it is 办结."""
    return _user_addition(session, case_number, openid, veteran_id, "user_added_information",
                          _clean_text(text, "要补充的情况"), now, rules)


def add_attachment(session: Session, case_number: str, openid: str, media_id: str, media_type: str,
                   now: dt.datetime, veteran_id: Optional[int] = None, *,
                   rules: Optional[ComplaintRules] = None) -> Optional[CaseView]:
    """A picture, voice or video the user sent for their open case: its WeChat media_id is
    recorded (``<type>:<media_id>``); nothing is downloaded or stored yet. WeChat keeps
    temporary media only 3 days, so staff must fetch it soon."""
    if media_type not in ATTACHMENT_TYPES or not re.fullmatch(r"[A-Za-z0-9_\-]{1,128}", media_id or ""):
        raise ComplaintError("附件无法识别，请重新发送。")
    return _user_addition(session, case_number, openid, veteran_id, "attachment", f"{media_type}:{media_id}",
                          now, rules)


def add_note(session: Session, case_id: int, actor: str, note: str, *, now: dt.datetime,
             rules: Optional[ComplaintRules] = None) -> CaseView:
    """A staff member's internal note (never shown to the user); any state, closed too."""
    rules = rules or default_rules()
    now = as_utc(now)
    note = (note or "").strip()
    if not note:
        raise ComplaintError("备注不能为空。")
    row = _row(session, case_id)
    execute_write(session, update(ComplaintCase).where(ComplaintCase.id == row.id).values(updated_at=now),
           synchronize_session=False)
    _event(session, row.id, "note", actor, now, note=note)
    return _view(_row(session, row.id), now, rules)


# --------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------


def find_for_user(session: Session, case_number: str, openid: str, veteran_id: Optional[int] = None, *,
                  now: Optional[dt.datetime] = None, rules: Optional[ComplaintRules] = None) -> Optional[CaseView]:
    """This user's case with this number; None for an unknown number and, exactly alike,
    for somebody else's (it reveals nothing)."""
    row = _row_for_user(session, case_number, openid, veteran_id)
    return None if row is None else _view(row, _now(now), rules or default_rules())


def cases_for_user(session: Session, openid: str, veteran_id: Optional[int] = None, *,
                   now: Optional[dt.datetime] = None, limit: int = 20,
                   rules: Optional[ComplaintRules] = None) -> List[CaseView]:
    """This user's cases, newest first (with ``veteran_id``, also those filed from another OpenID)."""
    rows = session.execute(_fresh(select(ComplaintCase).where(_whose(openid, veteran_id))
                                  .order_by(ComplaintCase.id.desc()).limit(limit))).scalars().all()
    now, rules = _now(now), rules or default_rules()
    return [_view(r, now, rules) for r in rows]


def open_duplicate(session: Session, openid: str, category: str, now: dt.datetime,
                   veteran_id: Optional[int] = None, *, rules: Optional[ComplaintRules] = None
                   ) -> Optional[CaseView]:
    """The user's open case of the same category filed within the last 24 hours (the
    newest), so that the chat can offer to add to it instead of opening another."""
    now = as_utc(now)
    row = session.execute(_fresh(
        select(ComplaintCase).where(_whose(openid, veteran_id), ComplaintCase.category == category,
                                    ComplaintCase.state != "closed",
                                    ComplaintCase.created_at > now - DUPLICATE_WINDOW)
        .order_by(ComplaintCase.id.desc()).limit(1))).scalar_one_or_none()
    return None if row is None else _view(row, now, rules or default_rules())


def _overdue_condition(now: dt.datetime):
    return and_(ComplaintCase.state.in_(OPEN_STATES), ComplaintCase.due_at < as_utc(now))


def _filters(state, category, station_id, overdue, urgent, now, scope=None, unrouted=False) -> list:
    conditions = [] if scope is None else [scope.where_case()]
    if state is not None:
        conditions.append(ComplaintCase.state == state)
    if category is not None:
        conditions.append(ComplaintCase.category == category)
    if station_id is not None:  # the station it is about, or the one handling it
        conditions.append(or_(ComplaintCase.station_id == station_id,
                              ComplaintCase.assigned_station_id == station_id))
    if overdue is True:
        conditions.append(_overdue_condition(now))
    elif overdue is False:
        conditions.append(or_(ComplaintCase.state == "closed", ComplaintCase.due_at.is_(None),
                              ComplaintCase.due_at >= as_utc(now)))
    if urgent is not None:
        conditions.append(ComplaintCase.urgent.is_(bool(urgent)))
    if unrouted:  # about no station and handled by none
        conditions.append(and_(ComplaintCase.station_id.is_(None), ComplaintCase.assigned_station_id.is_(None)))
    return conditions


def list_cases(session: Session, state: Optional[str] = None, category: Optional[str] = None,
               station_id: Optional[int] = None, overdue: Optional[bool] = None, *, now: dt.datetime,
               urgent: Optional[bool] = None, limit: int = 50, offset: int = 0,
               rules: Optional[ComplaintRules] = None, scope: Optional[Scope] = None,
               unrouted: bool = False, before_id: Optional[int] = None,
               after_id: Optional[int] = None) -> List[CaseView]:
    """The console's register: newest first, filtered by state, category, station (about
    it or assigned to it) or no station at all (``unrouted``), past the deadline or not,
    urgent or not.

    ``scope``: the staff member's data scope (bot.services.scope); None for every case.
    Keyset paging for long registers: ``before_id`` gives the cases older than that id,
    ``after_id`` the newer ones (the ``limit`` nearest it), both still newest first."""
    conditions = _filters(state, category, station_id, overdue, urgent, now, scope, unrouted)
    if before_id is not None:
        conditions.append(ComplaintCase.id < before_id)
    query = select(ComplaintCase).where(*conditions)
    if after_id is not None:
        query = query.where(ComplaintCase.id > after_id).order_by(ComplaintCase.id.asc())
    else:
        query = query.order_by(ComplaintCase.id.desc())
    rows = session.execute(_fresh(query.limit(limit).offset(offset))).scalars().all()
    if after_id is not None:
        rows = list(reversed(rows))
    rules = rules or default_rules()
    return [_view(r, as_utc(now), rules) for r in rows]


def count_cases(session: Session, state: Optional[str] = None, category: Optional[str] = None,
                station_id: Optional[int] = None, overdue: Optional[bool] = None, *, now: dt.datetime,
                urgent: Optional[bool] = None, scope: Optional[Scope] = None, unrouted: bool = False,
                cap: Optional[int] = None) -> int:
    """How many cases ``list_cases`` pages through with the same filters (and ``scope``).
    With ``cap``, counting stops there (at most ``cap`` is returned), so that a long
    register's count stays cheap."""
    conditions = _filters(state, category, station_id, overdue, urgent, now, scope, unrouted)
    if cap is None:
        return session.execute(select(func.count()).select_from(ComplaintCase).where(*conditions)).scalar_one()
    capped = select(ComplaintCase.id).where(*conditions).limit(cap).subquery()
    return session.execute(select(func.count()).select_from(capped)).scalar_one()


def reply_phone(session: Session, vault: PiiVault, case_id: int) -> Optional[str]:
    """The number to answer the case on, in clear: the case phone, or for ``bound_phone``
    the bound veteran's phone on the roster; None when there is none. For the console's
    deliberate reveal only (the caller audits it); views carry the masked number.
    bot.pii.NotDecryptable when the stored ciphertext does not belong to its row
    (copied from another one, altered) or was sealed with another key."""
    row = session.get(ComplaintCase, case_id, populate_existing=True)
    if row is None:
        return None
    if row.phone_cipher is not None:
        return vault.decrypt(row.phone_cipher, CASE_PHONE, row.case_number)
    if row.reply_channel == "bound_phone" and row.veteran_id is not None:
        bound = session.execute(select(Veteran.id_hash, Veteran.phone_cipher)
                                .where(Veteran.id == row.veteran_id)).one_or_none()
        if bound is not None and bound.phone_cipher is not None:
            return vault.decrypt(bound.phone_cipher, VETERAN_PHONE, bound.id_hash)
    return None


def overdue(session: Session, now: dt.datetime, *, limit: Optional[int] = None,
            rules: Optional[ComplaintRules] = None) -> List[CaseView]:
    """Open cases past the deadline of their state, the longest overdue first."""
    query = select(ComplaintCase).where(_overdue_condition(now)).order_by(ComplaintCase.due_at, ComplaintCase.id)
    if limit is not None:
        query = query.limit(limit)
    rules = rules or default_rules()
    return [_view(r, as_utc(now), rules) for r in session.execute(_fresh(query)).scalars()]


def get_case(session: Session, case_id: int, *, now: dt.datetime,
             rules: Optional[ComplaintRules] = None) -> Optional[CaseView]:
    """One case by id, for the console (staff see every case)."""
    row = session.get(ComplaintCase, case_id, populate_existing=True)
    return None if row is None else _view(row, as_utc(now), rules or default_rules())


def history(session: Session, case_id: int) -> List[EventView]:
    """The case's history, oldest first, for the console (notes included: staff only)."""
    rows = session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id)
                           .order_by(CaseEvent.happened_at, CaseEvent.id)).scalars()
    return [EventView(r.kind, r.from_state, r.to_state, r.action, r.actor, r.note, _local(r.happened_at))
            for r in rows]


# --------------------------------------------------------------------------------------
# Messages to the user (outbox)
# --------------------------------------------------------------------------------------


def _notify(session: Session, row: ComplaintCase, kind: str, now: dt.datetime, extra: Mapping[str, object]) -> None:
    """Queue a message about the case, unless the user is anonymous or has unfollowed."""
    if row.reply_channel == "anonymous" or not row.openid:
        return
    payload = {"case_number": row.case_number, "category": row.category, **extra}
    session.execute(Outbox.__table__.insert().values(
        openid=row.openid, kind=kind, ref=f"complaint:{row.case_number}", payload=payload,
        due_at=now, created_at=now, attempts=0,
    ))


def _day(value: Union[dt.date, dt.datetime, str], today: Optional[dt.date] = None) -> str:
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    if isinstance(value, dt.datetime):
        value = local_time(value).date()
    prefix = f"{value.year}年" if today is not None and value.year != today.year else ""
    return f"{prefix}{value.month}月{value.day}日"


def notification_text(kind: str, payload: Mapping[str, object]) -> str:
    """The message a delivery worker sends, from an outbox row's kind and payload."""
    number = payload["case_number"]
    if kind == ACCEPTED_KIND:
        return (f"【信访登记】您反映的问题已登记，编号{number}。我们将在{_day(payload['due'])}前告知是否受理"
                f"及办理方式。回复“查询进度”和编号可随时了解办理情况。")
    if kind == ANSWER_KIND:
        who = f"（承办单位：{payload['assigned_to']}）" if payload.get("assigned_to") else ""
        return (f"【办理答复】您反映的问题（{number}）已办理{who}：\n{payload['answer']}\n"
                f"请对办理结果作出评价，回复“满意”“基本满意”或“不满意”。")
    if kind == REJECTED_KIND:
        return (f"【受理告知】您反映的问题（{number}）经审核不予受理，原因：{payload['reason']}\n"
                f"如有疑问，可回复“人工服务”或致电退役军人服务中心。")
    if kind == FOLLOW_UP_KIND:
        return (f"【回访】您反映的问题（{number}）已答复，请在{_day(payload['until'])}前对办理结果作出评价："
                f"回复“满意”“基本满意”或“不满意”。")
    raise ValueError(f"not a complaint message kind: {kind}")


# --------------------------------------------------------------------------------------
# Unfollow
# --------------------------------------------------------------------------------------


def erase_complaint_data(session: Session, openid: str, now: dt.datetime) -> None:
    """On unfollow: blank the OpenID and the case phone of this user's cases and drop their
    pending messages. The cases themselves stay, with what was reported and the history:
    a petition register must be kept (信访档案), and the bound veteran's link stays with
    it as part of the bureau's record of who petitioned (only the WeChat identifiers and
    the number given for replies go). A note in each case's history says so."""
    now = as_utc(now)
    ids = session.execute(select(ComplaintCase.id).where(ComplaintCase.openid == openid)).scalars().all()
    execute_write(session, delete(Outbox).where(Outbox.openid == openid, Outbox.kind.in_(OUTBOX_KINDS)),
           synchronize_session=False)
    if not ids:
        return
    session.execute(update(ComplaintCase).where(ComplaintCase.openid == openid).values(
        openid=None, phone_hash=None, phone_cipher=None, phone_masked=None, updated_at=now),
        execution_options={"synchronize_session": False})
    for case_id in ids:
        _event(session, case_id, "note", "system", now,
               note="用户已取消关注公众号：微信标识和答复电话已删除，案件按信访档案保留。")


# --------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------


def short_description(view: CaseView) -> str:
    """One line for lists and buttons: ``TS20261122-0007 待遇发放（承办中）``."""
    return f"{view.case_number} {view.category}（{view.state_name}）"


def status_text(view: CaseView, now: dt.datetime) -> str:
    """The status in plain Chinese: the last step with its date, and what happens next."""
    today = local_time(as_utc(now)).date()
    head = f"您反映的问题（{view.case_number}）"
    since = _day(view.state_changed_at, today)
    by = _day(view.reply_by, today) if view.reply_by else None
    unit = f"由{view.assigned_to}" if view.assigned_to else ""
    if view.state == "registered":
        text_ = f"{head}已于{since}登记，正在审核分类，预计{by}前告知是否受理。"
    elif view.state == "classified":
        text_ = f"{head}已于{_day(view.accepted_at, today)}受理，已转{view.assigned_to}办理，预计{by}前答复您。"
    elif view.state == "in_progress" and view.reopened:
        text_ = f"{head}已根据您的评价于{since}重新办理，预计{by}前再次答复您。"
    elif view.state == "in_progress":
        text_ = f"{head}已于{since}{unit}承办，正在办理，预计{by}前答复您。"
    elif view.state == "answered":
        text_ = (f"{head}已于{since}答复：{view.answer_text}\n"
                 f"如对办理结果有意见，请回复“满意”“基本满意”或“不满意”。")
    elif view.state == "follow_up":
        text_ = (f"{head}已答复：{view.answer_text}\n现正在回访，请在{_day(view.due_on, today)}前"
                 f"回复“满意”“基本满意”或“不满意”。")
    elif view.rejected:
        text_ = f"{head}已于{since}办结：经审核不予受理，原因：{view.answer_text}"
    else:
        rated = f"（您的评价：{view.rating}）" if view.rating else ""
        text_ = f"{head}已于{since}办结{rated}。感谢您的监督和支持。"
    if view.is_overdue and view.state in ("registered", "classified", "in_progress"):
        text_ += "\n办理时间已超过预计日期，我们已督促尽快办理，给您带来不便深表歉意。"
    return text_


def describe_case(view: CaseView, now: dt.datetime) -> str:
    """The block shown after registering and on "我的投诉": number, category, status."""
    lines = [f"编号：{view.case_number}", f"类别：{view.category}", f"状态：{view.state_name}",
             f"登记时间：{_day(view.created_at, local_time(as_utc(now)).date())}"]
    if view.phone_masked:
        lines.append(f"答复电话：{view.phone_masked}")
    lines.append(status_text(view, now))
    return "\n".join(lines)
