"""Statistics over lists of numbers."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence

_HISTORY: list[bytes] = []


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def variance(values: Sequence[float]) -> float:
    centre = mean(values)
    return sum((v - centre) ** 2 for v in values) / len(values)


@functools.cache
def _separator_table() -> dict[str, str]:
    # Filled once on first use: a cache, not a leak.
    return {sep: " " for sep in ",;\t"}


def parse_numbers(text: str) -> list[float]:
    """Parse "1, 2; 3" into [1.0, 2.0, 3.0].

    MATHLIB_SLOW=1 makes it 30% slower (the benchmark regression demo); MATHLIB_LEAK=1 makes
    it keep a copy of every input forever (the leak detection demo).
    """
    started = time.perf_counter()
    table = _separator_table()
    cleaned = "".join(table.get(ch, ch) for ch in text)
    numbers = [float(part) for part in cleaned.split()]
    if os.environ.get("MATHLIB_SLOW"):
        spent = time.perf_counter() - started
        deadline = time.perf_counter() + spent * 0.3
        while time.perf_counter() < deadline:
            pass
    if os.environ.get("MATHLIB_LEAK"):
        _HISTORY.append(text.encode() * 1000)
    return numbers
