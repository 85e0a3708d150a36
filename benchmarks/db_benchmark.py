"""Veteran database figures for issue 3: seeding time and database size, and
lookup latency of a veteran by OpenID (the bound WeChat user) and by ID number.

    .venv/bin/python benchmarks/db_benchmark.py                       # SQLite, 5k and 1M
    .venv/bin/python benchmarks/db_benchmark.py --backend postgresql  # a throwaway PostgreSQL
    .venv/bin/python benchmarks/db_benchmark.py --sizes 5000          # just one size

Each size seeds a new, empty database through the same code as `vetbot seed`
(data/stations.yml loaded first), binds 10,000 random veterans to made-up
OpenIDs, then times 2,000 lookups of each kind through bot.services.veterans,
each in its own session as the actions do. Prints the figures; asserts nothing.
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
from bot.db.models import Veteran, WechatBinding, utcnow  # noqa: E402
from bot.db.session import make_engine, make_session_factory, session_scope  # noqa: E402
from bot.pii import VETERAN_ID, PiiVault  # noqa: E402
from bot.seed import seed  # noqa: E402
from bot.services import veterans  # noqa: E402
from bot.services.stations import load_stations  # noqa: E402

LOOKUPS = 2000
BOUND = 10_000


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _size(engine, url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar()


def run(url: str, count: int) -> None:
    vault = PiiVault("benchmark-secret")
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        load_stations(session, ROOT / "data" / "stations.yml")
    started = time.perf_counter()
    result = seed(factory, vault, count, today=dt.date(2026, 11, 22), progress=sys.stderr.isatty())
    seconds = time.perf_counter() - started
    size = _size(engine, url)
    print(f"{count:>9,} veterans: seeded in {seconds:7.1f} s ({count / seconds:,.0f}/s); "
          f"{result.applications:,} applications, {result.steps:,} steps; database {size / 2**20:,.1f} MiB")

    rng = random.Random(7)
    with session_scope(factory) as session:
        total = session.execute(select(func.count()).select_from(Veteran)).scalar()
        ids = [rng.randint(1, total) for _ in range(min(BOUND, total))]
        ids = sorted(set(ids))
        rows = [{"openid": f"o{n:027d}", "veteran_id": vid, "bound_at": utcnow()} for n, vid in enumerate(ids)]
        session.execute(insert(WechatBinding.__table__), rows)
        sample = session.execute(
            select(Veteran.id_hash, Veteran.id_cipher).where(Veteran.id.in_(rng.sample(ids, min(LOOKUPS, len(ids)))))
        ).all()
    numbers = [vault.decrypt(cipher, VETERAN_ID, id_hash) for id_hash, cipher in sample]
    openids = [row["openid"] for row in rng.sample(rows, min(LOOKUPS, len(rows)))]

    def timed(fn, keys):
        times = []
        for key in keys:
            t0 = time.perf_counter()
            with session_scope(factory) as session:
                found = fn(session, key)
            times.append((time.perf_counter() - t0) * 1000)
            assert found is not None
        return times

    by_openid = timed(veterans.by_openid, openids)
    by_id = timed(lambda s, n: veterans.by_id_number(s, vault, n), numbers)
    for label, times in (("by OpenID", by_openid), ("by ID number", by_id)):
        print(f"{'':>20}lookup {label:<13} p50 {statistics.median(times):6.2f} ms   "
              f"p99 {_percentile(times, 0.99):6.2f} ms   ({len(times)} lookups, session per lookup)")
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 1_000_000])
    args = parser.parse_args()
    print(f"backend {args.backend}, {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}")
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            for size in args.sizes:
                run(f"sqlite:///{tmp}/bench-{size}.db", size)
    else:
        from bot.testing.postgres import TemporaryPostgres

        with TemporaryPostgres() as server:
            for size in args.sizes:
                run(server.create_database(), size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
