"""A handoff seen from the gateway: the staff side (answering the user in WeChat, handing
back to the bot) and the user's side (what they are told while they wait).

What staff write goes into the conversation's transcript in Rasa's tracker store as a
bot message with the staff member's name in its metadata (so the record keeps user,
bot and staff messages in order), and to the user through the customer-service API;
a failure (the user's 48-hour window closed …) is returned for the console to show
and kept in wechat_failures. Handing back closes the handoff, resumes the
conversation (``ConversationResumed``) and tells the user.

While the user waits (``while_held``; the conversation is paused, so Rasa records what
they write and answers nothing) the gateway answers for it: "已收到" at most once per
interval, with when a person will be there (the opening hours); the 24-hour lines at
once for words of danger (data/emergency.yml); where they stand for 转人工 again.
"不用人工了" / "算了" / "菜单" … or a menu click leave the queue while nobody has claimed
the handoff: it is closed (``WITHDRAWN_BY``), the conversation resumed the Rasa way,
and the rest of the message goes to the bot. Once a staff member holds it, a wish to
stop is left to them (a note; the user is told so).

The console (issue 7) calls the staff side with the gateway's HTTP session, WeChat
client and database; the functions take them explicitly so that tests can too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import aiohttp
from sqlalchemy.orm import sessionmaker

from bot.db.session import session_scope
from bot.redaction import redact
from bot.services import handoff, wechat_failures
from bot.services.complaints import is_urgent
from bot.services.scope import Scope
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
    # A person answered: the automatic "已收到" waits a whole interval from now.
    await asyncio.to_thread(lambda: _in_session(factory, lambda s: handoff.mark_acknowledged(s, handoff_id, now)))
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
    await asyncio.to_thread(lambda: _in_session(factory, lambda s: handoff.mark_acknowledged(s, view.id, now)))
    await _deliver(factory, client, openid, TAKEN_OVER, now)
    return view


async def hand_back(factory: sessionmaker, http: aiohttp.ClientSession, rasa_url: str, client: WechatClient,
                    handoff_id: int, staff: str, now: Optional[dt.datetime] = None,
                    staff_name: Optional[str] = None, scope: Optional[Scope] = None) -> SendResult:
    """Close the handoff, resume the conversation, tell the user the bot is back. Only the
    staff member who claimed it, an admin or district staff (by their ``scope``) may:
    handoff.HandoffError otherwise, before anything reaches Rasa or the user."""
    now = now or dt.datetime.now(dt.timezone.utc)
    view = await asyncio.to_thread(lambda: _in_session(
        factory, lambda s: handoff.close(s, handoff_id, staff, now, scope=scope)))
    # Resumed, told, and listening: the user's next message starts a normal turn.
    await _append(http, rasa_url, view.openid, [
        {"event": "resume"},
        {"event": "bot", "text": BACK_TO_BOT, "metadata": {"staff": staff_name or staff, "handoff_id": handoff_id}},
        {"event": "action", "name": "action_listen"},
    ])
    return await _deliver(factory, client, view.openid, BACK_TO_BOT, now)


# --- the user's side: messages while they wait ------------------------------------------------

RECEIVED_ON_DUTY = "已收到，工作人员正在处理，请稍候。"
RECEIVED_OFF_DUTY = "已收到您的消息。{when}您可以继续在这里留言，工作人员都能看到。"
ALREADY_QUEUED = "您已在人工服务队列中，不用重复申请。{queue}"
ALREADY_HELD = "工作人员已在为您处理，请稍候。"
URGENT_RECEIVED = "您说的情况我们非常重视，已请工作人员优先处理。{when}"
WITHDRAWN = "好的，已为您取消人工服务。"
WITHDRAWN_NOTHING_MORE = "有什么需要可以直接问我，回复“菜单”可查看全部服务。"
HELD_STOP = "工作人员已在为您处理，请稍候；如不再需要，工作人员会结束本次服务。"
REQUEST_HUMAN = "/request_human"  # the 人工服务 menu click (data/wechat_menu.yml)
SHOW_MENU = "/help"  # what the bot gets after 菜单 / 返回: the menu of services

# Leaving the queue: "不用人工了 我要问政策" (the rest goes to the bot), "算了", "不用了谢谢" …
_LEAVE = re.compile(
    r"^[\s，,。]*(?:好的?|好吧|行|那|那就|嗯|哦|噢)?[\s，,。]*"
    r"(?P<words>(?:不用|不要|不需要|不想|不找|不转|取消|退出|结束)(?:转|找)?人工(?:服务|客服)?了?"
    r"|不用了|不需要了|不要了|不用麻烦了|算了)"
    r"[吧啊呀哈啦嘛了]*[\s，,。！!、~～…]*")
# Only these words, nothing else: back to the menu.
_MENU = re.compile(r"^[\s]*(?:返回|返回菜单|回到菜单|返回主菜单|回主菜单|主菜单|菜单|退出)[吧啊呀]*[\s。！!~～…]*$")

Ask = Callable[[str, str], Awaitable[List[Dict[str, Any]]]]


class ConversationUnreachable(RuntimeError):
    """Rasa did not take the events (the user gets the gateway's apology)."""


@dataclass(frozen=True)
class Leaving:
    """A message that leaves the queue: ``said`` the words of leaving (kept in the
    transcript for staff), ``then`` what the bot gets afterwards (the rest of the
    message, the menu, the clicked menu entry), if anything."""

    said: Optional[str]
    then: Optional[str]


def leaving(text: str, clicked: bool = False) -> Optional[Leaving]:
    """Whether ``text`` (typed, or a menu click's payload) leaves the queue. Words of
    danger never do (the user is kept with staff)."""
    if clicked:
        return None if text == REQUEST_HUMAN else Leaving(None, text)
    if text.startswith("/") or is_urgent(text):
        return None
    if _MENU.match(text):
        return Leaving(text.strip(), SHOW_MENU)
    match = _LEAVE.match(text)
    if match is None:
        return None
    rest = text[match.end():].strip()
    return Leaving(text[:match.end()].strip(" \t\n，,。"), rest or None)


async def _events(http: aiohttp.ClientSession, rasa_url: str, openid: str, events: List[Dict[str, Any]]) -> None:
    try:
        await _append(http, rasa_url, openid, events)
    except StaffActionError as error:
        raise ConversationUnreachable(str(error)) from None


async def _tracker_state(http: aiohttp.ClientSession, rasa_url: str, openid: str) -> Tuple[bool, Optional[str]]:
    """Whether the conversation is paused, and the intent Rasa read in the latest message
    (Rasa parses and records a message while paused, it only does not answer)."""
    url = f"{rasa_url}/conversations/{openid}/tracker"
    try:
        async with http.get(url, params={"include_events": "NONE"},
                            timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status != 200:
                raise ConversationUnreachable(f"HTTP {response.status}")
            tracker = await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        raise ConversationUnreachable(type(error).__name__) from None
    intent = ((tracker.get("latest_message") or {}).get("intent") or {}).get("name")
    return bool(tracker.get("paused")), intent


def received_text(session, view: "handoff.HandoffView", now: dt.datetime) -> str:
    """The periodic "已收到": staff at work (or holding the conversation), else when they will be."""
    if view.state == "claimed" or handoff.on_duty(session, now):
        text = RECEIVED_ON_DUTY
    else:
        text = RECEIVED_OFF_DUTY.format(when=handoff.expected_reply(session, now))
    return _with_help(text, view)


def _with_help(text: str, view: "handoff.HandoffView") -> str:
    """A user waiting with an urgent matter hears the 24-hour lines with every answer."""
    return f"{text}\n{handoff.emergency_help()}" if view.urgent else text


def _answer_held(session, handoff_id: int, text: str, intent: Optional[str], left: Optional[Leaving],
                 now: dt.datetime, interval: dt.timedelta) -> Tuple[Optional[str], Optional["handoff.HandoffView"]]:
    """What to tell a user whose message went to staff, if anything (one transaction)."""
    view = handoff.get(session, handoff_id)
    if view is None or view.state == "closed":
        return None, view  # handed back this very moment: the message is in the transcript
    if not text.startswith("/") and is_urgent(text):
        # Every time, and the next message is acknowledged too: nobody in danger meets silence.
        view = handoff.make_urgent(session, view.id, now)
        when = RECEIVED_ON_DUTY if view.state == "claimed" else handoff.expected_reply(session, now)
        return _with_help(URGENT_RECEIVED.format(when=when), view), view
    if left is not None:  # a staff member holds it: theirs to end
        handoff.flag_stop_request(session, view.id, left.said or "点击了菜单", now)
        handoff.mark_acknowledged(session, view.id, now)
        return _with_help(HELD_STOP, view), view
    if intent == "request_human" or text == REQUEST_HUMAN:
        handoff.mark_acknowledged(session, view.id, now)
        if view.state == "claimed":
            return _with_help(ALREADY_HELD, view), view
        return _with_help(ALREADY_QUEUED.format(queue=handoff.queue_message(session, view, now)), view), view
    if not handoff.acknowledge(session, view.id, now, interval):
        return None, view
    return received_text(session, view, now), view


async def _leave(factory: sessionmaker, http: aiohttp.ClientSession, rasa_url: str, ask: Ask, openid: str,
                 view: "handoff.HandoffView", left: Leaving, now: dt.datetime) -> Optional[List[Dict[str, Any]]]:
    """Leave the queue: the words kept for staff (still paused), the conversation resumed,
    the handoff closed as withdrawn by the user, the user told, and the rest to the bot.
    None when a staff member claimed the handoff meanwhile (paused again)."""
    if left.said:
        await ask(openid, left.said)  # paused: recorded for staff, no answer
    await _events(http, rasa_url, openid, [{"event": "resume"}])
    try:
        await asyncio.to_thread(lambda: _in_session(factory, lambda s: handoff.withdraw(s, view.id, now)))
    except handoff.HandoffError:
        await _events(http, rasa_url, openid, [{"event": "pause"}, {"event": "action", "name": "action_listen"}])
        return None
    told = WITHDRAWN if left.then else WITHDRAWN + WITHDRAWN_NOTHING_MORE
    if view.urgent:  # the urgent case stays on the register; the lines are worth repeating
        case = f"（编号{view.case_number}）" if view.case_number else ""
        told += f"\n您反映的紧急情况{case}工作人员仍会优先跟进。\n{handoff.emergency_help()}"
    await _events(http, rasa_url, openid, [
        {"event": "bot", "text": told, "metadata": {"handoff_id": view.id, "withdrawn": True}},
        {"event": "action", "name": "action_listen"},
    ])
    answer = await ask(openid, left.then) if left.then else []
    return [{"text": told}, *answer]


async def while_held(factory: sessionmaker, http: aiohttp.ClientSession, rasa_url: str, ask: Ask, openid: str,
                     text: str, view: "handoff.HandoffView", *, now: dt.datetime, interval: dt.timedelta,
                     clicked: bool = False) -> Optional[List[Dict[str, Any]]]:
    """The answer to ``text`` from a user whose handoff ``view`` is open (waiting or claimed),
    as Rasa-style messages: possibly none (acknowledged a moment ago). ``ask`` sends a
    message to Rasa (bot.gateway.wechat.ask_rasa). None when the conversation turns out
    not to be paused and Rasa did not answer either (the caller treats that as a failure).
    Raises ConversationUnreachable (or ``ask``'s error) when Rasa cannot be reached."""
    left = leaving(text, clicked)
    record = text
    if left is not None and view.state == "waiting":
        answer = await _leave(factory, http, rasa_url, ask, openid, view, left, now)
        if answer is not None:
            return answer
        record = left.then if left.said else text  # the words of leaving are recorded already
        view = await asyncio.to_thread(lambda: _in_session(factory, lambda s: handoff.get(s, view.id)))
    if record:
        messages = await ask(openid, record)  # paused: recorded in the transcript for staff
        if messages:
            return messages  # not paused after all: the bot answered
    paused, intent = await _tracker_state(http, rasa_url, openid)
    if not paused:
        return None
    told, current = await asyncio.to_thread(lambda: _in_session(
        factory, lambda s: _answer_held(s, view.id, text, intent, left, now, interval)))
    if not told or current is None:
        return []
    # Kept in the transcript, so that staff see what the user was told.
    await _events(http, rasa_url, openid, [{"event": "bot", "text": told,
                                             "metadata": {"handoff_id": current.id, "auto": True}}])
    return [{"text": told}]
