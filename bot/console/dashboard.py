"""数据看板: the staff console's dashboard.

    GET /console/dashboard?days=7|30    the last 7 (default) or 30 days, Beijing time

Open to every role. The conversation figures (messages, conversations, top intents,
fallback rate) cover the whole bot (全区) and come from Rasa's tracker store, read
through the console's read-only engine (bot.console.pages.TRACKER). The case figures (handoffs, complaints) are limited to the staff member's area;
trainers do not see them. The figures and their definitions: bot.services.metrics.
Charts are inline SVG drawn on the server (bot.console.charts): no script.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Dict, List, Optional

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.clock import SHANGHAI
from bot.console.auth import current_staff, now_utc, require_staff
from bot.console.charts import bar_chart, hbar_chart
from bot.console.pages import CASE_ROLES, TRACKER, local, render_console, scope_text
from bot.gateway.app import run_in_session
from bot.services import metrics

log = logging.getLogger(__name__)

WEEKDAYS = "一二三四五六日"


def percent(value: Optional[float]) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def duration(seconds: Optional[float]) -> str:
    """3分20秒, 1小时5分, 2天3小时; — when there is nothing to measure."""
    if seconds is None:
        return "—"
    total = max(0, int(round(seconds)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时"
    if hours:
        return f"{hours}小时{minutes}分"
    if minutes:
        return f"{minutes}分{secs}秒"
    return f"{secs}秒"


def _day(day: dt.date) -> str:
    return f"{day.isoformat()}（周{WEEKDAYS[day.weekday()]}）"


def conversation_view(figures: metrics.ConversationFigures) -> Dict[str, Any]:
    conversations = dict(figures.conversations_by_day)
    days = [{"day": _day(day), "messages": n, "conversations": conversations[day]}
            for day, n in figures.messages_by_day]
    messages_chart = bar_chart(
        "每日用户消息数", [(day.strftime("%m-%d"), n) for day, n in figures.messages_by_day],
        x_label="日期（北京时间）", y_label="用户消息（条）", unit="条",
        tooltips=[f"{_day(day)}：用户消息{n}条，会话{conversations[day]}个" for day, n in figures.messages_by_day])
    intents = [{"label": i.label, "intent": i.intent, "count": i.count, "share": percent(i.share)}
               for i in figures.top_intents]
    intents_chart = hbar_chart(
        f"热门意图（前{metrics.TOP_INTENTS}位）",
        [(i.label, i.count, f"{i.count}条（{percent(i.share)}）") for i in figures.top_intents],
        x_label="用户消息（条）", y_label="意图",
        highlight=[n for n, i in enumerate(figures.top_intents) if i.intent == metrics.FALLBACK_INTENT])
    return {"days": days, "messages_chart": messages_chart, "intents": intents, "intents_chart": intents_chart,
            "messages": figures.messages, "conversations": figures.conversations, "users": figures.users,
            "fallbacks": figures.fallbacks, "fallback_rate": percent(figures.fallback_rate)}


def case_view(figures: metrics.CaseFigures, conversations: Optional[int]) -> Dict[str, Any]:
    h, c = figures.handoffs, figures.complaints
    states = [{"state": state, "name": name, "count": n} for state, name, n in c.by_state]
    return {
        "handoffs": h.opened, "urgent": h.urgent, "claimed": h.claimed,
        "handoff_rate": percent(h.rate(conversations)) if conversations is not None else "—",
        "wait_median": duration(h.wait_median), "wait_p90": duration(h.wait_p90),
        "waiting_now": h.waiting_now, "oldest_waiting": local(h.oldest_waiting),
        "states": states, "open_cases": c.open_cases, "overdue": c.overdue,
        "registered": c.registered, "closed": c.closed,
        "states_chart": bar_chart("在办投诉案件：各状态件数（当前）", [(s["name"], s["count"]) for s in states],
                                  x_label="案件状态", y_label="案件（件）", unit="件", width=560, height=260),
    }


@require_staff(roles=("admin", "district", "station", "trainer"))
async def dashboard(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    now = now_utc()
    period = metrics.period(metrics.period_days(request.query.get("days")), now)

    conversation: Optional[Dict[str, Any]] = None
    try:
        figures = await asyncio.to_thread(metrics.conversation_figures, request.app[TRACKER].engine, period)
        conversation = conversation_view(figures)
    except SQLAlchemyError as error:
        # Only the type: the message can hold the tracker store's address.
        log.error("dashboard: tracker store unreadable (%s)", type(error).__name__)

    cases: Optional[Dict[str, Any]] = None
    if staff.role in CASE_ROLES:
        case_figures = await run_in_session(request.app, lambda session: metrics.case_figures(
            session, staff.scope, period, now))
        if case_figures is not None:
            cases = case_view(case_figures, conversation["conversations"] if conversation else None)

    periods: List[Dict[str, Any]] = [{"days": d, "current": d == period.days} for d in metrics.PERIODS]
    return render_console(
        request, "dashboard.html", period=period, periods=periods, conversation=conversation, cases=cases,
        scope=scope_text(staff),
        first_day=period.first_day.isoformat(), last_day=period.last_day.isoformat(),
        updated=now.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"))


def setup(app: web.Application) -> None:
    app.router.add_get("/console/dashboard", dashboard)
