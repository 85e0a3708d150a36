"""Staff accounts (工作人员账号): creation, sign-in, passwords and the audit trail.

Passwords are hashed with argon2id (argon2-cffi's RFC 9106 defaults) and checked on
every sign-in; the database refuses anything but an argon2id hash. Sign-in takes about
as long for an unknown name as for a known one (a dummy hash is verified), and failed
attempts are throttled per name typed and per client address within a sliding window.

Data scope (what case data a staff member may see, by station) is one rule:
bot.services.scope.Scope.

The audit log is append-only (the database refuses UPDATE and DELETE); ``audit``
redacts personal numbers out of the detail before writing it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from enum import Enum
from typing import Dict, List, Optional, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.db.models import STAFF_ROLES, AuditEntry, ConsoleSession, StaffAccount, StaffLoginFailure, Station
from bot.db.session import as_utc
from bot.pii import PiiVault
from bot.redaction import redact

log = logging.getLogger(__name__)

ROLE_LABELS: Dict[str, str] = {
    "admin": "系统管理员",
    "district": "区中心工作人员",
    "station": "服务站工作人员",
    "trainer": "语料训练员",
}
assert set(ROLE_LABELS) == set(STAFF_ROLES)
# The tier of the station each scoped role must be anchored at.
ROLE_STATION_TIERS: Dict[str, tuple] = {"district": ("district",), "station": ("street", "community")}

USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,31}")
DISPLAY_NAME_MAX = 50
PASSWORD_MIN = 10
PASSWORD_MAX = 128
# Short list of what people choose first; the length and class rules catch most others.
COMMON_PASSWORDS = frozenset({
    "password123", "password1234", "password@123", "p@ssw0rd123", "admin12345", "admin@12345",
    "qwerty12345", "qwer1234!@#$", "1qaz2wsx3edc", "1qaz@wsx3edc", "abc123456!", "abcd@123456",
    "a123456789", "aa123456789", "woaini1314!", "zxcvbnm123!",
})

FAILURE_WINDOW = dt.timedelta(minutes=15)
USERNAME_FAILURE_LIMIT = 5
ADDRESS_FAILURE_LIMIT = 20

WRONG_CREDENTIALS = "用户名或密码错误。"
WRONG_CURRENT_PASSWORD = "原密码不正确。"

_hasher = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4 (RFC 9106 low-memory profile)
_dummy_hash: Optional[str] = None


class StaffError(ValueError):
    """A request the rules refuse; ``message`` is Chinese and can be shown as is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class StaffLike(Protocol):
    """What the scope and audit helpers need of a staff member: the ORM row or the
    console's signed-in snapshot (bot.console.auth.SignedIn)."""

    id: int
    role: str
    station_id: Optional[int]


# --- names and passwords ------------------------------------------------------------------


def normalize_username(raw: str) -> str:
    """Full-width letters folded (ＷＡＮＧ → wang), surrounding spaces dropped, lower case."""
    return unicodedata.normalize("NFKC", raw or "").strip().lower()


def username_problem(username: str) -> Optional[str]:
    if not USERNAME.fullmatch(username):
        return "用户名须为3至32位，以英文字母开头，只能包含英文字母、数字、点、下划线或连字符。"
    return None


def password_problem(password: str, username: str = "") -> Optional[str]:
    """Why a new password is not good enough, in Chinese, or None.

    等保 2.0 practice: at least 10 characters and three of the four kinds of
    characters; not the user name; not one of the passwords everybody tries first."""
    if len(password) < PASSWORD_MIN:
        return f"密码至少需要{PASSWORD_MIN}位。"
    if len(password) > PASSWORD_MAX:
        return f"密码不能超过{PASSWORD_MAX}位。"
    if password != password.strip():
        return "密码首尾不能是空格。"
    kinds = sum((
        any(c.isascii() and c.islower() for c in password),
        any(c.isascii() and c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ))
    if kinds < 3:
        return "密码须包含大写字母、小写字母、数字、符号中的至少三类。"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名。"
    if password.lower() in COMMON_PASSWORDS:
        return "这个密码太常见，容易被猜中，请换一个。"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _burn_time(password: str) -> None:
    """Verify against a hash of nothing, so an unknown name takes as long as a known one."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("vetbot-dummy-password-never-valid")
    _verify(_dummy_hash, password)


# --- accounts -----------------------------------------------------------------------------


def find_account(session: Session, username: str) -> Optional[StaffAccount]:
    return session.execute(
        select(StaffAccount).where(StaffAccount.username == normalize_username(username))
    ).scalar_one_or_none()


def create_account(session: Session, username: str, display_name: str, password: str, role: str,
                   station_code: Optional[str], now: dt.datetime,
                   created_by: Optional[StaffLike] = None) -> StaffAccount:
    """A new active account; raises StaffError with the reason, in Chinese."""
    username = normalize_username(username)
    display_name = (display_name or "").strip()
    problem = username_problem(username)
    if problem:
        raise StaffError(problem)
    if not display_name:
        raise StaffError("请填写姓名（显示名），例如：王科长。")
    if len(display_name) > DISPLAY_NAME_MAX:
        raise StaffError(f"姓名不能超过{DISPLAY_NAME_MAX}个字。")
    if role not in STAFF_ROLES:
        choices = "、".join(f"{r}（{ROLE_LABELS[r]}）" for r in STAFF_ROLES)
        raise StaffError(f"角色只能是：{choices}。")

    station: Optional[Station] = None
    if role in ROLE_STATION_TIERS:
        if not station_code:
            raise StaffError(f"{ROLE_LABELS[role]}必须指定所属站点（站点代码，如 JD-AT）。")
        station = session.execute(select(Station).where(Station.code == station_code.strip())).scalar_one_or_none()
        if station is None:
            raise StaffError(f"没有代码为 {station_code} 的站点，请核对 data/stations.yml 中的站点代码。")
        if station.tier not in ROLE_STATION_TIERS[role]:
            if role == "district":
                raise StaffError(f"区中心工作人员须属于区退役军人服务中心，{station.name}不是区中心。")
            raise StaffError(f"{station.name}是区中心；区中心的工作人员请使用 district 角色。")
    elif station_code:
        raise StaffError(f"{ROLE_LABELS[role]}不属于某个站点，请不要指定站点。")

    problem = password_problem(password, username)
    if problem:
        raise StaffError(problem)
    if find_account(session, username) is not None:
        raise StaffError(f"用户名 {username} 已被使用。")

    account = StaffAccount(username=username, display_name=display_name, password_hash=hash_password(password),
                           role=role, station=station, active=True, created_at=now, password_changed_at=now)
    session.add(account)
    session.flush()
    audit(session, created_by, "staff.create", "staff_account", account.id,
          f"{username}（{ROLE_LABELS[role]}{'，' + station.name if station else ''}）", now)
    return account


def _whom(account: StaffAccount, note: Optional[str]) -> str:
    """The audit line's detail: whose account, and (from the command line) who ran it."""
    return account.username + (f"（{note}）" if note else "")


def change_password(session: Session, account: StaffAccount, old_password: str, new_password: str,
                    now: dt.datetime, keep_session: Optional[str] = None) -> None:
    """The holder's own change: the old password first. Every other signed-in browser
    of the account is signed out (all of them when ``keep_session`` is None), and a
    one-time password's must-change mark is cleared."""
    if not _verify(account.password_hash, old_password):
        raise StaffError(WRONG_CURRENT_PASSWORD)
    if new_password == old_password:
        raise StaffError("新密码不能与原密码相同。")
    set_password(session, account, new_password, now, keep_session=keep_session, by=account)


def set_password(session: Session, account: StaffAccount, new_password: str, now: dt.datetime,
                 keep_session: Optional[str] = None, by: Optional[StaffLike] = None,
                 note: Optional[str] = None) -> None:
    """A password chosen by its holder (``change_password``, or ``vetbot staff passwd``
    on the server); ends the account's other sessions. The password is never audited."""
    problem = password_problem(new_password, account.username)
    if problem:
        raise StaffError(problem)
    account.password_hash = hash_password(new_password)
    account.password_changed_at = now
    account.must_change_password = False
    end_sessions(session, account.id, keep=keep_session)
    audit(session, by, "staff.password", "staff_account", account.id, _whom(account, note), now)


# A one-time password: no 0/O, 1/l/I to misread when it is passed on by phone.
_OTP_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_OTP_LOWER = "abcdefghijkmnpqrstuvwxyz"
_OTP_DIGITS = "23456789"


def generate_password(username: str = "") -> str:
    """Three groups of four (e.g. Hk7p-Xm3q-9Tdw): about 70 bits, every kind of character,
    and within ``password_problem``'s rules."""
    alphabet = _OTP_UPPER + _OTP_LOWER + _OTP_DIGITS
    while True:
        password = "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        if (any(c in _OTP_UPPER for c in password) and any(c in _OTP_LOWER for c in password)
                and any(c in _OTP_DIGITS for c in password) and password_problem(password, username) is None):
            return password


def reset_password(session: Session, account: StaffAccount, now: dt.datetime, by: Optional[StaffLike] = None,
                   note: Optional[str] = None) -> str:
    """重置密码 (an admin for someone else): a generated one-time password, returned to be
    shown once and never stored in clear; every session of the account ends, and the
    holder must choose a password of their own at the next sign-in."""
    password = generate_password(account.username)
    account.password_hash = hash_password(password)
    account.password_changed_at = now
    account.must_change_password = True
    end_sessions(session, account.id)
    audit(session, by, "staff.reset", "staff_account", account.id, _whom(account, note), now)
    return password


def active_admins(session: Session) -> int:
    return session.execute(
        select(func.count()).select_from(StaffAccount).where(StaffAccount.role == "admin", StaffAccount.active)
    ).scalar_one()


def deactivate(session: Session, account: StaffAccount, now: dt.datetime, by: Optional[StaffLike] = None,
               note: Optional[str] = None) -> None:
    """停用: the account can no longer sign in, and its open sessions end now. Nobody
    deactivates their own account, nor the last active admin (the console would have
    no one left to manage it)."""
    if not account.active:
        raise StaffError(f"账号 {account.username} 已是停用状态。")
    if by is not None and by.id == account.id:
        raise StaffError("不能停用自己正在使用的账号。")
    if account.role == "admin" and active_admins(session) <= 1:
        raise StaffError(f"{account.username} 是唯一启用的系统管理员账号，不能停用；请先启用或创建另一个管理员账号。")
    account.active = False
    end_sessions(session, account.id)
    audit(session, by, "staff.deactivate", "staff_account", account.id, _whom(account, note), now)


def activate(session: Session, account: StaffAccount, now: dt.datetime, by: Optional[StaffLike] = None,
             note: Optional[str] = None) -> None:
    """启用 a deactivated account again, with the password it had (reset it as well
    when its holder has changed)."""
    if account.active:
        raise StaffError(f"账号 {account.username} 已是启用状态。")
    account.active = True
    audit(session, by, "staff.activate", "staff_account", account.id, _whom(account, note), now)


def end_sessions(session: Session, staff_id: int, keep: Optional[str] = None) -> None:
    statement = delete(ConsoleSession).where(ConsoleSession.staff_id == staff_id)
    if keep is not None:
        statement = statement.where(ConsoleSession.id != keep)
    session.execute(statement)


# --- sign-in and throttling --------------------------------------------------------------


class SignInStatus(Enum):
    OK = "ok"
    WRONG = "wrong"  # unknown name, wrong password or deactivated account: one message for all
    THROTTLED = "throttled"


@dataclass(frozen=True)
class SignInResult:
    status: SignInStatus
    account: Optional[StaffAccount] = None
    message: str = ""


def _username_key(vault: PiiVault, username: str) -> str:
    return vault.lookup_hash("staff-login", username)


def _wait(session: Session, column, value: str, limit: int, now: dt.datetime) -> Optional[dt.timedelta]:
    times = session.execute(
        select(StaffLoginFailure.failed_at).where(column == value, StaffLoginFailure.failed_at > now - FAILURE_WINDOW)
        .order_by(StaffLoginFailure.failed_at.desc()).limit(limit)
    ).scalars().all()
    if len(times) < limit:
        return None
    # Allowed again once the oldest of the last `limit` failures leaves the window.
    return as_utc(times[-1]) + FAILURE_WINDOW - now


def throttled_for(session: Session, vault: PiiVault, username: str, address: str,
                  now: dt.datetime) -> Optional[dt.timedelta]:
    """How long sign-in stays refused for this name or this address, or None when it is allowed."""
    waits = [wait for wait in (
        _wait(session, StaffLoginFailure.username_key, _username_key(vault, username), USERNAME_FAILURE_LIMIT, now),
        _wait(session, StaffLoginFailure.address, address, ADDRESS_FAILURE_LIMIT, now),
    ) if wait is not None]
    return max(waits) if waits else None


def name_throttled_for(session: Session, vault: PiiVault, username: str,
                       now: dt.datetime) -> Optional[dt.timedelta]:
    """How long sign-in stays refused for this name whatever the address (the accounts page)."""
    return _wait(session, StaffLoginFailure.username_key, _username_key(vault, username), USERNAME_FAILURE_LIMIT, now)


def record_failure(session: Session, vault: PiiVault, username: str, address: str, now: dt.datetime) -> None:
    """One failed attempt (a sign-in, or a wrong current password on the change-password
    page) for the name and the address; failures older than the window are pruned."""
    session.execute(delete(StaffLoginFailure).where(StaffLoginFailure.failed_at <= now - FAILURE_WINDOW))
    session.add(StaffLoginFailure(username_key=_username_key(vault, username), address=(address or "unknown")[:64],
                                  failed_at=now))
    session.flush()


def unlock(session: Session, vault: PiiVault, account: StaffAccount, now: dt.datetime,
           by: Optional[StaffLike] = None, note: Optional[str] = None) -> int:
    """解除登录限制: forget the failed attempts for the account's name (not those of an
    address: they end by themselves with the window). Returns how many were forgotten."""
    cleared = session.execute(
        delete(StaffLoginFailure).where(StaffLoginFailure.username_key == _username_key(vault, account.username))
    ).rowcount or 0
    audit(session, by, "staff.unlock", "staff_account", account.id, _whom(account, note), now)
    return cleared


def throttled_message(wait: dt.timedelta) -> str:
    minutes = max(1, -(-int(wait.total_seconds()) // 60))
    return f"登录失败次数过多，为保护账号安全，请{minutes}分钟后再试。"


def authenticate(session: Session, vault: PiiVault, username: str, password: str, address: str,
                 now: dt.datetime) -> SignInResult:
    """Check a sign-in. Failures are recorded (and old ones pruned) in this transaction,
    so the caller must commit even when the answer is WRONG."""
    username = normalize_username(username)[:64]
    address = (address or "unknown")[:64]
    wait = throttled_for(session, vault, username, address, now)
    if wait is not None:
        log.warning("console sign-in throttled", extra={"address": address})
        return SignInResult(SignInStatus.THROTTLED, message=throttled_message(wait))

    account = find_account(session, username) if USERNAME.fullmatch(username) else None
    if account is None:
        _burn_time(password)
        ok = False
    else:
        ok = _verify(account.password_hash, password) and account.active

    if not ok:
        record_failure(session, vault, username, address, now)
        log.info("console sign-in failed", extra={"address": address})
        return SignInResult(SignInStatus.WRONG, message=WRONG_CREDENTIALS)

    assert account is not None
    session.execute(delete(StaffLoginFailure).where(StaffLoginFailure.username_key == _username_key(vault, username)))
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    account.last_login_at = now
    return SignInResult(SignInStatus.OK, account=account)


# --- the audit log --------------------------------------------------------------------------

AUDIT_PAGE = 100


def audit(session: Session, staff: Optional[StaffLike], action: str, object_type: str,
          object_id: object, detail: Optional[str], now: dt.datetime) -> AuditEntry:
    """Append one line to the audit log (None for ``staff``: the command line)."""
    if detail:
        detail = redact(detail).text[:200]
    entry = AuditEntry(staff_id=staff.id if staff is not None else None, action=action[:40],
                       object_type=object_type[:40], object_id=None if object_id is None else str(object_id)[:64],
                       detail=detail or None, at=now)
    session.add(entry)
    session.flush()
    return entry


def audit_entries(session: Session, viewer: StaffLike, *, limit: int = AUDIT_PAGE, before_id: Optional[int] = None,
                  staff_id: Optional[int] = None, object_type: Optional[str] = None,
                  action: Optional[str] = None) -> List[AuditEntry]:
    """The newest audit lines first (admins only), ``limit`` at a time; page on with ``before_id``."""
    if viewer.role != "admin":
        raise StaffError("只有系统管理员可以查看审计日志。")
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 500)))
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if staff_id is not None:
        query = query.where(AuditEntry.staff_id == staff_id)
    if object_type:
        query = query.where(AuditEntry.object_type == object_type)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(session.execute(query).scalars())


def count_accounts(session: Session) -> int:
    return session.execute(select(func.count()).select_from(StaffAccount)).scalar_one()
