"""Plugins loaded into a check's *own* pytest (``-p pytest_parex.child.NAME``): they run in
another process, often another environment, and import nothing from the controller side --
only the standard library, pytest, this package's ``child`` modules and
:mod:`pytest_parex.compat` (pytest's internals, in one place).

This module holds what both sides must agree on: plugin names and the report variable.
"""

from __future__ import annotations

import pytest

REPORT_ENV = "PYTEST_PAREX_REPORT"
"""The JSON file :mod:`pytest_parex.child.report` writes the child's counts and durations to."""
REPORT_PLUGIN = "pytest_parex.child.report"
SHARD_PLUGIN = "pytest_parex.child.shard"
LEAKS_PLUGIN = "pytest_parex.child.leaks"

SUITE = pytest.StashKey[int]()
"""The shard plugin's count of the suite before it kept its share; the report writes it."""
SHARE = pytest.StashKey[int]()
"""How many tests a shard that takes its units as it goes ran (its share, known at the end)."""
