"""The WeChat gateway while a user waits for staff (bot.gateway.wechat.respond →
bot.gateway.handoff.while_held), through the real /wechat endpoint (the simulated
WeChat user signs each message) and the real database (SQLite and PostgreSQL), with
Rasa's HTTP API played on Rasa's own trackers and events (tests/gateway/rasa_stand_in.py:
a paused conversation records a message and answers nothing, as in Rasa). 转人工 runs
the real action_request_human. The clock is fixed: 02:00 on a Tuesday, Beijing time.

Before this, every message while waiting got nothing at all (WeChat was answered
``success``), including "不用人工了", "菜单" and 转人工 again."""

from __future__ import annotations

import datetime as dt

import pytest
from rasa.shared.core.events import ConversationPaused
from sqlalchemy import func, select

from bot.db.models import Handoff, HandoffNote
from bot.db.session import session_scope
from bot.gateway.handoff import HELD_STOP, RECEIVED_ON_DUTY, WITHDRAWN, leaving
from bot.services import handoff
from bot.services.stations import SHANGHAI
from tests.gateway.conftest import TUESDAY_2AM
from tests.gateway.rasa_stand_in import MENU, POLICY_TOPICS

TUESDAY_10AM = dt.datetime(2026, 12, 8, 10, 0, tzinfo=SHANGHAI)


def _later(gateway, minutes: float) -> None:
    gateway.clock["now"] = gateway.clock["now"] + dt.timedelta(minutes=minutes)


async def _say(gateway, line: str) -> str:
    answer = await gateway.user.say(line)
    assert answer.status == 200
    return "\n\n".join(answer.texts)


def _handoffs(gateway):
    with session_scope(gateway.factory) as session:
        return session.execute(select(Handoff.state, Handoff.closed_by, Handoff.urgent)
                               .where(Handoff.openid == gateway.user.openid).order_by(Handoff.id)).all()


def _kinds(gateway):
    return [e["event"] for e in gateway.rasa.events(gateway.user.openid)]


def _user_texts(gateway):
    return [e["text"] for e in gateway.rasa.events(gateway.user.openid) if e["event"] == "user"]


async def test_waiting_at_night_acknowledged_at_most_once_in_ten_minutes(gateway):
    asked = await _say(gateway, "转人工")
    assert "已为您转接人工服务" in asked and "今天09:00上班后" in asked
    first = await _say(gateway, "喂 有人吗")
    assert first.startswith("已收到您的消息") and "工作人员将于今天09:00上班后回复您" in first
    _later(gateway, 3)
    assert await _say(gateway, "有人吗") == ""  # within the interval: quiet
    _later(gateway, 6.9)
    assert await _say(gateway, "人呢") == ""  # 9 minutes 54 seconds after the first
    _later(gateway, 0.2)
    again = await _say(gateway, "还在吗")  # 10 minutes after: once more
    assert again.startswith("已收到您的消息")
    # Every message is in the transcript for staff, and so is what the user was told.
    assert _user_texts(gateway)[1:] == ["喂 有人吗", "有人吗", "人呢", "还在吗"]
    told = [e for e in gateway.rasa.events(gateway.user.openid) if e["event"] == "bot"
            and (e.get("metadata") or {}).get("auto")]
    assert [e["text"] for e in told] == [first, again]
    assert _handoffs(gateway) == [("waiting", None, False)] and "resume" not in _kinds(gateway)


async def test_on_duty_the_acknowledgement_says_staff_are_on_it(gateway):
    gateway.clock["now"] = TUESDAY_10AM
    await _say(gateway, "转人工")
    assert await _say(gateway, "在吗") == RECEIVED_ON_DUTY


async def test_withdrawing_with_a_question_gets_the_bot_answer(gateway):
    await _say(gateway, "转人工")
    await _say(gateway, "喂 有人吗")
    _later(gateway, 1)
    answer = await _say(gateway, "不用人工了 我要问政策")
    assert answer.startswith(WITHDRAWN) and POLICY_TOPICS in answer
    assert _handoffs(gateway) == [("closed", handoff.WITHDRAWN_BY, False)]
    # The Rasa way: resumed, told, listening; the words of leaving recorded while paused,
    # the question as a turn of its own.
    events = gateway.rasa.events(gateway.user.openid)
    kinds = _kinds(gateway)
    assert kinds.index("pause") < kinds.index("resume")
    assert _user_texts(gateway)[-2:] == ["不用人工了", "我要问政策"]
    resumed = kinds.index("resume")
    assert [e["event"] for e in events[resumed:resumed + 4]] == ["resume", "bot", "action", "user"]
    assert not gateway.rasa.tracker(gateway.user.openid).is_paused()
    assert (await _say(gateway, "你好")).startswith("您好")  # the bot again
    with session_scope(gateway.factory) as session:
        (view,) = handoff.history_of(session, gateway.user.openid)
        assert view.withdrawn and view.closed_by == "用户撤回"


@pytest.mark.parametrize("words", ["不用了", "算了", "退出人工"])
async def test_withdrawing_alone(gateway, words):
    await _say(gateway, "转人工")
    answer = await _say(gateway, words)
    assert answer.startswith(WITHDRAWN) and "菜单" in answer
    assert _handoffs(gateway) == [("closed", handoff.WITHDRAWN_BY, False)]
    assert _user_texts(gateway)[-1] == words  # kept in the transcript


@pytest.mark.parametrize("line, expected", [("菜单", MENU), ("返回", MENU), ("/click MENU_POLICY", POLICY_TOPICS),
                                            ("/click MENU_NO_SUCH_KEY", MENU)])
async def test_the_menu_and_a_menu_click_leave_the_queue(gateway, line, expected):
    await _say(gateway, "转人工")
    answer = await _say(gateway, line)
    assert answer.startswith(WITHDRAWN) and expected in answer
    assert _handoffs(gateway) == [("closed", handoff.WITHDRAWN_BY, False)]


async def test_asking_for_a_person_again_is_answered_without_a_second_entry(gateway):
    await _say(gateway, "转人工")
    again = await _say(gateway, "转人工")
    assert again.startswith("您已在人工服务队列中") and "今天09:00上班后" in again
    clicked = await _say(gateway, "/click MENU_HUMAN")  # the menu's 人工服务: not leaving
    assert clicked.startswith("您已在人工服务队列中")
    assert _handoffs(gateway) == [("waiting", None, False)]


async def test_once_claimed_the_user_is_told_staff_will_end_it(gateway):
    await _say(gateway, "转人工")
    with session_scope(gateway.factory) as session:
        view = handoff.current(session, gateway.user.openid)
        handoff.claim(session, view.id, "wangkz", TUESDAY_2AM)
    for words in ("不用人工了", "菜单"):
        assert await _say(gateway, words) == HELD_STOP
    assert _handoffs(gateway) == [("claimed", None, False)]
    assert gateway.rasa.tracker(gateway.user.openid).is_paused()
    assert _user_texts(gateway)[-2:] == ["不用人工了", "菜单"]  # staff see them
    with session_scope(gateway.factory) as session:  # and a note, once
        notes = handoff.notes(session, view.id)
    assert [(n.staff, n.text.startswith("用户表示不再需要人工服务")) for n in notes] == [(handoff.SYSTEM_AUTHOR, True)]
    assert "不用人工了" in notes[0].text
    _later(gateway, 1)
    assert await _say(gateway, "你们处理得怎么样了") == ""  # told a moment ago


async def test_words_of_danger_while_waiting_get_the_lines_and_the_top_of_the_queue(gateway):
    await _say(gateway, "转人工")
    await _say(gateway, "喂")
    answer = await _say(gateway, "算了 我真的不想活了")  # 算了, but not leaving: danger
    for expected in ("12356", "110", "120", "今天09:00上班后"):
        assert expected in answer
    assert _handoffs(gateway) == [("waiting", None, True)]
    with session_scope(gateway.factory) as session:
        view = handoff.current(session, gateway.user.openid)
        assert any(n.text.startswith(handoff.URGENT_NOTE) for n in handoff.notes(session, view.id))


async def test_after_an_urgent_complaint_at_night_hurrying_is_acknowledged(gateway):
    """The complaint action opened an urgent handoff and paused (its answer gave the lines);
    "你们能不能快点来人" must not meet silence."""
    with session_scope(gateway.factory) as session:
        handoff.open_handoff(session, gateway.user.openid, "urgent", TUESDAY_2AM, urgent=True,
                             case_number="TS20261208-0001")
    gateway.rasa.tracker(gateway.user.openid).update(ConversationPaused())
    _later(gateway, 2)
    answer = await _say(gateway, "你们能不能快点来人")
    assert answer.startswith("已收到您的消息") and "今天09:00上班后" in answer
    assert "12356" in answer and "110" in answer and "120" in answer
    _later(gateway, 1)
    assert await _say(gateway, "快点") == ""


def test_what_leaves_the_queue():
    assert leaving("不用人工了 我要问政策").then == "我要问政策"
    assert leaving("不用人工了 我要问政策").said == "不用人工了"
    assert leaving("不用人工了，我要问政策").then == "我要问政策"
    assert leaving("好的 不用了谢谢").then == "谢谢"
    assert leaving("算了吧").then is None and leaving("算了吧").said == "算了吧"
    assert leaving("取消人工服务").said == "取消人工服务"
    assert leaving("菜单").then == "/help" and leaving("返回主菜单").then == "/help"
    assert leaving("/policy_topics", clicked=True).then == "/policy_topics"
    for staying in ("算了 不想活了", "菜单里有什么", "我不用人工也行吗", "有人吗", "/send_attachment{}"):
        assert leaving(staying) is None, staying
    assert leaving("/request_human", clicked=True) is None


async def test_waiting_without_a_pause_is_not_answered_for(gateway):
    """A handoff open in the database but a conversation Rasa does not hold paused (out of
    step): the bot answers as usual, the gateway adds nothing."""
    with session_scope(gateway.factory) as session:
        handoff.open_handoff(session, gateway.user.openid, "request_human", TUESDAY_2AM)
    assert (await _say(gateway, "你好")).startswith("您好")
    with session_scope(gateway.factory) as session:
        assert session.execute(select(func.count()).select_from(HandoffNote)).scalar_one() == 0
        assert session.execute(select(Handoff.acknowledged_at)).scalar_one() is None


async def test_leaving_an_urgent_wait_keeps_the_lines(gateway):
    with session_scope(gateway.factory) as session:
        handoff.open_handoff(session, gateway.user.openid, "urgent", TUESDAY_2AM, urgent=True,
                             case_number="TS20261208-0001")
    gateway.rasa.tracker(gateway.user.openid).update(ConversationPaused())
    answer = await _say(gateway, "算了")
    assert answer.startswith(WITHDRAWN) and "TS20261208-0001" in answer and "12356" in answer
    assert _handoffs(gateway) == [("closed", handoff.WITHDRAWN_BY, True)]
