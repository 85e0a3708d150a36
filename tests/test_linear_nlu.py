"""The deterministic linear intent classifier and response selector (bot.nlu.linear),
trained through Rasa's component API on a small data set with the real jieba tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.linear import Featurizer, LinearIntentClassifier, LinearResponseSelector

EXAMPLES = {
    "greet": ["你好", "在吗", "同志你好", "有人在吗", "您好 请问在不在"],
    "book_appointment": ["我想预约退役报到", "帮我约个时间去服务站", "预约明天上午办事",
                         "能不能约下周二去江桥", "我要挂个号去办优待证"],
    "faq": ["优待证怎么申请", "退役报到要带什么材料", "优待证有什么用", "报到的期限是多久",
            "谁能办优待证", "退役以后多少天内报到"],
}
TOPICS = {
    "优待证怎么申请": "faq/preferential_card", "优待证有什么用": "faq/preferential_card",
    "谁能办优待证": "faq/preferential_card",
    "退役报到要带什么材料": "faq/report_in", "报到的期限是多久": "faq/report_in",
    "退役以后多少天内报到": "faq/report_in",
}


def _tokenizer():
    return JiebaTokenizer.create(JiebaTokenizer.get_default_config(), None, None, None)


def _training_data() -> TrainingData:
    messages = []
    for intent, texts in EXAMPLES.items():
        for text in texts:
            data = {"text": text, "intent": intent}
            if intent == "faq":
                data["intent_response_key"] = TOPICS[text]
            messages.append(Message(data=data))
    responses = {
        "utter_faq/preferential_card": [{"text": "优待证的答复"}],
        "utter_faq/report_in": [{"text": "报到的答复"}],
    }
    data = TrainingData(messages, responses=responses)
    _tokenizer().process_training_data(data)
    return data


def _message(text: str) -> Message:
    (message,) = _tokenizer().process([Message(data={"text": text})])
    return message


def _train(cls, tmp_path, name, **config):
    (tmp_path / name).mkdir()
    storage = LocalModelStorage(tmp_path / name)
    resource = Resource(name)
    context = ExecutionContext(node_name=name, graph_schema=None)
    component = cls.create({**cls.get_default_config(), **config}, storage, resource, context)
    component.train(_training_data())
    return component, storage, resource, context


def test_the_intent_comes_with_a_ranking_and_survives_saving(tmp_path):
    classifier, storage, resource, context = _train(LinearIntentClassifier, tmp_path, "intent")
    texts = ["你好啊", "帮我预约下周去服务站", "优待证怎么办"]
    before = classifier.process([_message(t) for t in texts])
    assert [m.get("intent")["name"] for m in before] == ["greet", "book_appointment", "faq"]
    for message in before:
        ranking = message.get("intent_ranking")
        assert ranking[0]["name"] == message.get("intent")["name"]
        assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-9
        assert ranking == sorted(ranking, key=lambda r: -r["confidence"])

    loaded = LinearIntentClassifier.load(LinearIntentClassifier.get_default_config(), storage, resource, context)
    after = loaded.process([_message(t) for t in texts])
    assert [m.get("intent_ranking") for m in after] == [m.get("intent_ranking") for m in before]


def test_training_twice_gives_the_same_weights_bit_for_bit(tmp_path):
    first = _train(LinearIntentClassifier, tmp_path, "a")[0]
    second = _train(LinearIntentClassifier, tmp_path, "b")[0]
    assert first.model.classes == second.model.classes
    assert np.array_equal(first.model.coef, second.model.coef)
    assert np.array_equal(first.model.intercept, second.model.intercept)


def test_the_policy_topic_is_given_in_rasas_response_selector_format(tmp_path):
    selector, storage, resource, context = _train(LinearResponseSelector, tmp_path, "faq")
    loaded = LinearResponseSelector.load(LinearResponseSelector.get_default_config(), storage, resource, context)
    for component in (selector, loaded):
        (message,) = component.process([_message("退役后报到要带哪些材料")])
        faq = message.get("response_selector")["faq"]
        assert faq["response"]["intent_response_key"] == "faq/report_in"
        assert faq["response"]["utter_action"] == "utter_faq/report_in"
        assert faq["response"]["responses"] == [{"text": "报到的答复"}]
        assert [r["intent_response_key"] for r in faq["ranking"]] == ["faq/report_in", "faq/preferential_card"]
        assert faq["response"]["confidence"] == faq["ranking"][0]["confidence"] > 0.5
        assert message.get("response_selector")["all_retrieval_intents"] == ["faq"]


def test_a_homophone_shares_the_pinyin_features():
    featurizer = Featurizer(pinyin=True)
    right = featurizer.terms("优待证", ["优待证"])["p"]
    typo = featurizer.terms("优带证", ["优带证"])["p"]
    assert right == typo and "you_dai" in right
    # Without pinyin the two have only characters in common.
    assert not Featurizer(pinyin=False).terms("优带证", ["优带证"])["p"]


def test_features_do_not_depend_on_the_order_of_the_training_texts():
    texts = [("我要预约", ["我要", "预约"]), ("优待证怎么办", ["优待证", "怎么", "办"]), ("你好", ["你好"])]
    a, b = Featurizer(), Featurizer()
    x = a.fit_transform([a.terms(t, w) for t, w in texts])
    y = b.fit_transform([b.terms(t, w) for t, w in reversed(texts)])
    assert a.vocabulary == b.vocabulary
    assert np.array_equal(x.toarray(), y.toarray()[::-1])
    # Each block is L2-normalised: four blocks, squared norms 1 each where present.
    assert np.isclose((x.multiply(x)).sum(axis=1)[0, 0], 3.0)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_is_not_an_error(tmp_path, text):
    classifier = _train(LinearIntentClassifier, tmp_path, "empty")[0]
    (message,) = classifier.process([Message(data={"text": text})])
    assert message.get("intent")["name"] in EXAMPLES


LONG_TWO_QUESTIONS = ("同志您好，我是前年从部队回来的，一直在外地打工，最近才回到嘉定。"
                      "第一，我想问一下优待证到底怎么申请？第二，退役以后多少天之内要去报到，现在去还来得及吗？"
                      "麻烦帮我看看，谢谢。")


def test_a_long_message_with_several_questions_gets_the_topic_of_each(tmp_path):
    selector = _train(LinearResponseSelector, tmp_path, "faq")[0]
    (message,) = selector.process([_message(LONG_TWO_QUESTIONS)])
    topics = message.get("policy_topics")
    assert [t["intent_response_key"] for t in topics] == ["faq/preferential_card", "faq/report_in"]
    assert topics[0]["text"].startswith("第一") and all(t["confidence"] >= 0.6 for t in topics)
    # A short message, or a long one that asks one thing, has none.
    (short,) = selector.process([_message("优待证怎么申请？报到要带什么材料？")])
    assert short.get("policy_topics") is None
    (one,) = selector.process([_message("同志您好，我是前年从部队回来的，一直在外地打工，最近才回到嘉定，"
                                        "家里人让我问问，优待证到底怎么申请？麻烦帮我看看，谢谢。")])
    assert one.get("policy_topics") is None


@pytest.mark.parametrize("intent, becomes", [("nlu_fallback", "faq"), ("greet", "faq"),
                                             ("add_complaint", "add_complaint"), ("book_appointment", "book_appointment")])
def test_several_policy_questions_make_a_policy_question_unless_something_is_to_be_done(intent, becomes):
    from bot.nlu.several import SeveralQuestions

    message = Message(data={"text": LONG_TWO_QUESTIONS, "intent": {"name": intent, "confidence": 0.4},
                            "intent_ranking": [{"name": intent, "confidence": 0.4}],
                            "response_selector": {"faq": {"response": {"intent_response_key": "faq/report_in"}}},
                            "policy_topics": [{"intent_response_key": "faq/preferential_card", "confidence": 0.9},
                                              {"intent_response_key": "faq/report_in", "confidence": 0.8}]})
    SeveralQuestions().process([message])
    assert message.get("intent")["name"] == becomes
    if becomes == "faq":
        assert message.get("intent_ranking")[0] == {"name": "faq", "confidence": 1.0}
        chosen = message.get("response_selector")["faq"]["response"]
        assert chosen["intent_response_key"] == "faq/preferential_card"  # the first asked
        assert chosen["utter_action"] == "utter_faq/preferential_card"
