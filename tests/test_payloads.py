from bot.payloads import parse_payload


def test_intent_payload():
    data = parse_payload("/book_appointment")
    assert data["intent"] == {"name": "book_appointment", "confidence": 1.0}
    assert data["entities"] == []
    assert "response_selector" not in data


def test_payload_with_entities():
    data = parse_payload('/inform{"service_type": "退役报到"}')
    assert data["intent"]["name"] == "inform"
    assert data["entities"] == [{"entity": "service_type", "value": "退役报到"}]


def test_faq_topic_payload_carries_the_response_selector_choice():
    data = parse_payload("/faq/report_in")
    assert data["intent"]["name"] == "faq"
    selected = data["response_selector"]["faq"]["response"]
    assert selected["intent_response_key"] == "faq/report_in"
    assert selected["utter_action"] == "utter_faq/report_in"


def test_bad_payloads_are_refused():
    assert parse_payload("随便说点") is None
    assert parse_payload("/greet{not json}") is None
    assert parse_payload("/greet/topic") is None  # only faq has topics
    assert parse_payload('/inform["a"]') is None
