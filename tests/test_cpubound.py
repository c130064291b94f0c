"""CPU shares: measured from a run, remembered, and how many CPU-bound checks fit at once."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from conftest import Project

from pytest_parex import cpubound
from pytest_parex.results import CheckResult, Status


def _ran(name: str, start: float, end: float, cpu: float, **kw: Any) -> CheckResult:
    return CheckResult(
        name,
        "a",
        kw.pop("status", Status.PASSED),
        duration=end - start,
        start=start,
        end=end,
        cpu=cpu,
    )


def test_alone_a_check_keeps_its_measured_share() -> None:
    results = [_ran("calc", 0.0, 2.0, 2.0), _ran("sleep", 2.0, 4.0, 0.02)]
    assert cpubound.measured(results, 2) == {"calc": 1.0, "sleep": 0.01}


def test_shares_measured_on_crowded_cores_are_scaled_up() -> None:
    # Five computations of 2 s CPU each ran together on 2 cores: 5 s each, 0.4 of a core.
    crowded = [_ran(f"c{i}", 0.0, 5.0, 2.0) for i in range(5)]
    assert cpubound.measured(crowded, 2) == {f"c{i}": 1.0 for i in range(5)}
    # A sleeper beside them is not scaled, and does not count as a competitor.
    beside = [*crowded, _ran("sleep", 0.0, 5.0, 0.05)]
    assert cpubound.measured(beside, 2)["sleep"] == 0.01
    assert cpubound.measured(beside, 2)["c0"] == 1.0
    # Two computations on 2 cores were not crowded: measured as they are.
    two = [_ran("a", 0.0, 2.0, 1.9), _ran("b", 0.0, 2.0, 1.9)]
    assert cpubound.measured(two, 2) == {"a": 0.95, "b": 0.95}


def test_shares_skip_checks_that_did_not_run_or_were_cancelled() -> None:
    results = [
        CheckResult("never", "a", "skipped"),
        _ran("stopped", 0.0, 1.0, 1.0, status=Status.CANCELLED),
        _ran("ok", 0.0, 1.0, 0.5),
    ]
    assert cpubound.measured(results, 2) == {"ok": 0.5}


def test_merge_weighs_the_new_measurement_like_durations() -> None:
    assert cpubound.merge({"a": 1.0, "old": 0.5}, {"a": 0.0, "new": 0.8}) == {
        "a": 0.3,
        "old": 0.5,
        "new": 0.8,
    }


def test_the_load_of_other_processes_counts_as_crowding() -> None:
    # Alone in the gate but on a machine running 10 processes for 2 cores: 0.23 of a core
    # was all a computation could get. It wanted a whole one (and no more is inferred).
    results = [_ran("calc", 0.0, 6.0, 1.4), _ran("sleep", 0.0, 6.0, 0.06)]
    assert cpubound.measured(results, 2, load=10.0) == {"calc": 1.0, "sleep": 0.01}
    assert cpubound.measured(results, 2) == {"calc": 0.233, "sleep": 0.01}
    # A share above one core is what it is.
    assert cpubound.measured([_ran("threads", 0.0, 2.0, 3.0)], 2, load=10.0) == {"threads": 1.5}


def test_how_many_fit_and_what_the_header_says() -> None:
    names = [f"c{i}" for i in range(5)]
    ones = dict.fromkeys(names, 1.0)
    # Two at once on two cores; the fifth joins the third and fourth at the end.
    assert cpubound.busy_at_most(names, ones, 2) == 3
    note = "CPU-bound checks: at most 2 at once (2 cores), 3 for the last ones"
    assert cpubound.note(names, ones, 2) == note
    assert cpubound.note(names, ones, 1) == "CPU-bound checks: at most 1 at once (1 core)"
    assert cpubound.busy_at_most(names[:4], ones, 2) == 3  # an upper bound: 2 + 1
    # Not CPU-bound, no data or no core count: no limit and nothing to say.
    assert cpubound.busy_at_most(names, {"c0": 0.1}, 2) == 5
    assert cpubound.note(names, {}, 2) == ""
    assert cpubound.busy_at_most(names, ones, 0) == 5
    # Four CPU-bound checks and one that waits: 2 + 1 + 1 at once.
    mixed = {"c0": 1.0, "c1": 1.0, "c2": 1.0, "c3": 1.0, "c4": 0.05}
    assert cpubound.busy_at_most(names, mixed, 2) == 4
    # Slack for measurement noise: 1.05 + 1.05 still fits on 2 cores; all fit on 8.
    assert cpubound.busy_at_most(names, dict.fromkeys(names, 1.05), 2) == 3
    # 1.25 + 1.25 does not: one at once, and one more beside it for the last ones.
    assert cpubound.busy_at_most(names, dict.fromkeys(names, 1.25), 2) == 1 + 1
    assert cpubound.note(names, ones, 8) == ""


def test_cores_follow_the_affinity_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    assert cpubound.available_cores() == 2
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert cpubound.available_cores() == 6


def test_the_header_and_the_plan_say_how_many_cpu_bound_checks_run(project: Project) -> None:
    cores = cpubound.available_cores()
    names = [f"calc{i}" for i in range(2 * cores)]
    project.write(
        {n: {"agent": "calc", "run": project.rec(n, 0)} for n in names},
        agents={"calc": 2 * cores},
        **{"max-parallel": 2 * cores},
    )
    cache = project.path / ".pytest_cache" / "v" / "parex"
    cache.mkdir(parents=True)
    (cache / "durations").write_text(json.dumps(dict.fromkeys(names, 10.0)))
    (cache / "cpu-shares").write_text(json.dumps(dict.fromkeys(names, 1.0)))
    result = project.pytester.runpytest_subprocess("--parex", "--parex-plan")
    assert result.ret == 0, result.stdout.str()
    note = cpubound.note(names, dict.fromkeys(names, 1.0), cores)
    assert note.startswith(f"CPU-bound checks: at most {cores} at once ({cores} core")
    result.stdout.fnmatch_lines([f"parex: *; plan only; {note}", "*= parex plan =*", note])
    assert f"predicted: wall {20:.2f}s" in result.stdout.str()
    assert project.times() == {}
