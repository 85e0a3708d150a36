"""How stable is the NLU? Held-out scores over seeds, core counts and oneDNN,
and 5-fold cross-validation over the training data.

    .venv/bin/python benchmarks/nlu_stability.py                 # config.yml, report to docs/evaluation
    .venv/bin/python benchmarks/nlu_stability.py --config OLD.yml --out /tmp/old --no-cv

Each variant trains the NLU (`rasa train nlu`) from scratch in a temporary
directory and evaluates it on the held-out split (`rasa test nlu`, as `vetbot
evaluate` does):

- three random seeds on both cores (the seed is set on every pipeline component
  that takes `random_seed`);
- the first seed on one core (`taskset -c 0`);
- the first seed with `TF_ENABLE_ONEDNN_OPTS=0`.

Besides the scores, every variant gets a digest of all its held-out predictions
(intent, topic and confidence to six decimals), so "the same model" is checked
message by message, not only as a rounded score. The report gives min / mean /
max over the seeds and the one- vs two-core difference, then Rasa's own 5-fold
cross-validation (`rasa test nlu --cross-validation`). Prints the figures and
writes `stability.json` and `stability.md` to `--out`; nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.evaluation import HELDOUT_DIR, summarise  # noqa: E402
from bot.nlu.examples import read_examples  # noqa: E402

PY = sys.executable


def seeded_config(config: Path, seed: int, directory: Path) -> Path:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for component in data.get("pipeline", []):
        if "random_seed" in component or component["name"].split(".")[-1] in {
            "LinearIntentClassifier", "LinearResponseSelector", "DIETClassifier", "ResponseSelector",
        }:
            component["random_seed"] = seed
    path = directory / f"config-{seed}.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def environment(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2", "RASA_TELEMETRY_ENABLED": "false"}
    env.update(extra or {})
    return env


def predictions_digest(out: Path) -> str:
    """One hash over every held-out prediction: text, intent, confidence (6 places)."""
    rows = []
    for name in ("intent_successes.json", "intent_errors.json"):
        path = out / name
        for item in json.loads(path.read_text(encoding="utf-8")) if path.exists() else []:
            predicted = item.get("intent_prediction") or {}
            rows.append((item["text"], predicted.get("name"), round(predicted.get("confidence") or 0.0, 6)))
    for name in ("response_selection_successes.json", "response_selection_errors.json"):
        path = out / name
        for item in json.loads(path.read_text(encoding="utf-8")) if path.exists() else []:
            predicted = item.get("intent_response_key_prediction") or {}
            rows.append((item["text"], predicted.get("name"), round(predicted.get("confidence") or 0.0, 6)))
    return hashlib.sha256(json.dumps(sorted(rows), ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def variant(label: str, config: Path, work: Path, prefix: List[str], env: Dict[str, str]) -> Dict[str, Any]:
    target = work / re.sub(r"\W+", "-", label)
    models, out = target / "models", target / "eval"
    start = time.monotonic()
    subprocess.run(
        prefix + [PY, "-m", "rasa", "train", "nlu", "--config", str(config), "--domain", "domain",
                  "--nlu", "nlu_data", "--out", str(models)],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - start
    model = next(models.glob("*.tar.gz"))
    subprocess.run(
        prefix + [PY, "-m", "rasa", "test", "nlu", "--nlu", str(HELDOUT_DIR), "--model", str(model),
                  "--out", str(out), "--successes"],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    summary = summarise(out)
    result = {
        "variant": label,
        "training_seconds": round(seconds, 1),
        "intent_macro_f1": round(summary["intent_macro_f1"], 4),
        "intent_accuracy": round(summary["intent_accuracy"], 4),
        "faq_topic_accuracy": round(summary["faq_topic_accuracy"], 4),
        "predictions_digest": predictions_digest(out),
        "per_intent_f1": {k: round(v["f1-score"], 4) for k, v in summary["per_intent"].items()},
    }
    print(f"{label:34s} macro-F1 {result['intent_macro_f1']:.4f}  accuracy {result['intent_accuracy']:.4f}  "
          f"FAQ {result['faq_topic_accuracy']:.4f}  training {seconds:5.1f} s  predictions {result['predictions_digest']}",
          flush=True)
    return result


def cross_validation(config: Path, work: Path, folds: int, env: Dict[str, str]) -> Dict[str, Any]:
    out = work / "cv"
    log = subprocess.run(
        [PY, "-m", "rasa", "test", "nlu", "--nlu", "nlu_data", "--config", str(config),
         "--cross-validation", "--folds", str(folds), "--out", str(out)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )
    text = log.stdout + log.stderr
    # Rasa logs "test F1-score: 0.914 (0.011)" per evaluation (intents, entities, responses).
    sections = re.split(r"(Intent|Entity|Response Selection) evaluation results", text)
    found: Dict[str, Any] = {"folds": folds}
    for name, body in zip(sections[1::2], sections[2::2]):
        key = {"Intent": "intent", "Entity": "entity", "Response Selection": "response_selection"}[name]
        for metric in ("Accuracy", "F1-score"):
            match = re.search(rf"test {metric}: ([0-9.]+) \(([0-9.]+)\)", body)
            if match:
                found[f"{key}_{metric.lower()}_weighted_mean"] = float(match.group(1))
                found[f"{key}_{metric.lower()}_std"] = float(match.group(2))
    intents = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    found["intent_macro_f1_pooled"] = round(intents["macro avg"]["f1-score"], 4)
    responses = json.loads((out / "response_selection_report.json").read_text(encoding="utf-8"))
    found["faq_topic_accuracy_pooled"] = round(responses.get("accuracy", 0.0), 4)
    return found


def spread(values: List[float]) -> Dict[str, float]:
    return {"min": min(values), "mean": round(statistics.mean(values), 4), "max": max(values)}


def write_report(report: Dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "stability.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        "# NLU stability",
        "",
        f"Config: `{report['config']}`; held-out split: {report['heldout_examples']} messages "
        f"(`tests/nlu/heldout/`); machine: {report['machine']}.",
        "Reproduce: `.venv/bin/python benchmarks/nlu_stability.py` (about "
        f"{report['benchmark_minutes']} min).",
        "",
        "| variant | intent macro-F1 | intent accuracy | FAQ topic accuracy | training (NLU) | predictions digest |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["variants"]:
        lines.append(
            f"| {row['variant']} | {row['intent_macro_f1']:.4f} | {row['intent_accuracy']:.4f} | "
            f"{row['faq_topic_accuracy']:.4f} | {row['training_seconds']:.0f} s | `{row['predictions_digest']}` |"
        )
    s = report["seeds"]
    lines += [
        "",
        f"Over the {len(report['seed_values'])} seeds: intent macro-F1 min {s['intent_macro_f1']['min']:.4f} / "
        f"mean {s['intent_macro_f1']['mean']:.4f} / max {s['intent_macro_f1']['max']:.4f}; "
        f"FAQ topic accuracy min {s['faq_topic_accuracy']['min']:.4f} / mean {s['faq_topic_accuracy']['mean']:.4f} / "
        f"max {s['faq_topic_accuracy']['max']:.4f}.",
        f"One core vs two: macro-F1 differs by {report['one_vs_two_cores']['intent_macro_f1']:.4f}, "
        f"FAQ accuracy by {report['one_vs_two_cores']['faq_topic_accuracy']:.4f}; "
        f"identical predictions: {report['one_vs_two_cores']['identical_predictions']}.",
        f"Distinct prediction digests over all variants: {report['distinct_digests']}.",
    ]
    cv = report.get("cross_validation")
    if cv:
        lines += [
            "",
            f"## {cv['folds']}-fold cross-validation over the training data",
            "",
            f"- intents: macro-F1 (pooled over the folds) {cv['intent_macro_f1_pooled']:.4f}; "
            f"Rasa's weighted F1 {cv.get('intent_f1-score_weighted_mean', float('nan')):.3f} "
            f"(± {cv.get('intent_f1-score_std', float('nan')):.3f} between folds)",
            f"- policy topics (response selection): accuracy (pooled) {cv['faq_topic_accuracy_pooled']:.4f}; "
            f"weighted F1 {cv.get('response_selection_f1-score_weighted_mean', float('nan')):.3f} "
            f"(± {cv.get('response_selection_f1-score_std', float('nan')):.3f})",
            "",
            "Cross-validation is harder than the held-out split: the training data deliberately holds",
            "near-misses and contrasting pairs, and a fold removes one side of a pair.",
        ]
    (out / "stability.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        isa = "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else "no AVX2")
    except OSError:
        isa = "?"
    return f"{model}, {isa}, {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="config.yml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2026, 7, 42])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--no-cv", action="store_true")
    parser.add_argument("--out", default="docs/evaluation")
    args = parser.parse_args()
    config = (ROOT / args.config).resolve()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="vetbot-stability-"))
    try:
        variants = []
        for seed in args.seeds:
            variants.append(variant(f"seed {seed}, 2 cores", seeded_config(config, seed, work), work, [], environment()))
        first = seeded_config(config, args.seeds[0], work)
        taskset = shutil.which("taskset")
        if taskset:
            variants.append(variant(f"seed {args.seeds[0]}, 1 core (taskset -c 0)", first, work,
                                    [taskset, "-c", "0"], environment()))
        variants.append(variant(f"seed {args.seeds[0]}, TF_ENABLE_ONEDNN_OPTS=0", first, work, [],
                                environment({"TF_ENABLE_ONEDNN_OPTS": "0"})))
        seeds = variants[: len(args.seeds)]
        report: Dict[str, Any] = {
            "config": args.config,
            "machine": machine(),
            "heldout_examples": len(read_examples(HELDOUT_DIR)),
            "seed_values": args.seeds,
            "variants": variants,
            "seeds": {
                key: spread([row[key] for row in seeds])
                for key in ("intent_macro_f1", "intent_accuracy", "faq_topic_accuracy")
            },
            "distinct_digests": len({row["predictions_digest"] for row in variants}),
        }
        if taskset:
            one, two = variants[len(args.seeds)], variants[0]
            report["one_vs_two_cores"] = {
                "intent_macro_f1": round(abs(one["intent_macro_f1"] - two["intent_macro_f1"]), 4),
                "faq_topic_accuracy": round(abs(one["faq_topic_accuracy"] - two["faq_topic_accuracy"]), 4),
                "identical_predictions": one["predictions_digest"] == two["predictions_digest"],
            }
        if not args.no_cv:
            start = time.monotonic()
            report["cross_validation"] = cross_validation(config, work, args.folds, environment())
            report["cross_validation"]["seconds"] = round(time.monotonic() - start)
            cv = report["cross_validation"]
            print(f"{args.folds}-fold cross-validation: intent macro-F1 {cv['intent_macro_f1_pooled']:.4f}, "
                  f"FAQ topic accuracy {cv['faq_topic_accuracy_pooled']:.4f}", flush=True)
        report["benchmark_minutes"] = round((time.monotonic() - started) / 60)
        write_report(report, (ROOT / args.out).resolve())
        s = report["seeds"]
        print(f"seeds {args.seeds}: macro-F1 min/mean/max {s['intent_macro_f1']['min']:.4f} / "
              f"{s['intent_macro_f1']['mean']:.4f} / {s['intent_macro_f1']['max']:.4f}; FAQ "
              f"{s['faq_topic_accuracy']['min']:.4f} / {s['faq_topic_accuracy']['mean']:.4f} / "
              f"{s['faq_topic_accuracy']['max']:.4f}; distinct prediction digests: {report['distinct_digests']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
