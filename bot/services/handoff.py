"""Human handoff: the queue of conversations staff take over.

A user asks for a person (转人工), or an urgent complaint is registered: the
conversation is paused in Rasa (the action returns ``ConversationPaused``) and a
handoff waits here, urgent ones first, then the oldest. A staff member claims it,
answers in WeChat, and hands it back to the bot (bot.gateway.handoff does the Rasa
and WeChat side). The user is told honestly when a person will answer: now, during
the service centre's opening hours, or from when it opens next.

While the user waits, what they write is acknowledged at most once per interval
(``acknowledge``: the time of the last acknowledgement is kept on the handoff, and a
guarded UPDATE lets only one gateway claim each interval). Until a staff member claims
the handoff the user may leave the queue (``withdraw``: closed by ``WITHDRAWN_BY``);
after that, a wish to stop is left for staff as a note (``flag_stop_request``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

import yaml
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot.db.models import HANDOFF_REASONS, Handoff, HandoffNote, Station, Veteran, WechatBinding
from bot.db.session import as_utc, execute_write
from bot.redaction import redact
from bot.services import veterans
from bot.services.scope import Scope
from bot.services.stations import for_community, hours_on, is_open, local_time, next_open_day
from bot.settings import PROJECT_ROOT

WEEKDAYS = "一二三四五六日"
NOTE_MAX = 1000  # characters of an internal note
# closed_by of a handoff the user left before anyone took it (staff usernames are lower-case ASCII).
WITHDRAWN_BY = "用户撤回"
# The author of the notes the system leaves for staff.
SYSTEM_AUTHOR = "系统提示"
STOP_NOTE = "用户表示不再需要人工服务"
URGENT_NOTE = "等候期间用户的消息含有紧急情况用语，已标为紧急"
EMERGENCY_FILE = PROJECT_ROOT / "data" / "emergency.yml"


class EmergencyDataError(ValueError):
    """data/emergency.yml is missing its text or the text has no phone number."""


def load_emergency_help(path: Union[str, Path] = EMERGENCY_FILE) -> str:
    """The 24-hour lines a user in danger is told (data/emergency.yml ``text``)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not re.search(r"\d{3,}", text):
        raise EmergencyDataError(f"{path}: text: must be the words with the 24-hour phone numbers (110, 120 …)")
    return text.strip()


@lru_cache(maxsize=1)
def emergency_help() -> str:
    return load_emergency_help(EMERGENCY_FILE)


class HandoffError(ValueError):
    """A refused step, with a Chinese message for staff."""


NOT_THE_CLAIMER = "只有接待这个会话的工作人员可以交还机器人。"


@dataclass(frozen=True)
class HandoffView:
    id: int
    openid: str
    reason: str
    urgent: bool
    case_number: Optional[str]
    station_id: Optional[int]
    state: str
    created_at: dt.datetime  # Beijing time
    claimed_at: Optional[dt.datetime]
    claimed_by: Optional[str]
    closed_at: Optional[dt.datetime]
    closed_by: Optional[str] = None  # a staff member's username, or WITHDRAWN_BY
    acknowledged_at: Optional[dt.datetime] = None  # Beijing time; the user last told "已收到"

    @property
    def withdrawn(self) -> bool:
        """The user left the queue before anyone took the conversation."""
        return self.state == "closed" and self.closed_by == WITHDRAWN_BY


def _view(row: Handoff) -> HandoffView:
    def local(value):
        return None if value is None else local_time(as_utc(value))

    return HandoffView(row.id, row.openid, row.reason, bool(row.urgent), row.case_number, row.station_id,
                       row.state, local(row.created_at), local(row.claimed_at), row.claimed_by, local(row.closed_at),
                       row.closed_by, local(row.acknowledged_at))


def _open_row(session: Session, openid: str) -> Optional[Handoff]:
    return session.execute(select(Handoff).where(Handoff.openid == openid, Handoff.state != "closed")
                           .execution_options(populate_existing=True)).scalar_one_or_none()


def station_for_openid(session: Session, openid: str) -> Optional[int]:
    """The station of the bound veteran's household (for the staff scope); None if the user
    is not bound or the household has no station: the district centre's then."""
    veteran = veterans.by_openid(session, openid)
    if veteran is None:
        return None
    station = veteran.station or for_community(session, veteran.street, veteran.community)
    return station.id if station is not None else None


def stations_for_openids(session: Session, openids: Iterable[str]) -> Dict[str, Tuple[Optional[int], Optional[str]]]:
    """For each bound user among ``openids``: (the household's station id, the veteran's
    name), in two queries; users not bound are absent (their station: None)."""
    wanted = sorted(set(openids))
    if not wanted:
        return {}
    rows = session.execute(select(WechatBinding.openid, Veteran).join(Veteran, WechatBinding.veteran_id == Veteran.id)
                           .where(WechatBinding.openid.in_(wanted))).all()
    found: Dict[str, Tuple[Optional[int], Optional[str]]] = {}
    for openid, veteran in rows:
        station = veteran.station or for_community(session, veteran.street, veteran.community)
        found[openid] = (station.id if station is not None else None, veteran.name)
    return found


def open_for(session: Session, openids: Iterable[str]) -> Dict[str, int]:
    """The open handoff's id of each of ``openids`` that has one."""
    wanted = sorted(set(openids))
    if not wanted:
        return {}
    return dict(session.execute(select(Handoff.openid, Handoff.id)
                                .where(Handoff.openid.in_(wanted), Handoff.state != "closed")).all())


def open_handoff(session: Session, openid: str, reason: str, now: dt.datetime, *, urgent: bool = False,
                 case_number: Optional[str] = None, station_id: Optional[int] = None) -> HandoffView:
    """Put the user in the queue, or return their open handoff (made urgent if this one is)."""
    if reason not in HANDOFF_REASONS:
        raise ValueError(f"not a handoff reason: {reason}")
    row = _open_row(session, openid)
    if row is not None:
        if urgent and not row.urgent:
            execute_write(session, update(Handoff).where(Handoff.id == row.id).values(
                urgent=True, case_number=case_number or row.case_number), synchronize_session=False)
            row = _open_row(session, openid)
        return _view(row)
    row = Handoff(openid=openid, reason=reason, urgent=urgent, case_number=case_number, station_id=station_id,
                  state="waiting", created_at=as_utc(now))
    session.add(row)
    session.flush()
    return _view(row)


def current(session: Session, openid: str) -> Optional[HandoffView]:
    row = _open_row(session, openid)
    return None if row is None else _view(row)


def get(session: Session, handoff_id: int) -> Optional[HandoffView]:
    row = session.get(Handoff, handoff_id, populate_existing=True)
    return None if row is None else _view(row)


def queue(session: Session, scope: Optional[Scope] = None, limit: int = 100) -> List[HandoffView]:
    """Open handoffs for the console: urgent first, then the longest waiting; held ones after
    the waiting ones. ``scope`` (bot.services.scope) limits them to a staff member's area."""
    query = select(Handoff).where(Handoff.state != "closed")
    if scope is not None:
        query = query.where(scope.where_station(Handoff.station_id))
    query = query.order_by(
        (Handoff.state == "claimed"), Handoff.urgent.desc(), Handoff.created_at, Handoff.id).limit(limit)
    return [_view(row) for row in session.execute(query).scalars()]


def waiting_ahead(session: Session, handoff: HandoffView) -> int:
    """How many waiting handoffs staff will take before this one (urgent ones first)."""
    created = as_utc(handoff.created_at)
    earlier = or_(Handoff.created_at < created, and_(Handoff.created_at == created, Handoff.id < handoff.id))
    if handoff.urgent:
        condition = and_(Handoff.urgent.is_(True), earlier)
    else:
        condition = or_(Handoff.urgent.is_(True), earlier)
    return session.execute(select(func.count()).select_from(Handoff).where(
        Handoff.state == "waiting", Handoff.id != handoff.id, condition)).scalar_one()


def claim(session: Session, handoff_id: int, staff: str, now: dt.datetime) -> HandoffView:
    """A staff member takes a waiting handoff; refused when someone else already has it."""
    result = execute_write(session, update(Handoff).where(Handoff.id == handoff_id, Handoff.state == "waiting")
                           .values(state="claimed", claimed_at=as_utc(now), claimed_by=staff[:50]),
                           synchronize_session=False)
    view = get(session, handoff_id)
    if view is None:
        raise LookupError(f"no handoff {handoff_id}")
    if result.rowcount == 0 and view.claimed_by != staff[:50]:
        raise HandoffError("这个会话已由其他工作人员接待。" if view.state == "claimed" else "这个会话已经结束。")
    return view


def take_over(session: Session, openid: str, staff: str, now: dt.datetime,
              station_id: Optional[int] = None) -> HandoffView:
    """A staff member takes over a conversation nobody handed over (reason ``staff``)."""
    view = open_handoff(session, openid, "staff", now, station_id=station_id)
    return claim(session, view.id, staff, now) if view.state == "waiting" else view


def close(session: Session, handoff_id: int, staff: str, now: dt.datetime,
          scope: Optional[Scope] = None) -> HandoffView:
    """Hand the conversation back to the bot: only the staff member who claimed it, or
    one whose ``scope`` (bot.services.scope) supervises (an admin, district staff) and
    covers the handoff's station. Without a scope, ``staff`` is only the claimer.
    A guarded UPDATE: nobody can claim it in between and lose it to someone else."""
    existing = get(session, handoff_id)
    if existing is None or (scope is not None and not scope.station(existing.station_id)):
        raise LookupError(f"no handoff {handoff_id}")
    guard = [Handoff.id == handoff_id, Handoff.state != "closed"]
    if scope is None or not scope.supervises:
        guard.append(Handoff.claimed_by == staff[:50])
    result = execute_write(session, update(Handoff).where(*guard)
                           .values(state="closed", closed_at=as_utc(now), closed_by=staff[:50],
                                   claimed_at=func.coalesce(Handoff.claimed_at, as_utc(now))),
                           synchronize_session=False)
    view = get(session, handoff_id)
    if view is None:
        raise LookupError(f"no handoff {handoff_id}")
    if result.rowcount == 0:
        if view.state == "closed":
            raise HandoffError("这个会话已经交还给机器人了。")
        raise HandoffError(NOT_THE_CLAIMER)
    return view


def _answering_station(session: Session) -> Optional[Station]:
    """Whose opening hours tell when staff answer: the district centre's."""
    return session.execute(select(Station).where(Station.tier == "district").order_by(Station.id)
                           .limit(1)).scalar_one_or_none()


def on_duty(session: Session, now: dt.datetime, station: Optional[Station] = None) -> bool:
    """Whether staff are at work now (the opening hours of ``station``, the district
    centre by default; holidays included). Without a service network: assumed so."""
    station = station or _answering_station(session)
    return station is None or is_open(station, local_time(as_utc(now)))


def expected_reply(session: Session, now: dt.datetime, station: Optional[Station] = None) -> str:
    """When a person will answer, honestly: from the opening hours of the station that
    serves the user (the district centre by default)."""
    if station is None:
        station = _answering_station(session)
    if station is None:
        return "工作人员会尽快回复您。"
    local = local_time(as_utc(now))
    if is_open(station, local):
        return "现在是工作时间，工作人员会尽快回复您。"
    today_periods = hours_on(station, local.date())
    later_today = [opens for opens, _ in today_periods if opens > local.time().replace(tzinfo=None)]
    if later_today:
        return f"现在是非工作时间，工作人员将于今天{later_today[0].strftime('%H:%M')}上班后回复您。"
    day = next_open_day(station, local.date())
    if day is None:
        return "现在是非工作时间，工作人员上班后会回复您。"
    opens = hours_on(station, day)[0][0]
    when = "明天" if day == local.date() + dt.timedelta(days=1) else f"{day.month}月{day.day}日（周{WEEKDAYS[day.weekday()]}）"
    return f"现在是非工作时间，工作人员将于{when}{opens.strftime('%H:%M')}上班后回复您。"


def queue_message(session: Session, view: HandoffView, now: dt.datetime) -> str:
    """The place in the queue (while waiting) and when a person will answer."""
    ahead = waiting_ahead(session, view) if view.state == "waiting" else 0
    queue = f"前面还有{ahead}位在等候。" if ahead else ""
    return queue + expected_reply(session, now)


# --- while the user waits -------------------------------------------------------------------


def acknowledge(session: Session, handoff_id: int, now: dt.datetime, interval: dt.timedelta) -> bool:
    """Whether to tell the user "已收到" now: True at most once per ``interval`` for an open
    handoff (the first time, and when the last acknowledgement is ``interval`` old). A
    guarded UPDATE: of several gateways answering messages of the same user at once,
    one gets True."""
    moment = as_utc(now)
    result = execute_write(session, update(Handoff).where(
        Handoff.id == handoff_id, Handoff.state != "closed",
        or_(Handoff.acknowledged_at.is_(None), Handoff.acknowledged_at <= moment - interval))
        .values(acknowledged_at=moment), synchronize_session=False)
    return result.rowcount == 1


def mark_acknowledged(session: Session, handoff_id: int, now: dt.datetime) -> None:
    """The user was just told something about this handoff (an answer to 转人工 again, a
    staff member's reply …): the next "已收到" waits a whole interval from now."""
    execute_write(session, update(Handoff).where(Handoff.id == handoff_id, Handoff.state != "closed")
                  .values(acknowledged_at=as_utc(now)), synchronize_session=False)


def withdraw(session: Session, handoff_id: int, now: dt.datetime) -> HandoffView:
    """The user leaves the queue ("不用人工了", a menu click …) before anyone took the
    conversation: the handoff is closed by ``WITHDRAWN_BY``. Refused (HandoffError)
    once a staff member has claimed it, or when it is closed already."""
    moment = as_utc(now)
    result = execute_write(session, update(Handoff).where(Handoff.id == handoff_id, Handoff.state == "waiting")
                           .values(state="closed", closed_at=moment, closed_by=WITHDRAWN_BY,
                                   claimed_at=func.coalesce(Handoff.claimed_at, moment)),
                           synchronize_session=False)
    view = get(session, handoff_id)
    if view is None:
        raise LookupError(f"no handoff {handoff_id}")
    if result.rowcount == 0:
        raise HandoffError("工作人员已经接待了这个会话。" if view.state == "claimed" else "这个会话已经结束。")
    return view


def make_urgent(session: Session, handoff_id: int, now: dt.datetime) -> HandoffView:
    """Words of danger while the user waits: the handoff goes to the top of the queue, with
    a note for staff saying why (once)."""
    result = execute_write(session, update(Handoff).where(
        Handoff.id == handoff_id, Handoff.state != "closed", Handoff.urgent.is_(False)).values(urgent=True),
        synchronize_session=False)
    if result.rowcount:
        _system_note(session, handoff_id, URGENT_NOTE + "。", now)
    view = get(session, handoff_id)
    if view is None:
        raise LookupError(f"no handoff {handoff_id}")
    return view


def flag_stop_request(session: Session, handoff_id: int, said: str, now: dt.datetime) -> bool:
    """The user asked to stop while a staff member holds the conversation: a note for staff
    (once per handoff; the message itself is in the transcript). True when it was added."""
    existing = session.execute(select(func.count()).select_from(HandoffNote).where(
        HandoffNote.handoff_id == handoff_id, HandoffNote.staff == SYSTEM_AUTHOR,
        HandoffNote.text.like(STOP_NOTE + "%"))).scalar_one()
    if existing:
        return False
    quoted = " ".join((said or "").split())[:60]
    _system_note(session, handoff_id, f"{STOP_NOTE}（“{quoted}”）。如确认不再需要，请结束本次服务（交还机器人）。", now)
    return True


def _system_note(session: Session, handoff_id: int, text: str, now: dt.datetime) -> NoteView:
    return add_note(session, handoff_id, SYSTEM_AUTHOR, text, now)


@dataclass(frozen=True)
class NoteView:
    id: int
    staff: str
    text: str
    created_at: dt.datetime  # Beijing time


def add_note(session: Session, handoff_id: int, staff: str, text: str, now: dt.datetime) -> NoteView:
    """An internal note on a handoff (open or closed), for colleagues only. Personal
    numbers typed into it are redacted, as everywhere outside the encrypted columns."""
    text = redact((text or "").strip()).text.strip()
    if not text:
        raise HandoffError("备注内容不能为空。")
    if len(text) > NOTE_MAX:
        raise HandoffError(f"备注请不要超过{NOTE_MAX}字（现在{len(text)}字）。")
    if session.get(Handoff, handoff_id) is None:
        raise LookupError(f"no handoff {handoff_id}")
    row = HandoffNote(handoff_id=handoff_id, staff=staff[:50], text=text, created_at=as_utc(now))
    session.add(row)
    session.flush()
    return NoteView(row.id, row.staff, row.text, local_time(as_utc(row.created_at)))


def notes(session: Session, handoff_id: int) -> List[NoteView]:
    rows = session.execute(select(HandoffNote).where(HandoffNote.handoff_id == handoff_id)
                           .order_by(HandoffNote.created_at, HandoffNote.id)).scalars()
    return [NoteView(r.id, r.staff, r.text, local_time(as_utc(r.created_at))) for r in rows]


def history_of(session: Session, openid: str, limit: int = 20) -> List[HandoffView]:
    """The user's earlier handoffs, newest first (for the transcript page)."""
    rows = session.execute(select(Handoff).where(Handoff.openid == openid)
                           .order_by(Handoff.created_at.desc(), Handoff.id.desc()).limit(limit)).scalars()
    return [_view(row) for row in rows]


def erase_handoffs(session: Session, openid: str, now: dt.datetime) -> None:
    """On unfollow: the user's handoffs and their notes go (the conversation itself is
    deleted by the gateway)."""
    ids = select(Handoff.id).where(Handoff.openid == openid).scalar_subquery()
    session.execute(delete(HandoffNote).where(HandoffNote.handoff_id.in_(ids)),
                    execution_options={"synchronize_session": False})
    session.execute(delete(Handoff).where(Handoff.openid == openid), execution_options={"synchronize_session": False})
