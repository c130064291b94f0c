"""The xdist controller of the gate: its own scheduler (:mod:`pytest_parex.scheduler`) feeds
checks to workers bound to agent types; results arrive with the workers' reports."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_parex import runner
from pytest_parex.dispatch import Skip
from pytest_parex.items import properties
from pytest_parex.modes.base import VerdictPlugin
from pytest_parex.results import CheckResult, Status, unrun
from pytest_parex.state import GateRun


class ControllerPlugin(VerdictPlugin):
    """Schedules the checks on the workers; owns the verdict."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        super().__init__(config, run)
        self.scheduler: Any = None
        self.session: pytest.Session | None = None

    @pytest.hookimpl
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        super().pytest_sessionstart(session)
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from pytest_parex.scheduler import ParexScheduling

        self.scheduler = ParexScheduling(
            config,
            self.run,
            on_collection=self._collected,
            on_skip=self._skip,
            on_crash=self._crash,
        )
        return self.scheduler

    def _collected(self, names: Sequence[str]) -> None:
        first = self.run.selected is None
        self.run.select(names)
        self.run.workers = int(getattr(self.config.option, "numprocesses", 0) or 0) or len(
            self.config.getoption("tx") or []
        )
        if self.session is not None:
            self.session.testscollected = len(names)
        if first:
            # Replayed passes are decided already: the workers never see them.
            for name in names:
                if name in self.run.replayed:
                    self._report_here(self.run.replayed[name])

    def _skip(self, action: Skip) -> None:
        """A check that will never run still gets its report (terminal, JUnit, --lf)."""
        check = self.run.config.check(action.name)
        self._report_here(unrun(check, action.status, action.reason))

    def _report_here(self, result: CheckResult) -> None:
        """The reports of a check no worker runs (skipped, cancelled before it started, or a
        replayed pass), made on the controller as a worker would have sent them."""
        nodeid = self.scheduler.nodeid(result.name)
        location = (nodeid.split("::")[0], None, nodeid)
        # The same properties a check that ran carries (see ParexItem.runtest).
        props = properties(result)
        skipped = result.status in (Status.SKIPPED, Status.CANCELLED)
        rep = pytest.TestReport(
            nodeid=nodeid,
            location=location,
            keywords={result.name: 1, "parex": 1},
            outcome="skipped" if skipped else "passed",
            longrepr=(str(self.run.config_path), 0, f"Skipped: {result.reason}")
            if skipped
            else None,
            when="call",
            user_properties=props,
            duration=result.duration,
        )
        rep.parex = result.to_dict()  # type: ignore[attr-defined]
        # JUnit XML takes a test case's properties from its teardown report.
        teardown = pytest.TestReport(
            nodeid=nodeid,
            location=location,
            keywords={result.name: 1, "parex": 1},
            outcome="passed",
            longrepr=None,
            when="teardown",
            user_properties=props,
        )
        hook = self.config.hook
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        hook.pytest_runtest_logreport(report=rep)
        hook.pytest_runtest_logreport(report=teardown)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    def _crash(self, name: str, wid: str) -> None:
        check = self.run.config.check(name)
        # A worker that died leaves its check's process group behind: kill it from the file
        # the runner wrote (works for workers on this machine).
        runner.kill_group_from_file(self.run.context.state_dir / f"{check.file_name}.pgid")
        log = self.run.context.log_dir / f"{check.file_name}.log"
        why = f"agent crashed (worker {wid})"
        result = unrun(
            check,
            Status.ERROR,
            why,
            detail=why,
            attempts=1,
            worker=wid,
            log_path=str(log),
            tail=runner.tail(log),
        )
        self.record(result)

    def stop_running(self, interrupted: bool) -> None:
        if self.scheduler is None or self.run.dispatcher.finished:
            return
        self.scheduler.cancel_all("interrupted" if interrupted else "cancelled: session ended")
        # Give the workers a moment to kill their trees; then kill what is left from here.
        state = self.run.context.state_dir
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(state.glob("*.pgid")):
            time.sleep(0.02)
        for leftover in sorted(state.glob("*.pgid")):
            runner.kill_group_from_file(leftover)
