"""``--parex-plan`` and ``--collect-only``: the checks are collected (``-k`` and ``--lf``
apply), the plan is printed, and no check runs."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_parex import dispatch, plan
from pytest_parex.items import ParexItem, collect, order_by
from pytest_parex.state import GateRun


class PlanPlugin:
    """``--parex-plan`` (and ``--collect-only``): collect, print the plan, run nothing."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        self.config = config
        self.run = run

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        collect(session, self.run.config_path, park=False)
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        self.run.select([it.name for it in items if isinstance(it, ParexItem)])
        planned = plan.simulate(self.run.checks, self.run.expected, 1)
        items[:] = order_by(items, [r.name for r in planned.runs])

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
