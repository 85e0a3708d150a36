"""The H5 binding pages (身份绑定): the form behind the one-time link the bot sends.

    GET  /bind?t=…     step 1 form: 姓名, 身份证号, 手机号
    POST /bind         step 1: check against the roster, send the SMS code
    POST /bind/code    step 2: the code; success binds the OpenID

The rules live in bot.services.identity; these handlers only check the form's
shape and CSRF token, call the service and pick the page. Nothing here logs
what the user typed, and the ID number is never written back into a page.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from typing import Optional, Union

from aiohttp import web

from bot import idcard
from bot.db.models import BindingLink
from bot.gateway.app import SENDER, VAULT, render, run_in_session
from bot.pii import MOBILE, PiiVault, normalize_phone
from bot.services import identity
from bot.services.identity import LinkProblem, Outcome, Status

FORM_STEP = "form"
CODE_STEP = "code"
NAME_MAX = 50


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def csrf_token(vault: PiiVault, step: str, token: str) -> str:
    """Per-page token: an HMAC of the link token and the step, so a form can
    only be posted by a page we rendered for this very link."""
    return vault.lookup_hash("binding-csrf", f"{step}:{token}")


def _check_csrf(request: web.Request, step: str, token: str, submitted: str) -> None:
    expected = csrf_token(request.app[VAULT], step, token)
    if not token or not hmac.compare_digest(expected.encode("ascii"),
                                            submitted.encode("ascii", "replace")):
        raise web.HTTPForbidden()


# --- pages ------------------------------------------------------------------------------


def link_page(request: web.Request, problem: LinkProblem) -> web.Response:
    status = 404 if problem is LinkProblem.INVALID else 410
    return render(request, "notice.html", status=status, title="链接不可用", message=problem.message)


def locked_page(request: web.Request, message: str) -> web.Response:
    return render(request, "notice.html", status=429, title="请稍后再试", message=message)


def form_page(request: web.Request, token: str, message: Optional[str] = None, name: str = "",
              status: int = 200) -> web.Response:
    return render(request, "bind_form.html", status=status, token=token, message=message, name=name,
                  csrf=csrf_token(request.app[VAULT], FORM_STEP, token))


def code_page(request: web.Request, token: str, message: Optional[str] = None,
              notice: Optional[str] = None, phone: Optional[str] = None,
              status: int = 200) -> web.Response:
    # The demo sender sends no SMS; its page shows the code instead.
    sender = request.app[SENDER]
    demo_code = None
    if phone and getattr(sender, "shows_code_on_page", False):
        demo_code = sender.last_code(phone)
    return render(request, "code_form.html", status=status, token=token, message=message,
                  notice=notice, demo_code=demo_code,
                  csrf=csrf_token(request.app[VAULT], CODE_STEP, token))


def outcome_page(request: web.Request, token: str, outcome: Outcome, name: str = "",
                 phone: Optional[str] = None) -> web.Response:
    """The page for what a verification step did."""
    if outcome.status is Status.LINK_INVALID:
        return link_page(request, outcome.link_problem or LinkProblem.INVALID)
    if outcome.status is Status.LOCKED:
        return locked_page(request, outcome.message)
    if outcome.status is Status.CODE_SENT:
        return code_page(request, token, notice=outcome.message, phone=phone)
    if outcome.status is Status.BOUND:
        return render(request, "done.html")
    if outcome.status is Status.CODE_WRONG:
        return code_page(request, token, message=outcome.message)
    # MISMATCH, SEND_FAILED, CODE_EXPIRED, NO_PENDING_CODE: back to the form.
    return form_page(request, token, message=outcome.message, name=name)


async def _link_state(request: web.Request, token: str) -> Union[LinkProblem, str, None]:
    """The link's problem, the lock message when its OpenID is locked, or None when usable."""
    vault = request.app[VAULT]

    def work(session) -> Union[LinkProblem, str, None]:
        now = _now()
        link = identity.check_link(session, vault, token, now)
        if isinstance(link, LinkProblem):
            return link
        assert isinstance(link, BindingLink)
        until = identity.locked_until(session, link.openid, now)
        return identity.locked_message(until) if until is not None else None

    return await run_in_session(request.app, work)


async def _refusal_page(request: web.Request, token: str) -> Optional[web.Response]:
    state = await _link_state(request, token)
    if isinstance(state, LinkProblem):
        return link_page(request, state)
    if isinstance(state, str):
        return locked_page(request, state)
    return None


# --- handlers ---------------------------------------------------------------------------


async def show_form(request: web.Request) -> web.Response:
    token = request.query.get("t", "")
    refusal = await _refusal_page(request, token)
    # Not `refusal or …`: a Response is a mapping, and an empty one is falsy.
    return refusal if refusal is not None else form_page(request, token)


def form_problem(name: str, id_number: str, phone: str) -> Optional[str]:
    """What is wrong with the form's shape, politely, or None. Not a failed attempt."""
    if not name:
        return "请填写您的姓名。"
    if len(name) > NAME_MAX:
        return "姓名过长，请核对后重新填写。"
    problem = idcard.problem(id_number)
    if problem:
        return f"{problem}，请核对后重新填写。"
    if not phone.strip():
        return "请填写您的手机号。"
    if not MOBILE.match(normalize_phone(phone)):
        return "手机号应为11位手机号码，请核对后重新填写。"
    return None


async def submit_form(request: web.Request) -> web.Response:
    data = await request.post()
    token = str(data.get("t", ""))
    _check_csrf(request, FORM_STEP, token, str(data.get("csrf", "")))
    name = str(data.get("name", "")).strip()
    id_number = str(data.get("id_number", ""))
    phone = str(data.get("phone", ""))

    problem = form_problem(name, id_number, phone)
    if problem:
        refusal = await _refusal_page(request, token)
        if refusal is not None:
            return refusal
        return form_page(request, token, message=problem, name=name[:NAME_MAX])

    vault, sender = request.app[VAULT], request.app[SENDER]
    outcome = await run_in_session(request.app, lambda session: identity.start_verification(
        session, vault, token, name, id_number, phone, sender, _now()))
    return outcome_page(request, token, outcome, name=name, phone=phone)


async def submit_code(request: web.Request) -> web.Response:
    data = await request.post()
    token = str(data.get("t", ""))
    _check_csrf(request, CODE_STEP, token, str(data.get("csrf", "")))
    code = identity.normalize_code(str(data.get("code", "")))
    if not re.fullmatch(r"\d{6}", code):
        refusal = await _refusal_page(request, token)
        if refusal is not None:
            return refusal
        return code_page(request, token, message="请输入短信中的6位数字验证码。")

    vault = request.app[VAULT]
    outcome = await run_in_session(request.app, lambda session: identity.confirm_code(
        session, vault, token, code, _now()))
    return outcome_page(request, token, outcome)


def setup_binding(app: web.Application) -> None:
    app.router.add_get("/bind", show_form)
    app.router.add_post("/bind", submit_form)
    app.router.add_post("/bind/code", submit_code)
