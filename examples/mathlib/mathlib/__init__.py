"""A small statistics library: the example project of pytest-parex."""

from __future__ import annotations

from mathlib.stats import mean, median, parse_numbers, variance

__all__ = ["mean", "median", "parse_numbers", "variance"]
