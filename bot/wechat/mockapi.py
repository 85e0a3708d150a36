"""A stand-in for api.weixin.qq.com, so the whole path runs offline.

It answers the calls the assistant makes, with WeChat's errcodes:
``GET /cgi-bin/token`` (checks AppID and secret, issues tokens for 7200 s; a
new token retires the older ones after 5 minutes, as WeChat does),
``POST /cgi-bin/message/custom/send`` (check the token, record the message; 45002
for text over 2048 bytes; 45015 outside the user's 48-hour window) and
``/cgi-bin/message/template/send`` (40037 for a template id the account does not
have, 47003 for a missing field or a value over 200 characters).

The 48-hour window. With ``windows="tracked"`` (how ``make run`` and the end-to-end
tests start it) the mock keeps, like WeChat, when each user last wrote to the
account: the simulated WeChat user (bot.wechat.simulator) reports each message it
sends (``POST /mock/inbound``), as the real user's message passes through WeChat's
servers; a customer-service message to a user who has not written in the last 48
hours of the mock's clock gets 45015. With ``windows="open"`` (the default for tests
of other things) every window is open unless closed by hand.

Test and demo endpoints under ``/mock``: ``GET /mock/messages?touser=&after=``
(what was sent), ``GET /mock/stats``, ``POST /mock/reset``, ``POST /mock/window``
({"openid", "open"}), ``POST /mock/inbound`` ({"openid"}), ``POST /mock/clock``
({"advance": seconds}: the mock's time moves on), ``POST /mock/expire-token``
({"mode": "expired" | "invalid"}) and ``POST /mock/fail`` ({"errcode", "touser"?,
"count"?}: the next sends fail so).

Run it with ``python -m bot.wechat.mockapi --port 8081``; it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Set

import yaml

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

log = logging.getLogger(__name__)

TOKEN_TTL_SECONDS = 7200
# After a new token is issued, the older ones keep working this long.
TOKEN_OVERLAP_SECONDS = 300
MAX_TEXT_BYTES = 2048
MAX_TEMPLATE_VALUE_CHARS = 200
WINDOW_SECONDS = 48 * 3600
# The demo's secret when WECHAT_SECRET is unset: it only ever unlocks this mock.
from bot.settings import MOCK_WECHAT_SECRET as DEMO_SECRET  # noqa: E402 - one demo value
from bot.settings import PROJECT_ROOT, Settings  # noqa: E402

ERRORS = {
    0: "ok",
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    44002: "empty post data",
    45002: "content size out of limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    47003: "argument invalid",
}


@dataclass
class Fault:
    errcode: int
    touser: Optional[str]
    remaining: int


@dataclass
class MockState:
    """Everything the mock remembers; tests may read it directly."""

    appid: str
    secret: str
    clock: Callable[[], float] = time.time
    windows: str = "open"  # or "tracked": see the module's docstring
    # The account's templates: id → the fields it has; None accepts any (tests of other things).
    templates: Optional[Dict[str, FrozenSet[str]]] = None
    offset: float = 0.0  # /mock/clock: how far the mock's time has been moved on
    tokens: Dict[str, float] = field(default_factory=dict)  # token → expires_at
    closed_windows: Set[str] = field(default_factory=set)
    last_inbound: Dict[str, float] = field(default_factory=dict)  # openid → when they last wrote
    messages: List[Dict[str, Any]] = field(default_factory=list)
    faults: List[Fault] = field(default_factory=list)
    token_requests: int = 0
    send_requests: int = 0
    sequence: int = 0

    def reset(self) -> None:
        """Back to a fresh account; ``sequence`` goes on, so ``after`` cursors stay valid."""
        self.tokens.clear()
        self.closed_windows.clear()
        self.last_inbound.clear()
        self.messages.clear()
        self.faults.clear()
        self.token_requests = 0
        self.send_requests = 0

    def now(self) -> float:
        return self.clock() + self.offset

    def window_open(self, openid: str) -> bool:
        if openid in self.closed_windows:
            return False
        if self.windows == "open":
            return True
        last = self.last_inbound.get(openid)
        return last is not None and self.now() - last < WINDOW_SECONDS

    def issue_token(self) -> str:
        now = self.now()
        for value, expires_at in list(self.tokens.items()):
            self.tokens[value] = min(expires_at, now + TOKEN_OVERLAP_SECONDS)
        value = secrets.token_urlsafe(48)
        self.tokens[value] = now + TOKEN_TTL_SECONDS
        return value

    def token_error(self, token: Optional[str]) -> int:
        if not token:
            return 41001
        expires_at = self.tokens.get(token)
        if expires_at is None:
            return 40001
        if self.now() >= expires_at:
            return 42001
        return 0

    def take_fault(self, touser: str) -> int:
        for fault in self.faults:
            if fault.touser in (None, touser) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault.errcode
        return 0

    def record(self, message: Dict[str, Any]) -> int:
        self.sequence += 1
        message.update(seq=self.sequence, time=int(self.now()))
        self.messages.append(message)
        return self.sequence


MOCK_STATE = web.AppKey("mock_state", MockState)


def _error(errcode: int) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": ERRORS.get(errcode, "error")})


_UNREADABLE = object()  # a body that is not JSON


async def _json_body(request: web.Request) -> Any:
    """The parsed JSON body, None when empty, ``_UNREADABLE`` when not JSON."""
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _UNREADABLE


# --- the WeChat API --------------------------------------------------------------------------


async def token(request: web.Request) -> web.Response:
    state = request.app[MOCK_STATE]
    state.token_requests += 1
    query = request.query
    if query.get("grant_type") != "client_credential":
        return _error(40002)
    if query.get("appid") != state.appid:
        return _error(40013)
    if not secrets.compare_digest(query.get("secret", "").encode(), state.secret.encode()):
        return _error(40125)
    return web.json_response({"access_token": state.issue_token(), "expires_in": TOKEN_TTL_SECONDS})


async def _checked_send(request: web.Request) -> Any:
    """The JSON body of a send call, or the error response WeChat would give."""
    state = request.app[MOCK_STATE]
    state.send_requests += 1
    errcode = state.token_error(request.query.get("access_token"))
    if errcode:
        return _error(errcode)
    body = await _json_body(request)
    if body is None:
        return _error(44002)
    if not isinstance(body, dict):
        return _error(47001)
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser:
        return _error(40003)
    fault = state.take_fault(touser)
    if fault:
        return _error(fault)
    return body


async def custom_send(request: web.Request) -> web.Response:
    state = request.app[MOCK_STATE]
    body = await _checked_send(request)
    if isinstance(body, web.Response):
        return body
    if body.get("msgtype") != "text":
        return _error(40008)
    text = body.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    if not isinstance(content, str) or not content:
        return _error(47001)
    if len(content.encode("utf-8")) > MAX_TEXT_BYTES:
        return _error(45002)
    if not state.window_open(body["touser"]):
        return _error(45015)
    state.record({"kind": "custom", "touser": body["touser"], "msgtype": "text", "text": content})
    return _error(0)


async def template_send(request: web.Request) -> web.Response:
    state = request.app[MOCK_STATE]
    body = await _checked_send(request)
    if isinstance(body, web.Response):
        return body
    template_id, data = body.get("template_id"), body.get("data")
    if not isinstance(template_id, str) or not template_id:
        return _error(40037)
    if not isinstance(data, dict):
        return _error(47001)
    if state.templates is not None:
        fields = state.templates.get(template_id)
        if fields is None:
            return _error(40037)
        for name in fields:
            value = data.get(name)
            value = value.get("value") if isinstance(value, dict) else None
            if not isinstance(value, str) or not value or len(value) > MAX_TEMPLATE_VALUE_CHARS:
                return _error(47003)
    msgid = state.record({"kind": "template", "touser": body["touser"], "template_id": template_id,
                          "data": data, "url": body.get("url")})
    return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})


# --- inspection and control for tests and the demo ------------------------------------------


async def messages(request: web.Request) -> web.Response:
    state = request.app[MOCK_STATE]
    touser = request.query.get("touser")
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        raise web.HTTPBadRequest(text="after must be a number") from None
    found = [m for m in state.messages if (touser is None or m["touser"] == touser) and m["seq"] > after]
    return web.json_response({"messages": found})


async def stats(request: web.Request) -> web.Response:
    state = request.app[MOCK_STATE]
    return web.json_response({"token_requests": state.token_requests, "send_requests": state.send_requests,
                              "messages": len(state.messages)})


async def reset(request: web.Request) -> web.Response:
    request.app[MOCK_STATE].reset()
    return web.json_response({"ok": True})


async def window(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("openid"), str):
        raise web.HTTPBadRequest(text='expected {"openid": ..., "open": true|false}')
    closed = request.app[MOCK_STATE].closed_windows
    if body.get("open", False):
        closed.discard(body["openid"])
    else:
        closed.add(body["openid"])
    return web.json_response({"ok": True})


async def inbound(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("openid"), str):
        raise web.HTTPBadRequest(text='expected {"openid": ...}')
    state = request.app[MOCK_STATE]
    state.last_inbound[body["openid"]] = state.now()
    return web.json_response({"ok": True})


async def move_clock(request: web.Request) -> web.Response:
    body = await _json_body(request)
    advance = body.get("advance") if isinstance(body, dict) else None
    if not isinstance(advance, (int, float)) or advance < 0:
        raise web.HTTPBadRequest(text='expected {"advance": seconds}')
    state = request.app[MOCK_STATE]
    state.offset += advance
    return web.json_response({"ok": True, "now": state.now()})


async def expire_token(request: web.Request) -> web.Response:
    state = request.app[MOCK_STATE]
    body = await _json_body(request)
    mode = body.get("mode", "expired") if isinstance(body, dict) else "expired"
    if mode == "invalid":
        state.tokens.clear()  # forgotten: 40001
    elif mode == "expired":
        for value in state.tokens:
            state.tokens[value] = state.now() - 1  # known but past: 42001
    else:
        raise web.HTTPBadRequest(text='mode is "expired" or "invalid"')
    return web.json_response({"ok": True})


async def fail(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("errcode"), int):
        raise web.HTTPBadRequest(text='expected {"errcode": 45047, "touser": ..., "count": 1}')
    touser = body.get("touser")
    count = body.get("count", 1)
    request.app[MOCK_STATE].faults.append(
        Fault(errcode=body["errcode"], touser=touser if isinstance(touser, str) else None,
              remaining=count if isinstance(count, int) and count > 0 else 1))
    return web.json_response({"ok": True})


def account_templates(path: Optional[Path] = None) -> Dict[str, FrozenSet[str]]:
    """The templates an account has, as the assistant's data file names them
    (data/notice_templates.yml): template id → its fields."""
    path = path or PROJECT_ROOT / "data" / "notice_templates.yml"
    found: Dict[str, Set[str]] = {}
    for entry in ((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("templates") or {}).values():
        found.setdefault(str(entry["template_id"]), set()).update(str(name) for name in entry["fields"])
    return {template_id: frozenset(fields) for template_id, fields in found.items()}


def create_mock_app(appid: str, secret: str, clock: Callable[[], float] = time.time, windows: str = "open",
                    templates: Optional[Dict[str, FrozenSet[str]]] = None) -> web.Application:
    """The mock WeChat API for one account (``appid``/``secret``)."""
    if windows not in ("open", "tracked"):
        raise ValueError('windows is "open" or "tracked"')
    app = web.Application(client_max_size=64 * 1024)
    app[MOCK_STATE] = MockState(appid=appid, secret=secret, clock=clock, windows=windows, templates=templates)
    app.router.add_get("/cgi-bin/token", token)
    app.router.add_post("/cgi-bin/message/custom/send", custom_send)
    app.router.add_post("/cgi-bin/message/template/send", template_send)
    app.router.add_get("/mock/messages", messages)
    app.router.add_get("/mock/stats", stats)
    app.router.add_post("/mock/reset", reset)
    app.router.add_post("/mock/window", window)
    app.router.add_post("/mock/inbound", inbound)
    app.router.add_post("/mock/clock", move_clock)
    app.router.add_post("/mock/expire-token", expire_token)
    app.router.add_post("/mock/fail", fail)
    return app


class _PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without query strings: they carry the secret and access tokens."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %d %.3fs", request.method, request.path, response.status, time)


def main(argv: Optional[List[str]] = None) -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m bot.wechat.mockapi", description="Mock WeChat API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.mock_wechat_port)
    parser.add_argument("--appid", default=settings.wechat_appid)
    args = parser.parse_args(argv)
    secret = os.environ.get("WECHAT_SECRET", "").strip() or DEMO_SECRET
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("mock WeChat API on http://%s:%d for AppID %s", args.host, args.port, args.appid)
    # As WeChat: windows from the users' own messages (the simulator reports them), and
    # the account's templates as data/notice_templates.yml names them.
    app = create_mock_app(args.appid, secret, windows="tracked", templates=account_templates())
    web.run_app(app, host=args.host, port=args.port, print=None,
                access_log_class=_PathOnlyAccessLogger)


if __name__ == "__main__":
    main()
