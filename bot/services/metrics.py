"""The figures of the staff console's dashboard (数据看板), as SQL aggregates.

Periods are whole Beijing-time days: the last 7 (or 30) days including today, from
00:00 Beijing time of the first day until now.

Conversation figures come from Rasa's SQL tracker store (table ``events``: one row
per event, ``timestamp`` in seconds since the epoch), read with an engine of its own
(``bot.services.transcripts.tracker_engine``); they cover the whole bot (全区), whoever looks:

- 用户消息 (messages): ``user`` events, i.e. every message a user sent that Rasa
  parsed (text, voice recognised, button presses alike).
- 会话 (conversations): a user who sent at least one message on a day, counted once
  per user and day (distinct ``sender_id`` per Beijing day); the period's total is the
  sum over its days. 用户数 is the distinct senders of the whole period.
- 热门意图 (top intents): user messages by the intent NLU gave them (``intent_name``),
  with their share of all user messages of the period.
- 兜底率 (fallback rate): of the period's user messages, the share that the bot did not
  understand: the message's intent is ``nlu_fallback`` (NLU confidence under the
  FallbackClassifier threshold, which starts Rasa's two-stage fallback), or the bot
  answered it with ``action_default_fallback`` (the two-stage fallback gave up, or the
  dialogue policies were unsure). A message counts once even when both apply; the
  action is tied to the latest user message of the same conversation before it.

Case figures come from the bot's own database and are limited to the staff member's
area (``bot.services.scope.Scope``); trainers get none:

- 转人工 (handoffs): handoffs opened in the period; 转人工率 = those ÷ 会话 (the
  whole bot's conversations, so for a station it is its share of all conversations).
- 等待时间 (waiting time): claimed_at − created_at of the period's handoffs that a
  person took (or closed) — median and 90th percentile, interpolated linearly
  between the two nearest waits like PostgreSQL's ``percentile_cont``; 正在等待 is
  how many handoffs wait right now (whenever opened).
- 投诉 (complaints): open cases by state right now, 超期 (open cases past the deadline
  of their state now), and the cases registered and closed (办结) in the period. A case
  belongs to an area when the station it is about or the station handling it is in it;
  a case with neither is the district centre's.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from sqlalchemy import Float, Integer, String, and_, cast, column, extract, func, inspect, or_, select, table
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI, SHANGHAI_OFFSET_SECONDS
from bot.db.models import ComplaintCase, Handoff
from bot.labels import intent_label
from bot.services.complaints import OPEN_STATES, STATE_NAMES
from bot.services.scope import Scope
from bot.services.transcripts import missing_file

PERIODS = (7, 30)
DEFAULT_DAYS = 7
TOP_INTENTS = 10
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTION = "action_default_fallback"
# Names the intent labels (bot/data/intent_labels.yml, written for users) do not give.
SPECIAL_INTENT_LABELS = {FALLBACK_INTENT: "未识别（低置信度）", "faq": "政策问答", "": "（无意图）"}

_DAY = 86400
_EPOCH = dt.date(1970, 1, 1)

EVENTS = table(
    "events",
    column("id", Integer), column("sender_id", String), column("type_name", String),
    column("timestamp", Float), column("intent_name", String), column("action_name", String),
)


# --- the period ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    days: int
    first_day: dt.date  # Beijing date
    last_day: dt.date  # today, Beijing date
    start: dt.datetime  # aware UTC: 00:00 Beijing time of first_day
    end: dt.datetime  # aware UTC: 00:00 Beijing time of the day after last_day

    @property
    def day_list(self) -> List[dt.date]:
        return [self.first_day + dt.timedelta(days=i) for i in range(self.days)]

    @property
    def start_epoch(self) -> float:
        return self.start.timestamp()

    @property
    def end_epoch(self) -> float:
        return self.end.timestamp()


def period_days(value: Optional[str]) -> int:
    """7 or 30 from a query string; anything else is 7."""
    return int(value) if value in {str(d) for d in PERIODS} else DEFAULT_DAYS


def period(days: int, now: dt.datetime) -> Period:
    if days not in PERIODS:
        days = DEFAULT_DAYS
    today = now.astimezone(SHANGHAI).date()
    first = today - dt.timedelta(days=days - 1)

    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.timezone.utc)

    return Period(days, first, today, midnight(first), midnight(today + dt.timedelta(days=1)))


# --- the tracker store ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IntentCount:
    intent: str
    label: str
    count: int
    share: float  # of all user messages of the period, 0…1


@dataclass(frozen=True)
class ConversationFigures:
    period: Period
    messages_by_day: List[Tuple[dt.date, int]]
    conversations_by_day: List[Tuple[dt.date, int]]
    users: int  # distinct senders of the whole period
    top_intents: List[IntentCount]
    fallbacks: int  # user messages not understood (see the module's first lines)

    @property
    def messages(self) -> int:
        return sum(n for _, n in self.messages_by_day)

    @property
    def conversations(self) -> int:
        return sum(n for _, n in self.conversations_by_day)

    @property
    def fallback_rate(self) -> Optional[float]:
        return self.fallbacks / self.messages if self.messages else None


def _day_number(dialect: str, seconds):
    """Days since 1970-01-01 of a Beijing-time day, from epoch seconds (an SQL expression)."""
    shifted = (seconds + SHANGHAI_OFFSET_SECONDS) / _DAY
    if dialect == "sqlite":  # no floor() in every SQLite build; the values are positive
        return cast(shifted, Integer)
    return cast(func.floor(shifted), Integer)


def _empty_conversations(p: Period) -> ConversationFigures:
    zeros = [(day, 0) for day in p.day_list]
    return ConversationFigures(p, zeros, list(zeros), 0, [], 0)


def conversation_figures(engine: Engine, p: Period) -> ConversationFigures:
    """The bot-wide conversation figures of period ``p`` (four aggregate queries)."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("events"):
                return _empty_conversations(p)  # nobody has talked yet
            return _conversation_figures(connection, p)
    except OperationalError as error:
        if missing_file(error):
            return _empty_conversations(p)  # the SQLite file does not exist yet
        raise


def _conversation_figures(connection, p: Period) -> ConversationFigures:
    e = EVENTS
    in_period = and_(e.c.timestamp >= p.start_epoch, e.c.timestamp < p.end_epoch)
    user_message = and_(e.c.type_name == "user", in_period)

    day = _day_number(connection.dialect.name, e.c.timestamp).label("day")
    per_day = {row.day: (row.messages, row.conversations) for row in connection.execute(
        select(day, func.count().label("messages"), func.count(e.c.sender_id.distinct()).label("conversations"))
        .where(user_message).group_by(day))}
    days = [(d, (d - _EPOCH).days) for d in p.day_list]
    messages_by_day = [(d, int(per_day.get(n, (0, 0))[0])) for d, n in days]
    conversations_by_day = [(d, int(per_day.get(n, (0, 0))[1])) for d, n in days]
    total = sum(n for _, n in messages_by_day)

    users = connection.execute(select(func.count(e.c.sender_id.distinct())).where(user_message)).scalar_one()

    intent = func.coalesce(e.c.intent_name, "").label("intent")
    top = [IntentCount(row.intent, _intent_name(row.intent), int(row.n), row.n / total if total else 0.0)
           for row in connection.execute(
               select(intent, func.count().label("n")).where(user_message)
               .group_by(intent).order_by(func.count().desc(), intent).limit(TOP_INTENTS))]

    # The user message each action_default_fallback answered: the latest before it.
    u, a = e.alias("u"), e.alias("a")
    answered = select(func.max(u.c.id)).where(
        u.c.sender_id == a.c.sender_id, u.c.type_name == "user", u.c.id < a.c.id).scalar_subquery()
    fallback_turns = select(answered).where(
        a.c.type_name == "action", a.c.action_name == FALLBACK_ACTION,
        a.c.timestamp >= p.start_epoch)
    fallbacks = connection.execute(select(func.count()).select_from(e).where(
        user_message, or_(e.c.intent_name == FALLBACK_INTENT, e.c.id.in_(fallback_turns)))).scalar_one()

    return ConversationFigures(p, messages_by_day, conversations_by_day, int(users), top, int(fallbacks))


def _intent_name(intent: str) -> str:
    return SPECIAL_INTENT_LABELS.get(intent) or intent_label(intent)


# --- handoffs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandoffFigures:
    opened: int  # in the period
    urgent: int  # of those
    claimed: int  # of those, taken by a person (or closed)
    wait_median: Optional[float]  # seconds
    wait_p90: Optional[float]  # seconds
    waiting_now: int
    oldest_waiting: Optional[dt.datetime]  # aware UTC; when the longest-waiting one was opened

    def rate(self, conversations: int) -> Optional[float]:
        return self.opened / conversations if conversations else None


def _seconds_between(dialect: str, earlier, later):
    if dialect == "sqlite":  # julianday() is a float of days: rounded to the millisecond
        return func.round((func.julianday(later) - func.julianday(earlier)) * float(_DAY), 3)
    return extract("epoch", later - earlier)


def percentile(session: Session, value, where, n: int, fraction: float) -> Optional[float]:
    """The ``fraction`` percentile of ``value`` over the ``n`` rows ``where`` selects,
    interpolated linearly (percentile_cont); the database sorts and hands back two rows."""
    if n <= 0:
        return None
    position = (n - 1) * fraction
    lower = math.floor(position)
    values = [float(v) for v in session.execute(
        select(value).where(where).order_by(value).offset(lower).limit(2)).scalars()]
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return values[0] + (position - lower) * (values[1] - values[0])


def handoff_figures(session: Session, scope: Scope, p: Period, now: dt.datetime) -> HandoffFigures:
    in_scope = scope.where_station(Handoff.station_id)
    in_period = and_(in_scope, Handoff.created_at >= p.start, Handoff.created_at < p.end)
    opened, urgent, claimed = session.execute(select(
        func.count(), func.count(Handoff.id).filter(Handoff.urgent.is_(True)),
        func.count(Handoff.claimed_at))
        .where(in_period)).one()
    wait = _seconds_between(session.get_bind().dialect.name, Handoff.created_at, Handoff.claimed_at)
    claimed_rows = and_(in_period, Handoff.claimed_at.isnot(None))
    waiting_now, oldest = session.execute(select(func.count(), func.min(Handoff.created_at))
                                          .where(in_scope, Handoff.state == "waiting")).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.timezone.utc)
    return HandoffFigures(int(opened), int(urgent), int(claimed),
                          percentile(session, wait, claimed_rows, claimed, 0.5),
                          percentile(session, wait, claimed_rows, claimed, 0.9),
                          int(waiting_now), oldest)


# --- complaints ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplaintFigures:
    by_state: List[Tuple[str, str, int]]  # (state, Chinese name, open cases now), every open state
    overdue: int  # open cases past their deadline now
    registered: int  # in the period
    closed: int  # 办结 in the period

    @property
    def open_cases(self) -> int:
        return sum(n for _, _, n in self.by_state)


def complaint_figures(session: Session, scope: Scope, p: Period, now: dt.datetime) -> ComplaintFigures:
    is_open = ComplaintCase.state.in_(OPEN_STATES)
    # One pass over the area's cases, grouped by state.
    rows = session.execute(select(
        ComplaintCase.state, func.count(ComplaintCase.id).label("n"),
        func.count(ComplaintCase.id).filter(is_open, ComplaintCase.due_at < now).label("overdue"),
        func.count(ComplaintCase.id).filter(ComplaintCase.created_at >= p.start,
                                            ComplaintCase.created_at < p.end).label("registered"),
        func.count(ComplaintCase.id).filter(ComplaintCase.closed_at >= p.start,
                                            ComplaintCase.closed_at < p.end).label("closed"))
        .where(scope.where_case()).group_by(ComplaintCase.state)).all()
    counts: Dict[str, int] = {row.state: int(row.n) for row in rows}
    overdue = sum(int(row.overdue) for row in rows)
    registered = sum(int(row.registered) for row in rows)
    closed = sum(int(row.closed) for row in rows)
    return ComplaintFigures([(s, STATE_NAMES[s], int(counts.get(s, 0))) for s in OPEN_STATES],
                            int(overdue), int(registered), int(closed))


@dataclass(frozen=True)
class CaseFigures:
    """What a staff member with case data sees (None for trainers)."""

    handoffs: HandoffFigures
    complaints: ComplaintFigures


def case_figures(session: Session, scope: Scope, p: Period, now: dt.datetime) -> Optional[CaseFigures]:
    if not scope.case_data:
        return None
    return CaseFigures(handoff_figures(session, scope, p, now), complaint_figures(session, scope, p, now))

