"""Unfollowing through the real /wechat endpoint: the user's data goes at once, and
the conversation goes through Rasa (bot.channels ``/forget``, played here by the
stand-in; the real deletion under Rasa's lock is tests/test_tracker_erasure.py and
tests/e2e/test_gateway_wechat.py). While Rasa cannot take it, the request waits in
the database and the gateway's worker retries it, with a growing pause."""

from __future__ import annotations

import datetime as dt

from bot.db.models import ConversationErasure, WechatBinding
from bot.db.session import session_scope
from bot.gateway.wechat import WECHAT, erase_conversations
from bot.services import conversations
from sqlalchemy import select


def _requests(gateway):
    with session_scope(gateway.factory) as session:
        return session.execute(select(ConversationErasure.openid, ConversationErasure.attempts,
                                      ConversationErasure.next_attempt_at)).all()


async def test_unfollow_deletes_the_conversation_in_rasa(gateway):
    assert (await gateway.user.say("你好")).status == 200
    assert gateway.user.openid in gateway.rasa.trackers
    gone = await gateway.user.say("/unsubscribe")
    assert gone.status == 200 and gone.texts == []
    assert gateway.user.openid not in gateway.rasa.trackers
    assert _requests(gateway) == []  # confirmed: nothing left to do


async def test_while_rasa_is_down_the_erasure_waits_and_is_retried(gateway):
    openid = gateway.user.openid
    await gateway.user.say("你好")
    gateway.rasa.forget_down = True
    gone = await gateway.user.say("/unsubscribe")
    assert gone.status == 200 and gone.texts == []  # WeChat is answered all the same
    with session_scope(gateway.factory) as session:  # the user's own data went at once
        assert session.execute(select(WechatBinding).where(WechatBinding.openid == openid)).first() is None
    [(who, attempts, next_at)] = _requests(gateway)
    assert who == openid and attempts == 1 and openid in gateway.rasa.trackers
    now = gateway.clock["now"]
    assert next_at.replace(tzinfo=dt.timezone.utc) == (now + conversations.FIRST_RETRY).astimezone(dt.timezone.utc)

    app, edge = gateway.app, gateway.app[WECHAT]
    with session_scope(gateway.factory) as session:
        assert conversations.due(session, now) == []  # not before its time
        due = conversations.due(session, now + dt.timedelta(seconds=30))
    assert due == [openid]
    assert await erase_conversations(app, edge, due) == 0  # still down: the pause doubles
    assert _requests(gateway)[0][1] == 2
    with session_scope(gateway.factory) as session:
        assert conversations.due(session, now + dt.timedelta(seconds=59)) == []
        assert conversations.due(session, now + dt.timedelta(seconds=60)) == [openid]

    gateway.rasa.forget_down = False  # Rasa is back
    assert await erase_conversations(app, edge, [openid]) == 1
    assert openid not in gateway.rasa.trackers and _requests(gateway) == []


def test_the_retry_pause_grows_to_half_an_hour(session_factory):
    now = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.timezone.utc)
    with session_scope(session_factory) as session:
        conversations.request_erasure(session, "o-1", now)
        conversations.request_erasure(session, "o-1", now)  # unfollowed twice: one request
        pauses = [conversations.failed(session, "o-1", "HTTP 503", now) - now for _ in range(10)]
        assert conversations.pending(session) == ["o-1"]
    assert [p.total_seconds() for p in pauses[:6]] == [30, 60, 120, 240, 480, 960]
    assert max(pauses) == dt.timedelta(minutes=30) == pauses[-1]
