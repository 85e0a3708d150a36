"""Waiting for staff, end to end through WeChat's door (the simulated WeChat user posts
to the gateway's /wechat; the real Rasa with the trained model and the action server):
转人工 → "喂 有人吗" is acknowledged → "有人吗" again within the interval is not →
"不用人工了 我要问政策" leaves the queue and the bot answers the question.

Before, every one of these got nothing once the conversation was paused (WeChat was
answered ``success``). The assistant runs on the real clock: the acknowledgement says
either that staff are at work or when they come in, both begin with 已收到."""

from __future__ import annotations

import sqlite3

import aiohttp
import pytest

from tests.e2e.conftest import rasa_headers, wechat_user

pytestmark = pytest.mark.e2e


def _handoffs(assistant, openid):
    with sqlite3.connect(assistant["var_dir"] / "vetbot.db") as db:
        return db.execute("SELECT state, closed_by FROM handoffs WHERE openid = ? ORDER BY id", (openid,)).fetchall()


async def _events(assistant, openid):
    async with aiohttp.ClientSession(headers=rasa_headers(assistant)) as http:
        async with http.get(f"{assistant['url']}/conversations/{openid}/tracker") as response:
            return (await response.json())["events"]


async def test_waiting_is_acknowledged_once_and_leaving_gets_the_bot_back(assistant):
    async with wechat_user(assistant) as user:
        asked = await user.say("转人工")
        assert "已为您转接人工服务" in asked.texts[0]
        first = await user.say("喂 有人吗")
        assert first.status == 200 and len(first.texts) == 1
        assert first.texts[0].startswith("已收到")  # 已收到您的消息… (off duty) or 已收到，工作人员正在处理…
        second = await user.say("有人吗")
        assert second.status == 200 and second.texts == [] and second.body == "success"  # within the interval
        assert await user.later_texts(timeout=3) == []  # nor later through the customer-service API

        left = await user.say("不用人工了 我要问政策")
        answer = "\n".join(left.texts + await user.later_texts(timeout=3))
        assert answer.startswith("好的，已为您取消人工服务。")
        assert "您想了解哪方面的政策" in answer  # the bot answered the rest
        assert _handoffs(assistant, user.openid) == [("closed", "用户撤回")]

        events = await _events(assistant, user.openid)
        kinds = [e["event"] for e in events]
        assert kinds.index("pause") < kinds.index("resume")
        said = [e.get("text") for e in events if e["event"] == "user"]
        assert said[-4:] == ["喂 有人吗", "有人吗", "不用人工了", "我要问政策"]  # all kept for staff
        again = await user.say("你好")
        assert "您好" in again.texts[0]  # the bot answers as usual
