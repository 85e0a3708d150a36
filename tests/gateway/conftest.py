"""The gateway with the real /wechat endpoint, the real database (SQLite and PostgreSQL)
and Rasa's HTTP API played by tests/gateway/rasa_stand_in.py; a simulated WeChat user
signs each message. The clock is fixed: 02:00 on a Tuesday, Beijing time."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from actions import handoff as handoff_actions
from actions import resources
from bot.db.session import session_scope
from bot.gateway.app import create_app
from bot.gateway.wechat import WECHAT, setup_wechat
from bot.services.sms import LogCodeSender
from bot.services.stations import SHANGHAI, load_stations
from bot.settings import PROJECT_ROOT, Settings
from bot.wechat.simulator import WechatUser
from tests.conftest import TEST_SECRET
from tests.gateway.rasa_stand_in import RasaStandIn

TUESDAY_2AM = dt.datetime(2026, 12, 8, 2, 0, tzinfo=SHANGHAI)


@pytest.fixture
async def gateway(aiohttp_server, database_url, session_factory, vault, tmp_path, monkeypatch):
    with session_scope(session_factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
    clock = {"now": TUESDAY_2AM}
    rasa = RasaStandIn()
    rasa_server = await aiohttp_server(rasa.app())
    rasa_url = str(rasa_server.make_url("")).rstrip("/")
    settings = Settings.from_env({
        "VETBOT_DATABASE_URL": database_url, "VETBOT_SECRET_KEY": TEST_SECRET,
        "VETBOT_VAR_DIR": str(tmp_path / "var"), "RASA_URL": rasa_url,
        "VETBOT_ACTION_SERVER_URL": f"{rasa_url}/webhook",
        "WECHAT_API_BASE": "http://127.0.0.1:9",  # no secret: nothing is sent later
        "VETBOT_WECHAT_REPLY_BUDGET": "30",  # every answer is the passive reply
    })
    assert settings.handoff_ack_minutes == 10  # the default
    rasa.secret = settings.rasa_token  # the stand-in refuses calls without the token, as Rasa does
    resources.use(settings, session_factory, vault)  # action_request_human's database
    monkeypatch.setattr(handoff_actions, "now", lambda: clock["now"])
    app = create_app(settings, session_factory, vault, LogCodeSender())
    setup_wechat(app)
    app[WECHAT].clock = lambda: clock["now"]
    server = await aiohttp_server(app)
    user = WechatUser(str(server.make_url("/wechat")), settings.wechat_token, settings.wechat_appid)
    async with user:
        yield SimpleNamespace(user=user, rasa=rasa, factory=session_factory, clock=clock, app=app)
    assert rasa.refused == 0  # every call of the gateway carried the token
    resources.use()
