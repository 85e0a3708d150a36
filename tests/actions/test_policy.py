"""action_answer_policy: the policy answer, short follow-ups kept on the topic before."""

import pytest

from actions.policy import ActionAnswerPolicy, is_follow_up
from tests.conftest import make_tracker, user_event


def _asked(text, topic, last=None):
    selector = {"faq": {"response": {"intent_response_key": topic, "confidence": 0.99}}}
    return make_tracker([user_event(text, "faq", response_selector=selector)],
                        slots={"last_policy_topic": last} if last else {})


async def test_the_topic_of_the_message_is_answered_and_remembered(dispatcher):
    events = await ActionAnswerPolicy().run(dispatcher, _asked("保险怎么接续", "faq/insurance_continuation"), {})
    assert dispatcher.messages[0]["response"] == "utter_faq/insurance_continuation"
    assert events == [{"event": "slot", "timestamp": None, "name": "last_policy_topic",
                       "value": "faq/insurance_continuation"}]


@pytest.mark.parametrize("text", ["那需要带什么材料", "那要带什么材料", "在哪办", "那去哪里申请呢", "多少钱"])
async def test_a_short_follow_up_stays_on_the_topic_before(dispatcher, text):
    tracker = _asked(text, "faq/preferential_card", last="faq/insurance_continuation")
    await ActionAnswerPolicy().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_faq/insurance_continuation"


@pytest.mark.parametrize("text", ["优待证要带什么材料", "那光荣牌呢", "退伍以后多少天之内要去报到要带啥",
                                  "同志你好 我是老复员军人 今年八十二了 坐公交车能不能免费"])
async def test_a_question_with_its_own_subject_or_a_long_one_gets_its_own_topic(dispatcher, text):
    tracker = _asked(text, "faq/preferential_card", last="faq/insurance_continuation")
    await ActionAnswerPolicy().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_faq/preferential_card"


def test_follow_up_detection():
    assert is_follow_up("那需要带什么材料") and is_follow_up("什么时候发呢")
    assert not is_follow_up("光荣牌怎么申请") and not is_follow_up("你好")


async def test_a_message_of_several_questions_gets_the_first_answered_and_the_others_offered(dispatcher):
    topics = [{"intent_response_key": key, "confidence": 0.9} for key in
              ("faq/insurance_continuation", "faq/preferential_card", "faq/employment_support")]
    selector = {"faq": {"response": {"intent_response_key": "faq/insurance_continuation", "confidence": 0.9}}}
    tracker = make_tracker([user_event("第一，社保怎么接续？第二，优待证怎么申请？第三，创业贷款怎么申请？", "faq",
                                       response_selector=selector, policy_topics=topics)])
    await ActionAnswerPolicy().run(dispatcher, tracker, {})
    answer, offer = dispatcher.messages
    assert answer["response"] == "utter_faq/insurance_continuation"
    assert offer["text"].startswith("您的留言还问到了下面几件事，请回复数字查看；") and "转人工" in offer["text"]
    assert offer["buttons"] == [{"title": "退役军人优待证政策", "payload": "/faq/preferential_card"},
                                {"title": "就业创业扶持", "payload": "/faq/employment_support"}]
