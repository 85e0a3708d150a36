"""Fixtures for the WeChat edge: test credentials, the mock WeChat API, a throwaway Redis."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import aiohttp
import pytest

from bot.wechat.mockapi import MOCK_STATE, create_mock_app
from bot.wechat.protocol import MemoryNonceStore, WechatConfig, Webhook
from bot.wechat.simulator import DEFAULT_ACCOUNT_ID, WechatUser

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Test values only: no real account has these.
TEST_TOKEN = "vetbot-test-token"
TEST_APPID = "wxtest0000000001"
TEST_SECRET = "vetbot-test-secret"
TEST_AES_KEY = base64.b64encode(b"vetbot-test-aes-key-32-bytes!!!!").decode("ascii")[:43]
TEST_ACCOUNT_ID = DEFAULT_ACCOUNT_ID

MODES = ["plaintext", "compatible", "safe"]


def crypto_vectors() -> dict:
    return json.loads((FIXTURES / "crypto_vectors.json").read_text(encoding="utf-8"))


def message_fixture(name: str) -> str:
    return (FIXTURES / "messages" / f"{name}.xml").read_text(encoding="utf-8")


def config_for(mode: str, account_id: str = TEST_ACCOUNT_ID) -> WechatConfig:
    return WechatConfig(TEST_TOKEN, TEST_APPID, None if mode == "plaintext" else TEST_AES_KEY, account_id)


def webhook_for(mode: str, clock=time.time) -> Webhook:
    return Webhook(config_for(mode), MemoryNonceStore(), clock=clock)


def user_for(mode: str, **kwargs) -> WechatUser:
    return WechatUser("http://127.0.0.1:9/wechat", TEST_TOKEN, TEST_APPID,
                      None if mode == "plaintext" else TEST_AES_KEY, mode=mode, **kwargs)


@pytest.fixture
async def mock_api(aiohttp_server):
    """The mock WeChat API on a local port; ``mock_api.app[MOCK_STATE]`` is its memory."""
    return await aiohttp_server(create_mock_app(TEST_APPID, TEST_SECRET))


@pytest.fixture
def mock_state(mock_api):
    return mock_api.app[MOCK_STATE]


@pytest.fixture
def api_base(mock_api) -> str:
    return str(mock_api.make_url("")).rstrip("/")


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture
async def redis_client(redis_server):
    """A ``redis.asyncio`` client on an empty database."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_server)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.close()
