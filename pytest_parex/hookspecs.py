"""Hooks that pytest-parex calls, for other plugins (and its own live display) to implement.

They are called on the process that owns the summary: the xdist controller, or the single
process when checks run in-process. Never on xdist workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_parex.results import CheckResult, GateResult


@pytest.hookspec
def pytest_parex_check_started(config: pytest.Config, name: str, agent: str, worker: str) -> None:
    """Check ``name`` was just started on ``worker`` (an xdist worker id, or "main")."""


@pytest.hookspec
def pytest_parex_check_finished(config: pytest.Config, result: CheckResult) -> None:
    """Check ``result.name`` ended (passed, failed, timed out, skipped, cancelled, ...)."""


@pytest.hookspec
def pytest_parex_gate_finished(config: pytest.Config, gate: GateResult) -> None:
    """The gate is decided; ``gate`` holds every result, the totals and the verdict.

    Called from ``pytest_sessionfinish`` before the terminal summary, also when the run was
    interrupted.
    """
