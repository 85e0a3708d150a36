"""Reading Rasa NLU example files (YAML) as plain (intent, text) pairs.

Used by the data tests and the benchmarks; Rasa itself reads the files for
training and evaluation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Tuple

import yaml

# [span](entity) or [span]{"entity": …}: keep the span the user typed.
ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]+\)|\{[^}]+\})")


def read_examples(directory: Path) -> List[Tuple[str, str]]:
    """(intent, text without entity markup) for every example under `directory`."""
    examples = []
    for path in sorted(directory.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            if "intent" not in block:
                continue
            for line in block["examples"].splitlines():
                line = line.strip()
                if line.startswith("- "):
                    examples.append((block["intent"], ANNOTATION.sub(r"\1", line[2:].strip())))
    return examples
