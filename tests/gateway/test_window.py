"""The gateway records when each user last wrote (WeChat's 48-hour window for
customer-service messages, bot.services.wechat_window): on every message and on the
events that open the window, not on opening a link, and it forgets it on unfollow.
The real /wechat endpoint and database; Rasa played by the stand-in."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from bot.db.models import WechatWindow
from bot.db.session import session_scope
from bot.gateway.wechat import WECHAT


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
