"""`vetbot evaluate`: the NLU's scores on the held-out split, with a gate.

Runs Rasa's own NLU evaluation (`rasa test nlu`) on tests/nlu/heldout, which
is never used for training, and reads its reports. The gate: intent macro-F1
at least 0.96 and FAQ topic accuracy at least 0.94, where a policy question
counts as right only when the intent is `faq` *and* the topic is right. The
model scores about 0.98 / 0.97 with every seed and on one core or two
(docs/evaluation/stability.md), so a normal spread never fails the gate and a
real regression does.
The report directory keeps Rasa's per-intent precision/recall/F1 report,
the confusion matrix picture and a short summary (README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from bot.settings import PROJECT_ROOT
from bot.training import latest_model

HELDOUT_DIR = PROJECT_ROOT / "tests" / "nlu" / "heldout"
MIN_INTENT_MACRO_F1 = 0.96
MIN_FAQ_TOPIC_ACCURACY = 0.94


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def faq_topic_accuracy(out_dir: Path) -> Tuple[float, int, int]:
    """Strict accuracy over held-out policy questions: intent and topic right."""
    intent_errors = _load(out_dir / "intent_errors.json") if (out_dir / "intent_errors.json").exists() else []
    selection_errors_path = out_dir / "response_selection_errors.json"
    selection_errors = _load(selection_errors_path) if selection_errors_path.exists() else []
    report = _load(out_dir / "response_selection_report.json")
    total = sum(
        int(metrics["support"])
        for key, metrics in report.items()
        if key.startswith("faq/") and isinstance(metrics, dict)
    )
    wrong = {error["text"] for error in selection_errors}
    wrong.update(error["text"] for error in intent_errors if error["intent"] == "faq")
    correct = total - len(wrong)
    return (correct / total if total else 0.0), correct, total


def summarise(out_dir: Path) -> Dict[str, Any]:
    intent_report = _load(out_dir / "intent_report.json")
    per_intent = {
        name: metrics
        for name, metrics in intent_report.items()
        if isinstance(metrics, dict) and name not in {"macro avg", "weighted avg", "micro avg"}
    }
    accuracy, correct, total = faq_topic_accuracy(out_dir)
    return {
        "intent_macro_f1": intent_report["macro avg"]["f1-score"],
        "intent_accuracy": intent_report.get("accuracy"),
        "intent_examples": int(intent_report["macro avg"]["support"]),
        "faq_topic_accuracy": accuracy,
        "faq_correct": correct,
        "faq_examples": total,
        "per_intent": per_intent,
    }


def write_summary(summary: Dict[str, Any], out_dir: Path, model: Path) -> None:
    lines: List[str] = [
        "# NLU evaluation on the held-out split",
        "",
        f"Model: `{model.name}`; data: `tests/nlu/heldout/` (never used for training).",
        "Reproduce: `make evaluate` (or `.venv/bin/vetbot evaluate --out DIR`).",
        "",
        f"- Intent macro-F1: **{summary['intent_macro_f1']:.3f}** (gate ≥ {MIN_INTENT_MACRO_F1}) "
        f"over {summary['intent_examples']} examples",
        f"- FAQ topic accuracy (intent `faq` and topic both right): **{summary['faq_topic_accuracy']:.3f}** "
        f"({summary['faq_correct']}/{summary['faq_examples']}, gate ≥ {MIN_FAQ_TOPIC_ACCURACY})",
        "",
        "Confusion matrix: [intent_confusion_matrix.png](intent_confusion_matrix.png); "
        "full reports: `intent_report.json`, `response_selection_report.json`.",
        "",
        "| intent | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, metrics in sorted(summary["per_intent"].items()):
        lines.append(
            f"| {name} | {metrics['precision']:.3f} | {metrics['recall']:.3f} | "
            f"{metrics['f1-score']:.3f} | {int(metrics['support'])} |"
        )
    (out_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    slim = {key: value for key, value in summary.items() if key != "per_intent"}
    (out_dir / "summary.json").write_text(json.dumps(slim, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def evaluate(model: Optional[str] = None, out_dir: str = "docs/evaluation") -> int:
    model_path = Path(model) if model else latest_model()
    if model_path is None or not model_path.exists():
        print("没有找到模型：请先运行 `make train`。", file=sys.stderr)
        return 2
    out = (PROJECT_ROOT / out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "rasa", "test", "nlu",
        "--nlu", str(HELDOUT_DIR),
        "--model", str(model_path),
        "--out", str(out),
    ]
    result = subprocess.call(cmd, cwd=PROJECT_ROOT)
    if result != 0:
        return result
    summary = summarise(out)
    write_summary(summary, out, model_path)
    print(
        f"intent macro-F1 {summary['intent_macro_f1']:.3f} (gate {MIN_INTENT_MACRO_F1}); "
        f"FAQ topic accuracy {summary['faq_topic_accuracy']:.3f} "
        f"({summary['faq_correct']}/{summary['faq_examples']}, gate {MIN_FAQ_TOPIC_ACCURACY})"
    )
    failed = []
    if summary["intent_macro_f1"] < MIN_INTENT_MACRO_F1:
        failed.append("intent macro-F1")
    if summary["faq_topic_accuracy"] < MIN_FAQ_TOPIC_ACCURACY:
        failed.append("FAQ topic accuracy")
    if failed:
        print("NLU gate FAILED: " + ", ".join(failed), file=sys.stderr)
        return 1
    print("NLU gate passed")
    return 0
