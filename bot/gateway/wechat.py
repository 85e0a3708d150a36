"""``/wechat``: the official account's webhook, in front of Rasa.

WeChat posts each message or event here (bot.wechat.protocol checks, decrypts and
parses it). The message goes to Rasa's chat channel (bot.channels: personal numbers
are redacted there, before Rasa sees the text) with the OpenID as the sender, and the
bot's answer goes back as the passive reply when it comes within
``wechat_reply_budget`` seconds (WeChat waits 5); otherwise WeChat gets ``success``
and the answer follows through the customer-service API. A turn longer than one
WeChat message sends the rest through the customer-service API too.

WeChat retries a request it got no answer to: a retry (same FromUserName + MsgId,
or + CreateTime for events) never runs a second turn; it gets the first attempt's
reply (bot.wechat.dedup). Events: subscribe greets with the menu, unsubscribe
deletes the user's personal data and conversation, CLICK says what data/wechat_menu.yml
maps its key to, LOCATION is remembered for the station finder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Deque, Dict, List, Mapping, Optional, Set

import aiohttp
import yaml
from aiohttp import web

from bot.console import live
from bot import rasa_auth
from bot.gateway import handoff as held
from bot.gateway.app import HEALTH_CHECKS, SESSION_FACTORY, SETTINGS, VAULT, run_in_session
from bot.redaction import redact
from bot.services import conversations, erasure, handoff, wechat_failures, wechat_window
from bot.settings import PROJECT_ROOT, Settings
from bot.wechat.client import WechatClient
from bot.wechat.dbtoken import DatabaseTokenBackend
from bot.wechat.delivery import requeue_after_window, run_worker, short_id
from bot.wechat.notices import load_templates
from bot.wechat.dedup import MISSING, MemoryReplyCache, RedisReplyCache, ReplyCache
from bot.wechat.protocol import (
    SUCCESS,
    WINDOW_EVENTS,
    Inbound,
    MemoryNonceStore,
    NonceStore,
    ProtocolError,
    RedisNonceStore,
    ReplayedNonce,
    WechatConfig,
    Webhook,
    dedup_key,
)
from bot.wechat.render import to_wechat_texts
from bot.wechat.token import AccessTokenStore, RedisTokenBackend, TokenBackend

log = logging.getLogger(__name__)

MENU_FILE = PROJECT_ROOT / "data" / "wechat_menu.yml"
RASA_TIMEOUT_SECONDS = 60.0
# A user may send this many messages a minute; more get a friendly request to slow down.
RATE_LIMIT = 20
RATE_WINDOW_SECONDS = 60.0
# Customer-service messages after a passive reply wait a moment, so that they arrive after it.
LATER_DELAY_SECONDS = 1.0

BUSY = "系统繁忙，请稍后再试。"
TOO_FAST = "您发送消息太频繁了，请稍等一分钟再发。"
VOICE_UNHEARD = "抱歉，没能听清这段语音，请用文字告诉我您想办理的事情。"
LINK_REPLY = "收到您分享的链接。我暂时无法打开链接，请用文字告诉我您想了解或办理的事情。"
VIDEO_REPLY = "收到您的视频。我暂时无法查看视频；如果是反映问题的材料，请先发送“投诉”说明情况，也可以拍成照片发送。"
UNSUPPORTED = "抱歉，暂时不支持这类消息，请用文字告诉我您想办理的事情。"
BLANK_TEXT = "您好，请问有什么可以帮您？可以直接说出您的问题，或回复“菜单”查看全部服务。"

WECHAT = web.AppKey("wechat", object)  # a WechatEdge


def load_menu(path: Path = MENU_FILE) -> Dict[str, str]:
    """CLICK key → what the click says to the assistant (data/wechat_menu.yml)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    menu = data.get("menu") or {}
    problems = [f"{key}: {value!r}" for key, value in menu.items()
                if not isinstance(key, str) or not isinstance(value, str) or not value.startswith("/")]
    if problems:
        raise ValueError(f"{path}: each menu key needs a payload such as /book_appointment: {'; '.join(problems)}")
    return dict(menu)


class RateLimiter:
    """At most ``limit`` messages per ``window`` seconds for each user (one gateway's view)."""

    def __init__(self, limit: int = RATE_LIMIT, window: float = RATE_WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._seen: Dict[str, Deque[float]] = defaultdict(deque)

    def allow(self, user: str, now: Optional[float] = None) -> bool:
        now = time.monotonic() if now is None else now
        seen = self._seen[user]
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True


class _AnyNonce(NonceStore):
    """For reading a retry that reuses its nonce: every other check still applies."""

    async def claim(self, key: str, ttl: float) -> bool:
        return True


class RasaUnavailable(Exception):
    pass


@dataclass
class WechatEdge:
    settings: Settings
    webhook: Webhook
    retry_webhook: Webhook
    replies: ReplyCache
    menu: Dict[str, str]
    limiter: RateLimiter = field(default_factory=RateLimiter)
    http: Optional[aiohttp.ClientSession] = None  # WeChat's API and the action server's health check
    rasa: Optional[aiohttp.ClientSession] = None  # Rasa, with its token (bot/rasa_auth.py); never to WeChat
    client: Optional[WechatClient] = None
    tasks: Set["asyncio.Task[Any]"] = field(default_factory=set)
    actions_up: bool = True
    actions_checked_at: Optional[float] = None
    stop: Optional[asyncio.Event] = None  # set on shutdown: the outbox worker ends
    # Now, aware (a function, so that tests can fix the clock: opening hours, acknowledgements).
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.timezone.utc))

    def spawn(self, coroutine) -> None:
        """Run ``coroutine`` after the request has been answered; kept until it ends."""
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


# --- talking to Rasa ------------------------------------------------------------------


async def ask_rasa(edge: WechatEdge, openid: str, text: str) -> List[Dict[str, Any]]:
    """The bot's messages for ``text`` from ``openid`` (Rasa's REST channel, which redacts)."""
    assert edge.rasa is not None
    url = f"{edge.settings.rasa_url}/webhooks/rest/webhook"
    try:
        async with edge.rasa.post(url, json={"sender": openid, "message": text},
                                  timeout=aiohttp.ClientTimeout(total=RASA_TIMEOUT_SECONDS)) as response:
            if response.status != 200:
                raise RasaUnavailable(f"HTTP {response.status}")
            messages = await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        raise RasaUnavailable(type(error).__name__) from None
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


ACTIONS_CHECK_SECONDS = {True: 5.0, False: 1.0}  # how long a health answer is trusted


async def actions_alive(edge: WechatEdge) -> bool:
    """Whether the action server answers its health check (the answer cached a few seconds)."""
    assert edge.http is not None
    now = time.monotonic()
    if edge.actions_checked_at is not None and now - edge.actions_checked_at < ACTIONS_CHECK_SECONDS[edge.actions_up]:
        return edge.actions_up
    base = edge.settings.action_server_url.rsplit("/webhook", 1)[0]
    try:
        async with edge.http.get(f"{base}/health", timeout=aiohttp.ClientTimeout(total=2)) as response:
            edge.actions_up = response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        edge.actions_up = False
    edge.actions_checked_at = now
    return edge.actions_up


async def conversation_paused(edge: WechatEdge, openid: str) -> bool:
    """Whether staff hold the conversation (Rasa paused it)."""
    assert edge.rasa is not None
    url = f"{edge.settings.rasa_url}/conversations/{openid}/tracker"
    try:
        async with edge.rasa.get(url, params={"include_events": "NONE"},
                                 timeout=aiohttp.ClientTimeout(total=10)) as response:
            return response.status == 200 and bool((await response.json(content_type=None)).get("paused"))
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return False


async def remember_location(edge: WechatEdge, openid: str, latitude: float, longitude: float) -> None:
    """A LOCATION event: the user's position goes into their conversation's slots, quietly."""
    assert edge.rasa is not None
    url = f"{edge.settings.rasa_url}/conversations/{openid}/tracker/events"
    events = [{"event": "slot", "name": "latitude", "value": latitude},
              {"event": "slot", "name": "longitude", "value": longitude}]
    async with edge.rasa.post(url, json=events, params={"include_events": "NONE"},
                              timeout=aiohttp.ClientTimeout(total=10)) as response:
        if response.status != 200:
            raise RasaUnavailable(f"HTTP {response.status}")


async def forget_user(app: web.Application, edge: WechatEdge, openid: str) -> None:
    """Unsubscribe: the personal data kept under this OpenID (bot.services.erasure's
    erasers: binding, bookings' OpenID, complaint contact data …) goes, and in the same
    transaction the conversation is queued for deletion; Rasa then deletes it under its
    lock (``erase_conversations``), now or, while Rasa is down, at a later attempt."""
    vault = app[VAULT]
    now = edge.clock()

    def work(session) -> None:
        erasure.forget_openid(session, vault, openid, now)
        conversations.request_erasure(session, openid, now)

    await run_in_session(app, work)
    log.info("unfollow: personal data of %s deleted", short_id(openid))
    await erase_conversations(app, edge, [openid])


async def delete_in_rasa(edge: WechatEdge, openid: str) -> int:
    """Ask Rasa to delete ``openid``'s conversation (bot.channels ``/forget``)."""
    assert edge.rasa is not None
    url = f"{edge.settings.rasa_url}/webhooks/rest/forget"
    try:
        async with edge.rasa.post(url, json={"sender": openid}, timeout=aiohttp.ClientTimeout(total=30)) as response:
            if response.status != 200:
                raise RasaUnavailable(f"HTTP {response.status}")
            return int((await response.json(content_type=None)).get("deleted", 0))
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, AttributeError) as error:
        raise RasaUnavailable(type(error).__name__) from None


async def erase_conversations(app: web.Application, edge: WechatEdge, openids: List[str]) -> int:
    """Delete these users' conversations in Rasa and drop their erasure requests; a
    request Rasa does not take waits for its next attempt. Returns how many went."""
    done = 0
    for openid in openids:
        try:
            gone = await delete_in_rasa(edge, openid)
        except RasaUnavailable as error:
            reason = str(error)
            when = await run_in_session(app, lambda session: conversations.failed(session, openid, reason, edge.clock()))
            log.warning("conversation of %s not deleted yet (%s); next attempt %s", short_id(openid), reason, when)
            continue
        await run_in_session(app, lambda session: conversations.erased(session, openid))
        log.info("unfollow: conversation of %s deleted (%d events)", short_id(openid), gone)
        done += 1
    return done


async def erasure_worker(app: web.Application, edge: WechatEdge, interval: float, stop: asyncio.Event) -> None:
    """Retries the conversation deletions Rasa could not take (down, restarting)."""
    while not stop.is_set():
        try:
            openids = await run_in_session(app, lambda session: conversations.due(session, edge.clock()))
            if openids:
                await erase_conversations(app, edge, openids)
        except Exception as error:  # the database is down: try again at the next round
            log.error("conversation erasures not retried: %s", type(error).__name__)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass


def payload(intent: str, entities: Mapping[str, Any]) -> str:
    return f"/{intent}{json.dumps(dict(entities), ensure_ascii=False)}"


async def held_handoff(app: web.Application, openid: str) -> Optional[handoff.HandoffView]:
    """The user's open handoff (waiting for staff or held by them), if any."""
    try:
        return await run_in_session(app, lambda session: handoff.current(session, openid))
    except Exception as error:  # the database is down: the message goes to Rasa as usual
        log.error("handoff of %s not read: %s", short_id(openid), type(error).__name__)
        return None


async def answer_held(app: web.Application, edge: WechatEdge, openid: str, text: str,
                      view: handoff.HandoffView, clicked: bool) -> Optional[List[Dict[str, Any]]]:
    """While staff have the conversation (Rasa paused it): bot.gateway.handoff.while_held."""
    assert edge.rasa is not None
    return await held.while_held(
        app[SESSION_FACTORY], edge.rasa, edge.settings.rasa_url, lambda who, said: ask_rasa(edge, who, said),
        openid, text, view, now=edge.clock(), clicked=clicked,
        interval=dt.timedelta(minutes=edge.settings.handoff_ack_minutes))


async def respond(app: web.Application, edge: WechatEdge, inbound: Inbound) -> List[str]:
    """What to answer ``inbound`` with, as WeChat texts (each within one message)."""
    openid, kind = inbound.openid, inbound.kind
    clicked = False
    if kind != "event" or (inbound.event or "") in WINDOW_EVENTS:
        edge.spawn(note_window(app, openid, edge.clock()))
    if kind == "event":
        event = inbound.event or ""
        if event == "unsubscribe":
            await forget_user(app, edge, openid)
            return []
        if event == "view":
            return []
        if event == "location":
            if inbound.latitude is not None and inbound.longitude is not None:
                try:
                    await remember_location(edge, openid, inbound.latitude, inbound.longitude)
                except (RasaUnavailable, aiohttp.ClientError, asyncio.TimeoutError) as error:
                    log.warning("location of %s not kept: %s", short_id(openid), error)
            return []
        if event == "subscribe":
            text = "/greet"
        elif event == "click":
            text = edge.menu.get(inbound.event_key or "", "/help")
            clicked = True
        else:
            return []
    else:
        if not edge.limiter.allow(openid):
            return [TOO_FAST]
        if kind == "text":
            # A typed "/intent{...}" would be read by Rasa as a button's payload: not from users.
            text = (inbound.text or "").lstrip("/").strip()
            if not text:  # spaces or line breaks only: nothing to understand, but an answer
                return [BLANK_TEXT]
        elif kind == "voice":
            if not (inbound.recognition or "").strip():
                return [VOICE_UNHEARD]
            text = inbound.recognition.lstrip("/").strip()
        elif kind == "image":
            text = payload("send_attachment", {"media_type": "image", "media_id": inbound.media_id})
        elif kind == "location":
            text = payload("find_station", {"latitude": inbound.latitude, "longitude": inbound.longitude})
        elif kind == "link":
            return [LINK_REPLY]
        elif kind in ("video", "shortvideo"):
            return [VIDEO_REPLY]
        else:
            return [UNSUPPORTED]
    if not await actions_alive(edge):
        # Rasa would answer without its custom actions: wrongly ("I did not understand").
        log.error("action server down; a message from %s waits for staff", short_id(openid))
        await record_failure(app, openid, "in", "actions_down", text, "the action server is not answering")
        return [BUSY]
    # Waiting for staff, or held by them: Rasa is paused and answers nothing; the gateway does.
    waiting = await held_handoff(app, openid)
    try:
        if waiting is not None:
            messages = await answer_held(app, edge, openid, text, waiting, clicked)
        else:
            messages = await ask_rasa(edge, openid, text)
    except (RasaUnavailable, held.ConversationUnreachable) as error:
        log.error("Rasa unavailable for a message from %s: %s", short_id(openid), error)
        await record_failure(app, openid, "in", "rasa_down", text, str(error))
        return [BUSY]
    live.notify(app)  # an open transcript in the console shows the message now
    if messages is not None and waiting is not None:
        return to_wechat_texts(messages)  # none: acknowledged a moment ago; staff will answer
    texts = to_wechat_texts(messages or [])
    if not texts:
        if await conversation_paused(edge, openid):
            return []  # staff hold the conversation: the message is in its transcript, they answer
        # Every other message gets an answer; none means a custom action failed (the
        # action server broke), and Rasa went quiet.
        log.error("no answer from the bot for a message from %s", short_id(openid))
        await record_failure(app, openid, "in", "no_answer", text, "the bot gave no answer (action server down?)")
        return [BUSY]
    return texts


async def note_window(app: web.Application, openid: str, now: dt.datetime) -> None:
    """The user wrote: WeChat's 48-hour window for customer-service messages opens anew
    (bot.services.wechat_window), and notices kept back while it was closed go again.
    After the answer, off its path."""
    def work(session) -> int:
        if wechat_window.opened(session, openid, now):
            return requeue_after_window(session, openid, now)
        return 0

    try:
        queued = await run_in_session(app, work)
    except Exception as error:  # the database is down: notices go as templates meanwhile
        log.error("window of %s not recorded: %s", short_id(openid), type(error).__name__)
        return
    if queued:
        log.info("%d notice(s) kept back by a closed window queued again for %s", queued, short_id(openid))


async def record_failure(app: web.Application, openid: str, direction: str, kind: str, text: str,
                         reason: str) -> None:
    """Keep what could not be handled for staff (bot.services.wechat_failures)."""
    now = dt.datetime.now(dt.timezone.utc)
    try:
        await run_in_session(app, lambda session: wechat_failures.record_failure(
            session, openid, direction, kind, redact(text).text, reason, now))
    except Exception as error:  # recording must not cost the user their apology
        log.error("failure not recorded: %s", type(error).__name__)


async def send_later(app: web.Application, edge: WechatEdge, openid: str, texts: List[str],
                     delay: float = 0.0) -> None:
    """``texts`` through the customer-service API, in order; what cannot go is recorded."""
    if delay:
        await asyncio.sleep(delay)
    if edge.client is None:
        return
    for index, text in enumerate(texts):
        result = await edge.client.send_text(openid, text)
        if not result.ok:
            log.warning("customer-service message to %s not sent: %s", short_id(openid), result.errcode)
            reason = f"{result.errcode}: {result.errmsg}"
            kind = "window_closed" if result.window_closed else "send_failed"
            for unsent in texts[index:]:
                await record_failure(app, openid, "out", kind, unsent, reason)
            return


# --- the webhook ------------------------------------------------------------------------


def _refused(error: ProtocolError, method: str) -> web.Response:
    log.warning("wechat %s refused (%d): %s", method, error.status, error.reason)
    return web.Response(status=error.status, text="refused")


async def _being_answered(edge: WechatEdge, key: str, grace: float = 1.0) -> bool:
    """Whether a message with ``key`` is being or has been answered (its first delivery
    may still be on its way to claiming the key: allow it ``grace`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while True:
        state, _ = await edge.replies.wait(key, 0)
        if state != MISSING:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)


async def verify(request: web.Request) -> web.Response:
    edge: WechatEdge = request.app[WECHAT]
    try:
        return web.Response(text=edge.webhook.verify_url(request.query))
    except ProtocolError as error:
        return _refused(error, "GET")


async def receive(request: web.Request) -> web.Response:
    app, edge = request.app, request.app[WECHAT]
    loop = asyncio.get_running_loop()
    started = loop.time()
    body = await request.read()
    try:
        inbound = await edge.webhook.receive(request.query, body)
    except ReplayedNonce as error:
        # A retry may reuse its nonce: let it through only for a message already being
        # answered (it then gets that answer); anything else is a replay.
        try:
            inbound = await edge.retry_webhook.receive(request.query, body)
        except ProtocolError as refusal:
            return _refused(refusal, "POST")
        if not await _being_answered(edge, dedup_key(inbound)):
            return _refused(error, "POST")
    except ProtocolError as error:
        return _refused(error, "POST")

    budget = edge.settings.wechat_reply_budget
    deadline = started + budget

    async def turn() -> Dict[str, Any]:
        texts = await respond(app, edge, inbound)
        if loop.time() <= deadline:
            return {"passive": texts[:1], "later": texts[1:]}
        # Too late for the passive reply: everything goes through the customer-service API.
        await send_later(app, edge, inbound.openid, texts)
        return {"passive": [], "later": []}

    work = asyncio.ensure_future(edge.replies.run_once(dedup_key(inbound), turn, wait_timeout=budget))
    try:
        outcome = await asyncio.wait_for(asyncio.shield(work), timeout=max(0.0, deadline - loop.time()) + 0.2)
    except asyncio.TimeoutError:
        edge.spawn(work)  # the turn goes on and delivers its answer itself
        return web.Response(text=SUCCESS)
    reply = outcome.reply if outcome.ready and isinstance(outcome.reply, dict) else {}
    passive = reply.get("passive") or []
    if outcome.first and reply.get("later"):
        edge.spawn(send_later(app, edge, inbound.openid, reply["later"], delay=LATER_DELAY_SECONDS))
    text = edge.webhook.passive_reply(inbound, passive)
    return web.Response(text=text, content_type="text/plain" if text == SUCCESS else "application/xml",
                        charset="utf-8")


# --- set-up -----------------------------------------------------------------------------


def _redis_client(url: str):
    from redis.asyncio import Redis

    return Redis.from_url(url)


def setup_wechat(app: web.Application, token_backend: Optional[TokenBackend] = None) -> None:
    settings: Settings = app[SETTINGS]
    config = WechatConfig(settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key,
                          settings.wechat_account_id)
    redis = _redis_client(settings.redis_url) if settings.redis_url else None
    nonces: NonceStore = RedisNonceStore(redis) if redis is not None else MemoryNonceStore()
    replies: ReplyCache = RedisReplyCache(redis) if redis is not None else MemoryReplyCache()
    if token_backend is None and redis is not None:
        token_backend = RedisTokenBackend(redis, settings.wechat_appid)
    templates = load_templates()  # a wrong data/notice_templates.yml stops the start, listing its mistakes
    edge = WechatEdge(settings=settings, webhook=Webhook(config, nonces), retry_webhook=Webhook(config, _AnyNonce()),
                      replies=replies, menu=load_menu())
    app[WECHAT] = edge

    async def http_session(app: web.Application) -> AsyncIterator[None]:
        # Runs after create_app's database context: the session factory exists by now.
        edge.http = aiohttp.ClientSession()
        edge.rasa = aiohttp.ClientSession(headers=rasa_auth.headers(settings.rasa_token))
        stop = asyncio.Event()
        if settings.wechat_secret:
            # The access token is shared through Redis, else through the database.
            backend = token_backend or DatabaseTokenBackend(app[SESSION_FACTORY], settings.wechat_appid,
                                                            vault=app[VAULT])
            tokens = AccessTokenStore(edge.http, settings.wechat_api_base, settings.wechat_appid,
                                      settings.wechat_secret, backend=backend)
            edge.client = WechatClient(edge.http, settings.wechat_api_base, tokens)
            # The outbox (reminders, complaint notices) goes out through the customer-service API.
            edge.spawn(run_worker(app[SESSION_FACTORY], edge.client, interval=settings.outbox_interval,
                                  stop_event=stop, templates=templates))
        else:
            log.error("WECHAT_SECRET is not set: slow answers and the outbox cannot be delivered")
        edge.spawn(erasure_worker(app, edge, interval=settings.outbox_interval, stop=stop))
        edge.stop = stop
        yield
        await stop_background(app)
        await edge.http.close()
        await edge.rasa.close()
        if redis is not None:
            await redis.close()

    async def stop_background(app: web.Application) -> None:
        # Also on shutdown, before aiohttp waits for pending tasks: the worker would
        # otherwise hold the gateway up for its interval (and serve kills what outlives
        # its grace period).
        if edge.stop is not None:
            edge.stop.set()
        for task in list(edge.tasks):
            task.cancel()
        await asyncio.gather(*edge.tasks, return_exceptions=True)

    app.cleanup_ctx.append(http_session)
    app.on_shutdown.append(stop_background)

    async def rasa_ok(app: web.Application) -> bool:
        async with edge.rasa.get(f"{settings.rasa_url}/status") as response:  # type: ignore[union-attr]
            return response.status == 200

    async def actions_ok(app: web.Application) -> bool:
        edge.actions_checked_at = None  # ask now
        return await actions_alive(edge)

    app[HEALTH_CHECKS]["rasa"] = rasa_ok
    app[HEALTH_CHECKS]["action_server"] = actions_ok
    app.router.add_get("/wechat", verify)
    app.router.add_post("/wechat", receive)
