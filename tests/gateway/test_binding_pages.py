"""The H5 binding flow through the real aiohttp application, on a migrated SQLite database."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from sqlalchemy import create_engine, func, select

from bot.db.models import BindingLock, WechatBinding
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.gateway.app import PathOnlyAccessLogger, create_app
from bot.services import identity
from bot.services.sms import LogCodeSender
from bot.settings import Settings
from tests.conftest import TEST_SECRET
from tests.services.veterans import add_veteran

OPENID = "oGatewayUser-0000000000000000"
PUBLIC = "https://vetbot.example.gov.cn"


@pytest.fixture
def settings(sqlite_url, tmp_path):
    return Settings.from_env({
        "VETBOT_DATABASE_URL": sqlite_url,
        "VETBOT_SECRET_KEY": TEST_SECRET,
        "VETBOT_VAR_DIR": str(tmp_path / "var"),
        "VETBOT_PUBLIC_URL": PUBLIC,
        "VETBOT_SERVICE_PHONE": "021-00000000",
    })


@pytest.fixture
def factory(sqlite_url):
    engine = make_engine(sqlite_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def sender():
    return LogCodeSender()


@pytest.fixture
def veteran(factory, vault):
    return add_veteran(factory, vault)


@pytest.fixture
async def client(aiohttp_server, aiohttp_client, settings, factory, vault, sender):
    # The access logger run_gateway uses, so that the log assertions cover it.
    server = await aiohttp_server(create_app(settings, factory, vault, sender),
                                  access_log_class=PathOnlyAccessLogger)
    return await aiohttp_client(server)


def new_link(factory, vault, now=None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    with session_scope(factory) as session:
        issued = identity.issue_link(session, vault, OPENID, PUBLIC, now)
    assert issued.url.startswith(f"{PUBLIC}/bind?t=")
    return issued.url[len(PUBLIC):]


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def open_form(client, path):
    response = await client.get(path)
    assert response.status == 200
    html = await response.text()
    return hidden(html, "t"), hidden(html, "csrf"), html


async def test_full_flow_binds_the_openid(client, factory, vault, veteran, sender, caplog):
    caplog.set_level(logging.DEBUG)
    token, csrf, html = await open_form(client, new_link(factory, vault))
    assert 'name="viewport"' in html and "<script" not in html
    for label in ("姓名", "身份证号", "手机号", "隐私说明"):
        assert label in html

    # Wrong data: the one generic message, the typed name kept, the ID not echoed.
    response = await client.post("/bind", data={"t": token, "csrf": csrf, "name": "张三明",
                                                "id_number": veteran.id_number, "phone": "13800000000"})
    html = await response.text()
    assert response.status == 200
    assert "信息核验未通过" in html and "还可尝试4次" in html
    assert 'value="张三明"' in html and veteran.id_number not in html

    # Right data: the code page, the code sent to the roster phone.
    response = await client.post("/bind", data={"t": token, "csrf": csrf, "name": "张三明",
                                                "id_number": veteran.id_number, "phone": veteran.phone})
    html = await response.text()
    assert response.status == 200 and "输入短信验证码" in html
    assert "138****5678" in html and veteran.phone not in html
    code = sender.last_code(veteran.phone)
    assert code and code in html  # the demo sender shows it on the page
    code_csrf = hidden(html, "csrf")
    assert code_csrf != csrf

    response = await client.post("/bind/code", data={"t": token, "csrf": code_csrf, "code": code})
    html = await response.text()
    assert response.status == 200 and "绑定成功，请返回微信对话" in html
    with session_scope(factory) as session:
        binding = session.execute(select(WechatBinding)).scalar_one()
        assert (binding.openid, binding.veteran_id) == (OPENID, veteran.veteran_id)

    # The link is spent.
    response = await client.get(f"/bind?t={token}")
    assert response.status == 410 and "已使用" in await response.text()

    logged = caplog.text
    assert veteran.id_number not in logged and veteran.phone not in logged and "张三明" not in logged
    assert token not in logged
    assert "POST /bind/code 200" in logged


async def test_wrong_code_stays_on_code_page(client, factory, vault, veteran, sender):
    token, csrf, _ = await open_form(client, new_link(factory, vault))
    response = await client.post("/bind", data={"t": token, "csrf": csrf, "name": veteran.name,
                                                "id_number": veteran.id_number, "phone": veteran.phone})
    code_csrf = hidden(await response.text(), "csrf")
    wrong = "000000" if sender.last_code() != "000000" else "111111"
    response = await client.post("/bind/code", data={"t": token, "csrf": code_csrf, "code": wrong})
    html = await response.text()
    assert "验证码不正确" in html and "还可尝试4次" in html and "完成绑定" in html
    response = await client.post("/bind/code", data={"t": token, "csrf": code_csrf, "code": "12"})
    assert "6位数字验证码" in await response.text()


@pytest.mark.parametrize("fields, expected", [
    ({"name": ""}, "请填写您的姓名"),
    ({"id_number": "11010519750601"}, "身份证号应为18位，现为14位"),
    ({"id_number": "110105197506011230"}, "校验位不正确"),
    ({"phone": "1234"}, "手机号应为11位手机号码"),
])
async def test_malformed_input_is_explained_and_not_counted(client, factory, vault, veteran, fields, expected):
    token, csrf, _ = await open_form(client, new_link(factory, vault))
    form = {"t": token, "csrf": csrf, "name": "张三明", "id_number": veteran.id_number, "phone": veteran.phone}
    form.update(fields)
    response = await client.post("/bind", data=form)
    html = await response.text()
    assert response.status == 200 and expected in html
    assert form["id_number"] not in html
    if form["name"]:
        assert 'value="张三明"' in html
    with session_scope(factory) as session:
        assert session.execute(select(func.count()).select_from(BindingLock)).scalar_one() == 0


async def test_posts_without_the_pages_csrf_token_are_refused(client, factory, vault, veteran):
    token, csrf, _ = await open_form(client, new_link(factory, vault))
    form = {"t": token, "name": "张三明", "id_number": veteran.id_number, "phone": veteran.phone}
    assert (await client.post("/bind", data=form)).status == 403
    assert (await client.post("/bind", data={**form, "csrf": "0" * 64})).status == 403
    # A token from the step 1 page does not open step 2.
    response = await client.post("/bind/code", data={"t": token, "csrf": csrf, "code": "123456"})
    assert response.status == 403 and "页面已失效" in await response.text()
    assert (await client.post("/bind/code", data={"t": token, "code": "123456"})).status == 403


async def test_expired_forged_and_missing_links(client, factory, vault):
    old = new_link(factory, vault, dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=11))
    response = await client.get(old)
    html = await response.text()
    assert response.status == 410 and "已过期" in html and "绑定身份" in html

    for path in (old[:-3] + "xyz", "/bind?t=nonsense", "/bind"):
        response = await client.get(path)
        assert response.status == 404 and "链接无效" in await response.text(), path


async def test_locked_openid_sees_when_to_retry(client, factory, vault):
    path = new_link(factory, vault)
    with session_scope(factory) as session:
        session.add(BindingLock(openid=OPENID, failures=0,
                                locked_until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30)))
    response = await client.get(path)
    assert response.status == 429 and "后再试" in await response.text()


async def test_pages_carry_security_headers(client, factory, vault):
    response = await client.get(new_link(factory, vault))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    response = await client.get("/nowhere")
    assert response.status == 404 and "页面不存在" in await response.text()


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"gateway": "ok", "database": "ok"}


async def test_healthz_reports_a_broken_database(aiohttp_client, settings, vault, sender):
    from sqlalchemy.orm import sessionmaker

    broken = sessionmaker(bind=create_engine("postgresql://nobody@127.0.0.1:1/none", future=True),
                          future=True)
    client = await aiohttp_client(create_app(settings, broken, vault, sender))
    response = await client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {"gateway": "ok", "database": "error"}


async def test_app_opens_its_own_engine(aiohttp_client, settings, sender):
    client = await aiohttp_client(create_app(settings, sender=sender))
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["database"] == "ok"
