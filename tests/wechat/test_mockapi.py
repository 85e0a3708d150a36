"""bot.wechat.mockapi: answers with WeChat's errcodes, records what was sent, can be steered."""

from __future__ import annotations

import pytest

from bot.wechat.mockapi import MOCK_STATE, TOKEN_OVERLAP_SECONDS, TOKEN_TTL_SECONDS, create_mock_app
from tests.wechat.conftest import TEST_APPID, TEST_SECRET


@pytest.fixture
async def api(aiohttp_client):
    clock = [1_700_000_000.0]
    client = await aiohttp_client(create_mock_app(TEST_APPID, TEST_SECRET, clock=lambda: clock[0]))
    client.clock = clock
    return client


async def get_token(api, **overrides) -> dict:
    params = {"grant_type": "client_credential", "appid": TEST_APPID, "secret": TEST_SECRET, **overrides}
    response = await api.get("/cgi-bin/token", params=params)
    assert response.status == 200
    return await response.json()


async def send(api, token, body, path="/cgi-bin/message/custom/send") -> dict:
    params = {"access_token": token} if token else {}
    if isinstance(body, bytes):
        response = await api.post(path, params=params, data=body)
    else:
        response = await api.post(path, params=params, json=body)
    return await response.json()


def text(touser="oMockUser", content="你好"):
    return {"touser": touser, "msgtype": "text", "text": {"content": content}}


async def test_token_checks_its_parameters(api):
    assert (await get_token(api, appid="wxother"))["errcode"] == 40013
    assert (await get_token(api, secret="wrong"))["errcode"] == 40125
    assert (await get_token(api, grant_type="password"))["errcode"] == 40002
    issued = await get_token(api)
    assert issued["expires_in"] == TOKEN_TTL_SECONDS and len(issued["access_token"]) > 32


async def test_a_new_token_retires_the_old_one_after_five_minutes(api):
    old = (await get_token(api))["access_token"]
    new = (await get_token(api))["access_token"]
    assert (await send(api, old, text()))["errcode"] == 0
    api.clock[0] += TOKEN_OVERLAP_SECONDS + 1
    assert (await send(api, old, text()))["errcode"] == 42001
    assert (await send(api, new, text()))["errcode"] == 0
    api.clock[0] += TOKEN_TTL_SECONDS
    assert (await send(api, new, text()))["errcode"] == 42001


async def test_send_refusals(api):
    token = (await get_token(api))["access_token"]
    assert (await send(api, None, text()))["errcode"] == 41001
    assert (await send(api, "forged", text()))["errcode"] == 40001
    assert (await send(api, token, b""))["errcode"] == 44002
    assert (await send(api, token, b"{not json"))["errcode"] == 47001
    assert (await send(api, token, {"msgtype": "text", "text": {"content": "x"}}))["errcode"] == 40003
    assert (await send(api, token, {"touser": "o1", "msgtype": "image", "image": {}}))["errcode"] == 40008
    assert (await send(api, token, {"touser": "o1", "template_id": ""},
                       "/cgi-bin/message/template/send"))["errcode"] == 40037
    assert api.server.app[MOCK_STATE].messages == []


async def test_messages_can_be_read_back_by_user_and_position(api):
    token = (await get_token(api))["access_token"]
    for touser, content in [("oA", "一"), ("oB", "二"), ("oA", "三")]:
        assert (await send(api, token, text(touser, content)))["errcode"] == 0
    found = (await (await api.get("/mock/messages", params={"touser": "oA"})).json())["messages"]
    assert [m["text"] for m in found] == ["一", "三"]
    after = (await (await api.get("/mock/messages", params={"touser": "oA", "after": found[0]["seq"]})).json())
    assert [m["text"] for m in after["messages"]] == ["三"]
    stats = await (await api.get("/mock/stats")).json()
    assert stats == {"token_requests": 1, "send_requests": 3, "messages": 3}


async def test_reset_forgets_messages_windows_and_tokens(api):
    token = (await get_token(api))["access_token"]
    await send(api, token, text())
    assert (await api.post("/mock/window", json={"openid": "oMockUser", "open": False})).status == 200
    assert (await api.post("/mock/reset")).status == 200
    assert (await (await api.get("/mock/messages")).json())["messages"] == []
    assert (await send(api, token, text()))["errcode"] == 40001
    fresh = (await get_token(api))["access_token"]
    assert (await send(api, fresh, text()))["errcode"] == 0  # the window is open again


async def test_control_endpoints_refuse_malformed_requests(api):
    assert (await api.post("/mock/window", json={"open": False})).status == 400
    assert (await api.post("/mock/expire-token", json={"mode": "sometimes"})).status == 400
    assert (await api.post("/mock/fail", json={"errcode": "45047"})).status == 400
    assert (await api.get("/mock/messages", params={"after": "x"})).status == 400
