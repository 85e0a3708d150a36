"""The console's sign-in, sessions, CSRF, roles and scope, through the real aiohttp
application (create_app + setup_console), on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from aiohttp import web
from sqlalchemy import func, select, update

from bot.console.auth import SESSION_COOKIE, current_staff, not_found_unless_visible, require_staff
from bot.db.models import ConsoleSession, Station
from bot.db.session import session_scope
from bot.gateway.app import PathOnlyAccessLogger, run_in_session
from tests.console.helpers import (
    TEST_PASSWORD,
    audit_actions,
    build_console_app,
    hidden,
    make_settings,
    sign_in,
)

async def station_record(request: web.Request) -> web.Response:
    """A probe page built the way the console's record pages are: a record (here a station)
    by its code in the URL, 404 outside the staff member's area."""
    code = request.match_info["code"]

    def work(session):
        return session.execute(select(Station.id).where(Station.code == code)).scalar_one_or_none()

    found = await run_in_session(request.app, work)
    if found is None:
        raise web.HTTPNotFound()
    not_found_unless_visible(current_staff(request), found)
    return web.Response(text=f"record {code}")


def build_app(settings, factory, vault):
    app = build_console_app(settings, factory, vault)
    app.router.add_get("/console/probe/{code}",
                       require_staff(roles=("admin", "district", "station"))(station_record))
    return app


@pytest.fixture
async def client(aiohttp_server, aiohttp_client, database_url, tmp_path, accounts, vault):
    server = await aiohttp_server(build_app(make_settings(database_url, tmp_path), accounts, vault),
                                  access_log_class=PathOnlyAccessLogger)
    return await aiohttp_client(server)


# --- sign-in ------------------------------------------------------------------------------


async def test_sign_in_sets_a_safe_cookie_and_shows_who_and_where(client, accounts, caplog):
    caplog.set_level(logging.DEBUG)
    response = await client.get("/console/login")
    html = await response.text()
    assert "<script" not in html and 'type="password"' in html
    login_cookie = response.cookies["vetbot_console_login"]
    assert login_cookie["httponly"] and login_cookie["samesite"] == "Strict" and login_cookie["path"] == "/console"
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"

    response = await sign_in(client, "wangkz")
    assert response.status == 303 and response.headers["Location"] == "/console"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/console"
    assert not cookie["secure"]  # the public URL here is http
    assert not cookie["max-age"] and not cookie["expires"]  # ends with the browser; the server ends it sooner

    response = await client.get("/console")
    html = await response.text()
    assert response.status == 200
    for text in ("王科长", "服务站工作人员", "安亭镇退役军人服务站", "安亭镇退役军人服务站及下属4个站点的事项",
                 "人工接待", "投诉登记簿", "预约", "数据看板", "退出登录"):
        assert text in html
    assert "/console/audit" not in html  # admins only
    assert audit_actions(accounts) == ["staff.create"] * 5 + ["login"]
    assert TEST_PASSWORD not in caplog.text and cookie.value not in caplog.text


@pytest.mark.parametrize("username, role_text, scope_text, sees_audit", [
    ("admin1", "系统管理员", "全部站点（共60个）", True),
    ("district1", "区中心工作人员", "嘉定区退役军人服务中心及下属全部站点（共60个）", False),
    ("trainer1", "语料训练员", "不查看个案数据", False),
])
async def test_home_per_role(client, username, role_text, scope_text, sees_audit):
    assert (await sign_in(client, username)).status == 303
    html = await (await client.get("/console")).text()
    assert role_text in html and scope_text in html
    assert ('href="/console/audit"' in html) is sees_audit
    assert ("人工接待" in html) is (username != "trainer1")


async def test_wrong_password_and_unknown_user_get_one_message(client, accounts):
    for username, password in (("wangkz", "Wrong-Pass-2026"), ("nobody", TEST_PASSWORD)):
        response = await sign_in(client, username, password)
        html = await response.text()
        assert response.status == 401 and "用户名或密码错误" in html
        assert SESSION_COOKIE not in response.cookies
        assert password not in html
    response = await client.get("/console", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/login"


async def test_failed_sign_ins_are_throttled(client):
    for _ in range(5):
        assert (await sign_in(client, "wangkz", "Wrong-Pass-2026")).status == 401
    response = await sign_in(client, "wangkz")  # the right password, too late
    html = await response.text()
    assert response.status == 429 and "登录失败次数过多" in html and "15分钟后再试" in html
    assert SESSION_COOKIE not in response.cookies


async def test_next_page_after_sign_in_and_no_open_redirect(client):
    response = await client.get("/console/audit", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/login?next=/console/audit"
    response = await sign_in(client, "admin1", next_path="/console/audit")
    assert response.headers["Location"] == "/console/audit"
    await client.post("/console/logout", data={"csrf": hidden(await (await client.get("/console")).text(), "csrf")})
    for evil in ("//evil.example.com/console", "https://evil.example.com/", "/console/../bind"):
        client.session.cookie_jar.clear()  # a fresh browser each time
        response = await sign_in(client, "admin1", next_path=evil)
        assert response.status == 303, (response.status, await response.text())
        assert response.headers["Location"] == "/console"


# --- sessions and sign-out ----------------------------------------------------------------


async def test_sign_out_ends_the_session_on_the_server(client, accounts):
    response = await sign_in(client, "wangkz")
    old_token = response.cookies[SESSION_COOKIE].value
    html = await (await client.get("/console")).text()
    response = await client.post("/console/logout", data={"csrf": hidden(html, "csrf")}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/login?reason=signed_out"
    assert response.cookies[SESSION_COOKIE].value == ""  # the browser forgets it …
    html = await (await client.get("/console/login?reason=signed_out")).text()
    assert "您已安全退出" in html

    # … and a copy kept elsewhere opens nothing: the server no longer knows it.
    client.session.cookie_jar.clear()
    response = await client.get("/console", headers={"Cookie": f"{SESSION_COOKIE}={old_token}"},
                                allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/login?reason=expired"
    with session_scope(accounts) as session:
        assert session.execute(select(func.count()).select_from(ConsoleSession)).scalar_one() == 0
    assert audit_actions(accounts)[-2:] == ["login", "logout"]


async def test_an_idle_session_expires(client, accounts):
    await sign_in(client, "wangkz")
    assert (await client.get("/console", allow_redirects=False)).status == 200
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    with session_scope(accounts) as session:
        session.execute(update(ConsoleSession).values(expires_at=past, created_at=past - dt.timedelta(hours=8)))
    response = await client.get("/console", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/login?reason=expired"
    assert "登录已超时" in await (await client.get("/console/login?reason=expired")).text()


async def test_secure_cookie_when_the_public_url_is_https(aiohttp_client, database_url, tmp_path, accounts, vault):
    settings = make_settings(database_url, tmp_path, public="https://vetbot.example.gov.cn/vetbot")
    client = await aiohttp_client(build_app(settings, accounts, vault))
    response = await client.get("/console/login")
    assert response.cookies["vetbot_console_login"]["secure"]
    assert response.cookies["vetbot_console_login"]["path"] == "/vetbot/console"
    html = await response.text()
    assert 'action="/vetbot/console/login"' in html
    # The test client speaks http, so it would not send a Secure cookie back: send it by hand.
    login = response.cookies["vetbot_console_login"].value
    response = await client.post("/console/login", data={"csrf": hidden(html, "csrf"), "username": "wangkz",
                                                         "password": TEST_PASSWORD},
                                 headers={"Cookie": f"vetbot_console_login={login}"}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/vetbot/console"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["path"] == "/vetbot/console"


# --- CSRF ---------------------------------------------------------------------------------


async def test_posts_without_the_csrf_token_are_refused(client, accounts):
    # The sign-in form: no token, or a token without its cookie.
    response = await client.post("/console/login", data={"username": "wangkz", "password": TEST_PASSWORD})
    assert response.status == 403 and "页面已失效" in await response.text()
    token = hidden(await (await client.get("/console/login")).text(), "csrf")
    client.session.cookie_jar.clear()
    response = await client.post("/console/login", data={"csrf": token, "username": "wangkz",
                                                         "password": TEST_PASSWORD}, allow_redirects=False)
    assert response.status == 403 and SESSION_COOKIE not in response.cookies

    # Signed in: sign-out without a token, with a token for another form, with another session's token.
    await sign_in(client, "wangkz")
    logout_token = hidden(await (await client.get("/console")).text(), "csrf")
    for data in ({}, {"csrf": ""}, {"csrf": "0" * 64}):
        response = await client.post("/console/logout", data=data, allow_redirects=False)
        assert response.status == 403 and "页面已失效" in await response.text()
    response = await client.post("/console/anything-else", data={"csrf": logout_token}, allow_redirects=False)
    assert response.status == 403  # a token is good for its own form only

    assert (await client.get("/console", allow_redirects=False)).status == 200  # still signed in
    with session_scope(accounts) as session:
        assert session.execute(select(func.count()).select_from(ConsoleSession)).scalar_one() == 1
    assert "logout" not in audit_actions(accounts)


async def test_a_token_from_another_session_does_not_work(aiohttp_client, client, accounts):
    await sign_in(client, "wangkz")
    first_token = hidden(await (await client.get("/console")).text(), "csrf")
    second = await aiohttp_client(client.server)
    await sign_in(second, "wangkz")
    response = await second.post("/console/logout", data={"csrf": first_token}, allow_redirects=False)
    assert response.status == 403
    assert (await second.get("/console", allow_redirects=False)).status == 200


# --- roles and scope ----------------------------------------------------------------------


@pytest.mark.parametrize("username", ["wangkz", "district1", "trainer1"])
async def test_only_admins_open_the_audit_log(client, username):
    await sign_in(client, username)
    response = await client.get("/console/audit")
    html = await response.text()
    assert response.status == 403 and "无权查看此页面" in html and "返回工作台首页" in html


async def test_admins_read_the_audit_log_and_the_reading_is_audited(client, accounts):
    await sign_in(client, "wangkz")
    await client.post("/console/logout", data={"csrf": hidden(await (await client.get("/console")).text(), "csrf")})
    await sign_in(client, "admin1")
    response = await client.get("/console/audit")
    html = await response.text()
    assert response.status == 200
    assert "王科长（wangkz）" in html and "登录" in html and "退出" in html and "命令行" in html
    assert audit_actions(accounts)[-1] == "audit.view"
    html = await (await client.get("/console/audit?staff=wangkz")).text()
    assert "王科长（wangkz）" in html and "李管理（admin1）" not in html


@pytest.mark.parametrize("username, inside, outside", [
    ("wangkz", ["JD-AT", "JD-AT-HD"], ["JD", "JD-XCL", "JD-XCL-HD"]),
    ("district1", ["JD", "JD-AT", "JD-XCL-HD"], []),
    ("admin1", ["JD", "JD-GYQ-WJ"], []),
])
async def test_records_outside_the_area_are_not_found(client, username, inside, outside):
    await sign_in(client, username)
    missing = await client.get("/console/probe/NO-SUCH-STATION")
    assert missing.status == 404
    missing_html = await missing.text()
    for code in inside:
        response = await client.get(f"/console/probe/{code}")
        assert response.status == 200 and await response.text() == f"record {code}"
    for code in outside:
        response = await client.get(f"/console/probe/{code}")
        assert response.status == 404 and await response.text() == missing_html  # indistinguishable


async def test_trainers_are_refused_case_pages(client):
    await sign_in(client, "trainer1")
    assert (await client.get("/console/probe/JD-AT")).status == 403
