"""What every benchmark returns, so ``bench/run.py`` can write one table.

A benchmark module exposes ``run(quick: bool = False) -> list[Figure]``. Each figure is
measured against a baseline *in the same run* (these machines are noisy, so ratios are
what we compare), with the target it is held to and the command that reproduces it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str  # what was measured, e.g. "get: UpstashCache vs raw httpx POST"
    value: float  # our figure
    unit: str  # "us/op", "req/s", "commands", "bytes", "ms", ...
    baseline_name: str  # what it is compared with, measured in the same run
    baseline: float | None  # the baseline's figure (None when there is none)
    target: str  # the target as text, e.g. "ratio <= 1.3", "== 1", "< baseline"
    met: bool | None  # whether the target is met (None: informational)
    reproduce: str  # the command that reproduces this figure
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


def per_op_seconds(fn: Callable[[], object], *, repeat: int = 5, number: int = 1000) -> float:
    """Best-of-``repeat`` mean seconds per call of ``fn`` (the least-disturbed sample)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best
