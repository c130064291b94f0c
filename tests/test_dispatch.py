"""Tests for pytest_parex.dispatch: the pure scheduling state machine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import check_of as _check
from conftest import config_of as _config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_parex import graph
from pytest_parex.config import DEFAULT_AGENTS, ParexConfig
from pytest_parex.dispatch import (
    Action,
    Cancel,
    Dispatcher,
    Run,
    Skip,
    workers_needed,
)
from pytest_parex.plan import simulate
from pytest_parex.results import BAD, GOOD, CheckResult, Status, gate_result, verdict

AGENTS = tuple(sorted(DEFAULT_AGENTS))  # code-reviewer, debugger, feature-implementer, ...


def _dispatcher(
    config: ParexConfig, workers: int, expected: Mapping[str, float] | None = None
) -> Dispatcher:
    d = Dispatcher(config, dict(expected or {}))
    for i in range(workers):
        d.add_worker(f"gw{i}")
    return d


def _runs(actions: Sequence[Action]) -> list[Run]:
    return [a for a in actions if isinstance(a, Run)]


def _names(actions: Sequence[Action]) -> list[str]:
    return [a.name for a in actions]


def _result(name: str, status: str = Status.PASSED, **kw: Any) -> CheckResult:
    return CheckResult(name=name, agent="code-reviewer", status=status, **kw)


@dataclass
class Driver:
    """Drives a Dispatcher like the scheduler does, checking invariants at every step."""

    d: Dispatcher
    running: dict[str, str] = field(default_factory=dict)  # check -> worker
    ended: dict[str, str] = field(default_factory=dict)  # check -> status
    cancels: list[Cancel] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    peak: int = 0

    def apply(self, actions: Sequence[Action]) -> None:
        d = self.d
        for action in actions:
            if isinstance(action, Run):
                assert action.name not in self.running and action.name not in self.ended
                assert action.worker in d.workers, action
                assert action.worker not in self.running.values(), action
                for dep in d.checks[action.name].needs:
                    assert self.ended.get(dep) in GOOD, (action.name, dep, self.ended)
                self.running[action.name] = action.worker
                self.starts.append(action.name)
            elif isinstance(action, Skip):
                assert action.name not in self.running and action.name not in self.ended
                assert action.status in (Status.SKIPPED, Status.CANCELLED)
                self.ended[action.name] = action.status
            else:
                assert self.running.get(action.name) == action.worker, action
                self.cancels.append(action)
        self.check_invariants()

    def check_invariants(self) -> None:
        d = self.d
        config = d.config
        names = list(self.running)
        assert sorted(names) == sorted(d.running)
        assert len(names) <= config.max_parallel
        self.peak = max(self.peak, len(names))
        for agent, instances in config.agent_instances.items():
            assert sum(1 for n in names if d.checks[n].agent == agent) <= instances, agent
        if len(names) > 1:
            assert not any(d.checks[n].exclusive for n in names), names
        in_conflict = {frozenset((c.a, c.b)) for c in graph.conflicts(config.checks)}
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                assert frozenset((a, b)) not in in_conflict, (a, b)
        for name, wid in self.running.items():
            assert d.running_on(wid) == name
            assert d.agent_of(wid) == d.checks[name].agent

    def finish(self, name: str, status: str) -> list[Action]:
        self.running.pop(name)
        self.ended[name] = status
        actions = self.d.finish(name, status)
        self.apply(actions)
        return actions

    def step(self) -> list[Action]:
        actions = self.d.assign()
        self.apply(actions)
        return actions

    def run_all(self, outcome: Mapping[str, str] | None = None) -> None:
        """Finish running checks in start order with their outcome (passed by default)."""
        self.step()
        for _ in range(100):
            if not self.running:
                break
            name = next(iter(self.running))
            self.finish(name, (outcome or {}).get(name, Status.PASSED))
            self.step()
        assert not self.running
        assert self.d.finished


# ------------------------------------------------------------------------------ agents


def test_workers_are_bound_to_agents_with_work() -> None:
    config = _config([_check("a", "test-runner"), _check("b", "debugger")])
    d = _dispatcher(config, 3)
    assert {d.agent_of("gw0"), d.agent_of("gw1")} == {"test-runner", "debugger"}
    assert d.agent_of("gw2") is None  # no agent has more work than workers
    assert d.agent_of("nope") is None


def test_one_instance_agent_runs_one_check_at_a_time() -> None:
    config = _config([_check(n, "code-reviewer") for n in "abc"])
    drv = Driver(_dispatcher(config, 3))
    first = drv.step()
    assert len(_runs(first)) == 1
    drv.run_all()
    assert drv.peak == 1
    assert sorted(drv.ended) == ["a", "b", "c"]


def test_two_instance_agent_runs_two_never_three() -> None:
    config = _config([_check(n, "test-runner") for n in "abcde"], {"test-runner": 2})
    drv = Driver(_dispatcher(config, 5))
    assert len(_runs(drv.step())) == 2
    drv.finish(drv.starts[0], Status.PASSED)
    assert len(_runs(drv.step())) == 1
    drv.run_all()
    assert drv.peak == 2


def test_total_never_above_max_parallel() -> None:
    config = _config([_check(f"c{i}", AGENTS[i]) for i in range(5)], max_parallel=2)
    drv = Driver(_dispatcher(config, 5))
    assert len(_runs(drv.step())) == 2
    drv.run_all()
    assert drv.peak == 2
    assert len(drv.ended) == 5


def test_workers_needed() -> None:
    checks = [_check("a", "test-runner"), _check("b", "test-runner"), _check("c", "debugger")]
    assert workers_needed(_config(checks)) == 2
    assert workers_needed(_config(checks, {"test-runner": 4})) == 3
    assert workers_needed(_config(checks, {"test-runner": 4}, max_parallel=2)) == 2
    assert workers_needed(_config([])) == 0


# ------------------------------------------------------------------------------ order


def test_critical_path_first() -> None:
    checks = [
        _check("a", AGENTS[0]),
        _check("b", AGENTS[1]),
        _check("c", AGENTS[2], needs=("a",)),
        _check("d", AGENTS[3]),
    ]
    expected = {"a": 1.0, "b": 5.0, "c": 10.0, "d": 2.0}
    # ranks: a = 11, b = 5, c = 10, d = 2
    drv = Driver(_dispatcher(_config(checks, max_parallel=1), 4, expected))
    drv.run_all()
    assert drv.starts == ["a", "c", "b", "d"]


def test_ties_keep_config_order() -> None:
    checks = [_check(n, AGENTS[i]) for i, n in enumerate("xyz")]
    drv = Driver(_dispatcher(_config(checks, max_parallel=1), 3))
    drv.run_all()
    assert drv.starts == ["x", "y", "z"]


def test_needs_are_respected() -> None:
    checks = [
        _check("build", AGENTS[0]),
        _check("test", AGENTS[1], needs=("build",)),
        _check("lint", AGENTS[2]),
    ]
    drv = Driver(_dispatcher(_config(checks), 3))
    first = drv.step()
    assert sorted(_names(first)) == ["build", "lint"]
    assert not drv.d.ready("test")
    drv.finish("lint", Status.PASSED)
    assert drv.step() == []
    drv.finish("build", Status.FLAKY)  # flaky counts as good
    assert _names(drv.step()) == ["test"]


def test_failed_dependency_skips_dependents() -> None:
    checks = [
        _check("build", AGENTS[0]),
        _check("test", AGENTS[1], needs=("build",)),
        _check("e2e", AGENTS[2], needs=("test",)),
        _check("lint", AGENTS[3]),
    ]
    drv = Driver(_dispatcher(_config(checks), 4))
    drv.step()
    assert drv.finish("build", Status.FAILED) == []  # best-effort: nothing cancelled
    actions = drv.step()
    assert Skip("test", Status.SKIPPED, "needs build, which failed") in actions
    assert Skip("e2e", Status.SKIPPED, "needs test, which was skipped") in actions
    assert "lint" in drv.running
    assert not drv.d.finished


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (Status.TIMEOUT, "timed out"),
        (Status.ERROR, "had an error"),
        (Status.CANCELLED, "was cancelled"),
    ],
)
def test_skip_reason_per_status(status: str, phrase: str) -> None:
    checks = [_check("a", AGENTS[0]), _check("b", AGENTS[1], needs=("a",))]
    drv = Driver(_dispatcher(_config(checks), 2))
    drv.step()
    drv.finish("a", status)
    assert drv.step() == [Skip("b", Status.SKIPPED, f"needs a, which {phrase}")]


# ------------------------------------------------------------------------------ policies


def test_fail_fast_cancels_running_and_pending() -> None:
    checks = [_check(n, AGENTS[i]) for i, n in enumerate("abcde")]
    config = _config(checks, max_parallel=3, on_failure="fail-fast")
    drv = Driver(_dispatcher(config, 5))
    assert sorted(_names(drv.step())) == ["a", "b", "c"]
    cancels = drv.finish("b", Status.FAILED)
    reason = "cancelled: fail-fast after b failed"
    assert sorted(cancels, key=lambda c: c.name) == [
        Cancel(drv.running["a"], "a", reason),
        Cancel(drv.running["c"], "c", reason),
    ]
    skips = drv.step()
    assert skips == [Skip("d", Status.CANCELLED, reason), Skip("e", Status.CANCELLED, reason)]
    # The cancelled checks report back; nothing more happens.
    assert drv.finish("a", Status.CANCELLED) == []
    assert drv.finish("c", Status.CANCELLED) == []
    assert drv.step() == []
    assert drv.d.finished


def test_fail_fast_ignores_non_blocking_failures() -> None:
    checks = [_check("a", AGENTS[0], blocking=False), _check("b", AGENTS[1])]
    drv = Driver(_dispatcher(_config(checks, on_failure="fail-fast"), 2))
    drv.step()
    assert drv.finish("a", Status.FAILED) == []
    assert drv.d.decided == ""
    drv.finish("b", Status.PASSED)
    assert drv.d.finished


def test_best_effort_runs_everything_after_a_failure() -> None:
    checks = [_check(n, AGENTS[i]) for i, n in enumerate("abc")]
    drv = Driver(_dispatcher(_config(checks, max_parallel=1), 3))
    drv.run_all({"a": Status.FAILED})
    assert drv.ended == {"a": Status.FAILED, "b": Status.PASSED, "c": Status.PASSED}
    assert drv.cancels == []


def test_gate_any_first_success_cancels_the_rest() -> None:
    checks = [_check(n, AGENTS[i]) for i, n in enumerate("abcd")]
    drv = Driver(_dispatcher(_config(checks, max_parallel=3, gate="any"), 4))
    drv.step()
    assert drv.finish("a", Status.FAILED) == []
    cancels = drv.finish("b", Status.PASSED)
    assert sorted(_names(cancels)) == ["c"]
    assert cancels[0].reason == "cancelled: gate any passed with b"
    skips = drv.step()
    assert skips == [Skip("d", Status.CANCELLED, "cancelled: gate any passed with b")]
    drv.finish("c", Status.CANCELLED)
    assert drv.d.finished
    results = [_result(n, drv.ended[n]) for n in "abcd"]
    assert verdict(drv.d.config, results) == (True, "passed: b passed (gate any)")


def test_gate_any_without_success_fails() -> None:
    config = _config([_check("a"), _check("b")], gate="any")
    ok, headline = verdict(config, [_result("a", Status.FAILED), _result("b", Status.TIMEOUT)])
    assert (ok, headline) == (False, "failed: no check passed (gate any)")


def test_gate_n_passes_at_n_successes() -> None:
    checks = [_check(n, AGENTS[i]) for i, n in enumerate("abcd")]
    drv = Driver(_dispatcher(_config(checks, max_parallel=1, gate=2), 4))
    drv.step()
    drv.finish("a", Status.PASSED)
    assert drv.d.decided == ""
    drv.step()
    drv.finish("b", Status.FLAKY)
    reason = "cancelled: gate 2 reached (2 checks passed)"
    assert drv.d.decided == reason
    assert drv.step() == [Skip("c", Status.CANCELLED, reason), Skip("d", Status.CANCELLED, reason)]
    results = [_result(n, drv.ended[n]) for n in "abcd"]
    assert verdict(drv.d.config, results) == (True, "passed: 2 of 4 checks passed (gate 2)")


def test_gate_n_decided_as_soon_as_it_cannot_be_reached() -> None:
    checks = [_check(n, AGENTS[i]) for i, n in enumerate("abcd")]
    drv = Driver(_dispatcher(_config(checks, max_parallel=1, gate=3), 4))
    drv.step()
    drv.finish("a", Status.PASSED)
    drv.step()
    drv.finish("b", Status.FAILED)  # 1 good + c + d = 3: still possible
    assert drv.d.decided == ""
    drv.step()
    drv.finish("c", Status.TIMEOUT)  # 1 good + d = 2 < 3
    reason = "cancelled: gate 3 can no longer be reached"
    assert drv.d.decided == reason
    assert drv.step() == [Skip("d", Status.CANCELLED, reason)]
    results = [_result(n, drv.ended[n]) for n in "abcd"]
    assert verdict(drv.d.config, results) == (False, "failed: 1 of 4 checks passed, 3 needed")


def test_gate_n_counts_blocked_dependents_as_lost() -> None:
    checks = [
        _check("a", AGENTS[0]),
        _check("b", AGENTS[1], needs=("a",)),
        _check("c", AGENTS[2], needs=("a",)),
        _check("d", AGENTS[3]),
    ]
    drv = Driver(_dispatcher(_config(checks, max_parallel=2, gate=2), 4))
    assert sorted(_names(drv.step())) == ["a", "d"]
    cancels = drv.finish("a", Status.FAILED)  # only d can still pass
    assert drv.d.decided == "cancelled: gate 2 can no longer be reached"
    assert cancels == [Cancel(drv.running["d"], "d", drv.d.decided)]


def test_non_blocking_failure_keeps_the_verdict() -> None:
    config = _config([_check("a"), _check("b", blocking=False)])
    results = [_result("a"), _result("b", Status.FAILED, blocking=False)]
    assert verdict(config, results) == (True, "passed, with 1 non-blocking failure")


def test_verdict_headlines() -> None:
    config = _config([_check(n) for n in "abcde"])
    assert verdict(config, [_result("a"), _result("b", Status.FLAKY)]) == (
        True,
        "passed, with 1 flaky",
    )
    assert verdict(config, [_result("a")], interrupted=True) == (False, "interrupted")
    bad = [
        _result("a", Status.FAILED),
        _result("b", Status.TIMEOUT),
        _result("c", Status.ERROR),
        _result("d", Status.FAILED),
        _result("e", Status.SKIPPED),
    ]
    assert verdict(config, bad) == (
        False,
        "failed: a failed, b timed out, c had an error and 1 more",
    )
    only_skipped = [_result("a"), _result("b", Status.SKIPPED)]
    assert verdict(config, only_skipped) == (False, "failed: b was skipped")
    mixed = [
        _result("a", Status.FAILED, blocking=False),
        _result("b", Status.FAILED, blocking=False),
    ]
    mixed.append(_result("c", Status.FLAKY))
    assert verdict(config, mixed) == (True, "passed, with 2 non-blocking failures and 1 flaky")


def test_interrupt_cancels_everything() -> None:
    checks = [_check(n, AGENTS[i]) for i, n in enumerate("abc")]
    drv = Driver(_dispatcher(_config(checks, max_parallel=2), 3))
    drv.step()
    cancels = drv.d.interrupt("interrupted")
    assert sorted(_names(cancels)) == ["a", "b"]
    drv.apply(cancels)
    assert drv.step() == [Skip("c", Status.CANCELLED, "interrupted")]


# ------------------------------------------------------------------------------ crashes


def test_crash_makes_the_check_an_error_and_a_new_worker_takes_over() -> None:
    checks = [
        _check("x1", "test-runner"),
        _check("x2", "test-runner"),
        _check("y", "debugger"),
    ]
    drv = Driver(_dispatcher(_config(checks), 2, {"x1": 5.0, "x2": 4.0, "y": 3.0}))
    assert sorted(_names(drv.step())) == ["x1", "y"]
    wid = drv.running["x1"]
    name, actions = drv.d.crash(wid)
    assert (name, actions) == ("x1", [])
    assert drv.d.status["x1"] == Status.ERROR
    assert wid not in drv.d.workers
    drv.running.pop("x1")
    drv.ended["x1"] = Status.ERROR
    drv.d.add_worker("gw9")
    assert drv.d.agent_of("gw9") == "test-runner"
    assert drv.step() == [Run("gw9", "x2")]


def test_crash_of_an_idle_worker() -> None:
    d = _dispatcher(_config([_check("a")]), 2)
    assert d.crash("gw1") == (None, [])
    assert d.crash("unknown") == (None, [])
    assert "gw1" not in d.workers


def test_crash_under_fail_fast_cancels_the_others() -> None:
    checks = [_check("a", AGENTS[0]), _check("b", AGENTS[1])]
    drv = Driver(_dispatcher(_config(checks, on_failure="fail-fast"), 2))
    drv.step()
    name, actions = drv.d.crash(drv.running["a"])
    assert name == "a"
    assert _names(actions) == ["b"]
    assert actions[0].reason == "cancelled: fail-fast after a had an error"


# ------------------------------------------------------------------------------ conflicts


def test_conflicting_writes_never_run_together() -> None:
    checks = [
        _check("docs", AGENTS[0], reads=("docs/**",)),
        _check("fmt", AGENTS[1], writes=("src/**",)),
        _check("gen", AGENTS[2], writes=("src/_version.py",)),
    ]
    drv = Driver(_dispatcher(_config(checks), 3))
    first = drv.step()
    assert sorted(_names(first)) == ["docs", "fmt"]
    drv.finish("docs", Status.PASSED)
    assert drv.step() == []
    drv.finish("fmt", Status.PASSED)
    assert _names(drv.step()) == ["gen"]


def test_exclusive_check_runs_alone() -> None:
    checks = [
        _check("a", AGENTS[0]),
        _check("b", AGENTS[1]),
        _check("solo", AGENTS[2], exclusive=True),
        _check("z", AGENTS[3]),
    ]
    drv = Driver(_dispatcher(_config(checks), 4))
    # solo is next in line once a and b run: it waits for them, and z waits behind it.
    assert sorted(_names(drv.step())) == ["a", "b"]
    drv.finish("a", Status.PASSED)
    assert drv.step() == []
    drv.finish("b", Status.PASSED)
    assert _names(drv.step()) == ["solo"]
    assert list(drv.running) == ["solo"]
    drv.finish("solo", Status.PASSED)
    assert _names(drv.step()) == ["z"]


def test_exclusive_check_at_the_head_is_not_overtaken() -> None:
    checks = [
        _check("big", AGENTS[0], exclusive=True),
        _check("x", AGENTS[1]),
        _check("y", AGENTS[2]),
    ]
    drv = Driver(_dispatcher(_config(checks), 3, {"big": 10.0, "x": 1.0, "y": 1.0}))
    assert _names(drv.step()) == ["big"]
    drv.finish("big", Status.PASSED)
    assert sorted(_names(drv.step())) == ["x", "y"]


# ------------------------------------------------------------------------------ few workers


def test_fewer_workers_than_agents_still_run_everything() -> None:
    checks = [_check(f"c{i}", agent) for i, agent in enumerate(AGENTS)]
    drv = Driver(_dispatcher(_config(checks), 2))
    drv.run_all()
    assert drv.ended == {f"c{i}": Status.PASSED for i in range(5)}
    assert drv.peak == 2
    assert set(drv.d.workers) == {"gw0", "gw1"}


def test_a_single_worker_runs_everything_in_rank_order() -> None:
    checks = [_check(f"c{i}", agent) for i, agent in enumerate(AGENTS)]
    expected = {"c0": 1.0, "c1": 5.0, "c2": 3.0, "c3": 4.0, "c4": 2.0}
    drv = Driver(_dispatcher(_config(checks), 1, expected))
    drv.run_all()
    assert drv.starts == ["c1", "c3", "c2", "c4", "c0"]


# ------------------------------------------------------------------------------ simulate


def _diamond() -> ParexConfig:
    return _config(
        [
            _check("a", AGENTS[0]),
            _check("b", AGENTS[1]),
            _check("c", AGENTS[2], needs=("a",)),
            _check("d", AGENTS[3], needs=("b", "c")),
        ]
    )


DIAMOND = {"a": 2.0, "b": 3.0, "c": 4.0, "d": 1.0}


def test_simulate_makespan_on_a_known_dag() -> None:
    plan = simulate(_diamond(), DIAMOND, 4)
    # a 0-2, b 0-3, c 2-6, d 6-7
    assert plan.makespan == 7.0
    assert plan.workers == 4
    assert {r.name: (r.start, r.end) for r in plan.runs} == {
        "a": (0.0, 2.0),
        "b": (0.0, 3.0),
        "c": (2.0, 6.0),
        "d": (6.0, 7.0),
    }
    assert [sorted(r.name for r in wave) for wave in plan.waves()] == [["a", "b"], ["c"], ["d"]]


def test_simulate_one_worker_is_sequential() -> None:
    plan = simulate(_diamond(), DIAMOND, 1)
    assert plan.makespan == 10.0
    # ranks: a = 2 + 4 + 1 = 7, c = 5, b = 3 + 1 = 4, d = 1
    assert [r.name for r in plan.runs] == ["a", "c", "b", "d"]


def test_simulate_longest_first() -> None:
    checks = [_check("p", AGENTS[0]), _check("q", AGENTS[1]), _check("r", AGENTS[2])]
    plan = simulate(_config(checks), {"p": 2.0, "q": 2.0, "r": 3.0}, 2)
    assert plan.makespan == 4.0


def test_simulate_respects_agent_instances() -> None:
    checks = [_check(n, "test-runner") for n in "abcd"]
    plan = simulate(_config(checks, {"test-runner": 2}), dict.fromkeys("abcd", 1.0), 4)
    assert plan.makespan == 2.0


def test_simulate_without_workers() -> None:
    plan = simulate(_diamond(), DIAMOND, 0)
    assert plan.runs == ()
    assert plan.makespan == 0.0


# ------------------------------------------------------------------------------ gate_result


def test_gate_result_numbers() -> None:
    checks = [
        _check("a", AGENTS[0]),
        _check("b", AGENTS[1]),
        _check("c", AGENTS[2], needs=("a",)),
        _check("d", AGENTS[3], needs=("c",), writes=("out/**",)),
        _check("e", AGENTS[4], reads=("out/x",)),
    ]
    config = _config(checks)
    results = [
        _result("a", duration=2.0, start=100.0, end=102.0, cpu=1.0),
        _result("b", duration=3.0, start=100.0, end=103.0, cpu=0.5),
        _result("c", duration=4.0, start=102.0, end=106.0),
        _result("d", Status.SKIPPED),  # never ran: not on the critical path
        _result("e", duration=1.0, start=100.0, end=101.0),
    ]
    gate = gate_result(config, results, wall=6.5, workers=3)
    assert gate.verdict is False
    assert gate.headline == "failed: d was skipped"
    assert gate.sequential == 10.0
    assert gate.cpu == 1.5
    assert gate.wall == 6.5
    assert gate.speedup == pytest.approx(10.0 / 6.5)
    assert gate.critical_path == 6.0  # a -> c
    assert gate.bound == pytest.approx(10.0 / 6.0)
    assert gate.serialised == ("d and e share out/x: serialised",)
    assert gate.workers == 3
    assert gate.gate == "all"
    assert gate.on_failure == "best-effort"
    assert gate.results == tuple(results)


def test_gate_result_passed_and_empty() -> None:
    config = _config([_check("a")])
    gate = gate_result(config, [_result("a", duration=1.5, start=1.0)], wall=2.0)
    assert (gate.verdict, gate.headline) == (True, "passed")
    assert gate.critical_path == 1.5
    assert gate.speedup == 0.75
    empty = gate_result(_config([]), [], wall=0.0)
    assert (empty.sequential, empty.speedup, empty.critical_path, empty.bound) == (0, 0, 0, 0)


# ------------------------------------------------------------------------------ fuzz

_PATHS = ("src/**", "src/a.py", "docs/*", "build/x", "*.txt", "build/")
_STATUSES = (
    Status.PASSED,
    Status.PASSED,
    Status.PASSED,
    Status.FLAKY,
    Status.FAILED,
    Status.TIMEOUT,
    Status.ERROR,
)


@st.composite
def _scenarios(draw: st.DrawFn) -> dict[str, Any]:
    agent_names = draw(st.lists(st.sampled_from((*AGENTS, "x", "y")), min_size=1, unique=True))
    instances = {a: draw(st.integers(1, 3)) for a in agent_names}
    n = draw(st.integers(1, 8))
    checks = []
    for i in range(n):
        earlier = [f"c{j}" for j in range(i)]
        needs = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        checks.append(
            _check(
                f"c{i}",
                draw(st.sampled_from(agent_names)),
                needs=tuple(needs),
                reads=tuple(draw(st.lists(st.sampled_from(_PATHS), max_size=2))),
                writes=tuple(draw(st.lists(st.sampled_from(_PATHS), max_size=1))),
                exclusive=draw(st.integers(0, 5)) == 0,
                blocking=draw(st.integers(0, 4)) != 0,
            )
        )
    names = [c.name for c in checks]
    return {
        "config": _config(
            checks,
            instances,
            max_parallel=draw(st.integers(1, 5)),
            gate=draw(st.sampled_from(["all", "all", "any"]) | st.integers(1, n)),
            on_failure=draw(st.sampled_from(["best-effort", "fail-fast"])),
        ),
        "workers": draw(st.integers(1, 6)),
        "duration": {n: draw(st.integers(1, 4)) for n in names},
        "expected": {n: float(draw(st.integers(1, 4))) for n in names if draw(st.booleans())},
        "outcome": {n: draw(st.sampled_from(_STATUSES)) for n in names},
        "crash": set(draw(st.lists(st.sampled_from(names), max_size=2))),
    }


@settings(
    max_examples=120,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_scenarios())
def test_dispatcher_invariants(scenario: dict[str, Any]) -> None:
    config: ParexConfig = scenario["config"]
    d = _dispatcher(config, scenario["workers"], scenario["expected"])
    drv = Driver(d)
    ends: dict[str, float] = {}
    now = 0.0
    spare = len(d.workers)
    for _ in range(10 * len(config.checks) + 10):
        for action in drv.step():
            if isinstance(action, Run):
                ends[action.name] = now + scenario["duration"][action.name]
        for cancel in drv.cancels:
            if cancel.name in ends:
                ends[cancel.name] = now  # the worker kills it: it ends right away
        if not drv.running:
            # No deadlock: nothing runs, so everything must be done.
            assert d.finished, (d.state, d.workers)
            break
        name = min(ends, key=lambda n: (ends[n], n))
        now = ends.pop(name)
        cancelled = any(c.name == name for c in drv.cancels)
        if name in scenario["crash"] and not cancelled:
            wid = drv.running.pop(name)
            crashed, actions = d.crash(wid)
            assert crashed == name
            drv.ended[name] = Status.ERROR
            drv.apply(actions)
            d.add_worker(f"gw{spare}")  # xdist replaces the dead worker
            spare += 1
        else:
            drv.finish(name, Status.CANCELLED if cancelled else scenario["outcome"][name])
        for cancel in drv.cancels:
            if cancel.name in ends:
                ends[cancel.name] = now
    else:
        pytest.fail(f"the dispatcher did not finish: {d.state}")
    # Every check ended exactly once (Driver.apply refuses a second end), as the dispatcher says.
    assert drv.ended == d.status
    assert set(drv.ended) == {c.name for c in config.checks}
    assert len(drv.starts) == len(set(drv.starts))
    # Cancellations only come from a decided gate.
    if any(s == Status.CANCELLED for s in drv.ended.values()):
        assert d.decided
    # Best effort with gate all: a check never runs is only skipped for a bad dependency.
    if config.gate == "all" and config.on_failure == "best-effort":
        assert not drv.cancels
        for check in config.checks:
            bad_dep = any(drv.ended[dep] not in GOOD for dep in check.needs)
            assert (drv.ended[check.name] == Status.SKIPPED) == bad_dep, check.name
            if not bad_dep:
                assert check.name in drv.starts
    # A fail-fast gate with a blocking failure cancels the rest.
    if config.on_failure == "fail-fast" and config.gate == "all":
        blocking_bad = [c.name for c in config.checks if c.blocking and drv.ended[c.name] in BAD]
        if blocking_bad:
            assert d.decided.startswith("cancelled: fail-fast after ")
