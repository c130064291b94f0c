"""Worker start-up: how the gate's own xdist workers are started, and kept cheap.

A gate worker runs no Python test: it collects the checks from the config and starts their
processes. Yet a plain xdist worker pays for everything a test session needs, and the gate
waits for the slowest worker at the start (its first check) and at the end (its shutdown).
Measured on 2 cores, per worker (``benchmarks/run.py``):

* assertion rewriting of every module of every plugin distribution (pytest_parex, xdist,
  pytest-benchmark, hypothesis...): cheap when pytest can cache the rewritten bytecode, but
  ~0.5 s when it cannot (``PYTHONDONTWRITEBYTECODE=1``, common in containers and CI);
* the terminal summary, whose output goes to ``/dev/null`` on a worker: hypothesis's hook
  imports all of hypothesis there (0.3 s, 2 s with rewriting and no bytecode cache);
* pytest's unraisable-exception plugin collects garbage twice at exit.

So the workers the gate starts itself (not those of a user's ``--tx``) get
``--assert=plain -p no:unraisableexception`` through ``PYTEST_ADDOPTS`` in their xdist spec
(``popen//env:NAME=value``), and drop their terminal reporter once configured. The options of
every other plugin still load, so the controller's arguments parse on the worker as before.
The worker restores the environment before any check runs: checks inherit the user's own
``PYTEST_ADDOPTS``, never ours.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import MutableMapping

import pytest

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
