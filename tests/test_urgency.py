"""Urgent words make any message a complaint, after the classifiers (bot.nlu.urgency)."""

from rasa.shared.nlu.training_data.message import Message

from bot.nlu.urgency import UrgentMessages


def _message(text, intent):
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": 0.8}, add_to_output=True)
    message.set("intent_ranking", [{"name": intent, "confidence": 0.8},
                                   {"name": "file_complaint", "confidence": 0.1}], add_to_output=True)
    return message


def test_urgent_words_override_the_classifiers():
    (message,) = UrgentMessages().process([_message("我不想活了", "stop")])
    assert message.get("intent") == {"name": "file_complaint", "confidence": 1.0}
    assert [r["name"] for r in message.get("intent_ranking")] == ["file_complaint", "stop"]


def test_other_messages_and_payloads_are_left_alone():
    ordinary, payload = UrgentMessages().process([_message("算了不想填了", "stop"),
                                                  _message('/inform{"x": "不想活了"}', "inform")])
    assert ordinary.get("intent")["name"] == "stop" and payload.get("intent")["name"] == "inform"
