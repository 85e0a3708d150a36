"""NLU figures for issue 2: training time, model size, server start-up,
/model/parse latency over the held-out split, held-out scores, and the
FallbackClassifier threshold sweep.

    .venv/bin/python benchmarks/nlu_benchmark.py            # use the latest model
    .venv/bin/python benchmarks/nlu_benchmark.py --train    # time a forced full training first

Prints the figures; nothing is asserted (speed is measured, not tested).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.nlu.examples import read_examples  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.training import latest_model, train  # noqa: E402

def heldout_examples() -> List[Tuple[str, str]]:
    return read_examples(ROOT / "tests" / "nlu" / "heldout")


def probe_messages() -> List[str]:
    path = ROOT / "tests" / "nlu" / "fallback_probe.txt"
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse(url: str, text: str) -> Dict:
    request = urllib.request.Request(
        f"{url}/model/parse", data=json.dumps({"text": text}).encode("utf-8"),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read().decode("utf-8"))


def top_reading(result: Dict) -> Tuple[str, float]:
    """The classifier's own best intent and confidence, before the fallback (and before
    bot.nlu.symbols, which gives emoji or punctuation only symbols_only whatever the threshold)."""
    ranking = [r for r in result.get("intent_ranking", []) if r["name"] not in ("nlu_fallback", "symbols_only")]
    best = max(ranking, key=lambda r: r["confidence"])
    name = best["name"]
    if name == "faq":
        key = result["response_selector"]["faq"]["response"]["intent_response_key"]
        name = key or name
    return name, best["confidence"]


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", action="store_true", help="time a forced full training first")
    args = parser.parse_args()
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2",
           **Settings.from_env().process_environment()}

    if args.train:
        start = time.monotonic()
        # Through vetbot's own training, so the new model is stamped as current.
        if train(force=True) != 0:
            print("training failed", file=sys.stderr)
            return 1
        print(f"training time (forced, full model): {time.monotonic() - start:.0f} s")
    model = latest_model()
    if model is None:
        print("no model: run make train", file=sys.stderr)
        return 1
    print(f"model: {model.name}, size {model.stat().st_size / 1e6:.1f} MB")

    port = free_port()
    start = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "rasa", "run", "--enable-api", "--model", str(model),
         "--interface", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/status", timeout=2) as response:
                    if json.loads(response.read()).get("model_file"):
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() - start > 300:
                print("server did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"server start-up (process start → model loaded, /status ready): {time.monotonic() - start:.1f} s")

        examples = heldout_examples()
        parse(url, "预热")  # the first call builds TensorFlow's graph
        latencies, results = [], []
        for gold, text in examples:
            t0 = time.perf_counter()
            results.append((gold, parse(url, text)))
            latencies.append((time.perf_counter() - t0) * 1000)
        print(f"/model/parse over {len(examples)} held-out messages: "
              f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
              f"mean {statistics.mean(latencies):.1f} ms")

        probes = [parse(url, text) for text in probe_messages()]
    finally:
        server.terminate()
        server.wait(timeout=30)

    readings = []
    for gold, result in results:
        name, confidence = top_reading(result)
        readings.append((name == gold, confidence))
    probe_conf = [top_reading(result)[1] for result in probes]
    total = len(readings) + len(probe_conf)
    print("\nFallbackClassifier threshold sweep (held-out in scope + fallback probes):")
    print(" threshold | in-scope right & accepted | in-scope wrong & accepted | probes accepted | score")
    best = None
    for step in range(20, 95, 5):
        threshold = step / 100
        right = sum(1 for ok, c in readings if ok and c >= threshold)
        wrong = sum(1 for ok, c in readings if not ok and c >= threshold)
        accepted_probes = sum(1 for c in probe_conf if c >= threshold)
        # A wrong answer costs as much as a right one gains; a clarifying
        # question on a message we would have got right costs nothing extra.
        score = (right - wrong - accepted_probes) / total
        print(f"   {threshold:.2f}    | {right:4d}/{len(readings)} | {wrong:4d} | "
              f"{accepted_probes:3d}/{len(probe_conf)} | {score:.3f}")
        if best is None or score > best[1]:
            best = (threshold, score)
    print(f"best threshold by this score: {best[0]:.2f}")

    summary = ROOT / "reports" / "evaluation" / "summary.json"
    if summary.exists():
        scores = json.loads(summary.read_text(encoding="utf-8"))
        print(f"\nheld-out scores (make test's evaluation): intent macro-F1 {scores['intent_macro_f1']:.3f}, "
              f"FAQ topic accuracy {scores['faq_topic_accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
