"""身份绑定: proving that a WeChat user (OpenID) is a veteran on the roster.

The bot never asks for an ID number in chat. Instead it sends a one-time link
(signed, 10 minutes, single use) to a mobile page where the user enters name,
ID number and phone; these must match the roster, and a 6-digit code sent by
SMS to the roster's phone must come back (step 2) before the binding is made.
Five failures in a row lock binding for that OpenID for 30 minutes; the user is
never told which field was wrong.

Keys: the PII vault is the one key holder. Link signatures, code hashes and the
OpenID hashes of the audit trail are HMACs under its key (derived from
VETBOT_SECRET_KEY, or VETBOT_PII_KEY), each with its own purpose prefix.
Every function takes ``now`` (timezone-aware) so that tests control time.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hmac
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.clock import SHANGHAI
from bot.db.models import BindingAudit, BindingLink, BindingLock, Veteran, WechatBinding
from bot.db.session import as_utc, dialect_insert
from bot.pii import VETERAN_PHONE, NotDecryptable, PiiVault, mask_phone, normalize_phone
from bot.services.sms import CodeSender

log = logging.getLogger(__name__)

LINK_TTL = dt.timedelta(minutes=10)
CODE_TTL = dt.timedelta(minutes=5)
RESEND_INTERVAL = dt.timedelta(seconds=60)
MAX_FAILURES = 5
LOCK_DURATION = dt.timedelta(minutes=30)
CODE_DIGITS = 6

NEW_LINK_HINT = "请返回微信对话，向助手发送“绑定身份”获取新的链接。"


# --- small helpers -------------------------------------------------------------------



def format_beijing(when: dt.datetime) -> str:
    """``14:35`` in Beijing time, the clock the user reads."""
    return as_utc(when).astimezone(SHANGHAI).strftime("%H:%M")


_DOTS = str.maketrans({c: "·" for c in "•・．.‧∙⋅"})


def normalize_name(raw: str) -> str:
    """Names as typed on phones: full-width forms, spaces, the many middle dots of
    minority names (买买提·艾力) all compare equal."""
    text = unicodedata.normalize("NFKC", raw or "")
    return re.sub(r"\s+", "", text).translate(_DOTS)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def openid_hash(vault: PiiVault, openid: str) -> str:
    return vault.lookup_hash("openid", openid)


def _link_signature(vault: PiiVault, payload: str) -> str:
    return _b64(bytes.fromhex(vault.lookup_hash("binding-link", payload)))


def _code_hash(vault: PiiVault, nonce: str, code: str) -> str:
    return vault.lookup_hash("binding-code", f"{nonce}:{code}")


# Bulk deletes need not reconcile the identity map (and cannot compare SQLite's naive times).
_NO_SYNC = {"synchronize_session": False}


def _audit(session: Session, vault: PiiVault, openid: str, event: str, now: dt.datetime,
           veteran_id: Optional[int] = None, detail: Optional[str] = None) -> None:
    session.add(BindingAudit(openid_hash=openid_hash(vault, openid), veteran_id=veteran_id,
                             event=event, detail=detail, happened_at=now))


# --- links ---------------------------------------------------------------------------


def make_token(vault: PiiVault, nonce: str, expires_at: dt.datetime) -> str:
    payload = f"{nonce}.{int(as_utc(expires_at).timestamp())}"
    return f"{payload}.{_link_signature(vault, payload)}"


def read_token(vault: PiiVault, token: str) -> Optional[Tuple[str, dt.datetime]]:
    """(nonce, expiry) of a token signed by us, or None for a forged or malformed one."""
    parts = (token or "").strip().split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    nonce, expiry, signature = parts
    expected = _link_signature(vault, f"{nonce}.{expiry}")
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        return None
    return nonce, dt.datetime.fromtimestamp(int(expiry), dt.timezone.utc)


class LinkProblem(str, enum.Enum):
    """Why a link cannot be used; ``message`` is what the page says."""

    INVALID = "invalid"
    EXPIRED = "expired"
    USED = "used"

    @property
    def message(self) -> str:
        first = {
            LinkProblem.INVALID: "该绑定链接无效。",
            LinkProblem.EXPIRED: "该绑定链接已过期（链接10分钟内有效）。",
            LinkProblem.USED: "该绑定链接已使用过（每个链接只能使用一次）。",
        }[self]
        return first + NEW_LINK_HINT


@dataclass(frozen=True)
class LinkIssue:
    """The result of ``issue_link``: a URL, or the reason there is none."""

    url: Optional[str] = None
    expires_at: Optional[dt.datetime] = None
    refusal: Optional[str] = None
    locked_until: Optional[dt.datetime] = None

    @property
    def ok(self) -> bool:
        return self.url is not None


def locked_until(session: Session, openid: str, now: dt.datetime) -> Optional[dt.datetime]:
    """When binding unlocks for this OpenID, or None when it is not locked."""
    lock = session.get(BindingLock, openid)
    if lock is None or lock.locked_until is None:
        return None
    until = as_utc(lock.locked_until)
    return until if until > as_utc(now) else None


def locked_message(until: dt.datetime) -> str:
    return (f"身份核验未通过次数过多，为保护您的信息安全，身份绑定已暂停，"
            f"请于{format_beijing(until)}（北京时间）后再试。")


def issue_link(session: Session, vault: PiiVault, openid: str, base_url: str,
               now: dt.datetime) -> LinkIssue:
    """A one-time link ``<base_url>/bind?t=<token>`` for this OpenID, valid 10 minutes."""
    now = as_utc(now)
    until = locked_until(session, openid, now)
    if until is not None:
        return LinkIssue(refusal=locked_message(until), locked_until=until)
    # Housekeeping: this OpenID's dead links serve nobody.
    session.execute(delete(BindingLink).where(BindingLink.openid == openid,
                                              BindingLink.expires_at < now),
                    execution_options=_NO_SYNC)
    nonce = secrets.token_urlsafe(32)  # 43 characters, the column's width
    expires_at = now + LINK_TTL
    session.add(BindingLink(nonce=nonce, openid=openid, expires_at=expires_at))
    _audit(session, vault, openid, "link_issued", now)
    session.flush()
    url = f"{base_url.rstrip('/')}/bind?t={make_token(vault, nonce, expires_at)}"
    return LinkIssue(url=url, expires_at=expires_at)


def check_link(session: Session, vault: PiiVault, token: str, now: dt.datetime,
               for_update: bool = False) -> Union[BindingLink, LinkProblem]:
    """The link row of a usable token, or why the token cannot be used."""
    now = as_utc(now)
    read = read_token(vault, token)
    if read is None:
        return LinkProblem.INVALID
    nonce, token_expiry = read
    query = select(BindingLink).where(BindingLink.nonce == nonce)
    if for_update:
        query = query.with_for_update()
    link = session.execute(query).scalar_one_or_none()
    if link is None:
        return LinkProblem.INVALID
    if link.used_at is not None:
        return LinkProblem.USED
    if now >= min(token_expiry, as_utc(link.expires_at)):
        return LinkProblem.EXPIRED
    return link


# --- verification ------------------------------------------------------------------


class Status(str, enum.Enum):
    CODE_SENT = "code_sent"  # step 1 passed, the code is on its way
    BOUND = "bound"  # step 2 passed
    MISMATCH = "mismatch"  # step 1: name, ID or phone does not match (never says which)
    CODE_WRONG = "code_wrong"
    CODE_EXPIRED = "code_expired"
    NO_PENDING_CODE = "no_pending_code"  # step 2 without a passed step 1
    SEND_FAILED = "send_failed"  # the SMS could not be sent
    LOCKED = "locked"
    LINK_INVALID = "link_invalid"


@dataclass(frozen=True)
class Outcome:
    """What a verification step did, with the Chinese message to show."""

    status: Status
    message: str = ""
    tries_left: Optional[int] = None
    locked_until: Optional[dt.datetime] = None
    link_problem: Optional[LinkProblem] = None
    masked_phone: Optional[str] = None  # where the code went (step 1)
    code_resent: bool = True  # False when a code sent under a minute ago still stands

    @property
    def ok(self) -> bool:
        return self.status in (Status.CODE_SENT, Status.BOUND)


def _link_failure(problem: LinkProblem) -> Outcome:
    return Outcome(Status.LINK_INVALID, problem.message, link_problem=problem)


def _lock_row(session: Session, openid: str) -> BindingLock:
    """This OpenID's failure counter, created if missing and locked against racing requests."""
    session.execute(dialect_insert(session, BindingLock).values(openid=openid, failures=0)
                    .on_conflict_do_nothing(index_elements=["openid"]))
    return session.execute(
        select(BindingLock).where(BindingLock.openid == openid).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _active_lock(lock: BindingLock, now: dt.datetime) -> Optional[dt.datetime]:
    if lock.locked_until is not None and as_utc(lock.locked_until) > now:
        return as_utc(lock.locked_until)
    return None


def _locked(until: dt.datetime) -> Outcome:
    return Outcome(Status.LOCKED, locked_message(until), tries_left=0, locked_until=until)


def _fail(session: Session, vault: PiiVault, lock: BindingLock, now: dt.datetime,
          status: Status, first: str, detail: str, veteran_id: Optional[int]) -> Outcome:
    """Count one failure; the fifth in a row locks binding for 30 minutes."""
    lock.failures = (lock.failures or 0) + 1
    _audit(session, vault, lock.openid, "failed", now, veteran_id, detail)
    if lock.failures >= MAX_FAILURES:
        lock.failures = 0  # after the lock, five fresh tries
        lock.locked_until = now + LOCK_DURATION
        _audit(session, vault, lock.openid, "locked", now, veteran_id)
        log.info("binding locked after %d failures", MAX_FAILURES)
        return _locked(lock.locked_until)
    tries_left = MAX_FAILURES - lock.failures
    return Outcome(status, f"{first}还可尝试{tries_left}次。", tries_left=tries_left)


MISMATCH_MESSAGE = "信息核验未通过，请核对姓名、身份证号和手机号是否与登记信息一致。"


def _roster_match(session: Session, vault: PiiVault, name: str, id_number: str,
                  phone: str) -> Tuple[Optional[Veteran], bool]:
    """(the veteran with that ID if any, whether name and phone match too)."""
    veteran = session.execute(
        select(Veteran).where(Veteran.id_hash == vault.id_lookup(id_number or ""))
    ).scalar_one_or_none()
    if veteran is None:
        return None, False
    name_ok = hmac.compare_digest(normalize_name(veteran.name).encode("utf-8"),
                                  normalize_name(name).encode("utf-8"))
    phone_ok = bool(veteran.phone_hash) and hmac.compare_digest(
        veteran.phone_hash.encode("ascii"), vault.phone_lookup(phone or "").encode("ascii"))
    return veteran, name_ok and phone_ok and veteran.status != "已故"


def start_verification(session: Session, vault: PiiVault, token: str, name: str, id_number: str,
                       phone: str, sender: CodeSender, now: dt.datetime) -> Outcome:
    """Step 1: name, ID number and phone must match the roster; then a code goes by SMS."""
    now = as_utc(now)
    link = check_link(session, vault, token, now, for_update=True)
    if isinstance(link, LinkProblem):
        return _link_failure(link)
    lock = _lock_row(session, link.openid)
    until = _active_lock(lock, now)
    if until is not None:
        return _locked(until)

    veteran, matches = _roster_match(session, vault, name, id_number, phone)
    if not matches:
        return _fail(session, vault, lock, now, Status.MISMATCH, MISMATCH_MESSAGE, "identity",
                     veteran.id if veteran is not None else None)

    roster_phone = normalize_phone(phone)  # the roster's keyed hash matched it
    if veteran.phone_cipher:
        try:
            roster_phone = vault.decrypt(veteran.phone_cipher, VETERAN_PHONE, veteran.id_hash)
        except NotDecryptable:  # copied from another row or altered: the code goes where the hash says
            log.error("veteran %d: the stored phone does not decrypt in its row", veteran.id)
    masked = mask_phone(roster_phone)
    if (link.veteran_id == veteran.id and link.code_hash and link.code_expires_at is not None
            and now < as_utc(link.code_expires_at) - CODE_TTL + RESEND_INTERVAL):
        # A resubmitted form within a minute: the code already sent stands.
        return Outcome(Status.CODE_SENT, f"验证码已发送至{masked}，请查收短信（1分钟内不重复发送）。",
                       masked_phone=masked, code_resent=False)

    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    try:
        sender.send_code(roster_phone, code)
    except Exception as exc:  # the SMS gateway's failure is not the user's
        log.warning("binding code not sent: %s", type(exc).__name__)
        return Outcome(Status.SEND_FAILED, "验证码短信发送失败，请稍后再试。", masked_phone=masked)
    link.veteran_id = veteran.id
    link.code_hash = _code_hash(vault, link.nonce, code)
    link.code_expires_at = now + CODE_TTL
    _audit(session, vault, link.openid, "code_sent", now, veteran.id)
    return Outcome(Status.CODE_SENT, f"验证码已发送至{masked}，5分钟内有效。", masked_phone=masked)


_CODE_CHARS = str.maketrans("０１２３４５６７８９", "0123456789")


def normalize_code(raw: str) -> str:
    return re.sub(r"\s+", "", (raw or "").translate(_CODE_CHARS))


def confirm_code(session: Session, vault: PiiVault, token: str, code: str,
                 now: dt.datetime) -> Outcome:
    """Step 2: the code from the SMS; success binds this OpenID to the veteran."""
    now = as_utc(now)
    link = check_link(session, vault, token, now, for_update=True)
    if isinstance(link, LinkProblem):
        return _link_failure(link)
    lock = _lock_row(session, link.openid)
    until = _active_lock(lock, now)
    if until is not None:
        return _locked(until)
    if link.code_hash is None or link.veteran_id is None or link.code_expires_at is None:
        return Outcome(Status.NO_PENDING_CODE, "请先填写姓名、身份证号和手机号获取验证码。")

    if now >= as_utc(link.code_expires_at):
        link.code_hash = None
        link.code_expires_at = None
        return _fail(session, vault, lock, now, Status.CODE_EXPIRED,
                     "验证码已过期，请重新提交信息获取新的验证码。", "code_expired", link.veteran_id)
    expected = _code_hash(vault, link.nonce, normalize_code(code))
    if not hmac.compare_digest(expected.encode("ascii"), link.code_hash.encode("ascii")):
        return _fail(session, vault, lock, now, Status.CODE_WRONG,
                     "验证码不正确，请核对短信中的6位数字。", "code_wrong", link.veteran_id)

    binding = session.execute(
        select(WechatBinding).where(WechatBinding.openid == link.openid).with_for_update()
    ).scalar_one_or_none()
    if binding is None:
        session.add(WechatBinding(openid=link.openid, veteran_id=link.veteran_id, bound_at=now))
    else:
        binding.veteran_id = link.veteran_id
        binding.bound_at = now
    link.used_at = now
    link.code_hash = None
    link.code_expires_at = None
    lock.failures = 0
    lock.locked_until = None
    _audit(session, vault, link.openid, "bind", now, link.veteran_id)
    session.flush()
    return Outcome(Status.BOUND, "绑定成功，请返回微信对话。")


# --- the binding itself ----------------------------------------------------------------


def binding_for(session: Session, openid: str) -> Optional[WechatBinding]:
    """This OpenID's binding, with its veteran, or None."""
    return session.execute(
        select(WechatBinding).where(WechatBinding.openid == openid)
    ).scalar_one_or_none()


def unbind(session: Session, vault: PiiVault, openid: str, now: dt.datetime) -> bool:
    """解除绑定. Returns whether there was a binding."""
    binding = binding_for(session, openid)
    if binding is None:
        return False
    veteran_id = binding.veteran_id
    session.delete(binding)
    _audit(session, vault, openid, "unbind", as_utc(now), veteran_id)
    session.flush()
    return True


# --- unfollow: WeChat requires deleting what we hold about the OpenID ------------------
# bot.services.erasure lists every module's eraser and runs them; these are identity's part.


def erase_identity_data(session: Session, openid: str, now: dt.datetime) -> None:
    """The binding, the binding links and the failure counter of this OpenID."""
    for model in (WechatBinding, BindingLink, BindingLock):
        session.execute(delete(model).where(model.openid == openid), execution_options=_NO_SYNC)


def record_unfollow(session: Session, vault: PiiVault, openid: str, now: dt.datetime) -> None:
    """The audit trail notes (by hash) that this OpenID's data was deleted."""
    _audit(session, vault, openid, "unfollow_deleted", as_utc(now))
    session.flush()
