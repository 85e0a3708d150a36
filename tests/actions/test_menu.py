import pytest

from actions.menu import ActionChooseOption, buttons_offered
from tests.conftest import bot_event, make_tracker, user_event

MENU = [
    {"title": "政策咨询", "payload": "/policy_topics"},
    {"title": "预约办事", "payload": "/book_appointment"},
    {"title": "退役报到", "payload": "/faq/report_in"},
]


def _greeted_then(text):
    return [
        user_event("你好", "greet"),
        bot_event("您好！"),
        bot_event("请回复数字选择服务：", MENU),
        user_event(text, "choose_option"),
    ]


async def test_number_becomes_the_buttons_intent(dispatcher):
    events = await ActionChooseOption().run(dispatcher, make_tracker(_greeted_then("2")), {})
    assert dispatcher.messages == []
    assert [e["event"] for e in events] == ["rewind", "action", "user"]
    assert events[1]["name"] == "action_listen"
    assert events[2]["text"] == "预约办事"
    assert events[2]["parse_data"]["intent"]["name"] == "book_appointment"


async def test_chinese_ordinal_picks_a_policy_topic(dispatcher):
    events = await ActionChooseOption().run(dispatcher, make_tracker(_greeted_then("第三个")), {})
    selector = events[2]["parse_data"]["response_selector"]["faq"]["response"]
    assert events[2]["parse_data"]["intent"]["name"] == "faq"
    assert selector["utter_action"] == "utter_faq/report_in"


async def test_number_out_of_range_reoffers_the_list(dispatcher):
    events = await ActionChooseOption().run(dispatcher, make_tracker(_greeted_then("7")), {})
    assert events == []
    assert dispatcher.messages[0]["response"] == "utter_choose_in_range"
    assert dispatcher.messages[0]["max_option"] == 3
    assert dispatcher.messages[1]["buttons"] == MENU


async def test_number_without_a_list_asks_what_the_user_wants(dispatcher):
    tracker = make_tracker([user_event("你好", "greet"), bot_event("您好！"), user_event("2", "choose_option")])
    events = await ActionChooseOption().run(dispatcher, tracker, {})
    assert events == []
    assert dispatcher.messages[0]["response"] == "utter_no_menu_to_choose"


def test_an_answer_after_the_menu_makes_the_menu_stale():
    tracker = make_tracker(
        [
            bot_event("请回复数字选择服务：", MENU),
            user_event("优待证怎么办", "faq"),
            bot_event("【退役军人优待证】……"),
            user_event("2", "choose_option"),
        ]
    )
    assert buttons_offered(tracker) is None


def test_the_clarified_repeat_of_the_same_message_is_skipped():
    # Rasa's two-stage fallback re-adds the clarifying message after a rewind.
    tracker = make_tracker(
        [
            user_event("嗯那个", "nlu_fallback"),
            bot_event("您是想了解……请回复数字：", MENU),
            user_event("1", "choose_option"),
            {"event": "rewind"},
            user_event("1", "choose_option"),
        ]
    )
    assert buttons_offered(tracker) == MENU


@pytest.mark.parametrize("text", ["1和2", "好的"])
async def test_unclear_choice_reoffers_the_list(dispatcher, text):
    await ActionChooseOption().run(dispatcher, make_tracker(_greeted_then(text)), {})
    assert dispatcher.messages[0]["response"] == "utter_choose_in_range"
