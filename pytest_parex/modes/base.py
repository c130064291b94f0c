"""What the process that owns the verdict does, with workers or without: record results,
decide the gate, set the exit code, print the summary, remember durations for next time."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_parex import cpubound, kinds, runner, runs
from pytest_parex.items import ParexItem, collect, order_by
from pytest_parex.output import summary
from pytest_parex.output.text import sanitize
from pytest_parex.results import CheckResult, GateResult, Status, durations, gate_result, unrun
from pytest_parex.state import GateRun

DURATIONS_KEY = "parex/durations"
"""pytest cache key of each check's remembered duration (seconds, smoothed)."""


def remembered(config: pytest.Config) -> dict[str, float]:
    """Durations remembered by earlier runs in pytest's cache ({} without the cacheprovider)."""
    cache = getattr(config, "cache", None)
    return durations(cache.get(DURATIONS_KEY, {})) if cache is not None else {}


class CollectChecks:
    """Collection in the gate's own process: the check items (no park item: nothing idles
    here), the selection -k and --lf leave, in the order :meth:`order` gives."""

    run: GateRun

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        collect(session, self.run.config_path, park=False)
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        self.run.select([it.name for it in items if isinstance(it, ParexItem)])
        items[:] = order_by(items, self.order())

    def order(self) -> list[str]:
        """Check names in the order their items are listed."""
        return [c.name for c in self.run.checks.checks]


class VerdictPlugin:
    """Summary, exit code and remembered durations: controller and in-process alike."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        self.config = config
        self.run = run
        self.gate: GateResult | None = None
        self.started: dict[str, tuple[float, str]] = {}
        self.notes: list[str] = []
        """Lines the kinds had to say once the gate was decided (saved durations)."""
        self._sigterm: Any = None

    @pytest.hookimpl
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        store = getattr(self.config, "cache", None)
        for kind in kinds.all_kinds():
            mine = [c for c in self.run.config.checks if c.kind == kind.name]
            if mine:
                kind.before_gate(mine, self.run.context, store)
        self._sigterm = runner.sigterm_as_interrupt()

    @pytest.hookimpl
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        runner.restore_sigterm(self._sigterm)
        # The run's own state (see pytest_parex.runs): its checks and workers are done.
        runs.remove(self.run.context.state_dir)

    def record(self, result: CheckResult) -> None:
        self.run.results[result.name] = result
        self.config.hook.pytest_parex_check_finished(config=self.config, result=result)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "parex", None)
        if isinstance(data, dict):
            self.record(CheckResult.from_dict(data))

    def ordered_results(self, interrupted: bool) -> list[CheckResult]:
        out = []
        for check in self.run.checks.checks:
            result = self.run.results.get(check.name) or self.run.dropped.get(check.name)
            if result is None:
                # A check cut short by Ctrl-C still ran from its start until now.
                start, worker = self.started.get(check.name, (None, ""))
                end = time.time() if start is not None else None
                stopped = start is not None and bool(self.run.problems)
                result = unrun(
                    check,
                    Status.CANCELLED if interrupted or stopped else Status.ERROR,
                    "interrupted"
                    if interrupted
                    else ("cancelled: the gate stopped" if stopped else "did not run"),
                    start=start,
                    end=end,
                    duration=(end - start) if start is not None and end is not None else 0.0,
                    worker=worker,
                )
            out.append(result)
        return out

    @pytest.hookimpl
    def pytest_parex_check_started(
        self, config: pytest.Config, name: str, agent: str, worker: str
    ) -> None:
        self.started[name] = (time.time(), worker)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        interrupted = int(exitstatus) == int(pytest.ExitCode.INTERRUPTED)
        self.stop_running(interrupted)
        run = self.run
        run.finished = time.time()
        run.interrupted = interrupted
        results = self.ordered_results(interrupted)
        self.gate = gate_result(
            run.checks,
            results,
            wall=run.finished - run.started,
            process_wall=run.finished - started if (started := runner.process_start()) else 0.0,
            interrupted=interrupted,
            workers=run.workers,
            parallel=run.workers > 1,
            problems=run.problems,
        )
        self.remember(results)
        if run.incremental is not None:
            run.incremental.record(run.checks.checks, results, run.context.log_dir)
        self.config.hook.pytest_parex_gate_finished(config=self.config, gate=self.gate)
        # The exit code follows the gate, not pytest's count of failed items -- but only
        # between 0 and 1: usage errors, internal errors and interruptions stand. "No tests
        # ran" (5) stands only when the user deselected every check (no results then): with
        # checks selected, a run that ran none of them is a failed gate, not an empty one.
        if int(session.exitstatus) in (0, 1, 5) and results:
            session.exitstatus = (
                pytest.ExitCode.OK if self.gate.verdict else pytest.ExitCode.TESTS_FAILED
            )

    def stop_running(self, interrupted: bool) -> None:
        """Hook for the controller: kill what still runs before the workers go down."""

    def remember(self, results: Sequence[CheckResult]) -> None:
        cache = getattr(self.config, "cache", None)
        for kind in kinds.all_kinds():
            mine = [c for c in self.run.config.checks if c.kind == kind.name]
            if mine:
                self.notes += kind.after_gate(mine, results, cache, self.run.context)
        if cache is None:
            return
        known = remembered(self.config)
        for r in results:
            if not r.ran or r.status is Status.CANCELLED or r.cached:
                continue
            previous = known.get(r.name)
            measured = r.duration if previous is None else 0.3 * previous + 0.7 * r.duration
            known[r.name] = round(measured, 4)
        cache.set(DURATIONS_KEY, known)
        # CPU shares under their own key: caches written before them stay readable.
        shares = cpubound.measured(results, cpubound.available_cores(), load=cpubound.system_load())
        cache.set(
            cpubound.CPU_KEY, cpubound.merge(durations(cache.get(cpubound.CPU_KEY, {})), shares)
        )

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self.print_summary(terminalreporter, "parex")

    def print_summary(self, tr: Any, title: str) -> None:
        """The parex section: problems, the cache's warnings, the table and the totals."""
        if self.gate is None or not (self.gate.results or self.run.problems):
            return
        tr.write_sep("=", title)
        for problem in self.run.problems[1:]:  # the first one is the verdict's headline
            tr.write_line(f"parex: {sanitize(problem)}", red=True)
        if self.run.incremental is not None:
            for warning in self.run.incremental.warnings:
                tr.write_line(sanitize(warning), yellow=True)
        for note in self.notes:
            tr.write_line(sanitize(note))
        width = self.config.get_terminal_writer().fullwidth
        tr.write(summary.render(self.gate, self.config.rootpath, width=width, color=tr.hasmarkup))


class IdleSummaries:
    """Controller and in-process: skip hypothesis's terminal summary when hypothesis was never
    imported. Its hook imports all of hypothesis to report observations and failing examples
    that cannot exist then (0.3 s a run; 2 s without a bytecode cache), and the gate's items
    are never hypothesis tests."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Inside the terminal reporter's sessionfinish wrapper, which calls
        # pytest_terminal_summary after this hook: unregistering here takes effect there.
        if "hypothesis" in sys.modules:
            return
        manager = session.config.pluginmanager
        plugin = manager.get_plugin("hypothesispytest")
        if plugin is not None:
            manager.unregister(plugin)
