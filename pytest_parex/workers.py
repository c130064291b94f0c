"""Start-up costs of the gate: how its own xdist workers start, how many, and what the
controller skips.

A gate worker runs no Python test: it collects the checks from the config and starts their
processes. Yet a plain xdist worker pays for everything a test session needs, and the gate
waits for its workers at the start (their first checks) and at the end (their shutdown).
Measured on this project's 2-core machine, per worker:

* assertion rewriting of every module of every plugin distribution (pytest_parex, xdist,
  pytest-benchmark, hypothesis...): cheap when pytest can cache the rewritten bytecode,
  0.4-0.8 s when it cannot (``PYTHONDONTWRITEBYTECODE=1``, common in containers and CI);
* the terminal summary, whose output goes to ``/dev/null`` on a worker: hypothesis's hook
  imports all of hypothesis there (0.3 s; 1-2 s with rewriting and no bytecode cache);
* pytest's unraisable-exception plugin collects garbage twice at exit (0.1 s).

So the workers the gate starts itself (not those of a user's ``--tx`` or ``-n``) get
``--assert=plain -p no:unraisableexception`` through ``PYTEST_ADDOPTS`` in their xdist spec
(``popen//env:NAME=value``), and drop their terminal reporter once configured. The options of
every other plugin still load, so the controller's arguments parse on the worker as before.
The worker restores the environment before any check runs: checks inherit the user's own
``PYTEST_ADDOPTS``, never ours. (5 checks of ``sleep 2``: 11 s -> 4 s of CPU.)

A worker that costs more to start than its checks take is not started at all: see
:func:`worker_count`. The controller skips hypothesis's summary when hypothesis was never
imported: see :class:`IdleSummaries`.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path

import pytest

from pytest_parex import dispatch
from pytest_parex.config import ParexConfig
from pytest_parex.results import durations

ADDOPTS = "PYTEST_ADDOPTS"
SAVED_ENV = "PYTEST_PAREX_WORKER_SAVED_ENV"
"""Set on lean workers only: the user's values of the variables the spec changed."""

WORKER_ADDOPTS = ("--assert=plain", "-p", "no:unraisableexception")
"""Options for the gate's workers: none changes what a check does (checks are processes)."""


def _encode(value: object) -> str:
    # urlsafe base64 has no "/" (execnet splits specs on "//") and no space.
    return base64.urlsafe_b64encode(json.dumps(value).encode("utf-8")).decode("ascii")


def local_specs(count: int, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """xdist ``--tx`` specs for ``count`` local workers that start lean."""
    env = os.environ if environ is None else environ
    original = env.get(ADDOPTS)
    addopts = " ".join([*([original] if original else []), *WORKER_ADDOPTS])
    if "//" in addopts:
        # Cannot be carried in an execnet spec; plain workers still work, only slower.
        return ["popen"] * count
    spec = f"popen//env:{ADDOPTS}={addopts}//env:{SAVED_ENV}={_encode({ADDOPTS: original})}"
    return [spec] * count


def restore_environ(environ: MutableMapping[str, str] | None = None) -> bool:
    """On a lean worker, put back the variables its spec changed; return whether it was one."""
    env = os.environ if environ is None else environ
    saved = env.pop(SAVED_ENV, None)
    if saved is None:
        return False
    try:
        values = json.loads(base64.urlsafe_b64decode(saved.encode("ascii")))
    except ValueError:
        values = {}
    original = values.get(ADDOPTS) if isinstance(values, dict) else None
    if isinstance(original, str):
        env[ADDOPTS] = original
    else:
        env.pop(ADDOPTS, None)
    return True


class QuietWorker:
    """Drops a lean worker's terminal reporter: execnet sends a worker's stdout to /dev/null,
    but the summary hooks the reporter calls still run, and some are costly."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            self.config.pluginmanager.unregister(reporter)


def configure_worker(config: pytest.Config) -> None:
    """Called on every gate worker from ``pytest_configure``."""
    if restore_environ():
        config.pluginmanager.register(QuietWorker(config), "parex-quiet-worker")


# ---------------------------------------------------------------------------- how many


CLEARLY_BETTER = 0.8
"""Fewer workers than agent instances only when predicted to take at most 80% of the time."""


def remembered_durations(config: pytest.Config, key: str) -> dict[str, float]:
    """Durations the controller remembered in pytest's cache, read before the cacheprovider's
    own ``pytest_configure`` has set ``config.cache`` up (the worker count is due earlier).

    Reads the cache's documented layout (``<cache_dir>/v/<key>``, JSON) and gives up quietly on
    anything unexpected: then there is no data and every instance gets its worker.
    """
    try:
        cache_dir = str(config.getini("cache_dir"))
    except (ValueError, KeyError):  # -p no:cacheprovider
        return {}
    base = Path(os.path.expandvars(os.path.expanduser(cache_dir)))
    if not base.is_absolute():
        base = config.rootpath / base
    try:
        raw = json.loads((base / "v" / key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return durations(raw)


def worker_count(
    config: ParexConfig,
    remembered: Mapping[str, float],
    needed: int,
    *,
    start_cost: float,
    cores: int,
) -> int:
    """How many xdist workers finish the gate soonest; 1 means none (run in-process).

    Each worker costs ``start_cost`` seconds of CPU before its first check, and ``cores``
    share that work. Short checks (200 checks of ``true``) finish sooner one after another
    than the workers take to start. Only when every check's duration is known from earlier
    runs (or its ``expected`` key) and fewer workers are clearly faster; otherwise one worker
    per agent instance that has work, as before.
    """
    expected: dict[str, float] = {}
    for check in config.checks:
        if check.name in remembered:
            expected[check.name] = remembered[check.name]
        elif check.expected is not None:
            expected[check.name] = check.expected
        else:
            return needed
    if needed <= 1:
        return needed

    def predicted(k: int) -> float:
        if k == 1:
            return sum(expected.values())
        return dispatch.simulate(config, expected, k).makespan + start_cost * k / cores

    full = predicted(needed)
    best = min(range(1, needed + 1), key=lambda k: (predicted(k), -k))
    return best if predicted(best) <= CLEARLY_BETTER * full else needed


def start_cost_estimate() -> float:
    """What one worker costs to start, judged by what this controller has cost so far: the
    same interpreter, imports and plugins (bounded, for long-lived embedding processes)."""
    return min(max(time.process_time(), 0.2), 2.0)


# ---------------------------------------------------------------------------- controller


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


def configure_controller(config: pytest.Config) -> None:
    """Called on the controller and in-process (every mode but worker)."""
    config.pluginmanager.register(IdleSummaries(), "parex-idle-summaries")
