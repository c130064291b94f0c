"""An xdist worker of the gate: collects the checks and the park item, runs what it is sent,
and stops a running check when the controller cancels it."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_parex import compat, runs
from pytest_parex.items import ParkItem, collect
from pytest_parex.state import GateRun, run_here
from pytest_parex.workers import COLLECTION_KEY


class WorkerPlugin:
    """Runs the checks the controller sends; the controller owns the verdict."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        self.config = config
        self.run = run
        run.run_check = lambda check: run_here(run, check)
        # On this machine the controller made the run's directory and removes it; a worker
        # elsewhere (another checkout, another host) makes its own and removes that.
        self._own_state = not run.context.state_dir.exists()

    @pytest.hookimpl
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._own_state:
            runs.remove(self.run.context.state_dir)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        items = collect(session, self.run.config_path, park=True)
        # Also at the end: a collection xdist drops while it shuts down is checked then.
        output = getattr(self.config, "workeroutput", None)
        if output is not None:
            output[COLLECTION_KEY] = [item.name for item in items]
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if not compat.install_command_handler(self.config, self._command):
            raise pytest.UsageError(
                "parex: cannot receive cancel commands on this xdist worker; "
                "pytest-parex needs pytest-xdist >=3.6,<4"
            )

    def _command(self, name: str, kwargs: dict[str, Any]) -> None:
        # Runs in execnet's receiver thread, while the main thread runs a check.
        if name == compat.CANCEL_COMMAND:
            self.run.cancel(str(kwargs.get("check", "*")), str(kwargs.get("reason", "cancelled")))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool:
        # The park item produces no reports at all: it is scheduling machinery, not a check.
        return isinstance(item, ParkItem) or None  # type: ignore[return-value]


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
