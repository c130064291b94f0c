"""``--parex-plan`` and ``--collect-only``: the checks are collected (``-k`` and ``--lf``
apply), the plan is printed, and no check runs."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_parex import dispatch, plan
from pytest_parex.modes.base import CollectChecks
from pytest_parex.state import GateRun


class PlanPlugin(CollectChecks):
    """``--parex-plan`` (and ``--collect-only``): collect, print the plan, run nothing."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        self.config = config
        self.run = run

    def order(self) -> list[str]:
        """``--collect-only`` lists the checks in the order one agent would run them."""
        return [r.name for r in plan.simulate(self.run.checks, self.run.expected, 1).runs]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        return True  # the plan is printed in the summary; no check runs

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        selected = self.run.checks
        # The agents a run would have: one per agent instance with work, fewer when nested.
        count = dispatch.workers_needed(selected)
        if self.run.capped is not None:
            count = min(count, self.run.capped.allowed)
        terminalreporter.write_sep("=", "parex plan")
        terminalreporter.write(
            plan.render(
                selected,
                self.run.expected,
                count,
                self.run.sources,
                self.run.reasons,
                cpu=self.run.cpu,
                cores=self.run.cores,
            )
        )
