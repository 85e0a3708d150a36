"""投诉登记簿: the console's pages of the complaint and petition register.

    GET  /console/complaints                      the register: newest first, filtered, paged by id
    GET  /console/complaints/{id}                 one case: its fields, history and the forms
    POST /console/complaints/{id}/classify        分类指导 (受理, category, 承办 unit)
    POST /console/complaints/{id}/reject          不予受理 (with the reason told to the user)
    POST /console/complaints/{id}/handle          承办
    POST /console/complaints/{id}/answer          答复 (sent to the user through the outbox)
    POST /console/complaints/{id}/follow-up       回访
    POST /console/complaints/{id}/close           办结
    POST /console/complaints/{id}/note            内部备注 (never shown to the user)
    POST /console/complaints/{id}/phone           查看完整号码 (decrypted, audited)

Who sees what: a case belongs to the station it is about (``station_id``) and to the
station handling it (``assigned_station_id``); station staff see the cases of either
in their area, district staff their district's and the cases with no station, admins
every case, trainers none (403). A case outside the area answers 404, the very page
a case that does not exist answers. Opening a case is a view of a veteran's personal
record: every view, every change and every reveal of the phone number is audited.

The workflow's rules are bot.services.complaints': a step it refuses is shown on the
case's page with what the staff member typed kept in the form.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.auth import SignedIn, current_staff, now_utc, require_staff
from bot.console.pages import CASE_ROLES, local, query_int, render_console, see_other
from bot.db.models import COMPLAINT_STATES, ComplaintCase, Station, Veteran
from bot.gateway.app import VAULT, run_in_session
from bot.pii import NotDecryptable
from bot.services import complaints as cs
from bot.services import handoff
from bot.services import staff as staff_service

log = logging.getLogger(__name__)

AUDIT_LABELS = {
    "complaint.view": "查看投诉",
    "complaint.transition": "办理投诉",
    "complaint.note": "添加投诉备注",
    "complaint.phone": "查看投诉人完整电话",
}

PAGE = 50  # cases per page of the register
COUNT_CAP = 10000  # the register counts this far, no further (a long register stays quick)
SUMMARY = 40  # characters of the description in the register
NOTE_MAX = 1000  # an internal note or a step's remark
REASON_MAX = 1000  # the reason of 不予受理 (sent to the user)
ANSWER_MAX = cs.MAX_TEXT
ASSIGNED_MAX = 100  # complaint_cases.assigned_to
MAX_ID = 2 ** 31 - 1

NO_STATION = "none"  # the station filter's value for cases with no station at all

REPLY_CHANNEL_NAMES = {
    "bound_phone": "已绑定的手机号",
    "case_phone": "另留电话",
    "wechat": "微信答复（未留电话）",
    "anonymous": "匿名（不答复、不关联身份）",
}
EVENT_KIND_NAMES = {
    "note": "内部备注",
    "user_added_information": "反映人补充情况",
    "attachment": "反映人发送附件",
}
ACTOR_NAMES = {"user": "反映人", "bot": "系统", "system": "系统"}
PRIORITY_NAMES = {1: "1（最高）", 2: "2", 3: "3（一般）"}

# The register's actions that staff take here, by the path segment of their form.
# (重新办理 is the user's: a 不满意 rating reopens the case, bot.services.complaints.rate.)
STAFF_STEPS = {"classify": cs.CLASSIFY, "reject": cs.REJECT, "handle": cs.HANDLE, "answer": cs.ANSWER,
               "follow-up": cs.FOLLOW_UP, "close": cs.CLOSE}
_PATH_OF = {action: path for path, action in STAFF_STEPS.items()}
# The steps offered in each state, read from the register's transition table (the one
# rule of what may follow what): (path segment, button and form title).
STEPS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    state: tuple((_PATH_OF[action], action) for action in allowed.values() if action in _PATH_OF)
    for state, allowed in cs.TRANSITIONS.items()
}
ACTIONS = (*STAFF_STEPS, "note")
ACTION_NAMES = {**STAFF_STEPS, "note": "内部备注"}
# What each form may carry (kept and shown again when a step is refused).
FIELDS = {
    "classify": ("category", "station", "assigned_to", "priority", "note"),
    "reject": ("reason",),
    "handle": ("note",),
    "answer": ("answer_text", "note"),
    "follow-up": ("note",),
    "close": ("note",),
    "note": ("note",),
}
FIELD_NAMES = {"category": "问题类别", "station": "承办服务站", "assigned_to": "承办部门", "priority": "优先级",
               "note": "说明", "answer_text": "答复内容", "reason": "不予受理的理由"}
FREE_TEXT = ("assigned_to", "note", "answer_text", "reason")  # what the staff member typed (not chose)
DONE = {
    "classify": "已受理并转办。",
    "reject": "已作不予受理处理。",
    "handle": "已转入承办。",
    "answer": "已答复。",
    "follow-up": "已开始回访。",
    "close": "已办结。",
    "note": "备注已保存。",
}


class Refused(Exception):
    """A step not taken (the rules or the form said no); ``message`` is Chinese."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


# --- data scope -------------------------------------------------------------------------------


def visible_case(session: Session, staff: SignedIn, case_id: Optional[int], now: dt.datetime) -> cs.CaseView:
    """The case, or 404 both when there is none and when it is outside the staff member's area."""
    view = cs.get_case(session, case_id, now=now) if case_id is not None else None
    if view is None or not staff.scope.case(view):
        raise web.HTTPNotFound()
    return view


def case_id_of(request: web.Request) -> Optional[int]:
    value = query_int(request.match_info.get("case_id"))
    return value if value is not None and 0 < value <= MAX_ID else None


def station_names(session: Session) -> Dict[int, str]:
    return dict(session.execute(select(Station.id, Station.name)).all())


def visible_stations(session: Session, staff: SignedIn) -> List[Tuple[int, str]]:
    """The stations of the staff member's area, district first, then by code."""
    ids = sorted(staff.scope.station_ids)
    if not ids:
        return []
    rows = session.execute(select(Station.id, Station.name, Station.tier, Station.code)
                           .where(Station.id.in_(ids))).all()
    order = {"district": 0, "street": 1, "community": 2}
    rows.sort(key=lambda r: (r.code.split("-")[:2], order.get(r.tier, 3), r.code))
    return [(r.id, r.name) for r in rows]


# --- the register ---------------------------------------------------------------------------


def short(text: str, limit: int = SUMMARY) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "…"


def day(value: Optional[dt.datetime]) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else ""


def minute(value: Optional[dt.datetime]) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def state_label(view: cs.CaseView) -> str:
    return "已办结（不予受理）" if view.rejected else cs.STATE_NAMES[view.state]


def station_text(view: cs.CaseView, names: Mapping[int, str]) -> str:
    about = names.get(view.station_id) if view.station_id is not None else None
    handling = names.get(view.assigned_station_id) if view.assigned_station_id is not None else None
    if about and handling and about != handling:
        return f"{about}（承办：{handling}）"
    return about or (f"承办：{handling}" if handling else "未分配站点")


def read_filters(request: web.Request, staff: SignedIn, stations: List[Tuple[int, str]]
                 ) -> Tuple[Dict[str, str], bool]:
    """The register's filters from the query string: only values the page offers are
    kept; anything else is ignored (and the page says so, without an error)."""
    query = request.query
    kept: Dict[str, str] = {}
    ignored = False
    state = query.get("state", "")
    if state:
        if state in COMPLAINT_STATES:
            kept["state"] = state
        else:
            ignored = True
    category = query.get("category", "")
    if category:
        if category in cs.default_rules().category_names:
            kept["category"] = category
        else:
            ignored = True
    station = query.get("station", "")
    if station:
        if station == NO_STATION and staff.scope.unassigned:
            kept["station"] = station
        elif query_int(station) in {sid for sid, _ in stations}:
            kept["station"] = str(query_int(station))
        else:
            ignored = True
    for flag in ("overdue", "urgent"):
        value = query.get(flag, "")
        if value == "1":
            kept[flag] = "1"
        elif value:
            ignored = True
    for key in ("before", "after"):
        value = query.get(key, "")
        if value and query_int(value) is None:
            ignored = True
    return kept, ignored


def filter_arguments(kept: Mapping[str, str], staff: SignedIn) -> Dict[str, Any]:
    arguments: Dict[str, Any] = dict(state=kept.get("state"), category=kept.get("category"),
                                     overdue=True if kept.get("overdue") else None,
                                     urgent=True if kept.get("urgent") else None, scope=staff.scope)
    station = kept.get("station")
    if station == NO_STATION:
        arguments["unrouted"] = True
    elif station:
        arguments["station_id"] = int(station)
    return arguments


def page_link(kept: Mapping[str, str], **more: Any) -> str:
    return "/console/complaints" + ("?" + urlencode({**kept, **more}) if kept or more else "")


@require_staff(roles=CASE_ROLES)
async def list_page(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    before = query_int(request.query.get("before"))
    after = query_int(request.query.get("after")) if before is None else None

    def work(session: Session) -> Dict[str, Any]:
        now = now_utc()
        stations = visible_stations(session, staff)
        kept, ignored = read_filters(request, staff, stations)
        arguments = filter_arguments(kept, staff)
        views = cs.list_cases(session, now=now, limit=PAGE + 1, before_id=before, after_id=after, **arguments)
        more = len(views) > PAGE  # one more than a page: there is a further page that way
        views = views[-PAGE:] if after is not None else views[:PAGE]

        def exists(**edge: int) -> bool:
            return bool(cs.list_cases(session, now=now, limit=1, **edge, **arguments))

        newer = older = False
        if views:
            newer = more if after is not None else (before is not None and exists(after_id=views[0].id))
            older = more if after is None else exists(before_id=views[-1].id)
        total = cs.count_cases(session, now=now, cap=COUNT_CAP + 1, **arguments)
        names = station_names(session)
        rows = [{
            "id": v.id, "number": v.case_number, "created": minute(v.created_at), "category": v.category,
            "state": state_label(v), "due": day(v.due_at) if v.state != "closed" else "",
            "overdue": v.is_overdue, "station": station_text(v, names), "urgent": v.urgent,
            "summary": short(v.description),
        } for v in views]
        return dict(rows=rows, kept=kept, ignored=ignored, stations=stations, total=total,
                    newer_link=page_link(kept, after=views[0].id) if newer and views else None,
                    older_link=page_link(kept, before=views[-1].id) if older and views else None,
                    first_link=page_link(kept) if (before is not None or after is not None) else None)

    context = await run_in_session(request.app, work)
    return render_console(
        request, "complaints_list.html", states=[(s, cs.STATE_NAMES[s]) for s in COMPLAINT_STATES],
        categories=cs.default_rules().category_names, sees_unassigned=staff.scope.unassigned,
        no_station=NO_STATION, count_cap=COUNT_CAP, **context)


# --- one case --------------------------------------------------------------------------------


def event_rows(session: Session, case_id: int) -> List[Dict[str, str]]:
    rows = []
    for event in cs.history(session, case_id):
        if event.kind == "transition":
            what = event.action or ""
            change = (f"{cs.STATE_NAMES[event.from_state]} → " if event.from_state else "") + \
                cs.STATE_NAMES[event.to_state or "registered"]
        else:
            what, change = EVENT_KIND_NAMES.get(event.kind, event.kind), ""
        rows.append({"at": event.happened_at.strftime("%Y-%m-%d %H:%M:%S"), "what": what, "change": change,
                     "actor": ACTOR_NAMES.get(event.actor, event.actor), "note": event.note or "",
                     "internal": event.kind == "note"})
    return rows


def case_context(session: Session, staff: SignedIn, view: cs.CaseView) -> Dict[str, Any]:
    names = station_names(session)
    row = session.get(ComplaintCase, view.id)
    veteran = None
    phone_masked = view.phone_masked
    if view.veteran_id is not None:
        found = session.execute(select(Veteran.name, Veteran.phone_masked)
                                .where(Veteran.id == view.veteran_id)).one_or_none()
        if found is not None:
            veteran = found.name
            if view.reply_channel == "bound_phone":
                phone_masked = found.phone_masked
    return dict(
        case=view, state_text=state_label(view), events=event_rows(session, view.id),
        about=names.get(view.station_id, "") if view.station_id is not None else "",
        handling_station=names.get(view.assigned_station_id, "") if view.assigned_station_id is not None else "",
        channel=REPLY_CHANNEL_NAMES.get(view.reply_channel, view.reply_channel),
        phone_masked=phone_masked, veteran=veteran, notifies=view.reply_channel != "anonymous" and
        row is not None and row.openid is not None,
        created=local(view.created_at), accepted=local(view.accepted_at), changed=local(view.state_changed_at),
        closed=local(view.closed_at), due=day(view.due_at) if view.state != "closed" else "",
        reply_by=view.reply_by.strftime("%Y-%m-%d") if view.reply_by else "",
        priority=PRIORITY_NAMES.get(view.priority, str(view.priority)),
        steps=STEPS[view.state], assign_stations=visible_stations(session, staff),
        # The user's conversation (not for anonymous cases): open with staff, or taken over from here.
        in_chat=row is not None and row.openid is not None and view.reply_channel != "anonymous",
        handoff_id=handoff.open_for(session, [row.openid]).get(row.openid) if row is not None and row.openid else None,
    )


async def show_case(request: web.Request, staff: SignedIn, case_id: Optional[int], *, status: int = 200,
                    error: Optional[Tuple[str, str]] = None, values: Optional[Mapping[str, str]] = None,
                    done: Optional[str] = None, reveal: bool = False) -> web.Response:
    """The case's page, written to the audit log (a view, or the reveal of the phone)."""

    def work(session: Session) -> Dict[str, Any]:
        now = now_utc()
        view = visible_case(session, staff, case_id, now)
        context = case_context(session, staff, view)
        phone, context["phone_unreadable"] = None, False
        if reveal:
            try:
                phone = cs.reply_phone(session, request.app[VAULT], view.id)
            except NotDecryptable:
                log.error("complaint case %d: the stored phone does not decrypt in its row", view.id)
                context["phone_unreadable"] = True
            staff_service.audit(session, staff, "complaint.phone", "complaint_case", view.id,
                                f"{view.case_number} 查看完整号码", now)
        else:
            staff_service.audit(session, staff, "complaint.view", "complaint_case", view.id, view.case_number, now)
        context["phone_full"] = phone
        return context

    context = await run_in_session(request.app, work)
    done_text = DONE.get(done or "")
    if done == "answer" and done_text:
        done_text += "答复已通过公众号发送给反映人。" if context["notifies"] else "反映人匿名或已取消关注，答复不发送。"
    values = dict(values or {})
    unsent = [(name, FIELD_NAMES[name]) for name in FIELDS.get(error[0], ()) if values.get(name, "").strip()
              and name in FREE_TEXT] if error else []
    return render_console(request, "complaints_detail.html", status=status, error_form=error[0] if error else "",
                          error_action=ACTION_NAMES.get(error[0], "") if error else "", unsent=unsent,
                          step_actions=[action for action, _ in context["steps"]],
                          error=error[1] if error else "", values=values, done=done_text or "",
                          categories=cs.default_rules().category_names, priorities=PRIORITY_NAMES,
                          reveal=reveal, **context)


@require_staff(roles=CASE_ROLES)
async def case_page(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    return await show_case(request, staff, case_id_of(request), done=request.query.get("done"))


@require_staff(roles=CASE_ROLES)
async def reveal_phone(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    return await show_case(request, staff, case_id_of(request), reveal=True)


# --- the steps ---------------------------------------------------------------------------------


def text_field(values: Mapping[str, str], name: str, what: str, limit: int, required: bool) -> Optional[str]:
    text = values.get(name, "").strip()
    if not text:
        if required:
            raise Refused(f"请填写{what}。")
        return None
    if len(text) > limit:
        raise Refused(f"{what}不能超过{limit}字（现为{len(text)}字），请精简后再提交。")
    return text


def take_step(session: Session, staff: SignedIn, view: cs.CaseView, action: str, values: Mapping[str, str],
              now: dt.datetime) -> str:
    """Carry out one step; returns what the audit log says of it. Raises Refused."""
    actor = staff.display_name
    if action == "note":
        note = text_field(values, "note", "备注内容", NOTE_MAX, True)
        cs.add_note(session, view.id, actor, note, now=now)
        return view.case_number
    note = text_field(values, "note", "说明", NOTE_MAX, False)
    if action == "classify":
        category = values.get("category", "")
        if category not in cs.default_rules().category_names:
            raise Refused("请选择问题类别。")
        station_id = None
        if values.get("station"):
            station_id = query_int(values["station"])
            if station_id is None:
                raise Refused("请从列表中选择承办服务站。")  # one of the area's: cs.classify checks the scope
        assigned_to = text_field(values, "assigned_to", "承办部门名称", ASSIGNED_MAX, False)
        if station_id is None and assigned_to is None:
            raise Refused("请选择承办服务站，或填写承办部门。")
        priority = query_int(values.get("priority"))
        if priority not in PRIORITY_NAMES:
            raise Refused("请选择优先级。")
        moved = cs.classify(session, view.id, actor, category, assigned_to, station_id, note, now=now,
                            priority=priority, scope=staff.scope)
        return f"{view.case_number} {cs.CLASSIFY}：转{moved.assigned_to}"
    if action == "reject":
        reason = text_field(values, "reason", "不予受理的理由", REASON_MAX, True)
        cs.reject(session, view.id, actor, reason, now=now)
    elif action == "handle":
        cs.start_handling(session, view.id, actor, note, now=now)
    elif action == "answer":
        answer = text_field(values, "answer_text", "答复内容", ANSWER_MAX, True)
        cs.answer(session, view.id, actor, answer, note, now=now)
    elif action == "follow-up":
        cs.start_follow_up(session, view.id, actor, note, now=now)
    elif action == "close":
        cs.close(session, view.id, actor, note, now=now)
    return f"{view.case_number} {ACTION_NAMES[action]}"


@require_staff(roles=CASE_ROLES)
async def case_step(request: web.Request) -> web.Response:
    staff = current_staff(request)
    assert staff is not None
    case_id = case_id_of(request)
    action = request.match_info["action"]
    data = await request.post()
    values = {name: str(data.get(name, "")) for name in FIELDS[action]}

    def work(session: Session) -> None:
        now = now_utc()
        view = visible_case(session, staff, case_id, now)
        try:
            detail = take_step(session, staff, view, action, values, now)
        except cs.CaseClosed as error:
            raise Refused(str(error), 409) from None
        except cs.InvalidTransition as error:
            raise Refused(str(error), 409) from None
        except cs.ComplaintError as error:
            raise Refused(str(error)) from None
        staff_service.audit(session, staff, "complaint.note" if action == "note" else "complaint.transition",
                            "complaint_case", view.id, detail, now)

    try:
        await run_in_session(request.app, work)  # a refusal rolls the whole step back
    except Refused as refused:
        return await show_case(request, staff, case_id, status=refused.status, error=(action, refused.message),
                               values=values)
    return see_other(request, f"/console/complaints/{case_id}?done={action}")


def setup(app: web.Application) -> None:
    app.router.add_get("/console/complaints", list_page)
    app.router.add_get(r"/console/complaints/{case_id:\d+}", case_page)
    app.router.add_post(r"/console/complaints/{case_id:\d+}/phone", reveal_phone)
    app.router.add_post(r"/console/complaints/{case_id:\d+}/{action:" + "|".join(ACTIONS) + "}", case_step)
