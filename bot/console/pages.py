"""The staff console's frame (工作台) under /console: sign-in, sign-out, home, audit log,
and what every section shares.

    GET  /console/login     the sign-in form
    POST /console/login     sign in (throttled; one message for every wrong answer)
    POST /console/logout    sign out: the session ends on the server
    GET  /console           home: who is signed in, the role, the area they see, the sections
    GET  /console/audit     审计日志 (admins only)
    GET|POST /console/password    修改密码 (every account; bot.console.accounts)
    GET  /console/accounts  账号管理 (admins only; bot.console.accounts)
    GET  /console/static/…  the console's own script (bot/console/static)

The sections are modules of their own (SECTION_MODULES: handoffs, complaints,
appointments, dashboard, accounts), each adding its routes with ``setup(app)``.
``console_middleware`` runs for every path under /console: it resolves the session
cookie into ``request[STAFF]``, sends anyone not signed in to the sign-in page and an
account holding a one-time password to the change-password page, refuses (403) any
POST without the form's CSRF token, renders the console's own error pages and sets
its Content-Security-Policy. Server-rendered HTML, usable on a
station's old PC: the only script (live updates of the handoff queue and transcript)
is the console's own, and every page works without it."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import logging
import re
import secrets
from pathlib import Path
from typing import Any, Dict, List, Optional

import jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    STAFF,
    SignedIn,
    clear_login_cookie,
    clear_session_cookie,
    csrf_ok,
    csrf_token,
    current_staff,
    end_session,
    now_utc,
    request_address,
    require_staff,
    resume_session,
    safe_next,
    set_login_cookie,
    set_session_cookie,
    start_session,
)
from bot.clock import SHANGHAI
from bot.db.models import StaffAccount
from bot.db.session import as_utc
from bot.gateway.app import SETTINGS, VAULT, make_templates, run_in_session, url_prefix
from bot.services import staff as staff_service
from bot.services.transcripts import TrackerReader

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
CONSOLE_TEMPLATES = web.AppKey("console_templates", jinja2.Environment)
# Rasa's tracker store, read-only (transcripts, the queue's last messages, the dashboard).
TRACKER = web.AppKey("console_tracker", TrackerReader)

# Reachable without a session (everything else under /console needs one).
PUBLIC_PATHS = frozenset({"/console/login"})
PUBLIC_PREFIXES = ("/console/static/",)
# All an account signed in with an admin's one-time password may open until it has
# chosen a password of its own.
PASSWORD_PAGE = "/console/password"
MUST_CHANGE_PATHS = frozenset({PASSWORD_PAGE, "/console/logout"})

LOGIN_REASONS = {
    "expired": "登录已超时或已在别处退出，请重新登录。",
    "signed_out": "您已安全退出。",
}

# The console's sections: (title, path, roles that see it), in the navigation bar.
CASE_ROLES = ("admin", "district", "station")  # who sees case data (trainers do not)
SECTIONS = (
    ("人工接待", "/console/handoffs", CASE_ROLES),
    ("投诉登记簿", "/console/complaints", CASE_ROLES),
    ("预约", "/console/appointments", CASE_ROLES),
    ("数据看板", "/console/dashboard", ("admin", "district", "station", "trainer")),
    ("审计日志", "/console/audit", ("admin",)),
    ("账号管理", "/console/accounts", ("admin",)),
)
# The modules with the sections' pages; each has ``setup(app)`` adding its routes and
# may have ``AUDIT_LABELS`` (audit action → what the audit log page shows).
SECTION_MODULES = ("bot.console.handoffs", "bot.console.complaints", "bot.console.appointments",
                   "bot.console.dashboard", "bot.console.accounts")

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The console may run its own script (live queue and transcript) and talk to itself;
# nothing else (the gateway's pages run no script at all).
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
               "style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

AUDIT_ACTIONS = {
    "login": "登录",
    "logout": "退出",
    "staff.create": "创建账号",
    "staff.password": "修改密码",
    "staff.deactivate": "停用账号",
    "audit.view": "查看审计日志",
}

ERROR_PAGES = {
    400: ("请求有误", "提交的内容无法识别，请返回上一页重试。"),
    404: ("没有找到", "没有找到您要打开的页面或记录。"),
    405: ("无法处理", "请通过页面上的按钮提交。"),
    413: ("内容过长", "提交的内容过长。"),
}


def make_console_templates() -> jinja2.Environment:
    return make_templates(TEMPLATE_DIR)


def render_console(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    app = request.app
    staff = current_staff(request)
    context.setdefault("bureau_name", app[SETTINGS].bureau_name)
    context.setdefault("prefix", url_prefix(app[SETTINGS]))
    context.setdefault("staff", staff)
    context.setdefault("csrf", (lambda action: csrf_token(staff, action)) if staff is not None else None)
    context.setdefault("nav", [{"title": title, "path": path} for title, path, roles in SECTIONS
                               if staff is not None and staff.role in roles])
    body = app[CONSOLE_TEMPLATES].get_template(template).render(**context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def notice(request: web.Request, status: int, title: str, message: str, back: bool = True) -> web.Response:
    return render_console(request, "notice.html", status=status, title=title, message=message, back=back)


def see_other(request: web.Request, path: str) -> web.Response:
    """303 to a console path (the URL prefix added)."""
    return web.Response(status=303, headers={"Location": url_prefix(request.app[SETTINGS]) + path})


def local(moment: Optional[dt.datetime]) -> str:
    return as_utc(moment).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


# --- the middleware ---------------------------------------------------------------------------


def is_console_path(path: str) -> bool:
    return path == "/console" or path.startswith("/console/")


def _error_page(request: web.Request, error: web.HTTPException) -> web.Response:
    if error.status == 403:
        staff = current_staff(request)
        who = f"您的账号（{staff.role_label}）" if staff is not None else "您"
        return notice(request, 403, "无权访问", f"{who}无权查看此页面。如需开通，请联系系统管理员。")
    title, message = ERROR_PAGES.get(error.status, ("无法处理", "请求无法处理，请返回上一页重试。"))
    return notice(request, error.status, title, message)


async def _signed_in(request: web.Request, handler) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE, "")
    staff: Optional[SignedIn] = None
    if token:
        staff = await run_in_session(request.app, lambda session: resume_session(session, token, now_utc()))
    request[STAFF] = staff

    if request.path not in PUBLIC_PATHS and not request.path.startswith(PUBLIC_PREFIXES):
        if staff is None:
            # A POST from an expired session is not carried out: the form is simply not sent.
            query = "?reason=expired" if token else ""
            if not token and request.method == "GET" and request.path not in ("/console", "/console/"):
                query = f"?next={safe_next(request.path)}"
            response = see_other(request, "/console/login" + query)
            if token:
                clear_session_cookie(response, request.app)
            return response
        if staff.must_change_password and request.path not in MUST_CHANGE_PATHS:
            return see_other(request, PASSWORD_PAGE)  # a POST elsewhere is not carried out
        if request.method == "POST":
            data = await request.post()
            if not csrf_ok(csrf_token(staff, request.path), str(data.get("csrf", ""))):
                log.warning("console POST refused: no valid CSRF token", extra={"path": request.path})
                return notice(request, 403, "页面已失效", "页面已过期或来源不明，请返回上一页刷新后重新提交。")
    return await handler(request)


@web.middleware
async def console_middleware(request: web.Request, handler) -> web.StreamResponse:
    if not is_console_path(request.path):
        return await handler(request)
    try:
        response = await _signed_in(request, handler)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        response = _error_page(request, error)
    except asyncio.CancelledError:
        raise
    except Exception as error:
        # Only the type: an error's text can quote what a form held.
        log.error("unhandled %s on %s %s", type(error).__name__, request.method, request.path)
        response = notice(request, 500, "系统繁忙", "系统暂时无法处理您的请求，请稍后再试。")
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    return response


# --- sign-in and sign-out -----------------------------------------------------------------------

_NONCE = re.compile(r"[A-Za-z0-9_\-]{32,64}")


def login_csrf(request: web.Request, nonce: str) -> str:
    return request.app[VAULT].lookup_hash("console-login-csrf", nonce)


def login_page(request: web.Request, nonce: str, message: Optional[str] = None, notice_text: Optional[str] = None,
               username: str = "", next_path: str = "/console", status: int = 200) -> web.Response:
    response = render_console(request, "login.html", status=status, message=message, notice=notice_text,
                              username=username, next_path=next_path, login_token=login_csrf(request, nonce))
    set_login_cookie(response, request.app, nonce)
    return response


def _login_nonce(request: web.Request) -> str:
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    return nonce if _NONCE.fullmatch(nonce) else secrets.token_urlsafe(32)


async def show_login(request: web.Request) -> web.Response:
    if current_staff(request) is not None:
        return see_other(request, "/console")
    return login_page(request, _login_nonce(request), notice_text=LOGIN_REASONS.get(request.query.get("reason", "")),
                      next_path=safe_next(request.query.get("next", "/console")))


async def submit_login(request: web.Request) -> web.Response:
    data = await request.post()
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not _NONCE.fullmatch(nonce) or not csrf_ok(login_csrf(request, nonce), str(data.get("csrf", ""))):
        log.warning("console sign-in refused: no valid CSRF token")
        return notice(request, 403, "页面已失效", "登录页面已过期，请重新打开登录页面。")
    username = str(data.get("username", "")).strip()[:64]
    password = str(data.get("password", ""))[:256]
    next_path = safe_next(str(data.get("next", "/console")))
    if not username or not password:
        return login_page(request, nonce, message="请输入用户名和密码。", username=username, next_path=next_path)

    vault, address = request.app[VAULT], request_address(request)

    def work(session: Session):
        now = now_utc()
        result = staff_service.authenticate(session, vault, username, password, address, now)
        if result.status is not staff_service.SignInStatus.OK:
            return result.status, result.message, None, False
        account = result.account
        assert account is not None
        token = start_session(session, account, now)
        staff_service.audit(session, account, "login", "staff_account", account.id, None, now)
        return result.status, "", token, account.must_change_password

    status, message, token, must_change = await run_in_session(request.app, work)
    if token is None:
        code = 429 if status is staff_service.SignInStatus.THROTTLED else 401
        return login_page(request, nonce, message=message, username=username, next_path=next_path, status=code)
    response = see_other(request, PASSWORD_PAGE if must_change else next_path)
    set_session_cookie(response, request.app, token)
    clear_login_cookie(response, request.app)
    return response


@require_staff()
async def logout(request: web.Request) -> web.Response:
    staff = current_staff(request)
    token = request.cookies.get(SESSION_COOKIE, "")

    def work(session: Session) -> None:
        end_session(session, token)
        staff_service.audit(session, staff, "logout", "staff_account", staff.id, None, now_utc())

    await run_in_session(request.app, work)
    response = see_other(request, "/console/login?reason=signed_out")
    clear_session_cookie(response, request.app)
    return response


# --- home and audit log --------------------------------------------------------------------------


def scope_text(staff: SignedIn) -> str:
    count = len(staff.scope.station_ids)
    if staff.role == "admin":
        return f"全部站点（共{count}个）及未分配站点的事项"
    if staff.role == "district":
        return f"{staff.station_name}及下属全部站点（共{count}个），以及未分配站点的事项"
    if staff.role == "station":
        under = count - 1
        return f"{staff.station_name}" + (f"及下属{under}个站点" if under else "") + "的事项"
    return "不查看个案数据（仅用于语料训练与数据看板）"


@require_staff()
async def home(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    return render_console(request, "home.html", scope=scope_text(staff))


def query_int(value: Optional[str]) -> Optional[int]:
    """A whole number from a query string or form field, or None (never an error page)."""
    return int(value) if value and value.isdigit() and len(value) < 12 else None


@require_staff(roles=("admin",))
async def audit_page(request: web.Request) -> web.Response:
    staff = current_staff(request)
    before = query_int(request.query.get("before"))
    username = staff_service.normalize_username(request.query.get("staff", ""))[:32]
    object_type = request.query.get("type", "").strip()[:40]

    def work(session: Session) -> List[Dict[str, Any]]:
        now = now_utc()
        staff_id = None
        if username:
            account = staff_service.find_account(session, username)
            staff_id = account.id if account is not None else -1
        entries = staff_service.audit_entries(session, staff, before_id=before, staff_id=staff_id,
                                              object_type=object_type or None)
        names = {a.id: a for a in session.execute(
            select(StaffAccount).where(StaffAccount.id.in_({e.staff_id for e in entries if e.staff_id}))
        ).scalars()}
        rows = [{
            "id": e.id, "at": local(e.at),
            "who": (f"{names[e.staff_id].display_name}（{names[e.staff_id].username}）"
                    if e.staff_id in names else "命令行"),
            "action": AUDIT_ACTIONS.get(e.action, e.action), "object": e.object_type,
            "object_id": e.object_id or "", "detail": e.detail or "",
        } for e in entries]
        filters = "，".join(f for f in (f"账号={username}" if username else "",
                                         f"类型={object_type}" if object_type else "") if f)
        staff_service.audit(session, staff, "audit.view", "audit_log", None, filters or None, now)
        return rows

    rows = await run_in_session(request.app, work)
    older = rows[-1]["id"] if len(rows) >= staff_service.AUDIT_PAGE else None
    return render_console(request, "audit.html", rows=rows, older=older, username=username, object_type=object_type)


_STATIC_NAME = re.compile(r"[a-z0-9_\-]+\.(?:js|css)")
_STATIC_TYPES = {"js": "text/javascript", "css": "text/css"}


async def static_file(request: web.Request) -> web.Response:
    """The console's own script and style (no third-party code, nothing from the internet).
    Reachable without a session like the sign-in page: they hold no data."""
    name = request.match_info["name"]
    path = STATIC_DIR / name
    if not _STATIC_NAME.fullmatch(name) or not path.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=path.read_bytes(), content_type=_STATIC_TYPES[name.rsplit(".", 1)[1]],
                        charset="utf-8", headers={"Cache-Control": "max-age=3600"})


def setup_console(app: web.Application) -> None:
    """Add the console's pages and its middleware (call before the app starts; a second
    call changes nothing)."""
    if CONSOLE_TEMPLATES in app:
        return
    app[CONSOLE_TEMPLATES] = make_console_templates()
    app[TRACKER] = TrackerReader(app[SETTINGS].tracker_url)  # connects at first use

    async def close_tracker(app: web.Application) -> None:
        app[TRACKER].close()

    app.on_cleanup.append(close_tracker)
    app.middlewares.append(console_middleware)
    app.router.add_get("/console/static/{name}", static_file)
    app.router.add_get("/console", home)
    app.router.add_get("/console/", home)
    app.router.add_get("/console/login", show_login)
    app.router.add_post("/console/login", submit_login)
    app.router.add_post("/console/logout", logout)
    app.router.add_get("/console/audit", audit_page)
    for name in SECTION_MODULES:
        module = importlib.import_module(name)
        AUDIT_ACTIONS.update(getattr(module, "AUDIT_LABELS", {}))
        module.setup(app)
