"""预约 in the staff console: a station's appointments day by day, and recording who came.

    GET  /console/appointments?station=<code or id>&day=YYYY-MM-DD
                                                 the day view (default: the staff member's own
                                                 station, else the first they see; today)
    POST /console/appointments/{id}/attended     登记已到场 (status 已办理)
    POST /console/appointments/{id}/no-show      登记未到场
    POST /console/appointments/{id}/undo         撤销当天所做的登记 (back to 已预约)

Station staff see their area's stations, district staff their district's tree, admins
all; trainers none (403). A station or an appointment outside the area answers 404,
exactly as one that does not exist. The day view shows veterans' names, so every
opening is written to the audit log, as is every record of arrival and its undoing.
Recording is a guarded UPDATE (``WHERE status = 'booked'``): when two staff click at
once, one record is made and the other is told politely who made it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.auth import SignedIn, current_staff, now_utc, require_staff
from bot.console.pages import CASE_ROLES, render_console, see_other
from bot.db.models import Station, StationService
from bot.gateway.app import run_in_session
from bot.services import appointments as ap
from bot.services import staff as staff_service
from bot.services.stations import format_day, format_periods, local_time

AUDIT_LABELS = {
    "appointments.view": "查看预约日程",
    "appointments.attended": "登记已到场",
    "appointments.no_show": "登记未到场",
    "appointments.undo": "撤销到场登记",
}

BASE = "/console/appointments"
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
TIER_INDENT = {"district": "", "street": "\u3000", "community": "\u3000\u3000"}
DONE_KINDS = ("attended", "no_show", "undo")


# --- what the page needs ------------------------------------------------------------------


def _choices(session: Session, staff: SignedIn) -> List[Station]:
    """The stations the staff member may open that take bookings, in the tree's order
    (codes sort a street's communities right after it)."""
    return list(session.execute(
        select(Station).where(Station.id.in_(select(StationService.station_id)),
                              staff.scope.where_station(Station.id))
        .order_by(Station.code)
    ).scalars())


def _station(session: Session, staff: SignedIn, asked: str, choices: List[Station]) -> Optional[Station]:
    """The station asked for (by code or id), 404 when it does not exist or lies outside
    the staff member's area; without one, their own station, else the first they see."""
    if asked:
        station = (session.get(Station, int(asked)) if asked.isdigit() and len(asked) < 12 else
                   session.execute(select(Station).where(Station.code == asked)).scalar_one_or_none())
        if station is None or not staff.scope.station(station.id):
            raise web.HTTPNotFound()
        return station
    own = [s for s in choices if s.id == staff.station_id]
    return (own or choices or [None])[0]


def _day(raw: Optional[str], today: dt.date) -> Tuple[dt.date, Optional[str]]:
    if not raw:
        return today, None
    try:
        day = dt.date.fromisoformat(raw.strip()[:10])
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        return today, "日期格式有误（应为“2026-12-03”的形式），下面显示的是今天的预约。"
    return day, None


def _actions(booking: ap.DayBooking, now: dt.datetime) -> List[Dict[str, str]]:
    """The buttons a booking's row offers now (the service checks again on submit)."""
    today = local_time(now).date()
    buttons = []
    if booking.status == "booked" and booking.start.date() <= today:
        buttons.append({"label": "已到场", "path": f"{BASE}/{booking.id}/attended"})
        if booking.start <= local_time(now):
            buttons.append({"label": "未到场", "path": f"{BASE}/{booking.id}/no-show"})
    if booking.status in ("attended", "no_show") and booking.marked_at and booking.marked_at.date() == today:
        buttons.append({"label": "撤销登记", "path": f"{BASE}/{booking.id}/undo"})
    return buttons


def _link(station: Station, day: dt.date, **extra: Any) -> str:
    return f"{BASE}?" + urlencode({"station": station.code, "day": day.isoformat(), **extra})


def _summary(schedule: ap.DaySchedule) -> str:
    counts = Counter(b.status for b in schedule.bookings)
    held = counts["booked"] + counts["attended"] + counts["no_show"]
    if not held and not counts["cancelled"]:
        return "当日没有预约。"
    text = (f"当日预约{held}人：已办理{counts['attended']}人，未到场{counts['no_show']}人，"
            f"尚未登记{counts['booked']}人")
    return text + (f"；另有已取消{counts['cancelled']}个。" if counts["cancelled"] else "。")


def _page(staff: SignedIn, session: Session, asked: str, day: dt.date, now: dt.datetime) -> Dict[str, Any]:
    """Everything the day view shows (one audit line for opening it)."""
    choices = _choices(session, staff)
    station = _station(session, staff, asked, choices)
    if station is None:
        return {"station": None}
    if station not in choices:
        choices.append(station)
    schedule = ap.day_schedule(session, station.id, day)
    staff_service.audit(session, staff, "appointments.view", "station", station.id, day.isoformat(), now)
    today = local_time(now).date()
    return {
        "station": station, "schedule": schedule,
        "choices": [{"code": s.code, "label": TIER_INDENT.get(s.tier, "") + s.name, "selected": s.id == station.id}
                    for s in choices],
        "day_iso": day.isoformat(), "day_label": format_day(day),
        "relative": "今天" if day == today else "昨天" if day == today - dt.timedelta(days=1)
        else "明天" if day == today + dt.timedelta(days=1) else "",
        "hours": format_periods(schedule.periods) if schedule.periods else "",
        "summary": _summary(schedule),
        "actions": {b.id: _actions(b, now) for b in schedule.bookings},
        "previous": _link(station, day - dt.timedelta(days=1)) if day > FIRST_DAY else None,
        "next": _link(station, day + dt.timedelta(days=1)) if day < LAST_DAY else None,
        "today": _link(station, today),
    }


def _render(request: web.Request, page: Dict[str, Any], message: Optional[str] = None,
            done: Optional[str] = None, status: int = 200) -> web.Response:
    if page["station"] is None:
        return render_console(request, "appointments.html", status=status, station=None,
                              message="您的账号所辖范围内没有办理预约的站点。", done=None)
    return render_console(request, "appointments.html", status=status, message=message, done=done,
                          clock=ap.format_clock, **page)


# --- the pages ------------------------------------------------------------------------------


@require_staff(roles=CASE_ROLES)
async def day_view(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    asked = request.query.get("station", "").strip()[:40]
    now = now_utc()
    day, problem = _day(request.query.get("day"), local_time(now).date())
    kind = request.query.get("done", "")
    done_id = request.query.get("appointment", "")

    page = await run_in_session(request.app, lambda session: _page(staff, session, asked, day, now))
    done = None
    if page["station"] is not None and kind in DONE_KINDS:
        booking = next((b for b in page["schedule"].bookings if str(b.id) == done_id), None)
        if booking is not None:
            done = (f"预约{booking.code}的登记已撤销，恢复为“已预约”。" if kind == "undo"
                    else f"预约{booking.code}已登记为“{ap.STATUS_NAMES[kind]}”。")
    return _render(request, page, message=problem, done=done)


Marker = Callable[[Session, int, SignedIn, dt.datetime], ap.MarkResult]

MARKERS: Dict[str, Tuple[str, Marker]] = {
    "attended": ("appointments.attended",
                 lambda s, i, staff, now: ap.mark_attended(s, i, staff.id, now, scope=staff.scope)),
    "no-show": ("appointments.no_show",
                lambda s, i, staff, now: ap.mark_no_show(s, i, staff.id, now, scope=staff.scope)),
    "undo": ("appointments.undo", lambda s, i, staff, now: ap.undo_mark(s, i, now, scope=staff.scope)),
}


@require_staff(roles=CASE_ROLES)
async def mark(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    kind = request.match_info["kind"]
    appointment_id = int(request.match_info["id"]) if len(request.match_info["id"]) < 12 else None
    if kind not in MARKERS or appointment_id is None:
        raise web.HTTPNotFound()
    action, marker = MARKERS[kind]

    def work(session: Session) -> Tuple[ap.MarkResult, str, Optional[Dict[str, Any]]]:
        now = now_utc()
        result = marker(session, appointment_id, staff, now)
        if result.booking is None:  # none, or another area's: the same answer
            raise web.HTTPNotFound()
        station_code = session.get(Station, ap.appointment_station(session, appointment_id)).code
        if result.ok:
            staff_service.audit(session, staff, action, "appointment", appointment_id,
                                f"{result.booking.code} → {result.booking.status_name}", now)
            return result, station_code, None
        # Refused: the day view again, as it now stands, with the reason on top.
        return result, station_code, _page(staff, session, station_code, result.booking.start.date(), now)

    result, station_code, page = await run_in_session(request.app, work)
    booking = result.booking
    assert booking is not None
    if page is not None:
        return _render(request, page, message=result.message, status=409)
    query = urlencode({"station": station_code, "day": booking.start.date().isoformat(),
                       "done": "undo" if kind == "undo" else booking.status, "appointment": booking.id})
    return see_other(request, f"{BASE}?{query}#a{booking.id}")


def setup(app: web.Application) -> None:
    app.router.add_get(BASE, day_view)
    app.router.add_post(BASE + r"/{id:\d+}/{kind:attended|no-show|undo}", mark)
