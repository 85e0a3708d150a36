"""Insults in a complaint are taken calmly: the case is still taken, the words are
not quoted back (data/complaints.yml abusive_words)."""

from bot.services import complaints as register
from tests.actions.test_complaints import Chat, factory  # noqa: F401 - the fixture


async def test_an_insult_is_not_quoted_back_and_the_complaint_is_still_taken(factory):  # noqa: F811
    chat = Chat()
    asked = await chat.say("你们这帮废物 我的补助三个月没发了", "file_complaint", start="complaint_form")
    assert "废物" not in "".join(asked)
    assert "已记下" in asked[0]
    assert "废物" in (chat.slots.get("complaint_description") or "")  # kept for the staff, as said


def test_abusive_words_come_from_the_data_file():
    rules = register.default_rules()
    assert "废物" in rules.abusive_words
    assert register.is_abusive("你们这帮废物", rules) and not register.is_abusive("补助没发", rules)
