"""Staff console figures: page render times at 10k conversations and 100k complaints, and
the time from a user's WeChat message to its appearance in an open transcript.

    .venv/bin/python benchmarks/console_benchmark.py                       # pages, SQLite
    .venv/bin/python benchmarks/console_benchmark.py --backend postgresql  # pages, a throwaway PostgreSQL
    .venv/bin/python benchmarks/console_benchmark.py --latency             # + message → transcript
                                                                           #   (needs `make train`)

Pages: a new veteran database with data/stations.yml, ``--cases`` complaint cases (as
benchmarks/complaints_benchmark.py writes them), ``--conversations`` conversations in a
Rasa tracker store (SQLite, the embedded default; schema made by Rasa's SQLTrackerStore,
about 12 user messages each with the bot's answers and action events, rows written in
Rasa's own event format), 200 open handoffs and 2,000 closed ones. The gateway app with
the console runs in this process on a free port; an admin and a station account sign in
and each page is fetched ``--runs`` times: p50 / p99 of the whole HTTP round trip
(server-side rendering, database and tracker-store queries included).

Latency (``--latency``): the whole assistant (`vetbot serve` on free ports, as the
end-to-end tests start it), a simulated WeChat user who asked for a person, a staff
member holding the handoff with its transcript's live request open (what console.js
does); then ``--messages`` messages, each timed from the moment the user sends it to
the moment the live request returns it (3 s apart: the gateway allows a user 20 messages
a minute). Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import create_engine, insert, select, text  # noqa: E402

from bot.console import setup_console  # noqa: E402
from bot.db.migrate import upgrade  # noqa: E402
from bot.db.models import Handoff, Station  # noqa: E402
from bot.db.session import make_engine, make_session_factory, session_scope  # noqa: E402
from bot.gateway.app import create_app  # noqa: E402
from bot.pii import PiiVault  # noqa: E402
from bot.services.sms import LogCodeSender  # noqa: E402
from bot.services.staff import create_account  # noqa: E402
from bot.settings import Settings  # noqa: E402

PACE_SECONDS = 3.0  # between one user's messages (the gateway allows 20 a minute)
PASSWORD = "Bench-Only-Pass-2026"  # a benchmark value, not a real credential
UTC = dt.timezone.utc
INTENTS = (("faq", 0.93), ("book_appointment", 0.97), ("greet", 0.99), ("query_my_benefits", 0.9),
           ("file_complaint", 0.88), ("nlu_fallback", 0.31), ("find_station", 0.95), ("affirm", 0.98))
MESSAGES = ("优待证怎么办理", "我想预约退役报到", "你好", "我的补贴发了吗", "我要投诉", "嗯那个", "最近的服务站在哪", "好的")


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _tracker_store(path: Path, conversations: int, rng: random.Random) -> int:
    """``conversations`` conversations in Rasa's tracker-store schema; returns the rows written."""
    from rasa.core.tracker_store import SQLTrackerStore

    SQLTrackerStore(dialect="sqlite", db=str(path))  # Rasa makes its own schema
    engine = create_engine(f"sqlite:///{path}", future=True)
    now = time.time()
    rows, written = [], 0
    with engine.begin() as connection:
        for n in range(conversations):
            sender = f"o-bench-{n:05d}"
            moment = now - rng.uniform(0, 30 * 86400)
            rows.append(dict(sender_id=sender, type_name="session_started", timestamp=moment, intent_name=None,
                             action_name=None, data=json.dumps({"event": "session_started", "timestamp": moment})))
            for turn in range(rng.randint(8, 16)):
                moment += rng.uniform(5, 120)
                (intent, confidence), said = INTENTS[turn % len(INTENTS)], MESSAGES[turn % len(MESSAGES)]
                user = {"event": "user", "timestamp": moment, "text": said, "input_channel": "rest",
                        "message_id": f"{n}-{turn}", "metadata": {},
                        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": [],
                                       "text": said}}
                rows.append(dict(sender_id=sender, type_name="user", timestamp=moment, intent_name=intent,
                                 action_name=None, data=json.dumps(user, ensure_ascii=False)))
                bot = {"event": "bot", "timestamp": moment + 0.2, "text": "好的，这是您要的信息……",
                       "data": {}, "metadata": {}}
                rows.append(dict(sender_id=sender, type_name="bot", timestamp=moment + 0.2, intent_name=None,
                                 action_name=None, data=json.dumps(bot, ensure_ascii=False)))
                listen = {"event": "action", "timestamp": moment + 0.3, "name": "action_listen"}
                rows.append(dict(sender_id=sender, type_name="action", timestamp=moment + 0.3, intent_name=None,
                                 action_name="action_listen", data=json.dumps(listen)))
            if len(rows) >= 20_000:
                connection.execute(text("INSERT INTO events (sender_id, type_name, timestamp, intent_name, "
                                        "action_name, data) VALUES (:sender_id, :type_name, :timestamp, "
                                        ":intent_name, :action_name, :data)"), rows)
                written += len(rows)
                rows = []
        if rows:
            connection.execute(text("INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, "
                                    "data) VALUES (:sender_id, :type_name, :timestamp, :intent_name, :action_name, "
                                    ":data)"), rows)
            written += len(rows)
    engine.dispose()
    return written


def _handoffs(factory, conversations: int, rng: random.Random) -> None:
    now = dt.datetime.now(UTC)
    with session_scope(factory) as session:
        stations = session.execute(select(Station.id)).scalars().all()
        rows = []
        for n in range(2200):
            created = now - dt.timedelta(minutes=rng.uniform(1, 60 * 24 * 30))
            open_ = n < 200
            claimed = None if open_ and n % 3 else created + dt.timedelta(minutes=rng.uniform(1, 90))
            rows.append(dict(openid=f"o-bench-{rng.randrange(conversations):05d}" if not open_ else f"o-bench-{n:05d}",
                             reason=rng.choice(("request_human", "fallback", "urgent")), urgent=n % 25 == 0,
                             station_id=rng.choice(stations + [None]), created_at=created,
                             state=("claimed" if claimed else "waiting") if open_ else "closed",
                             claimed_at=claimed or (None if open_ else created), claimed_by=None if not claimed else "bench",
                             closed_at=None if open_ else created + dt.timedelta(hours=2),
                             closed_by=None if open_ else "bench"))
        session.execute(insert(Handoff.__table__), rows)


def _hidden_csrf(html: str, action: str) -> str:
    match = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>.*?name="csrf" value="([^"]*)"', html, re.S)
    if not match:
        raise RuntimeError(f"no form posting to {action}")
    return match.group(1)


async def sign_in(http: aiohttp.ClientSession, base: str, username: str) -> None:
    async with http.get(f"{base}/console/login") as response:
        token = re.search(r'name="csrf" value="([^"]*)"', await response.text()).group(1)
    async with http.post(f"{base}/console/login", data={"csrf": token, "username": username,
                                                        "password": PASSWORD}) as response:
        if "退出登录" not in await response.text():
            raise RuntimeError(f"{username} could not sign in")


async def _time_pages(base: str, pages, runs: int, username: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await sign_in(http, base, username)
        for name, path in pages:
            times, status, size = [], 0, 0
            for _ in range(runs):
                started = time.perf_counter()
                async with http.get(f"{base}{path}") as response:
                    body = await response.read()
                    status, size = response.status, len(body)
                times.append((time.perf_counter() - started) * 1000)
            print(f"  {username:8} {name:42} {statistics.median(times):8.1f} {_percentile(times, 0.99):8.1f}"
                  f" {size / 1024:7.0f} KiB  HTTP {status}")


async def pages(url: str, cases: int, conversations: int, runs: int, directory: Path) -> None:
    import complaints_benchmark

    rng = random.Random(20261123)
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    complaints_benchmark._load(factory, cases, rng)
    tracker_db = directory / "tracker.db"
    events = _tracker_store(tracker_db, conversations, rng)
    _handoffs(factory, conversations, rng)
    now = dt.datetime.now(UTC)
    with session_scope(factory) as session:
        create_account(session, "admin1", "李管理", PASSWORD, "admin", None, now)
        create_account(session, "wangkz", "王科长", PASSWORD, "station", "JD-AT", now)
        first_open = session.execute(select(Handoff.id).where(Handoff.state != "closed").order_by(Handoff.id)
                                     .limit(1)).scalar_one()
    print(f"  data: {cases:,} complaints, {conversations:,} conversations ({events:,} tracker events), "
          f"2,200 handoffs; loaded in {time.perf_counter() - started:.0f} s")

    settings = Settings.from_env({"VETBOT_DATABASE_URL": url, "VETBOT_SECRET_KEY": "benchmark-secret",
                                  "VETBOT_VAR_DIR": str(directory / "var"), "VETBOT_TRACKER_DB": str(tracker_db),
                                  "VETBOT_PUBLIC_URL": "http://127.0.0.1"})
    app = create_app(settings, factory, PiiVault("benchmark-secret"), LogCodeSender())
    setup_console(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    try:
        listing = [
            ("handoff queue (200 open)", "/console/handoffs"),
            ("a transcript", f"/console/handoffs/{first_open}"),
            ("recent conversations", "/console/conversations"),
            ("complaints, first page", "/console/complaints"),
            ("complaints, state+category filter", "/console/complaints?state=in_progress&category=待遇发放"),
            ("complaints, overdue", "/console/complaints?overdue=1"),
            ("a complaint", f"/console/complaints/{cases // 2}"),
            ("appointments day view", "/console/appointments"),
            ("dashboard, 7 days", "/console/dashboard?days=7"),
            ("dashboard, 30 days", "/console/dashboard?days=30"),
        ]
        print(f"  {'account':8} {'page':42} {'p50 ms':>8} {'p99 ms':>8} {'size':>11}")
        await _time_pages(base, listing, runs, "admin1")
        station_pages = [item for item in listing if "transcript" not in item[0] and "a complaint" not in item[0]]
        await _time_pages(base, station_pages, runs, "wangkz")
    finally:
        await runner.cleanup()
        engine.dispose()


async def latency(messages: int) -> None:
    """Message → open transcript, through the real gateway, Rasa and action server."""
    import subprocess

    from bot.testing.assistant import TEST_WECHAT_AES_KEY, TEST_WECHAT_APPID, TEST_WECHAT_TOKEN, running_assistant
    from bot.wechat.simulator import WechatUser

    with tempfile.TemporaryDirectory() as directory, running_assistant(Path(directory)) as running:
        env = dict(running.env, VETBOT_STAFF_PASSWORD=PASSWORD)
        subprocess.run([sys.executable, "-m", "bot.cli", "create-staff", "zhaozr", "--role", "district",
                        "--station", "JD", "--name", "赵主任"], env=env, cwd=ROOT, check=True, capture_output=True)
        base = running.gateway
        user = WechatUser(f"{base}/wechat", TEST_WECHAT_TOKEN, TEST_WECHAT_APPID, TEST_WECHAT_AES_KEY,
                          api_base=running.mock_wechat)
        async with user, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await user.say("转人工")
            await sign_in(http, base, "zhaozr")
            async with http.get(f"{base}/console/handoffs") as response:
                handoff_id = re.search(r'data-handoff="(\d+)"', await response.text()).group(1)
            path = f"/console/handoffs/{handoff_id}"
            async with http.get(base + path) as response:
                page = await response.text()
            async with http.post(f"{base}{path}/claim", data={"csrf": _hidden_csrf(page, f"{path}/claim")}) as response:
                page = await response.text()
            after = re.search(r'data-after="(\d+)"', page).group(1)
            sig = re.search(r'data-sig="([^"]+)"', page).group(1)
            times = []
            for n in range(messages):
                live = asyncio.ensure_future(http.get(f"{base}{path}/live",
                                                      params={"after": after, "sig": sig, "notes": "0"}))
                await asyncio.sleep(0.3)  # the live request is waiting, as in an open browser tab
                started = time.perf_counter()
                answer = await user.say(f"第{n + 1}条消息")
                if answer.texts:  # e.g. the gateway's rate limit (20 a minute): the bot, not staff, answered
                    raise RuntimeError(f"unexpected answer while staff hold the conversation: {answer.texts}")
                response = await live
                data = await response.json()
                while f"第{n + 1}条消息" not in data["html"]:  # (a line before it came first)
                    after = data["after"]
                    async with http.get(f"{base}{path}/live", params={"after": after, "sig": sig,
                                                                      "notes": "0"}) as again:
                        data = await again.json()
                times.append((time.perf_counter() - started) * 1000)
                after = data["after"]
                await asyncio.sleep(PACE_SECONDS)  # a user types; and the gateway allows 20 a minute
            print(f"  message → open transcript, {messages} messages: p50 {statistics.median(times):.0f} ms, "
                  f"p99 {_percentile(times, 0.99):.0f} ms, max {max(times):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both", "none"), default="sqlite")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency", action="store_true", help="also time message → open transcript (needs a model)")
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--no-pages", action="store_true", help="only the latency (with --latency)")
    args = parser.parse_args()
    if args.no_pages:
        args.backend = "none"
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as directory:
            print("SQLite")
            asyncio.run(pages(f"sqlite:///{os.path.join(directory, 'vetbot.db')}", args.cases, args.conversations,
                              args.runs, Path(directory)))
    if args.backend in ("postgresql", "both"):
        from bot.testing.postgres import TemporaryPostgres

        with TemporaryPostgres() as server, tempfile.TemporaryDirectory() as directory:
            print("PostgreSQL (tracker store: SQLite, the embedded default)")
            asyncio.run(pages(server.create_database(), args.cases, args.conversations, args.runs, Path(directory)))
    if args.latency:
        asyncio.run(latency(args.messages))


if __name__ == "__main__":
    main()
