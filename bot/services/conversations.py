"""The Rasa conversations still to delete after an unfollow.

The erasure queue: when a user unfollows, the gateway erases their data here and, in
the same transaction, records that their conversation is to go (``request_erasure``);
it then asks Rasa to delete it under Rasa's lock (bot.gateway.wechat, bot.tracker_erasure)
and removes the request when Rasa confirms (``erased``). A request Rasa could not take
(down, restarting) waits for the next attempt with a growing pause (``due``, ``failed``).
"""

from __future__ import annotations

import datetime as dt
from typing import List, Optional

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.db.models import ConversationErasure
from bot.db.session import as_utc

FIRST_RETRY = dt.timedelta(seconds=30)
LONGEST_RETRY = dt.timedelta(minutes=30)
MAX_ERROR_CHARS = 200


def request_erasure(session: Session, openid: str, now: dt.datetime) -> None:
    """Record that ``openid``'s conversation must go (once, however often they unfollow)."""
    now = as_utc(now)
    row = session.execute(select(ConversationErasure).where(ConversationErasure.openid == openid)).scalar_one_or_none()
    if row is None:
        session.add(ConversationErasure(openid=openid, requested_at=now, attempts=0, next_attempt_at=now))
    else:
        row.next_attempt_at = now
    session.flush()


def due(session: Session, now: dt.datetime, limit: int = 50) -> List[str]:
    """The OpenIDs whose erasure is due for an attempt, oldest first."""
    return list(session.execute(
        select(ConversationErasure.openid).where(ConversationErasure.next_attempt_at <= as_utc(now))
        .order_by(ConversationErasure.next_attempt_at, ConversationErasure.id).limit(limit)
    ).scalars())


def pending(session: Session) -> List[str]:
    return list(session.execute(select(ConversationErasure.openid).order_by(ConversationErasure.id)).scalars())


def erased(session: Session, openid: str) -> None:
    """Rasa confirmed the deletion: the request goes."""
    session.execute(delete(ConversationErasure).where(ConversationErasure.openid == openid))


def failed(session: Session, openid: str, reason: str, now: dt.datetime) -> Optional[dt.datetime]:
    """Rasa did not take it: try again later (30 s, doubling, at most every 30 minutes).
    Returns when; None if the request is gone meanwhile."""
    row = session.execute(select(ConversationErasure).where(ConversationErasure.openid == openid)).scalar_one_or_none()
    if row is None:
        return None
    row.attempts += 1
    pause = min(FIRST_RETRY * (2 ** min(row.attempts - 1, 16)), LONGEST_RETRY)
    row.next_attempt_at = as_utc(now) + pause
    row.last_error = reason[:MAX_ERROR_CHARS]
    session.flush()
    return row.next_attempt_at
