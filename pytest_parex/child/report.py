"""A plugin for the *child* pytest of a ``tests`` check (``-p pytest_parex.child.report``).

It writes the child's own counts and per-test durations to the JSON file named by
``PYTEST_PAREX_REPORT``, so the gate reads figures from results, not from scraped text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_parex.child import REPORT_ENV, SHARE, SUITE


class _Counter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts: dict[str, int] = {}
        self.durations: dict[str, float] = {}
        self.tests: list[tuple[str, str]] = []

    def _add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        outcome = ""
        if hasattr(report, "wasxfail"):
            if report.skipped:
                outcome = "xfailed"
            elif report.passed and report.when == "call":
                outcome = "xpassed"
            elif report.failed:
                outcome = "failed"
        elif report.failed:
            outcome = "failed" if report.when == "call" else "error"
        elif report.skipped:
            outcome = "skipped"
        elif report.passed and report.when == "call":
            outcome = "passed"
        if outcome:
            self._add(outcome)
            self.tests.append((report.nodeid, outcome))

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._add("error")
            self.tests.append((report.nodeid, "error"))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        data: dict[str, Any] = {
            "exitstatus": int(exitstatus),
            "counts": self.counts,
            "durations": self.durations,
            "tests": self.tests,
            "collected": session.config.stash.get(SHARE, session.testscollected),
            # A shard's suite before it kept its share (none when unsplit).
            "suite": session.config.stash.get(SUITE, None),
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(REPORT_ENV)
    # Only the child's own controller writes: its xdist workers (if it has any) load this
    # plugin too, and their reports reach the controller anyway.
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Counter(Path(path)), "parex-child-counter")
