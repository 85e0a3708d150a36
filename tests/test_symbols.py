"""Emoji, punctuation or symbols only (bot.symbols): the intent symbols_only, set after the
classifiers (bot.nlu.symbols.SymbolOnlyMessages)."""

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.normalizer import ChineseNormalizer
from bot.nlu.symbols import SymbolOnlyMessages
from bot.redaction import redact
from bot.symbols import SYMBOLS, THANKS, symbol_kind
from bot.text import normalize


def _message(text, intent="nlu_fallback", confidence=0.5):
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence}, add_to_output=True)
    message.set("intent_ranking", [{"name": intent, "confidence": confidence},
                                   {"name": "choose_option", "confidence": 0.46}], add_to_output=True)
    return message


def _through_the_pipeline(text, intent="nlu_fallback", confidence=0.5):
    """As Rasa runs it: the normaliser first, the classifiers' verdict, then the component."""
    (message,) = ChineseNormalizer().process([Message(data={"text": text})])
    normalised = _message(message.get("text"), intent, confidence)
    (message,) = SymbolOnlyMessages().process([normalised])
    return message


@pytest.mark.parametrize("text", ["👍👍👍", "🙏", "👌", "👏👏", "❤️", "🌹🌹🌹", "🙏🏻", "👍！", "👍 👍",
                                  "[强]", "[抱拳][抱拳]", "[玫瑰]"])
def test_a_thumbs_up_ok_folded_hands_applause_heart_or_rose_is_thanks(text):
    assert symbol_kind(normalize(text)) == THANKS


@pytest.mark.parametrize("text", ["？？？", "。。。", "😂", "……", "!!", "^_^", "😂👍", "[捂脸]", "～～"])
def test_other_symbols_only_are_symbols(text):
    assert symbol_kind(normalize(text)) == SYMBOLS


@pytest.mark.parametrize("text", ["谢谢👍", "好的", "ok", "1", "①", "第2个", "   ", "", "[强]好", "[666]",
                                  "😂咋整"])
def test_words_numbers_or_nothing_are_not(text):
    assert symbol_kind(normalize(text)) is None


def test_a_number_the_channel_took_out_is_not_symbols_only():
    # "13800000000。" reaches Rasa as "[手机号已隐去]。", which the normaliser blanks: still an answer
    # for the form that asked for a phone number.
    redacted = redact("13800000000。").text
    assert redacted != "13800000000。"
    assert symbol_kind(normalize(redacted)) is None
    assert _through_the_pipeline(redacted).get("intent")["name"] == "nlu_fallback"


@pytest.mark.parametrize("text", ["👍👍👍", "🙏", "？？？", "。。。", "😂", "👌"])
def test_the_component_sets_symbols_only_instead_of_the_fallback(text):
    message = _through_the_pipeline(text)
    assert message.get("intent") == {"name": "symbols_only", "confidence": 1.0}
    # The classifiers' ranking stays behind it, without the fallback.
    assert [r["name"] for r in message.get("intent_ranking")] == ["symbols_only", "choose_option"]


def test_a_confident_classifier_is_overruled_too():
    # The training data once taught "👍" as affirm: it would be taken as a "yes" in a form.
    message = _through_the_pipeline("👍", intent="affirm", confidence=0.98)
    assert message.get("intent")["name"] == "symbols_only"


def test_words_and_payloads_are_left_alone():
    words, payload = SymbolOnlyMessages().process([_message("优待证怎么办", "faq", 0.9), _message("/greet", "greet")])
    assert words.get("intent")["name"] == "faq" and payload.get("intent")["name"] == "greet"


def test_the_component_runs_right_after_the_fallback_classifier():
    import yaml

    from bot.settings import PROJECT_ROOT

    names = [c["name"] for c in yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))["pipeline"]]
    assert names.index("bot.nlu.symbols.SymbolOnlyMessages") == names.index("FallbackClassifier") + 1


def test_no_form_takes_symbols_only_for_an_answer():
    # A "👍" at "请问您想到哪个服务站" is not a station, nor part of a complaint's story.
    import yaml

    from bot.settings import PROJECT_ROOT

    checked = []
    for path in sorted((PROJECT_ROOT / "domain").rglob("*.yml")):
        slots = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("slots") or {}
        for name, slot in slots.items():
            for mapping in slot.get("mappings") or []:
                if mapping.get("type") == "from_text":
                    assert "symbols_only" in (mapping.get("not_intent") or []), name
                    checked.append(name)
    assert {"appointment_station", "appointment_confirmed", "complaint_details", "complaint_phone"} <= set(checked)
