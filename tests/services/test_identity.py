"""Identity binding on SQLite and PostgreSQL: links, verification, locks, audit, erasure."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select

from bot import idcard
from bot.db.models import BindingAudit, BindingLink, BindingLock, WechatBinding
from bot.db.session import as_utc, session_scope
from bot.pii import PiiVault
from bot.services import erasure, identity
from bot.services.identity import LinkProblem, Status
from bot.services.sms import LogCodeSender, load_sender
from bot.settings import Settings
from tests.services.veterans import add_veteran

T0 = dt.datetime(2024, 8, 1, 2, 0, tzinfo=dt.timezone.utc)  # 10:00 北京时间
BASE = "https://vetbot.example.gov.cn"
OPENID = "oUser-0001-aaaaaaaaaaaaaaaaaaa"
OTHER = "oUser-0002-bbbbbbbbbbbbbbbbbbb"


def at(minutes: float = 0, seconds: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes, seconds=seconds)


def token_of(url: str) -> str:
    assert url.startswith(f"{BASE}/bind?t=")
    return url.split("?t=", 1)[1]


@pytest.fixture
def veteran(session_factory, vault):
    return add_veteran(session_factory, vault)


@pytest.fixture
def sender():
    return LogCodeSender()


def issue(session_factory, vault, openid=OPENID, now=T0) -> str:
    with session_scope(session_factory) as session:
        issued = identity.issue_link(session, vault, openid, BASE, now)
    assert issued.ok, issued.refusal
    return token_of(issued.url)


def step1(session_factory, vault, token, entry, sender, now=T0, **override):
    fields = {"name": entry.name, "id_number": entry.id_number, "phone": entry.phone}
    fields.update(override)
    with session_scope(session_factory) as session:
        return identity.start_verification(session, vault, token, fields["name"], fields["id_number"],
                                           fields["phone"], sender, now)


def step2(session_factory, vault, token, code, now=T0):
    with session_scope(session_factory) as session:
        return identity.confirm_code(session, vault, token, code, now)


def audit_events(session_factory):
    with session_scope(session_factory) as session:
        return [row.event for row in session.execute(select(BindingAudit).order_by(BindingAudit.id)).scalars()]


def count(session_factory, model, openid):
    with session_scope(session_factory) as session:
        return session.execute(select(func.count()).select_from(model).where(model.openid == openid)).scalar_one()


# --- links -----------------------------------------------------------------------------


def test_link_is_signed_recorded_and_expires_after_ten_minutes(session_factory, vault):
    token = issue(session_factory, vault)
    nonce, expiry = identity.read_token(vault, token)
    assert expiry == at(10)
    with session_scope(session_factory) as session:
        link = session.execute(select(BindingLink)).scalar_one()
        assert (link.nonce, link.openid, link.used_at) == (nonce, OPENID, None)
        assert isinstance(identity.check_link(session, vault, token, at(9, 59)), BindingLink)
        assert identity.check_link(session, vault, token, at(10)) is LinkProblem.EXPIRED
    assert audit_events(session_factory) == ["link_issued"]


def test_forged_and_unknown_tokens_are_refused(session_factory, vault):
    token = issue(session_factory, vault)
    nonce, expiry_text, signature = token.split(".")
    later = str(int(expiry_text) + 3600)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    unknown = identity.make_token(vault, "x" * 43, at(10))  # well signed, never issued
    other_key = identity.make_token(PiiVault("another-secret"), nonce, at(10))
    with session_scope(session_factory) as session:
        for bad in (f"{nonce}.{later}.{signature}", f"{nonce}.{expiry_text}.{flipped}", unknown,
                    other_key, "", "garbage", f"{nonce}.{expiry_text}"):
            assert identity.check_link(session, vault, bad, T0) is LinkProblem.INVALID, bad
    assert "绑定身份" in LinkProblem.INVALID.message  # tells the user how to get a new link


def test_locked_openid_gets_no_link(session_factory, vault):
    with session_scope(session_factory) as session:
        session.add(BindingLock(openid=OPENID, failures=0, locked_until=at(20)))
    with session_scope(session_factory) as session:
        refused = identity.issue_link(session, vault, OPENID, BASE, T0)
    assert not refused.ok and refused.url is None
    assert refused.locked_until == at(20)
    assert "10:20" in refused.refusal  # Beijing time
    assert count(session_factory, BindingLink, OPENID) == 0


# --- the two steps -------------------------------------------------------------------


def test_full_binding_and_single_use(session_factory, vault, veteran, sender):
    token = issue(session_factory, vault)
    sent = step1(session_factory, vault, token, veteran, sender, at(1))
    assert sent.status is Status.CODE_SENT and sent.ok
    assert sent.masked_phone == "138****5678"
    code = sender.last_code("13812345678")
    assert code is not None and len(code) == 6 and code.isdigit()
    with session_scope(session_factory) as session:
        link = session.execute(select(BindingLink)).scalar_one()
        assert link.veteran_id == veteran.veteran_id
        assert link.code_hash and code not in link.code_hash  # only a keyed hash is stored
        assert as_utc(link.code_expires_at) == at(6)

    bound = step2(session_factory, vault, token, code, at(2))
    assert bound.status is Status.BOUND and "绑定成功" in bound.message
    with session_scope(session_factory) as session:
        binding = identity.binding_for(session, OPENID)
        assert binding.veteran_id == veteran.veteran_id
        assert binding.veteran.name == "张三明"
        assert as_utc(session.execute(select(BindingLink)).scalar_one().used_at) == at(2)

    again = step2(session_factory, vault, token, code, at(3))
    assert again.status is Status.LINK_INVALID and again.link_problem is LinkProblem.USED
    again = step1(session_factory, vault, token, veteran, sender, at(3))
    assert again.link_problem is LinkProblem.USED
    assert audit_events(session_factory) == ["link_issued", "code_sent", "bind"]


def test_mismatch_never_says_which_field(session_factory, vault, veteran, sender):
    other = add_veteran(session_factory, vault, name="李四", phone="13900000000", sequence=124)
    token = issue(session_factory, vault)
    attempts = [
        {"name": "张三"},  # wrong name
        {"phone": "13800000000"},  # wrong phone
        {"id_number": other.id_number},  # someone else's ID
        {"id_number": idcard.make("110105", dt.date(1980, 1, 1), 555)},  # not on the roster
    ]
    messages = set()
    for number, override in enumerate(attempts, start=1):
        outcome = step1(session_factory, vault, token, veteran, sender, at(number), **override)
        assert outcome.status is Status.MISMATCH
        assert outcome.tries_left == 5 - number
        assert outcome.message.endswith(f"还可尝试{5 - number}次。")
        messages.add(outcome.message.rsplit("还可", 1)[0])
    assert messages == {identity.MISMATCH_MESSAGE}
    assert sender.last_code() is None


def test_names_compare_as_typed_on_phones(session_factory, vault, sender):
    entry = add_veteran(session_factory, vault, name="买买提·艾力")
    token = issue(session_factory, vault)
    outcome = step1(session_factory, vault, token, entry, sender, name=" 买买提•艾力 ",
                    phone="+86 138-1234-5678")
    assert outcome.status is Status.CODE_SENT


def test_deceased_veteran_cannot_be_bound(session_factory, vault, sender):
    entry = add_veteran(session_factory, vault, status="已故")
    token = issue(session_factory, vault)
    assert step1(session_factory, vault, token, entry, sender).status is Status.MISMATCH


def test_veteran_without_phone_on_roster_cannot_be_bound(session_factory, vault, sender):
    entry = add_veteran(session_factory, vault, phone=None)
    token = issue(session_factory, vault)
    outcome = step1(session_factory, vault, token, entry, sender, phone="13812345678")
    assert outcome.status is Status.MISMATCH


def test_five_failures_lock_for_thirty_minutes(session_factory, vault, veteran, sender):
    token = issue(session_factory, vault)
    for minute in range(1, 5):
        assert step1(session_factory, vault, token, veteran, sender, at(minute), name="王五").tries_left == 5 - minute
    locked = step1(session_factory, vault, token, veteran, sender, at(5), name="王五")
    assert locked.status is Status.LOCKED
    assert locked.locked_until == at(35)
    assert "10:35" in locked.message and "还可尝试" not in locked.message
    assert audit_events(session_factory) == ["link_issued"] + ["failed"] * 5 + ["locked"]

    # Locked: even the right data is refused, and no new link is issued.
    assert step1(session_factory, vault, token, veteran, sender, at(6)).status is Status.LOCKED
    assert sender.last_code() is None
    with session_scope(session_factory) as session:
        assert identity.locked_until(session, OPENID, at(34, 59)) == at(35)
        assert not identity.issue_link(session, vault, OPENID, BASE, at(34, 59)).ok
        assert identity.locked_until(session, OPENID, at(35)) is None
    # Another OpenID is not affected.
    issue(session_factory, vault, OTHER, at(6))

    # Thirty minutes later binding works again, with five fresh tries.
    token = issue(session_factory, vault, now=at(35))
    assert step1(session_factory, vault, token, veteran, sender, at(35), name="王五").tries_left == 4
    assert step1(session_factory, vault, token, veteran, sender, at(36)).status is Status.CODE_SENT
    assert step2(session_factory, vault, token, sender.last_code(), at(37)).status is Status.BOUND
    with session_scope(session_factory) as session:
        lock = session.get(BindingLock, OPENID)
        assert (lock.failures, lock.locked_until) == (0, None)


def test_wrong_codes_count_and_lock_too(session_factory, vault, veteran, sender):
    token = issue(session_factory, vault)
    assert step1(session_factory, vault, token, veteran, sender, at(0), name="王五").tries_left == 4
    assert step1(session_factory, vault, token, veteran, sender, at(1)).status is Status.CODE_SENT
    code = sender.last_code()
    wrong = "000000" if code != "000000" else "111111"
    outcomes = [step2(session_factory, vault, token, wrong, at(2 + i / 10)) for i in range(4)]
    assert [o.status for o in outcomes] == [Status.CODE_WRONG] * 3 + [Status.LOCKED]
    assert [o.tries_left for o in outcomes] == [3, 2, 1, 0]
    assert "验证码不正确" in outcomes[0].message
    # The right code no longer helps while locked.
    assert step2(session_factory, vault, token, code, at(3)).status is Status.LOCKED


def test_code_expires_after_five_minutes(session_factory, vault, veteran, sender):
    token = issue(session_factory, vault)
    step1(session_factory, vault, token, veteran, sender, at(0))
    code = sender.last_code()
    expired = step2(session_factory, vault, token, code, at(5))
    assert expired.status is Status.CODE_EXPIRED and expired.tries_left == 4
    assert step2(session_factory, vault, token, code, at(5, 30)).status is Status.NO_PENDING_CODE
    # A new code, on the same link while it lasts.
    step1(session_factory, vault, token, veteran, sender, at(6))
    assert step2(session_factory, vault, token, sender.last_code(), at(9)).status is Status.BOUND


def test_code_step_without_step_one(session_factory, vault):
    token = issue(session_factory, vault)
    outcome = step2(session_factory, vault, token, "123456", at(1))
    assert outcome.status is Status.NO_PENDING_CODE and outcome.tries_left is None


def test_resubmitting_within_a_minute_sends_no_second_sms(session_factory, vault, veteran):
    calls = []

    class Counting:
        def send_code(self, phone, code):
            calls.append(code)

    token = issue(session_factory, vault)
    first = step1(session_factory, vault, token, veteran, Counting(), at(0))
    second = step1(session_factory, vault, token, veteran, Counting(), at(0, 30))
    third = step1(session_factory, vault, token, veteran, Counting(), at(1, 1))
    assert (first.code_resent, second.code_resent, third.code_resent) == (True, False, True)
    assert second.status is Status.CODE_SENT and len(calls) == 2
    assert step2(session_factory, vault, token, calls[-1], at(2)).status is Status.BOUND


def test_sms_failure_is_not_the_users_failure(session_factory, vault, veteran):
    class Broken:
        def send_code(self, phone, code):
            raise ConnectionError("gateway down")

    token = issue(session_factory, vault)
    outcome = step1(session_factory, vault, token, veteran, Broken(), at(0))
    assert outcome.status is Status.SEND_FAILED
    with session_scope(session_factory) as session:
        assert session.execute(select(BindingLink)).scalar_one().code_hash is None
        assert (session.get(BindingLock, OPENID).failures or 0) == 0


def test_rebinding_replaces_the_binding(session_factory, vault, veteran, sender):
    other = add_veteran(session_factory, vault, name="李四", phone="13900000000", sequence=124)
    for entry, minute in ((veteran, 0), (other, 1)):
        token = issue(session_factory, vault, now=at(minute))
        step1(session_factory, vault, token, entry, sender, at(minute))
        assert step2(session_factory, vault, token, sender.last_code(entry.phone), at(minute)).ok
    with session_scope(session_factory) as session:
        rows = session.execute(select(WechatBinding)).scalars().all()
        assert [(r.openid, r.veteran_id) for r in rows] == [(OPENID, other.veteran_id)]


# --- audit, unbind, unfollow ---------------------------------------------------------


def bind(session_factory, vault, entry, sender, openid=OPENID, now=T0):
    token = issue(session_factory, vault, openid, now)
    step1(session_factory, vault, token, entry, sender, now)
    assert step2(session_factory, vault, token, sender.last_code(entry.phone), now).ok


def test_audit_keeps_no_openid_id_or_phone_in_clear(session_factory, vault, veteran, sender):
    token = issue(session_factory, vault)
    step1(session_factory, vault, token, veteran, sender, name="王五")
    bind(session_factory, vault, veteran, sender, now=at(1))
    with session_scope(session_factory) as session:
        identity.unbind(session, vault, OPENID, at(2))
    with session_scope(session_factory) as session:
        rows = session.execute(select(BindingAudit).order_by(BindingAudit.id)).scalars().all()
    assert [r.event for r in rows] == ["link_issued", "failed", "link_issued", "code_sent", "bind", "unbind"]
    assert {r.openid_hash for r in rows} == {vault.lookup_hash("openid", OPENID)}
    text = " ".join(f"{r.openid_hash} {r.detail} {r.event}" for r in rows)
    for secret in (OPENID, veteran.id_number, veteran.id_number[-6:], veteran.phone, "张三明", "王五"):
        assert secret not in text
    assert rows[-2].veteran_id == veteran.veteran_id


def test_unbind(session_factory, vault, veteran, sender):
    with session_scope(session_factory) as session:
        assert identity.unbind(session, vault, OPENID, T0) is False
    bind(session_factory, vault, veteran, sender)
    with session_scope(session_factory) as session:
        assert identity.unbind(session, vault, OPENID, at(1)) is True
    with session_scope(session_factory) as session:
        assert identity.binding_for(session, OPENID) is None
    assert audit_events(session_factory)[-1] == "unbind"


def test_forget_openid_deletes_everything_of_that_openid_only(session_factory, vault, veteran, sender,
                                                             monkeypatch):
    erased = []

    def erase_appointments(session, openid, now):
        erased.append((openid, now))

    monkeypatch.setattr(erasure, "PERSONAL_DATA_ERASERS", erasure.PERSONAL_DATA_ERASERS + (erase_appointments,))
    other = add_veteran(session_factory, vault, name="李四", phone="13900000000", sequence=124)
    bind(session_factory, vault, veteran, sender, OPENID)
    bind(session_factory, vault, other, sender, OTHER)
    for openid in (OPENID, OTHER):
        token = issue(session_factory, vault, openid, at(1))
        step1(session_factory, vault, token, veteran, sender, at(1), name="王五")  # a lock row

    with session_scope(session_factory) as session:
        erasure.forget_openid(session, vault, OPENID, at(2))

    for model in (WechatBinding, BindingLink, BindingLock):
        assert count(session_factory, model, OPENID) == 0, model
        assert count(session_factory, model, OTHER) > 0, model
    assert erased == [(OPENID, at(2))]
    with session_scope(session_factory) as session:
        last = session.execute(select(BindingAudit).order_by(BindingAudit.id.desc())).scalars().first()
        assert (last.event, last.openid_hash) == ("unfollow_deleted", vault.lookup_hash("openid", OPENID))
        # The audit trail itself survives (it holds only hashes).
        assert session.execute(select(func.count()).select_from(BindingAudit)
                               .where(BindingAudit.openid_hash == last.openid_hash)).scalar_one() > 1


# --- the code sender -----------------------------------------------------------------


def test_log_sender_masks_the_phone(caplog):
    sender = LogCodeSender()
    with caplog.at_level(logging.INFO, logger="bot.services.sms"):
        sender.send_code("13812345678", "246810")
    assert "138****5678" in caplog.text and "13812345678" not in caplog.text
    assert sender.last_code("+86 138 1234 5678") == "246810"
    assert sender.last_code() == "246810"
    assert sender.last_code("13900000000") is None


class RecordingSender:
    def send_code(self, phone, code):
        pass


def test_load_sender(tmp_path):
    def configured(**env):
        return Settings.from_env({"VETBOT_VAR_DIR": str(tmp_path), "VETBOT_SECRET_KEY": "k", **env}).sms_sender

    assert isinstance(load_sender(configured()), LogCodeSender)
    assert isinstance(load_sender("log"), LogCodeSender)
    assert isinstance(load_sender(configured(VETBOT_SMS_SENDER=f"{__name__}:RecordingSender")), RecordingSender)
    with pytest.raises(ValueError):
        load_sender("no_colon_here")
    with pytest.raises(TypeError):
        load_sender("datetime:date")
