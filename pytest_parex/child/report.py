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
    def __init__(self, path: Path, config: pytest.Config) -> None:
        self.path = path
        self.config = config
        self.counts: dict[str, int] = {}
        self.durations: dict[str, float] = {}
        self.tests: list[tuple[str, str]] = []

    def _add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # A subtest's report (pytest 9's ``subtests``, the pytest-subtests plugin) is a part
        # of its test's call: counted in its own words, timed and listed with its test.
        part = type(report) is not pytest.TestReport
        if not part:
            self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        # The words pytest's own summary line counts the report under ("passed", "error" for
        # a failed set-up, "xfailed", "subtests passed", "rerun"...; "" for a passed set-up).
        status = self.config.hook.pytest_report_teststatus(report=report, config=self.config)
        outcome = status[0] if isinstance(status, tuple) and status else ""
        if isinstance(outcome, str) and outcome:
            self._add(outcome)
            if not part:
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
        config.pluginmanager.register(_Counter(Path(path), config), "parex-child-counter")
