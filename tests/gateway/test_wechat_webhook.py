"""The /wechat endpoint in process (aiohttp test server, no Rasa): answers the gateway
gives by itself. Whole conversations through Rasa are in tests/e2e/test_gateway_wechat.py."""

from __future__ import annotations

import pytest

from bot.db.session import make_engine, make_session_factory
from bot.gateway.app import create_app
from bot.gateway.wechat import BLANK_TEXT, setup_wechat
from bot.services.sms import LogCodeSender
from bot.settings import Settings
from bot.wechat import simulator as sim
from bot.wechat.simulator import WechatUser
from tests.conftest import TEST_SECRET
from tests.wechat.conftest import TEST_AES_KEY, TEST_APPID, TEST_TOKEN

CLOSED = "http://127.0.0.1:9"  # nothing listens here: a test that reached Rasa would fail


@pytest.fixture
def factory(sqlite_url):
    engine = make_engine(sqlite_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(params=["plaintext", "safe"])
def mode(request) -> str:
    return request.param


@pytest.fixture
async def webhook_url(aiohttp_server, sqlite_url, tmp_path, factory, vault, mode):
    settings = Settings.from_env({
        "VETBOT_DATABASE_URL": sqlite_url,
        "VETBOT_SECRET_KEY": TEST_SECRET,
        "VETBOT_VAR_DIR": str(tmp_path / "var"),
        "WECHAT_TOKEN": TEST_TOKEN,
        "WECHAT_APPID": TEST_APPID,
        "WECHAT_AES_KEY": TEST_AES_KEY if mode == "safe" else "",
        "WECHAT_API_BASE": CLOSED,  # and no WECHAT_SECRET: no customer-service client, no outbox worker
        "RASA_URL": CLOSED,
        "VETBOT_ACTION_SERVER_URL": f"{CLOSED}/webhook",
    })
    app = create_app(settings, factory, vault, LogCodeSender())
    setup_wechat(app)
    server = await aiohttp_server(app)
    return str(server.make_url("/wechat"))


@pytest.mark.parametrize("content", ["   ", "\n", " \n\t　"])
async def test_a_message_of_spaces_or_line_breaks_gets_a_polite_answer(webhook_url, mode, content):
    # WeChat retries a refused message and then tells the user the account is unavailable.
    aes_key = None if mode == "plaintext" else TEST_AES_KEY
    async with WechatUser(webhook_url, TEST_TOKEN, TEST_APPID, aes_key, mode=mode) as user:
        answer = await user.send(sim.text(content))
    assert answer.status == 200
    assert answer.texts == [BLANK_TEXT]
    assert BLANK_TEXT.startswith("您好，请问有什么可以帮您？")
