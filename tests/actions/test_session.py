from pathlib import Path

import yaml

from actions.session import ActionConfiguration, ActionSessionStart
from tests.conftest import make_tracker, user_event

DOMAIN = Path(__file__).resolve().parents[2] / "domain"


async def test_session_start_fills_configuration_and_keeps_user_slots(dispatcher, monkeypatch):
    monkeypatch.setenv("VETBOT_SERVICE_PHONE", "021-00000000")
    monkeypatch.setenv("VETBOT_BUREAU_NAME", "测试区退役军人事务局")
    tracker = make_tracker([], slots={"service_phone": "old", "station": "安亭镇", "empty": None})
    events = await ActionSessionStart().run(dispatcher, tracker, {})
    assert events[0]["event"] == "session_started"
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots == {"station": "安亭镇", "service_phone": "021-00000000", "bureau_name": "测试区退役军人事务局"}
    assert (events[-1]["event"], events[-1]["name"]) == ("action", "action_listen")


async def test_a_session_begun_before_the_name_was_configured_greets_with_the_configured_name(dispatcher,
                                                                                              monkeypatch):
    # The demo's default was kept at session start; the bureau then set its name and restarted.
    monkeypatch.setenv("VETBOT_SERVICE_PHONE", "021-69590000")
    monkeypatch.setenv("VETBOT_BUREAU_NAME", "嘉定区退役军人事务局")
    tracker = make_tracker([user_event("/greet", "greet")],
                           slots={"service_phone": "12345", "bureau_name": "区退役军人事务局"})
    events = await ActionConfiguration().run(dispatcher, tracker, {})
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"} == {
        "service_phone": "021-69590000", "bureau_name": "嘉定区退役军人事务局"}
    assert dispatcher.messages == []


async def test_configuration_already_in_the_slots_adds_nothing(dispatcher, monkeypatch):
    monkeypatch.setenv("VETBOT_SERVICE_PHONE", "021-69590000")
    monkeypatch.setenv("VETBOT_BUREAU_NAME", "嘉定区退役军人事务局")
    tracker = make_tracker([user_event("你好", "greet")],
                           slots={"service_phone": "021-69590000", "bureau_name": "嘉定区退役军人事务局"})
    assert await ActionConfiguration().run(dispatcher, tracker, {}) == []


def test_rasa_checks_the_configuration_slots_after_every_user_message():
    # A custom slot mapping's action is run by Rasa's action_extract_slots after each user
    # message (the subscribe greeting's /greet too), before the bot answers.
    core = yaml.safe_load((DOMAIN / "core.yml").read_text(encoding="utf-8"))
    for slot in ("service_phone", "bureau_name"):
        assert core["slots"][slot]["mappings"] == [{"type": "custom", "action": "action_configuration"}]
    assert "action_configuration" in core["actions"]
