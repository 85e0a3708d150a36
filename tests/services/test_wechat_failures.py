"""The register of messages the WeChat edge could not handle or deliver
(bot.services.wechat_failures): recording, the console's list, resolving, unfollow.

Runs on SQLite and on PostgreSQL (the `session_factory` fixture)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, insert, text
from sqlalchemy.exc import IntegrityError

from bot.db.models import Outbox, WechatFailure
from bot.db.session import as_utc, session_scope
from bot.services import erasure
from bot.services.stations import SHANGHAI
from bot.services.wechat_failures import list_failures, record_failure, resolve_failure

NOW = dt.datetime(2026, 11, 30, 8, tzinfo=SHANGHAI)
ALICE = "oFailuresAlice000000000001"
BOB = "oFailuresBob00000000000002"


def record(factory, openid=ALICE, direction="in", kind="rasa_down", text_="我想问一下抚恤金的事", minutes=0, **extra):
    with session_scope(factory) as session:
        return record_failure(session, openid, direction, kind, text_, "ClientConnectorError",
                              NOW + dt.timedelta(minutes=minutes), **extra)


def listed(factory, **options):
    with session_scope(factory) as session:
        return list_failures(session, **options)


def test_failures_are_listed_newest_first_until_resolved(session_factory):
    first = record(session_factory, minutes=0)
    second = record(session_factory, openid=BOB, direction="out", kind="window_closed",
                    text_="【预约提醒】您预约的退役报到……", minutes=5, ref="appointment:YY7KQ4M2XD")
    third = record(session_factory, minutes=10)
    assert [f.id for f in listed(session_factory)] == [third, second, first]
    assert [f.id for f in listed(session_factory, limit=2)] == [third, second]
    assert [f.id for f in listed(session_factory, openid=BOB)] == [second]
    view = listed(session_factory, openid=BOB)[0]
    assert (view.direction, view.kind, view.ref, view.resolved) == ("out", "window_closed", "appointment:YY7KQ4M2XD",
                                                                    False)
    assert view.created_at == NOW + dt.timedelta(minutes=5) and view.created_at.utcoffset() == dt.timedelta(hours=8)

    with session_scope(session_factory) as session:
        assert resolve_failure(session, second, "李干事", NOW + dt.timedelta(hours=1))
        assert not resolve_failure(session, second, "王科长", NOW + dt.timedelta(hours=2))  # once only
        assert not resolve_failure(session, 999999, "王科长", NOW)
    assert [f.id for f in listed(session_factory)] == [third, first]
    done = next(f for f in listed(session_factory, unresolved_only=False) if f.id == second)
    assert done.resolved and done.resolved_by == "李干事" and done.resolved_at == NOW + dt.timedelta(hours=1)


def test_a_direction_other_than_in_or_out_is_refused_here_and_by_the_database(session_factory):
    with pytest.raises(ValueError):
        record(session_factory, direction="sideways")
    with pytest.raises(IntegrityError), session_scope(session_factory) as session:
        session.execute(insert(WechatFailure), [{"openid": ALICE, "direction": "up", "kind": "x",
                                                 "reason": "y", "created_at": as_utc(NOW)}])


def test_a_long_reason_is_cut_short(session_factory):
    with session_scope(session_factory) as session:
        record_failure(session, ALICE, "in", "rasa_down", None, "x" * 5000, NOW)
    assert len(listed(session_factory)[0].reason) == 500


def test_the_failure_outlives_its_outbox_row(session_factory):
    with session_scope(session_factory) as session:
        outbox_id = session.execute(insert(Outbox).values(
            openid=ALICE, kind="complaint_accepted", ref="complaint:TS20261130-0001", payload={},
            due_at=as_utc(NOW), created_at=as_utc(NOW), attempts=1, failed_at=as_utc(NOW))).inserted_primary_key[0]
    failure = record(session_factory, direction="out", kind="window_closed", outbox_id=outbox_id,
                     ref="complaint:TS20261130-0001")
    with session_scope(session_factory) as session:
        session.execute(delete(Outbox).where(Outbox.id == outbox_id))
    with session_scope(session_factory) as session:
        row = session.get(WechatFailure, failure)
        assert row.outbox_id is None and row.ref == "complaint:TS20261130-0001"


def test_unfollowing_erases_the_users_failures_only(session_factory, vault):
    record(session_factory, openid=ALICE)
    record(session_factory, openid=ALICE, direction="out", kind="send_failed")
    record(session_factory, openid=BOB)
    with session_scope(session_factory) as session:
        erasure.forget_openid(session, vault, ALICE, NOW)
    assert [f.openid for f in listed(session_factory, unresolved_only=False)] == [BOB]
    with session_scope(session_factory) as session:
        dump = " ".join(str(v) for row in session.execute(text("SELECT * FROM wechat_failures")) for v in row)
    assert ALICE not in dump
