"""bot.wechat.delivery: outbox rows written by the real services, sent through the real
client to the mock WeChat API over HTTP, on SQLite and on a real PostgreSQL server.

Time is what the test says it is (``deliver_due(..., now)``); WeChat's behaviour comes
from the mock's own controls (/mock/window, /mock/fail, /mock/expire-token).

These tests are about customer-service messages: they deliver without templates, so
every row goes as one whatever the user's window (the choice between the two is
tests/wechat/test_notice_channel.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading

import pytest
from sqlalchemy import insert, select, update

from bot.db.migrate import upgrade
from bot.db.models import Outbox, Station
from bot.db.session import as_utc, make_engine, make_session_factory, session_scope
from bot.services import appointments as ap
from bot.services import complaints as cs
from bot.services.stations import SHANGHAI, load_stations
from bot.services.wechat_failures import list_failures
from bot.settings import PROJECT_ROOT
from bot.wechat import delivery
from bot.wechat.client import WechatClient
from bot.wechat.dbtoken import DatabaseTokenBackend
from bot.wechat.delivery import (
    BACKOFF_FIRST,
    LEASE,
    MAX_ATTEMPTS,
    backoff,
    outbox_text,
)
from bot.wechat.mockapi import MAX_TEXT_BYTES
from bot.wechat.token import AccessTokenStore
from tests.wechat.conftest import TEST_APPID, TEST_SECRET

DATA = PROJECT_ROOT / "data"
NOW = dt.datetime(2026, 11, 30, 8, tzinfo=SHANGHAI)  # a Monday morning
START = dt.datetime(2026, 12, 3, 14, 30, tzinfo=SHANGHAI)  # booked: reminder due 12-02 09:00
REMINDER_DUE = dt.datetime(2026, 12, 2, 9, tzinfo=SHANGHAI)
ALICE = "oDeliveryAlice0000000000001"
BOB = "oDeliveryBob00000000000000002"


# --- helpers ---------------------------------------------------------------------------------


async def deliver_due(factory, client, now, limit=50):
    """Customer-service messages only (no templates)."""
    return await delivery.deliver_due(factory, client, now, limit, templates={})


def run_worker(factory, client, **options):
    return delivery.run_worker(factory, client, templates={}, **options)


@pytest.fixture
def db(session_factory):
    with session_scope(session_factory) as session:
        load_stations(session, DATA / "stations.yml")
        ap.load_services(session, DATA / "services.yml", now=NOW)
    return session_factory


def make_client(http, api_base, factory, vault=None) -> WechatClient:
    tokens = AccessTokenStore(http, api_base, TEST_APPID, TEST_SECRET,
                              backend=DatabaseTokenBackend(factory, TEST_APPID, vault=vault))
    return WechatClient(http, api_base, tokens)


@pytest.fixture
def client(session, api_base, db, vault):
    return make_client(session, api_base, db, vault)


async def mock(http, api_base, path, body):
    async with http.post(f"{api_base}{path}", json=body) as response:
        assert response.status == 200


def book_reminder(factory, openid=ALICE):
    with session_scope(factory) as session:
        station = session.execute(select(Station.id).where(Station.code == "JD")).scalar_one()
        result = ap.book(session, openid, station, "report_in", START, NOW)
    assert result.ok
    return result


def file_complaint(factory, vault, openid=ALICE, now=NOW, description="我的抚恤金三个月没发了"):
    with session_scope(factory) as session:
        return cs.register(session, vault, openid, None, "待遇发放", description, None, None, "wechat", None,
                           False, now)


def answer_complaint(factory, case_id, answer_text, now=NOW):
    with session_scope(factory) as session:
        cs.classify(session, case_id, "王科长", "待遇发放", "优抚科", now=now)
        cs.start_handling(session, case_id, "李干事", now=now)
        cs.answer(session, case_id, "李干事", answer_text, now=now)


def rows(factory):
    with session_scope(factory) as session:
        return session.execute(select(Outbox).order_by(Outbox.id)).scalars().all()


def texts_to(mock_state, openid):
    return [m["text"] for m in mock_state.messages if m["touser"] == openid]


# --- what is sent ----------------------------------------------------------------------------


def test_outbox_text_speaks_for_every_kind_the_services_write():
    reminder = {"code": "YY7KQ4M2XD", "service": "退役报到", "station": "嘉定区退役军人服务中心",
                "address": "上海市嘉定区博乐路118号", "start": START.isoformat(),
                "end": (START + dt.timedelta(minutes=30)).isoformat(), "materials": ["本人居民身份证"]}
    assert outbox_text(ap.REMINDER_KIND, reminder) == ap.reminder_text(reminder)
    assert "YY7KQ4M2XD" in outbox_text(ap.REMINDER_KIND, reminder)
    complaint = {"case_number": "TS20261130-0001", "category": "待遇发放", "due": "2026-12-05",
                 "answer": "已补发。", "assigned_to": "优抚科", "reason": "不属于本局职责", "until": "2026-12-10"}
    for kind in cs.OUTBOX_KINDS:
        assert outbox_text(kind, complaint) == cs.notification_text(kind, complaint)
    assert len({outbox_text(kind, complaint) for kind in cs.OUTBOX_KINDS}) == len(cs.OUTBOX_KINDS)
    with pytest.raises(ValueError):
        outbox_text("birthday_greeting", {})


async def test_a_complaint_notice_goes_now_and_the_reminder_waits_until_due(db, client, vault, mock_state):
    booking = book_reminder(db)
    case = file_complaint(db, vault)
    report = await deliver_due(db, client, NOW)
    assert (report.sent, report.retry_later, report.failed) == (1, 0, 0)
    [notice, reminder] = sorted(rows(db), key=lambda r: r.kind != cs.ACCEPTED_KIND)
    assert texts_to(mock_state, ALICE) == [cs.notification_text(cs.ACCEPTED_KIND, notice.payload)]
    assert case.case_number in mock_state.messages[0]["text"]
    assert as_utc(notice.sent_at) == NOW and notice.attempts == 1 and notice.parts_sent == 1
    assert reminder.sent_at is None and reminder.attempts == 0  # not due: not even tried

    almost = REMINDER_DUE - dt.timedelta(seconds=1)
    assert (await deliver_due(db, client, almost)).sent == 0
    assert len(mock_state.messages) == 1

    report = await deliver_due(db, client, REMINDER_DUE)
    assert report.sent == 1
    reminder = next(r for r in rows(db) if r.kind == ap.REMINDER_KIND)
    assert as_utc(reminder.sent_at) == REMINDER_DUE and reminder.last_error is None
    assert texts_to(mock_state, ALICE)[1] == ap.reminder_text(reminder.payload)
    assert booking.appointment.code in texts_to(mock_state, ALICE)[1]

    sends = mock_state.send_requests
    report = await deliver_due(db, client, REMINDER_DUE + dt.timedelta(days=1))
    assert (report.sent, report.skipped) == (0, 0) and mock_state.send_requests == sends  # never twice


async def test_due_rows_go_oldest_first(db, client, vault, mock_state):
    for minutes, openid in ((30, BOB), (10, ALICE), (20, "oDeliveryCarol000000000003")):
        file_complaint(db, vault, openid=openid, now=NOW - dt.timedelta(minutes=minutes))
    report = await deliver_due(db, client, NOW, limit=2)
    assert report.sent == 2
    assert [m["touser"] for m in mock_state.messages] == [BOB, "oDeliveryCarol000000000003"]
    await deliver_due(db, client, NOW)
    assert [m["touser"] for m in mock_state.messages][-1] == ALICE


async def test_a_closed_window_is_recorded_for_staff_and_not_retried(db, client, vault, session, api_base,
                                                                     mock_state, caplog):
    caplog.set_level(logging.DEBUG)
    file_complaint(db, vault)
    await mock(session, api_base, "/mock/window", {"openid": ALICE, "open": False})
    report = await deliver_due(db, client, NOW)
    assert (report.sent, report.retry_later, report.failed) == (0, 0, 1)
    [row] = rows(db)
    assert row.sent_at is None and as_utc(row.failed_at) == NOW and row.attempts == 1
    assert row.last_error.startswith("45015")
    with session_scope(db) as s:
        [failure] = list_failures(s)
    expected = cs.notification_text(row.kind, row.payload)
    assert (failure.openid, failure.direction, failure.kind, failure.text) == (ALICE, "out", "window_closed", expected)
    assert failure.reason.startswith("45015") and failure.ref == row.ref and not failure.resolved

    await mock(session, api_base, "/mock/window", {"openid": ALICE, "open": True})
    sends = mock_state.send_requests
    for later in (NOW + LEASE, NOW + dt.timedelta(days=2)):
        assert (await deliver_due(db, client, later)).handled == 0
    assert mock_state.send_requests == sends and mock_state.messages == []
    [row] = rows(db)
    assert row.attempts == 1  # given up once, and not picked again
    assert ALICE not in caplog.text and "抚恤金" not in caplog.text and row.payload["case_number"] not in caplog.text


async def test_a_refused_token_is_renewed_once_and_the_row_sent(db, client, vault, session, api_base, mock_state):
    file_complaint(db, vault, openid=BOB)
    assert (await deliver_due(db, client, NOW)).sent == 1
    await mock(session, api_base, "/mock/expire-token", {"mode": "invalid"})  # WeChat forgets it: 40001
    file_complaint(db, vault, openid=ALICE, description="优待证还没办下来")
    report = await deliver_due(db, client, NOW + dt.timedelta(minutes=1))
    assert (report.sent, report.retry_later, report.failed) == (1, 0, 0)
    assert mock_state.token_requests == 2
    assert mock_state.send_requests == 3  # Bob's, Alice's refused try, Alice's retry
    assert len(texts_to(mock_state, ALICE)) == 1
    alice = next(r for r in rows(db) if r.openid == ALICE)
    assert alice.attempts == 1 and alice.sent_at is not None
    stored = await client._tokens._backend.load()
    assert stored.value in mock_state.tokens  # the database holds the renewed token


async def test_wechat_busy_pushes_the_row_back_and_pauses_the_batch(db, client, vault, session, api_base, mock_state):
    for minutes, openid in ((3, ALICE), (2, BOB), (1, "oDeliveryCarol000000000003")):
        file_complaint(db, vault, openid=openid, now=NOW - dt.timedelta(minutes=minutes))
    await mock(session, api_base, "/mock/fail", {"errcode": -1, "count": 1})
    report = await deliver_due(db, client, NOW)
    assert (report.sent, report.retry_later, report.failed) == (0, 1, 0)
    assert mock_state.send_requests == 1  # WeChat is struggling: the others wait for the next run
    first = rows(db)[0]
    assert first.last_error == "-1: system error" and first.attempts == 1 and first.sent_at is None
    assert as_utc(first.due_at) == NOW + BACKOFF_FIRST

    report = await deliver_due(db, client, NOW + dt.timedelta(seconds=30))
    assert report.sent == 2 and sorted(m["touser"] for m in mock_state.messages) == sorted(
        [BOB, "oDeliveryCarol000000000003"])
    report = await deliver_due(db, client, NOW + BACKOFF_FIRST)
    assert report.sent == 1 and mock_state.messages[-1]["touser"] == ALICE
    assert rows(db)[0].attempts == 2 and rows(db)[0].last_error is None


async def test_an_unreachable_wechat_is_retried_with_backoff_then_given_up(db, session, vault, mock_state):
    client = make_client(session, "http://127.0.0.1:9", db)  # nothing listens there
    file_complaint(db, vault)
    now, waits = NOW, []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = await deliver_due(db, client, now)
        [row] = rows(db)
        assert row.attempts == attempt and row.sent_at is None
        if attempt < MAX_ATTEMPTS:
            assert report.retry_later == 1 and row.failed_at is None and row.last_error.startswith("None:")
            waits.append(as_utc(row.due_at) - now)
            assert (await deliver_due(db, client, as_utc(row.due_at) - dt.timedelta(seconds=1))).handled == 0
            now = as_utc(row.due_at)
        else:
            assert report.failed == 1 and as_utc(row.failed_at) == now
    assert waits == [backoff(n) for n in range(1, MAX_ATTEMPTS)]
    assert waits[:3] == [dt.timedelta(minutes=1), dt.timedelta(minutes=2), dt.timedelta(minutes=4)]
    assert max(waits) == dt.timedelta(hours=1)
    with session_scope(db) as s:
        [failure] = list_failures(s)
    assert failure.kind == "send_failed" and failure.reason.startswith("None:")
    assert (await deliver_due(db, client, now + dt.timedelta(days=1))).handled == 0


async def test_a_try_cut_short_too_often_is_given_up_not_lost(db, client, vault, mock_state):
    file_complaint(db, vault)
    with session_scope(db) as s:  # ten claims whose workers all died mid-send, the last lease over
        s.execute(update(Outbox).values(attempts=MAX_ATTEMPTS))
    report = await deliver_due(db, client, NOW)
    assert report.failed == 1 and mock_state.send_requests == 0
    with session_scope(db) as s:
        [failure] = list_failures(s)
    assert failure.kind == "send_failed" and "抚恤金" not in failure.reason and failure.text.startswith("【信访登记】")


async def test_a_row_no_message_can_be_made_of_is_shown_to_staff(db, client, mock_state):
    now = as_utc(NOW)  # as the services write it (SQLite keeps the wall time it is given)
    with session_scope(db) as s:
        s.execute(insert(Outbox), [
            {"openid": ALICE, "kind": "birthday_greeting", "ref": "greeting:1", "payload": {}, "due_at": now,
             "created_at": now, "attempts": 0},
            {"openid": ALICE, "kind": ap.REMINDER_KIND, "ref": "appointment:BROKEN", "payload": {"code": "X"},
             "due_at": now, "created_at": now, "attempts": 0},
            {"openid": BOB, "kind": cs.ACCEPTED_KIND, "ref": "complaint:TS20261130-0001",
             "payload": {"case_number": "TS20261130-0001", "due": "2026-12-05"}, "due_at": now,
             "created_at": now, "attempts": 0},
        ])
    report = await deliver_due(db, client, NOW)
    assert (report.sent, report.failed) == (1, 2)  # the bad rows do not hold up the good one
    assert [m["touser"] for m in mock_state.messages] == [BOB]
    with session_scope(db) as s:
        failures = list_failures(s)
    assert sorted(f.ref for f in failures) == ["appointment:BROKEN", "greeting:1"]
    assert {f.kind for f in failures} == {"unrenderable"} and all(f.text is None for f in failures)


async def test_a_long_answer_arrives_in_several_messages_in_order(db, client, vault, mock_state):
    case = file_complaint(db, vault)
    assert (await deliver_due(db, client, NOW)).sent == 1
    paragraphs = [f"第{n}项：经核查，您反映的{n}月份抚恤金因银行账户信息变更未能按时发放，现已补发到位，"
                  f"请注意查收。" * 6 for n in range(1, 8)]
    answer = "\n".join(paragraphs)
    answer_complaint(db, case.id, answer)
    report = await deliver_due(db, client, NOW + dt.timedelta(minutes=1))
    assert report.sent == 1
    row = next(r for r in rows(db) if r.kind == cs.ANSWER_KIND)
    whole = cs.notification_text(cs.ANSWER_KIND, row.payload)
    parts = texts_to(mock_state, ALICE)[1:]
    assert len(parts) >= 3 and row.parts_sent == len(parts) and report.messages == len(parts)
    assert all(len(part.encode("utf-8")) <= MAX_TEXT_BYTES for part in parts)
    assert "".join(parts).replace("\n", "") == whole.replace("\n", "")  # all of it, in order
    assert parts[0].startswith("【办理答复】") and parts[-1].endswith("“不满意”。")


async def test_a_retry_resumes_after_the_parts_already_delivered(db, client, vault, mock_state):
    case = file_complaint(db, vault)
    answer_complaint(db, case.id, "经核查，抚恤金已补发到位，请注意查收。" * 120)
    with session_scope(db) as s:  # the earlier try delivered the first part, then stopped
        s.execute(update(Outbox).where(Outbox.kind == cs.ANSWER_KIND).values(parts_sent=1, attempts=1))
    await deliver_due(db, client, NOW)
    row = next(r for r in rows(db) if r.kind == cs.ANSWER_KIND)
    parts = delivery.to_wechat_texts([{"text": cs.notification_text(cs.ANSWER_KIND, row.payload)}])
    assert len(parts) >= 2
    assert texts_to(mock_state, ALICE)[1:] == parts[1:]
    assert row.parts_sent == len(parts) and row.sent_at is not None and row.attempts == 2


# --- several workers -------------------------------------------------------------------------


@pytest.fixture
def second_worker_factory(database_url):
    """A second engine on the same database: the worker of another gateway process."""
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


async def test_two_workers_send_each_row_exactly_once(db, second_worker_factory, session, api_base, vault,
                                                      mock_state):
    users = [f"oDeliveryRace{n:014d}" for n in range(24)]
    for n, openid in enumerate(users):
        file_complaint(db, vault, openid=openid, now=NOW - dt.timedelta(seconds=n))
    workers = [make_client(session, api_base, db, vault),
               make_client(session, api_base, second_worker_factory, vault)]
    reports = await asyncio.gather(deliver_due(db, workers[0], NOW),
                                   deliver_due(second_worker_factory, workers[1], NOW))
    assert sorted(m["touser"] for m in mock_state.messages) == sorted(users)  # each once, none lost
    assert sum(r.sent for r in reports) == len(users) and all(r.failed == r.retry_later == 0 for r in reports)
    assert all(r.sent > 0 for r in reports)  # both really worked the same rows at once
    assert sum(r.skipped for r in reports) > 0  # and met each other's claims
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows(db))
    assert mock_state.token_requests == 1  # one token for both, through the database


def test_a_row_is_claimed_by_one_of_many_racing_workers(db, vault, database_url):
    """The claim itself, raced by eight threads with their own connections, released together."""
    file_complaint(db, vault)
    [row] = rows(db)
    now = as_utc(NOW)
    engine = make_engine(database_url, **({} if database_url.startswith("sqlite") else {"pool_size": 10}))
    factory = make_session_factory(engine)
    barrier = threading.Barrier(8)
    claims, errors = [], []

    def worker():
        try:
            with session_scope(factory) as s:
                s.connection()
                barrier.wait(timeout=30)
                claims.append(delivery._claim(s, row.id, 0, now))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        engine.dispose()
    assert errors == []
    won = [claim for claim in claims if claim is not None]
    assert len(claims) == 8 and len(won) == 1
    assert won[0].attempts == 1 and won[0].openid == ALICE
    [row] = rows(db)
    assert row.attempts == 1 and as_utc(row.due_at) == now + LEASE  # leased: not due for the others


# --- the worker loop -------------------------------------------------------------------------


async def wait_for(condition, timeout=15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_worker_keeps_going_through_errors_and_stops_when_told(tmp_path, session, api_base, vault,
                                                                         mock_state, caplog):
    """SQLite only: the database starts without tables (every run fails), then is migrated."""
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'late.db'}"
    engine = make_engine(url)
    factory = make_session_factory(engine)
    stop = asyncio.Event()
    client = make_client(session, api_base, factory, vault)
    task = asyncio.ensure_future(run_worker(factory, client, interval=0.05, stop_event=stop))
    try:
        await wait_for(lambda: caplog.text.count("outbox delivery run failed: OperationalError") >= 2)
        assert not task.done()
        upgrade(url)
        file_complaint(factory, vault, now=dt.datetime.now(dt.timezone.utc))
        await wait_for(lambda: len(mock_state.messages) == 1)
        assert mock_state.messages[0]["touser"] == ALICE
        stop.set()
        await asyncio.wait_for(task, 5)
    finally:
        stop.set()
        task.cancel()
        engine.dispose()
    assert [row.sent_at is not None for row in rows(factory)] == [True]
    assert ALICE not in caplog.text and "抚恤金" not in caplog.text
    assert delivery.short_id(ALICE) in caplog.text  # followed by a hash instead


async def test_the_worker_drains_a_backlog_without_waiting_between_full_batches(db, client, vault, mock_state):
    for n in range(7):
        file_complaint(db, vault, openid=f"oDeliveryBacklog{n:011d}", now=NOW)
    stop = asyncio.Event()
    task = asyncio.ensure_future(run_worker(db, client, interval=3600, stop_event=stop, limit=3,
                                            clock=lambda: as_utc(NOW)))
    try:
        await wait_for(lambda: len(mock_state.messages) == 7, timeout=20)  # 3 + 3 + 1, no hour-long pause
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
