"""Staff account lifecycle through the real console (create_app + setup_console): one's
own password, an admin's reset (a one-time password, changed at the next sign-in),
deactivation and reactivation, unlocking; sessions ended, steps audited, non-admins
refused. On SQLite and on PostgreSQL. Throttling behind a reverse proxy is in
test_proxy_throttling.py."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.console.auth import SESSION_COOKIE
from bot.db.models import AuditEntry, StaffAccount
from bot.db.session import session_scope
from tests.console.helpers import TEST_PASSWORD, form_csrf, hidden, session_token, sign_in

NEW_PASSWORD = "Fresh-Test-Pass-2027"  # a test value, not a real credential


def account(factory, username: str) -> StaffAccount:
    with session_scope(factory) as session:
        row = session.execute(select(StaffAccount).where(StaffAccount.username == username)).scalar_one()
        session.expunge(row)
        return row


def audit_rows(factory, action: str):
    with session_scope(factory) as session:
        return [(e.staff_id, e.object_type, e.object_id, e.detail) for e in session.execute(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).scalars()]


def all_audit_text(factory) -> str:
    with session_scope(factory) as session:
        return " ".join(e.detail or "" for e in session.execute(select(AuditEntry)).scalars())


async def second_browser(aiohttp_client, client, username: str, password: str = TEST_PASSWORD):
    other = await aiohttp_client(client.server)
    assert (await sign_in(other, username, password)).status == 303
    assert (await other.get("/console", allow_redirects=False)).status == 200
    return other


async def signed_out(client) -> bool:
    response = await client.get("/console", allow_redirects=False)
    return response.status == 303 and response.headers["Location"] == "/console/login?reason=expired"


async def change_password(client, current: str, new: str, again: str = None):
    html = await (await client.get("/console/password")).text()
    return await client.post("/console/password", allow_redirects=False, data={
        "csrf": form_csrf(html, "/console/password"), "current": current, "new": new,
        "again": new if again is None else again})


async def accounts_step(client, account_id: int, step: str):
    html = await (await client.get("/console/accounts")).text()
    path = f"/console/accounts/{account_id}/{step}"
    return await client.post(path, data={"csrf": form_csrf(html, path)}, allow_redirects=False)


# --- one's own password --------------------------------------------------------------------


async def test_changing_ones_password_ends_the_other_sessions_and_keeps_this_one(console_client, accounts,
                                                                                   aiohttp_client):
    client = console_client
    await sign_in(client, "wangkz")
    elsewhere = await second_browser(aiohttp_client, client, "wangkz")
    html = await (await client.get("/console")).text()
    assert 'href="/console/password"' in html  # in the top bar of every page

    response = await change_password(client, TEST_PASSWORD, NEW_PASSWORD)
    assert response.status == 303 and response.headers["Location"] == "/console/password?changed=1"
    html = await (await client.get("/console/password?changed=1")).text()
    assert "密码已修改成功" in html and "其他电脑或浏览器上的登录已同时退出" in html
    assert (await client.get("/console", allow_redirects=False)).status == 200  # this browser stays
    assert await signed_out(elsewhere)  # the other one gets the sign-in page

    fresh = await aiohttp_client(client.server)
    assert (await sign_in(fresh, "wangkz", TEST_PASSWORD)).status == 401
    assert (await sign_in(fresh, "wangkz", NEW_PASSWORD)).status == 303
    wangkz = account(accounts, "wangkz")
    assert audit_rows(accounts, "staff.password") == [(wangkz.id, "staff_account", str(wangkz.id), "wangkz")]
    assert NEW_PASSWORD not in all_audit_text(accounts) and TEST_PASSWORD not in all_audit_text(accounts)


async def test_a_password_change_is_refused_with_the_reason(console_client, accounts):
    client = console_client
    await sign_in(client, "wangkz")
    for current, new, again, status, reason in (
        (TEST_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", 400, "两次输入的新密码不一致"),
        (TEST_PASSWORD, "short-1A", None, 400, "密码至少需要10位"),
        (TEST_PASSWORD, "Wangkz-Pass-2027", None, 400, "密码不能包含用户名"),
        ("Wrong-Pass-2026", NEW_PASSWORD, None, 400, "原密码不正确"),
    ):
        response = await change_password(client, current, new, again)
        html = await response.text()
        assert response.status == status and reason in html, (reason, html)
        assert new not in html
    # A wrong current password counts as a failed sign-in: it cannot be guessed here either.
    for _ in range(4):
        await change_password(client, "Wrong-Pass-2026", NEW_PASSWORD)
    response = await change_password(client, TEST_PASSWORD, NEW_PASSWORD)
    assert response.status == 429 and "登录失败次数过多" in await response.text()
    assert audit_rows(accounts, "staff.password") == []
    assert (await client.get("/console", allow_redirects=False)).status == 200  # still signed in


# --- an admin's reset ------------------------------------------------------------------------


async def test_an_admin_reset_gives_a_one_time_password_that_must_be_changed(console_client, accounts,
                                                                              aiohttp_client):
    admin = console_client
    await sign_in(admin, "admin1")
    holder = await second_browser(aiohttp_client, admin, "wangkz")
    wangkz = account(accounts, "wangkz")

    response = await accounts_step(admin, wangkz.id, "reset")
    html = await response.text()
    assert response.status == 200 and "临时密码已生成" in html and "只显示这一次" in html
    one_time = re.search(r"临时密码：<strong[^>]*>([^<]+)</strong>", html).group(1)
    assert re.fullmatch(r"[A-Za-z2-9]{4}-[A-Za-z2-9]{4}-[A-Za-z2-9]{4}", one_time)
    assert response.headers["Cache-Control"] == "no-store"
    assert await signed_out(holder)  # every session of the account ended

    assert (await sign_in(holder, "wangkz", TEST_PASSWORD)).status == 401  # the old password is gone
    response = await sign_in(holder, "wangkz", one_time, next_path="/console/handoffs")
    assert response.status == 303 and response.headers["Location"] == "/console/password"
    # Until a password of their own is chosen, every page leads to the change-password page …
    for path in ("/console", "/console/handoffs", "/console/dashboard"):
        response = await holder.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/console/password", path
    # … a form elsewhere is not carried out, even with its token …
    response = await holder.post("/console/conversations/take-over", allow_redirects=False,
                                 data={"csrf": session_token(accounts, "wangkz", "/console/conversations/take-over")})
    assert response.status == 303 and response.headers["Location"] == "/console/password"
    html = await (await holder.get("/console/password")).text()
    assert "您正在使用管理员设置的临时密码" in html and "临时密码" in html
    # … and signing out still works from there.
    assert 'action="/console/logout"' in html

    response = await change_password(holder, one_time, NEW_PASSWORD)
    assert response.status == 303
    assert (await holder.get("/console", allow_redirects=False)).status == 200
    assert account(accounts, "wangkz").must_change_password is False

    admin_id = account(accounts, "admin1").id
    assert audit_rows(accounts, "staff.reset") == [(admin_id, "staff_account", str(wangkz.id), "wangkz")]
    assert audit_rows(accounts, "staff.password")[-1][0] == wangkz.id
    assert one_time not in all_audit_text(accounts) and NEW_PASSWORD not in all_audit_text(accounts)
    html = await (await admin.get("/console/audit?type=staff_account")).text()
    assert "重置密码" in html and "修改密码" in html


async def test_an_admin_changes_their_own_password_on_their_own_page(console_client, accounts):
    await sign_in(console_client, "admin1")
    admin_id = account(accounts, "admin1").id
    html = await (await console_client.get("/console/accounts")).text()
    assert f"/console/accounts/{admin_id}/reset" not in html and f"/console/accounts/{admin_id}/deactivate" not in html
    path = f"/console/accounts/{admin_id}/reset"
    response = await console_client.post(path, data={"csrf": session_token(accounts, "admin1", path)})
    assert response.status == 409 and "修改密码" in await response.text()
    assert audit_rows(accounts, "staff.reset") == []


# --- deactivation, reactivation, unlocking --------------------------------------------------


async def test_deactivation_ends_every_session_and_refuses_sign_in_like_a_wrong_password(console_client, accounts,
                                                                                         aiohttp_client):
    admin = console_client
    await sign_in(admin, "admin1")
    holder = await second_browser(aiohttp_client, admin, "wangkz")
    holder_again = await second_browser(aiohttp_client, admin, "wangkz")
    wangkz = account(accounts, "wangkz")

    response = await accounts_step(admin, wangkz.id, "deactivate")
    assert response.status == 303
    assert response.headers["Location"] == f"/console/accounts?done=deactivate&id={wangkz.id}"
    html = await (await admin.get(response.headers["Location"])).text()
    assert "已停用王科长（wangkz）的账号，该账号的所有登录已即时退出。" in html and "已停用" in html
    assert await signed_out(holder) and await signed_out(holder_again)

    # The right password of a deactivated account gets exactly what a wrong one gets.
    wrong = await sign_in(holder, "wangkz", "Wrong-Pass-2026")
    refused = await sign_in(holder, "wangkz", TEST_PASSWORD)
    assert refused.status == wrong.status == 401 and SESSION_COOKIE not in refused.cookies
    assert "用户名或密码错误" in await refused.text()
    assert "账号被停用，请联系系统管理员" in await refused.text()  # the page's standing note, for everyone

    response = await accounts_step(admin, wangkz.id, "activate")
    assert response.status == 303
    html = await (await admin.get(response.headers["Location"])).text()
    assert "已启用王科长（wangkz）的账号" in html
    assert (await sign_in(holder, "wangkz", TEST_PASSWORD)).status == 303

    admin_id = account(accounts, "admin1").id
    for action in ("staff.deactivate", "staff.activate"):
        assert audit_rows(accounts, action) == [(admin_id, "staff_account", str(wangkz.id), "wangkz")]


async def test_an_admin_cannot_deactivate_themselves(console_client, accounts):
    await sign_in(console_client, "admin1")
    admin_id = account(accounts, "admin1").id
    path = f"/console/accounts/{admin_id}/deactivate"
    response = await console_client.post(path, data={"csrf": session_token(accounts, "admin1", path)})
    html = await response.text()
    assert response.status == 409 and "不能停用自己正在使用的账号" in html
    assert account(accounts, "admin1").active
    assert audit_rows(accounts, "staff.deactivate") == []
    # Nor stepping twice: an account already deactivated says so.
    wangkz = account(accounts, "wangkz")
    assert (await accounts_step(console_client, wangkz.id, "deactivate")).status == 303
    path = f"/console/accounts/{wangkz.id}/deactivate"
    response = await console_client.post(path, data={"csrf": session_token(accounts, "admin1", path)})
    assert response.status == 409 and "已是停用状态" in await response.text()


async def test_unlocking_lets_a_throttled_name_sign_in_again(console_client, accounts, aiohttp_client):
    for _ in range(5):
        assert (await sign_in(console_client, "wangkz", "Wrong-Pass-2026")).status == 401
    assert (await sign_in(console_client, "wangkz")).status == 429

    admin = await aiohttp_client(console_client.server)
    await sign_in(admin, "admin1")
    html = await (await admin.get("/console/accounts")).text()
    assert "登录已暂停" in html
    wangkz = account(accounts, "wangkz")
    response = await accounts_step(admin, wangkz.id, "unlock")
    assert response.status == 303
    html = await (await admin.get(response.headers["Location"])).text()
    assert "已解除王科长（wangkz）的登录限制" in html and "登录已暂停" not in html

    assert (await sign_in(console_client, "wangkz")).status == 303
    admin_id = account(accounts, "admin1").id
    assert audit_rows(accounts, "staff.unlock") == [(admin_id, "staff_account", str(wangkz.id), "wangkz")]


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["wangkz", "district1", "trainer1"])
async def test_only_admins_manage_accounts(console_client, accounts, username):
    await sign_in(console_client, username)
    html = await (await console_client.get("/console")).text()
    assert "/console/accounts" not in html
    response = await console_client.get("/console/accounts")
    assert response.status == 403 and "无权查看此页面" in await response.text()
    target = account(accounts, "zhoumq")
    for step in ("reset", "deactivate", "activate", "unlock"):
        path = f"/console/accounts/{target.id}/{step}"
        response = await console_client.post(path, data={"csrf": session_token(accounts, username, path)})
        assert response.status == 403, step
    assert account(accounts, "zhoumq").active
    assert not [a for a in ("staff.reset", "staff.deactivate", "staff.activate", "staff.unlock")
                if audit_rows(accounts, a)]


async def test_the_accounts_page_lists_everyone_and_unknown_ids_are_not_found(console_client, accounts):
    await sign_in(console_client, "admin1")
    html = await (await console_client.get("/console")).text()
    assert 'href="/console/accounts"' in html
    html = await (await console_client.get("/console/accounts")).text()
    for text in ("李管理（本人）", "赵主任", "王科长", "周站长", "陈训练", "安亭镇退役军人服务站", "从未登录"):
        assert text in html
    path = "/console/accounts/999999/deactivate"
    response = await console_client.post(path, data={"csrf": session_token(accounts, "admin1", path)})
    assert response.status == 404
    # A step without the form's token is refused like every console POST.
    wangkz = account(accounts, "wangkz")
    response = await console_client.post(f"/console/accounts/{wangkz.id}/deactivate", data={"csrf": "0" * 64})
    assert response.status == 403 and account(accounts, "wangkz").active
    assert hidden(html, "csrf")
