"""End to end through Rasa and the action server: booking 退役报到 in chat with a
policy question in the middle, looking the booking up, and cancelling it.

The real clock is used, so the test follows what the assistant offers (a
requested day may be a holiday): it answers lists by number, as users do.
"""

from __future__ import annotations

import re
import uuid

import pytest


from tests.e2e.conftest import say as _say

pytestmark = pytest.mark.e2e


def test_book_with_an_interruption_then_look_up_and_cancel(assistant):
    sender = f"o-e2e-{uuid.uuid4().hex[:10]}"

    asked_station = _say(assistant, sender, "我想预约退役报到")
    assert "哪个服务站办理退役报到" in asked_station

    # A policy question in the middle is answered, and the form asks its question again.
    interrupted = _say(assistant, sender, "退伍以后多少天之内要去报到")
    assert "【退役报到】" in interrupted and "哪个服务站办理退役报到" in interrupted

    asked_time = _say(assistant, sender, "安亭镇")
    assert "想约哪天" in asked_time

    reply = _say(assistant, sender, "下周三上午十点")
    if "以下时间可以预约" in reply:  # that time cannot be had: pick the first offered
        reply = _say(assistant, sender, "1")
    assert "请核对预约信息" in reply and "安亭镇退役军人服务站" in reply
    assert "请携带" in reply

    booked = _say(assistant, sender, "确认")
    assert booked.startswith("预约成功！")
    code = re.search(r"预约码：(\S+)", booked).group(1)

    listed = _say(assistant, sender, "查一下我的预约")
    assert listed.startswith("您有1个预约") and code in listed

    # The only booking is taken at once: the question is whether to cancel it.
    confirm = _say(assistant, sender, "帮我取消预约")
    assert "确认取消这个预约吗" in confirm and "退役报到（安亭镇退役军人服务站）" in confirm
    cancelled = _say(assistant, sender, "确认")
    assert f"已为您取消预约（{code}）" in cancelled

    assert "没有待办理的预约" in _say(assistant, sender, "我约的是哪天")


def test_stop_abandons_the_booking_cleanly(assistant):
    sender = f"o-e2e-{uuid.uuid4().hex[:10]}"
    assert "哪项业务" in _say(assistant, sender, "我要预约")
    assert "本次预约没有提交" in _say(assistant, sender, "算了不约了")
    assert "没有待办理的预约" in _say(assistant, sender, "查一下我的预约")
