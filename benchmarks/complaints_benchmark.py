"""Complaint register figures: the console's list (``list_cases``) and the user's own
cases (``cases_for_user``) over a register of 100k cases.

    .venv/bin/python benchmarks/complaints_benchmark.py                        # SQLite
    .venv/bin/python benchmarks/complaints_benchmark.py --backend postgresql   # a throwaway PostgreSQL
    .venv/bin/python benchmarks/complaints_benchmark.py --cases 20000 --runs 100

Each backend gets a new database with data/stations.yml and ``--cases`` cases written
by multi-row INSERTs (as bot/seed.py does): two years of registrations, about 30,000
users, a realistic mix of states (most closed), categories and stations, deadlines as
the register computes them, 2% urgent. Then, each query in its own session as the
console and the chat call them, ``--runs`` times: p50 / p99. Also the time of
``register`` itself (one transaction each, sequential). Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bot.db.migrate import upgrade  # noqa: E402
from bot.db.models import CaseEvent, ComplaintCase, ComplaintCounter, Station  # noqa: E402
from bot.db.session import make_engine, make_session_factory, session_scope  # noqa: E402
from bot.pii import PiiVault  # noqa: E402
from bot.services import complaints as cs  # noqa: E402
from bot.services.stations import SHANGHAI, load_stations  # noqa: E402

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)
UTC = dt.timezone.utc
BATCH = 2000
STATE_WEIGHTS = (("closed", 80), ("registered", 2), ("classified", 3), ("in_progress", 10), ("answered", 2),
                 ("follow_up", 3))
CATEGORY_WEIGHTS = (("待遇发放", 30), ("安置就业", 20), ("优待落实", 20), ("服务态度", 10), ("权益侵害", 10), ("其他", 10))


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _pick(rng, table):
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _rows(count: int, stations, rng: random.Random, rules):
    """Cases in registration order, each with its per-day number and a plausible state."""
    start = NOW - dt.timedelta(days=730)
    moments = sorted(start + dt.timedelta(seconds=rng.randrange(730 * 86400)) for _ in range(count))
    per_day = {}
    for n, created in enumerate(moments, start=1):
        day = created.date()
        per_day[day] = per_day.get(day, 0) + 1
        state = _pick(rng, STATE_WEIGHTS)
        age = NOW - created
        if state != "closed" and age > dt.timedelta(days=90) and rng.random() < 0.9:
            state = "closed"  # old cases are nearly all closed; a few stay open and overdue
        changed = created + min(age, dt.timedelta(days=rng.randrange(0, 40))) if state != "registered" else created
        accepted = created + dt.timedelta(days=1) if state not in ("registered",) else None
        rejected = state == "closed" and rng.random() < 0.05
        urgent = rng.random() < 0.02
        yield dict(
            id=n, case_number=cs.format_case_number(day, per_day[day]), openid=f"o-bench-{rng.randrange(30000)}",
            veteran_id=None, category=_pick(rng, CATEGORY_WEIGHTS), description="演示：反映的问题" * 5,
            place=None, station_id=rng.choice(stations) if rng.random() < 0.7 else None,
            reply_channel="anonymous" if rng.random() < 0.1 else "bound_phone",
            urgent=urgent, priority=1 if urgent else 3, state=state,
            assigned_to=None if state == "registered" or rejected else "优抚科",
            assigned_station_id=rng.choice(stations) if state != "registered" and not rejected else None,
            answer_text="演示答复" if state in ("answered", "follow_up", "closed") else None,
            rating=rng.choice(("满意", "基本满意", "不满意")) if state == "closed" and not rejected else None,
            reopened=0, accepted_at=None if rejected else (accepted.astimezone(UTC) if accepted else None),
            state_changed_at=changed.astimezone(UTC),
            due_at=cs._due(state, changed, accepted, rules) if state != "closed" else None,
            created_at=created.astimezone(UTC), updated_at=changed.astimezone(UTC),
            closed_at=changed.astimezone(UTC) if state == "closed" else None,
        )


def _load(factory, count: int, rng: random.Random) -> float:
    rules = cs.default_rules()
    with session_scope(factory) as session:
        load_stations(session, ROOT / "data" / "stations.yml")
        stations = session.execute(select(Station.id)).scalars().all()
    started = time.perf_counter()
    batch, days = [], {}
    for row in _rows(count, stations, rng, rules):
        batch.append(row)
        day = dt.date(int(row["case_number"][2:6]), int(row["case_number"][6:8]), int(row["case_number"][8:10]))
        days[day] = int(row["case_number"][-4:])
        if len(batch) == BATCH:
            with session_scope(factory) as session:
                session.execute(insert(ComplaintCase.__table__), batch)
                session.execute(insert(CaseEvent.__table__), [
                    dict(case_id=r["id"], kind="transition", to_state="registered", action="登记", actor="user",
                         happened_at=r["created_at"]) for r in batch])
            batch = []
    with session_scope(factory) as session:
        if batch:
            session.execute(insert(ComplaintCase.__table__), batch)
            session.execute(insert(CaseEvent.__table__), [
                dict(case_id=r["id"], kind="transition", to_state="registered", action="登记", actor="user",
                     happened_at=r["created_at"]) for r in batch])
        session.execute(insert(ComplaintCounter.__table__), [dict(day=d, last_number=n) for d, n in days.items()])
        if session.get_bind().dialect.name == "postgresql":  # ids were given explicitly: move the sequence on
            session.execute(text("SELECT setval(pg_get_serial_sequence('complaint_cases', 'id'), "
                                 "(SELECT MAX(id) FROM complaint_cases) + 1, false)"))
    return time.perf_counter() - started


def _timed(factory, runs: int, call) -> tuple:
    times, sizes = [], []
    for n in range(runs):
        started = time.perf_counter()
        with session_scope(factory) as session:
            sizes.append(call(session, n))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), _percentile(times, 0.99), statistics.mean(sizes)


def run(url: str, count: int, runs: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    rng = random.Random(20261122)
    seconds = _load(factory, count, rng)
    with session_scope(factory) as session:
        total = session.execute(select(func.count()).select_from(ComplaintCase)).scalar_one()
        stations = session.execute(select(Station.id)).scalars().all()
        overdue_count = cs.count_cases(session, overdue=True, now=NOW)
        owners = session.execute(select(ComplaintCase.case_number, ComplaintCase.openid)
                                 .where(ComplaintCase.id.in_(rng.sample(range(1, total + 1), runs)))).all()
    print(f"  loaded {total:,} cases in {seconds:.1f} s ({total / seconds:,.0f}/s); {overdue_count:,} overdue")

    queries = {
        "list_cases() no filter, first page": lambda s, n: len(cs.list_cases(s, now=NOW)),
        "list_cases() page 100 (offset 4,950)": lambda s, n: len(cs.list_cases(s, now=NOW, offset=4950)),
        "list_cases(state=in_progress)": lambda s, n: len(cs.list_cases(s, state="in_progress", now=NOW)),
        "list_cases(category=服务态度)": lambda s, n: len(cs.list_cases(s, category="服务态度", now=NOW)),
        "list_cases(station_id=…)": lambda s, n: len(cs.list_cases(s, station_id=stations[n % len(stations)], now=NOW)),
        "list_cases(overdue=True)": lambda s, n: len(cs.list_cases(s, overdue=True, now=NOW)),
        "list_cases(state, category, station)": lambda s, n: len(cs.list_cases(
            s, state="in_progress", category="待遇发放", station_id=stations[n % len(stations)], now=NOW)),
        "list_cases(urgent=True)": lambda s, n: len(cs.list_cases(s, urgent=True, now=NOW)),
        "count_cases(state=in_progress)": lambda s, n: cs.count_cases(s, state="in_progress", now=NOW),
        "overdue(limit=50)": lambda s, n: len(cs.overdue(s, NOW, limit=50)),
        "cases_for_user(openid)": lambda s, n: len(cs.cases_for_user(s, owners[n % len(owners)][1], now=NOW)),
        "find_for_user(number, openid)": lambda s, n: int(
            cs.find_for_user(s, *owners[n % len(owners)], now=NOW) is not None),
    }
    print(f"  {'query':44} {'p50 ms':>8} {'p99 ms':>8} {'rows':>6}")
    for name, call in queries.items():
        p50, p99, size = _timed(factory, runs, call)
        print(f"  {name:44} {p50:8.2f} {p99:8.2f} {size:6.0f}")

    vault = PiiVault("benchmark-secret")
    times = []
    for n in range(200):
        started = time.perf_counter()
        with session_scope(factory) as session:
            cs.register(session, vault, f"o-new-{n}", None, None, "抚恤金没有按时发放", None, None,
                        "case_phone", "13800000000", False, NOW + dt.timedelta(seconds=n))
        times.append((time.perf_counter() - started) * 1000)
    print(f"  {'register() sequential, 200':44} {statistics.median(times):8.2f} {_percentile(times, 0.99):8.2f}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as directory:
            print(f"SQLite, {args.cases:,} cases")
            run(f"sqlite:///{os.path.join(directory, 'complaints.db')}", args.cases, args.runs)
    if args.backend in ("postgresql", "both"):
        from bot.testing.postgres import TemporaryPostgres

        with TemporaryPostgres() as server:
            print(f"PostgreSQL, {args.cases:,} cases")
            run(server.create_database(), args.cases, args.runs)


if __name__ == "__main__":
    main()
