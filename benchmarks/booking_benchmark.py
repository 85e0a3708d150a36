"""Appointment figures for issue 4: bookings per second through bot.services.appointments,
and how long a free-slot search takes over a year of schedule.

    .venv/bin/python benchmarks/booking_benchmark.py                       # SQLite
    .venv/bin/python benchmarks/booking_benchmark.py --backend postgresql  # a throwaway PostgreSQL
    .venv/bin/python benchmarks/booking_benchmark.py --bookings 500 --threads 4 16

Each backend gets a new database with data/stations.yml and a services file like
data/services.yml but bookable a whole year ahead (so that a search can span 365
days). Bookings go through ``appointments.book`` exactly as the chat calls it: one
session and one transaction per booking, a different user each time.

- sequential: one thread books ``--bookings`` seats at random free slots of the
  13 stations offering 退役报到;
- N threads: the same, shared out among N threads (each with its own sessions);
- hot slot: 200 threads released together at one slot with 10 seats (the race of
  tests/services/test_booking_concurrency.py), the time until all have an answer;
- search: ``free_slots`` over 365 days for one station whose every slot of the year
  is materialised with seats taken, each in its own session, p50/p99; and the same
  over the 30 days the real file allows, and ``alternatives`` for an exact time.

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from bot.db.migrate import upgrade  # noqa: E402
from bot.db.models import Appointment, Service, Slot, Station  # noqa: E402
from bot.db.session import as_utc, make_engine, make_session_factory, session_scope  # noqa: E402
from bot.services import appointments as ap  # noqa: E402
from bot.services.stations import SHANGHAI, load_stations  # noqa: E402

# chinesecalendar knows 2026; a year from New Year's Eve 2025 stays inside it.
NOW = dt.datetime(2025, 12, 31, 20, 0, tzinfo=SHANGHAI)
FIRST_DAY, LAST_DAY = dt.date(2026, 1, 1), dt.date(2026, 12, 31)
SEARCHES = 200


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _services_file(directory: Path) -> Path:
    data = yaml.safe_load((ROOT / "data" / "services.yml").read_text(encoding="utf-8"))
    data["settings"]["booking_horizon_days"] = 365
    for service in data["services"]:
        if service["code"] == "consultation":  # the hot slot: 10 seats at the centre
            service["capacity_at"] = {"JD": 10}
    path = directory / "services.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _engine(url: str, threads: int):
    if url.startswith("sqlite"):
        return make_engine(url)
    return make_engine(url, pool_size=max(threads, 210), max_overflow=0, pool_timeout=120)


def _targets(factory, count: int, rng: random.Random):
    """``count`` (station id, start) pairs at random free 退役报到 slots, none taken twice."""
    with session_scope(factory) as session:
        stations = [s.id for s in ap.stations_offering(session, "report_in")]
        pool = [(station_id, slot.start)
                for station_id in stations
                for slot in ap.free_slots(session, station_id, "report_in", FIRST_DAY, LAST_DAY, NOW)
                for _ in range(slot.free)]
    return rng.sample(pool, count)


def _book_all(factory, targets, prefix: str, threads: int) -> float:
    """Seconds to book every target, shared out among ``threads``; checks every answer."""
    chunks = [targets[n::threads] for n in range(threads)]
    failures = []
    barrier = threading.Barrier(threads)

    def worker(number: int, chunk) -> None:
        barrier.wait()
        for k, (station_id, start) in enumerate(chunk):
            with session_scope(factory) as session:
                result = ap.book(session, f"{prefix}-{number}-{k}", station_id, "report_in", start, NOW)
            if not result.ok:
                failures.append(result.status)

    workers = [threading.Thread(target=worker, args=(n, c)) for n, c in enumerate(chunks)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - started
    if failures:
        print(f"    unexpected answers: {len(failures)} ({set(failures)})")
    return seconds


def _hot_slot(factory, station_id: int, start: dt.datetime, users: int = 200) -> tuple:
    barrier = threading.Barrier(users)
    statuses = []

    def worker(n: int) -> None:
        with session_scope(factory) as session:
            session.connection()
            barrier.wait()
            statuses.append(ap.book(session, f"hot-{n}", station_id, "consultation", start, NOW).status)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(users)]
    for w in workers:
        w.start()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - started, statuses


def _materialise_year(factory, station_code: str, rng: random.Random) -> int:
    """Every 退役报到 slot of the year at one station written, most of them partly taken."""
    with session_scope(factory) as session:
        station_id = session.execute(select(Station.id).where(Station.code == station_code)).scalar_one()
        service = session.execute(select(Service).where(Service.code == "report_in")).scalar_one()
        slots = ap.free_slots(session, station_id, "report_in", FIRST_DAY, LAST_DAY, NOW)
        rows = []
        for slot in slots:
            booked = rng.choice([0, 1, 2, slot.free, slot.free])  # some full
            rows.append(dict(station_id=station_id, service_id=service.id, capacity=slot.free, booked=booked,
                             start=slot.start.astimezone(dt.timezone.utc)))
        existing = {as_utc(s) for s in session.execute(select(Slot.start).where(Slot.station_id == station_id))
                    .scalars()}
        rows = [r for r in rows if r["start"] not in existing]
        if rows:
            session.execute(insert(Slot), rows)
    return len(rows)


def _timed(factory, fn, times: int):
    samples = []
    for _ in range(times):
        t0 = time.perf_counter()
        with session_scope(factory) as session:
            fn(session)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def run(url: str, bookings: int, thread_counts) -> None:
    rng = random.Random(4)
    upgrade(url)
    engine = _engine(url, max(thread_counts))
    factory = make_session_factory(engine)
    with tempfile.TemporaryDirectory() as tmp:
        with session_scope(factory) as session:
            load_stations(session, ROOT / "data" / "stations.yml")
            ap.load_services(session, _services_file(Path(tmp)), ROOT / "data" / "closures.yml", now=NOW)

    targets = _targets(factory, bookings * (1 + len(thread_counts)), rng)
    seconds = _book_all(factory, targets[:bookings], "seq", 1)
    print(f"  sequential      {bookings:>6} bookings in {seconds:6.2f} s = {bookings / seconds:7.0f} bookings/s "
          f"({seconds / bookings * 1000:.2f} ms each)")
    for n, threads in enumerate(thread_counts, start=1):
        chunk = targets[n * bookings:(n + 1) * bookings]
        seconds = _book_all(factory, chunk, f"t{threads}", threads)
        print(f"  {threads:>3} threads     {bookings:>6} bookings in {seconds:6.2f} s = "
              f"{bookings / seconds:7.0f} bookings/s")

    with session_scope(factory) as session:
        centre = session.execute(select(Station.id).where(Station.code == "JD")).scalar_one()
        hot = ap.free_slots(session, centre, "consultation", dt.date(2026, 3, 2), dt.date(2026, 3, 2), NOW)[0]
    seconds, statuses = _hot_slot(factory, centre, hot.start)
    print(f"  hot slot        200 users at once for {hot.free} seats: all answered in {seconds:5.2f} s "
          f"({statuses.count(ap.BookingStatus.BOOKED)} booked, {statuses.count(ap.BookingStatus.FULL)} full)")

    written = _materialise_year(factory, "JD-AT", rng)
    with session_scope(factory) as session:
        station_id = session.execute(select(Station.id).where(Station.code == "JD-AT")).scalar_one()
        total = session.execute(select(func.count()).select_from(Slot).where(Slot.station_id == station_id)).scalar()
        appointments = session.execute(select(func.count()).select_from(Appointment)).scalar()
        year = ap.free_slots(session, station_id, "report_in", FIRST_DAY, LAST_DAY, NOW)
    print(f"  search setup    JD-AT: {total} slot rows for the year ({written} written directly), "
          f"{len(year)} still free; {appointments} appointments in the database")
    searches = (
        ("free_slots 365 days", lambda s: ap.free_slots(s, station_id, "report_in", FIRST_DAY, LAST_DAY, NOW)),
        ("free_slots  30 days", lambda s: ap.free_slots(s, station_id, "report_in", dt.date(2026, 6, 1),
                                                        dt.date(2026, 6, 30), NOW)),
        ("alternatives (year)", lambda s: ap.alternatives(s, station_id, "report_in",
                                                          start=dt.datetime(2026, 10, 2, 10, tzinfo=SHANGHAI),
                                                          now=NOW)),
    )
    for label, fn in searches:
        samples = _timed(factory, fn, SEARCHES)
        print(f"  {label}  p50 {statistics.median(samples):7.2f} ms   p99 {_percentile(samples, 0.99):7.2f} ms   "
              f"({SEARCHES} searches, session per search)")
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--bookings", type=int, default=1000)
    parser.add_argument("--threads", type=int, nargs="+", default=[4, 16])
    args = parser.parse_args()
    print(f"backend {args.backend}, {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}")
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/bench.db", args.bookings, args.threads)
    else:
        from bot.testing.postgres import TemporaryPostgres

        with TemporaryPostgres() as server:
            run(server.create_database(), args.bookings, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
