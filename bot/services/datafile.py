"""The error of a data file that staff edit (stations, services and closures, holidays,
complaints): every mistake found, not just the first, so that one run of `make
validate` shows all there is to fix."""

from __future__ import annotations

from typing import Sequence


class DataFileError(ValueError):
    """A data file is wrong; ``problems`` lists every mistake found, one per line."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")
