from __future__ import annotations

import pytest

from mathlib import mean, median, parse_numbers, variance


def test_mean() -> None:
    assert mean([1, 2, 3, 4]) == 2.5


def test_mean_of_nothing() -> None:
    with pytest.raises(ValueError):
        mean([])


def test_median_odd_and_even() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5


def test_variance() -> None:
    assert variance([1, 1, 1]) == 0
    assert variance([1, 3]) == 1


def test_parse_numbers() -> None:
    assert parse_numbers("1, 2; 3\t4.5 " * 10)[:4] == [1.0, 2.0, 3.0, 4.5]
