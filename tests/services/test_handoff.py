"""The staff queue (bot.services.handoff): one open handoff per user, urgent first then
the oldest, claiming, handing back, and honest waiting times from the opening hours.
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bot.db.models import Handoff, Station
from bot.db.session import session_scope
from bot.gateway.handoff import hand_back
from bot.services import erasure, handoff
from bot.services.handoff import HandoffError
from bot.services.scope import Scope
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


def scope_of(session, role, code=None):
    station = session.execute(select(Station.id).where(Station.code == code)).scalar_one() if code else None
    return Scope.of(session, SimpleNamespace(id=1, role=role, station_id=station))


async def test_only_the_claimer_an_admin_or_the_district_hands_back(db):
    """The rule is the service's (handoff.close, and bot.gateway.handoff.hand_back over it),
    not the console's: a station colleague who did not claim the conversation is refused,
    nothing changes, and nothing reaches Rasa or WeChat."""
    with session_scope(db) as session:
        anting = session.execute(select(Station.id).where(Station.code == "JD-AT")).scalar_one()
    views = [_open(db, f"o-{i}", station_id=anting) for i in range(3)]
    with session_scope(db) as session:
        for view in views:
            handoff.claim(session, view.id, "wangkz", MONDAY_10AM)
        colleague, trainer = scope_of(session, "station", "JD-AT"), scope_of(session, "trainer")
        other_station = scope_of(session, "station", "JD-ML")
    for scope in (None, colleague):
        with pytest.raises(HandoffError) as refused, session_scope(db) as session:
            handoff.close(session, views[0].id, "liugs", MONDAY_10AM, scope=scope)
        assert refused.value.args[0] == handoff.NOT_THE_CLAIMER == "只有接待这个会话的工作人员可以交还机器人。"
    with pytest.raises(HandoffError, match="只有接待这个会话"):  # through the gateway: refused first
        await hand_back(db, None, "http://rasa.invalid", None, views[0].id, "liugs", MONDAY_10AM, scope=colleague)
    for scope in (other_station, trainer):  # another area's, or no case data: as if there were none
        with pytest.raises(LookupError), session_scope(db) as session:
            handoff.close(session, views[0].id, "zhoumq", MONDAY_10AM, scope=scope)
    with session_scope(db) as session:
        assert handoff.get(session, views[0].id).state == "claimed"
        # The claimer may (with or without their scope), and so may an admin or the district.
        assert handoff.close(session, views[0].id, "wangkz", MONDAY_10AM, scope=colleague).closed_by == "wangkz"
        assert handoff.close(session, views[1].id, "admin", MONDAY_10AM, scope=scope_of(session, "admin")).state \
            == "closed"
        assert handoff.close(session, views[2].id, "zhaozr", MONDAY_10AM,
                             scope=scope_of(session, "district", "JD")).closed_by == "zhaozr"


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
        erasure.forget_openid(session, vault, "o-1", MONDAY_10AM)
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
        erasure.forget_openid(session, vault, "o-1", MONDAY_10AM)
    with session_scope(db) as session:
        assert handoff.notes(session, view.id) == [] and handoff.current(session, "o-1") is None


# --- while the user waits: acknowledgements, leaving the queue, notes for staff ---------------

TUESDAY_2AM = dt.datetime(2026, 12, 8, 2, 0, tzinfo=SHANGHAI)
TEN_MINUTES = dt.timedelta(minutes=10)


def test_acknowledged_at_most_once_per_interval(db):
    view = _open(db, "o-1")
    assert view.acknowledged_at is None  # being told "转人工 done" is not an acknowledgement
    moments = [0, 1, 9.99, 10, 15, 19.9, 20]
    with session_scope(db) as session:
        said = [handoff.acknowledge(session, view.id, TUESDAY_2AM + dt.timedelta(minutes=m), TEN_MINUTES)
                for m in moments]
    assert said == [True, False, False, True, False, False, True]
    with session_scope(db) as session:
        assert handoff.get(session, view.id).acknowledged_at == TUESDAY_2AM + dt.timedelta(minutes=20)
        # A staff member's reply (or an explicit answer) counts: the next one waits the interval.
        handoff.mark_acknowledged(session, view.id, TUESDAY_2AM + dt.timedelta(minutes=25))
        assert not handoff.acknowledge(session, view.id, TUESDAY_2AM + dt.timedelta(minutes=34), TEN_MINUTES)
        assert handoff.acknowledge(session, view.id, TUESDAY_2AM + dt.timedelta(minutes=35), TEN_MINUTES)
        handoff.close(session, view.id, "zhaozr", TUESDAY_2AM + dt.timedelta(minutes=50),
                      scope=scope_of(session, "district", "JD"))  # nobody claimed it: the district may
        assert not handoff.acknowledge(session, view.id, TUESDAY_2AM + dt.timedelta(hours=2), TEN_MINUTES)


def test_two_gateways_acknowledging_at_once_tell_the_user_once(db):
    """Each acknowledgement is claimed by a guarded UPDATE, not read and then written: a
    second session that began before the first committed still finds the interval taken."""
    view = _open(db, "o-1")
    first, second = db(), db()
    try:
        second.begin()
        second.execute(select(Handoff.id)).all()  # its transaction (and snapshot) started first
        with first.begin():
            won = handoff.acknowledge(first, view.id, TUESDAY_2AM, TEN_MINUTES)
        lost = handoff.acknowledge(second, view.id, TUESDAY_2AM + dt.timedelta(seconds=30), TEN_MINUTES)
        second.commit()
    finally:
        first.close()
        second.close()
    assert (won, lost) == (True, False)


def test_the_user_leaves_the_queue_only_while_nobody_holds_it(db):
    view = _open(db, "o-1")
    with session_scope(db) as session:
        left = handoff.withdraw(session, view.id, TUESDAY_2AM)
    assert left.state == "closed" and left.closed_by == handoff.WITHDRAWN_BY == "用户撤回" and left.withdrawn
    assert left.closed_at == TUESDAY_2AM
    with session_scope(db) as session:
        assert handoff.current(session, "o-1") is None
        assert [h.withdrawn for h in handoff.history_of(session, "o-1")] == [True]
    with pytest.raises(HandoffError, match="已经结束"), session_scope(db) as session:
        handoff.withdraw(session, view.id, TUESDAY_2AM)
    held = _open(db, "o-2")
    with session_scope(db) as session:
        handoff.claim(session, held.id, "wangkz", TUESDAY_2AM)
    with pytest.raises(HandoffError, match="已经接待"), session_scope(db) as session:
        handoff.withdraw(session, held.id, TUESDAY_2AM)
    with session_scope(db) as session:
        still = handoff.get(session, held.id)
        assert still.state == "claimed" and not still.withdrawn
        closed = handoff.close(session, held.id, "wangkz", TUESDAY_2AM)
        assert closed.closed_by == "wangkz" and not closed.withdrawn


def test_a_wish_to_stop_is_noted_once_for_staff(db):
    view = _open(db, "o-1")
    with session_scope(db) as session:
        assert handoff.flag_stop_request(session, view.id, "不用人工了 我打13812345678", TUESDAY_2AM)
        assert not handoff.flag_stop_request(session, view.id, "算了", TUESDAY_2AM + dt.timedelta(minutes=1))
        (note,) = handoff.notes(session, view.id)
    assert note.staff == handoff.SYSTEM_AUTHOR and note.text.startswith(handoff.STOP_NOTE)
    assert "不用人工了" in note.text and "13812345678" not in note.text  # redacted like any note


def test_danger_while_waiting_moves_the_handoff_up_once(db):
    calm = _open(db, "o-1")
    later = _open(db, "o-2", minutes=5)
    with session_scope(db) as session:
        assert handoff.make_urgent(session, later.id, TUESDAY_2AM).urgent
        handoff.make_urgent(session, later.id, TUESDAY_2AM)  # again: no second note
        assert [v.id for v in handoff.queue(session)] == [later.id, calm.id]
        assert [n.text for n in handoff.notes(session, later.id)] == [handoff.URGENT_NOTE + "。"]


@pytest.mark.parametrize("when, on_duty, expected", [
    (TUESDAY_2AM, False, "现在是非工作时间，工作人员将于今天09:00上班后回复您。"),
    (dt.datetime(2026, 12, 8, 8, 59, tzinfo=SHANGHAI), False, "今天09:00上班后"),
    (dt.datetime(2026, 12, 8, 9, 0, tzinfo=SHANGHAI), True, "现在是工作时间"),
    # Either side of midnight (the centre opens on Saturday mornings), then the weekend.
    (dt.datetime(2026, 12, 11, 23, 59, tzinfo=SHANGHAI), False, "明天09:00上班后"),
    (dt.datetime(2026, 12, 12, 0, 1, tzinfo=SHANGHAI), False, "今天09:00上班后"),
    (dt.datetime(2026, 12, 12, 11, 30, tzinfo=SHANGHAI), False, "12月14日（周一）09:00上班后"),
    (dt.datetime(2026, 12, 13, 23, 59, tzinfo=SHANGHAI), False, "明天09:00上班后"),  # Sunday night
])
def test_on_duty_and_when_staff_answer(db, when, on_duty, expected):
    view = _open(db, "o-1")
    with session_scope(db) as session:
        assert handoff.on_duty(session, when) is on_duty
        assert expected in handoff.queue_message(session, view, when)


def test_the_queue_message_counts_those_ahead_only_while_waiting(db):
    _open(db, "o-a")
    b = _open(db, "o-b", minutes=1)
    with session_scope(db) as session:
        assert handoff.queue_message(session, b, TUESDAY_2AM).startswith("前面还有1位在等候。现在是非工作时间")
        held = handoff.claim(session, b.id, "wangkz", TUESDAY_2AM)
        assert handoff.queue_message(session, held, TUESDAY_2AM).startswith("现在是非工作时间")


def test_the_emergency_lines_come_from_the_data_file(tmp_path):
    text = handoff.load_emergency_help()
    for number in ("12356", "110", "120"):
        assert number in text
    assert "24小时" in text
    assert "12356" not in (PROJECT_ROOT / "bot" / "gateway" / "handoff.py").read_text(encoding="utf-8")
    broken = tmp_path / "emergency.yml"
    broken.write_text("text: 请拨打热线\n", encoding="utf-8")
    with pytest.raises(handoff.EmergencyDataError, match="text"):
        handoff.load_emergency_help(broken)
