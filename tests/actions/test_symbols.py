"""action_answer_symbols (actions/symbols.py): emoji or punctuation only."""

import pytest
from rasa_sdk import Tracker

from actions.symbols import ActionAnswerSymbols
from tests.conftest import user_event


def _tracker(text, active_loop=None):
    user = user_event(text, "symbols_only", confidence=1.0)
    return Tracker("test-user", {}, user["parse_data"], [user], False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


@pytest.mark.parametrize("text", ["👍👍👍", "🙏", "👌", "👏", "❤️", "🌹", "[强]"])
async def test_thanks_is_answered_like_thanks(dispatcher, text):
    assert await ActionAnswerSymbols().run(dispatcher, _tracker(text), {}) == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_thank"]


@pytest.mark.parametrize("text", ["？？？", "。。。", "😂", "???"])
async def test_other_symbols_get_one_friendly_line(dispatcher, text):
    assert await ActionAnswerSymbols().run(dispatcher, _tracker(text), {}) == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_symbols_only"]


@pytest.mark.parametrize("form", ["appointment_form", "complaint_form", "cancel_form"])
async def test_inside_a_form_nothing_is_said_and_the_form_asks_again(dispatcher, form):
    assert await ActionAnswerSymbols().run(dispatcher, _tracker("👍", active_loop=form), {}) == []
    assert dispatcher.messages == []


def test_the_friendly_line_and_the_thanks_are_in_the_domain():
    import yaml

    from bot.settings import PROJECT_ROOT

    responses = yaml.safe_load((PROJECT_ROOT / "domain" / "conversation.yml").read_text(encoding="utf-8"))["responses"]
    assert responses["utter_symbols_only"][0]["text"] == \
        "您好，请问有什么可以帮您？可以直接说出您的问题，或回复“菜单”查看全部服务。"
    assert responses["utter_thank"][0]["text"].startswith("不客气")
