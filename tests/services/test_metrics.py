"""The dashboard's figures (bot.services.metrics).

Conversation figures: a real tracker store, written by Rasa's own SQLTrackerStore (an
SQLite file, and a PostgreSQL database as VETBOT_TRACKER_URL would give it), with real
events on known timestamps around Beijing midnights. Case figures: handoffs and
complaints made by the real services at known times, on SQLite and on PostgreSQL, seen
by staff of different areas.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import List, Optional

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.db.models import Station
from bot.db.session import session_scope
from bot.services import complaints as cs
from bot.services import handoff, metrics
from bot.services.scope import Scope
from bot.services.stations import SHANGHAI, load_stations
from bot.services.transcripts import tracker_engine
from bot.settings import PROJECT_ROOT
from tests.conftest import station_id as station

# Tuesday 2026-03-10, 15:00 Beijing time: the 7-day period is 03-04 … 03-10.
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=SHANGHAI).astimezone(dt.timezone.utc)


def bj(day: int, hour: int, minute: int = 0, second: float = 0.0, month: int = 3) -> float:
    """Epoch seconds of a Beijing time in 2026."""
    whole = int(second)
    moment = dt.datetime(2026, month, day, hour, minute, whole, int(round((second - whole) * 1e6)), tzinfo=SHANGHAI)
    return moment.timestamp()


# --- a tracker store written by Rasa -------------------------------------------------------------


def user(text: str, intent: str, confidence: float, at: float) -> UserUttered:
    parse = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": [],
             "intent_ranking": [{"name": intent, "confidence": confidence}]}
    return UserUttered(text, intent=parse["intent"], parse_data=parse, timestamp=at)


def action(name: str, at: float) -> ActionExecuted:
    return ActionExecuted(name, timestamp=at)


def bot(text: str, at: float) -> BotUttered:
    return BotUttered(text, timestamp=at)


def turn(text: str, intent: str, confidence: float, at: float, *actions: str) -> List[Event]:
    """A user message and the bot's answer: each action a second later, utterances with text."""
    events: List[Event] = [user(text, intent, confidence, at)]
    for i, name in enumerate(actions, start=1):
        events.append(action(name, at + i))
        if name.startswith("utter_") or name == "action_default_fallback":
            events.append(bot(f"（{name}）", at + i + 0.1))
    events.append(action("action_listen", at + len(actions) + 1))
    return events


CONVERSATIONS = {
    # Two days of u1: one message at 07:00 Beijing (still the day before in UTC) …
    "u1": (turn("你好", "greet", 0.97, bj(9, 7), "utter_greet", "utter_menu")
           # … and four on 03-10: a policy question, then two messages NLU does not get; the
           # second ends the two-stage fallback with action_default_fallback (counted once).
           + turn("你好", "greet", 0.95, bj(10, 10), "utter_greet", "utter_menu")
           + turn("优待证怎么办", "faq", 0.88, bj(10, 10, 1), "utter_faq")
           + turn("那个那个", "nlu_fallback", 0.31, bj(10, 10, 2), "action_two_stage_fallback")
           + turn("说不清楚", "nlu_fallback", 0.22, bj(10, 10, 3), "action_default_fallback")),
    # u2: a message at 23:59 Beijing on 03-08, and on 03-10 one the policies were unsure
    # about (answered by action_default_fallback though its intent was confident).
    "u2": (turn("谢谢", "thank", 0.99, bj(8, 23, 59), "utter_thank")
           + turn("我要预约", "book_appointment", 0.91, bj(10, 11), "action_default_fallback")
           + turn("你好", "greet", 0.99, bj(10, 11, 5), "utter_greet", "utter_menu")),
    # u3: a message one second before the 7-day period, answered by action_default_fallback
    # just after the period began (the message is outside, so is its fallback), and one
    # message just inside.
    "u3": (turn("天气怎么样", "out_of_scope", 0.8, bj(3, 23, 59, 59.0)) [:1]
           + [action("action_default_fallback", bj(4, 0, 0, 0.5)), bot("（兜底）", bj(4, 0, 0, 0.6)),
              action("action_listen", bj(4, 0, 0, 0.7))]
           + turn("你好", "greet", 0.96, bj(4, 0, 0, 1.0), "utter_greet")),
}


async def _save_all(store: SQLTrackerStore) -> None:
    for sender, events in CONVERSATIONS.items():
        tracker = DialogueStateTracker(sender, slots=[])
        for event in events:
            tracker.update(event)
        await store.save(tracker)


@pytest.fixture(params=["sqlite", "postgresql"])
def tracker_db(request, tmp_path):
    """(the tracker store's SQLAlchemy URL, Rasa's SQLTrackerStore on it) — empty."""
    if request.param == "sqlite":
        path = tmp_path / "tracker.db"
        return f"sqlite:///{path}", SQLTrackerStore(dialect="sqlite", db=str(path))
    url = make_url(request.getfixturevalue("postgres_server").create_database())
    store = SQLTrackerStore(dialect="postgresql", host=url.host, port=url.port, db=url.database,
                            username=url.username)
    return str(url), store


@pytest.fixture
def tracker(tracker_db):
    url, store = tracker_db
    asyncio.run(_save_all(store))
    store.engine.dispose()
    engine = tracker_engine(url)
    yield engine
    engine.dispose()


def test_the_stored_events_are_what_rasa_writes(tracker):
    with tracker.connect() as connection:
        rows = connection.execute(select(metrics.EVENTS.c.type_name, metrics.EVENTS.c.intent_name)
                                  .where(metrics.EVENTS.c.type_name == "user")).all()
    assert len(rows) == 10 and ("user", "nlu_fallback") in rows


def test_seven_days_counts_messages_conversations_intents_and_fallbacks(tracker):
    figures = metrics.conversation_figures(tracker, metrics.period(7, NOW))
    assert figures.period.first_day == dt.date(2026, 3, 4) and figures.period.last_day == dt.date(2026, 3, 10)
    by_day = {day.day: n for day, n in figures.messages_by_day}
    assert [day for day, _ in figures.messages_by_day] == [dt.date(2026, 3, d) for d in range(4, 11)]
    assert by_day == {4: 1, 5: 0, 6: 0, 7: 0, 8: 1, 9: 1, 10: 6}
    assert {day.day: n for day, n in figures.conversations_by_day} == {4: 1, 5: 0, 6: 0, 7: 0, 8: 1, 9: 1, 10: 2}
    assert (figures.messages, figures.conversations, figures.users) == (9, 5, 3)
    assert [(i.intent, i.label, i.count) for i in figures.top_intents] == [
        ("greet", "打招呼", 4), ("nlu_fallback", "未识别（低置信度）", 2),
        ("book_appointment", "预约办事", 1), ("faq", "政策问答", 1), ("thank", "致谢", 1)]
    assert figures.top_intents[0].share == pytest.approx(4 / 9)
    # Two messages NLU did not understand (the second also answered by the default
    # fallback: once), one the policies answered with the default fallback.
    assert figures.fallbacks == 3 and figures.fallback_rate == pytest.approx(3 / 9)


def test_thirty_days_take_in_the_earlier_message_and_its_fallback(tracker):
    figures = metrics.conversation_figures(tracker, metrics.period(30, NOW))
    assert figures.period.first_day == dt.date(2026, 2, 9)
    assert (figures.messages, figures.conversations, figures.users, figures.fallbacks) == (10, 6, 3, 4)
    assert dict(figures.messages_by_day)[dt.date(2026, 3, 3)] == 1
    assert ("out_of_scope", "其他问题", 1) in [(i.intent, i.label, i.count) for i in figures.top_intents]


def test_a_day_before_anything_was_said_is_empty(tracker):
    figures = metrics.conversation_figures(tracker, metrics.period(7, NOW - dt.timedelta(days=60)))
    assert (figures.messages, figures.conversations, figures.users, figures.fallbacks) == (0, 0, 0, 0)
    assert figures.top_intents == [] and figures.fallback_rate is None


def test_no_tracker_store_yet_means_no_messages_and_creates_nothing(tmp_path):
    path = tmp_path / "missing" / "tracker.db"
    engine = tracker_engine(f"sqlite:///{path}")
    figures = metrics.conversation_figures(engine, metrics.period(7, NOW))
    assert (figures.messages, figures.users, figures.top_intents, figures.fallback_rate) == (0, 0, [], None)
    assert len(figures.messages_by_day) == 7
    assert not path.exists() and not path.parent.exists()

    path = tmp_path / "tracker.db"
    path.write_bytes(b"")  # a file without the events table (Rasa not started yet)
    figures = metrics.conversation_figures(tracker_engine(f"sqlite:///{path}"), metrics.period(30, NOW))
    assert figures.messages == 0 and len(figures.messages_by_day) == 30


def test_period_is_whole_beijing_days():
    late = dt.datetime(2026, 3, 10, 23, 59, tzinfo=SHANGHAI)
    p = metrics.period(7, late)
    assert p.start == dt.datetime(2026, 3, 4, tzinfo=SHANGHAI) and p.end == dt.datetime(2026, 3, 11, tzinfo=SHANGHAI)
    assert metrics.period(30, late).first_day == dt.date(2026, 2, 9)
    assert [metrics.period_days(v) for v in ("7", "30", "14", "abc", None, "", "-7", "30 ")] == [7, 30] + [7] * 6


# --- handoffs and complaints, by area --------------------------------------------------------------


@pytest.fixture
def db(session_factory):
    with session_scope(session_factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
    return session_factory


def who(db, role: str, code: Optional[str] = None):
    """A staff member as the scope helpers see one, with their data scope."""
    person = SimpleNamespace(id=1, role=role, station_id=station(db, code) if code else None)
    with session_scope(db) as session:
        return person, Scope.of(session, person)


def ago(minutes: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


def make_handoff(db, openid: str, opened: dt.datetime, wait_seconds: Optional[float], station_id: Optional[int],
                 close: bool = False, urgent: bool = False):
    district = who(db, "district", "JD")[1]
    with session_scope(db) as session:
        view = handoff.open_handoff(session, openid, "urgent" if urgent else "request_human", opened,
                                    urgent=urgent, station_id=station_id)
        if wait_seconds is not None:
            taken = opened + dt.timedelta(seconds=wait_seconds)
            if close:  # handed back without anyone claiming it first (district staff may)
                handoff.close(session, view.id, "李干事", taken, scope=district)
            else:
                handoff.claim(session, view.id, "李干事", taken)


def figures_for(db, person, scope, days=7):
    with session_scope(db) as session:
        return metrics.case_figures(session, scope, metrics.period(days, NOW), NOW)


def test_handoff_counts_and_waiting_times_by_area(db):
    at, ml = station(db, "JD-AT"), station(db, "JD-ML")
    for i, wait in enumerate((600, 60, 180, 120, 240)):  # 安亭: 1, 2, 3, 4 and 10 minutes
        make_handoff(db, f"at-{i}", ago(300 + i), wait, at, close=(i == 4), urgent=(i == 0))
    make_handoff(db, "at-waiting", ago(30), None, at)
    make_handoff(db, "ml-1", ago(200), 10000, ml)
    make_handoff(db, "nobody", ago(20), None, None)  # not routed: the district centre's
    make_handoff(db, "at-old", NOW - dt.timedelta(days=8), 5, at)  # before the period

    person, visible = who(db, "station", "JD-AT")
    h = figures_for(db, person, visible).handoffs
    assert (h.opened, h.urgent, h.claimed, h.waiting_now) == (6, 1, 5, 1)
    assert h.wait_median == pytest.approx(180)
    assert h.wait_p90 == pytest.approx(240 + 0.6 * (600 - 240))  # (5 − 1) × 0.9 = 3.6
    assert h.oldest_waiting == ago(30)
    assert h.rate(12) == pytest.approx(0.5) and h.rate(0) is None

    person, visible = who(db, "station", "JD-ML")
    h = figures_for(db, person, visible).handoffs
    assert (h.opened, h.claimed, h.waiting_now, h.wait_median, h.wait_p90) == (1, 1, 0, 10000, 10000)
    assert h.oldest_waiting is None

    for person, visible in (who(db, "admin"), who(db, "district", "JD")):
        h = figures_for(db, person, visible).handoffs
        assert (h.opened, h.claimed, h.waiting_now) == (8, 6, 2)
        assert h.wait_median == pytest.approx(210)  # 180 and 240
        assert h.wait_p90 == pytest.approx(600 + 0.5 * (10000 - 600))  # position 4.5
        assert h.oldest_waiting == ago(30)

    assert figures_for(db, *who(db, "trainer")) is None


def test_no_handoffs_no_waiting_times(db):
    h = figures_for(db, *who(db, "admin")).handoffs
    assert (h.opened, h.claimed, h.wait_median, h.wait_p90, h.waiting_now) == (0, 0, None, None, 0)


def file_case(db, vault, openid: str, when: dt.datetime, station_id: Optional[int]) -> int:
    with session_scope(db) as session:
        return cs.register(session, vault, openid, None, "待遇发放", "抚恤金没有按时发放", None, station_id,
                           "wechat", None, False, when).id


def step(db, operation: str, case_id: int, when: dt.datetime, **kwargs) -> None:
    with session_scope(db) as session:
        if operation == "classify":
            cs.classify(session, case_id, "王科长", "待遇发放", kwargs.pop("assigned_to", "优抚科"), now=when, **kwargs)
        else:
            getattr(cs, operation)(session, case_id, "李干事", now=when)


def test_complaints_by_state_and_overdue_by_area(db, vault):
    at, ml = station(db, "JD-AT"), station(db, "JD-ML")
    with session_scope(db) as session:
        at_community = session.execute(select(Station.id).where(Station.parent_id == at).limit(1)).scalar_one()
    day = dt.timedelta(days=1)

    file_case(db, vault, "a1", NOW - 20 * day, at)  # registered 20 days ago: past 15 days
    file_case(db, vault, "a2", NOW - 2 * day, at_community)  # registered, in time (a community of 安亭)
    handled = file_case(db, vault, "a3", NOW - 3 * day, None)  # about no station, routed to 安亭
    step(db, "classify", handled, NOW - 3 * day, station_id=at)
    step(db, "start_handling", handled, NOW - 2 * day)
    done = file_case(db, vault, "a4", NOW - 40 * day, at)  # closed in the period, registered before it
    with session_scope(db) as session:
        cs.reject(session, done, "王科长", "不属于本局职责范围", now=NOW - day)
    ml_case = file_case(db, vault, "m1", NOW - 30 * day, ml)  # 马陆: overdue, classified
    step(db, "classify", ml_case, NOW - 30 * day, station_id=ml)
    file_case(db, vault, "n1", NOW - 1 * day, None)  # not routed yet: the district centre's

    person, visible = who(db, "station", "JD-AT")
    c = figures_for(db, person, visible).complaints
    assert [(state, n) for state, _, n in c.by_state] == [
        ("registered", 2), ("classified", 0), ("in_progress", 1), ("answered", 0), ("follow_up", 0)]
    assert [name for _, name, _ in c.by_state][:3] == ["已登记", "已受理转办", "承办中"]
    assert (c.overdue, c.open_cases, c.registered, c.closed) == (1, 3, 2, 1)

    person, visible = who(db, "station", "JD-ML")
    c = figures_for(db, person, visible).complaints
    assert [n for _, _, n in c.by_state] == [0, 1, 0, 0, 0]
    assert (c.overdue, c.open_cases, c.registered, c.closed) == (1, 1, 0, 0)  # registered 30 days ago

    person, visible = who(db, "district", "JD")
    c = figures_for(db, person, visible, days=30).complaints
    assert [n for _, _, n in c.by_state] == [3, 1, 1, 0, 0]
    # m1 was registered on 02-08, the day before the 30 days.
    assert (c.overdue, c.open_cases, c.registered, c.closed) == (2, 5, 4, 1)
    with session_scope(db) as session:  # the register's own idea of overdue agrees
        assert c.overdue == len(cs.overdue(session, NOW))
