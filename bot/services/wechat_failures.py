"""Messages the WeChat edge could not handle or deliver, kept for staff.

Nothing a user said or should have been told is silently lost: when the bot is
down (``in``) or WeChat refuses a message to the user (``out``: the 48-hour
window closed, a refusal, retries used up), the gateway or the delivery worker
records it here and the console (issue 7) lists the open ones until staff
resolve them, by phone or in the next conversation.

``text`` arrives redacted from the caller for incoming messages; for outgoing
ones it is the message that did not arrive. ``reason`` is WeChat's errcode and
errmsg or an error's type: no personal data. The caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from bot.db.models import FAILURE_DIRECTIONS, WechatFailure
from bot.db.session import as_utc
from bot.services.stations import local_time

RASA_DOWN = "rasa_down"  # in: the bot could not answer
WINDOW_CLOSED = "window_closed"  # out: 45015, the user has not written for 48 hours
SEND_FAILED = "send_failed"  # out: WeChat refused the message, or retries were used up
UNRENDERABLE = "unrenderable"  # out: an outbox row no message could be made of
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class FailureView:
    """One recorded failure; times in Beijing time, for the console."""

    id: int
    openid: str
    direction: str
    kind: str
    text: Optional[str]
    reason: str
    ref: Optional[str]
    created_at: dt.datetime
    resolved_at: Optional[dt.datetime]
    resolved_by: Optional[str]

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None


def _view(row: WechatFailure) -> FailureView:
    return FailureView(row.id, row.openid, row.direction, row.kind, row.text, row.reason, row.ref,
                       local_time(as_utc(row.created_at)),
                       local_time(as_utc(row.resolved_at)) if row.resolved_at is not None else None,
                       row.resolved_by)


def record_failure(session: Session, openid: str, direction: str, kind: str, text: Optional[str], reason: str,
                   now: dt.datetime, *, ref: Optional[str] = None, outbox_id: Optional[int] = None) -> int:
    """Keep one failure for staff; returns its id. ``text`` must already be redacted (``in``)."""
    if direction not in FAILURE_DIRECTIONS:
        raise ValueError(f"direction is 'in' or 'out', not {direction!r}")
    if not openid or not kind:
        raise ValueError("a failure needs the OpenID and a kind")
    row = WechatFailure(openid=openid, direction=direction, kind=kind, text=text,
                        reason=(reason or "unknown")[:MAX_REASON_CHARS], ref=ref, outbox_id=outbox_id,
                        created_at=as_utc(now))
    session.add(row)
    session.flush()
    return row.id


def list_failures(session: Session, unresolved_only: bool = True, limit: int = 100,
                  openid: Optional[str] = None) -> List[FailureView]:
    """The newest failures first (open ones only unless ``unresolved_only`` is False)."""
    query = select(WechatFailure)
    if unresolved_only:
        query = query.where(WechatFailure.resolved_at.is_(None))
    if openid is not None:
        query = query.where(WechatFailure.openid == openid)
    query = query.order_by(WechatFailure.created_at.desc(), WechatFailure.id.desc()).limit(limit)
    return [_view(row) for row in session.execute(query).scalars()]


def resolve_failure(session: Session, failure_id: int, staff: str, now: dt.datetime) -> bool:
    """Mark a failure as dealt with by ``staff``; False if it does not exist or was resolved already."""
    result = session.execute(
        update(WechatFailure)
        .where(WechatFailure.id == failure_id, WechatFailure.resolved_at.is_(None))
        .values(resolved_at=as_utc(now), resolved_by=staff),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1


def erase_failure_data(session: Session, openid: str, now: dt.datetime) -> None:
    """On unfollow: the user's failures go (they hold the OpenID and what was said)."""
    session.execute(delete(WechatFailure).where(WechatFailure.openid == openid),
                    execution_options={"synchronize_session": False})
