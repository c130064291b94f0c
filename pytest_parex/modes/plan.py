"""No workers: the checks run one after another in this process, in plan order
(``-p no:xdist``, ``-n 0``, a single worker's worth of work); or, with ``--parex-plan`` and
``--collect-only``, only the plan is printed."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_parex import dispatch, plan, workers
from pytest_parex.config import Check
from pytest_parex.items import ParexItem, collect, order_by
from pytest_parex.modes.base import VerdictPlugin
from pytest_parex.results import CheckResult, unrun
from pytest_parex.state import GateRun, run_here


def _select_in_plan_order(run: GateRun, items: list[pytest.Item]) -> None:
    run.select([it.name for it in items if isinstance(it, ParexItem)])
    planned = plan.simulate(run.checks, run.expected, 1)
    items[:] = order_by(items, [r.name for r in planned.runs])
    run.workers = 1


class InProcessPlugin(VerdictPlugin):
    """The checks run here, one after another, with the dispatcher's say on each."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        super().__init__(config, run)
        run.run_check = self.run_check

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        collect(session, self.run.config_path, park=False)
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        _select_in_plan_order(self.run, items)

    def run_check(self, check: Check) -> CheckResult:
        dispatcher = self.run.dispatcher
        skip = dispatcher.blocked(check.name)
        if skip is not None:
            dispatcher.finish(check.name, skip.status)
            return unrun(check, skip.status, skip.reason)
        dispatcher.start(check.name)
        self.config.hook.pytest_parex_check_started(
            config=self.config, name=check.name, agent=check.agent, worker="main"
        )
        result = run_here(self.run, check)
        dispatcher.finish(check.name, result.status)
        return result


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
        _select_in_plan_order(self.run, items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        return True  # the plan is printed in the summary; no check runs

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        selected = self.run.checks
        needed = dispatch.workers_needed(selected)
        if self.run.capped is not None:  # a nested gate starts fewer workers
            needed = min(needed, self.run.capped.allowed)
        # The same count a run would start (none for checks shorter than a worker's start).
        count, _ = workers.auto_count(
            selected, needed, self.run.remembered, self.run.capped is not None
        )
        terminalreporter.write_sep("=", "parex plan")
        terminalreporter.write(plan.render(selected, self.run.expected, count, self.run.sources))
