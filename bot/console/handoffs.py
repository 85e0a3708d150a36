"""人工接待: the handoff queue, a conversation's transcript, and what staff do with it.

    GET  /console/handoffs                 the queue: urgent first, then the longest waiting
    GET  /console/handoffs/live            the queue's rows when they change (long poll, JSON)
    GET  /console/handoffs/{id}            the transcript (intent and confidence per user
                                           message), notes, and the forms below
    GET  /console/handoffs/{id}/live       new transcript lines and notes (long poll, JSON)
    POST /console/handoffs/{id}/claim      接待: take a waiting handoff
    POST /console/handoffs/{id}/reply      answer the user in WeChat (customer-service API)
    POST /console/handoffs/{id}/note       an internal note for colleagues
    POST /console/handoffs/{id}/close      交还机器人: hand the conversation back to the bot
    GET  /console/conversations            recent conversations, for taking one over
    POST /console/conversations/take-over  接管: a staff member takes a conversation over

Staff see the handoffs of their area (the station of the bound veteran's household;
conversations of users not bound are the district centre's). Opening a transcript is a
view of a veteran's personal record and is audited, like every step taken here.
The pages work without JavaScript (reload to see news); bot/console/static/console.js
updates the queue and an open transcript in place (bot.console.live).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from typing import Any, Dict, List, Optional, Tuple

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console import live
from bot.console.auth import SignedIn, current_staff, now_utc, require_staff
from bot.console.pages import CASE_ROLES, CONSOLE_TEMPLATES, TRACKER, local, query_int, render_console, see_other
from bot.db.models import ComplaintCase, StaffAccount, Station
from bot.gateway.app import SESSION_FACTORY, SETTINGS, run_in_session, url_prefix
from bot.gateway.handoff import StaffActionError, hand_back, staff_reply, take_over
from bot.labels import intent_label
from bot.services import handoff as handoffs
from bot.services import staff as staff_service
from bot.services import veterans
from bot.services.metrics import SPECIAL_INTENT_LABELS
from bot.services.stations import local_time
from bot.services.transcripts import Line, TrackerReader

log = logging.getLogger(__name__)

REPLY_MAX = 600  # characters of one staff answer (WeChat splits longer texts anyway)
QUEUE_LIMIT = 200
RECENT_LIMIT = 50

REASONS = {"request_human": "用户要求转人工", "fallback": "机器人两次未能理解", "urgent": "紧急投诉",
           "staff": "工作人员主动接管"}
STATES = {"waiting": "等待接待", "claimed": "接待中", "closed": "已交还机器人"}
WITHDRAWN_LABEL = "用户已撤回"  # closed by the user before anyone took it (handoffs.WITHDRAWN_BY)


def state_label(view: handoffs.HandoffView) -> str:
    return WITHDRAWN_LABEL if view.withdrawn else STATES[view.state]

AUDIT_LABELS = {
    "handoff.view": "查看人工接待对话",
    "handoff.claim": "接待会话",
    "handoff.reply": "人工回复",
    "handoff.note": "添加内部备注",
    "handoff.close": "交还机器人",
    "conversation.take_over": "主动接管会话",
    "conversations.view": "查看最近会话",
}

DONE = {
    "claimed": "已接待。请在下方回复用户。",
    "sent": "回复已发送到用户的微信。",
    "noted": "备注已保存。",
    "closed": "会话已交还机器人，用户已收到通知。",
    "taken": "已接管会话，机器人暂停回复，用户已收到人工接入的提示。",
}
FAILED = {
    "window": ("回复已记入对话记录，但未能送达：该用户超过48小时未与公众号互动，微信不允许主动发送消息。"
               "请等用户再次留言后回复，或电话联系。此条已登记在发送失败记录中。"),
    "send": "回复已记入对话记录，但微信接口发送失败，已登记在发送失败记录中。请稍后重试或电话联系。",
    "back": "会话已交还机器人，但交还通知未能送达用户的微信（已登记在发送失败记录中）。",
}


# --- helpers ---------------------------------------------------------------------------------


def tracker(app: web.Application) -> TrackerReader:
    return app[TRACKER]


def staff_key(staff: SignedIn) -> str:
    """Who holds a handoff (handoffs.claimed_by): the account name, unique and stable."""
    return staff.username


def intent_name(intent: str) -> str:
    """An intent as staff read it (the name the trainers use stays beside it)."""
    return SPECIAL_INTENT_LABELS.get(intent) or intent_label(intent)


def waited(since: dt.datetime, now: dt.datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 1:
        return "不到1分钟"
    if minutes < 60:
        return f"{minutes}分钟"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}小时{minutes}分钟" if minutes else f"{hours}小时"
    days, hours = divmod(hours, 24)
    return f"{days}天{hours}小时" if hours else f"{days}天"


def short(text: str, limit: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _names(session: Session, usernames) -> Dict[str, str]:
    wanted = {u for u in usernames if u}
    if not wanted:
        return {}
    rows = session.execute(select(StaffAccount.username, StaffAccount.display_name)
                           .where(StaffAccount.username.in_(wanted))).all()
    return dict(rows)


def _station_names(session: Session, ids) -> Dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(Station.id, Station.name).where(Station.id.in_(wanted))).all())


def _visible_handoff(session: Session, staff: SignedIn, handoff_id: int) -> handoffs.HandoffView:
    """The handoff, or 404 when it does not exist or lies outside the staff member's area."""
    view = handoffs.get(session, handoff_id)
    if view is None or not staff.scope.station(view.station_id):
        raise web.HTTPNotFound()
    return view


async def _visible(request: web.Request) -> handoffs.HandoffView:
    staff = current_staff(request)
    handoff_id = query_int(request.match_info["id"])
    if handoff_id is None:
        raise web.HTTPNotFound()
    return await run_in_session(request.app, lambda session: _visible_handoff(session, staff, handoff_id))


def _audit(request: web.Request, action: str, object_type: str, object_id: Any, detail: Optional[str] = None):
    staff = current_staff(request)
    return run_in_session(request.app, lambda session: staff_service.audit(
        session, staff, action, object_type, object_id, detail, now_utc()))


async def _through_gateway(request: web.Request, step, *args: Any, **kwargs: Any):
    """Run a bot.gateway.handoff step (staff_reply, hand_back, take_over) with the gateway's
    database, HTTP session, Rasa URL and WeChat client (bot.gateway.wechat); raises
    StaffActionError when the gateway cannot reach WeChat."""
    from bot.gateway.wechat import WECHAT

    app = request.app
    edge = app.get(WECHAT)
    if edge is None or edge.rasa is None:
        raise StaffActionError("微信网关未启动，无法发送。")
    if edge.client is None:
        raise StaffActionError("未配置微信接口密钥（WECHAT_SECRET），无法向用户发送消息。")
    return await step(app[SESSION_FACTORY], edge.rasa, app[SETTINGS].rasa_url, edge.client, *args, **kwargs)


def _fragment(request: web.Request, template: str, **context: Any) -> str:
    """A piece of a page (the live updates send these)."""
    context.setdefault("staff", current_staff(request))
    context.setdefault("prefix", url_prefix(request.app[SETTINGS]))
    return request.app[CONSOLE_TEMPLATES].get_template(template).render(**context)


# --- the queue -----------------------------------------------------------------------------------


def _queue_rows(session: Session, reader: TrackerReader, staff: SignedIn) -> List[Dict[str, Any]]:
    now = local_time(now_utc())
    views = handoffs.queue(session, staff.scope, limit=QUEUE_LIMIT)
    last = reader.last_user_messages(v.openid for v in views)
    names = _names(session, (v.claimed_by for v in views))
    stations = _station_names(session, (v.station_id for v in views))
    rows = []
    for view in views:
        message = last.get(view.openid)
        rows.append({
            "id": view.id, "urgent": view.urgent, "reason": REASONS.get(view.reason, view.reason),
            "state": view.state, "state_label": STATES[view.state],
            "created": view.created_at.strftime("%m-%d %H:%M"), "waited": waited(view.created_at, now),
            "claimed_by": names.get(view.claimed_by or "", view.claimed_by),
            "mine": view.claimed_by == staff_key(staff),
            "station": stations.get(view.station_id, "区中心（未分配站点）"),
            "case_number": view.case_number,
            "last_text": short(message.text) if message else "",
            "last_at": message.at.strftime("%H:%M") if message else "",
        })
    return rows


def _queue_html(request: web.Request, rows: List[Dict[str, Any]]) -> Tuple[str, str]:
    html = _fragment(request, "handoff_queue_rows.html", rows=rows)
    return html, hashlib.sha256(html.encode("utf-8")).hexdigest()[:16]


async def _queue(request: web.Request) -> Tuple[str, str, int]:
    staff, reader = current_staff(request), tracker(request.app)
    rows = await run_in_session(request.app, lambda session: _queue_rows(session, reader, staff))
    html, sig = _queue_html(request, rows)
    return html, sig, len(rows)


@require_staff(roles=CASE_ROLES)
async def queue_page(request: web.Request) -> web.Response:
    html, sig, count = await _queue(request)
    return render_console(request, "handoffs.html", rows_html=html, sig=sig, count=count,
                          done=DONE.get(request.query.get("done", "")))


@require_staff(roles=CASE_ROLES)
async def queue_live(request: web.Request) -> web.Response:
    """The queue's rows once they differ from what the page shows (``sig``), else after the
    long-poll time anyway (waiting times move on)."""
    seen_sig = request.query.get("sig", "")
    changes = live.changes(request.app)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + live.LONG_POLL_SECONDS
    while True:
        version = changes.version
        html, sig, count = await _queue(request)
        remaining = deadline - loop.time()
        if sig != seen_sig or remaining <= 0:
            return web.json_response({"sig": sig, "html": html, "count": count})
        await changes.wait(version, min(live.RECHECK_SECONDS, remaining))


# --- a transcript ----------------------------------------------------------------------------------


def _lines_context(lines: List[Line]) -> List[Dict[str, Any]]:
    out = []
    for line in lines:
        out.append({
            "id": line.id, "kind": line.kind, "text": line.text, "at": line.at.strftime("%m-%d %H:%M:%S"),
            "intent": line.intent, "intent_label": intent_name(line.intent) if line.intent else None,
            "confidence": None if line.confidence is None else f"{line.confidence:.2f}",
            "low": line.confidence is not None and line.confidence < 0.5,
            "staff": line.staff, "buttons": line.buttons,
        })
    return out


def _detail(session: Session, staff: SignedIn, handoff_id: int, audit: bool) -> Dict[str, Any]:
    view = _visible_handoff(session, staff, handoff_id)
    now = now_utc()
    veteran = veterans.by_openid(session, view.openid)
    station = session.get(Station, view.station_id) if view.station_id is not None else None
    names = _names(session, (view.claimed_by, view.closed_by))
    case_id = None
    if view.case_number:
        case_id = session.execute(select(ComplaintCase.id).where(ComplaintCase.case_number == view.case_number)
                                  ).scalar_one_or_none()
    earlier = [h for h in handoffs.history_of(session, view.openid) if h.id != view.id]
    if audit:
        staff_service.audit(session, staff, "handoff.view", "handoff", view.id, None, now)
    return {
        "handoff": view, "reason": REASONS.get(view.reason, view.reason), "state_label": state_label(view),
        "claimed_by": names.get(view.claimed_by or "", view.claimed_by),
        "closed_by": names.get(view.closed_by or "", view.closed_by),
        "mine": view.claimed_by == staff_key(staff),
        "veteran_name": veteran.name if veteran is not None else None,
        "station": station.name if station is not None else "区中心（未分配站点）",
        "case_id": case_id, "earlier": len(earlier), "earlier_withdrawn": sum(h.withdrawn for h in earlier),
        "waited": waited(view.created_at, local_time(now)),
        "notes": handoffs.notes(session, view.id),
    }


def _state_sig(detail: Dict[str, Any]) -> str:
    view = detail["handoff"]
    return f"{view.state}:{view.claimed_by or ''}"


async def _show(request: web.Request, handoff_id: int, *, error: Optional[str] = None, draft: str = "",
                note_draft: str = "", status: int = 200) -> web.Response:
    staff = current_staff(request)
    detail = await run_in_session(request.app, lambda session: _detail(session, staff, handoff_id, audit=True))
    lines = await asyncio.to_thread(tracker(request.app).transcript, detail["handoff"].openid)
    failed = FAILED.get(request.query.get("failed", ""))
    return render_console(
        request, "handoff.html", status=status, lines=_lines_context(lines), after=lines[-1].id if lines else 0,
        sig=_state_sig(detail), notes_count=len(detail["notes"]), error=error or failed, draft=draft,
        note_draft=note_draft, done=None if failed else DONE.get(request.query.get("done", "")),
        reply_max=REPLY_MAX, note_max=handoffs.NOTE_MAX, local=local, **detail)


@require_staff(roles=CASE_ROLES)
async def handoff_page(request: web.Request) -> web.Response:
    view = await _visible(request)
    return await _show(request, view.id)


@require_staff(roles=CASE_ROLES)
async def handoff_live(request: web.Request) -> web.Response:
    """New transcript lines after ``after``; the notes when their number changed; ``stale``
    when the handoff's state changed (the page's forms no longer fit: reload)."""
    view = await _visible(request)
    staff = current_staff(request)
    after = query_int(request.query.get("after")) or 0
    seen_sig = request.query.get("sig", "")
    seen_notes = query_int(request.query.get("notes")) or 0
    reader, changes = tracker(request.app), live.changes(request.app)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + live.LONG_POLL_SECONDS
    while True:
        version = changes.version
        detail = await run_in_session(request.app, lambda session: _detail(session, staff, view.id, audit=False))
        lines = await asyncio.to_thread(reader.transcript, view.openid, after)
        notes_changed = len(detail["notes"]) != seen_notes
        # "stale" once the page was told: it waits for a reload, not for more of the same news.
        stale = seen_sig != "stale" and _state_sig(detail) != seen_sig
        remaining = deadline - loop.time()
        if lines or notes_changed or stale or remaining <= 0:
            return web.json_response({
                "after": lines[-1].id if lines else after,
                "html": _fragment(request, "handoff_lines.html", lines=_lines_context(lines)) if lines else "",
                "notes": len(detail["notes"]),
                "notes_html": _fragment(request, "handoff_notes.html", notes=detail["notes"]) if notes_changed else None,
                "stale": stale,
            })
        await changes.wait(version, min(live.RECHECK_SECONDS, remaining))


# --- what staff do ---------------------------------------------------------------------------------


def _done(request: web.Request, handoff_id: int, code: str, key: str = "done") -> web.Response:
    return see_other(request, f"/console/handoffs/{handoff_id}?{key}={code}")


@require_staff(roles=CASE_ROLES)
async def claim(request: web.Request) -> web.Response:
    view = await _visible(request)
    staff = current_staff(request)

    def work(session: Session):
        handoffs.claim(session, view.id, staff_key(staff), now_utc())
        staff_service.audit(session, staff, "handoff.claim", "handoff", view.id, None, now_utc())

    try:
        await run_in_session(request.app, work)
    except handoffs.HandoffError as error:
        return await _show(request, view.id, error=str(error), status=409)
    live.notify(request.app)
    return _done(request, view.id, "claimed")


@require_staff(roles=CASE_ROLES)
async def reply(request: web.Request) -> web.Response:
    view = await _visible(request)
    staff = current_staff(request)
    text = str((await request.post()).get("text", "")).strip()
    if not text:
        return await _show(request, view.id, error="回复内容不能为空。", status=400)
    if len(text) > REPLY_MAX:
        return await _show(request, view.id, error=f"回复请不要超过{REPLY_MAX}字（现在{len(text)}字），可以分几条发送。",
                           draft=text, status=400)
    try:
        result = await _through_gateway(request, staff_reply, view.id, staff_key(staff), text,
                                        staff_name=staff.display_name)
    except StaffActionError as error:
        return await _show(request, view.id, error=str(error), draft=text, status=409)
    await _audit(request, "handoff.reply", "handoff", view.id, None if result.ok else f"未送达 {result.errcode}")
    live.notify(request.app)
    if not result.ok:
        return _done(request, view.id, "window" if result.window_closed else "send", key="failed")
    return _done(request, view.id, "sent")


@require_staff(roles=CASE_ROLES)
async def add_note(request: web.Request) -> web.Response:
    view = await _visible(request)
    staff = current_staff(request)
    text = str((await request.post()).get("text", ""))

    def work(session: Session):
        handoffs.add_note(session, view.id, staff.display_name, text, now_utc())
        staff_service.audit(session, staff, "handoff.note", "handoff", view.id, None, now_utc())

    try:
        await run_in_session(request.app, work)
    except handoffs.HandoffError as error:
        return await _show(request, view.id, error=str(error), note_draft=text.strip(), status=400)
    live.notify(request.app)
    return _done(request, view.id, "noted")


@require_staff(roles=CASE_ROLES)
async def close(request: web.Request) -> web.Response:
    view = await _visible(request)
    staff = current_staff(request)
    if view.state == "closed":
        return await _show(request, view.id, error="这个会话已经交还给机器人了。", status=409)
    try:  # who may hand back (the claimer, an admin, district staff) is the service's rule
        result = await _through_gateway(request, hand_back, view.id, staff_key(staff), staff_name=staff.display_name,
                                        scope=staff.scope)
    except (handoffs.HandoffError, StaffActionError) as error:
        return await _show(request, view.id, error=str(error), status=409)
    await _audit(request, "handoff.close", "handoff", view.id)
    live.notify(request.app)
    if not result.ok:
        return _done(request, view.id, "back", key="failed")
    return _done(request, view.id, "closed")


# --- recent conversations and taking one over ----------------------------------------------------


def _recent(session: Session, reader: TrackerReader, staff: SignedIn) -> List[Dict[str, Any]]:
    recent = reader.recent_conversations(limit=RECENT_LIMIT * 4)
    bound = handoffs.stations_for_openids(session, (c.sender_id for c in recent))
    open_ones = handoffs.open_for(session, (c.sender_id for c in recent))
    rows = []
    for conversation in recent:
        station_id, name = bound.get(conversation.sender_id, (None, None))
        if not staff.scope.station(station_id):
            continue
        rows.append({
            "openid": conversation.sender_id, "at": conversation.last_at.strftime("%m-%d %H:%M"),
            "text": short(conversation.last_text, 80), "who": name or "未绑定身份的用户",
            "handoff_id": open_ones.get(conversation.sender_id),
        })
        if len(rows) >= RECENT_LIMIT:
            break
    staff_service.audit(session, staff, "conversations.view", "conversation", None, None, now_utc())
    return rows


async def _conversations(request: web.Request, error: Optional[str] = None, status: int = 200) -> web.Response:
    staff, reader = current_staff(request), tracker(request.app)
    rows = await run_in_session(request.app, lambda session: _recent(session, reader, staff))
    return render_console(request, "conversations.html", rows=rows, error=error, status=status)


@require_staff(roles=CASE_ROLES)
async def conversations_page(request: web.Request) -> web.Response:
    return await _conversations(request)


async def _take_over(request: web.Request, openid: str, station_id: Optional[int]) -> handoffs.HandoffView:
    """Pause the user's conversation for this staff member (raises StaffActionError)."""
    staff = current_staff(request)
    view = await _through_gateway(request, take_over, openid, staff_key(staff), staff_name=staff.display_name,
                                  station_id=station_id)
    await _audit(request, "conversation.take_over", "handoff", view.id)
    live.notify(request.app)
    return view


@require_staff(roles=CASE_ROLES)
async def take_over_post(request: web.Request) -> web.Response:
    staff = current_staff(request)
    openid = str((await request.post()).get("openid", "")).strip()[:64]
    reader = tracker(request.app)

    def scope(session: Session) -> Optional[int]:
        station_id = handoffs.station_for_openid(session, openid)
        if not openid or not staff.scope.station(station_id):
            raise web.HTTPNotFound()
        return station_id

    station_id = await run_in_session(request.app, scope)
    if await asyncio.to_thread(reader.latest_event_id, openid) == 0:
        raise web.HTTPNotFound()  # no such conversation
    try:
        view = await _take_over(request, openid, station_id)
    except StaffActionError as error:
        return await _conversations(request, error=str(error), status=409)
    return _done(request, view.id, "taken")


@require_staff(roles=CASE_ROLES)
async def take_over_case(request: web.Request) -> web.Response:
    """接管 from a complaint's page: the complainant's conversation, in the case's area (the
    station handling it, else the one it is about, so the staff member keeps seeing it)."""
    from bot.console.complaints import case_id_of, show_case, visible_case

    staff = current_staff(request)
    case_id = case_id_of(request)

    def scope(session: Session) -> Tuple[str, Optional[int]]:
        view = visible_case(session, staff, case_id, now_utc())
        row = session.get(ComplaintCase, view.id)
        if row is None or not row.openid or view.reply_channel == "anonymous":
            raise web.HTTPNotFound()
        return row.openid, view.assigned_station_id or view.station_id or handoffs.station_for_openid(
            session, row.openid)

    openid, station_id = await run_in_session(request.app, scope)
    try:
        view = await _take_over(request, openid, station_id)
    except StaffActionError as error:
        return await show_case(request, staff, case_id, status=409, error=("take-over", str(error)))
    return _done(request, view.id, "taken")


def setup(app: web.Application) -> None:
    app[live.CHANGES] = live.Changes()
    app.router.add_get("/console/handoffs", queue_page)
    app.router.add_get("/console/handoffs/live", queue_live)
    app.router.add_get("/console/handoffs/{id}", handoff_page)
    app.router.add_get("/console/handoffs/{id}/live", handoff_live)
    app.router.add_post("/console/handoffs/{id}/claim", claim)
    app.router.add_post("/console/handoffs/{id}/reply", reply)
    app.router.add_post("/console/handoffs/{id}/note", add_note)
    app.router.add_post("/console/handoffs/{id}/close", close)
    app.router.add_get("/console/conversations", conversations_page)
    app.router.add_post("/console/conversations/take-over", take_over_post)
    app.router.add_post(r"/console/complaints/{case_id:\d+}/take-over", take_over_case)
