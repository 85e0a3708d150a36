"""bot.wechat.protocol: every message type in every mode, every refusal, the passive reply."""

from __future__ import annotations

import time

import pytest

from bot.wechat import simulator as sim
from bot.wechat.protocol import (
    MAX_BODY_BYTES,
    MAX_TEXT_BYTES,
    SUCCESS,
    BackendUnavailable,
    BadSignature,
    BodyTooLarge,
    MalformedMessage,
    MemoryNonceStore,
    MissingField,
    NonceStore,
    RedisNonceStore,
    ReplayedNonce,
    StaleTimestamp,
    WechatConfig,
    Webhook,
    WrongAccount,
    XmlRefused,
    dedup_key,
    parse_inbound,
    sign,
)
from tests.wechat.conftest import (
    MODES,
    TEST_AES_KEY,
    TEST_APPID,
    TEST_TOKEN,
    config_for,
    message_fixture,
    user_for,
    webhook_for,
)

URL = "https://example.gov.cn/notice?id=1&from=menu"

# name → (message, the Inbound fields it must produce)
CASES = {
    "text": (sim.text("退役报到需要带什么材料？"), {"kind": "text", "text": "退役报到需要带什么材料？"}),
    "text_with_markup": (sim.text("a < b & c ]]> d <!DOCTYPE x>"),
                         {"kind": "text", "text": "a < b & c ]]> d <!DOCTYPE x>"}),
    "voice": (sim.voice("我想查优抚待遇"), {"kind": "voice", "recognition": "我想查优抚待遇"}),
    "voice_without_recognition": (sim.voice(None, media_id="VOICE_1"),
                                  {"kind": "voice", "recognition": None, "media_id": "VOICE_1"}),
    "image": (sim.image("IMAGE_1"), {"kind": "image", "media_id": "IMAGE_1"}),
    "location": (sim.location(31.37, 121.25, "宝山区退役军人服务中心"),
                 {"kind": "location", "latitude": 31.37, "longitude": 121.25, "label": "宝山区退役军人服务中心"}),
    "link": (sim.link(URL, "通知"), {"kind": "link", "url": URL, "title": "通知"}),
    "video": (sim.video(), {"kind": "video", "raw_type": "video"}),
    "shortvideo": (sim.video(short=True), {"kind": "shortvideo", "raw_type": "shortvideo"}),
    "subscribe": (sim.subscribe(), {"kind": "event", "event": "subscribe", "event_key": None}),
    "subscribe_from_qrcode": (sim.subscribe("station_12"),
                              {"kind": "event", "event": "subscribe", "event_key": "station_12"}),
    "unsubscribe": (sim.unsubscribe(), {"kind": "event", "event": "unsubscribe"}),
    "click": (sim.click("MENU_POLICY"), {"kind": "event", "event": "click", "event_key": "MENU_POLICY"}),
    "view": (sim.view(URL), {"kind": "event", "event": "view", "event_key": URL, "url": URL}),
    "location_event": (sim.location_event(31.1, 121.2, 30.0),
                       {"kind": "event", "event": "location", "latitude": 31.1, "longitude": 121.2,
                        "precision": 30.0}),
}


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(CASES))
async def test_every_message_type_round_trips_in_every_mode(mode, case):
    message, expected = CASES[case]
    user = user_for(mode)
    request = user.build(message)
    inbound = await webhook_for(mode).receive(request.query, request.body)
    for name, value in expected.items():
        assert getattr(inbound, name) == value, name
    assert inbound.openid == user.openid
    assert inbound.to_user == user.account_id
    assert inbound.encrypted is (mode != "plaintext")
    assert abs(inbound.create_time - time.time()) < 5
    assert (inbound.msg_id is None) is message.is_event


@pytest.mark.parametrize("mode", MODES)
def test_the_body_is_encrypted_as_the_mode_says(mode):
    request = user_for(mode).build(sim.text("机密内容"))
    body = request.body.decode("utf-8")
    assert ("机密内容" in body) is (mode != "safe")
    assert ("<Encrypt>" in body) is (mode != "plaintext")
    assert ("msg_signature" in request.query) is (mode != "plaintext")


async def test_compatible_body_is_read_as_plaintext_when_no_key_is_configured():
    request = user_for("compatible").build(sim.text("兼容模式"))
    inbound = await webhook_for("plaintext").receive(request.query, request.body)
    assert (inbound.text, inbound.encrypted) == ("兼容模式", False)


@pytest.mark.parametrize("name,expected", [
    ("text", {"kind": "text", "text": "退役报到需要带什么材料？", "msg_id": "1234567890123456",
              "create_time": 1348831860, "openid": "oTestUser0000000000000000001"}),
    ("voice_with_recognition", {"kind": "voice", "recognition": "我想预约退役报到", "media_id": "media_id_voice_0001"}),
    ("image", {"kind": "image", "media_id": "media_id_image_0001", "url": "http://mmbiz.qpic.cn/test/0"}),
    ("location", {"kind": "location", "latitude": 23.134521, "longitude": 113.358803, "label": "位置信息"}),
    ("link", {"kind": "link", "url": "https://mp.weixin.qq.com/", "title": "公众平台官网链接"}),
    ("shortvideo", {"kind": "shortvideo", "media_id": "media_id_video_0001"}),
    ("event_subscribe_from_qrcode", {"kind": "event", "event": "subscribe", "event_key": "123123", "msg_id": None}),
    ("event_unsubscribe", {"kind": "event", "event": "unsubscribe"}),
    ("event_click", {"kind": "event", "event": "click", "event_key": "MENU_POLICY"}),
    ("event_view", {"kind": "event", "event": "view", "url": "https://example.gov.cn/bind"}),
    ("event_location", {"kind": "event", "event": "location", "latitude": 23.137466, "longitude": 113.352425,
                        "precision": 119.38504}),
    ("miniprogram_page", {"kind": "unsupported", "raw_type": "miniprogrampage", "msg_id": "1234567890123462"}),
])
def test_messages_in_wechats_documented_layout(name, expected):
    inbound = parse_inbound(message_fixture(name))
    for field, value in expected.items():
        assert getattr(inbound, field) == value, field


def test_dedup_keys_follow_wechats_advice():
    text = parse_inbound(message_fixture("text"))
    assert dedup_key(text) == "msg:oTestUser0000000000000000001:1234567890123456"
    click = parse_inbound(message_fixture("event_click"))
    assert dedup_key(click) == "event:oTestUser0000000000000000001:123456791:click"
    # Two different events in the same second stay apart.
    view = parse_inbound(message_fixture("event_view").replace("123456792", "123456791"))
    assert dedup_key(view) != dedup_key(click)


def test_a_retry_has_the_same_dedup_key_and_a_new_nonce():
    user = user_for("safe")
    first = user.build(sim.text("你好"))
    retry = user.retry_of(first)
    assert retry.query["nonce"] != first.query["nonce"]
    assert dedup_key(parse_inbound(first.xml)) == dedup_key(parse_inbound(retry.xml))


# --- GET: URL verification -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_url_verification_echoes_echostr_in_every_mode(mode):
    timestamp, nonce = str(int(time.time())), "1234567"
    query = {"signature": sign(TEST_TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
             "echostr": "8164302934851239085"}
    assert webhook_for(mode).verify_url(query) == "8164302934851239085"


def test_url_verification_refusals():
    hook = webhook_for("plaintext")
    timestamp = str(int(time.time()))
    good = {"signature": sign(TEST_TOKEN, timestamp, "99"), "timestamp": timestamp, "nonce": "99", "echostr": "e"}
    with pytest.raises(BadSignature):
        hook.verify_url(dict(good, signature="0" * 40))
    with pytest.raises(MissingField):
        hook.verify_url({k: v for k, v in good.items() if k != "echostr"})
    old = str(int(time.time()) - 3600)
    with pytest.raises(StaleTimestamp):
        hook.verify_url(dict(good, timestamp=old, signature=sign(TEST_TOKEN, old, "99")))


# --- POST: refusals ----------------------------------------------------------------------------


async def refused(hook: Webhook, query, body: bytes, error_type) -> None:
    with pytest.raises(error_type) as caught:
        await hook.receive(query, body)
    assert isinstance(caught.value.reason, str) and caught.value.reason
    return caught.value


@pytest.mark.parametrize("mode", MODES)
async def test_bad_signature_is_refused(mode):
    request = user_for(mode).build(sim.text("你好"))
    name = "signature" if mode == "plaintext" else "msg_signature"
    error = await refused(webhook_for(mode), dict(request.query, **{name: "f" * 40}), request.body, BadSignature)
    assert error.status == 403


async def test_a_wrong_token_is_a_bad_signature():
    user = sim.WechatUser("http://x", "someone-elses-token", TEST_APPID, TEST_AES_KEY)
    request = user.build(sim.text("你好"))
    await refused(webhook_for("safe"), request.query, request.body, BadSignature)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("offset", [-301, 301])
async def test_stale_and_future_timestamps_are_refused(mode, offset):
    now = time.time()
    request = user_for(mode, clock=lambda: now + offset).build(sim.text("你好"))
    error = await refused(webhook_for(mode, clock=lambda: now), request.query, request.body, StaleTimestamp)
    assert error.status == 403


@pytest.mark.parametrize("offset", [-299, 299])
async def test_timestamps_inside_the_window_are_accepted(offset):
    now = time.time()
    request = user_for("safe", clock=lambda: now + offset).build(sim.text("你好"))
    assert (await webhook_for("safe", clock=lambda: now).receive(request.query, request.body)).text == "你好"


@pytest.mark.parametrize("mode", MODES)
async def test_a_replayed_nonce_is_refused(mode):
    hook = webhook_for(mode)
    request = user_for(mode).build(sim.text("你好"))
    await hook.receive(request.query, request.body)
    error = await refused(hook, request.query, request.body, ReplayedNonce)
    assert error.status == 403


async def test_an_unauthenticated_request_does_not_use_up_a_nonce():
    hook = webhook_for("plaintext")
    request = user_for("plaintext").build(sim.text("你好"))
    await refused(hook, dict(request.query, signature="0" * 40), request.body, BadSignature)
    assert (await hook.receive(request.query, request.body)).text == "你好"


async def test_an_oversize_body_is_refused_before_anything_else():
    body = b"<xml>" + b"a" * MAX_BODY_BYTES + b"</xml>"
    error = await refused(webhook_for("plaintext"), {}, body, BodyTooLarge)
    assert error.status == 413


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><ToUserName><![CDATA[gh_vetbot000000]]></ToUserName><FromUserName><![CDATA[oAttacker]]></FromUserName>
<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>&lol4;</Content>
<MsgId>1</MsgId></xml>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xml><ToUserName><![CDATA[gh_vetbot000000]]></ToUserName><FromUserName><![CDATA[oAttacker]]></FromUserName>
<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>&secret;</Content>
<MsgId>1</MsgId></xml>"""
PARAMETER_ENTITY = """<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]><xml/>"""
LOWERCASE_DOCTYPE = "<!doctype xml><xml><MsgType>text</MsgType></xml>"
COMMENT = "<xml><!-- hidden --><MsgType>text</MsgType></xml>"
PROCESSING_INSTRUCTION = "<xml><?php echo 1; ?><MsgType>text</MsgType></xml>"


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY, LOWERCASE_DOCTYPE,
                                 COMMENT, PROCESSING_INSTRUCTION],
                         ids=["billion_laughs", "external_entity", "parameter_entity", "lowercase_doctype",
                              "comment", "processing_instruction"])
@pytest.mark.parametrize("mode", MODES)
async def test_dtds_entities_and_other_declarations_are_refused(mode, xml):
    # Signed and (in safe mode) encrypted properly: only the XML itself is wrong.
    request = user_for(mode).sign_xml(xml)
    error = await refused(webhook_for(mode), request.query, request.body, XmlRefused)
    assert error.status == 400


async def test_a_doctype_in_the_safe_mode_envelope_is_refused_before_decryption():
    user = user_for("safe")
    request = user.build(sim.text("你好"))
    body = b'<!DOCTYPE xml [<!ENTITY x "y">]>' + request.body
    await refused(webhook_for("safe"), request.query, body, XmlRefused)


@pytest.mark.parametrize("body", [
    "<xml><ToUserName><![CDATA[gh_vetbot000000]]></ToUserName>",  # truncated
    "<xml><a></b></xml>",
    "not xml at all",
    "<html><body>hi</body></html>",
    "<xml>" + "<a>" * 50 + "</a>" * 50 + "</xml>",  # nested deeper than WeChat ever sends
    "<xml><ToUserName>gh_vetbot000000</ToUserName><ToUserName>gh_other</ToUserName></xml>",
    "<xml><Content><![CDATA[unterminated</Content></xml>",
])
@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_malformed_xml_is_refused(mode, body):
    request = user_for(mode).sign_xml(body)
    error = await refused(webhook_for(mode), request.query, request.body, (MalformedMessage, XmlRefused))
    assert error.status == 400


async def test_a_body_that_is_not_utf8_is_refused():
    request = user_for("plaintext").build(sim.text("你好"))
    await refused(webhook_for("plaintext"), request.query, "<xml>你好</xml>".encode("gb18030"), MalformedMessage)


async def test_a_message_encrypted_for_another_appid_is_refused():
    other = sim.WechatUser("http://x", TEST_TOKEN, "wxanotheraccount", TEST_AES_KEY)
    request = other.build(sim.text("你好"))
    error = await refused(webhook_for("safe"), request.query, request.body, WrongAccount)
    assert error.status == 403


@pytest.mark.parametrize("mode", MODES)
async def test_a_message_for_another_account_is_refused(mode):
    request = user_for(mode, account_id="gh_someoneelse0").build(sim.text("你好"))
    await refused(webhook_for(mode), request.query, request.body, WrongAccount)


async def test_an_envelope_addressed_differently_from_its_content_is_refused():
    user = user_for("safe")
    request = user.build(sim.text("你好"))
    body = request.body.replace(user.account_id.encode(), b"gh_someoneelse0", 1)
    hook = Webhook(WechatConfig(TEST_TOKEN, TEST_APPID, TEST_AES_KEY), MemoryNonceStore())
    await refused(hook, request.query, body, WrongAccount)


async def test_safe_mode_refuses_a_plaintext_body():
    request = user_for("plaintext").build(sim.text("你好"))
    query = dict(request.query, msg_signature="0" * 40)
    await refused(webhook_for("safe"), query, request.body, MissingField)


def xml_without(element: str, message=None) -> str:
    xml = user_for("plaintext").message_xml(message or sim.text("你好"))
    start = xml.index(f"<{element}>")
    end = xml.index(f"</{element}>") + len(f"</{element}>")
    return xml[:start] + xml[end:]


@pytest.mark.parametrize("xml", [
    xml_without("FromUserName"),
    xml_without("ToUserName"),
    xml_without("CreateTime"),
    xml_without("MsgType"),
    xml_without("MsgId"),
    xml_without("Content"),
    xml_without("Event", sim.click("K")),
    xml_without("EventKey", sim.click("K")),
    xml_without("Latitude", sim.location_event(31.0, 121.0)),
    xml_without("Location_X", sim.location(31.0, 121.0)),
    xml_without("MediaId", sim.image()),
    xml_without("Url", sim.link(URL)),
], ids=["FromUserName", "ToUserName", "CreateTime", "MsgType", "MsgId", "Content", "Event", "EventKey",
        "Latitude", "Location_X", "MediaId", "Url"])
async def test_missing_fields_are_refused(xml):
    request = user_for("plaintext").sign_xml(xml)
    error = await refused(webhook_for("plaintext"), request.query, request.body, MissingField)
    assert error.status == 400


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("content", ["   ", "\n", ""])
async def test_a_text_of_spaces_or_line_breaks_is_a_message_not_a_refusal(mode, content):
    # Refused, WeChat would retry it and then show the account as unavailable; the
    # gateway answers it (tests/gateway/test_wechat_webhook.py). A missing Content is refused above.
    request = user_for(mode).build(sim.text(content))
    inbound = await webhook_for(mode).receive(request.query, request.body)
    assert (inbound.kind, inbound.text) == ("text", "")


@pytest.mark.parametrize("name", ["signature", "timestamp", "nonce"])
async def test_missing_query_parameters_are_refused(name):
    request = user_for("plaintext").build(sim.text("你好"))
    query = {k: v for k, v in request.query.items() if k != name}
    await refused(webhook_for("plaintext"), query, request.body, MissingField)


@pytest.mark.parametrize("replace,by", [
    ("<Location_X>31.000000</Location_X>", "<Location_X>nan</Location_X>"),
    ("<Location_X>31.000000</Location_X>", "<Location_X>91</Location_X>"),
    ("<Location_X>31.000000</Location_X>", "<Location_X>north</Location_X>"),
    ("<Location_X>31.000000</Location_X>", "<Location_X><a>1</a></Location_X>"),
    ("<CreateTime>", "<CreateTime>-"),
])
async def test_values_that_wechat_never_sends_are_refused(replace, by):
    xml = user_for("plaintext").message_xml(sim.location(31.0, 121.0))
    assert replace in xml
    request = user_for("plaintext").sign_xml(xml.replace(replace, by))
    await refused(webhook_for("plaintext"), request.query, request.body, MalformedMessage)


async def test_a_failing_nonce_store_is_a_503_not_a_crash():
    class Down(NonceStore):
        async def claim(self, key, ttl_seconds):
            raise ConnectionError("redis is down")

    request = user_for("plaintext").build(sim.text("你好"))
    hook = Webhook(config_for("plaintext"), Down())
    error = await refused(hook, request.query, request.body, BackendUnavailable)
    assert error.status == 503


async def test_a_replay_to_another_gateway_is_refused_through_redis(redis_client):
    gateways = [Webhook(config_for("safe"), RedisNonceStore(redis_client)) for _ in range(2)]
    request = user_for("safe").build(sim.text("你好"))
    await gateways[0].receive(request.query, request.body)
    await refused(gateways[1], request.query, request.body, ReplayedNonce)
    key = f"vetbot:wechat:nonce:{request.query['timestamp']}:{request.query['nonce']}"
    assert 600 < await redis_client.ttl(key) <= 660


async def test_memory_nonce_store_forgets_after_its_ttl():
    now = [1000.0]
    store = MemoryNonceStore(clock=lambda: now[0])
    assert await store.claim("a", 60)
    assert not await store.claim("a", 60)
    now[0] += 61
    assert await store.claim("a", 60)


async def test_memory_nonce_store_stays_bounded():
    store = MemoryNonceStore(max_entries=3)
    for key in "abcd":
        assert await store.claim(key, 600)
    assert await store.claim("a", 600)  # the oldest went to make room
    assert not await store.claim("d", 600)


# --- the passive reply ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_passive_reply_reaches_the_user_in_every_mode(mode):
    user, hook = user_for(mode), webhook_for(mode)
    request = user.build(sim.text("你好"))
    inbound = await hook.receive(request.query, request.body)
    reply = hook.passive_reply(inbound, ["您好！请问需要办理什么业务？", "1. 退役报到\n2. 政策咨询"])
    assert ("<Encrypt>" in reply) is (mode != "plaintext")
    assert user.read_reply(reply) == ["您好！请问需要办理什么业务？\n\n1. 退役报到\n2. 政策咨询"]


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_passive_reply_keeps_cdata_terminators_and_drops_control_characters(mode):
    user, hook = user_for(mode), webhook_for(mode)
    request = user.build(sim.text("你好"))
    inbound = await hook.receive(request.query, request.body)
    reply = hook.passive_reply(inbound, ["代码 a[b[0]]>c 结束\x00\x07\n下一行"])
    assert user.read_reply(reply) == ["代码 a[b[0]]>c 结束\n下一行"]


async def test_passive_reply_without_text_is_success_and_over_the_limit_is_an_error():
    user, hook = user_for("plaintext"), webhook_for("plaintext")
    request = user.build(sim.text("你好"))
    inbound = await hook.receive(request.query, request.body)
    assert hook.passive_reply(inbound, []) == SUCCESS
    assert hook.passive_reply(inbound, ["", "  "]) == SUCCESS
    with pytest.raises(ValueError):
        hook.passive_reply(inbound, ["字" * (MAX_TEXT_BYTES // 3 + 1)])


def test_configuration_refuses_a_malformed_aes_key():
    with pytest.raises(ValueError):
        WechatConfig(TEST_TOKEN, TEST_APPID, "too-short")
    with pytest.raises(ValueError):
        WechatConfig(TEST_TOKEN, TEST_APPID, "!" * 43)
    with pytest.raises(ValueError):
        WechatConfig("", TEST_APPID)


@pytest.mark.parametrize("message,element", [(sim.subscribe("7"), "EventKey"), (sim.click("K"), "Event"),
                                             (sim.text("你好"), "Content")])
def test_nested_values_are_refused_by_an_explicit_check(message, element):
    xml = user_for("plaintext").message_xml(message)
    start = xml.index(f"<{element}>") + len(element) + 2
    end = xml.index(f"</{element}>")
    with pytest.raises(MalformedMessage) as refused_:
        parse_inbound(xml[:start] + "<a>1</a>" + xml[end:])
    assert not refused_.value.reason.startswith("unreadable")
