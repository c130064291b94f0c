"""The wiring of the gate into pytest and xdist, loaded once ``--parex`` is given.

``--parex`` makes the session's items the configured checks. Three roles:

* controller (xdist on): starts its own workers, schedules checks through
  :class:`~pytest_parex.scheduler.ParexScheduling`, prints the summary;
* worker: collects the checks (plus the park item) and runs what it is sent;
* in-process (``-p no:xdist``, ``-n 0``, a single worker's worth of work, ``--collect-only``,
  ``--parex-plan``): runs the checks one after another in plan order, same summary.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_parex import (
    checks,
    dispatch,
    nesting,
    options,
    plan,
    runner,
)
from pytest_parex import config as cfg
from pytest_parex import discovery as defaults
from pytest_parex import workers as startup
from pytest_parex.compat import CANCEL_COMMAND, install_command_handler
from pytest_parex.items import (
    GATE_RUN,
    GateRun,
    ParexItem,
    ParkItem,
    collect,
    order_for_inprocess,
)
from pytest_parex.output import artifacts as outputs
from pytest_parex.output import live
from pytest_parex.output import summary as report
from pytest_parex.results import CANCELLED, ERROR, CheckResult, GateResult, durations

DURATIONS_KEY = "parex/durations"
SHARD_KEY = "parex/test-durations"
ENV_PREFIX = "PYTEST_PAREX_"


# ---------------------------------------------------------------------------------- options


# ---------------------------------------------------------------------------------- configure


def show_config(config: pytest.Config) -> int:
    """``--parex-show-config``: print the gate as TOML."""
    try:
        parsed, path, table = _read_table(config)
    except cfg.ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    for note in parsed.notes:
        print(f"# {note}")
    print(f"# {report.rel(str(path), config.rootpath)}")
    print(defaults.to_toml(table), end="")
    return 0


def _setting(config: pytest.Config, option: str, env: str) -> Any:
    """Command line > environment (PYTEST_PAREX_*) > [tool.parex]; None means 'not given'."""
    value = config.getoption(option)
    if value is not None:
        return value
    return os.environ.get(ENV_PREFIX + env) or None


def _config_path(config: pytest.Config) -> Path:
    given = config.getoption("parex_config")
    path = Path(given) if given else config.rootpath / "pyproject.toml"
    if not path.is_absolute():
        path = Path(config.invocation_params.dir) / path
    if given and not path.is_file():
        raise cfg.ConfigError(f"--parex-config: {given}: no such file")
    return path


def _read_table(config: pytest.Config) -> tuple[cfg.ParexConfig, Path, dict[str, Any]]:
    """The configured gate -- or, without ``[tool.parex]``, the zero-config default one."""
    path = _config_path(config)
    table = cfg.load_pyproject(path) if path.is_file() else None
    if table is not None:
        parsed = cfg.parse(table, str(path))
        if not parsed.checks:
            raise cfg.ConfigError(
                f"{path}: [tool.parex] defines no checks; add [tool.parex.checks.NAME] tables"
            )
        return parsed, path, table
    found = defaults.discover(config.rootpath, defaults.load_document(path))
    if not found.table["checks"]:
        raise cfg.ConfigError(
            f"{path}: no [tool.parex] table and nothing to check by default "
            f"({'; '.join(found.skipped)}); add [tool.parex.checks.NAME] entries"
        )
    parsed = cfg.parse(found.table, f"{path} (default gate)")
    note = found.header(report.rel(str(path), config.rootpath))
    return replace(parsed, notes=(note,)), path, found.table


def _load_config(config: pytest.Config) -> tuple[cfg.ParexConfig, Path]:
    parsed, path, _ = _read_table(config)
    updates: dict[str, Any] = {}
    max_parallel = _setting(config, "parex_max_parallel", "MAX_PARALLEL")
    if max_parallel is not None:
        try:
            updates["max_parallel"] = options.positive_int(str(max_parallel))
        except Exception:
            raise cfg.ConfigError(
                f"{ENV_PREFIX}MAX_PARALLEL must be a positive integer, got {max_parallel!r}"
            ) from None
    fail_fast = _setting(config, "parex_fail_fast", "FAIL_FAST")
    maxfail = config.getoption("maxfail")
    if fail_fast in (True, "1", "true", "yes") or maxfail:
        updates["on_failure"] = "fail-fast"
    if updates:
        parsed = cfg.ParexConfig(**{**parsed.__dict__, **updates})
    only = config.getoption("parex_only") or []
    skip = config.getoption("parex_skip") or []
    if only or skip:
        parsed = cfg.select(parsed, only, skip)
    return parsed, path


def configure(config: pytest.Config) -> None:
    """``--parex`` is on: load the gate and register the plugin objects of this process."""
    config.pluginmanager.register(GateHooks(), "parex-gate-hooks")
    try:
        parex_config, path = _load_config(config)
    except cfg.ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    active = os.environ.get(checks.ACTIVE_ENV, "").split(os.pathsep)
    if str(path) in active:
        raise pytest.UsageError(
            f"{path}: pytest --parex was started by a check of the same gate "
            f"({os.environ.get(checks.CHECK_ENV, '?')}); it would run itself forever"
        )
    # pytest's own -x/--maxfail would stop the session without killing running checks; the
    # gate's fail-fast policy (set from them above) cancels properly instead.
    config.option.maxfail = 0

    is_worker = hasattr(config, "workerinput")
    xdist_on = config.pluginmanager.hasplugin("xdist")
    needed = dispatch.workers_needed(parex_config)
    if not is_worker:
        capped = nesting.apply(
            os.environ, os.cpu_count(), needed, explicit=_explicit_workers(config)
        )
        if capped is not None:
            config.stash[nesting.NESTING] = capped
            needed = capped.allowed
    mode = "inprocess"
    why = "xdist is not loaded" if not xdist_on else "-n 0"
    if is_worker:
        mode = "worker"
        startup.configure_worker(config)
    elif config.getoption("parex_plan") or config.getoption("collectonly"):
        # --collect-only runs no check either: the plan, not a gate of "did not run" errors.
        mode = "plan"
    elif xdist_on:
        numprocesses = config.getoption("numprocesses", None)
        user_tx = config.getoption("tx", None)
        if numprocesses is None and not user_tx:
            needed, why = _auto_workers(config, parex_config, needed)
        if numprocesses is None and not user_tx and needed > 1:
            config.option.tx = startup.local_specs(needed)
            config.option.numprocesses = needed
            mode = "xdist"
        elif user_tx and numprocesses != 0:
            mode = "xdist"
        if mode == "xdist" and config.option.dist == "no":
            config.option.dist = "load"
    if mode != "worker":
        startup.configure_controller(config)
    if mode in ("plan", "inprocess") and xdist_on:
        # No DSession: xdist's pytest_configure (trylast) checks these.
        config.option.dist = "no"
        config.option.tx = []

    rootdir = config.rootpath
    log_dir = rootdir / parex_config.log_dir
    workerinput = getattr(config, "workerinput", {})
    workers = max(1, int(workerinput.get("workercount", needed) or 1))
    context = checks.RunContext(
        rootdir=rootdir,
        log_dir=log_dir,
        state_dir=rootdir / ".parex" / "run",
        config_path=str(path),
        save_baseline=bool(config.getoption("parex_save_baseline")),
        worker=str(workerinput.get("workerid", "main")),
        cores=max(1, (os.cpu_count() or 1) // workers)
        if mode != "inprocess"
        else (os.cpu_count() or 1),
    )
    run = GateRun(
        config=parex_config,
        config_path=path,
        context=context,
        dispatcher=dispatch.Dispatcher(parex_config),
        mode=mode,
        why=why,
    )
    config.stash[GATE_RUN] = run
    if mode == "worker":
        config.pluginmanager.register(WorkerPlugin(config, run), "parex-worker")
    elif mode == "xdist":
        config.pluginmanager.register(ControllerPlugin(config, run), "parex-controller")
    else:
        config.pluginmanager.register(InProcessPlugin(config, run), "parex-inprocess")
    if mode in ("xdist", "inprocess"):
        live.register(config, config.getoption("parex_progress"))
        outputs.register(config)


def _auto_workers(
    config: pytest.Config, parex_config: cfg.ParexConfig, needed: int
) -> tuple[int, str]:
    """How many workers the gate starts by itself (1: none, the checks run in-process), and
    why it starts none."""
    if needed <= 1:
        capped = nesting.NESTING in config.stash
        return needed, "nested gate" if capped else "one agent instance has work"
    count = startup.worker_count(
        parex_config,
        startup.remembered_durations(config, DURATIONS_KEY),
        needed,
        start_cost=startup.start_cost_estimate(),
        cores=os.cpu_count() or 1,
    )
    return count, "" if count > 1 else "the checks are shorter than starting workers would take"


def _explicit_workers(config: pytest.Config) -> bool:
    """The user chose how many workers (a nested gate's cap does not apply then)."""
    return bool(
        config.getoption("numprocesses", None) is not None
        or config.getoption("tx", None)
        or config.getoption("parex_max_parallel") is not None
        or os.environ.get(ENV_PREFIX + "MAX_PARALLEL")
    )


def _expected_durations(
    config: pytest.Config, parex_config: cfg.ParexConfig
) -> tuple[dict[str, float], dict[str, str]]:
    """Previous runs (pytest's cache) > ``expected`` keys > equal (1.0); and the source of each."""
    cache = getattr(config, "cache", None)
    remembered = durations(cache.get(DURATIONS_KEY, {})) if cache is not None else {}
    out: dict[str, float] = {}
    sources: dict[str, str] = {}
    for check in parex_config.checks:
        if check.name in remembered:
            out[check.name], sources[check.name] = remembered[check.name], "last runs"
        elif check.expected is not None:
            out[check.name], sources[check.name] = check.expected, "expected key"
        else:
            out[check.name], sources[check.name] = 1.0, "no data"
    return out, sources


def _report_header(config: pytest.Config) -> list[str] | None:
    if GATE_RUN not in config.stash:
        return None
    run = config.stash[GATE_RUN]
    c = run.config
    used = sorted({ch.agent for ch in c.checks})
    instances = c.agent_instances
    agents = ", ".join(f"{a} x{instances[a]}" for a in used) or "none"
    gate = c.gate if isinstance(c.gate, str) else f"{c.gate} of {len(c.checks)}"
    how = {
        "xdist": f"{len(config.getoption('tx', None) or [])} xdist workers",
        "inprocess": f"one after another (no xdist workers: {run.why})",
        "plan": "plan only",
        "worker": "worker",
    }[run.mode]
    summary = (
        f"parex: {report.rel(str(run.config_path), config.rootpath)}, "
        f"{len(c.checks)} check{'s' if len(c.checks) != 1 else ''}, agents: {agents}; "
        f"gate {gate}, {c.on_failure}, max-parallel {c.max_parallel}; {how}"
    )
    if nesting.NESTING in config.stash:
        summary += f"; {config.stash[nesting.NESTING].note()}"
    return [*(f"parex: {note}" for note in c.notes), summary]


# ---------------------------------------------------------------------------------- shared


@pytest.hookimpl(wrapper=True)
def _makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if isinstance(item, ParexItem) and item.result is not None and rep.when == "call":
        # Builtins only: the report crosses from the worker to the controller.
        rep.parex = item.result.to_dict()  # type: ignore[attr-defined]
    return rep


class GateHooks:
    """Hooks every role needs once ``--parex`` is on."""

    pytest_report_header = staticmethod(_report_header)
    pytest_runtest_makereport = staticmethod(_makereport)


class _GatePlugin:
    """Summary, exit code and remembered durations: controller and in-process alike."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        self.config = config
        self.run = run
        self.gate: GateResult | None = None
        self.started: dict[str, tuple[float, str]] = {}

    @pytest.hookimpl
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # config.cache exists only once the cacheprovider is configured: read it here.
        self.run.set_expected(*_expected_durations(self.config, self.run.config))
        self.write_shard_durations()
        self._sigterm = runner.sigterm_as_interrupt()

    @pytest.hookimpl
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        runner.restore_sigterm(getattr(self, "_sigterm", None))

    def write_shard_durations(self) -> None:
        """Every shard of a sharded tests check reads the same remembered durations (written
        before any worker starts), so their shares are disjoint and complete."""
        cache = getattr(self.config, "cache", None)
        for base in sorted({c.base_name for c in self.run.config.checks if c.shard}):
            check = next(c for c in self.run.config.checks if c.base_name == base)
            data = cache.get(f"{SHARD_KEY}/{base}", {}) if cache is not None else {}
            path = checks.shard_durations_path(self.run.context.state_dir, check)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data if isinstance(data, dict) else {}), encoding="utf-8")

    def record(self, rep: pytest.TestReport) -> None:
        data = getattr(rep, "parex", None)
        if isinstance(data, dict):
            result = CheckResult.from_dict(data)
            self.run.results[result.name] = result
            self.config.hook.pytest_parex_check_finished(config=self.config, result=result)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.record(report)

    def ordered_results(self, interrupted: bool) -> list[CheckResult]:
        out = []
        for check in self.run.dispatcher.config.checks:
            result = self.run.results.get(check.name)
            if result is None:
                reason = "interrupted" if interrupted else "did not run"
                # A check cut short by Ctrl-C still ran from its start until now.
                start, worker = self.started.get(check.name, (None, ""))
                end = time.time() if start is not None else None
                result = CheckResult(
                    check.name,
                    check.agent,
                    CANCELLED if interrupted else ERROR,
                    kind=check.kind,
                    reason=reason,
                    blocking=check.blocking,
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
        self.gate = dispatch.gate_result(
            run.dispatcher.config,
            results,
            wall=run.finished - run.started,
            interrupted=interrupted,
            workers=run.workers,
            parallel=run.mode == "xdist",
        )
        self.remember(results)
        self.config.hook.pytest_parex_gate_finished(config=self.config, gate=self.gate)
        # The exit code follows the gate, not pytest's count of failed items -- but only
        # between 0 and 1: usage errors, internal errors, interruptions and "no tests" stand.
        if int(session.exitstatus) in (0, 1) and results:
            session.exitstatus = (
                pytest.ExitCode.OK if self.gate.verdict else pytest.ExitCode.TESTS_FAILED
            )

    def stop_running(self, interrupted: bool) -> None:
        """Hook for the controller: kill what still runs before the workers go down."""

    def remember(self, results: Sequence[CheckResult]) -> None:
        cache = getattr(self.config, "cache", None)
        if cache is None or hasattr(self.config, "workerinput"):
            return
        remembered = durations(cache.get(DURATIONS_KEY, {}))
        for r in results:
            if r.start is None or r.status == CANCELLED:
                continue
            previous = remembered.get(r.name)
            measured = r.duration if previous is None else 0.3 * previous + 0.7 * r.duration
            remembered[r.name] = round(measured, 4)
        cache.set(DURATIONS_KEY, remembered)
        self.remember_test_durations(cache, results)

    def remember_test_durations(self, cache: Any, results: Sequence[CheckResult]) -> None:
        """Per-test and per-file durations of tests checks, to balance shards next time."""
        by_base: dict[str, dict[str, float]] = {}
        for r in results:
            check = self.run.config.check(r.name)
            timings = r.figures.get("durations")
            if check.kind != "tests" or not isinstance(timings, dict):
                continue
            by_base.setdefault(check.base_name, {}).update(
                {str(k): float(v) for k, v in timings.items() if isinstance(v, (int, float))}
            )
        for base, tests in by_base.items():
            files: dict[str, float] = {}
            for nodeid, seconds in tests.items():
                file = nodeid.split("::", 1)[0]
                files[file] = files.get(file, 0.0) + seconds
            cache.set(f"{SHARD_KEY}/{base}", {"files": files, "tests": tests})

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.gate is None or not self.gate.results:
            return
        tr = terminalreporter
        tr.write_sep("=", "parex")
        text = report.render(
            self.gate, self.config.rootpath, width=tr._tw.fullwidth, color=tr.hasmarkup
        )
        tr.write(text)


class InProcessPlugin(_GatePlugin):
    """No workers: the checks run one after another in this process, in plan order."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        collect(session, self.run.config_path, park=False)
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        selected = [it.name for it in items if isinstance(it, ParexItem)]
        self.run.restrict(selected)
        plan = dispatch.simulate(self.run.dispatcher.config, self.run.expected, 1)
        items[:] = order_for_inprocess(items, [r.name for r in plan.runs])
        self.run.workers = 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if self.run.mode == "plan":
            return True  # the plan is printed in the summary; no check runs
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.run.mode == "plan":
            return
        super().pytest_sessionfinish(session, exitstatus)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.run.mode == "plan":
            selected = self.run.dispatcher.config
            workers = dispatch.workers_needed(selected)
            if nesting.NESTING in self.config.stash:  # a nested gate starts fewer workers
                workers = min(workers, self.config.stash[nesting.NESTING].allowed)
            # The same count a run would start (none for checks shorter than a worker's start).
            workers, _ = _auto_workers(self.config, selected, workers)
            terminalreporter.write_sep("=", "parex plan")
            terminalreporter.write(
                plan.render(selected, self.run.expected, workers, self.run.sources)
            )
            return
        super().pytest_terminal_summary(terminalreporter)


class WorkerPlugin:
    """An xdist worker: collects the checks and the park item, runs what it is sent."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        self.config = config
        self.run = run

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        collect(session, self.run.config_path, park=True)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if not install_command_handler(self.config, self._command):
            raise pytest.UsageError(
                "parex: cannot receive cancel commands on this xdist worker; "
                "pytest-parex needs pytest-xdist >=3.6,<4"
            )

    def _command(self, name: str, kwargs: dict[str, Any]) -> None:
        # Runs in execnet's receiver thread, while the main thread runs a check.
        if name == CANCEL_COMMAND:
            self.run.cancel(str(kwargs.get("check", "*")), str(kwargs.get("reason", "cancelled")))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool:
        # The park item produces no reports at all: it is scheduling machinery, not a check.
        return isinstance(item, ParkItem) or None  # type: ignore[return-value]


class ControllerPlugin(_GatePlugin):
    """The xdist controller: our scheduler, results from the workers' reports."""

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
        self.run.restrict(names)
        self.run.workers = int(getattr(self.config.option, "numprocesses", 0) or 0) or len(
            self.config.getoption("tx") or []
        )
        if self.session is not None:
            self.session.testscollected = len(names)

    def _skip(self, action: dispatch.Skip) -> None:
        """A check that will never run still gets its report (terminal, JUnit, --lf)."""
        check = self.run.config.check(action.name)
        result = CheckResult(
            check.name,
            check.agent,
            action.status,
            kind=check.kind,
            reason=action.reason,
            blocking=check.blocking,
        )
        nodeid = self.scheduler.nodeid(action.name)
        location = (nodeid.split("::")[0], None, nodeid)
        # The same properties a check that ran carries (see ParexItem.runtest).
        properties = [
            ("parex_agent", check.agent),
            ("parex_status", action.status),
            ("parex_duration", "0.000"),
            ("parex_attempts", "0"),
            ("parex_detail", ""),
        ]
        rep = pytest.TestReport(
            nodeid=nodeid,
            location=location,
            keywords={action.name: 1, "parex": 1},
            outcome="skipped",
            longrepr=(str(self.run.config_path), 0, f"Skipped: {action.reason}"),
            when="call",
            user_properties=properties,
        )
        rep.parex = result.to_dict()  # type: ignore[attr-defined]
        # JUnit XML takes a test case's properties from its teardown report.
        teardown = pytest.TestReport(
            nodeid=nodeid,
            location=location,
            keywords={action.name: 1, "parex": 1},
            outcome="passed",
            longrepr=None,
            when="teardown",
            user_properties=properties,
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
        runner.kill_group_from_file(self.run.context.state_dir / f"{name}.pgid")
        log = self.run.context.log_dir / f"{name}.log"
        result = CheckResult(
            name,
            check.agent,
            ERROR,
            kind=check.kind,
            reason=f"agent crashed (worker {wid})",
            detail=f"agent crashed (worker {wid})",
            attempts=1,
            worker=wid,
            log_path=str(log),
            blocking=check.blocking,
            tail=runner.tail(log),
        )
        self.run.results[name] = result
        self.config.hook.pytest_parex_check_finished(config=self.config, result=result)

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
