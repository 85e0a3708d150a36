"""Racing bookings: many users at once for the last seats, and one user tapping twice.

Real threads, each with its own session (as the action server's workers have),
released together by a barrier, against a SQLite file in WAL mode and against a
real PostgreSQL server. No mocks: the database must refuse what would overbook.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import pytest
import yaml
from sqlalchemy import event, func, select

from bot.db.models import Appointment, Outbox, Slot, Station
from bot.db import session as session_module
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.services import appointments as ap
from bot.services.appointments import BookingStatus
from bot.services.stations import SHANGHAI, load_stations
from bot.settings import PROJECT_ROOT

NOW = dt.datetime(2026, 11, 30, 8, tzinfo=SHANGHAI)
START = dt.datetime(2026, 12, 3, 9, tzinfo=SHANGHAI)
SEATS = 10
RACE_SERVICES = {
    "settings": {"booking_horizon_days": 30, "minimum_lead_minutes": 30},
    "services": [{"code": "report_in", "name": "退役报到", "slot_minutes": 30, "capacity": SEATS,
                  "offered_at": {"stations": ["JD"]}, "materials": ["本人居民身份证"]}],
}


def _engine(url: str, **extra):
    if url.startswith("sqlite"):
        return make_engine(url, **extra)
    # One connection per racing thread, so that they really do race in the database.
    return make_engine(url, pool_size=210, max_overflow=0, pool_timeout=120, **extra)


@pytest.fixture
def racing(database_url, tmp_path, monkeypatch):
    # These tests are about what the database lets through, not about how fast two
    # cores switch between 200 threads. Under faketime (make test-clock) every switch
    # of Python's GIL goes through libfaketime and the same race takes 20 times as
    # long (59 s instead of 3 s), so SQLite's writers are let wait for the lock as
    # long as it takes; test_sqlite_bookings_wait_for_a_locked_database tests the wait.
    monkeypatch.setattr(session_module, "SQLITE_LOCK_WAIT", 600.0)
    engine = _engine(database_url)
    factory = make_session_factory(engine)
    services = tmp_path / "services.yml"
    services.write_text(yaml.safe_dump(RACE_SERVICES, allow_unicode=True), encoding="utf-8")
    with session_scope(factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
        ap.load_services(session, services)
        station_id = session.execute(select(Station.id).where(Station.code == "JD")).scalar_one()
    yield factory, station_id
    engine.dispose()


def race(factory, station_id, openids):
    """Every OpenID books START at once; returns the statuses in order."""
    barrier = threading.Barrier(len(openids))
    statuses = [None] * len(openids)
    errors = []

    def attempt(position: int, openid: str) -> None:
        try:
            with session_scope(factory) as session:
                session.connection()  # connected before the start, so the race is in booking
                barrier.wait(timeout=120)
                statuses[position] = ap.book(session, openid, station_id, "report_in", START, NOW).status
        except Exception as error:  # pragma: no cover - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=attempt, args=(n, o)) for n, o in enumerate(openids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    return statuses


def counts(factory):
    with session_scope(factory) as session:
        booked = session.execute(select(Slot.booked)).scalar_one()
        appointments = session.execute(
            select(func.count()).select_from(Appointment).where(Appointment.status == "booked")).scalar_one()
        reminders = session.execute(select(func.count()).select_from(Outbox)).scalar_one()
    return booked, appointments, reminders


def test_200_users_racing_for_10_seats_get_exactly_10(racing):
    factory, station_id = racing
    statuses = race(factory, station_id, [f"o-user-{n:03d}" for n in range(200)])
    assert statuses.count(BookingStatus.BOOKED) == SEATS
    assert statuses.count(BookingStatus.FULL) == 200 - SEATS
    assert counts(factory) == (SEATS, SEATS, SEATS)


def test_one_user_submitting_20_times_at_once_books_once(racing):
    factory, station_id = racing
    statuses = race(factory, station_id, ["o-double-tapper"] * 20)
    assert statuses.count(BookingStatus.BOOKED) == 1
    assert statuses.count(BookingStatus.DUPLICATE) == 19
    assert counts(factory) == (1, 1, 1)


def test_sqlite_bookings_wait_for_a_locked_database(sqlite_url, tmp_path):
    """With the busy handler switched off, another writer holding the lock makes every
    statement fail at once with "database is locked"; book() waits its turn instead."""
    engine = make_engine(sqlite_url)

    @event.listens_for(engine, "connect")
    def impatient(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA busy_timeout = 0")

    factory = make_session_factory(engine)
    services = tmp_path / "services.yml"
    services.write_text(yaml.safe_dump(RACE_SERVICES, allow_unicode=True), encoding="utf-8")
    with session_scope(factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
        ap.load_services(session, services)
        station_id = session.execute(select(Station.id).where(Station.code == "JD")).scalar_one()

    import sqlite3

    holder = sqlite3.connect(sqlite_url.split("///", 1)[1], isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for a while
    released = threading.Timer(0.5, holder.execute, args=("COMMIT",))
    released.start()
    try:
        started = time.monotonic()
        with session_scope(factory) as session:
            result = ap.book(session, "o-patient", station_id, "report_in", START, NOW)
        waited = time.monotonic() - started
    finally:
        released.join()
        holder.close()
    assert result.status is BookingStatus.BOOKED
    assert waited >= 0.4
    assert counts(factory) == (1, 1, 1)
    engine.dispose()


def test_without_the_per_user_lock_the_unique_index_still_stops_a_double_booking(racing, monkeypatch, caplog,
                                                                                  database_url):
    """The per-user serialisation is the first line; the partial unique index on
    (openid, slot_id) is the last. Switch the first off and race again: the loser's
    INSERT fails on the index, its savepoint gives the seat back, and it answers
    DUPLICATE with the winner's appointment."""
    factory, station_id = racing
    # Somebody booked the slot before, so its row exists and nobody waits on its INSERT.
    assert race(factory, station_id, ["o-earlier"]) == [BookingStatus.BOOKED]
    monkeypatch.setattr(ap, "_serialise_user", lambda *args: None)
    with caplog.at_level(logging.INFO, logger="bot.services.appointments"):
        statuses = race(factory, station_id, ["o-double-tapper"] * 20)
    assert statuses.count(BookingStatus.BOOKED) == 1
    assert statuses.count(BookingStatus.DUPLICATE) == 19
    assert counts(factory) == (2, 2, 2)
    if database_url.startswith("postgresql"):  # SQLite's single writer serialises them anyway
        assert "double submit stopped by the unique index" in caplog.messages
