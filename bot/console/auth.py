"""Console sign-in: sessions, the session cookie, CSRF tokens, role and scope checks.

A signed-in browser holds a random token in the ``vetbot_console`` cookie (httponly,
SameSite=Lax, Secure when the public URL is https, path /console); the database keeps
only its SHA-256 (console_sessions), so signing out, a password change or a
deactivation ends the session on the server whatever the browser still holds.
Sessions expire after ``SESSION_IDLE`` without use and ``SESSION_MAX`` after sign-in.
An account signed in with an admin's one-time password (``must_change_password``) can
open only the change-password page and sign out until it has chosen its own.

Sign-in is throttled by the client's address (``request_address``): the peer's, or,
through a trusted reverse proxy (VETBOT_TRUSTED_PROXIES), what it says it saw.

Every POST under /console carries a CSRF token: an HMAC, keyed by the session's own
secret, of the path the form posts to (``csrf_token``); the console middleware
(bot.console.pages) refuses a POST without the right one. The sign-in form, which
has no session yet, is tied instead to a random pre-session cookie.

Later pages use ``require_staff(roles=...)`` for who may open them and
``not_found_unless_visible`` for records outside the staff member's area (404, the
same answer as a record that does not exist).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, Optional

from aiohttp import web
from sqlalchemy import delete
from sqlalchemy.orm import Session

from bot.db.models import ConsoleSession, StaffAccount
from bot.client_address import client_address
from bot.db.session import as_utc
from bot.gateway.app import SETTINGS, url_prefix
from bot.services.scope import Scope
from bot.services.staff import ROLE_LABELS

SESSION_COOKIE = "vetbot_console"
LOGIN_COOKIE = "vetbot_console_login"  # the sign-in form's pre-session CSRF nonce
SESSION_IDLE = dt.timedelta(hours=8)
SESSION_MAX = dt.timedelta(hours=24)
# last_seen_at / expires_at move on at most this often (not one write per page).
TOUCH_EVERY = dt.timedelta(minutes=1)

STAFF = "vetbot.console.staff"  # request key: SignedIn or None (set by the console middleware)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """The signed-in staff member, as the console's handlers see them (a snapshot:
    no ORM object crosses the worker thread)."""

    id: int
    username: str
    display_name: str
    role: str
    station_id: Optional[int]
    station_name: Optional[str]
    scope: Scope  # what case data they see and act on (bot.services.scope)
    session_id: str
    csrf_secret: str
    must_change_password: bool = False  # signed in with a one-time password

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


# --- sessions in the database -----------------------------------------------------------


def start_session(session: Session, account: StaffAccount, now: dt.datetime) -> str:
    """A new session for a successful sign-in; returns the cookie's token (never stored).
    Expired sessions of everyone are swept here, so the table does not grow."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(id=token_hash(token), staff_id=account.id, csrf_secret=secrets.token_hex(32),
                               created_at=now, last_seen_at=now, expires_at=now + SESSION_IDLE))
    session.flush()
    return token


def resume_session(session: Session, token: str, now: dt.datetime) -> Optional[SignedIn]:
    """The staff member a cookie's token signs in, or None (unknown, expired, ended, or
    the account deactivated); moves the idle expiry on."""
    if not token:
        return None
    row = session.get(ConsoleSession, token_hash(token))
    if row is None:
        return None
    account = row.staff
    created, expires = as_utc(row.created_at), as_utc(row.expires_at)
    if not account.active or expires <= now or created + SESSION_MAX <= now:
        session.delete(row)
        return None
    if now - as_utc(row.last_seen_at) >= TOUCH_EVERY:
        row.last_seen_at = now
        row.expires_at = min(now + SESSION_IDLE, created + SESSION_MAX)
    station = account.station
    return SignedIn(
        id=account.id, username=account.username, display_name=account.display_name, role=account.role,
        station_id=account.station_id, station_name=station.name if station is not None else None,
        scope=Scope.of(session, account),
        session_id=row.id, csrf_secret=row.csrf_secret, must_change_password=account.must_change_password,
    )


def end_session(session: Session, token: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.id == token_hash(token)))


# --- cookies -----------------------------------------------------------------------------


def cookie_path(app: web.Application) -> str:
    return url_prefix(app[SETTINGS]) + "/console"


def secure_cookies(app: web.Application) -> bool:
    return app[SETTINGS].public_base_url.lower().startswith("https://")


def set_session_cookie(response: web.StreamResponse, app: web.Application, token: str) -> None:
    # No max_age: a browser session cookie; the server decides when the session ends.
    response.set_cookie(SESSION_COOKIE, token, path=cookie_path(app), httponly=True, samesite="Lax",
                        secure=secure_cookies(app))


def clear_session_cookie(response: web.StreamResponse, app: web.Application) -> None:
    response.del_cookie(SESSION_COOKIE, path=cookie_path(app))


def set_login_cookie(response: web.StreamResponse, app: web.Application, nonce: str) -> None:
    response.set_cookie(LOGIN_COOKIE, nonce, path=cookie_path(app), httponly=True, samesite="Strict",
                        secure=secure_cookies(app), max_age=3600)


def clear_login_cookie(response: web.StreamResponse, app: web.Application) -> None:
    response.del_cookie(LOGIN_COOKIE, path=cookie_path(app))


# --- CSRF ---------------------------------------------------------------------------------


def csrf_token(staff: SignedIn, action: str) -> str:
    """The token for a form that posts to ``action`` (the path without the URL prefix)."""
    return hmac.new(staff.csrf_secret.encode("ascii"), f"console-csrf:{action}".encode("utf-8"),
                    hashlib.sha256).hexdigest()


def csrf_ok(expected: str, submitted: str) -> bool:
    return bool(submitted) and hmac.compare_digest(expected.encode("ascii"), submitted.encode("ascii", "replace"))


# --- for the handlers -----------------------------------------------------------------------


def current_staff(request: web.Request) -> Optional[SignedIn]:
    return request.get(STAFF)


def request_address(request: web.Request) -> str:
    """The client's address for throttling (bot.client_address: X-Forwarded-For only
    from a trusted proxy)."""
    return client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                          request.app[SETTINGS].trusted_proxies)


_SAFE_NEXT = re.compile(r"/console(?:/[A-Za-z0-9_\-/]*)?")


def safe_next(path: str) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    return path if _SAFE_NEXT.fullmatch(path or "") and "//" not in path else "/console"


def login_redirect(request: web.Request, reason: Optional[str] = None) -> web.HTTPException:
    prefix = url_prefix(request.app[SETTINGS])
    query = []
    if request.method == "GET" and request.path not in ("/console", "/console/"):
        query.append(f"next={safe_next(request.path)}")
    if reason:
        query.append(f"reason={reason}")
    location = f"{prefix}/console/login" + ("?" + "&".join(query) if query else "")
    return web.HTTPSeeOther(location)


class RoleRefused(web.HTTPForbidden):
    """Signed in, but the role may not open the page (the console shows a polite page)."""


def require_staff(roles: Optional[Iterable[str]] = None) -> Callable[[Handler], Handler]:
    """Decorator for a console handler: signed in (else off to the sign-in page) and, when
    ``roles`` is given, holding one of them (else 403). ``request[STAFF]`` is the SignedIn."""
    allowed = frozenset(roles) if roles is not None else None
    if allowed is not None and not allowed <= set(ROLE_LABELS):
        raise ValueError(f"unknown roles: {sorted(allowed - set(ROLE_LABELS))}")

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            staff = current_staff(request)
            if staff is None:
                raise login_redirect(request)
            if allowed is not None and staff.role not in allowed:
                raise RoleRefused()
            return await handler(request)

        return wrapper

    return decorate


def not_found_unless_visible(staff: SignedIn, station_id: Optional[int]) -> None:
    """404 for a record (by its station) outside the staff member's area: exactly what a
    record that does not exist answers, so an id in a URL reveals nothing."""
    if not staff.scope.station(station_id):
        raise web.HTTPNotFound()
