"""The summary's speedup is honest when checks compete for the CPU."""

from __future__ import annotations

import os

from pytest_parex.output import summary as report
from pytest_parex.results import CheckResult, GateResult


def _gate(
    durations: list[float], cpus: list[float], wall: float, parallel: bool = True
) -> GateResult:
    results = tuple(
        CheckResult(f"c{i}", "a", "passed", duration=d, start=0.0, end=d, cpu=c)
        for i, (d, c) in enumerate(zip(durations, cpus, strict=True))
    )
    return GateResult(
        results=results, wall=wall, verdict=True, headline="passed", parallel=parallel
    )


def test_cpu_bound_checks_on_saturated_cores_get_the_cpu_based_speedup() -> None:
    # 5 checks of 2 s of CPU on 2 cores: each took ~5 s side by side, the gate 5.2 s.
    gate = _gate([5.0] * 5, [2.0] * 5, wall=5.2)
    line = report.totals_line(gate, cores=2)
    assert line.startswith("sequential 25.00s, wall 5.20s, speedup 4.81x")
    assert line.endswith(
        "cpu 10.00s (2 cores saturated: durations include waiting for a core;"
        " speedup by cpu time 1.92x)"
    )


def test_sleeping_checks_and_sequential_runs_keep_the_plain_figures() -> None:
    sleeping = _gate([2.0] * 5, [0.01] * 5, wall=2.1)
    assert report.totals_line(sleeping, cores=2).endswith("cpu 0.05s")
    one_after_another = _gate([2.0] * 5, [2.0] * 5, wall=10.1, parallel=False)
    assert report.totals_line(one_after_another, cores=1).endswith("cpu 10.00s")


def test_the_speedup_counts_pytests_own_start_up() -> None:
    """The gate starts once pytest has started; the user waited from the process's start."""
    results = tuple(
        CheckResult(f"c{i}", "a", "passed", duration=2.0, start=0.0, end=2.0) for i in range(5)
    )
    gate = GateResult(results=results, wall=2.5, verdict=True, headline="passed", process_wall=3.0)
    assert gate.speedup == 10.0 / 3.0
    assert report.totals_line(gate, cores=2).startswith(
        "sequential 10.00s, wall 3.00s, speedup 3.33x (gate 2.50s of the wall)"
    )
    unknown = GateResult(results=results, wall=2.5, verdict=True, headline="passed")
    assert unknown.speedup == 4.0


def test_process_start_is_before_now() -> None:
    import time

    from pytest_parex import runner

    started = runner.process_start()
    assert started is not None  # Linux: /proc
    assert 0 < time.time() - started < 24 * 3600


def test_process_start_is_when_the_process_started() -> None:
    """Not up to a second early (``/proc/stat``'s ``btime`` is whole seconds): a child's start
    lies between the moment it was asked for and the moment it answered, to a clock tick."""
    import subprocess
    import sys
    import time

    before = time.time()
    out = subprocess.run(
        [sys.executable, "-c", "from pytest_parex import runner; print(runner.process_start())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = time.time()
    tick = 1 / os.sysconf("SC_CLK_TCK")
    assert before - tick <= float(out) <= after
