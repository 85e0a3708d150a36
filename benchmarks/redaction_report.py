"""Redaction report for issue 16: how well personal numbers are taken out of chat.

    .venv/bin/python benchmarks/redaction_report.py              # the test's examples
    .venv/bin/python benchmarks/redaction_report.py --examples 6000

Prints
1. the property test of tests/test_redaction_property.py, counted instead of asserted:
   generated numbers by kind and script, messages, misses (a number's digits left in the
   redacted text) and merged (fewer markers than numbers), with the first problems;
2. the false-positive report: how many texts were checked (NLU training examples,
   held-out examples, numbers that are not personal), which were changed and how.

Needs the dev dependencies (hypothesis). Nothing is asserted here; the tests do that.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_redaction_property import (  # noqa: E402
    ALLOWED,
    EXAMPLES,
    changed_texts,
    checked_texts,
    run_property,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=EXAMPLES,
                        help=f"Hypothesis examples (each 2-4 messages; default {EXAMPLES}, as the test)")
    parser.add_argument("--show", type=int, default=20, help="problems to print at most")
    args = parser.parse_args()

    print("== Property test: generated personal numbers ==")
    problems: List[str] = []
    tally: Counter = Counter()
    started = time.perf_counter()
    counts = run_property(strict=False, examples=args.examples,
                          on_problem=lambda text, found: problems.append(f"{text!r}: {found}"),
                          tally=tally)
    seconds = time.perf_counter() - started
    print(f"examples: {args.examples}, messages: {counts['messages']}, numbers: {counts['numbers']} "
          f"({seconds:.1f} s)")
    print(f"misses (digits left in clear): {counts['misses']}")
    print(f"merged (fewer markers than numbers): {counts['merged']}")
    for what, count in sorted(tally.items()):
        print(f"  {what:<28} {count:>6}")
    for line in problems[:args.show]:
        print("  PROBLEM", line)

    print()
    print("== False positives ==")
    texts = checked_texts()
    by_source = Counter(source.split("/")[0] if source != "not personal" else source
                        for source, _ in texts)
    print(f"texts checked: {len(texts)} ("
          + ", ".join(f"{source}: {count}" for source, count in sorted(by_source.items())) + ")")
    changed = changed_texts()
    allowed = [c for c in changed if ALLOWED.get(c[1]) == c[2]]
    unexpected = [c for c in changed if ALLOWED.get(c[1]) != c[2]]
    print(f"changed: {len(changed)} (in the reviewed allow-list: {len(allowed)}, unexpected: {len(unexpected)})")
    for source, text, redacted in changed:
        mark = "allowed" if (source, text, redacted) in allowed else "UNEXPECTED"
        print(f"  {mark} {source}: {text!r} -> {redacted!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
