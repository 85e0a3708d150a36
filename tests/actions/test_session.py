from actions.session import ActionSessionStart
from tests.conftest import make_tracker


async def test_session_start_fills_configuration_and_keeps_user_slots(dispatcher, monkeypatch):
    monkeypatch.setenv("VETBOT_SERVICE_PHONE", "021-00000000")
    monkeypatch.setenv("VETBOT_BUREAU_NAME", "测试区退役军人事务局")
    tracker = make_tracker([], slots={"service_phone": "old", "station": "安亭镇", "empty": None})
    events = await ActionSessionStart().run(dispatcher, tracker, {})
    assert events[0]["event"] == "session_started"
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots == {"station": "安亭镇", "service_phone": "021-00000000", "bureau_name": "测试区退役军人事务局"}
    assert (events[-1]["event"], events[-1]["name"]) == ("action", "action_listen")
