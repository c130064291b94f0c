from __future__ import annotations

from typing import Any

from mathlib import parse_numbers

TEXT = ", ".join(str(i) for i in range(2000))


def test_parse_speed(benchmark: Any) -> None:
    numbers = benchmark(parse_numbers, TEXT)
    assert len(numbers) == 2000
