"""bot.wechat.simulator: chat commands, and a whole exchange over HTTP with a webhook and the mock API.

The webhook here is a small echo bot assembled from the library's pieces the
way the gateway will use them: verify and parse, de-duplicate, render, answer
the first chunk passively and send the rest through the customer-service API.
"""

from __future__ import annotations

import pytest
from aiohttp import web

from bot.wechat import simulator as sim
from bot.wechat.client import WechatClient
from bot.wechat.dedup import MemoryReplyCache
from bot.wechat.protocol import SUCCESS, ProtocolError, dedup_key, sign
from bot.wechat.render import to_wechat_texts
from bot.wechat.simulator import CommandError, SimulatorError, WechatUser, parse_command
from bot.wechat.token import AccessTokenStore
from tests.wechat.conftest import (
    MODES,
    TEST_AES_KEY,
    TEST_APPID,
    TEST_SECRET,
    TEST_TOKEN,
    user_for,
    webhook_for,
)


# --- commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("line,msg_type,fields", [
    ("/location 31.37 121.25", "location", {"Location_X": "31.370000", "Location_Y": "121.250000", "Label": ""}),
    ("/location 31.37 121.25 宝山 服务中心", "location", {"Label": "宝山 服务中心"}),
    ("/voice 我想预约退役报到", "voice", {"Recognition": "我想预约退役报到"}),
    ("/click MENU_POLICY", "event", {"Event": "CLICK", "EventKey": "MENU_POLICY"}),
    ("/view https://example.gov.cn/", "event", {"Event": "VIEW", "EventKey": "https://example.gov.cn/"}),
    ("/subscribe", "event", {"Event": "subscribe"}),
    ("/unsubscribe", "event", {"Event": "unsubscribe"}),
    ("/report-location 31.37 121.25", "event", {"Event": "LOCATION", "Latitude": "31.370000"}),
    ("/link https://example.gov.cn/a 通知", "link", {"Url": "https://example.gov.cn/a", "Title": "通知"}),
    ("/video", "video", {}),
    ("我想预约退役报到", "text", {"Content": "我想预约退役报到"}),
    ("/help 不是命令", "text", {"Content": "/help 不是命令"}),
])
def test_chat_commands(line, msg_type, fields):
    message = parse_command(line)
    assert message.msg_type == msg_type
    assert fields.items() <= dict(message.fields).items()


def test_image_command_makes_a_fake_media_id():
    first, second = parse_command("/image"), parse_command("/image")
    assert first.msg_type == "image" and dict(first.fields)["MediaId"] != dict(second.fields)["MediaId"]


@pytest.mark.parametrize("line", ["/location", "/location 31.37", "/location 北 121", "/location 91 121",
                                  "/voice", "/click  ", "/view", "/report-location 1"])
def test_malformed_commands_say_how_to_use_them(line):
    with pytest.raises(CommandError) as error:
        parse_command(line)
    assert "用法" in str(error.value)


def test_modes_need_what_they_need():
    with pytest.raises(ValueError):
        WechatUser("http://x", TEST_TOKEN, TEST_APPID, mode="safe")
    with pytest.raises(ValueError):
        WechatUser("http://x", TEST_TOKEN, TEST_APPID, TEST_AES_KEY, mode="secret")
    assert WechatUser("http://x", TEST_TOKEN, TEST_APPID, TEST_AES_KEY).mode == "safe"
    assert WechatUser("http://x", TEST_TOKEN, TEST_APPID).mode == "plaintext"


# --- reading replies --------------------------------------------------------------------------------


async def test_a_reply_with_a_forged_signature_is_rejected():
    user, hook = user_for("safe"), webhook_for("safe")
    request = user.build(sim.text("你好"))
    inbound = await hook.receive(request.query, request.body)
    reply = hook.passive_reply(inbound, ["您好"])
    assert user.read_reply(reply) == ["您好"]
    signature = reply.split("<MsgSignature><![CDATA[")[1][:40]
    with pytest.raises(SimulatorError):
        user.read_reply(reply.replace(signature, "0" * 40))


async def test_a_reply_to_someone_else_is_rejected():
    alice, bob, hook = user_for("plaintext"), user_for("plaintext"), webhook_for("plaintext")
    request = alice.build(sim.text("你好"))
    reply = hook.passive_reply(await hook.receive(request.query, request.body), ["您好"])
    with pytest.raises(SimulatorError):
        bob.read_reply(reply)
    assert bob.read_reply(SUCCESS) == [] and bob.read_reply("") == []


# --- a whole exchange over HTTP -------------------------------------------------------------------------


def echo_bot(mode: str, client: WechatClient) -> web.Application:
    """Answers every text with a long reply: the first chunk passive, the rest customer-service."""
    hook, replies = webhook_for(mode), MemoryReplyCache()
    turns = []

    async def verify(request: web.Request) -> web.Response:
        try:
            return web.Response(text=hook.verify_url(request.query))
        except ProtocolError as error:
            return web.Response(status=error.status, text=error.reason)

    async def receive(request: web.Request) -> web.Response:
        try:
            inbound = await hook.receive(request.query, await request.read())
        except ProtocolError as error:
            return web.Response(status=error.status, text=error.reason)

        async def turn():
            turns.append(inbound)
            said = inbound.text or inbound.recognition or inbound.event or inbound.kind
            return to_wechat_texts([{"text": f"收到：{said}"},
                                    {"text": "说明。" * 400}])  # too long for one message

        outcome = await replies.run_once(dedup_key(inbound), turn, wait_timeout=4.0)
        texts = outcome.reply if outcome.ready else []
        if outcome.first:
            for text in texts[1:]:
                assert (await client.send_text(inbound.openid, text)).ok
        return web.Response(text=hook.passive_reply(inbound, texts[:1]), content_type="text/xml")

    app = web.Application()
    app.router.add_get("/wechat", verify)
    app.router.add_post("/wechat", receive)
    app["turns"] = turns
    return app


@pytest.mark.parametrize("mode", MODES)
async def test_a_conversation_through_webhook_and_mock_api(mode, aiohttp_server, session, api_base, mock_state):
    client = WechatClient(session, api_base, AccessTokenStore(session, api_base, TEST_APPID, TEST_SECRET))
    server = await aiohttp_server(echo_bot(mode, client))
    user = WechatUser(str(server.make_url("/wechat")), TEST_TOKEN, TEST_APPID,
                      None if mode == "plaintext" else TEST_AES_KEY, mode=mode, api_base=api_base,
                      session=session)

    answer = await user.say("/voice 我想预约退役报到")
    assert answer.status == 200
    assert answer.texts[0].startswith("收到：我想预约退役报到")
    later = await user.later_texts(timeout=5.0, quiet=0.3)
    assert later and all(text.startswith("说明。") for text in later)
    assert "".join(later) == "说明。" * 400

    # WeChat retries the same message: the same passive answer, no second turn, nothing sent again.
    request = user.build(sim.text("第二句"))
    first = await user.post(request)
    retry = await user.post(user.retry_of(request))
    assert retry.texts == first.texts and retry.texts[0].startswith("收到：第二句")
    assert len(server.app["turns"]) == 2
    await user.later_texts(timeout=5.0, quiet=0.3)
    assert await user.later_messages() == []

    event = await user.say("/click MENU_POLICY")
    assert event.texts[0].startswith("收到：click")


async def test_url_verification_over_http(aiohttp_server, session, api_base):
    client = WechatClient(session, api_base, AccessTokenStore(session, api_base, TEST_APPID, TEST_SECRET))
    server = await aiohttp_server(echo_bot("safe", client))
    timestamp, nonce = "0", "42"  # far outside the window: refused
    params = {"signature": sign(TEST_TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
              "echostr": "hello"}
    async with session.get(server.make_url("/wechat"), params=params) as response:
        assert response.status == 403
    user = user_for("safe")
    params = dict(user.sign_xml("<xml/>").query, echostr="8164302934851239085")
    async with session.get(server.make_url("/wechat"), params=params) as response:
        assert (response.status, await response.text()) == (200, "8164302934851239085")


async def test_a_refused_request_reaches_the_simulator_as_a_status(aiohttp_server, session, api_base):
    client = WechatClient(session, api_base, AccessTokenStore(session, api_base, TEST_APPID, TEST_SECRET))
    server = await aiohttp_server(echo_bot("safe", client))
    intruder = WechatUser(str(server.make_url("/wechat")), "guessed-token", TEST_APPID, TEST_AES_KEY,
                          session=session)
    answer = await intruder.say("你好")
    assert (answer.status, answer.texts) == (403, [])
