"""The staff side of a handoff: answering the user in WeChat and handing back to the bot.

What staff write goes into the conversation's transcript in Rasa's tracker store as a
bot message with the staff member's name in its metadata (so the record keeps user,
bot and staff messages in order), and to the user through the customer-service API;
a failure (the user's 48-hour window closed …) is returned for the console to show
and kept in wechat_failures. Handing back closes the handoff, resumes the
conversation (``ConversationResumed``) and tells the user.

The console (issue 7) calls these with the gateway's HTTP session, WeChat client and
database; the functions take them explicitly so that tests can too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Dict, List, Optional

import aiohttp
from sqlalchemy.orm import sessionmaker

from bot.db.session import session_scope
from bot.redaction import redact
from bot.services import handoff, wechat_failures
from bot.wechat.client import SendResult, WechatClient
from bot.wechat.render import to_wechat_texts

BACK_TO_BOT = "人工服务已结束，感谢您的耐心。接下来由荣军助手继续为您服务，回复“菜单”可查看全部服务。"
TAKEN_OVER = "您好，工作人员已接入本次对话，接下来由人工为您服务，请稍候。"


class StaffActionError(RuntimeError):
    """A step the console shows to the staff member as is (Chinese)."""


async def _append(http: aiohttp.ClientSession, rasa_url: str, openid: str, events: List[Dict[str, Any]]) -> None:
    url = f"{rasa_url}/conversations/{openid}/tracker/events"
    try:
        async with http.post(url, json=events, params={"include_events": "NONE"},
                             timeout=aiohttp.ClientTimeout(total=15)) as response:
            if response.status != 200:
                raise StaffActionError(f"对话记录没有保存成功（Rasa 返回 {response.status}），请稍后再试。")
    except (aiohttp.ClientError, asyncio.TimeoutError):
        raise StaffActionError("对话服务暂时无法连接，请稍后再试。") from None


async def _deliver(factory: sessionmaker, client: WechatClient, openid: str, text: str,
                   now: dt.datetime) -> SendResult:
    result = SendResult(ok=True, errcode=0, errmsg="ok", msgid=None)
    parts = to_wechat_texts([{"text": text}])
    for index, part in enumerate(parts):
        result = await client.send_text(openid, part)
        if not result.ok:
            def record(session) -> None:
                for unsent in parts[index:]:
                    wechat_failures.record_failure(
                        session, openid, "out",
                        wechat_failures.WINDOW_CLOSED if result.window_closed else wechat_failures.SEND_FAILED,
                        unsent, f"{result.errcode}: {result.errmsg}", now)

            await asyncio.to_thread(lambda: _in_session(factory, record))
            break
    return result


def _in_session(factory: sessionmaker, work):
    with session_scope(factory) as session:
        return work(session)


async def staff_reply(factory: sessionmaker, http: aiohttp.ClientSession, rasa_url: str, client: WechatClient,
                      handoff_id: int, staff: str, text: str, now: Optional[dt.datetime] = None,
                      staff_name: Optional[str] = None) -> SendResult:
    """A staff member's answer: into the transcript, then to the user in WeChat. ``staff`` is
    who holds the handoff (claimed_by); ``staff_name`` what the transcript shows (default
    ``staff``)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    text = (text or "").strip()
    if not text:
        raise StaffActionError("回复内容不能为空。")
    view = await asyncio.to_thread(lambda: _in_session(factory, lambda s: handoff.get(s, handoff_id)))
    if view is None or view.state == "closed":
        raise StaffActionError("这个会话已经结束。")
    if view.claimed_by != staff:
        raise StaffActionError("请先接待这个会话再回复。")
    # Staff text is kept like the user's: personal numbers typed by mistake are redacted.
    kept = redact(text).text
    await _append(http, rasa_url, view.openid, [{"event": "bot", "text": kept,
                                                  "metadata": {"staff": staff_name or staff, "handoff_id": handoff_id}}])
    return await _deliver(factory, client, view.openid, kept, now)


async def take_over(factory: sessionmaker, http: aiohttp.ClientSession, rasa_url: str, client: WechatClient,
                    openid: str, staff: str, now: Optional[dt.datetime] = None, staff_name: Optional[str] = None,
                    station_id: Optional[int] = None) -> "handoff.HandoffView":
    """A staff member takes over a conversation nobody handed over: a handoff held by them,
    the conversation paused the Rasa way, the user told a person is here."""
    now = now or dt.datetime.now(dt.timezone.utc)

    def work(session):
        before = handoff.current(session, openid)
        return before, handoff.take_over(session, openid, staff, now, station_id=station_id)

    before, view = await asyncio.to_thread(lambda: _in_session(factory, work))
    if view.claimed_by != staff:
        raise StaffActionError("这个会话已由其他工作人员接待。")
    if before is not None and before.claimed_by == staff:
        return view  # theirs already: nothing to pause or say again
    await _append(http, rasa_url, openid, [
        {"event": "pause"},
        {"event": "bot", "text": TAKEN_OVER, "metadata": {"staff": staff_name or staff, "handoff_id": view.id}},
        {"event": "action", "name": "action_listen"},
    ])
    await _deliver(factory, client, openid, TAKEN_OVER, now)
    return view


async def hand_back(factory: sessionmaker, http: aiohttp.ClientSession, rasa_url: str, client: WechatClient,
                    handoff_id: int, staff: str, now: Optional[dt.datetime] = None,
                    staff_name: Optional[str] = None) -> SendResult:
    """Close the handoff, resume the conversation, tell the user the bot is back."""
    now = now or dt.datetime.now(dt.timezone.utc)
    view = await asyncio.to_thread(lambda: _in_session(factory, lambda s: handoff.close(s, handoff_id, staff, now)))
    # Resumed, told, and listening: the user's next message starts a normal turn.
    await _append(http, rasa_url, view.openid, [
        {"event": "resume"},
        {"event": "bot", "text": BACK_TO_BOT, "metadata": {"staff": staff_name or staff, "handoff_id": handoff_id}},
        {"event": "action", "name": "action_listen"},
    ])
    return await _deliver(factory, client, view.openid, BACK_TO_BOT, now)
