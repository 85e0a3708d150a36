"""The chat channel's part in keeping personal numbers out of Rasa (bot.channels);
the whole path, with Rasa and the action server, is in tests/e2e."""

import time
from types import SimpleNamespace

from bot.channels import RedactingRestInput


def _request(sender, message):
    return SimpleNamespace(json={"sender": sender, "message": message})


def test_numbers_are_taken_out_and_phones_held_for_the_handler():
    channel = RedactingRestInput()
    text = channel._extract_message(_request("u1", "电话 138 1234 5678 座机021-69590001 身份证110105194912310021"))
    assert text == "电话 [手机号已隐去] 座机[电话号码已隐去] 身份证[身份证号已隐去]"
    assert channel._phones["u1"] == ("13812345678", "02169590001")
    assert channel._extract_message(_request("u2", "没有号码")) == "没有号码" and "u2" not in channel._phones


def test_bare_numbers_only_while_a_phone_is_awaited():
    channel = RedactingRestInput()
    assert channel._extract_message(_request("u1", "69590001")) == "69590001"  # could be anything
    channel._awaiting["u1"] = time.monotonic()
    assert channel._extract_message(_request("u1", "69590001")) == "[电话号码已隐去]"
    assert channel._phones["u1"] == ("69590001",)
    # Another user, and case numbers, are not affected.
    assert channel._extract_message(_request("u2", "69590001")) == "69590001"
    assert channel._extract_message(_request("u1", "TS20261122-0007")) == "TS20261122-0007"
