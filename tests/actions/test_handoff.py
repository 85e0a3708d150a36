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
