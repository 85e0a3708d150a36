"""转人工 in chat (actions/handoff.py) against a migrated SQLite database, fixed clock."""

from __future__ import annotations

import datetime as dt

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import handoff as handoff_actions
from actions.handoff import ActionRequestHuman
from bot.db.session import session_scope
from bot.services import handoff
from bot.services.stations import SHANGHAI
from tests.actions.test_stations import bind_veteran
from tests.conftest import user_event

SATURDAY_2PM = dt.datetime(2026, 11, 28, 14, 0, tzinfo=SHANGHAI)


@pytest.fixture
def factory(stations_db, monkeypatch):
    monkeypatch.setattr(handoff_actions, "now", lambda: SATURDAY_2PM)
    return stations_db


async def _ask(sender):
    user = user_event("转人工", "request_human")
    tracker = Tracker(sender, {}, user["parse_data"], [user], False, None, {}, None)
    dispatcher = CollectingDispatcher()
    events = await ActionRequestHuman().run(dispatcher, tracker, {})
    return dispatcher.messages[0]["text"], events


async def test_the_conversation_is_paused_and_the_user_told_when(factory, vault):
    bind_veteran(factory, vault, "o-first", "安亭镇", "黄渡社区", station_code="JD-AT")
    text, events = await _ask("o-first")
    assert [e["event"] for e in events] == ["pause", "action"] and events[1]["name"] == "action_listen"
    assert text.startswith("好的，已为您转接人工服务。") and "11月30日（周一）09:00上班后" in text
    assert "前面还有" not in text
    text, _ = await _ask("o-second")
    assert "前面还有1位在等候" in text
    with session_scope(factory) as session:
        first = handoff.current(session, "o-first")
        assert first.reason == "request_human" and first.station_id is not None  # the household's station
        assert handoff.current(session, "o-second").station_id is None


# --- two fallbacks in a row (action_default_fallback, overridden) ----------------------------


def _action(name):
    return {"event": "action", "name": name}


async def _fallback(events, sender="o-puzzled"):
    tracker = Tracker(sender, {}, events[-1]["parse_data"], events, False, None, {}, None)
    dispatcher = CollectingDispatcher()
    result = await handoff_actions.ActionDefaultFallback().run(dispatcher, tracker, {})
    return dispatcher.messages[0], result


async def test_a_first_failure_answers_utter_default_and_is_reverted(factory):
    events = [user_event("优待证", "faq"), _action("utter_faq"), _action("action_listen"),
              user_event("那个东西呢", "inform", 0.9)]
    message, result = await _fallback(events)
    assert message["response"] == "utter_default" and [e["event"] for e in result] == ["rewind"]
    with session_scope(factory) as session:
        assert handoff.current(session, "o-puzzled") is None


@pytest.mark.parametrize("before", [
    # the two-stage fallback asked which reading was meant, and the answer was unclear again
    [user_event("嗯那个", "nlu_fallback", 0.3), _action("action_two_stage_fallback")],
    # Rasa's core fallback twice
    [user_event("这个呢", "inform", 0.9), _action("action_default_fallback"), {"event": "rewind"}],
])
async def test_the_second_failure_in_a_row_hands_over(factory, before):
    events = [user_event("你好", "greet"), _action("utter_greet"), _action("action_listen"), *before,
              _action("action_listen"), user_event("啊啊啊", "nlu_fallback", 0.2)]
    message, result = await _fallback(events)
    assert message["text"].startswith("抱歉，我还是没能理解您的意思，已为您转接人工服务。")
    assert "11月30日（周一）09:00上班后" in message["text"]  # Saturday: when a person will answer
    assert [e["event"] for e in result] == ["pause", "action"]
    with session_scope(factory) as session:
        view = handoff.current(session, "o-puzzled")
        assert view.reason == "fallback" and view.state == "waiting"


async def test_failures_with_a_good_answer_between_do_not_count(factory):
    events = [user_event("嗯那个", "nlu_fallback", 0.3), _action("action_two_stage_fallback"),
              _action("action_listen"), user_event("优待证", "faq"), _action("utter_faq"), _action("action_listen"),
              user_event("啊啊啊", "nlu_fallback", 0.2)]
    message, result = await _fallback(events)
    assert message["response"] == "utter_default"
