"""The outbox delivery worker: sends due outbox rows to the users on WeChat.

Channel. WeChat accepts a customer-service message (客服消息) only within 48 hours
of the user's last message to the account. While that window is open
(bot.services.wechat_window) a row goes as customer-service text; otherwise, or
when WeChat answers 45015 before the first piece went out, as the template message
of its kind (bot.wechat.notices, data/notice_templates.yml). ``outbox.sent_as``
records which.

Services queue messages (appointment reminders, complaint notices) as ``outbox``
rows in their own transactions; ``deliver_due`` sends the due ones, oldest
first, and ``run_worker`` calls it every ``interval`` seconds for as long as the
gateway runs. Any number of workers may run against one database.

Claiming. Before sending a row a worker claims it with one guarded UPDATE::

    UPDATE outbox SET attempts = attempts + 1, due_at = now + LEASE
     WHERE id = :id AND attempts = :seen AND sent_at IS NULL AND failed_at IS NULL AND due_at <= now

The database applies it for one worker only (PostgreSQL re-checks the WHERE
after a concurrent update; SQLite has one writer), so two workers never send
the same row. The same statement works on both databases, so there is one code
path to test (``SELECT … FOR UPDATE SKIP LOCKED`` would have needed a second
one for SQLite). ``attempts`` after the claim is the claim's fencing token: every
later write about the row requires it, so a worker whose lease ran out
(``LEASE``, far longer than a send) can no longer mark a row another worker has
claimed since. Moving ``due_at`` is the lease: a worker that dies mid-send leaves
a row that becomes due again when the lease ends (at-least-once; a duplicate
is possible only if a worker dies between WeChat's acceptance and the commit).
A row claimed more than ``MAX_ATTEMPTS`` times that way is given up, not dropped.

Outcomes. Sent: ``sent_at``. A refusal that may pass (WeChat not reached, busy,
an account-wide token or quota problem, any errcode not known to be final):
``last_error`` and ``due_at`` pushed on by an exponential backoff, and the rest of
the batch waits for the next run, since WeChat is likely failing them all; after
``MAX_ATTEMPTS`` the row is given up. Given up (a final refusal, FINAL_ERRCODES:
the window closed and no template, the user unfollowed (43004), an invalid OpenID
or template; retries used up; or a row no message can be made of): ``failed_at``,
``last_error`` and a ``wechat_failures`` row with the message for staff, in one
transaction: nothing is silently lost. A notice given up because the window was
closed is queued again when the user next writes (``requeue_after_window``).

Long texts are split with ``bot.wechat.render.to_wechat_texts`` and sent in
order; ``parts_sent`` records progress, so a retry resumes after the last piece
that arrived instead of repeating the start.

Logs carry the outbox id, the kind, errcodes and a short hash of the OpenID;
never the message text, a phone number or the OpenID itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import Outbox, WechatFailure, utcnow
from bot.db.session import as_utc, execute_write, session_scope
from bot.services import appointments, complaints, wechat_window
from bot.services.wechat_failures import SEND_FAILED, UNRENDERABLE, WINDOW_CLOSED, record_failure, resolve_failure
from bot.wechat.client import OUTSIDE_WINDOW, OVER_SEND_LIMIT, SendResult, WechatClient
from bot.wechat.notices import Template, load_templates
from bot.wechat.render import to_wechat_texts
from bot.wechat.token import INVALID_TOKEN_ERRCODES

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
BACKOFF_FIRST = dt.timedelta(minutes=1)  # after the first failed attempt; doubling after each
BACKOFF_MAX = dt.timedelta(hours=1)  # 1+2+4+…+32 min, then hourly: ten attempts span about four hours
LEASE = dt.timedelta(minutes=10)  # a claimed row is due again after this, should its worker die
DEFAULT_INTERVAL = 30.0
CUSTOM, TEMPLATE = "custom", "template"  # outbox.sent_as
# A notice kept back by a closed window goes again when the user writes within this long.
RESEND_WITHIN = dt.timedelta(days=30)
RESENT_BY = "系统（用户再次发来消息，已重新发送）"

# Errors of the account, not of the message: they pass (a new token, tomorrow's quota,
# the IP whitelist fixed), so the message waits. 40013/40125: AppID/secret refused;
# 40164: server IP not whitelisted; 41001: no token; 45009: daily API quota; 50001/50002: API not granted.
ACCOUNT_ERRCODES = frozenset(INVALID_TOKEN_ERRCODES | {40013, 40125, 40164, 41001, 45009, 50001, 50002})
# The user cannot get customer-service messages now: the 48-hour window closed (45015),
# or the account sent them as many as it may until they write again (45047). The
# template message of the row's kind goes instead; without one the row is given up.
WINDOW_ERRCODES = frozenset({OUTSIDE_WINDOW, OVER_SEND_LIMIT})
# Refusals of the message or the user that trying again would not change: invalid
# OpenID (40003), message type (40008) or template (40037), the user unfollowed
# (43004), content too long (45002), bad data (47001, 47003). Given up for staff at
# once; every other refusal is tried again with the backoff, up to MAX_ATTEMPTS.
FINAL_ERRCODES = frozenset(WINDOW_ERRCODES | {40003, 40008, 40037, 43004, 45002, 47001, 47003})

TextFor = Callable[[Mapping[str, object]], str]
_TEXTS: Dict[str, TextFor] = {
    appointments.REMINDER_KIND: appointments.reminder_text,
    **{kind: functools.partial(complaints.notification_text, kind) for kind in complaints.OUTBOX_KINDS},
}


@functools.lru_cache(maxsize=1)
def _default_templates() -> Mapping[str, Template]:
    return load_templates()


def outbox_text(kind: str, payload: Mapping[str, object]) -> str:
    """The message for an outbox row; ValueError for a kind nobody writes."""
    text_for = _TEXTS.get(kind)
    if text_for is None:
        raise ValueError(f"no message for outbox kind {kind!r}")
    return text_for(payload)


def short_id(openid: str) -> str:
    """An OpenID for log lines: enough to follow one user, not the identifier itself."""
    return hashlib.sha256(openid.encode("utf-8")).hexdigest()[:10]


def backoff(attempts: int) -> dt.timedelta:
    """How long a row waits after its ``attempts``-th failed try."""
    return min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


def retry_later(result: SendResult) -> bool:
    """Whether a failed send should be tried again later, as it is: anything but a
    refusal that would be repeated (FINAL_ERRCODES)."""
    return not result.ok and (result.retryable or result.errcode in ACCOUNT_ERRCODES
                              or result.errcode not in FINAL_ERRCODES)


@dataclass
class DeliveryReport:
    """What one ``deliver_due`` run did, in outbox rows (``messages``: texts WeChat accepted)."""

    sent: int = 0
    retry_later: int = 0
    failed: int = 0
    skipped: int = 0  # claimed by another worker first
    messages: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retry_later + self.failed


@dataclass(frozen=True)
class _Claim:
    id: int
    openid: str
    kind: str
    ref: Optional[str]
    payload: Mapping[str, object]
    attempts: int  # after this claim: the fencing token
    parts_sent: int
    window_open: bool  # may a customer-service message reach the user now (bot.services.wechat_window)


# --- the SQL (synchronous; run in a worker thread) -------------------------------------------


def _pending(session: Session, now: dt.datetime, limit: int) -> List[Tuple[int, int]]:
    return [tuple(row) for row in session.execute(
        select(Outbox.id, Outbox.attempts)
        .where(Outbox.sent_at.is_(None), Outbox.failed_at.is_(None), Outbox.due_at <= now)
        .order_by(Outbox.due_at, Outbox.id)
        .limit(limit)
    )]


def _claim(session: Session, row_id: int, seen_attempts: int, now: dt.datetime) -> Optional[_Claim]:
    result = execute_write(
        session,
        update(Outbox)
        .where(Outbox.id == row_id, Outbox.attempts == seen_attempts, Outbox.sent_at.is_(None),
               Outbox.failed_at.is_(None), Outbox.due_at <= now)
        .values(attempts=seen_attempts + 1, due_at=now + LEASE),
        synchronize_session=False,
    )
    if result.rowcount != 1:
        return None
    row = session.execute(select(Outbox.openid, Outbox.kind, Outbox.ref, Outbox.payload, Outbox.parts_sent)
                          .where(Outbox.id == row_id)).one()
    return _Claim(row_id, row.openid, row.kind, row.ref, row.payload, seen_attempts + 1, row.parts_sent,
                  wechat_window.is_open(session, row.openid, now))


def _mine(claim: _Claim):
    return (Outbox.id == claim.id, Outbox.attempts == claim.attempts, Outbox.sent_at.is_(None),
            Outbox.failed_at.is_(None))


def _progress(session: Session, claim: _Claim, parts_sent: int, done: bool, now: dt.datetime,
              sent_as: str = CUSTOM) -> bool:
    values: Dict[str, object] = {"parts_sent": parts_sent}
    if done:
        values.update(sent_at=now, last_error=None, sent_as=sent_as)
    result = execute_write(session, update(Outbox).where(*_mine(claim)).values(**values),
                           synchronize_session=False)
    return result.rowcount == 1


def _postpone(session: Session, claim: _Claim, error: str, due_at: dt.datetime) -> bool:
    result = execute_write(session, update(Outbox).where(*_mine(claim)).values(last_error=error, due_at=due_at),
                           synchronize_session=False)
    return result.rowcount == 1


def _give_up(session: Session, claim: _Claim, kind: str, text: Optional[str], error: str,
             now: dt.datetime) -> bool:
    result = execute_write(session, update(Outbox).where(*_mine(claim)).values(last_error=error, failed_at=now),
                           synchronize_session=False)
    if result.rowcount != 1:
        return False
    record_failure(session, claim.openid, "out", kind, text, error, now, ref=claim.ref, outbox_id=claim.id)
    return True


async def _in_session(factory: sessionmaker, work: Callable[..., object], *args: object):
    def unit():
        with session_scope(factory) as session:
            return work(session, *args)

    return await asyncio.to_thread(unit)


def requeue_after_window(session: Session, openid: str, now: dt.datetime) -> int:
    """The user wrote again after their window had closed: the notices given up for
    that reason in the last RESEND_WITHIN go again, as new outbox rows due now (a
    reminder only while its appointment is still ahead), and their failures are
    marked handled. Returns how many were queued."""
    now = as_utc(now)
    rows = session.execute(
        select(WechatFailure.id, Outbox.kind, Outbox.ref, Outbox.payload)
        .join(Outbox, Outbox.id == WechatFailure.outbox_id)
        .where(WechatFailure.openid == openid, WechatFailure.direction == "out",
               WechatFailure.kind == WINDOW_CLOSED, WechatFailure.resolved_at.is_(None),
               WechatFailure.created_at >= now - RESEND_WITHIN)
        .order_by(WechatFailure.id)
    ).all()
    queued = 0
    for failure_id, kind, ref, payload in rows:
        start = (payload or {}).get("start")
        if start and dt.datetime.fromisoformat(str(start)) <= now:
            continue  # the appointment is past: a reminder would only confuse
        if not resolve_failure(session, failure_id, RESENT_BY, now):
            continue  # another gateway took it
        session.execute(insert(Outbox).values(openid=openid, kind=kind, ref=ref, payload=payload, due_at=now,
                                              created_at=now, attempts=0))
        queued += 1
    return queued


# --- the worker ------------------------------------------------------------------------------


def _text_or_none(claim: _Claim) -> Optional[str]:
    try:
        return outbox_text(claim.kind, claim.payload)
    except Exception:
        return None


def _error(result: SendResult) -> str:
    return f"{result.errcode}: {result.errmsg}"[:500]


async def _deliver(factory: sessionmaker, client: WechatClient, claim: _Claim, now: dt.datetime,
                   report: DeliveryReport, templates: Mapping[str, Template]) -> bool:
    """Send one claimed row; returns False when the rest of the batch should wait.

    A customer-service message while the user's 48-hour window is open; a template
    message of the row's kind otherwise, or when WeChat says the window has closed
    (45015) before the first piece went out. A kind without a template still tries
    the customer-service message, and is given up for staff if the window is closed."""
    who = short_id(claim.openid)
    if claim.attempts > MAX_ATTEMPTS:  # the last try was cut short (its worker stopped): no more
        log.error("outbox %d (%s) for %s given up: attempts used up", claim.id, claim.kind, who)
        if await _in_session(factory, _give_up, claim, SEND_FAILED, _text_or_none(claim),
                             f"attempts used up ({MAX_ATTEMPTS}); the last try was interrupted", now):
            report.failed += 1
        return True
    try:
        text = outbox_text(claim.kind, claim.payload)
        parts = to_wechat_texts([{"text": text}])
        if not parts:
            raise ValueError("empty message")
    except Exception as error:  # a row nobody can send: staff must see it, not a retry loop
        reason = f"cannot make the message ({type(error).__name__})"
        log.error("outbox %d (%s) for %s given up: %s", claim.id, claim.kind, who, reason)
        if await _in_session(factory, _give_up, claim, UNRENDERABLE, None, reason, now):
            report.failed += 1
        return True

    template = templates.get(claim.kind)
    if template is not None and not claim.window_open:
        return await _send_template(factory, client, claim, template, text, now, report)
    for index in range(claim.parts_sent, len(parts)):
        result = await client.send_text(claim.openid, parts[index])
        if result.ok:
            report.messages += 1
            done = index + 1 == len(parts)
            if not await _in_session(factory, _progress, claim, index + 1, done, now):
                log.warning("outbox %d: claim lost (lease ran out, or the row was cancelled meanwhile)", claim.id)
                report.skipped += 1
                return True
            continue
        if result.errcode in WINDOW_ERRCODES and template is not None and index == 0:
            log.info("outbox %d (%s) for %s: window closed, sending the template message", claim.id, claim.kind, who)
            return await _send_template(factory, client, claim, template, text, now, report)
        error = _error(result)
        if len(parts) > 1:
            error = f"{error} (part {index + 1} of {len(parts)})"
        return await _failed(factory, claim, result, error, text, now, report)
    report.sent += 1
    log.info("outbox %d (%s) for %s sent in %d message(s)", claim.id, claim.kind, who, len(parts))
    return True


async def _send_template(factory: sessionmaker, client: WechatClient, claim: _Claim, template: Template,
                         text: str, now: dt.datetime, report: DeliveryReport) -> bool:
    who = short_id(claim.openid)
    try:
        data = template.data(claim.payload)
    except Exception as error:
        reason = f"cannot fill template {template.template_id} ({type(error).__name__})"
        log.error("outbox %d (%s) for %s given up: %s", claim.id, claim.kind, who, reason)
        if await _in_session(factory, _give_up, claim, UNRENDERABLE, text, reason, now):
            report.failed += 1
        return True
    result = await client.send_template(claim.openid, template.template_id, data, template.url)
    if not result.ok:
        return await _failed(factory, claim, result, f"template: {_error(result)}", text, now, report)
    report.messages += 1
    if not await _in_session(factory, _progress, claim, claim.parts_sent, True, now, TEMPLATE):
        log.warning("outbox %d: claim lost (lease ran out, or the row was cancelled meanwhile)", claim.id)
        report.skipped += 1
        return True
    report.sent += 1
    log.info("outbox %d (%s) for %s sent as a template message", claim.id, claim.kind, who)
    return True


async def _failed(factory: sessionmaker, claim: _Claim, result: SendResult, error: str, text: str,
                  now: dt.datetime, report: DeliveryReport) -> bool:
    """A refused send: retried later (with backoff) or given up for staff."""
    who = short_id(claim.openid)
    if retry_later(result) and claim.attempts < MAX_ATTEMPTS:
        wait = backoff(claim.attempts)
        log.warning("outbox %d (%s) for %s not sent (%s); attempt %d, next in %ds", claim.id, claim.kind,
                    who, result.errcode, claim.attempts, wait.total_seconds())
        if await _in_session(factory, _postpone, claim, error, now + wait):
            report.retry_later += 1
        return False
    kind = WINDOW_CLOSED if result.errcode in WINDOW_ERRCODES else SEND_FAILED
    log.warning("outbox %d (%s) for %s given up after %d attempt(s): %s", claim.id, claim.kind, who,
                claim.attempts, result.errcode)
    if await _in_session(factory, _give_up, claim, kind, text, error, now):
        report.failed += 1
    # An account-wide error (the last attempt of a retryable one) fails the others too.
    return not retry_later(result)


async def deliver_due(session_factory: sessionmaker, client: WechatClient, now: dt.datetime,
                      limit: int = 50, templates: Optional[Mapping[str, Template]] = None) -> DeliveryReport:
    """Send up to ``limit`` outbox rows due at ``now``, oldest first (see the module docstring);
    ``templates`` by kind for users outside the 48-hour window (data/notice_templates.yml)."""
    templates = _default_templates() if templates is None else templates
    now = as_utc(now)
    report = DeliveryReport()
    started = time.monotonic()
    for row_id, seen_attempts in await _in_session(session_factory, _pending, now, limit):
        # Leases run from ``now``: a batch slow enough to outlive them leaves the rest for the next run.
        if time.monotonic() - started > LEASE.total_seconds() / 2:
            break
        claim = await _in_session(session_factory, _claim, row_id, seen_attempts, now)
        if claim is None:
            report.skipped += 1
            continue
        if not await _deliver(session_factory, client, claim, now, report, templates):
            break
    return report


async def run_worker(session_factory: sessionmaker, client: WechatClient, interval: float = DEFAULT_INTERVAL,
                     stop_event: Optional[asyncio.Event] = None, limit: int = 50,
                     clock: Callable[[], dt.datetime] = utcnow,
                     templates: Optional[Mapping[str, Template]] = None) -> None:
    """``deliver_due`` every ``interval`` seconds (at once again while batches come back full)
    until ``stop_event`` is set; an error is logged and the loop goes on."""
    stop_event = stop_event if stop_event is not None else asyncio.Event()
    while not stop_event.is_set():
        busy = False
        try:
            report = await deliver_due(session_factory, client, clock(), limit, templates)
            busy = report.handled >= limit
            if report.handled or report.skipped:
                log.info("outbox run: %d sent, %d to retry, %d given up, %d taken by another worker",
                         report.sent, report.retry_later, report.failed, report.skipped)
        except Exception as error:  # the type only: SQL errors carry the message text as parameters
            log.error("outbox delivery run failed: %s", type(error).__name__)
        if busy:
            await asyncio.sleep(0)
            continue
        try:
            await asyncio.wait_for(stop_event.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
