"""The WeChat gateway's cost: the same conversations through /wechat (signed, AES-encrypted,
as WeChat sends them) and straight to Rasa's REST channel, at 1, 10 and 50 concurrent users.

    .venv/bin/python benchmarks/wechat_benchmark.py [--conversations 30] [--users 1 10 50]

Starts the assistant (a trained model is needed) on free ports with its own var/.
Each conversation is a new user saying 你好 → 优待证怎么申请 → 安亭镇的服务站在哪.
Prints p50/p99 latency per message and messages per second for both paths, the ratio
gateway / REST, and how many answers missed the passive-reply budget (those are
delivered later through the customer-service API; their latency here is the time
to WeChat's `success`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import rasa_auth  # noqa: E402
from bot.testing.assistant import (  # noqa: E402
    TEST_WECHAT_AES_KEY,
    TEST_WECHAT_APPID,
    TEST_WECHAT_TOKEN,
    running_assistant,
)
from bot.wechat import simulator  # noqa: E402
from bot.wechat.simulator import WechatUser  # noqa: E402

LINES = ("你好", "优待证怎么申请", "安亭镇的服务站在哪")


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def wechat_conversation(session: aiohttp.ClientSession, gateway: str) -> Tuple[List[float], int]:
    user = WechatUser(f"{gateway}/wechat", TEST_WECHAT_TOKEN, TEST_WECHAT_APPID, TEST_WECHAT_AES_KEY,
                      session=session)
    times, deferred = [], 0
    for line in LINES:
        request = user.build(simulator.text(line))
        began = time.perf_counter()
        answer = await user.post(request)
        times.append(time.perf_counter() - began)
        if answer.status != 200:
            raise RuntimeError(f"gateway answered {answer.status}")
        deferred += not answer.texts
    return times, deferred


async def rest_conversation(session: aiohttp.ClientSession, rasa: str) -> Tuple[List[float], int]:
    sender, times = f"bench-rest-{uuid.uuid4().hex[:12]}", []
    for line in LINES:
        began = time.perf_counter()
        async with session.post(f"{rasa}/webhooks/rest/webhook", json={"sender": sender, "message": line}) as response:
            await response.json()
            if response.status != 200:
                raise RuntimeError(f"Rasa answered {response.status}")
        times.append(time.perf_counter() - began)
    return times, 0


async def run(kind: str, target: str, conversations: int, users: int,
              headers: Optional[Dict[str, str]] = None) -> Tuple[List[float], int, float]:
    queue: asyncio.Queue = asyncio.Queue()
    for _ in range(conversations):
        queue.put_nowait(None)
    times: List[float] = []
    deferred = 0
    conversation = wechat_conversation if kind == "wechat" else rest_conversation

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal deferred
        while not queue.empty():
            queue.get_nowait()
            spent, missed = await conversation(session, target)
            times.extend(spent)
            deferred += missed

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0),
                                     headers=headers if kind == "rest" else None) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(users)))
        elapsed = time.perf_counter() - began
    return times, deferred, elapsed


async def measure(gateway: str, rasa: str, conversations: int, user_counts: List[int],
                  headers: Dict[str, str]) -> None:
    await run("wechat", gateway, 3, 1)  # warm-up
    await run("rest", rasa, 3, 1, headers)
    print(f"{len(LINES)} messages per conversation; milliseconds")
    print(f"{'users':>5} {'path':<8}{'p50':>8}{'p99':>8}{'msg/s':>8}{'late':>6}")
    for users in user_counts:
        results = {}
        for kind, target in (("rest", rasa), ("wechat", gateway)):
            times, deferred, elapsed = await run(kind, target, max(conversations, users), users, headers)
            results[kind] = times
            print(f"{users:>5} {kind:<8}{percentile(times, 50) * 1000:>8.0f}{percentile(times, 99) * 1000:>8.0f}"
                  f"{len(times) / elapsed:>8.1f}{deferred:>6}")
        ratio50 = percentile(results["wechat"], 50) / percentile(results["rest"], 50)
        ratio99 = percentile(results["wechat"], 99) / percentile(results["rest"], 99)
        print(f"{'':>5} {'ratio':<8}{ratio50:>8.2f}{ratio99:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var_dir, running_assistant(Path(var_dir)) as assistant:
        asyncio.run(measure(assistant.gateway, assistant.url, args.conversations, args.users,
                            rasa_auth.headers(assistant.rasa_token)))


if __name__ == "__main__":
    main()
