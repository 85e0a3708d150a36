"""End to end through WeChat's door: a simulated WeChat user (bot.wechat.simulator) posts
signed, AES-encrypted messages to the gateway's /wechat, which talks to the real Rasa
and action server; answers too slow for the passive reply arrive at the mock WeChat API
that `vetbot serve` started. (This file sorts before test_serve.py, whose last test
stops the shared assistant.)"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys

import pytest

from bot.settings import PROJECT_ROOT
from bot.testing.assistant import TEST_WECHAT_APPID, free_port, wait_for_http
from bot.wechat import simulator
from tests.e2e.conftest import rasa_headers, wechat_user

pytestmark = pytest.mark.e2e


def _failures(assistant, openid: str):
    with sqlite3.connect(assistant["var_dir"] / "vetbot.db") as db:
        return db.execute("SELECT direction, kind, text FROM wechat_failures WHERE openid = ?", (openid,)).fetchall()


def _user_turns(assistant, sender: str) -> int:
    with sqlite3.connect(assistant["var_dir"] / "tracker.db") as db:
        return db.execute("SELECT count(*) FROM events WHERE sender_id = ? AND type_name = 'user'",
                          (sender,)).fetchone()[0]


async def test_an_encrypted_message_gets_an_encrypted_answer_and_numbers_pick_buttons(assistant):
    async with wechat_user(assistant) as user:
        request = user.build(simulator.text("你好"))
        assert b"<Encrypt>" in request.body and "你好".encode() not in request.body
        answer = await user.post(request)
        assert answer.status == 200 and "<Encrypt>" in answer.body and "您好" not in answer.body
        assert "您好" in answer.texts[0] and "1. 政策咨询" in answer.texts[0]  # decrypted by the simulator
        topics = await user.say("1")
        assert "您想了解哪方面的政策" in topics.texts[0]
        policy = await user.say("退伍以后多少天之内要去报到")
        assert policy.texts[0].startswith("【退役报到】")


async def test_three_deliveries_of_one_message_make_one_turn(assistant):
    async with wechat_user(assistant) as user:
        first = user.build(simulator.text("安亭镇的服务站在哪"))
        # WeChat's retries: the same message signed anew while the first is being answered,
        # and the very same request again afterwards (its nonce is not a replay then).
        answers = list(await asyncio.gather(user.post(first), user.post(user.retry_of(first))))
        answers.append(await user.post(first))
        assert [a.status for a in answers] == [200, 200, 200]
        texts = [a.texts for a in answers if a.texts]
        assert texts and all(t == texts[0] for t in texts) and "安亭镇" in texts[0][0]
        assert _user_turns(assistant, user.openid) == 1


async def test_events_pictures_and_places(assistant):
    async with wechat_user(assistant) as user:
        welcome = await user.say("/subscribe")
        assert "您好" in welcome.texts[0]
        picture = await user.say("/image")
        assert "请先回复“投诉”" in picture.texts[0]  # no open complaint to attach it to
        nearest = await user.say("/location 31.3747 121.2468")
        assert "服务站" in nearest.texts[0] and "公里" in nearest.texts[0]
        clicked = await user.say("/click MENU_COMPLAINT")
        assert "请您说一说具体情况" in clicked.texts[0]
        typed_payload = await user.say('/send_attachment{"media_type": "image", "media_id": "FAKE"}')
        assert "图片收到了" not in "".join(typed_payload.texts)  # a typed payload is only text
        assert (await user.say("/view https://example.org/")).texts == []
        assert _user_turns(assistant, user.openid) >= 5
        gone = await user.say("/unsubscribe")
        assert gone.status == 200 and gone.texts == []
        assert _user_turns(assistant, user.openid) == 0  # the conversation is deleted


async def test_unknown_senders_and_tampering_are_refused(assistant):
    async with wechat_user(assistant) as user:
        request = user.build(simulator.text("你好"))
        forged = simulator.SignedRequest({**request.query, "msg_signature": "0" * 40}, request.body, request.xml)
        assert (await user.post(forged)).status == 403
        stale = user.sign_xml(request.xml, timestamp="1000000000")
        assert (await user.post(stale)).status == 403
        hostile = simulator.SignedRequest(request.query, b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml>&a;</xml>", "")
        assert (await user.post(hostile)).status in (400, 403)


async def test_health_reports_every_component(assistant):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{assistant['gateway']}/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"gateway": "ok", "database": "ok", "rasa": "ok", "action_server": "ok"}
        async with session.get(f"{assistant['gateway']}/console") as response:  # the staff console asks who you are
            assert response.status == 200 and "/console/login" in str(response.url)


@pytest.fixture
def extra_gateway(assistant):
    """A second gateway on the same Rasa, action server and databases, with settings changed."""
    started = []

    def start(**changes: str) -> str:
        port = free_port()
        env = {**assistant["env"], "VETBOT_GATEWAY_PORT": str(port), **changes}
        log = (assistant["var_dir"] / f"gateway-{port}.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "bot.gateway"], cwd=PROJECT_ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        started.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        assert wait_for_http(f"{url}/healthz", timeout=30, any_status=True)
        return url

    yield start
    for proc, log in started:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def test_a_slow_answer_comes_through_the_customer_service_api(assistant, extra_gateway):
    # A reply budget of 10 ms: every answer is too slow for the passive reply.
    gateway = extra_gateway(VETBOT_WECHAT_REPLY_BUDGET="0.01")
    async with wechat_user(assistant, gateway) as user:
        answer = await user.say("优待证怎么申请")
        assert answer.status == 200 and answer.texts == [] and answer.body == "success"
        later = await user.later_texts(timeout=30)
        assert later and later[0].startswith("【退役军人优待证】")


@pytest.mark.components_down  # 系统繁忙 is the right answer here
async def test_rasa_down_gets_an_apology(assistant, extra_gateway):
    gateway = extra_gateway(RASA_URL=f"http://127.0.0.1:{free_port()}")
    async with wechat_user(assistant, gateway) as user:
        answer = await user.say("你好")
        assert answer.texts == ["系统繁忙，请稍后再试。"]
        assert _failures(assistant, user.openid) == [("in", "rasa_down", "你好")]  # kept for staff


@pytest.mark.components_down  # 系统繁忙 is the right answer here
async def test_action_server_down_gets_an_apology(assistant, extra_gateway):
    # Rasa without its custom actions would answer wrongly ("I did not understand"): the
    # gateway checks the action server first.
    gateway = extra_gateway(VETBOT_ACTION_SERVER_URL=f"http://127.0.0.1:{free_port()}/webhook")
    async with wechat_user(assistant, gateway) as user:
        answer = await user.say("我的优待证办好了没")
        assert answer.texts == ["系统繁忙，请稍后再试。"]
        assert _failures(assistant, user.openid) == [("in", "actions_down", "我的优待证办好了没")]
        assert _user_turns(assistant, user.openid) == 0  # Rasa was not asked to answer without its actions


async def test_voice_a_reported_location_and_the_rate_limit(assistant):
    async with wechat_user(assistant) as user:
        heard = await user.say("/voice 优待证怎么申请")  # WeChat's speech recognition text
        assert heard.texts[0].startswith("【退役军人优待证】")
        unheard = await user.send(simulator.voice(None))
        assert unheard.texts == ["抱歉，没能听清这段语音，请用文字告诉我您想办理的事情。"]
        reported = await user.say("/report-location 31.3747 121.2468")  # WeChat's LOCATION event
        assert reported.texts == []
        nearest = await user.say("最近的服务站在哪")
        assert "公里" in nearest.texts[0]  # the reported position was remembered
        answers = [await user.say("你好") for _ in range(20)]
        assert answers[-1].texts == ["您发送消息太频繁了，请稍等一分钟再发。"]
        assert all("您好" in a.texts[0] for a in answers[:16])


async def test_a_person_takes_over_answers_in_wechat_and_hands_back(assistant):
    """转人工 pauses the conversation; a staff member's answer goes into the transcript and
    to the user through the customer-service API; handing back resumes the bot."""
    import aiohttp

    from bot.db.session import make_engine, make_session_factory, session_scope
    from bot.gateway.handoff import BACK_TO_BOT, hand_back, staff_reply
    from bot.services import handoff
    from bot.settings import MOCK_WECHAT_SECRET
    from bot.wechat.client import WechatClient
    from bot.wechat.token import AccessTokenStore

    engine = make_engine(f"sqlite:///{assistant['var_dir'] / 'vetbot.db'}")
    factory = make_session_factory(engine)
    try:
        async with wechat_user(assistant) as user, aiohttp.ClientSession() as http, \
                aiohttp.ClientSession(headers=rasa_headers(assistant)) as rasa:
            asked = await user.say("转人工")
            assert "已为您转接人工服务" in asked.texts[0]
            waiting = await user.say("我想问问我的抚恤金的事")
            # The bot stays quiet while staff hold it; the gateway acknowledges for it (once in a while).
            assert waiting.status == 200 and len(waiting.texts) == 1 and waiting.texts[0].startswith("已收到")
            with session_scope(factory) as session:
                waiting = handoff.current(session, user.openid)
                handoff.claim(session, waiting.id, "王科长", waiting.created_at)
            client = WechatClient(http, assistant["mock_wechat"], AccessTokenStore(
                http, assistant["mock_wechat"], TEST_WECHAT_APPID, MOCK_WECHAT_SECRET))
            sent = await staff_reply(factory, rasa, assistant["url"], client, waiting.id, "王科长",
                                     "您好，我是区退役军人事务局王科长，您的抚恤金本月已发放。")
            assert sent.ok
            assert "王科长" in (await user.later_texts(timeout=10))[0]
            back = await hand_back(factory, rasa, assistant["url"], client, waiting.id, "王科长")
            assert back.ok and (await user.later_texts(timeout=10)) == [BACK_TO_BOT]
            again = await user.say("你好")
            assert "您好" in again.texts[0]  # the bot answers again
            async with rasa.get(f"{assistant['url']}/conversations/{user.openid}/tracker") as response:
                events = (await response.json())["events"]
            kinds = [e["event"] for e in events]
            assert "pause" in kinds and "resume" in kinds
            staff_said = [e for e in events if e["event"] == "bot" and (e.get("metadata") or {}).get("staff")]
            assert [e["metadata"]["staff"] for e in staff_said] == ["王科长", "王科长"]
            assert any(e["event"] == "user" and e.get("text") == "我想问问我的抚恤金的事" for e in events)
    finally:
        engine.dispose()
