"""Complaint intake through the chat channel, Rasa and the action server: how long each
turn and a whole intake (opening message to case number) take.

    .venv/bin/python benchmarks/complaint_chat_benchmark.py [--intakes 40] [--users 1 4]
    .venv/bin/python benchmarks/complaint_chat_benchmark.py --url http://127.0.0.1:5005

Without --url it starts the assistant (a trained model is needed) on free ports with
its own throwaway var/; each simulated user files complaints one after another with
the same seven turns: the story, "说完了", the category confirmed, "无" for the place,
a reply in WeChat, then "确认". Prints p50/p99 per turn and per intake, and
intakes per minute, for each number of concurrent users.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.chat import send  # noqa: E402
from bot.render import render_messages  # noqa: E402
from bot.testing.assistant import running_assistant  # noqa: E402

TURNS = (
    ("story", "我的生活补助从九月开始就停发了，问了街道好几次都说等通知"),
    ("done", "说完了"),
    ("category", "是的"),
    ("place", "无"),
    ("reply", "在微信里答复"),
    ("confirm", "确认"),
)


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def one_intake(url: str, timings: Dict[str, List[float]], token: Optional[str]) -> float:
    sender = f"bench-{uuid.uuid4().hex[:12]}"
    start = time.perf_counter()
    for name, text in (("open", "我要投诉"),) + TURNS:
        began = time.perf_counter()
        reply = "\n".join(render_messages(send(url, sender, text, timeout=120, token=token)))
        timings.setdefault(name, []).append(time.perf_counter() - began)
    if "已登记" not in reply:
        raise RuntimeError(f"the intake did not end with a case number: {reply!r}")
    return time.perf_counter() - start


def run(url: str, intakes: int, users: int, token: Optional[str] = None) -> None:
    timings: Dict[str, List[float]] = {}
    began = time.perf_counter()
    with ThreadPoolExecutor(users) as pool:
        totals = list(pool.map(lambda _: one_intake(url, timings, token), range(intakes)))
    elapsed = time.perf_counter() - began
    print(f"\n{users} concurrent user(s), {intakes} intakes, {len(TURNS) + 1} turns each, "
          f"{intakes / elapsed * 60:.1f} intakes/min")
    print(f"{'turn':<10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name in ["open"] + [n for n, _ in TURNS]:
        values = timings[name]
        print(f"{name:<10}{percentile(values, 50) * 1000:>10.0f}{percentile(values, 99) * 1000:>10.0f}"
              f"{statistics.mean(values) * 1000:>10.0f}")
    every_turn = [v for values in timings.values() for v in values]
    print(f"{'any turn':<10}{percentile(every_turn, 50) * 1000:>10.0f}{percentile(every_turn, 99) * 1000:>10.0f}"
          f"{statistics.mean(every_turn) * 1000:>10.0f}")
    print(f"{'intake':<10}{percentile(totals, 50) * 1000:>10.0f}{percentile(totals, 99) * 1000:>10.0f}"
          f"{statistics.mean(totals) * 1000:>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running assistant's Rasa URL (default: start one)")
    parser.add_argument("--intakes", type=int, default=40)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    if args.url:
        for users in args.users:
            run(args.url, args.intakes, users)
        return
    with tempfile.TemporaryDirectory() as var_dir, running_assistant(Path(var_dir)) as assistant:
        run(assistant.url, 3, 1, assistant.rasa_token)  # warm-up, not reported separately
        print("(the three warm-up intakes above are not part of the figures below)")
        for users in args.users:
            run(assistant.url, args.intakes, users, assistant.rasa_token)


if __name__ == "__main__":
    main()
