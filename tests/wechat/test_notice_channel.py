"""Notices outside WeChat's 48-hour window: the gateway records when each user last
wrote (bot.services.wechat_window), and the delivery worker sends a customer-service
message inside the window and the kind's template message outside it
(bot.wechat.delivery, bot.wechat.notices, data/notice_templates.yml).

Outbox rows are written by the real services and sent through the real client to the
mock WeChat API over HTTP, which here behaves as WeChat: windows from the users' own
messages (``windows="tracked"``), and only the account's templates, with every field
present and within 200 characters. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import aiohttp
import pytest
from sqlalchemy import select

from bot.db.models import Outbox, WechatWindow
from bot.db.session import session_scope
from bot.services import wechat_window
from bot.services.datafile import DataFileError
from bot.services.erasure import forget_openid
from bot.services.wechat_failures import list_failures
from bot.wechat import delivery, notices
from bot.wechat.mockapi import MOCK_STATE, account_templates, create_mock_app
from bot.wechat.simulator import WechatUser
from tests.wechat.conftest import TEST_APPID, TEST_SECRET, TEST_TOKEN
from tests.wechat.test_delivery import (  # noqa: F401 - db is a fixture
    ALICE,
    NOW,
    REMINDER_DUE,
    START,
    book_reminder,
    db,
    file_complaint,
    make_client,
    mock,
    rows,
)

TEMPLATES = notices.load_templates()


@pytest.fixture
async def wechat(aiohttp_server):
    """The mock WeChat API as WeChat behaves: tracked windows, the account's templates."""
    server = await aiohttp_server(create_mock_app(TEST_APPID, TEST_SECRET, windows="tracked",
                                                  templates=account_templates()))
    return server


@pytest.fixture
def api(wechat):
    return str(wechat.make_url("")).rstrip("/")


@pytest.fixture
def client(session, api, db, vault):
    return make_client(session, api, db, vault)


def wrote(factory, openid, at):
    with session_scope(factory) as session:
        wechat_window.opened(session, openid, at)


def sent_as(factory):
    return [(row.kind, row.sent_as) for row in rows(factory)]


# --- the window -----------------------------------------------------------------------------


def test_the_window_runs_48_hours_from_the_last_message_less_a_margin(db):
    with session_scope(db) as session:
        assert not wechat_window.is_open(session, ALICE, NOW)  # never wrote
    wrote(db, ALICE, NOW)
    wrote(db, ALICE, NOW + dt.timedelta(seconds=30))  # within a minute: not written again
    with session_scope(db) as session:
        assert wechat_window.last_inbound(session, ALICE) == NOW.astimezone(dt.timezone.utc)
        closing = NOW + wechat_window.WINDOW - wechat_window.MARGIN
        assert wechat_window.is_open(session, ALICE, closing - dt.timedelta(seconds=1))
        assert not wechat_window.is_open(session, ALICE, closing)
    wrote(db, ALICE, NOW + dt.timedelta(hours=47))  # writing again opens it anew
    with session_scope(db) as session:
        assert wechat_window.is_open(session, ALICE, NOW + dt.timedelta(hours=90))
        wechat_window.opened(session, ALICE, NOW)  # an older moment never moves it back
        assert wechat_window.last_inbound(session, ALICE) == (NOW + dt.timedelta(hours=47)).astimezone(dt.timezone.utc)


def test_unfollowing_forgets_when_the_user_wrote(db, vault):
    wrote(db, ALICE, NOW)
    with session_scope(db) as session:
        forget_openid(session, vault, ALICE, NOW)
    with session_scope(db) as session:
        assert session.execute(select(WechatWindow)).first() is None


# --- the channel ----------------------------------------------------------------------------


async def test_a_reminder_to_a_user_silent_for_two_days_arrives_as_a_template(db, client, wechat, session, api):
    await mock(session, api, "/mock/inbound", {"openid": ALICE})  # she books, chatting …
    wrote(db, ALICE, NOW)
    book_reminder(db)
    await mock(session, api, "/mock/clock", {"advance": 49 * 3600})  # … then is silent till it is due
    report = await delivery.deliver_due(db, client, REMINDER_DUE)
    assert (report.sent, report.failed) == (1, 0)
    [message] = wechat.app[MOCK_STATE].messages
    assert message["kind"] == "template" and message["template_id"] == "DEMO-TPL-APPOINTMENT-REMINDER"
    data = {key: value["value"] for key, value in message["data"].items()}
    assert data["keyword1"] == "退役报到" and data["keyword2"].startswith("12月3日") and "14:30" in data["keyword2"]
    assert "预约码" in data["remark"] and "取消预约" in data["remark"]
    assert sent_as(db) == [("appointment_reminder", "template")]


async def test_inside_the_window_the_notice_is_a_customer_service_message(db, client, wechat, session, api, vault):
    await mock(session, api, "/mock/inbound", {"openid": ALICE})
    wrote(db, ALICE, NOW - dt.timedelta(hours=1))
    case = file_complaint(db, vault)
    assert (await delivery.deliver_due(db, client, NOW)).sent == 1
    [message] = wechat.app[MOCK_STATE].messages
    assert message["kind"] == "custom" and case.case_number in message["text"]
    assert sent_as(db) == [("complaint_accepted", "custom")]


async def test_when_wechat_says_the_window_closed_the_template_goes_instead(db, client, wechat, vault):
    wrote(db, ALICE, NOW - dt.timedelta(hours=1))  # the gateway saw her write; WeChat disagrees (45015)
    file_complaint(db, vault)
    assert (await delivery.deliver_due(db, client, NOW)).sent == 1
    [message] = wechat.app[MOCK_STATE].messages
    assert message["kind"] == "template" and message["template_id"] == "DEMO-TPL-COMPLAINT-PROGRESS"
    assert message["data"]["keyword3"]["value"].startswith("已登记")
    assert sent_as(db) == [("complaint_accepted", "template")]


async def test_a_kind_without_a_template_is_given_up_for_staff_outside_the_window(db, client, vault):
    file_complaint(db, vault)
    report = await delivery.deliver_due(db, client, NOW, templates={})
    assert (report.sent, report.failed) == (0, 1)
    with session_scope(db) as session:
        [failure] = list_failures(session)
    assert failure.kind == "window_closed" and failure.openid == ALICE


async def test_a_template_the_account_does_not_have_is_given_up_with_the_reason(db, client, vault):
    file_complaint(db, vault)
    wrong = {kind: notices.Template(kind, "NO-SUCH-TEMPLATE", template.fields)
             for kind, template in TEMPLATES.items()}
    report = await delivery.deliver_due(db, client, NOW, templates=wrong)
    assert (report.sent, report.failed) == (0, 1)
    [row] = rows(db)
    assert row.failed_at is not None and row.last_error.startswith("template: 40037")
    with session_scope(db) as session:
        assert [f.kind for f in list_failures(session)] == ["send_failed"]


async def test_a_template_send_wechat_cannot_take_now_is_retried(db, client, vault, session, api):
    file_complaint(db, vault)
    await mock(session, api, "/mock/fail", {"errcode": -1, "touser": ALICE})
    report = await delivery.deliver_due(db, client, NOW)
    assert report.retry_later == 1
    later = NOW + delivery.backoff(1)
    assert (await delivery.deliver_due(db, client, later)).sent == 1
    assert sent_as(db) == [("complaint_accepted", "template")]


async def test_every_shipped_template_is_accepted_by_the_account(db, client, vault):
    """Each kind's template, filled from a notice of that kind, passes the mock's checks
    (known id, every field, none over 200 characters) — also with a very long reason."""
    for kind, template in TEMPLATES.items():
        result = await client.send_template(ALICE, template.template_id, template.data(notices.SAMPLES[kind]),
                                            template.url)
        assert result.ok, (kind, result)
    long_reason = {**notices.SAMPLES["complaint_rejected"], "reason": "经核查" * 100}
    data = TEMPLATES["complaint_rejected"].data(long_reason)
    assert len(data["keyword3"]) == notices.MAX_VALUE_CHARS and data["keyword3"].endswith("…")
    assert (await client.send_template(ALICE, TEMPLATES["complaint_rejected"].template_id, data)).ok


# --- the data file ------------------------------------------------------------------------


def test_a_wrong_templates_file_lists_every_mistake(tmp_path):
    path = tmp_path / "notice_templates.yml"
    path.write_text("""
templates:
  appointment_reminder:
    template_id: ""
    fields:
      first: 您好
      keyword1: "{service}于{when}"
      footer: 谢谢
  birthday_greeting:
    template_id: X
    fields: {first: 生日快乐}
  complaint_answer:
    template_id: T
    fields: {keyword1: "{answer}"}
    url: ftp://example.org
""", encoding="utf-8")
    with pytest.raises(DataFileError) as raised:
        notices.load_templates(path)
    problems = "\n".join(raised.value.problems)
    assert len(raised.value.problems) == 6
    for expected in ("appointment_reminder.template_id：未填写模板 ID", "{when} 不是这种通知的内容",
                     "fields.footer：字段名应为", "birthday_greeting：没有这种通知",
                     "complaint_answer.fields.keyword1：{answer} 不是这种通知的内容", "complaint_answer.url"):
        assert expected in problems


# --- the mock's window, as WeChat's -------------------------------------------------------------


async def test_the_mock_opens_a_window_for_what_the_simulated_user_sends(wechat, api, client, session):
    user = WechatUser("http://127.0.0.1:9/wechat", TEST_TOKEN, TEST_APPID, api_base=api, session=session)
    assert (await client.send_text(user.openid, "您好")).errcode == 45015  # never wrote
    with pytest.raises(aiohttp.ClientError):
        await user.say("你好")  # no gateway listens here; WeChat has seen the message all the same
    assert (await client.send_text(user.openid, "您好")).ok
    await mock(session, api, "/mock/clock", {"advance": 48 * 3600})
    assert (await client.send_text(user.openid, "您好")).errcode == 45015
    with pytest.raises(aiohttp.ClientError):
        await user.say("/view https://example.org/")  # opening a link does not open the window
    assert (await client.send_text(user.openid, "您好")).errcode == 45015


# --- refusals, and notices kept back until the user writes again ------------------------------


async def test_over_the_customer_service_limit_the_template_goes_instead(db, client, wechat, session, api, vault):
    await mock(session, api, "/mock/inbound", {"openid": ALICE})
    wrote(db, ALICE, NOW - dt.timedelta(hours=1))
    file_complaint(db, vault)
    await mock(session, api, "/mock/fail", {"errcode": 45047, "touser": ALICE})
    assert (await delivery.deliver_due(db, client, NOW)).sent == 1
    assert [m["kind"] for m in wechat.app[MOCK_STATE].messages] == ["template"]


@pytest.mark.parametrize("errcode, given_up", [(43004, True), (40003, True), (45028, False), (-1, False)])
async def test_final_refusals_are_given_up_and_others_retried(db, client, session, api, vault, errcode, given_up):
    file_complaint(db, vault)
    await mock(session, api, "/mock/fail", {"errcode": errcode, "touser": ALICE})
    report = await delivery.deliver_due(db, client, NOW)
    assert (report.failed, report.retry_later) == ((1, 0) if given_up else (0, 1))
    [row] = rows(db)
    assert row.last_error.startswith(f"template: {errcode}")
    if not given_up:  # tried again after the backoff, and WeChat takes it this time
        assert (await delivery.deliver_due(db, client, NOW + delivery.backoff(1))).sent == 1


async def test_a_notice_kept_back_by_a_closed_window_goes_when_the_user_writes_again(db, client, wechat, session,
                                                                                     api, vault):
    case = file_complaint(db, vault)
    assert (await delivery.deliver_due(db, client, NOW, templates={})).failed == 1  # no template, window closed
    later = NOW + dt.timedelta(days=3)
    with session_scope(db) as session_:
        assert wechat_window.opened(session_, ALICE, later)  # she writes: the window had been closed
        assert delivery.requeue_after_window(session_, ALICE, later) == 1
        assert not wechat_window.opened(session_, ALICE, later + dt.timedelta(minutes=5))  # open now: nothing to do
        assert delivery.requeue_after_window(session_, ALICE, later) == 0  # and never twice
        [failure] = list_failures(session_, unresolved_only=False)
    assert failure.resolved and failure.resolved_by == delivery.RESENT_BY
    await mock(session, api, "/mock/inbound", {"openid": ALICE})
    assert (await delivery.deliver_due(db, client, later, templates={})).sent == 1
    [message] = wechat.app[MOCK_STATE].messages
    assert message["kind"] == "custom" and case.case_number in message["text"]


async def test_a_reminder_for_an_appointment_already_past_is_not_sent_again(db, client, vault):
    book_reminder(db)
    assert (await delivery.deliver_due(db, client, REMINDER_DUE, templates={})).failed == 1
    after = START + dt.timedelta(hours=2)
    with session_scope(db) as session_:
        assert delivery.requeue_after_window(session_, ALICE, after) == 0
        [failure] = list_failures(session_)  # still there for staff
    assert failure.kind == "window_closed"
