"""The gateway records when each user last wrote (WeChat's 48-hour window for
customer-service messages, bot.services.wechat_window): on every message and on the
events that open the window, not on opening a link, and it forgets it on unfollow; a
user writing after their window had closed gets the notices kept back queued again.
The real /wechat endpoint and database; Rasa played by the stand-in."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from bot.db.models import Outbox, WechatWindow
from bot.db.session import session_scope
from bot.gateway.wechat import WECHAT
from bot.services.wechat_failures import WINDOW_CLOSED, record_failure


async def _settled(gateway) -> None:
    # The window is written after the answer, off its path (the gateway's other tasks run on).
    notes = [task for task in gateway.app[WECHAT].tasks if task.get_coro().__name__ == "note_window"]
    await asyncio.gather(*notes)


def _last(gateway):
    with session_scope(gateway.factory) as session:
        return session.execute(select(WechatWindow.last_inbound_at)
                               .where(WechatWindow.openid == gateway.user.openid)).scalar()


async def test_what_the_user_sends_opens_the_window_and_unfollowing_forgets_it(gateway):
    assert (await gateway.user.say("/view https://example.org/")).status == 200
    await _settled(gateway)
    assert _last(gateway) is None  # opening a link is not writing to the account
    await gateway.user.say("你好")
    await _settled(gateway)
    first = gateway.clock["now"].astimezone(dt.timezone.utc)
    assert _last(gateway).replace(tzinfo=dt.timezone.utc) == first
    gateway.clock["now"] += dt.timedelta(hours=5)
    await gateway.user.say("/click MENU_COMPLAINT")  # a menu click opens it anew
    await _settled(gateway)
    assert _last(gateway).replace(tzinfo=dt.timezone.utc) == first + dt.timedelta(hours=5)
    await gateway.user.say("/unsubscribe")
    await _settled(gateway)
    assert _last(gateway) is None


async def test_writing_after_a_closed_window_queues_the_notices_kept_back(gateway):
    openid = gateway.user.openid
    kept_back_at = gateway.clock["now"] - dt.timedelta(days=3)
    with session_scope(gateway.factory) as session:
        row = Outbox(openid=openid, kind="complaint_accepted", ref="complaint:TS20261205-0001",
                     payload={"case_number": "TS20261205-0001", "category": "待遇发放", "due": "2026-12-19"},
                     due_at=kept_back_at, created_at=kept_back_at, attempts=1, failed_at=kept_back_at,
                     last_error="45015: response out of time limit")
        session.add(row)
        session.flush()
        record_failure(session, openid, "out", WINDOW_CLOSED, "【信访登记】…", "45015", kept_back_at,
                       ref=row.ref, outbox_id=row.id)
    await gateway.user.say("你好")
    await _settled(gateway)
    with session_scope(gateway.factory) as session:
        pending = session.execute(select(Outbox.kind, Outbox.due_at).where(
            Outbox.openid == openid, Outbox.sent_at.is_(None), Outbox.failed_at.is_(None))).all()
    assert [kind for kind, _ in pending] == ["complaint_accepted"]
    assert pending[0][1].replace(tzinfo=dt.timezone.utc) == gateway.clock["now"].astimezone(dt.timezone.utc)
