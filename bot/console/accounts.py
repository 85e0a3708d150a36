"""修改密码 and 账号管理: a staff member's own password, and the admins' account list.

    GET  /console/password                    the change-password form (every account)
    POST /console/password                    change it: the current password first
    GET  /console/accounts                    账号管理 (admins only): every account, its state
    POST /console/accounts/{id}/reset         a one-time password, shown to the admin once
    POST /console/accounts/{id}/deactivate    停用: every session of the account ends at once
    POST /console/accounts/{id}/activate      启用 again
    POST /console/accounts/{id}/unlock        解除登录限制: forget the name's failed sign-ins

A password change signs out the account's other browsers and keeps this one; a reset
or a deactivation ends them all. After a reset the holder must choose a password of
their own before any other page opens (bot.console.pages' middleware). A wrong current
password counts as a failed sign-in, so this form cannot be used to guess it. Every
step is in the audit log (who, what, whose account; never a password). Accounts are
created on the server (``vetbot create-staff``); the same steps are there as
``vetbot staff …`` (bot.console.accounts_cli).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.auth import current_staff, now_utc, request_address, require_staff
from bot.console.pages import PASSWORD_PAGE, local, render_console, see_other
from bot.db.models import StaffAccount
from bot.gateway.app import VAULT, run_in_session
from bot.services import staff as staff_service
from bot.services.staff import ROLE_LABELS, StaffError

AUDIT_LABELS = {
    "staff.reset": "重置密码",
    "staff.activate": "启用账号",
    "staff.unlock": "解除登录限制",
}

ACCOUNTS = "/console/accounts"

# After a step on the accounts page (303 back to the list): what the list then says.
DONE = {
    "deactivate": "已停用{who}的账号，该账号的所有登录已即时退出。",
    "activate": "已启用{who}的账号，可使用原密码登录。",
    "unlock": "已解除{who}的登录限制，可以立即重新登录。",
}


def _who(account: StaffAccount) -> str:
    return f"{account.display_name}（{account.username}）"


# --- the holder's own password --------------------------------------------------------------


def _password_page(request: web.Request, status: int = 200, message: Optional[str] = None) -> web.Response:
    staff = current_staff(request)
    changed = request.method == "GET" and request.query.get("changed") == "1"
    return render_console(request, "password.html", status=status, message=message, changed=changed,
                          must_change=staff is not None and staff.must_change_password,
                          password_min=staff_service.PASSWORD_MIN)


@require_staff()
async def password_form(request: web.Request) -> web.Response:
    return _password_page(request)


@require_staff()
async def change_password(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    data = await request.post()
    current = str(data.get("current", ""))[:256]
    new, again = str(data.get("new", ""))[:256], str(data.get("again", ""))[:256]
    if not current or not new:
        return _password_page(request, 400, "请填写当前密码和新密码。")
    if new != again:
        return _password_page(request, 400, "两次输入的新密码不一致，请重新输入。")
    vault, address = request.app[VAULT], request_address(request)

    def work(session: Session) -> Optional[tuple]:
        now = now_utc()
        wait = staff_service.throttled_for(session, vault, staff.username, address, now)
        if wait is not None:
            return 429, staff_service.throttled_message(wait)
        account = session.get(StaffAccount, staff.id)
        try:
            staff_service.change_password(session, account, current, new, now, keep_session=staff.session_id)
        except StaffError as error:
            if error.message == staff_service.WRONG_CURRENT_PASSWORD:
                staff_service.record_failure(session, vault, staff.username, address, now)
            return 400, error.message
        return None

    refused = await run_in_session(request.app, work)
    if refused is not None:
        return _password_page(request, *refused)
    return see_other(request, PASSWORD_PAGE + "?changed=1")


# --- the admins' account list ------------------------------------------------------------------


def _rows(session: Session, vault, viewer_id: int) -> List[Dict[str, Any]]:
    now = now_utc()
    accounts = session.execute(
        select(StaffAccount).order_by(StaffAccount.active.desc(), StaffAccount.role, StaffAccount.username)
    ).scalars().all()
    return [{
        "id": a.id, "username": a.username, "display_name": a.display_name, "role": ROLE_LABELS[a.role],
        "station": a.station.name if a.station is not None else "", "active": a.active,
        "must_change": a.must_change_password, "last_login": local(a.last_login_at) or "从未登录",
        "locked": staff_service.name_throttled_for(session, vault, a.username, now) is not None,
        "self": a.id == viewer_id,
    } for a in accounts]


def _accounts_page(request: web.Request, rows: List[Dict[str, Any]], status: int = 200,
                   message: Optional[str] = None, done: Optional[str] = None) -> web.Response:
    return render_console(request, "accounts.html", status=status, rows=rows, message=message, done=done)


@require_staff(roles=("admin",))
async def account_list(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    vault = request.app[VAULT]
    done_kind = request.query.get("done", "")
    done_id = request.query.get("id", "")

    def work(session: Session):
        rows = _rows(session, vault, staff.id)
        done = None
        if done_kind in DONE and done_id.isdigit():
            account = session.get(StaffAccount, int(done_id))
            if account is not None:
                done = DONE[done_kind].format(who=_who(account))
        return rows, done

    rows, done = await run_in_session(request.app, work)
    return _accounts_page(request, rows, done=done)


def _account(session: Session, request: web.Request) -> StaffAccount:
    account = session.get(StaffAccount, int(request.match_info["id"]))
    if account is None:
        raise web.HTTPNotFound()
    return account


@require_staff(roles=("admin",))
async def reset(request: web.Request) -> web.Response:
    """The one-time password is in this response only: not stored, not logged, not
    in a URL (the gateway sends every page with Cache-Control: no-store)."""
    staff = current_staff(request)
    assert staff is not None
    vault = request.app[VAULT]

    def work(session: Session):
        account = _account(session, request)
        if account.id == staff.id:
            return None, None, _rows(session, vault, staff.id)
        password = staff_service.reset_password(session, account, now_utc(), by=staff)
        return {"who": _who(account), "username": account.username, "active": account.active}, password, None

    target, password, rows = await run_in_session(request.app, work)
    if password is None:
        return _accounts_page(request, rows, 409, "您自己的密码请在“修改密码”页面修改。")
    return render_console(request, "account_reset.html", target=target, password=password)


async def _step(request: web.Request, kind: str) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    vault = request.app[VAULT]

    def work(session: Session):
        account = _account(session, request)
        now = now_utc()
        try:
            if kind == "deactivate":
                staff_service.deactivate(session, account, now, by=staff)
            elif kind == "activate":
                staff_service.activate(session, account, now, by=staff)
            else:
                staff_service.unlock(session, vault, account, now, by=staff)
        except StaffError as error:  # refused before anything changed
            return account.id, error.message, _rows(session, vault, staff.id)
        return account.id, None, None

    account_id, problem, rows = await run_in_session(request.app, work)
    if problem is not None:
        return _accounts_page(request, rows, 409, problem)
    return see_other(request, f"{ACCOUNTS}?done={kind}&id={account_id}")


@require_staff(roles=("admin",))
async def deactivate(request: web.Request) -> web.Response:
    return await _step(request, "deactivate")


@require_staff(roles=("admin",))
async def activate(request: web.Request) -> web.Response:
    return await _step(request, "activate")


@require_staff(roles=("admin",))
async def unlock(request: web.Request) -> web.Response:
    return await _step(request, "unlock")


def setup(app: web.Application) -> None:
    app.router.add_get(PASSWORD_PAGE, password_form)
    app.router.add_post(PASSWORD_PAGE, change_password)
    app.router.add_get(ACCOUNTS, account_list)
    app.router.add_post(ACCOUNTS + r"/{id:\d{1,11}}/reset", reset)
    app.router.add_post(ACCOUNTS + r"/{id:\d{1,11}}/deactivate", deactivate)
    app.router.add_post(ACCOUNTS + r"/{id:\d{1,11}}/activate", activate)
    app.router.add_post(ACCOUNTS + r"/{id:\d{1,11}}/unlock", unlock)
