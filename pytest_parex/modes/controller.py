"""The xdist controller of the gate: its own scheduler (:mod:`pytest_parex.scheduler`) feeds
checks to workers bound to agent types; results arrive with the workers' reports.

The controller chooses the checks (its own collection: ``-k``, ``--lf``...) and holds every
worker to its gate: a worker that cannot start, collects another gate or none, or cannot be
reached ends the session with one line naming it (:mod:`pytest_parex.workers`), and the gate
fails -- a gate whose workers ran nothing never passes. xdist would otherwise replace such a
worker again and again (``--tx`` has no restart limit), or end with "no tests ran".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator, Sequence
from typing import Any

import execnet
import pytest

from pytest_parex import __version__, compat, runner, runs
from pytest_parex.dispatch import Skip
from pytest_parex.execute import live_log, log_path
from pytest_parex.files import publish
from pytest_parex.items import properties
from pytest_parex.modes.base import CollectChecks, VerdictPlugin
from pytest_parex.results import CheckResult, Status, unrun
from pytest_parex.state import GATE_PRINT, GateRun
from pytest_parex.workers import (
    CACHE_EXCLUDE_KEY,
    COLLECTION_KEY,
    GATE_KEY,
    VERSION_KEY,
    expand_specs,
    startup_problem,
    unreachable_problem,
)


class ControllerPlugin(CollectChecks, VerdictPlugin):
    """Schedules the checks on the workers; owns the verdict. It collects the checks itself
    (xdist's DSession collects nothing here): the workers' collections are held to its choice,
    not the other way round."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        super().__init__(config, run)
        self.scheduler: Any = None
        self.session: pytest.Session | None = None
        self._gateways: list[Any] = []
        self._crashed: tuple[str, Any] | None = None
        self._stop: str | None = None
        self._replayed_reported = False

    @pytest.hookimpl
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        super().pytest_sessionstart(session)
        self.session = session

    # ------------------------------------------------------------------ the workers

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        """What a worker needs to tell whether it runs this gate (see workers.py)."""
        node.workerinput[GATE_KEY] = self.config.stash[GATE_PRINT]
        node.workerinput[VERSION_KEY] = __version__
        cache = self.run.incremental
        # The worker keys each check it runs as this process would: a pass earned on
        # another tree or interpreter is never recorded under this tree's key.
        node.workerinput[CACHE_EXCLUDE_KEY] = (
            list(cache.settings.exclude) if cache is not None else None
        )
        node.workerinput[runs.WORKER_KEY] = self.run.run_name

    @pytest.hookimpl
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: Sequence[Any]) -> None:
        compat.skip_pytest_copy(config)

    @pytest.hookimpl
    def pytest_xdist_newgateway(self, gateway: Any) -> None:
        self._gateways.append(gateway)

    # Wrappers around hooks this class also implements: pytest reads only attributes named
    # pytest_*, and specname says which hook they are.

    @pytest.hookimpl(wrapper=True, specname="pytest_sessionstart")
    def pytest_sessionstart_guard(self, session: pytest.Session) -> Generator[None, None, None]:
        # xdist starts its workers in its own (trylast) pytest_sessionstart: a host that
        # cannot be reached raises there, before any summary could be printed.
        try:
            return (yield)
        except (OSError, EOFError, execnet.HostNotFound) as exc:
            wid, spec = self._next_gateway()
            self._stop = self._note(unreachable_problem(wid, spec, exc))
        except ValueError as exc:
            if "rsync root" not in str(exc):
                raise
            self._stop = self._note(
                f"pytest --parex with --tx workers takes no path arguments (xdist: {exc}); "
                "drop them (the gate reads pyproject.toml) or use --parex-config=PATH"
            )
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if self._stop is not None:
            raise session.Failed(self._stop)

    @pytest.hookimpl(wrapper=True, specname="pytest_runtestloop")
    def pytest_runtestloop_guard(self, session: pytest.Session) -> Generator[None, object, object]:
        try:
            return (yield)
        except (OSError, EOFError, execnet.HostNotFound) as exc:
            # Replacing a crashed worker failed: its host is gone.
            if self._crashed is not None:
                wid, spec = self._crashed
                line = self._note(unreachable_problem(wid, spec, exc, replacing=True))
            else:
                wid, spec = self._next_gateway()
                line = self._note(unreachable_problem(wid, spec, exc))
            raise session.Failed(line) from None
        except RuntimeError as exc:
            if not compat.no_workers_left(exc):
                raise
            line = self._note("every xdist worker is gone (see the errors above); no check ran")
            raise session.Failed(line) from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """A worker finished or died: one that never delivered this gate's collection ends
        the session (xdist would replace it with one that fails the same way, forever).
        First, so that the one line replaces xdist's "node down" traceback."""
        if self.scheduler is None or error == "keyboard-interrupt":
            return
        wid = node.gateway.id
        spec = node.gateway.spec
        if self.scheduler.collected(wid):
            if error is not None:
                self._crashed = (wid, spec)  # the scheduler makes its check an error
            return
        if error is not None:
            problem: str | None = startup_problem(
                wid, spec, error, rootdir=self.run.context.rootdir, version=__version__
            )
        else:
            output = getattr(node, "workeroutput", None)
            names = output.get(COLLECTION_KEY) if isinstance(output, dict) else None
            if isinstance(names, list):
                # Collected while xdist was shutting down (it ignores that collection).
                problem = self.scheduler.check_collection(node, [str(n) for n in names])
            else:
                problem = startup_problem(
                    wid,
                    spec,
                    "finished without collecting the checks",
                    rootdir=self.run.context.rootdir,
                    version=__version__,
                )
        if problem is not None:
            self._problem(problem)

    def _next_gateway(self) -> tuple[str, Any]:
        """The worker xdist was starting when it failed: the next of the --tx specs."""
        specs = expand_specs(self.config.getoption("tx", None) or [])
        index = len(self._gateways)
        spec = execnet.XSpec(specs[index]) if index < len(specs) else "?"
        return f"gw{index}", spec

    def _note(self, line: str) -> str:
        self.run.problems.append(line)
        return line

    def _problem(self, line: str) -> None:
        """A worker cannot run this gate: the session ends now, the gate fails."""
        self._note(line)
        raise pytest.Session.Failed(line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from pytest_parex.scheduler import ParexScheduling

        self.scheduler = ParexScheduling(
            config,
            self.run,
            on_collection=self._collected,
            on_skip=self._skip,
            on_crash=self._crash,
            on_problem=self._problem,
        )
        return self.scheduler

    def _collected(self, names: Sequence[str]) -> None:
        first = not self._replayed_reported
        self._replayed_reported = True
        self.run.workers = int(getattr(self.config.option, "numprocesses", 0) or 0) or len(
            expand_specs(self.config.getoption("tx") or [])
        )
        if self.session is not None:
            # xdist has just counted the worker's items; the gate is what this process chose.
            self.session.testscollected = len(self.run.checks.checks)
        if first:
            # Replayed passes are decided already: the workers never see them.
            for check in self.run.checks.checks:
                if check.name in self.run.replayed:
                    self._report_here(self.run.replayed[check.name])

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
        log = log_path(check, self.run.context)
        live = live_log(check, self.run.context)
        if live.exists():  # the worker died before it could keep the log
            with contextlib.suppress(OSError):
                publish(live, log)
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
