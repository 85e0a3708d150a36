"""Handoff triggers through the real Rasa and action server: two messages in a row the
bot does not understand hand the conversation to staff (Rasa's two-stage fallback gives
up, and the overridden action_default_fallback opens a handoff and pauses)."""

from __future__ import annotations

import sqlite3

import pytest

from tests.e2e.conftest import say

pytestmark = pytest.mark.e2e


def _handoffs(assistant, sender):
    with sqlite3.connect(assistant["var_dir"] / "vetbot.db") as db:
        return db.execute("SELECT reason, state FROM handoffs WHERE openid = ?", (sender,)).fetchall()


def test_two_unclear_messages_in_a_row_hand_over_to_staff(assistant):
    sender = "e2e-twice-unclear"
    first = say(assistant, sender, "asdfgh")
    assert "请回复数字" in first or "换个说法" in first  # the two-stage fallback asks first
    assert _handoffs(assistant, sender) == []
    second = say(assistant, sender, "qwerty")
    assert "已为您转接人工服务" in second
    assert _handoffs(assistant, sender) == [("fallback", "waiting")]
    assert say(assistant, sender, "在吗") == ""  # paused: staff answer now


def test_one_unclear_message_then_a_clear_one_does_not(assistant):
    sender = "e2e-once-unclear"
    say(assistant, sender, "asdfgh")
    answer = say(assistant, sender, "优待证怎么申请")
    assert "优待证" in answer and _handoffs(assistant, sender) == []
