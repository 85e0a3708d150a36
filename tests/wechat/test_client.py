"""bot.wechat.client against the mock WeChat API: sends, token refresh, refusals as results."""

from __future__ import annotations

import pytest

from bot.wechat.client import OUTSIDE_WINDOW, OVER_SEND_LIMIT, WechatClient
from bot.wechat.token import AccessTokenStore
from tests.wechat.conftest import TEST_APPID, TEST_SECRET

OPENID = "oClientTestUser000000000001"


@pytest.fixture
def client(session, api_base):
    return WechatClient(session, api_base, AccessTokenStore(session, api_base, TEST_APPID, TEST_SECRET))


async def post_mock(session, api_base, path, body):
    async with session.post(f"{api_base}{path}", json=body) as response:
        assert response.status == 200


async def test_a_text_is_sent_and_recorded(client, mock_state):
    result = await client.send_text(OPENID, "您的预约已确认：6月3日上午9:00，宝山区退役军人服务中心。")
    assert (result.ok, result.errcode) == (True, 0)
    assert [(m["touser"], m["text"]) for m in mock_state.messages] == [
        (OPENID, "您的预约已确认：6月3日上午9:00，宝山区退役军人服务中心。")]


@pytest.mark.parametrize("mode,errcode", [("invalid", 40001), ("expired", 42001)])
async def test_a_refused_token_is_renewed_once_and_the_message_sent(client, session, api_base, mock_state,
                                                                    mode, errcode):
    assert (await client.send_text(OPENID, "第一条")).ok
    await post_mock(session, api_base, "/mock/expire-token", {"mode": mode})
    result = await client.send_text(OPENID, "第二条")
    assert result.ok
    assert mock_state.token_requests == 2
    assert mock_state.send_requests == 3  # first, the refused try, the retry
    assert [m["text"] for m in mock_state.messages] == ["第一条", "第二条"]


async def test_a_token_refused_twice_is_reported_not_retried_forever(client, session, api_base, mock_state):
    await post_mock(session, api_base, "/mock/fail", {"errcode": 40001, "count": 5})
    result = await client.send_text(OPENID, "你好")
    assert (result.ok, result.errcode) == (False, 40001)
    assert mock_state.send_requests == 2
    assert mock_state.messages == []


async def test_a_closed_48_hour_window_is_reported(client, session, api_base, mock_state):
    await post_mock(session, api_base, "/mock/window", {"openid": OPENID, "open": False})
    result = await client.send_text(OPENID, "您的诉求已办结。")
    assert (result.ok, result.errcode, result.window_closed, result.retryable) == (False, OUTSIDE_WINDOW, True, False)
    assert mock_state.send_requests == 1 and mock_state.messages == []
    await post_mock(session, api_base, "/mock/window", {"openid": OPENID, "open": True})
    assert (await client.send_text(OPENID, "您的诉求已办结。")).ok


async def test_the_send_limit_is_reported(client, session, api_base, mock_state):
    await post_mock(session, api_base, "/mock/fail", {"errcode": OVER_SEND_LIMIT, "touser": OPENID})
    result = await client.send_text(OPENID, "你好")
    assert (result.ok, result.errcode, result.window_closed) == (False, OVER_SEND_LIMIT, False)
    assert (await client.send_text(OPENID, "你好")).ok  # the fault was for one send only


async def test_text_over_2048_bytes_is_refused_by_wechat(client, mock_state):
    result = await client.send_text(OPENID, "字" * 683)  # 2049 bytes
    assert (result.ok, result.errcode) == (False, 45002)
    assert (await client.send_text(OPENID, "字" * 682)).ok


async def test_a_template_message_is_sent_with_its_data(client, mock_state):
    result = await client.send_template(OPENID, "TEMPLATE_APPOINTMENT_REMINDER",
                                       {"first": "您有一个预约即将开始", "keyword1": {"value": "退役报到", "color": "#173177"}},
                                       url="https://example.gov.cn/appointments/1")
    assert result.ok and isinstance(result.msgid, int)
    (message,) = mock_state.messages
    assert message["data"] == {"first": {"value": "您有一个预约即将开始"},
                               "keyword1": {"value": "退役报到", "color": "#173177"}}
    assert message["url"] == "https://example.gov.cn/appointments/1"


async def test_template_messages_ignore_the_48_hour_window(client, session, api_base):
    await post_mock(session, api_base, "/mock/window", {"openid": OPENID, "open": False})
    assert (await client.send_template(OPENID, "TEMPLATE_X", {"first": "提醒"})).ok


async def test_an_unreachable_api_is_a_retryable_result(session):
    tokens = AccessTokenStore(session, "http://127.0.0.1:9", TEST_APPID, TEST_SECRET)
    result = await WechatClient(session, "http://127.0.0.1:9", tokens).send_text(OPENID, "你好")
    assert (result.ok, result.errcode, result.retryable) == (False, None, True)

