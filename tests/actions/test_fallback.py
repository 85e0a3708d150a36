import re
from pathlib import Path

import pytest
import yaml

from actions.fallback import ActionDefaultAskAffirmation, likely_readings
from tests.conftest import make_tracker, user_event

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
INTENTS = sorted({i for p in DOMAIN.rglob("*.yml") for i in yaml.safe_load(p.read_text(encoding="utf-8")).get("intents") or []})
TOPICS = sorted({k.split("/", 1)[1] for p in (DOMAIN / "faq").glob("*.yml")
                 for k in yaml.safe_load(p.read_text(encoding="utf-8"))["responses"]})


def _parse(ranking, topic=None):
    parse = {"intent_ranking": [{"name": name, "confidence": c} for name, c in ranking]}
    if topic:
        parse["response_selector"] = {"faq": {"response": {"intent_response_key": topic}}}
    return parse


def test_two_most_likely_readings_skip_fallback_and_refine_faq():
    parse = _parse(
        [("nlu_fallback", 0.5), ("faq", 0.3), ("out_of_scope", 0.1), ("book_appointment", 0.08)],
        topic="faq/report_in",
    )
    assert likely_readings(parse) == ["faq/report_in", "book_appointment"]


async def test_clarifying_question_offers_two_readings_and_none_of_them(dispatcher):
    ranking = [("nlu_fallback", 0.5), ("find_station", 0.3), ("book_appointment", 0.2)]
    tracker = make_tracker([user_event("那个站", "nlu_fallback", 0.5, intent_ranking=_parse(ranking)["intent_ranking"])])
    await ActionDefaultAskAffirmation().run(dispatcher, tracker, {})
    message = dispatcher.messages[0]
    assert "查找服务站" in message["text"] and "预约办事" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/find_station", "/book_appointment", "/out_of_scope"]
    assert message["buttons"][-1]["title"] == "都不是"


async def test_no_reading_at_all_asks_to_rephrase(dispatcher):
    tracker = make_tracker([user_event("？？", "nlu_fallback", 0.4, intent_ranking=[{"name": "nlu_fallback", "confidence": 0.4}])])
    await ActionDefaultAskAffirmation().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_ask_rephrase"


@pytest.mark.parametrize("intent", INTENTS)
async def test_no_intent_or_topic_reaches_the_user_by_its_internal_name(dispatcher, intent):
    # Each intent of the domain beside each policy topic, as the two readings offered.
    for topic in TOPICS:
        ranking = [("nlu_fallback", 0.5), (intent, 0.3), ("faq", 0.2)]
        parse = _parse(ranking, topic=f"faq/{topic}")
        tracker = make_tracker([user_event("那个", "nlu_fallback", 0.5, intent_ranking=parse["intent_ranking"],
                                           response_selector=parse["response_selector"])])
        dispatcher.messages.clear()
        await ActionDefaultAskAffirmation().run(dispatcher, tracker, {})
        message = dispatcher.messages[0]
        shown = message.get("text", "") + "".join(b["title"] for b in message.get("buttons", []))
        assert not re.search(r"[A-Za-z_]{3,}", shown), shown
