"""The training data, the held-out split and the answers, checked as data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.nlu.examples import read_examples
from bot.text import normalize

ROOT = Path(__file__).resolve().parent.parent

# ../shared/nlu-contract.md: outside acceptance tests use exactly these names.
CONTROL_INTENTS = [
    "greet", "goodbye", "thank", "affirm", "deny", "stop", "bot_challenge", "help",
    "request_human", "out_of_scope", "inform",
]
TASK_INTENTS = [
    "book_appointment", "query_appointment", "cancel_appointment", "reschedule_appointment",
    "file_complaint", "query_complaint", "bind_identity", "query_my_benefits", "find_station",
    "job_seeking", "volunteer_signup", "give_feedback",
]
FAQ_TOPICS = [
    "preferential_card", "preferential_treatment", "report_in", "insurance_continuation",
    "employment_support", "education_training", "hardship_aid", "medical_care",
    "pension_subsidy", "legal_aid", "psych_support", "honor_plaque", "merit_notice",
    "martyr_commemoration", "placement", "military_retiree", "housing", "funeral",
    "archives", "family_benefits",
]

def _examples(directory: Path):
    """{intent: [plain text, …]} over every YAML file under `directory`."""
    found = {}
    for intent, text in read_examples(directory):
        found.setdefault(intent, []).append(text)
    return found


TRAIN = _examples(ROOT / "nlu_data" / "nlu")
HELDOUT = _examples(ROOT / "tests" / "nlu" / "heldout")


def _key(text: str) -> str:
    """What the model sees (normalised), without spaces and punctuation."""
    return re.sub(r"[\s\W_]+", "", normalize(text))


@pytest.mark.parametrize("intent", TASK_INTENTS)
def test_task_intents_have_25_examples(intent):
    assert len(TRAIN.get(intent, [])) >= 25


@pytest.mark.parametrize("intent", CONTROL_INTENTS)
def test_control_intents_have_10_examples(intent):
    assert len(TRAIN.get(intent, [])) >= 10


@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_faq_topics_have_12_examples(topic):
    assert len(TRAIN.get(f"faq/{topic}", [])) >= 12


@pytest.mark.parametrize("intent", sorted(set(CONTROL_INTENTS + TASK_INTENTS + [f"faq/{t}" for t in FAQ_TOPICS]) | set(TRAIN)))
def test_every_intent_and_topic_has_15_heldout_examples(intent):
    assert len(HELDOUT.get(intent, [])) >= 15


def test_the_heldout_split_has_at_least_800_messages():
    assert sum(len(texts) for texts in HELDOUT.values()) >= 800


def test_heldout_split_never_appears_in_training():
    training = {_key(text) for texts in TRAIN.values() for text in texts}
    leaked = [text for texts in HELDOUT.values() for text in texts if _key(text) in training]
    assert leaked == []


def test_no_example_is_labelled_twice():
    labels = {}
    clashes = []
    for intent, texts in TRAIN.items():
        for text in texts:
            previous = labels.setdefault(_key(text), intent)
            if previous != intent:
                clashes.append((text, previous, intent))
    assert clashes == []


def test_training_data_mixes_traditional_characters():
    traditional = re.compile(r"[優證報預約區遞轉戶檔撫衛醫療頭條雙與這個們還麼嗎]")
    for intent in TASK_INTENTS + [f"faq/{t}" for t in FAQ_TOPICS]:
        assert any(traditional.search(text) for text in TRAIN[intent]), intent


def test_no_personal_numbers_in_any_data():
    pattern = re.compile(r"(?<!\d)(\d{17}[\dXx]|1[3-9]\d{9})(?!\d)")
    for directory in (ROOT / "nlu_data", ROOT / "tests" / "nlu", ROOT / "domain"):
        for path in directory.rglob("*.yml"):
            assert not pattern.search(path.read_text(encoding="utf-8")), path


def _faq_responses():
    responses = {}
    for path in (ROOT / "domain" / "faq").glob("*.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        responses.update(data["responses"])
    return responses


FAQ_RESPONSES = _faq_responses()


@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_policy_answer_is_brief_sourced_and_ends_with_the_phone(topic):
    variants = FAQ_RESPONSES[f"utter_faq/{topic}"]
    for variant in variants:
        text = variant["text"]
        assert len(text) < 600
        assert "依据：" in text and "《" in text
        assert text.rstrip().endswith("咨询电话：{service_phone}")


def test_answers_cite_current_law_not_the_repealed_regulation():
    for name, variants in FAQ_RESPONSES.items():
        for variant in variants:
            assert "退役士兵安置条例" not in variant["text"], name


def test_jieba_dictionary_lines_are_well_formed():
    for path in (ROOT / "nlu_data" / "dictionary").iterdir():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                word, *rest = line.split()
                assert word and (not rest or rest[0].isdigit()), line
