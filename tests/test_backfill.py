"""Backfilling beside a waiting exclusive check, and the CPU limit, in the dispatcher and its
plans; one run end to end."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from conftest import Project
from conftest import check_of as _check
from conftest import config_of as _config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_parex import cpubound, graph, plan
from pytest_parex.config import DEFAULT_AGENTS, ParexConfig
from pytest_parex.dispatch import SHORT_CPU, Dispatcher, Run
from pytest_parex.kinds.base import RunContext
from pytest_parex.plan import Plan, simulate
from pytest_parex.state import GateRun, Mode


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


AGENTS = tuple(sorted(DEFAULT_AGENTS))  # code-reviewer, debugger, feature-implementer, ...


def _dispatcher(config: ParexConfig, workers: int, expected: Mapping[str, float]) -> Dispatcher:
    d = Dispatcher(config, dict(expected))
    for i in range(workers):
        d.add_worker(f"gw{i}")
    return d


def _times(p: Plan) -> dict[str, tuple[float, float]]:
    return {r.name: (r.start, r.end) for r in p.runs}


# The case of issue 12: `long` 2.5 s, `ex` 2 s exclusive, `b` and `c` 0.5 s, four agents.
ISSUE = _config(
    [
        _check("long", "code-reviewer"),
        _check("ex", "test-runner", exclusive=True),
        _check("b", "debugger"),
        _check("c", "refactorer"),
    ]
)
ISSUE_EXPECTED = {"long": 2.5, "ex": 2.0, "b": 0.5, "c": 0.5}


def test_the_issue_case_plans_at_its_lower_bound() -> None:
    p = simulate(ISSUE, ISSUE_EXPECTED, 4)
    # Nothing overlaps ex, so the gate needs at least ex + the longest other check.
    lower_bound = 2.0 + 2.5
    assert p.makespan <= 1.1 * lower_bound
    assert p.makespan == 4.5
    times = _times(p)
    assert times == {"long": (0.0, 2.5), "b": (0.0, 0.5), "c": (0.0, 0.5), "ex": (2.5, 4.5)}
    assert {r.name: r.before for r in p.runs} == {"long": "", "b": "ex", "c": "ex", "ex": ""}
    assert p.backfill
    # Without backfilling (what the gate did before): b and c wait behind ex.
    assert simulate(ISSUE, ISSUE_EXPECTED, 4, backfill=False).makespan == 5.0


def test_without_a_clock_nothing_backfills() -> None:
    # No start times, no expected ends: the dispatcher behaves as before.
    d = _dispatcher(ISSUE, 4, ISSUE_EXPECTED)
    assert [a.name for a in d.assign()] == ["long"]
    d = _dispatcher(ISSUE, 4, ISSUE_EXPECTED)
    actions = d.assign(100.0)
    assert sorted((a.name, a.before) for a in actions if isinstance(a, Run)) == [
        ("b", "ex"),
        ("c", "ex"),
        ("long", ""),
    ]


def test_only_checks_that_end_before_the_drain_backfill() -> None:
    d = _dispatcher(ISSUE, 1, {**ISSUE_EXPECTED, "b": 1.0})
    assert [a.name for a in d.assign(0.0)] == ["long"]
    for wid in ("gw1", "gw2", "gw3"):  # workers that took 2 s to start
        d.add_worker(wid)
    # At 2.0, long is expected to end at 2.5: c (0.5 s) fits, b (1 s) would delay ex.
    assert [(a.name, a.before) for a in d.assign(2.0) if isinstance(a, Run)] == [("c", "ex")]
    d.finish("c", "passed")
    assert d.assign(2.5) == []
    d.finish("long", "passed")
    assert [a.name for a in d.assign(2.5)] == ["ex"]
    d.finish("ex", "passed")
    assert [a.name for a in d.assign(4.5)] == ["b"]


def test_a_check_that_overruns_ends_backfilling() -> None:
    d = _dispatcher(ISSUE, 1, ISSUE_EXPECTED)
    assert [a.name for a in d.assign(0.0)] == ["long"]
    for wid in ("gw1", "gw2", "gw3"):
        d.add_worker(wid)
    # long was expected to end at 2.5 and still runs at 3.0: when it ends is unknown, the
    # horizon is in the past and nothing starts beside it any more -- ex is never starved.
    assert d.assign(3.0) == []
    d.finish("long", "passed")
    assert [a.name for a in d.assign(4.0)] == ["ex"]


def test_a_stream_of_short_checks_does_not_starve_the_exclusive_check() -> None:
    checks = [_check("long", AGENTS[0]), _check("ex", AGENTS[1], exclusive=True)]
    checks += [_check(f"s{i}", AGENTS[2 + i % 3]) for i in range(30)]
    expected = {"long": 2.5, "ex": 2.0, **{f"s{i}": 0.5 for i in range(30)}}
    p = simulate(_config(checks), expected, 5)
    times = _times(p)
    # ex starts when long ends, as it would without backfilling; the short checks fill the
    # other workers meanwhile and never overlap it.
    assert times["ex"] == (2.5, 4.5)
    before = [r for r in p.runs if r.before == "ex"]
    assert len(before) == 15  # 3 agents x 5 slots of 0.5 s within 2.5 s
    assert all(r.end <= 2.5 for r in before)
    assert all(not overlap(times["ex"], (r.start, r.end)) for r in p.runs if r.name != "ex")


def test_backfill_never_delays_a_check_that_outranks_the_exclusive_one() -> None:
    # `test` needs `build` and outranks `ex`; when build ends at 1.0 it must find its agent
    # free, so `lint` (same agent, 1.5 s) does not backfill at 0, although it would end before
    # `slow` does.
    checks = [
        _check("slow", AGENTS[0]),
        _check("build", AGENTS[1]),
        _check("test", AGENTS[2], needs=("build",)),
        _check("ex", AGENTS[3], exclusive=True),
        _check("lint", AGENTS[2]),
    ]
    expected = {"slow": 5.0, "build": 1.0, "test": 4.0, "ex": 2.0, "lint": 1.5}
    d = _dispatcher(_config(checks), 5, expected)
    assert sorted(a.name for a in d.assign(0.0)) == ["build", "slow"]
    p = simulate(_config(checks), expected, 5, backfill=True)
    times = _times(p)
    assert times["test"][0] == 1.0
    assert times["ex"][0] == 5.0


def test_exclusive_check_takes_any_idle_worker_once_nothing_runs() -> None:
    # b backfills on gw1, which is then bound to b's agent; when long ends, both idle workers'
    # agents have work that could start (z, y): ex still gets a worker at once, rather than
    # being overtaken by y or z, since nothing may run beside it anyway.
    checks = [
        _check("long", AGENTS[0]),
        _check("ex", AGENTS[1], exclusive=True),
        _check("b", AGENTS[2]),
        _check("z", AGENTS[2], exclusive=True),
        _check("y", AGENTS[0], exclusive=True),
    ]
    expected = {"long": 1.0, "ex": 0.5, "b": 0.25, "z": 0.25, "y": 0.25}
    times = _times(simulate(_config(checks), expected, 2, backfill=True))
    assert times["b"] == (0.0, 0.25)
    assert times["ex"] == (1.0, 1.5)


# A case where backfilling makes the greedy schedule longer later on (found by the property
# test below): the plan, and a run for as many workers, then leave backfilling off.
ANOMALY = _config(
    [
        _check("c0", "a3"),
        _check("c1", "a1", exclusive=True),
        _check("c2", "a1"),
        _check("c3", "a1"),
        _check("c4", "a1", exclusive=True),
        _check("c5", "a2", needs=("c0", "c1")),
        _check("c6", "a1", exclusive=True),
        _check("c7", "a3", needs=("c0", "c2")),
    ],
    {"a1": 1, "a2": 1, "a3": 1, "a4": 1},
    max_parallel=2,
)
ANOMALY_EXPECTED = {
    "c0": 0.25,
    "c1": 0.25,
    "c2": 0.25,
    "c3": 0.25,
    "c4": 0.7,
    "c5": 0.7,
    "c6": 1.0,
    "c7": 0.25,
}


def test_the_plan_leaves_backfilling_off_when_it_would_cost() -> None:
    on = simulate(ANOMALY, ANOMALY_EXPECTED, 2, backfill=True)
    off = simulate(ANOMALY, ANOMALY_EXPECTED, 2, backfill=False)
    assert any(r.before for r in on.runs)
    assert on.makespan > off.makespan
    chosen = simulate(ANOMALY, ANOMALY_EXPECTED, 2)
    assert chosen == off
    assert not chosen.backfill


def _gate_run(
    config: ParexConfig, tmp: Path, expected: Mapping[str, float], workers: int, **kw: Any
) -> GateRun:
    context = RunContext(rootdir=tmp, log_dir=tmp, state_dir=tmp, config_path="pyproject.toml")
    return GateRun(
        config=config,
        config_path=tmp / "pyproject.toml",
        context=context,
        mode=Mode.CONTROLLER,
        expected=dict(expected),
        workers=workers,
        **kw,
    )


def test_a_run_takes_the_plans_decision(tmp_path: Path) -> None:
    run = _gate_run(ANOMALY, tmp_path, ANOMALY_EXPECTED, 2)
    assert not run.dispatcher.backfill
    selected = _gate_run(ANOMALY, tmp_path, ANOMALY_EXPECTED, 2)
    selected.select([c.name for c in ANOMALY.checks if c.name != "c3"])
    assert selected.dispatcher.backfill == simulate(selected.checks, ANOMALY_EXPECTED, 2).backfill
    issue = _gate_run(ISSUE, tmp_path, ISSUE_EXPECTED, 4, cpu={"long": 1.0}, cores=2)
    assert issue.dispatcher.backfill
    assert (issue.dispatcher.cpu, issue.dispatcher.cores) == ({"long": 1.0}, 2)


def test_the_plan_shows_what_was_backfilled() -> None:
    text = plan.render(ISSUE, ISSUE_EXPECTED, 4, {})
    assert "  at 0.00s: long@w0, b@w2 (backfill before ex), c@w3 (backfill before ex)" in text
    assert "  at 2.50s: ex@w1" in text
    assert "predicted: wall 4.50s," in text


# ------------------------------------------------------------------------------ CPU


FIVE = _config([_check(f"c{i}", agent) for i, agent in enumerate(AGENTS)])
FIVE_EXPECTED = {f"c{i}": 2.0 for i in range(5)}


def _peak(p: Plan, names: Iterable[str] | None = None) -> int:
    chosen = set(names) if names is not None else {r.name for r in p.runs}
    times = [(r.start, r.end) for r in p.runs if r.name in chosen]
    return max(sum(1 for s, e in times if s <= t < e) for t, _ in times)


def _starts(p: Plan) -> dict[str, float]:
    return {r.name: r.start for r in p.runs}


def test_cpu_bound_checks_run_no_more_at_once_than_the_cores() -> None:
    six = _config([_check(f"c{i}", "calc") for i in range(6)], {"calc": 6}, max_parallel=6)
    shares = {f"c{i}": 1.0 for i in range(6)}
    p = simulate(six, dict.fromkeys(shares, 2.0), 6, cpu=shares, cores=2)
    assert _peak(p) == 2
    assert p.makespan == 6.0


def test_the_last_cpu_bound_checks_join_rather_than_leave_a_core_idle() -> None:
    # Five computations on two cores: two, two, then the fifth alone would leave a core idle
    # for its whole run; it starts with the third and fourth instead.
    shares = {f"c{i}": 1.0 for i in range(5)}
    p = simulate(FIVE, FIVE_EXPECTED, 5, cpu=shares, cores=2)
    starts = _starts(p)
    assert sorted(n for n, s in starts.items() if s == 0.0) == ["c0", "c1"]
    assert sorted(n for n, s in starts.items() if s == 2.0) == ["c2", "c3", "c4"]


def test_no_data_or_no_cores_means_no_limit() -> None:
    assert _peak(simulate(FIVE, FIVE_EXPECTED, 5, cpu={}, cores=2)) == 5
    assert _peak(simulate(FIVE, FIVE_EXPECTED, 5, cpu={"c0": 1.0}, cores=0)) == 5
    # Shares that are negligible (a check that mostly waits) do not count.
    low = {f"c{i}": 0.1 for i in range(5)}
    assert _peak(simulate(FIVE, FIVE_EXPECTED, 5, cpu=low, cores=1)) == 5


def test_io_bound_checks_run_beside_the_cpu_bound_ones() -> None:
    shares = {"c0": 1.0, "c1": 1.0, "c2": 1.0, "c3": 1.0}  # c4: no data, not CPU-bound
    p = simulate(FIVE, FIVE_EXPECTED, 5, cpu=shares, cores=2)
    assert _starts(p) == {"c0": 0.0, "c1": 0.0, "c4": 0.0, "c2": 2.0, "c3": 2.0}
    assert _peak(p, ["c0", "c1", "c2", "c3"]) == 2


def test_a_check_bigger_than_the_cores_still_runs_but_alone_among_cpu_bound_ones() -> None:
    shares = {"c0": 3.0, "c1": 1.0, "c2": 1.0, "c3": 0.0}
    p = simulate(FIVE, FIVE_EXPECTED, 5, cpu=shares, cores=2)
    # c0 starts first and alone among CPU-bound checks; those that are not keep it company.
    assert _starts(p) == {"c0": 0.0, "c3": 0.0, "c4": 0.0, "c1": 2.0, "c2": 2.0}


def test_the_plan_says_how_many_cpu_bound_checks_run_at_once() -> None:
    shares = {f"c{i}": 1.0 for i in range(5)}
    text = plan.render(FIVE, FIVE_EXPECTED, 3, {}, cpu=shares, cores=2)
    note = "CPU-bound checks: at most 2 at once (2 cores), 3 for the last ones"
    assert note in text.splitlines()
    assert "  at 0.00s: c0@w0, c1@w1" in text
    assert "  at 2.00s: c2@w2, c3@w0, c4@w1" in text
    assert "CPU-bound" not in plan.render(FIVE, FIVE_EXPECTED, 5, {})


# ------------------------------------------------------------------------------ properties

_ARBITRARY = ("a1", "a2", "a3", "a4")


@st.composite
def _plans(draw: st.DrawFn) -> dict[str, Any]:
    instances = {a: draw(st.integers(1, 2)) for a in _ARBITRARY}
    checks = []
    for i in range(draw(st.integers(1, 8))):
        earlier = [f"c{j}" for j in range(i)]
        needs = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)) if earlier else []
        checks.append(
            _check(
                f"c{i}",
                draw(st.sampled_from(_ARBITRARY)),
                needs=tuple(needs),
                exclusive=draw(st.integers(0, 3)) == 0,
                reads=tuple(draw(st.lists(st.sampled_from(("src/a", "docs/x")), max_size=1))),
                writes=tuple(draw(st.lists(st.sampled_from(("src/**", "docs/x")), max_size=1))),
            )
        )
    durations = (0.25, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
    return {
        "config": _config(checks, instances, max_parallel=draw(st.integers(1, 5))),
        "expected": {c.name: draw(st.sampled_from(durations)) for c in checks},
        "workers": draw(st.integers(1, 5)),
        "cpu": {
            c.name: draw(st.sampled_from((0.0, 0.1, 0.5, 1.0, 2.0)))
            for c in checks
            if draw(st.booleans())
        },
        "cores": draw(st.sampled_from((0, 1, 2, 4))),
    }


def _assert_valid(
    p: Plan,
    config: ParexConfig,
    cpu: Mapping[str, float],
    cores: int,
    expected: Mapping[str, float],
) -> None:
    times = _times(p)
    assert set(times) == {c.name for c in config.checks}  # everything ran: nothing starved
    checks = {c.name: c for c in config.checks}
    conflicting = {frozenset((c.a, c.b)) for c in graph.conflicts(config.checks)}
    for c in config.checks:
        for dep in c.needs:
            assert times[c.name][0] >= times[dep][1], (c.name, dep)
    for r in p.runs:
        if r.before:
            assert r.end <= times[r.before][0], r
    for t in sorted({s for s, _ in times.values()}):
        running = [n for n, (s, e) in times.items() if s <= t < e]
        assert len(running) <= config.max_parallel
        for agent, count in config.agent_instances.items():
            assert sum(1 for n in running if checks[n].agent == agent) <= count
        if len(running) > 1:
            assert not any(checks[n].exclusive for n in running), (t, running)
        for i, a in enumerate(running):
            for b in running[i + 1 :]:
                assert frozenset((a, b)) not in conflicting, (a, b)
    # A CPU-bound check starts beyond the cores only as one of the last, too few to fill them,
    # or when it is expected to be short (at most SHORT_CPU seconds: the dispatcher decides on the
    # expected duration, not on end - start, which floating point may push past it).
    share = {n: cpubound.effective(cpu.get(n, 0.0)) if cores else 0.0 for n in times}
    for i, r in enumerate(p.runs):
        beside = [x.name for x in p.runs[:i] if x.start <= r.start < x.end]
        total = sum(share[n] for n in beside) + share[r.name]
        short = expected.get(r.name, 1.0) <= SHORT_CPU  # 1.0: the dispatcher's default
        if share[r.name] and beside and total > cpubound.limit(cores) and not short:
            later = sum(share[x.name] for x in p.runs[i:])
            assert not cpubound.fills(later, cores), (r, beside)


@settings(
    max_examples=300,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_plans())
def test_plans_respect_every_limit_and_backfilling_never_costs(scenario: dict[str, Any]) -> None:
    config: ParexConfig = scenario["config"]
    args = (config, scenario["expected"], scenario["workers"])
    limits = {"cpu": scenario["cpu"], "cores": scenario["cores"]}
    with_backfill = simulate(*args, **limits, backfill=True)
    without = simulate(*args, **limits, backfill=False)
    chosen = simulate(*args, **limits)
    for p in (with_backfill, without, chosen):
        _assert_valid(p, config, scenario["cpu"], scenario["cores"], scenario["expected"])
    assert not any(r.before for r in without.runs)
    assert chosen.makespan <= without.makespan + 1e-9
    assert chosen in (with_backfill, without)


# ------------------------------------------------------------------------------ end to end

# Records its start and end like rec.py, but runs until the named checks have recorded theirs
# (or the timeout passes): whether they ran beside it shows in the times, without any sleep
# that a busy machine could outlast. Usage: wait_for.py NAME TIMEOUT OTHER... TOKEN.
WAIT_FOR = """\
import json, os, sys, time
name, timeout, others = sys.argv[1], float(sys.argv[2]), sys.argv[3:-1]
start = time.time()
deadline = time.monotonic() + timeout
paths = [os.path.join("times", o + ".json") for o in others]
while time.monotonic() < deadline and not all(os.path.exists(p) for p in paths):
    time.sleep(0.02)
end = time.time()
os.makedirs("times", exist_ok=True)
with open(os.path.join("times", name + ".json"), "w") as fh:
    json.dump({"start": start, "end": end}, fh)
"""


def test_short_checks_backfill_beside_a_long_one_and_never_overlap_the_exclusive_one(
    project: Project,
) -> None:
    (project.path / "wait_for.py").write_text(WAIT_FOR)
    wait = [sys.executable, "wait_for.py", "long", "20", "b", "c", project.token]
    project.write(
        {
            # Expected durations as the issue's case: b and c fit beside long, ex does not.
            "long": {"agent": "code-reviewer", "run": wait, "expected": 10},
            "ex": {
                "agent": "test-runner",
                "run": project.rec("ex", 0.1),
                "exclusive": True,
                "expected": 0.5,
            },
            "b": {"agent": "debugger", "run": project.rec("b", 0.1), "expected": 0.5},
            "c": {"agent": "refactorer", "run": project.rec("c", 0.1), "expected": 0.5},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "-n", "2", timeout=120)
    assert result.ret == 0, result.stdout.str()
    times = project.times()
    assert overlap(times["b"], times["long"])
    assert overlap(times["c"], times["long"])
    for other in ("long", "b", "c"):
        assert not overlap(times["ex"], times[other]), other
    assert times["ex"][0] >= times["long"][1]
    # What the run measured is remembered for the next one, shares beside durations.
    shares = project.path / ".pytest_cache" / "v" / "parex" / "cpu-shares"
    assert sorted(json.loads(shares.read_text())) == ["b", "c", "ex", "long"]


def test_a_short_cpu_bound_check_is_not_held_behind_long_ones() -> None:
    """Two long CPU-bound shards fill two cores; a linter of 0.3 s starts beside them rather
    than after them (its verdict would come late for nothing)."""
    checks = [
        _check("shard1", AGENTS[0]),
        _check("shard2", AGENTS[1]),
        _check("lint", AGENTS[2]),
        _check("types", AGENTS[3]),
        _check("docs", AGENTS[4]),
    ]
    expected = {"shard1": 20.0, "shard2": 20.0, "lint": 0.3, "types": 8.0, "docs": 8.0}
    shares = dict.fromkeys(expected, 1.0)
    p = simulate(_config(checks), expected, 5, cpu=shares, cores=2)
    starts = {r.name: r.start for r in p.runs}
    assert starts["lint"] == 0.0
    assert starts["types"] > 0.0 and starts["docs"] > 0.0  # long ones still wait for a core
