"""An urgent complaint at night (actions/complaints.py's urgent path): the answer says
when a person will be there (the centre's opening hours, bot.services.handoff) and gives
the 24-hour lines from data/emergency.yml (12356, 110, 120), rendered by Rasa's own
response generator from utter_complaint_urgent. Fixed clock: 02:00 on a Tuesday."""

from __future__ import annotations

import datetime as dt

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import complaints as complaint_actions
from actions import handoff as handoff_actions
from actions.complaints import ActionSubmitComplaint
from bot.db.session import session_scope
from bot.services import handoff
from bot.services.stations import SHANGHAI
from bot.settings import PROJECT_ROOT
from tests.conftest import user_event

TUESDAY_2AM = dt.datetime(2026, 12, 8, 2, 0, tzinfo=SHANGHAI)
DOMAIN = Domain.load(str(PROJECT_ROOT / "domain"))


async def _rendered(messages):
    """What Rasa makes of the action's messages (RemoteAction._utter_responses)."""
    nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
    tracker = DialogueStateTracker.from_events("o-night", [SlotSet("service_phone", "021-69599999")],
                                               slots=DOMAIN.slots)
    texts = []
    for message in messages:
        message = dict(message)
        response = message.pop("response")
        texts.append((await nlg.generate(response, tracker, "rest", **message))["text"])
    return texts


async def test_urgent_words_at_night_say_when_staff_come_and_give_the_24_hour_lines(stations_db, monkeypatch):
    monkeypatch.setattr(complaint_actions, "now", lambda: TUESDAY_2AM)
    monkeypatch.setattr(handoff_actions, "now", lambda: TUESDAY_2AM)
    said = "补助一直不发 我真的不想活了"
    user = user_event(said, "file_complaint")
    tracker = Tracker("o-night", {"complaint_urgent": True, "complaint_description": said}, user["parse_data"],
                      [user], False, None, {}, None)
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, tracker, DOMAIN.as_dict())
    assert {"event": "pause", "timestamp": None} in events
    (text,) = await _rendered(dispatcher.messages)
    assert "紧急事项登记" in text and "{" not in text  # every placeholder filled
    assert "现在是非工作时间，工作人员将于今天09:00上班后回复您。" in text
    for number in ("12356", "110", "120", "021-69599999"):
        assert number in text
    assert handoff.emergency_help() in text  # the words of data/emergency.yml, as staff wrote them
    with session_scope(stations_db) as session:
        view = handoff.current(session, "o-night")
        assert view.urgent and view.acknowledged_at is None  # the next message gets "已收到"
