"""The gateway application: app factory, typed state, error pages, health.

``create_app`` builds the aiohttp application; everything it needs comes in as
arguments (tests pass their own session factory, vault and code sender) or from
the settings. The database engine, when the app makes its own, is opened and
disposed in ``cleanup_ctx``. SQLAlchemy is synchronous, so handlers run their
unit of work in a worker thread (``run_in_session``) and the event loop stays free.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Optional, TypeVar
from urllib.parse import urlsplit

import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from bot.db.session import make_engine, make_session_factory, session_scope
from bot.pii import PiiVault
from bot.services.sms import CodeSender, LogCodeSender, load_sender
from bot.settings import Settings

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
HEALTH_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")
HealthCheck = Callable[[web.Application], Awaitable[bool]]

SETTINGS = web.AppKey("settings", Settings)
SESSION_FACTORY = web.AppKey("session_factory", sessionmaker)
VAULT = web.AppKey("vault", PiiVault)
SENDER = web.AppKey("sender", object)  # a bot.services.sms.CodeSender
TEMPLATES = web.AppKey("templates", jinja2.Environment)
# Component name → check; later modules (Rasa, Redis) add theirs, /healthz runs them all.
HEALTH_CHECKS = web.AppKey("health_checks", dict)


def make_templates(directory: Path = TEMPLATE_DIR) -> jinja2.Environment:
    """Jinja2 for the gateway's pages (and the console's, from its own directory)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def url_prefix(settings: Settings) -> str:
    """The path the gateway is published under (``/vetbot`` behind a proxy, else empty)."""
    return urlsplit(settings.public_base_url).path.rstrip("/")


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    app = request.app
    context.setdefault("bureau_name", app[SETTINGS].bureau_name)
    context.setdefault("service_phone", app[SETTINGS].service_phone)
    context.setdefault("prefix", url_prefix(app[SETTINGS]))
    body = app[TEMPLATES].get_template(template).render(**context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


async def run_in_session(app: web.Application, work: Callable[[Session], T]) -> T:
    """``work(session)`` in a worker thread, as one transaction (commit or roll back)."""
    factory = app[SESSION_FACTORY]

    def unit() -> T:
        with session_scope(factory) as session:
            return work(session)

    return await asyncio.to_thread(unit)


# --- middleware: security headers and error pages ---------------------------------

SECURITY_HEADERS = {
    # The binding link carries a token: never cached, never sent on as a Referer.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

ERROR_MESSAGES = {
    400: "请求有误，请返回微信对话重新打开链接。",
    403: "页面已失效，请返回微信对话重新打开链接。",
    404: "您访问的页面不存在。",
    405: "请通过页面上的按钮提交。",
    413: "提交的内容过长。",
}


@web.middleware
async def pages_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status not in ERROR_MESSAGES:
            raise
        response = render(request, "notice.html", status=exc.status, title="无法打开页面",
                          message=ERROR_MESSAGES[exc.status])
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # Only the type: a database error's text can quote the parameters (names, hashes).
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        response = render(request, "notice.html", status=500, title="系统繁忙",
                          message="系统暂时无法处理您的请求，请稍后再试。")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without the query string: the binding token stays out of the logs."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %d %.3fs", request.remote, request.method, request.path,
                         response.status, time)


# --- health ---------------------------------------------------------------------------


async def database_ok(app: web.Application) -> bool:
    return await run_in_session(app, lambda session: session.execute(text("SELECT 1")).scalar_one() == 1)


async def healthz(request: web.Request) -> web.Response:
    report: Dict[str, str] = {"gateway": "ok"}
    for name, check in request.app[HEALTH_CHECKS].items():
        try:
            ok = await asyncio.wait_for(check(request.app), HEALTH_TIMEOUT_SECONDS)
        except Exception as exc:  # a failing component is the answer, not an error
            log.warning("health check %s failed: %s", name, type(exc).__name__)
            ok = False
        report[name] = "ok" if ok else "error"
    healthy = all(value == "ok" for value in report.values())
    return web.json_response(report, status=200 if healthy else 503)


# --- the application ------------------------------------------------------------------


def create_app(settings: Settings, session_factory: Optional[sessionmaker] = None,
               vault: Optional[PiiVault] = None, sender: Optional[CodeSender] = None) -> web.Application:
    from bot.gateway.binding import setup_binding

    app = web.Application(middlewares=[pages_middleware], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[VAULT] = vault if vault is not None else PiiVault.from_settings(settings)
    app[SENDER] = sender if sender is not None else load_sender(settings.sms_sender)
    app[TEMPLATES] = make_templates()
    app[HEALTH_CHECKS] = {"database": database_ok}
    if isinstance(app[SENDER], LogCodeSender):
        log.warning("demo SMS sender: binding codes go to the log and the page "
                    "(set VETBOT_SMS_SENDER=package.module:Class in production)")

    if session_factory is not None:
        app[SESSION_FACTORY] = session_factory
    else:
        async def database(app: web.Application) -> AsyncIterator[None]:
            engine = make_engine(settings.database_url)
            app[SESSION_FACTORY] = make_session_factory(engine)
            yield
            engine.dispose()

        app.cleanup_ctx.append(database)

    app.router.add_get("/healthz", healthz)
    setup_binding(app)
    from bot.console import setup_console

    setup_console(app)
    return app


def run_gateway(settings: Settings, host: str = "127.0.0.1") -> None:
    """Serve the gateway in the foreground on ``settings.gateway_port`` until interrupted."""
    from bot.gateway.wechat import setup_wechat

    log.info("gateway on http://%s:%d (public URL %s)", host, settings.gateway_port,
             settings.public_base_url)
    app = create_app(settings)
    setup_wechat(app)
    web.run_app(app, host=host, port=settings.gateway_port, access_log_class=PathOnlyAccessLogger, print=None)
