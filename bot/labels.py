"""User-facing names of intents and policy topics (data: bot/data/intent_labels.yml)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict

import yaml

LABELS_FILE = Path(__file__).parent / "data" / "intent_labels.yml"


@lru_cache(maxsize=1)
def _labels() -> Dict[str, Dict[str, str]]:
    with LABELS_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def intent_label(intent: str) -> str:
    """Chinese name of an intent, or of a policy topic given as `faq/<topic>`."""
    base, _, topic = intent.partition("/")
    if topic:
        return _labels()["faq_topics"].get(topic, topic)
    return _labels()["intents"].get(base, base)
