from __future__ import annotations

from mathlib import mean, median


def test_mean_of_one() -> None:
    assert mean([7]) == 7


def test_median_of_one() -> None:
    assert median([7]) == 7
