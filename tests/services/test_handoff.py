"""The staff queue (bot.services.handoff): one open handoff per user, urgent first then
the oldest, claiming, handing back, and honest waiting times from the opening hours.
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from bot.db.models import Handoff
from bot.db.session import session_scope
from bot.services import handoff, identity
from bot.services.handoff import HandoffError
from bot.services.stations import SHANGHAI, load_stations
from bot.settings import PROJECT_ROOT

MONDAY_10AM = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def db(session_factory):
    with session_scope(session_factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
    return session_factory


def _open(db, openid, minutes=0, **kwargs):
    with session_scope(db) as session:
        return handoff.open_handoff(session, openid, kwargs.pop("reason", "request_human"),
                                    MONDAY_10AM + dt.timedelta(minutes=minutes), **kwargs)


def test_one_open_handoff_per_user_made_urgent_when_needed(db):
    first = _open(db, "o-1")
    again = _open(db, "o-1", minutes=5)
    assert again.id == first.id and not again.urgent
    urgent = _open(db, "o-1", minutes=6, reason="urgent", urgent=True, case_number="TS20261123-0001")
    assert urgent.id == first.id and urgent.urgent and urgent.case_number == "TS20261123-0001"
    with pytest.raises(IntegrityError), session_scope(db) as session:  # the database keeps it so too
        session.execute(insert(Handoff.__table__).values(openid="o-1", reason="staff", urgent=False,
                                                         state="waiting", created_at=MONDAY_10AM))


def test_queue_urgent_first_then_the_oldest_and_places_in_it(db):
    a, b = _open(db, "o-a"), _open(db, "o-b", minutes=1)
    c = _open(db, "o-c", minutes=2, reason="urgent", urgent=True)
    with session_scope(db) as session:
        assert [v.openid for v in handoff.queue(session)] == ["o-c", "o-a", "o-b"]
        assert [handoff.waiting_ahead(session, v) for v in (c, a, b)] == [0, 1, 2]
        handoff.claim(session, c.id, "王科长", MONDAY_10AM)
    with session_scope(db) as session:  # held ones after the waiting ones; not counted as ahead
        assert [v.openid for v in handoff.queue(session)] == ["o-a", "o-b", "o-c"]
        assert handoff.waiting_ahead(session, handoff.get(session, b.id)) == 1


def test_claim_hand_back_and_refusals(db):
    view = _open(db, "o-1")
    with session_scope(db) as session:
        assert handoff.claim(session, view.id, "王科长", MONDAY_10AM).claimed_by == "王科长"
        assert handoff.claim(session, view.id, "王科长", MONDAY_10AM).state == "claimed"  # twice: fine
    with pytest.raises(HandoffError, match="其他工作人员"), session_scope(db) as session:
        handoff.claim(session, view.id, "李干事", MONDAY_10AM)
    with session_scope(db) as session:
        closed = handoff.close(session, view.id, "王科长", MONDAY_10AM)
        assert closed.state == "closed" and handoff.current(session, "o-1") is None
    with pytest.raises(HandoffError, match="已经交还"), session_scope(db) as session:
        handoff.close(session, view.id, "王科长", MONDAY_10AM)
    assert _open(db, "o-1", minutes=30).id != view.id  # a new request is a new handoff


def test_staff_take_over(db):
    with session_scope(db) as session:
        view = handoff.take_over(session, "o-9", "王科长", MONDAY_10AM)
        assert view.reason == "staff" and view.state == "claimed" and view.claimed_by == "王科长"


@pytest.mark.parametrize("when, expected", [
    (MONDAY_10AM, "现在是工作时间"),
    (dt.datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI), "今天13:30上班后"),
    (dt.datetime(2026, 11, 23, 20, 0, tzinfo=SHANGHAI), "明天09:00上班后"),
    (dt.datetime(2026, 11, 28, 14, 0, tzinfo=SHANGHAI), "11月30日（周一）09:00上班后"),  # Saturday afternoon
    (dt.datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI), "10月8日（周四）09:00上班后"),  # 国庆, chinesecalendar
])
def test_expected_reply_follows_the_centres_hours(db, when, expected):
    with session_scope(db) as session:
        assert expected in handoff.expected_reply(session, when)


def test_unfollow_removes_handoffs(db, vault):
    _open(db, "o-1")
    with session_scope(db) as session:
        identity.forget_openid(session, vault, "o-1", MONDAY_10AM)
    with session_scope(db) as session:
        assert handoff.current(session, "o-1") is None


def test_notes_in_order_redacted_and_erased_on_unfollow(db, vault):
    view = _open(db, "o-1")
    with session_scope(db) as session:
        handoff.add_note(session, view.id, "王科长", "已电话联系 13812345678，明天回访", MONDAY_10AM)
        handoff.add_note(session, view.id, "赵主任", "同意", MONDAY_10AM + dt.timedelta(minutes=1))
        with pytest.raises(HandoffError):
            handoff.add_note(session, view.id, "王科长", "   ", MONDAY_10AM)
        notes = handoff.notes(session, view.id)
    assert [n.staff for n in notes] == ["王科长", "赵主任"]
    assert "13812345678" not in notes[0].text and "手机号已隐去" in notes[0].text
    with session_scope(db) as session:
        identity.forget_openid(session, vault, "o-1", MONDAY_10AM)
    with session_scope(db) as session:
        assert handoff.notes(session, view.id) == [] and handoff.current(session, "o-1") is None
