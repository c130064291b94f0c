"""The gate's wiring into pytest, loaded once ``--parex`` (or ``--parex-show-config``) is given:
read the configuration, decide what this process is (:class:`~pytest_parex.state.Mode`, see
:func:`pytest_parex.workers.decide`), build the run's state and register the mode's plugin.

``--parex`` makes the session's items the configured checks; how they run is the mode's
(:mod:`pytest_parex.modes`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_parex import (
    __version__,
    compat,
    cpubound,
    options,
    plan,
    runs,
    testplugins,
    watching,
    workers,
)
from pytest_parex import config as cfg
from pytest_parex.cache import incremental
from pytest_parex.cache.digests import FileIndex
from pytest_parex.cache.key import KeyBuilder, KeySettings
from pytest_parex.cache.store import Store
from pytest_parex.config import Check
from pytest_parex.execute import ACTIVE_ENV, CHECK_ENV
from pytest_parex.items import ParexItem
from pytest_parex.kinds.base import PytestLayout, RunContext
from pytest_parex.modes.base import IdleSummaries, remembered
from pytest_parex.output import artifacts, live
from pytest_parex.output.text import rel
from pytest_parex.precommit import build as hooks
from pytest_parex.results import durations
from pytest_parex.state import GATE_PRINT, GATE_RUN, GateRun, Mode

ENV_PREFIX = "PYTEST_PAREX_"
DEFAULT_GATE = " (default gate)"
"""Ends the source of a gate built without ``[tool.parex]`` (:mod:`pytest_parex.discovery`)."""


def show_config(config: pytest.Config) -> int:
    """``--parex-show-config``: print the gate as TOML."""
    try:
        parsed, path, table = _read_table(config)
    except cfg.ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    for note in parsed.notes:
        print(f"# {note}")
    print(f"# {rel(str(path), config.rootpath)}")
    print(cfg.to_toml(hooks.with_hook_tables(table, parsed)), end="")
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
    """The configured gate -- or, without ``[tool.parex]``, the zero-config default one --
    with its pre-commit hooks made into checks (:mod:`pytest_parex.precommit.build`)."""
    path = _config_path(config)
    table = cfg.load_pyproject(path) if path.is_file() else None
    changed = config.getoption("parex_changed", None)
    if table is not None:
        parsed = cfg.parse(table, str(path))
        if not parsed.checks and not parsed.pre_commit:
            raise cfg.ConfigError(
                f"{path}: [tool.parex] defines no checks; add [tool.parex.checks.NAME] tables"
            )
        parsed = hooks.apply(
            parsed, config.rootpath, changed=changed, remembered=remembered(config)
        )
        if not parsed.checks:
            raise cfg.ConfigError(f"{path}: [tool.parex] pre-commit: no hook runs here")
        return parsed, path, table
    from pytest_parex import discovery  # the zero-config gate only

    found = discovery.discover(config.rootpath, discovery.load_document(path))
    if not found.table["checks"] and not found.table.get("pre-commit"):
        raise cfg.ConfigError(
            f"{path}: no [tool.parex] table and nothing to check by default "
            f"({'; '.join(found.skipped)}); add [tool.parex.checks.NAME] entries"
        )
    parsed = cfg.parse(found.table, f"{path}{DEFAULT_GATE}")
    note = found.header(rel(str(path), config.rootpath))
    parsed = hooks.apply(
        replace(parsed, notes=(note,)),
        config.rootpath,
        changed=changed,
        remembered=remembered(config),
    )
    return parsed, path, found.table


def load(config: pytest.Config) -> tuple[cfg.ParexConfig, Path, str]:
    """The gate of this run: the config with the command line's and environment's say, its
    file, and the fingerprint of its table (see :func:`pytest_parex.workers.fingerprint`)."""
    parsed, path, table = _read_table(config)
    updates: dict[str, Any] = {}
    max_parallel = _setting(config, "parex_max_parallel", "MAX_PARALLEL")
    if max_parallel is not None:
        try:
            updates["max_parallel"] = options.positive_int(str(max_parallel))
        except Exception:
            raise cfg.ConfigError(
                f"{ENV_PREFIX}MAX_PARALLEL must be a positive integer, got {max_parallel!r}"
            ) from None
    annotations = config.getoption("parex_annotations")
    if annotations is None and os.environ.get(ENV_PREFIX + "ANNOTATIONS"):
        try:
            annotations = cfg.annotation_spec(os.environ[ENV_PREFIX + "ANNOTATIONS"])
        except ValueError as exc:
            raise cfg.ConfigError(f"{ENV_PREFIX}ANNOTATIONS: {exc}") from None
    if annotations:
        updates["annotations"] = replace(parsed.annotations, **annotations)
    fail_fast = _setting(config, "parex_fail_fast", "FAIL_FAST")
    maxfail = config.getoption("maxfail")
    if fail_fast in (True, "1", "true", "yes") or maxfail:
        updates["on_failure"] = "fail-fast"
    if updates:
        parsed = replace(parsed, **updates)
    only = config.getoption("parex_only") or []
    skip = config.getoption("parex_skip") or []
    if only or skip:
        parsed = cfg.select(parsed, only, skip)
    return parsed, path, workers.fingerprint(table)


def configure(config: pytest.Config) -> None:
    """``--parex`` is on: load the gate and register the plugin objects of this process."""
    config.pluginmanager.register(GateHooks(), "parex-gate-hooks")
    workerinput = getattr(config, "workerinput", None)
    try:
        parex_config, path, gate_print = load(config)
    except cfg.ConfigError as exc:
        if workerinput is not None:  # this worker cannot see the controller's project
            raise pytest.UsageError(_agent_config_error(config, exc)) from None
        raise pytest.UsageError(str(exc)) from None
    if workerinput is not None:
        mismatch = workers.agent_mismatch(
            workerinput,
            gate_print,
            __version__,
            where=_where(path, config),
            default=parex_config.source.endswith(DEFAULT_GATE),
        )
        if mismatch:
            raise pytest.UsageError(mismatch)
    else:
        config.stash[GATE_PRINT] = gate_print
    active = os.environ.get(ACTIVE_ENV, "").split(os.pathsep)
    if str(path) in active:
        raise pytest.UsageError(
            f"{path}: pytest --parex was started by a check of the same gate "
            f"({os.environ.get(CHECK_ENV, '?')}); it would run itself forever"
        )
    # pytest's own -x/--maxfail would stop the session without killing running checks; the
    # gate's fail-fast policy (set from them above) cancels properly instead.
    config.option.maxfail = 0

    known = remembered(config)
    watch = None if workerinput is not None else config.getoption("parex_watch")
    if watch is not None:
        try:
            watching.load_watchfiles()
        except watching.WatchUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
    cache = None if hasattr(config, "workerinput") else _open_cache(config, parex_config, path)
    # Watching keys every check (kept={}): a check never cached still reruns only when its
    # inputs change.
    kept: dict[str, incremental.Kept] | None = {} if watch is not None else None
    # --parex-save-durations writes what the tests checks measure: they run.
    measure = (
        {
            c.name: "--parex-save-durations measures it"
            for c in parex_config.checks
            if c.kind == "tests"
        }
        if config.getoption("parex_save_durations")
        else None
    )
    decisions = (
        cache.decide(parex_config.checks, kept=kept, measure=measure) if cache is not None else {}
    )
    to_run = replace(
        parex_config,
        checks=tuple(c for c in parex_config.checks if not decisions.get(c.name, _RUNS).cached),
    )
    # A watch loop's later rounds may run any check: its agents are for all of them.
    decision = workers.decide(config, parex_config if watch is not None else to_run)
    if watch is not None and decision.mode is not Mode.LOCAL:
        what = "--parex-plan and --collect-only" if decision.mode is Mode.PLAN else "-n and --tx"
        raise pytest.UsageError(
            f"--parex-watch runs the checks on local agents, round after round: drop {what}"
        )
    workers.apply_to_xdist(config, decision)
    expected, sources = plan.expected_durations(parex_config, known)
    if workerinput is not None:
        run_name = str(workerinput.get(runs.WORKER_KEY) or runs.new_name())
    else:
        run_name = runs.new_name()
        if decision.mode.owns_verdict:
            runs.create(config.rootpath, run_name)
    context = _context(config, parex_config, path, decision, run_name)
    pytest_cache = getattr(config, "cache", None)
    shares = durations(pytest_cache.get(cpubound.CPU_KEY, {})) if pytest_cache is not None else {}
    run = GateRun(
        config=parex_config,
        config_path=path,
        context=context,
        run_name=run_name,
        mode=decision.mode,
        why=decision.why,
        capped=decision.capped,
        workers=decision.workers,
        remembered=known,
        expected=expected,
        cpu=shares,
        cores=cpubound.available_cores(),
        sources=sources,
    )
    if workerinput is not None and workerinput.get(workers.CACHE_EXCLUDE_KEY) is not None:
        run.inputs_key = _worker_keys(config, parex_config, path, workerinput)
    if cache is not None:
        cache.remote = decision.mode is Mode.CONTROLLER
        run.incremental = cache
        run.reasons = {name: d.reason for name, d in decisions.items()}
        for check in parex_config.checks:
            if decisions[check.name].cached:
                log = context.log_dir / f"{check.file_name}.log"
                run.replayed[check.name] = cache.replayed(check.name, log)
    run.watching = watch is not None
    config.stash[GATE_RUN] = run
    _register(config, run)


def _where(path: Path, config: pytest.Config) -> str:
    return f"{path} (rootdir {config.rootpath})"


def _agent_config_error(config: pytest.Config, exc: cfg.ConfigError) -> str:
    """Why an xdist worker cannot load the gate -- most often: it runs where there is no
    project (see :func:`pytest_parex.workers.agent_mismatch`)."""
    try:
        path = _config_path(config)
        table = cfg.load_pyproject(path) if path.is_file() else None
    except cfg.ConfigError:
        return f"{workers.AGENT_PREFIX}{exc} (working directory {os.getcwd()})"
    if table is None:
        return workers.not_the_project(_where(path, config))
    return f"{workers.AGENT_PREFIX}{exc}"


_RUNS = incremental.Decision("", "runs")


def _open_cache(
    config: pytest.Config, parex_config: cfg.ParexConfig, path: Path
) -> incremental.Incremental | None:
    """The result cache, in pytest's cache directory -- unless it is off: ``--parex-no-cache``,
    ``PYTEST_PAREX_CACHE=0``, ``-p no:cacheprovider``."""
    pytest_cache = getattr(config, "cache", None)
    if (
        pytest_cache is None
        or config.getoption("parex_no_cache")
        or incremental.disabled_by_environment(os.environ)
    ):
        return None
    store = _store(config, parex_config, pytest_cache)
    exclude = _outputs(config, parex_config, store.directory)
    return incremental.Incremental(
        _key_settings(config, parex_config, path, exclude),
        store,
        pytest_cache.mkdir(incremental.INDEX_DIR) / "index.json",
    )


def _outputs(config: pytest.Config, parex_config: cfg.ParexConfig, store: Path | None) -> list[str]:
    """What the gate writes inside the rootdir (relative paths): its logs and state, pytest's
    cache, the result cache's store, its reports, the step summary, a redirected stdout --
    never an input of a check, never a reason to run one."""
    rootdir = config.rootpath
    outputs = [
        parex_config.log_dir,
        ".parex",
        str(config.getini("cache_dir")),
        *([str(store)] if store is not None else []),
        *(
            str(Path(config.invocation_params.dir) / value)
            for value in (
                config.getoption("parex_json"),
                config.getoption("parex_sarif"),
                config.getoption("parex_codequality"),
                config.getoption("xmlpath", None),
                config.getoption("parex_timeline") or None,
            )
            if value
        ),
    ]
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:  # the gate appends to it: never an input of a check
        outputs.append(summary)
    outputs += incremental.open_for_writing()
    return [rel for rel in (_inside(Path(p), rootdir) for p in outputs) if rel]


def _store(config: pytest.Config, parex_config: cfg.ParexConfig, pytest_cache: Any) -> Store:
    """The result cache's store: ``PYTEST_PAREX_CACHE_DIR`` > ``cache-dir`` > pytest's cache
    directory; relative paths are the rootdir's. ``PYTEST_PAREX_CACHE=read`` opens it
    read-only."""
    given = os.environ.get(incremental.DIR_ENV) or parex_config.cache_dir
    if given:
        directory = Path(os.path.expanduser(given))
        if not directory.is_absolute():
            directory = config.rootpath / directory
    else:
        directory = Path(pytest_cache.mkdir(incremental.STORE_DIR))
        # One entry per check, from before the store: never read again.
        shutil.rmtree(directory.parent / incremental.OLD_RESULTS_DIR, ignore_errors=True)
    return Store(
        directory,
        max_bytes=parex_config.cache_size,
        max_age=parex_config.cache_max_age,
        read_only=incremental.read_only_by_environment(os.environ),
    )


def _key_settings(
    config: pytest.Config, parex_config: cfg.ParexConfig, path: Path, exclude: Sequence[str]
) -> KeySettings:
    """What this gate's keys are computed against (the same on its xdist workers)."""
    return KeySettings(
        config.rootpath,
        _context(config, parex_config, path, workers.Decision(Mode.LOCAL, 1), ""),
        path,
        tuple(exclude),
        tuple(_pythonpath(config)),
    )


def _pythonpath(config: pytest.Config) -> list[str]:
    """pytest's ``pythonpath`` setting (absolute paths): the kinds that run pytest import from
    there."""
    try:
        return [str(p) for p in config.getini("pythonpath")]
    except ValueError:  # pytest without the setting
        return []


def _worker_keys(
    config: pytest.Config,
    parex_config: cfg.ParexConfig,
    path: Path,
    workerinput: dict[str, Any],
) -> Callable[[Check], str] | None:
    """How an xdist worker keys a check before it runs it: as the controller's cache would,
    on this worker's tree, interpreter and environment, with the controller's exclusions.
    The index is read from this worker's pytest cache and never written (the controller
    writes it, when the two share it)."""
    pytest_cache = getattr(config, "cache", None)
    if pytest_cache is None:
        return None
    index, _ = FileIndex.load(pytest_cache.mkdir(incremental.INDEX_DIR) / "index.json")
    exclude = [str(p) for p in workerinput[workers.CACHE_EXCLUDE_KEY]]
    builder = KeyBuilder(_key_settings(config, parex_config, path, exclude), index)
    return lambda check: builder.parts([check])[check.name].digest()


def _inside(path: Path, root: Path) -> str:
    """``path`` (relative: to the rootdir) relative to the rootdir, "" when outside it."""
    full = path if path.is_absolute() else root / path
    try:
        return full.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return ""


def _context(
    config: pytest.Config,
    parex_config: cfg.ParexConfig,
    path: Path,
    decision: workers.Decision,
    run_name: str,
) -> RunContext:
    rootdir = config.rootpath
    workerinput = getattr(config, "workerinput", {})
    cores = os.cpu_count() or 1
    cores = max(1, cores // max(1, decision.workers))
    return RunContext(
        rootdir=rootdir,
        log_dir=rootdir / parex_config.log_dir,
        state_dir=runs.directory(rootdir, run_name),
        config_path=str(path),
        save_baseline=bool(config.getoption("parex_save_baseline")),
        save_durations=bool(config.getoption("parex_save_durations")),
        worker=str(workerinput.get("workerid", "main")),
        cores=cores,
        layout=PytestLayout(
            python_files=tuple(str(p) for p in config.getini("python_files")),
            testpaths=tuple(str(p) for p in config.getini("testpaths")),
            norecursedirs=tuple(str(p) for p in config.getini("norecursedirs")),
            paths=_test_paths(config, parex_config),
        ),
        # Local agents, or the lean -n workers the gate starts here (a --tx worker may run
        # in another checkout or on another machine).
        shared_state=decision.mode is Mode.LOCAL
        or (decision.mode is Mode.CONTROLLER and bool(decision.specs)),
    )


def _test_paths(config: pytest.Config, parex_config: cfg.ParexConfig) -> dict[str, tuple[str, ...]]:
    """The test paths of each sharded check's pytest arguments (see ``PytestLayout.paths``)."""
    parser = config.stash.get(testplugins.PARSER, None)
    if parser is None:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for check in parex_config.checks:
        if check.shard is not None and check.base_name not in out:
            found = compat.positional_args(parser, check.argv)
            if found is not None:
                out[check.base_name] = tuple(found)
    return out


def _register(config: pytest.Config, run: GateRun) -> None:
    # Only this mode's module is imported (the controller's brings execnet along).
    manager = config.pluginmanager
    if run.mode is Mode.WORKER:
        from pytest_parex.modes import worker

        manager.register(worker.WorkerPlugin(config, run), "parex-worker")
        if workers.restore_environ():  # a lean worker the gate started itself
            manager.register(worker.QuietWorker(config), "parex-quiet-worker")
        return
    manager.register(IdleSummaries(), "parex-idle-summaries")
    if run.mode is Mode.PLAN:
        from pytest_parex.modes import plan as plan_mode

        manager.register(plan_mode.PlanPlugin(config, run), "parex-plan")
        return
    if run.mode is Mode.CONTROLLER:
        from pytest_parex.modes import controller

        manager.register(controller.ControllerPlugin(config, run), "parex-controller")
    elif run.watching:
        from pytest_parex.modes import watch

        store = run.incremental.store.directory if run.incremental is not None else None
        exclude = _outputs(config, run.config, store)
        mode = config.getoption("parex_watch")
        quiet = _quiet_ms(os.environ.get(ENV_PREFIX + "WATCH_QUIET"))
        manager.register(watch.WatchPlugin(config, run, mode, exclude, quiet), "parex-local")
    else:
        from pytest_parex.modes import local

        manager.register(local.LocalPlugin(config, run), "parex-local")
    live.register(config, config.getoption("parex_progress"))
    artifacts.register(config)


def _quiet_ms(text: str | None) -> int:
    """``PYTEST_PAREX_WATCH_QUIET``: milliseconds without a change that end a batch of
    changes (an editor that saves in steps, a slow network file system want more)."""
    if not text:
        return watching.STEP_MS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 10_000:
        raise pytest.UsageError(
            f"{ENV_PREFIX}WATCH_QUIET must be milliseconds between 1 and 10000, got {text!r}"
        )
    return value


def report_header(config: pytest.Config) -> list[str] | None:
    if GATE_RUN not in config.stash:
        return None
    run = config.stash[GATE_RUN]
    c = run.config
    used = sorted({ch.agent for ch in c.checks})
    instances = c.agent_instances
    agents = ", ".join(f"{a} x{instances[a]}" for a in used) or "none"
    gate = c.gate if isinstance(c.gate, str) else f"{c.gate} of {len(c.checks)}"
    how = {
        Mode.LOCAL: f"{run.workers} local agents"
        if run.workers > 1
        else f"one after another ({run.why})",
        Mode.CONTROLLER: f"{len(workers.expand_specs(config.getoption('tx', None) or []))} "
        "xdist workers",
        Mode.PLAN: "plan only",
        Mode.WORKER: "worker",
    }[run.mode]
    summary = (
        f"parex: {rel(str(run.config_path), config.rootpath)}, "
        f"{len(c.checks)} check{'s' if len(c.checks) != 1 else ''}, agents: {agents}; "
        f"gate {gate}, {c.on_failure}, max-parallel {c.max_parallel}; {how}"
    )
    if run.capped is not None:
        summary += f"; {run.capped.note()}"
    if run.mode is not Mode.WORKER:
        running = [ch.name for ch in c.checks if ch.name not in run.replayed]
        cpu_note = cpubound.note(running, run.cpu, run.cores)
        if cpu_note:
            summary += f"; {cpu_note}"
    return [*(f"parex: {note}" for note in c.notes), summary, *testplugins.header_lines(config)]


@pytest.hookimpl(wrapper=True)
def _makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if isinstance(item, ParexItem) and item.result is not None and rep.when == "call":
        # Builtins only: the report crosses from the worker to the controller.
        rep.parex = item.result.to_dict()  # type: ignore[attr-defined]
        # The check's own time, not the protocol's (local agents report a finished check):
        # JUnit XML and --durations read this.
        rep.duration = item.result.duration
    return rep


def _deselected(items: Sequence[pytest.Item]) -> None:
    """The user's deselection (-k, -m, --deselect, --lf): the only way a check leaves the
    gate (see :meth:`GateRun.select`)."""
    for item in items:
        if isinstance(item, ParexItem) and GATE_RUN in item.config.stash:
            item.config.stash[GATE_RUN].deselected.add(item.name)


class GateHooks:
    """Hooks every mode needs once ``--parex`` is on."""

    pytest_report_header = staticmethod(report_header)
    pytest_runtest_makereport = staticmethod(_makereport)
    pytest_deselected = staticmethod(_deselected)
