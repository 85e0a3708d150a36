"""WeChat's 48-hour window: when each user last wrote to the account.

WeChat accepts customer-service messages (客服消息) to a user only within 48 hours
of their last interaction: a message, a click on a menu item that sends an event,
following the account, scanning its QR code (WeChat's "客服消息" rules). The gateway
records each such moment (``opened``); the delivery worker asks ``is_open`` and sends
a template message when the window has closed (bot.wechat.delivery). A margin keeps
a notice from being sent in the last minutes, when WeChat may already refuse it.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from bot.db.models import WechatWindow
from bot.db.session import as_utc, dialect_insert, execute_write

WINDOW = dt.timedelta(hours=48)
MARGIN = dt.timedelta(minutes=10)
# A user writing several messages a minute is recorded at most once a minute.
RESOLUTION = dt.timedelta(minutes=1)


def opened(session: Session, openid: str, now: dt.datetime) -> bool:
    """``openid`` wrote at ``now``: the window runs from here. True when it had been
    closed (or never open) until now, so that notices kept back may go again."""
    now = as_utc(now)
    before = last_inbound(session, openid)
    if before is None:  # the first time: a racing gateway may have written it meanwhile
        execute_write(session, dialect_insert(session, WechatWindow).values(openid=openid, last_inbound_at=now)
                      .on_conflict_do_nothing(index_elements=["openid"]))
    elif before < now - RESOLUTION:  # guarded: never moved back by a slower gateway
        execute_write(session, update(WechatWindow).where(
            WechatWindow.openid == openid, WechatWindow.last_inbound_at < now - RESOLUTION,
        ).values(last_inbound_at=now), synchronize_session=False)
    return before is None or now >= before + WINDOW - MARGIN


def last_inbound(session: Session, openid: str) -> Optional[dt.datetime]:
    value = session.execute(select(WechatWindow.last_inbound_at).where(WechatWindow.openid == openid)).scalar()
    return as_utc(value) if value is not None else None


def is_open(session: Session, openid: str, now: dt.datetime) -> bool:
    """Whether a customer-service message to ``openid`` is allowed at ``now``."""
    last = last_inbound(session, openid)
    return last is not None and as_utc(now) < last + WINDOW - MARGIN


def erase_window(session: Session, openid: str, now: dt.datetime) -> None:
    """On unfollow: when they last wrote goes too."""
    session.execute(delete(WechatWindow).where(WechatWindow.openid == openid),
                    execution_options={"synchronize_session": False})
