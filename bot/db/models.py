"""Tables of the veteran database.

Integrity lives in the database: foreign keys, unique constraints and checks,
so that a bad import or a race cannot store what Python would have refused.
ID card and phone numbers are never stored in clear (see bot.pii).
Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import backref, declarative_base, relationship

# Named constraints so that Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
Base = declarative_base(metadata=MetaData(naming_convention=NAMING))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def Timestamp(**kwargs) -> Column:  # noqa: N802 - reads like a column type
    return Column(DateTime(timezone=True), **kwargs)


def _one_of(column: str, values) -> str:
    """A CHECK that ``column`` holds one of ``values`` (the tuple the code uses too)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


STATION_TIERS = ("district", "street", "community")  # 区中心 / 街道(镇)站 / 村(社区)站
GENDERS = ("男", "女")
DISCHARGE_CATEGORIES = ("转业", "复员", "退休", "自主就业", "安排工作", "供养", "逐月领取退役金", "其他")
VETERAN_STATUSES = ("在世", "已故", "失联")


class Station(Base):
    """退役军人服务中心（站）: one node of the three-tier service network."""

    __tablename__ = "stations"
    __table_args__ = (
        CheckConstraint(_one_of("tier", STATION_TIERS), name="tier"),
        CheckConstraint("(tier = 'district') = (parent_id IS NULL)", name="parent_by_tier"),
    )

    id = Column(Integer, primary_key=True)
    code = Column(String(32), nullable=False, unique=True)
    name = Column(String(100), nullable=False, unique=True)
    tier = Column(String(16), nullable=False)
    parent_id = Column(Integer, ForeignKey("stations.id", ondelete="RESTRICT"), index=True)
    district = Column(String(50), nullable=False)
    street = Column(String(50))  # 街道/镇 it belongs to (None for the district centre)
    community = Column(String(50))  # 村/社区 (community stations only)
    address = Column(String(200), nullable=False)
    phone = Column(String(30), nullable=False)
    latitude = Column(Float)
    longitude = Column(Float)
    aliases = Column(JSON, nullable=False, default=list)  # 简称 users type: ["菊园", "菊园新区"]

    parent = relationship("Station", remote_side=[id], backref="children")
    hours = relationship(
        "OpeningHours", cascade="all, delete-orphan", order_by="OpeningHours.weekday"
    )


class OpeningHours(Base):
    """One opening period of a station on a weekday (0 = Monday)."""

    __tablename__ = "opening_hours"
    __table_args__ = (
        UniqueConstraint("station_id", "weekday", "opens", name="uq_opening_hours_period"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("opens < closes", name="order"),
    )

    id = Column(Integer, primary_key=True)
    station_id = Column(Integer, ForeignKey("stations.id", ondelete="CASCADE"), nullable=False)
    weekday = Column(Integer, nullable=False)
    opens = Column(Time, nullable=False)
    closes = Column(Time, nullable=False)


class Veteran(Base):
    """A veteran on the bureau's roster (退役军人信息采集)."""

    __tablename__ = "veterans"
    __table_args__ = (
        CheckConstraint(_one_of("gender", GENDERS), name="gender"),
        CheckConstraint("discharged_on IS NULL OR enlisted_on IS NULL OR enlisted_on <= discharged_on",
                        name="service_dates"),
        CheckConstraint("enlisted_on IS NULL OR birth_date < enlisted_on", name="birth_before_service"),
        CheckConstraint(_one_of("status", VETERAN_STATUSES), name="status"),
        CheckConstraint("status = '已故' OR deceased_on IS NULL", name="deceased_date"),
        Index("ix_veterans_phone_hash", "phone_hash"),
        Index("ix_veterans_street_community", "street", "community"),
    )

    id = Column(Integer, primary_key=True)
    name = Column(String(50), nullable=False)
    id_hash = Column(String(64), nullable=False, unique=True)
    id_cipher = Column(Text, nullable=False)
    id_masked = Column(String(18), nullable=False)
    phone_hash = Column(String(64))
    phone_cipher = Column(Text)
    phone_masked = Column(String(20))
    birth_date = Column(Date, nullable=False)
    gender = Column(String(2), nullable=False)
    enlisted_on = Column(Date)
    discharged_on = Column(Date)
    branch = Column(String(20))  # 陆军 / 海军 / 空军 / 火箭军 / 武警部队 …
    discharge_category = Column(String(20))  # 转业 / 复员 / 退休 / 自主就业 / 安排工作 …
    district = Column(String(50))
    street = Column(String(50))  # 户籍所在街道/镇
    community = Column(String(50))  # 户籍所在村/社区
    station_id = Column(Integer, ForeignKey("stations.id", ondelete="SET NULL"), index=True)
    status = Column(String(8), nullable=False, default="在世")
    deceased_on = Column(Date)
    created_at = Timestamp(nullable=False, default=utcnow)
    updated_at = Timestamp(nullable=False, default=utcnow, onupdate=utcnow)

    station = relationship("Station")
    entitlements = relationship("Entitlement", cascade="all, delete-orphan")
    applications = relationship("BenefitApplication", cascade="all, delete-orphan")
    subsidies = relationship("Subsidy", cascade="all, delete-orphan")


class Entitlement(Base):
    """优抚对象类别: an entitlement category that a veteran holds."""

    __tablename__ = "entitlements"
    __table_args__ = (UniqueConstraint("veteran_id", "category", name="uq_entitlements_category"),)

    id = Column(Integer, primary_key=True)
    veteran_id = Column(Integer, ForeignKey("veterans.id", ondelete="CASCADE"), nullable=False)
    category = Column(String(30), nullable=False)  # 残疾军人（三级）/ 在乡复员军人 / 参战退役人员 …
    since = Column(Date)


APPLICATION_KINDS = ("preferential_card", "hardship_aid")


class BenefitApplication(Base):
    """An application: 优待证 (preferential_card) or 帮扶援助 (hardship_aid)."""

    __tablename__ = "benefit_applications"
    __table_args__ = (
        CheckConstraint(_one_of("kind", APPLICATION_KINDS), name="kind"),
        Index("ix_benefit_applications_veteran_kind", "veteran_id", "kind"),
    )

    id = Column(Integer, primary_key=True)
    veteran_id = Column(Integer, ForeignKey("veterans.id", ondelete="CASCADE"), nullable=False)
    kind = Column(String(20), nullable=False)
    reference = Column(String(32), nullable=False, unique=True)
    status = Column(String(20), nullable=False)  # the latest step, mirrored from the history
    submitted_on = Column(Date, nullable=False)
    amount_fen = Column(Integer)  # 帮扶金额 in 分 (integers: exact on SQLite too), when granted
    closed = Column(Boolean, nullable=False, default=False)

    history = relationship(
        "ApplicationStep", cascade="all, delete-orphan", order_by="ApplicationStep.happened_on"
    )


class ApplicationStep(Base):
    """One step of an application's status history."""

    __tablename__ = "application_steps"

    id = Column(Integer, primary_key=True)
    application_id = Column(
        Integer, ForeignKey("benefit_applications.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status = Column(String(20), nullable=False)
    happened_on = Column(Date, nullable=False)
    note = Column(String(200))


class Subsidy(Base):
    """定期抚恤补助: a periodic payment to an entitled veteran."""

    __tablename__ = "subsidies"
    __table_args__ = (
        CheckConstraint("monthly_amount_fen > 0", name="amount"),
        CheckConstraint("until IS NULL OR since <= until", name="period"),
    )

    id = Column(Integer, primary_key=True)
    veteran_id = Column(Integer, ForeignKey("veterans.id", ondelete="CASCADE"), nullable=False, index=True)
    kind = Column(String(30), nullable=False)  # 残疾抚恤金 / 定期生活补助 …
    monthly_amount_fen = Column(Integer, nullable=False)  # in 分
    since = Column(Date, nullable=False)
    until = Column(Date)


class WechatBinding(Base):
    """A WeChat user (OpenID of this official account) proven to be a veteran."""

    __tablename__ = "wechat_bindings"

    id = Column(Integer, primary_key=True)
    openid = Column(String(64), nullable=False, unique=True)
    veteran_id = Column(Integer, ForeignKey("veterans.id", ondelete="CASCADE"), nullable=False, index=True)
    bound_at = Timestamp(nullable=False, default=utcnow)

    veteran = relationship("Veteran")


BINDING_EVENTS = ("link_issued", "code_sent", "bind", "unbind", "failed", "locked", "unfollow_deleted")


class BindingAudit(Base):
    """Append-only trail of binding events. Keeps a keyed hash of the OpenID, not the OpenID,
    so that the trail survives the deletion WeChat requires on unfollow."""

    __tablename__ = "binding_audit"
    __table_args__ = (CheckConstraint(_one_of("event", BINDING_EVENTS), name="event"),)

    id = Column(Integer, primary_key=True)
    openid_hash = Column(String(64), nullable=False, index=True)
    veteran_id = Column(Integer, ForeignKey("veterans.id", ondelete="SET NULL"))
    event = Column(String(20), nullable=False)
    detail = Column(String(200))
    happened_at = Timestamp(nullable=False, default=utcnow)


class BindingLink(Base):
    """A one-time link to the H5 binding page: signed, 10 minutes, single use."""

    __tablename__ = "binding_links"

    id = Column(Integer, primary_key=True)
    nonce = Column(String(43), nullable=False, unique=True)
    openid = Column(String(64), nullable=False, index=True)
    expires_at = Timestamp(nullable=False)
    used_at = Timestamp()
    # The pending verification: which veteran, the code's hash, its expiry, tries.
    veteran_id = Column(Integer, ForeignKey("veterans.id", ondelete="CASCADE"))
    code_hash = Column(String(64))
    code_expires_at = Timestamp()


class BindingLock(Base):
    """Failed attempts per OpenID; five in a row lock binding for 30 minutes."""

    __tablename__ = "binding_locks"

    openid = Column(String(64), primary_key=True)
    failures = Column(Integer, nullable=False, default=0)
    locked_until = Timestamp()


# --- appointments (预约): services, the schedule, bookings, and the outbox -----------------

APPOINTMENT_STATUSES = ("booked", "cancelled", "attended", "no_show")


class Service(Base):
    """A service a veteran can book (退役报到, 优待证办理 …), from data/services.yml."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("slot_minutes > 0 AND slot_minutes <= 480", name="slot_minutes"),
        CheckConstraint("default_capacity > 0", name="default_capacity"),
        CheckConstraint("horizon_days > 0", name="horizon_days"),
        CheckConstraint("lead_minutes >= 0", name="lead_minutes"),
    )

    id = Column(Integer, primary_key=True)
    code = Column(String(32), nullable=False, unique=True)
    name = Column(String(50), nullable=False, unique=True)
    aliases = Column(JSON, nullable=False, default=list)  # words users say: ["报到", "报道"]
    slot_minutes = Column(Integer, nullable=False)
    default_capacity = Column(Integer, nullable=False)
    materials = Column(JSON, nullable=False, default=list)  # 请携带的材料, in the order to show them
    note = Column(String(200))  # 温馨提示 shown with a booking, e.g. a legal deadline
    position = Column(Integer, nullable=False, default=0)  # order in menus: the file's order
    horizon_days = Column(Integer, nullable=False)  # bookable up to this many days ahead
    lead_minutes = Column(Integer, nullable=False)  # not bookable within this many minutes from now


class StationService(Base):
    """A service offered at a station, with the seats per slot there."""

    __tablename__ = "station_services"
    __table_args__ = (
        UniqueConstraint("station_id", "service_id", name="uq_station_services_station_service"),
        CheckConstraint("capacity > 0", name="capacity"),
    )

    id = Column(Integer, primary_key=True)
    station_id = Column(Integer, ForeignKey("stations.id", ondelete="CASCADE"), nullable=False)
    service_id = Column(Integer, ForeignKey("services.id", ondelete="CASCADE"), nullable=False, index=True)
    capacity = Column(Integer, nullable=False)

    station = relationship("Station")
    service = relationship("Service")


class StationClosure(Base):
    """A one-off closed day of a station (装修、集中学习 …), from data/closures.yml.

    ``Station.closures`` (a backref, so that the stations table's class stays as it was)
    lets ``bot.services.stations.hours_on`` answer "closed" on such a day."""

    __tablename__ = "station_closures"
    __table_args__ = (UniqueConstraint("station_id", "day", name="uq_station_closures_station_day"),)

    id = Column(Integer, primary_key=True)
    station_id = Column(Integer, ForeignKey("stations.id", ondelete="CASCADE"), nullable=False)
    day = Column(Date, nullable=False)
    reason = Column(String(100), nullable=False)

    station = relationship("Station", backref=backref("closures", order_by="StationClosure.day",
                                                      cascade="all, delete-orphan"))


class Slot(Base):
    """One bookable time of a service at a station, materialised at its first booking.

    ``booked`` only ever moves by an atomic UPDATE guarded by the check below, so
    the database itself refuses an overbooking, whatever races above it."""

    __tablename__ = "slots"
    __table_args__ = (
        UniqueConstraint("station_id", "service_id", "start", name="uq_slots_station_service_start"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="seats"),
        CheckConstraint("capacity > 0", name="capacity"),
    )

    id = Column(Integer, primary_key=True)
    station_id = Column(Integer, ForeignKey("stations.id", ondelete="RESTRICT"), nullable=False)
    service_id = Column(Integer, ForeignKey("services.id", ondelete="RESTRICT"), nullable=False)
    start = Timestamp(nullable=False)  # UTC, like every timestamp here
    capacity = Column(Integer, nullable=False)
    booked = Column(Integer, nullable=False, default=0)


class Appointment(Base):
    """预约: one booking of a slot by a WeChat user (and the veteran, when bound)."""

    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint(_one_of("status", APPOINTMENT_STATUSES), name="status"),
        CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)", name="cancelled_at"),
        # A double tap or a WeChat retry cannot hold the same slot twice.
        Index("uq_appointments_openid_slot_booked", "openid", "slot_id", unique=True,
              sqlite_where=text("status = 'booked'"), postgresql_where=text("status = 'booked'")),
        Index("ix_appointments_station_start", "station_id", "start"),
    )

    id = Column(Integer, primary_key=True)
    code = Column(String(16), nullable=False, unique=True)  # 预约码, e.g. YY7KQ4M2XD
    openid = Column(String(64), index=True)  # blanked when the user unfollows (statistics stay)
    veteran_id = Column(Integer, ForeignKey("veterans.id", ondelete="SET NULL"), index=True)
    slot_id = Column(Integer, ForeignKey("slots.id", ondelete="RESTRICT"), nullable=False, index=True)
    station_id = Column(Integer, ForeignKey("stations.id", ondelete="RESTRICT"), nullable=False)
    service_id = Column(Integer, ForeignKey("services.id", ondelete="RESTRICT"), nullable=False)
    start = Timestamp(nullable=False)
    status = Column(String(12), nullable=False, default="booked")
    created_at = Timestamp(nullable=False, default=utcnow)
    cancelled_at = Timestamp()
    # Who recorded at the station that the person came (attended) or did not (no_show),
    # and when; cleared again when that record is undone (the audit log keeps both).
    # Staff accounts are never deleted (they are deactivated), so no ON DELETE rule.
    marked_at = Timestamp()
    marked_by = Column(Integer, ForeignKey("staff_accounts.id"))

    slot = relationship("Slot")
    station = relationship("Station")
    service = relationship("Service")


class Outbox(Base):
    """A message to send later through the customer-service API (reminders, complaint
    updates …). Writers add rows in their own transaction; the delivery worker
    (bot.wechat.delivery) sends the due ones (``sent_at IS NULL AND failed_at IS NULL
    AND due_at <= now``) and records attempts.

    ``due_at`` is when the row may next be tried: the worker that claims a row moves
    it forward (a lease), and a retryable failure moves it on by the backoff. A row
    given up (window closed, refused, out of attempts) gets ``failed_at`` and a
    ``wechat_failures`` row for staff. ``parts_sent`` counts the pieces of a long
    text already delivered, so that a retry resumes where the last try stopped."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("parts_sent >= 0", name="parts_sent"),
        CheckConstraint("sent_at IS NULL OR failed_at IS NULL", name="sent_or_failed"),
        Index("ix_outbox_pending", "due_at", sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
              postgresql_where=text("sent_at IS NULL AND failed_at IS NULL")),
    )

    id = Column(Integer, primary_key=True)
    openid = Column(String(64), nullable=False, index=True)
    kind = Column(String(40), nullable=False)  # appointment_reminder, complaint_update …
    ref = Column(String(64), index=True)  # what it is about, e.g. appointment:YY7KQ4M2XD
    payload = Column(JSON, nullable=False)
    due_at = Timestamp(nullable=False)
    created_at = Timestamp(nullable=False, default=utcnow)
    sent_at = Timestamp()
    attempts = Column(Integer, nullable=False, default=0)
    last_error = Column(Text)  # WeChat's errcode and errmsg, never the message text
    failed_at = Timestamp()  # given up: see wechat_failures
    parts_sent = Column(Integer, nullable=False, default=0, server_default=text("0"))
    sent_as = Column(String(10))  # custom (customer-service message) or template; NULL until sent


# --- complaints and petitions (信访/投诉): the register, one case per matter (一案一册) -------

COMPLAINT_CATEGORIES = ("待遇发放", "安置就业", "优待落实", "服务态度", "权益侵害", "其他")
COMPLAINT_STATES = ("registered", "classified", "in_progress", "answered", "follow_up", "closed")
REPLY_CHANNELS = ("bound_phone", "case_phone", "wechat", "anonymous")
COMPLAINT_RATINGS = ("满意", "基本满意", "不满意")
CASE_EVENT_KINDS = ("transition", "note", "user_added_information", "attachment")


class ComplaintCounter(Base):
    """The last case number given out on a day (Beijing time): raised by one atomic upsert
    per registration, so that concurrent registrations never share a number."""

    __tablename__ = "complaint_counters"
    __table_args__ = (CheckConstraint("last_number > 0", name="last_number"),)

    day = Column(Date, primary_key=True)
    last_number = Column(Integer, nullable=False)


class ComplaintCase(Base):
    """信访/投诉 case: one matter a user raised, from registration to 办结 (bot.services.complaints).

    Cases are never deleted (the petition register must be kept). On unfollow the
    OpenID and the case phone are blanked; the matter itself stays."""

    __tablename__ = "complaint_cases"
    __table_args__ = (
        CheckConstraint(_one_of("category", COMPLAINT_CATEGORIES), name="category"),
        CheckConstraint(_one_of("state", COMPLAINT_STATES), name="state"),
        CheckConstraint(_one_of("reply_channel", REPLY_CHANNELS), name="reply_channel"),
        CheckConstraint("rating IS NULL OR " + _one_of("rating", COMPLAINT_RATINGS), name="rating"),
        CheckConstraint("priority BETWEEN 1 AND 3", name="priority"),
        CheckConstraint("reopened >= 0", name="reopened"),
        CheckConstraint("(state = 'closed') = (closed_at IS NOT NULL)", name="closed_at"),
        CheckConstraint("state NOT IN ('answered', 'follow_up') OR answer_text IS NOT NULL", name="answer"),
        CheckConstraint("phone_hash IS NULL OR reply_channel = 'case_phone'", name="phone_channel"),
        # The console's lists (list_cases): newest first within a state or a category,
        # and the open cases past their deadline.
        Index("ix_complaint_cases_state_id", "state", "id"),
        Index("ix_complaint_cases_category_id", "category", "id"),
        Index("ix_complaint_cases_state_due_at", "state", "due_at"),
    )

    id = Column(Integer, primary_key=True)
    case_number = Column(String(20), nullable=False, unique=True)  # TS20261122-0007
    openid = Column(String(64), index=True)  # blanked when the user unfollows
    veteran_id = Column(Integer, ForeignKey("veterans.id", ondelete="SET NULL"), index=True)
    category = Column(String(10), nullable=False)
    description = Column(Text, nullable=False)
    place = Column(Text)
    station_id = Column(Integer, ForeignKey("stations.id", ondelete="SET NULL"), index=True)
    reply_channel = Column(String(12), nullable=False)
    phone_hash = Column(String(64))  # the case phone (reply_channel case_phone), as bot.pii stores it
    phone_cipher = Column(Text)
    phone_masked = Column(String(20))
    urgent = Column(Boolean, nullable=False, default=False)
    priority = Column(Integer, nullable=False, default=3)  # 1 highest … 3 normal
    state = Column(String(12), nullable=False, default="registered")
    assigned_to = Column(String(100))  # the department or station handling it
    assigned_station_id = Column(Integer, ForeignKey("stations.id", ondelete="SET NULL"), index=True)
    answer_text = Column(Text)  # 答复; for 不予受理, the reason given to the user
    rating = Column(String(4))  # the user's latest rating
    reopened = Column(Integer, nullable=False, default=0)  # times reopened after 不满意
    accepted_at = Timestamp()  # 受理 (分类指导)
    state_changed_at = Timestamp(nullable=False)
    due_at = Timestamp()  # deadline of the current state; None once closed
    created_at = Timestamp(nullable=False, default=utcnow)
    updated_at = Timestamp(nullable=False, default=utcnow)
    closed_at = Timestamp()


class CaseEvent(Base):
    """One line of a case's history. Append-only: nothing updates or deletes these rows,
    not even the unfollow eraser (they hold no OpenID and no phone number)."""

    __tablename__ = "complaint_events"
    __table_args__ = (
        CheckConstraint(_one_of("kind", CASE_EVENT_KINDS), name="kind"),
        CheckConstraint("(kind = 'transition') = (to_state IS NOT NULL)", name="transition"),
        CheckConstraint("from_state IS NULL OR " + _one_of("from_state", COMPLAINT_STATES), name="from_state"),
        CheckConstraint("to_state IS NULL OR " + _one_of("to_state", COMPLAINT_STATES), name="to_state"),
    )

    id = Column(Integer, primary_key=True)
    case_id = Column(Integer, ForeignKey("complaint_cases.id", ondelete="RESTRICT"), nullable=False, index=True)
    kind = Column(String(24), nullable=False)
    from_state = Column(String(12))
    to_state = Column(String(12))
    action = Column(String(20))  # 登记 / 分类指导 / 承办 / 答复 / 回访 / 办结 / 不予受理 / 重新办理
    actor = Column(String(50), nullable=False)  # 'user', 'bot', 'system' or a staff member's name
    note = Column(Text)  # for 'attachment': "image:<WeChat media_id>"
    happened_at = Timestamp(nullable=False, default=utcnow)


class ContactDraft(Base):
    """A phone number a user typed in chat when the bot asked for one (a complaint's
    case phone), kept only until the action that asked takes it, at most 30 minutes.

    The chat channel stores it here, protected like every phone number, and passes
    only a marker on to Rasa: the number never reaches the tracker or a log line."""

    __tablename__ = "contact_drafts"

    id = Column(Integer, primary_key=True)
    openid = Column(String(64), nullable=False, index=True)
    purpose = Column(String(20), nullable=False)  # the slot that asked: complaint_phone
    phone_hash = Column(String(64), nullable=False)
    phone_cipher = Column(Text, nullable=False)
    phone_masked = Column(String(20), nullable=False)
    created_at = Timestamp(nullable=False, default=utcnow)


# --- the WeChat edge: the shared access token and what could not be handled -------------

FAILURE_DIRECTIONS = ("in", "out")


class WechatToken(Base):
    """The account's access_token, shared by every gateway when there is no Redis
    (bot.wechat.dbtoken), and the lock that lets one process at a time renew it.

    The token is a credential: with a vault it is stored AES-GCM encrypted
    (``token_cipher``), without one in ``token_plain``; never both. A process
    renewing it holds ``refreshing_until`` (claimed by a guarded UPDATE, so only one
    wins) and names itself in ``refresh_holder``, so that it releases only its own lock."""

    __tablename__ = "wechat_tokens"
    __table_args__ = (CheckConstraint("token_cipher IS NULL OR token_plain IS NULL", name="one_token"),)

    appid = Column(String(32), primary_key=True)
    token_cipher = Column(Text)
    token_plain = Column(Text)
    expires_at = Timestamp()
    updated_at = Timestamp(nullable=False, default=utcnow)
    refreshing_until = Timestamp()
    refresh_holder = Column(String(32))


class WechatFailure(Base):
    """A message the gateway could not handle (``in``: the bot was down …) or deliver
    (``out``: the user's 48-hour window closed, WeChat refused …), kept for staff
    until one of them resolves it (bot.services.wechat_failures).

    ``text`` is redacted by the caller for ``in``; for ``out`` it is the message that
    did not arrive. Deleted when the user unfollows, like everything under an OpenID."""

    __tablename__ = "wechat_failures"
    __table_args__ = (
        CheckConstraint(_one_of("direction", FAILURE_DIRECTIONS), name="direction"),
        Index("ix_wechat_failures_resolved_at_created_at", "resolved_at", "created_at"),
    )

    id = Column(Integer, primary_key=True)
    openid = Column(String(64), nullable=False, index=True)
    direction = Column(String(3), nullable=False)
    kind = Column(String(32), nullable=False)  # rasa_down, window_closed, send_failed, unrenderable …
    text = Column(Text)
    reason = Column(Text, nullable=False)  # errcode and errmsg, or the error's type: no personal data
    ref = Column(String(64))  # what the message was about, from the outbox: complaint:TS…, appointment:YY…
    outbox_id = Column(Integer, ForeignKey("outbox.id", ondelete="SET NULL"), index=True)
    created_at = Timestamp(nullable=False, default=utcnow)
    resolved_at = Timestamp()
    resolved_by = Column(String(50))  # the staff member


# --- human handoff: conversations staff take over ---------------------------------------

HANDOFF_REASONS = ("request_human", "fallback", "urgent", "staff")
HANDOFF_STATES = ("waiting", "claimed", "closed")


class Handoff(Base):
    """A conversation handed to staff (bot.services.handoff): waiting in the queue, held by
    a staff member, or handed back. At most one open (not closed) handoff per user.

    The conversation itself stays in Rasa's tracker store (paused while staff hold it);
    this row is the queue entry and who did what when."""

    __tablename__ = "handoffs"
    __table_args__ = (
        CheckConstraint(_one_of("reason", HANDOFF_REASONS), name="reason"),
        CheckConstraint(_one_of("state", HANDOFF_STATES), name="state"),
        CheckConstraint("(state = 'closed') = (closed_at IS NOT NULL)", name="closed_at"),
        CheckConstraint("state = 'waiting' OR claimed_at IS NOT NULL", name="claimed_at"),
        # One open handoff per user (the queue shows each conversation once).
        Index("uq_handoffs_open_openid", "openid", unique=True,
              sqlite_where=text("state != 'closed'"), postgresql_where=text("state != 'closed'")),
        Index("ix_handoffs_state_created_at", "state", "created_at"),
    )

    id = Column(Integer, primary_key=True)
    openid = Column(String(64), nullable=False, index=True)
    reason = Column(String(16), nullable=False)
    urgent = Column(Boolean, nullable=False, default=False)
    case_number = Column(String(20))  # the urgent complaint that caused it
    station_id = Column(Integer, ForeignKey("stations.id", ondelete="SET NULL"), index=True)  # for scoping
    state = Column(String(8), nullable=False, default="waiting")
    created_at = Timestamp(nullable=False, default=utcnow)
    claimed_at = Timestamp()
    claimed_by = Column(String(50))
    closed_at = Timestamp()
    closed_by = Column(String(50))  # the staff member's username, or 用户撤回 (the user left the queue)
    # When the user was last told "已收到" while waiting (at most once per interval).
    acknowledged_at = Timestamp()


class HandoffNote(Base):
    """An internal note on a handoff (内部备注): for colleagues, never sent to the user.
    Deleted with the handoff when the user unfollows."""

    __tablename__ = "handoff_notes"

    id = Column(Integer, primary_key=True)
    handoff_id = Column(Integer, ForeignKey("handoffs.id", ondelete="CASCADE"), nullable=False, index=True)
    staff = Column(String(50), nullable=False)  # the author's name as shown
    text = Column(Text, nullable=False)
    created_at = Timestamp(nullable=False, default=utcnow)


# --- the staff console: accounts, sign-in, and the audit trail (bot.services.staff) -----

STAFF_ROLES = ("admin", "district", "station", "trainer")


class StaffAccount(Base):
    """A console account: 系统管理员 (admin), 区中心工作人员 (district), 服务站工作人员
    (station) or 语料训练员 (trainer).

    ``station_id`` anchors the account's data scope: the district centre for district
    staff, their own street or community station for station staff, and nothing for
    admins and trainers (a CHECK below). That a district account sits at a district-tier
    station, and a station account at a street or community one, spans two tables and is
    checked by ``bot.services.staff.create_account``. Accounts are never deleted
    (the audit trail points at them): they are deactivated (``active``), and may be
    reactivated."""

    __tablename__ = "staff_accounts"
    __table_args__ = (
        CheckConstraint(_one_of("role", STAFF_ROLES), name="role"),
        CheckConstraint("(role IN ('district', 'station')) = (station_id IS NOT NULL)", name="station_by_role"),
        # Only argon2id hashes: a clear password or an old algorithm cannot be stored.
        CheckConstraint("password_hash LIKE '$argon2id$%'", name="password_hash"),
        CheckConstraint("username = lower(username)", name="username_lower"),
    )

    id = Column(Integer, primary_key=True)
    username = Column(String(32), nullable=False, unique=True)  # ASCII, lower case: wangkz
    display_name = Column(String(50), nullable=False)  # 王科长
    password_hash = Column(String(255), nullable=False)
    role = Column(String(10), nullable=False)
    station_id = Column(Integer, ForeignKey("stations.id", ondelete="RESTRICT"), index=True)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Timestamp(nullable=False, default=utcnow)
    password_changed_at = Timestamp(nullable=False, default=utcnow)
    last_login_at = Timestamp()
    # Set by an admin's reset (a one-time password): until the holder chooses a password
    # of their own, every console page but the change-password page leads there.
    must_change_password = Column(Boolean, nullable=False, default=False, server_default=false())

    station = relationship("Station")


class StaffLoginFailure(Base):
    """A failed console sign-in, kept only for the throttling window, then deleted.

    ``username_key`` is a keyed hash of the name typed (people type their password
    into the name field), ``address`` the client address."""

    __tablename__ = "staff_login_failures"
    __table_args__ = (
        Index("ix_staff_login_failures_username_key_failed_at", "username_key", "failed_at"),
        Index("ix_staff_login_failures_address_failed_at", "address", "failed_at"),
    )

    id = Column(Integer, primary_key=True)
    username_key = Column(String(64), nullable=False)
    address = Column(String(64), nullable=False)
    failed_at = Timestamp(nullable=False, index=True)


class ConsoleSession(Base):
    """A signed-in browser. ``id`` is the SHA-256 of the cookie's random token, so the
    table alone cannot be replayed; signing out deletes the row. ``csrf_secret`` keys
    the forms' CSRF tokens for this session (bot.console.auth)."""

    __tablename__ = "console_sessions"
    __table_args__ = (CheckConstraint("created_at < expires_at", name="expiry"),)

    id = Column(String(64), primary_key=True)
    staff_id = Column(Integer, ForeignKey("staff_accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    csrf_secret = Column(String(64), nullable=False)
    created_at = Timestamp(nullable=False)
    last_seen_at = Timestamp(nullable=False)
    expires_at = Timestamp(nullable=False, index=True)  # idle expiry, moved on by use

    staff = relationship("StaffAccount")


class AuditEntry(Base):
    """审计日志: who did or saw what, and when. Append-only: the migration installs
    triggers that refuse UPDATE and DELETE on both databases. ``detail`` never holds a
    personal number (bot.services.staff.audit redacts it); ``staff_id`` is None for
    the command line."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object_type_object_id", "object_type", "object_id"),)

    id = Column(Integer, primary_key=True)
    staff_id = Column(Integer, ForeignKey("staff_accounts.id", ondelete="RESTRICT"), index=True)
    action = Column(String(40), nullable=False)  # login, logout, veteran.view, audit.view …
    object_type = Column(String(40), nullable=False)  # veteran, complaint, staff_account …
    object_id = Column(String(64))
    detail = Column(String(200))
    at = Timestamp(nullable=False, index=True)

    staff = relationship("StaffAccount")


class ConversationErasure(Base):
    """A user who unfollowed, whose Rasa conversation is still to be deleted.

    The gateway writes the row in the transaction that erases the user's data here
    (bot.services.erasure.forget_openid), then asks Rasa to delete the conversation
    under its lock (bot.tracker_erasure); the row goes when Rasa confirms. While Rasa
    is down the gateway retries (bot.services.conversations), so no conversation
    outlives an unfollow because a process was restarting."""

    __tablename__ = "conversation_erasures"

    id = Column(Integer, primary_key=True)
    openid = Column(String(64), nullable=False, unique=True)
    requested_at = Timestamp(nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Timestamp(nullable=False, index=True)
    last_error = Column(String(200))  # the error's type or Rasa's status: no personal data


class WechatWindow(Base):
    """When a user last wrote to the account (a message, a menu click, following it):
    WeChat accepts customer-service messages to them for 48 hours after that, and the
    delivery worker sends template messages otherwise (bot.services.wechat_window).
    Deleted when the user unfollows."""

    __tablename__ = "wechat_windows"

    openid = Column(String(64), primary_key=True)
    last_inbound_at = Timestamp(nullable=False)
