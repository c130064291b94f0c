"""Large dependency graphs (issue 10): thousands of checks in long ``needs`` chains (listed in
dependency order and against it), random DAGs and cycles go through every algorithm and
every output -- a verdict, or one usage error naming the cycle; never a RecursionError or a
traceback. The near-linear algorithms that replaced passes and scans give what the simple
ones gave: each is compared with a plain reference here."""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import Project
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_parex import config as cfg
from pytest_parex import cpubound, graph, plan
from pytest_parex.cache.incremental import Decision, _runs_together
from pytest_parex.config import AnnotationLimits, Check, ConfigError, ParexConfig
from pytest_parex.dispatch import DONE, PENDING, Action, Cancel, Dispatcher, Run, Skip
from pytest_parex.kinds.base import RunContext
from pytest_parex.mintree import MinTree
from pytest_parex.output import github, jsonreport, live, stepsummary, summary, timeline
from pytest_parex.results import GOOD, CheckResult, GateResult, Status, gate_result, unrun, verdict
from pytest_parex.state import GATE_RUN, GateRun, Mode

AGENTS = ("code-reviewer", "debugger", "feature-implementer", "refactorer", "test-runner")
ROOT = Path("/project")
ORIGIN = 1000.0
# Small graphs and big ones: the references below are quadratic, the product must not be.
SIZES = st.one_of(st.integers(1, 40), st.integers(1000, 2000))
BOUNDED = settings(
    max_examples=4,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def name(i: int) -> str:
    return f"c{i:05d}"  # sorted names: config order is index order


@dataclass(frozen=True)
class Shape:
    """A generated ``[tool.parex]`` table: ``size`` command checks wired as ``kind`` says."""

    kind: str
    """chain: each needs the one before it in config order; reverse: the one after it (every
    failure spreads against config order); dag: up to three random needs along a random
    order; wide: no needs; mixed: short chains beside exclusive checks, each check writing
    what the next one reads."""
    size: int
    seed: int

    def needs(self) -> list[list[int]]:
        rng = random.Random(self.seed)
        n = self.size
        if self.kind == "chain":
            return [[i - 1] if i else [] for i in range(n)]
        if self.kind == "reverse":
            return [[i + 1] if i < n - 1 else [] for i in range(n)]
        if self.kind == "wide":
            return [[] for _ in range(n)]
        if self.kind == "mixed":
            return [[i - 3] if i >= 3 and i % 4 else [] for i in range(n)]
        order = list(range(n))
        rng.shuffle(order)
        out: list[list[int]] = [[] for _ in range(n)]
        for k, i in enumerate(order):
            if k:
                out[i] = sorted({order[rng.randrange(k)] for _ in range(rng.randint(0, 3))})
        return out

    def table(self, needs: Sequence[Sequence[int]] | None = None) -> dict[str, Any]:
        rng = random.Random(self.seed + 1)
        checks: dict[str, dict[str, Any]] = {}
        for i, deps in enumerate(self.needs() if needs is None else needs):
            check: dict[str, Any] = {"kind": "command", "run": ["true"]}
            check["agent"] = AGENTS[rng.randrange(len(AGENTS))]
            if deps:
                check["needs"] = [name(d) for d in deps]
            if self.kind == "mixed":
                # Each writes its own directory, which the next one reads: few conflicts.
                check["exclusive"] = i % 97 == 5
                check["writes"] = [f"out/{i}/**"]
                check["reads"] = [f"out/{i - 1}/x"]
            checks[name(i)] = check
        agents = {a: rng.randint(1, 3) for a in AGENTS}
        return {"max-parallel": rng.randint(1, 5), "agents": agents, "checks": checks}


SHAPES = st.builds(
    Shape, st.sampled_from(["chain", "reverse", "dag", "wide", "mixed"]), SIZES, st.integers()
)


def parse(table: Mapping[str, Any]) -> ParexConfig:
    return cfg.parse(table, "pyproject.toml")


# ---------------------------------------------------------------------------------- cycles


@BOUNDED
@given(shape=SHAPES.filter(lambda s: s.size >= 2), data=st.data())
@example(shape=Shape("chain", 3000, 0), data=None)
@example(shape=Shape("reverse", 3000, 0), data=None)
def test_a_cycle_is_one_usage_error_naming_it(shape: Shape, data: Any) -> None:
    needs = [list(d) for d in shape.needs()]
    n = shape.size
    if data is None:  # the whole chain closed into one cycle
        members = list(range(n))
    else:
        members = data.draw(st.permutations(range(n)))[: data.draw(st.integers(2, n))]
    for a, b in zip(members, [*members[1:], members[0]], strict=True):
        needs[a] = sorted({*needs[a], b} - {a})
    with pytest.raises(ConfigError) as raised:
        parse(shape.table(needs))
    message = str(raised.value)
    assert "\n" not in message
    prefix = "pyproject.toml: [tool.parex.checks] needs form a cycle: "
    assert message.startswith(prefix), message[:200]
    cycle = message[len(prefix) :].split(" -> ")
    assert len(cycle) >= 3 and cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for a, b in itertools.pairwise(cycle):
        assert int(b[1:]) in needs[int(a[1:])], (a, b)


# ---------------------------------------------------------------------------------- driving


def _passes_would_skip(d: Dispatcher) -> list[tuple[str, Status, str]]:
    """What assign() skips, found the plain way: passes over the pending checks in config
    order until one finds nothing."""
    status = dict(d.status)
    state = dict(d.state)
    out = []
    changed = True
    while changed:
        changed = False
        for check in d.config.checks:
            if state[check.name] != PENDING:
                continue
            why: tuple[Status, str] | None = None
            for dep in check.needs:
                found = status.get(dep)
                if found is not None and found not in GOOD:
                    why = (Status.SKIPPED, f"needs {dep}, which {Status(found).past}")
                    break
            if why is None and d.decided:
                why = (Status.CANCELLED, d.decided)
            if why is not None:
                state[check.name], status[check.name] = DONE, why[0]
                out.append((check.name, *why))
                changed = True
    return out


def _threshold_decision(d: Dispatcher, gate: int) -> str:
    """What the threshold gate decides, counted over every check."""
    good = sum(1 for s in d.status.values() if s in GOOD)
    blocked = {
        n
        for n in d.checks
        if d.state[n] == PENDING
        and any(d.status.get(x) is not None and d.status[x] not in GOOD for x in d.checks[n].needs)
    }
    possible = good + sum(1 for n in d.checks if d.state[n] != DONE and n not in blocked)
    if good >= gate:
        return f"cancelled: gate {gate} reached ({good} checks passed)"
    if possible < gate:
        return f"cancelled: gate {gate} can no longer be reached"
    return ""


def drive(
    config: ParexConfig,
    failing: set[str],
    workers: int,
    *,
    check_against_references: bool = False,
) -> tuple[list[CheckResult], list[Action]]:
    """The dispatcher to the end on a virtual clock (check i takes 1 + i % 3 s); ``failing``
    checks fail. Asserts what must hold on the way; returns every check's result."""
    expected = {c.name: 1.0 + i % 3 for i, c in enumerate(config.checks)}
    d = Dispatcher(config, expected)
    for i in range(workers):
        d.add_worker(f"gw{i}")
    now, ends, results, actions = 0.0, {}, {}, []
    for _ in range(4 * len(config.checks) + 10):
        if d.finished:
            break
        skips = _passes_would_skip(d) if check_against_references else None
        assigned = d.assign(now)
        if skips is not None:
            assert [(a.name, a.status, a.reason) for a in assigned if isinstance(a, Skip)] == skips
        for action in assigned:
            actions.append(action)
            assert action.name not in results, action
            check = config.check(action.name)
            if isinstance(action, Run):
                assert all(d.status.get(n) in GOOD for n in check.needs), action
                ends[action.name] = now + expected[action.name]
                bad = action.name in failing
                results[action.name] = CheckResult(
                    action.name,
                    check.agent,
                    Status.FAILED if bad else Status.PASSED,
                    duration=expected[action.name],
                    start=ORIGIN + now,
                    end=ORIGIN + ends[action.name],
                    worker=action.worker,
                    detail="exit code 1" if bad else "",
                    tail="boom\n" if bad else "",
                    log_path=f"/project/.parex/logs/{action.name}.log",
                    returncode=int(bad),
                )
            elif isinstance(action, Skip):
                if action.status is Status.SKIPPED:
                    dep = re.fullmatch(r"needs (\S+), which .*", action.reason)
                    assert dep and dep.group(1) in check.needs, action
                    assert d.status[dep.group(1)] not in GOOD
                results[action.name] = unrun(check, action.status, action.reason)
        if not ends:
            break
        done = min(ends, key=lambda k: (ends[k], k))
        now = ends.pop(done)
        undecided = not d.decided
        for action in d.finish(done, results[done].status):
            actions.append(action)
            assert isinstance(action, Cancel)
            ends.pop(action.name)
            results[action.name] = replace(
                results[action.name], status=Status.CANCELLED, reason=action.reason
            )
            d.finish(action.name, Status.CANCELLED)
        if check_against_references and undecided and isinstance(config.gate, int):
            assert d.decided == _threshold_decision(d, config.gate)
    assert d.finished
    return [results[c.name] for c in config.checks], actions


def _failing(config: ParexConfig, seed: int) -> set[str]:
    rng = random.Random(seed)
    names = [c.name for c in config.checks]
    # The middle one always (skips spread both ways from it), a few more at random.
    return {names[len(names) // 2], *(n for n in names if rng.random() < 0.02)}


def _gate(rng: random.Random, n: int) -> tuple[str | int, str]:
    return rng.choice(["all", "all", "any", rng.randint(1, n)]), rng.choice(
        ["best-effort", "fail-fast"]
    )


# ---------------------------------------------------------------------------------- outputs


def _every_output(config: ParexConfig, results: list[CheckResult], workers: int) -> None:
    n = len(config.checks)
    names = [c.name for c in config.checks]
    needs = {c.name: c.needs for c in config.checks}
    ran = [r for r in results if r.start is not None]
    gate = gate_result(config, results, wall=max([r.end - ORIGIN for r in ran if r.end], default=0))
    assert (gate.verdict, gate.headline) == verdict(config, results)

    text = summary.render(gate, ROOT)
    assert len(text.splitlines()) == 1 + n + len(gate.serialised) + 2
    assert text.splitlines()[-1] == f"parex: {gate.headline}"
    if n <= 300:  # rich costs ~1 ms a row: the plain table says the same
        assert f"parex: {gate.headline}" in summary.render(gate, ROOT, color=True, width=120)

    tl = timeline.build(gate, ORIGIN, needs)
    chain = tl.critical_path
    for first, then in itertools.pairwise(chain):
        assert first in needs[then]
    assert tl.critical_length == pytest.approx(gate.critical_path)
    lines = timeline.render_text(tl, width=100).splitlines()
    assert len(lines) == 1 + len(ran) + (1 if ran else 0) + (1 if tl.not_run else 0)
    svg = ET.fromstring(timeline.render_svg(tl))
    rects = list(svg.iter("{http://www.w3.org/2000/svg}rect"))
    assert [r.get("data-check") for r in rects] == [b.name for b in tl.bars]
    assert sum(r.get("data-critical") == "true" for r in rects) == len(chain)
    assert timeline.render_html(tl).count("<tr><td>") == len(ran)

    doc = jsonreport.document(
        gate, origin=ORIGIN, root=ROOT, config_path=ROOT / "pyproject.toml", needs=needs
    )
    written = json.loads(jsonreport.dumps(doc))
    _validate_json(written)
    assert [c["name"] for c in written["checks"]] == names
    assert sum(doc["totals"]["counts"].values()) == n
    assert doc["timeline"]["critical_path"] == list(chain)

    annotations = github.check_annotations(gate, ROOT)
    assert len(annotations) == sum(1 for r in results if r.bad)
    chosen = github.select(annotations, AnnotationLimits())
    assert len(chosen.shown) == min(10, sum(1 for a in annotations if a.level == "error")) + min(
        10, sum(1 for a in annotations if a.level == "warning")
    )
    assert all(a.startswith(("::error ", "::warning ", "::notice ")) for a in chosen.lines())
    table = stepsummary.render(*stepsummary.sections(gate, ROOT, [])).splitlines()
    assert sum(1 for line in table if line.startswith("| ")) == 2 + n  # with the header

    progress = live.Progress(clock=lambda: 10.0)
    for r in results:
        if r.start is not None:
            progress.started(r.name, r.agent, r.worker)
        progress.finished(r)
    rows = progress.rows([(c.name, c.agent) for c in config.checks])
    assert [row.name for row in rows] == names
    block = live.render_block(rows, 10.0, ROOT, width=100, height=30, color=False)
    assert 1 < len(block.splitlines()) <= 29
    assert all(len(line) < 100 for line in block.splitlines())
    assert live.final_line(rows, 10.0).startswith(f"parex: {n} check")

    # The plan expects every check to pass: with gate all, all of them run.
    expected = {c.name: 1.0 for c in config.checks}
    config = replace(config, gate="all")
    planned = plan.simulate(config, expected, workers)
    assert sorted(r.name for r in planned.runs) == sorted(names)
    ends = {p.name: p.end for p in planned.runs}
    for r in planned.runs:
        assert all(ends[d] <= r.start + 1e-9 for d in needs[r.name])
    rendered = plan.render(config, expected, workers, dict.fromkeys(names, plan.NO_DATA))
    assert rendered.count(" expected 1.00s (no data), path ") == n
    assert "predicted: wall " in rendered


def _validate_json(gate_doc: Mapping[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(jsonreport.schema()).validate(gate_doc)


@BOUNDED
@given(shape=SHAPES, seed=st.integers(), workers=st.integers(1, 5))
@example(shape=Shape("reverse", 3000, 7), seed=1, workers=3)
@example(shape=Shape("chain", 3000, 7), seed=2, workers=3)
@example(shape=Shape("mixed", 2000, 3), seed=3, workers=5)
def test_big_graphs_reach_a_verdict_through_every_output(
    shape: Shape, seed: int, workers: int
) -> None:
    config = parse(shape.table())
    rng = random.Random(seed)
    if shape.kind != "reverse":  # the reverse chain keeps the defaults: gate all, best effort
        gate, on_failure = _gate(rng, len(config.checks))
        config = replace(config, gate=gate, on_failure=on_failure)
    results, _ = drive(config, _failing(config, seed), workers)
    if config.gate == "all" and config.on_failure == "best-effort":
        # Nothing decides early: a check runs exactly when every need passed.
        by_name = {r.name: r for r in results}
        for check in config.checks:
            ran = by_name[check.name].start is not None
            assert ran == all(by_name[d].ok for d in check.needs), check.name
    _every_output(config, results, workers)


@settings(max_examples=60, deadline=None, database=None)
@given(shape=SHAPES.filter(lambda s: s.size <= 40), seed=st.integers(), workers=st.integers(1, 4))
def test_skips_and_threshold_decisions_are_those_of_the_plain_way(
    shape: Shape, seed: int, workers: int
) -> None:
    # Every assign() skips what passes over all pending checks would, in their order and with
    # their reasons; a threshold gate decides as counting over every check would.
    config = parse(shape.table())
    gate, on_failure = _gate(random.Random(seed), len(config.checks))
    config = replace(config, gate=gate, on_failure=on_failure)
    failing = {c.name for c in config.checks if random.Random(f"{seed}{c.name}").random() < 0.3}
    drive(config, failing, workers, check_against_references=True)


def test_a_failure_spreads_down_a_reverse_chain_in_one_assign() -> None:
    # c(i) needs c(i+1): c2999 is the root, listed last. The failure of c1500 skips c1499 ...
    # c0 in one assign(), each naming the link before it.
    config = parse(Shape("reverse", 3000, 0).table())
    config = replace(config, max_parallel=1)
    d = Dispatcher(config, {})
    d.add_worker("gw0")
    for i in range(2999, 1500, -1):
        assert [a.name for a in d.assign(0.0)] == [name(i)]
        d.finish(name(i), Status.PASSED)
    assert [a.name for a in d.assign(0.0)] == [name(1500)]
    d.finish(name(1500), Status.FAILED)
    skips = d.assign(0.0)
    assert [a.name for a in skips] == [name(i) for i in range(1499, -1, -1)]
    assert isinstance(skips[0], Skip) and skips[0].reason == f"needs {name(1500)}, which failed"
    assert isinstance(skips[-1], Skip) and skips[-1].reason == f"needs {name(1)}, which was skipped"
    assert d.finished


class _Terminal:
    """What the live display writes through (pytest's terminal reporter), counting writes."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str, flush: bool = False) -> None:
        self.writes.append(text)

    def ensure_newline(self) -> None:
        pass

    def write_line(self, line: str) -> None:
        self.writes.append(line + "\n")


def test_a_burst_of_check_events_draws_the_live_block_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A frame lists every check: drawing one per event (two per check) would cost the square
    # of the checks. Events within INTERVAL of the last frame leave it to the ticking thread.
    config = parse(Shape("wide", 2000, 0).table())
    results, _ = drive(config, set(), 5)
    pytest_config = pytester.parseconfig()
    context = RunContext(tmp_path, tmp_path, tmp_path, config_path="pyproject.toml")
    pytest_config.stash[GATE_RUN] = GateRun(
        config, tmp_path / "pyproject.toml", context, Mode.LOCAL
    )
    clock = [50.0]
    monkeypatch.setattr(live, "time", SimpleNamespace(monotonic=lambda: clock[0], time=time.time))
    display = live.LiveProgress(pytest_config, "live")
    display.mode, display.tr = "live", _Terminal()
    display._thread = threading.Thread(target=lambda: None)  # the ticker (never started here)

    def frames() -> int:
        return sum(1 for text in display.tr.writes if "parex " in text)

    for result in results[:1000]:
        display.pytest_parex_check_started(pytest_config, result.name, result.agent, "w0")
        display.pytest_parex_check_finished(pytest_config, result)
    assert frames() == 1
    clock[0] += live.INTERVAL
    for result in results[1000:]:
        display.pytest_parex_check_started(pytest_config, result.name, result.agent, "w0")
        display.pytest_parex_check_finished(pytest_config, result)
    assert frames() == 2
    display.redraw()  # the ticker draws whatever the clock says
    assert frames() == 3
    assert "2000 passed" in display.tr.writes[-1]


# ---------------------------------------------------------------------------------- references


@settings(max_examples=200, deadline=None, database=None)
@given(
    size=st.integers(1, 30),
    edges=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), max_size=60),
    seeds=st.sets(st.integers(0, 29), max_size=5),
)
def test_in_passes_settles_as_passes_do(
    size: int, edges: list[tuple[int, int]], seeds: set[int]
) -> None:
    # Settling ``j`` needs a settled ``i`` with an edge i -> j, or ``j`` among the seeds.
    followers: dict[str, list[str]] = {str(i): [] for i in range(size)}
    for i, j in edges:
        if i < size and j < size:
            followers[str(i)].append(str(j))
    leaders = {k: [i for i, js in followers.items() if k in js] for k in followers}
    start = {str(s) for s in seeds if s < size}

    def run(order: Callable[[Callable[[str], bool]], None]) -> list[str]:
        settled: list[str] = []

        def settle(name: str) -> bool:
            if name in settled or not (name in start or set(leaders[name]) & set(settled)):
                return False
            settled.append(name)
            return True

        order(settle)
        return settled

    def passes(settle: Callable[[str], bool]) -> None:
        changed = True
        while changed:
            changed = any([settle(str(i)) for i in range(size)])

    position = {str(i): i for i in range(size)}
    fast = run(lambda settle: graph.in_passes(position, start, followers.__getitem__, settle))
    assert fast == run(passes)


GLOBS = (
    *("src/**", "src/a.py", "src", "./src/", "s", "src/a*", "build/", "build//", "build/x", "bu"),
    *("*.md", ".", "out/*", "out/1/**", "out/10/x", "out/1", "a\\b", "[ab]/x", "b/x"),
)


def _naive_conflicts(checks: Sequence[Check]) -> list[graph.Conflict]:
    def ancestors(name: str) -> set[str]:
        by_name = {c.name: c for c in checks}
        seen: set[str] = set()
        stack = list(by_name[name].needs)
        while stack:
            dep = stack.pop()
            if dep in by_name and dep not in seen:
                seen.add(dep)
                stack.extend(by_name[dep].needs)
        return seen

    out = []
    for i, a in enumerate(checks):
        for b in checks[i + 1 :]:
            if a.name in ancestors(b.name) or b.name in ancestors(a.name):
                continue
            why = graph._conflict_reason(a, b)
            if why:
                who = a.name if a.exclusive else b.name if b.exclusive else ""
                out.append(graph.Conflict(a.name, b.name, why, exclusive=who))
    return out


@st.composite
def file_checks(draw: st.DrawFn) -> list[Check]:
    size = draw(st.integers(1, 14))
    out = []
    for i in range(size):
        needs = draw(st.lists(st.integers(0, size - 1), max_size=3))
        out.append(
            Check(
                name=name(i),
                agent="debugger",
                argv=("true",),
                # Some needs point backwards: a few cycles too, which conflicts() survives.
                needs=tuple(dict.fromkeys(name(d) for d in needs if d != i)),
                reads=tuple(draw(st.lists(st.sampled_from(GLOBS), max_size=2))),
                writes=tuple(draw(st.lists(st.sampled_from(GLOBS), max_size=2))),
                exclusive=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    return out


@settings(max_examples=100, deadline=None, database=None)
@given(checks=file_checks())
def test_conflicts_are_those_of_every_pair(checks: list[Check]) -> None:
    naive = _naive_conflicts(checks)
    assert graph.conflicts(checks) == naive
    exclusive = {c.name for c in checks if c.exclusive}
    assert graph.conflicts(checks, exclusive=False) == [
        c for c in naive if not {c.a, c.b} & exclusive
    ]
    assert graph.serialised(checks) == graph.describe(naive)


def test_serialised_names_an_exclusive_check_once_among_thousands() -> None:
    checks = [Check(name(i), "debugger", ("true",), exclusive=i % 100 == 7) for i in range(3000)]
    assert graph.serialised(checks) == [
        f"{name(i)} is exclusive: runs with nothing beside it" for i in range(7, 3000, 100)
    ]
    chained = [replace(c, needs=(name(i - 1),) if i else ()) for i, c in enumerate(checks)]
    assert graph.serialised(chained) == []  # a chain never overlaps


def _naive_runs_together(checks: Sequence[Check], decisions: dict[str, Decision]) -> None:
    changed = True
    while changed:
        changed = False
        for check in checks:
            decision = decisions[check.name]
            if not decision.cached:
                continue
            why = ""
            for dep in check.needs:
                if dep in decisions and not decisions[dep].cached:
                    why = f"needs {dep}, which runs"
                    break
            if not why and check.shard is not None:
                for other in checks:
                    if other.base_name == check.base_name and not decisions[other.name].cached:
                        why = f"{other.name} runs"
                        break
            if why:
                decisions[check.name] = replace(decision, reason=why, replay=None)
                changed = True


@settings(max_examples=100, deadline=None, database=None)
@given(shape=SHAPES.filter(lambda s: s.size <= 40), data=st.data())
def test_runs_together_is_what_passes_find(shape: Shape, data: Any) -> None:
    checks = list(parse(shape.table()).checks)
    # Turn a stretch of checks into the shards of one tests check.
    first = data.draw(st.integers(0, len(checks) - 1))
    count = data.draw(st.integers(1, 4))
    for k, i in enumerate(range(first, min(first + count, len(checks)))):
        checks[i] = replace(checks[i], name=f"t[{k + 1}/{count}]", shard=(k + 1, count))
    names = {c.name for c in checks}
    checks = [replace(c, needs=tuple(n for n in c.needs if n in names)) for c in checks]
    replay = CheckResult("x", "debugger", Status.PASSED)
    runs = set(data.draw(st.lists(st.sampled_from(sorted(names)), max_size=3)))
    decisions = {
        c.name: Decision(c.name, "changed")
        if c.name in runs
        else Decision(c.name, "cached", None, replay)
        for c in checks
    }
    expected = dict(decisions)
    _naive_runs_together(checks, expected)
    _runs_together(checks, decisions)
    assert decisions == expected


def test_runs_together_spreads_down_a_reverse_chain() -> None:
    checks = list(parse(Shape("reverse", 3000, 0).table()).checks)
    replay = CheckResult("x", "debugger", Status.PASSED)
    decisions = {c.name: Decision(c.name, "cached", None, replay) for c in checks}
    decisions[name(2999)] = Decision(name(2999), "src/a.py changed")
    _runs_together(checks, decisions)
    assert [d.reason for d in decisions.values()] == [
        *(f"needs {name(i + 1)}, which runs" for i in range(2999)),
        "src/a.py changed",
    ]


@settings(max_examples=200, deadline=None, database=None)
@given(
    runs=st.lists(
        st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.5]), st.sampled_from([0.1, 0.5, 1.0, 9.0])),
        min_size=1,
        max_size=25,
    ),
    window=st.tuples(st.floats(0, 10), st.floats(0.01, 10)),
)
def test_crowd_sums_every_overlap_as_a_scan_does(
    runs: list[tuple[float, float]], window: tuple[float, float]
) -> None:
    intervals = sorted((s, s + d) for s, d in runs)
    start, end = window[0], window[0] + window[1]
    plain = sum(max(0.0, min(end, e) - max(start, s)) for s, e in intervals) / (end - start)
    assert cpubound._Runs(intervals).crowd(start, end) == plain


def test_crowd_with_one_run_over_the_whole_gate_is_quick_to_find() -> None:
    # One run from the start to the end and 3,000 short ones one after another.
    intervals = sorted([(0.0, 3000.0), *((float(i), i + 1.0) for i in range(3000))])
    runs = cpubound._Runs(intervals)
    assert [runs.crowd(i + 0.25, i + 0.75) for i in (0, 1500, 2999)] == [2.0, 2.0, 2.0]


@settings(max_examples=200, deadline=None, database=None)
@given(
    values=st.lists(st.one_of(st.just(float("inf")), st.floats(0, 10)), min_size=1, max_size=40),
    start=st.integers(0, 45),
    bound=st.floats(0, 12),
)
def test_min_tree_finds_what_a_scan_finds(values: list[float], start: int, bound: float) -> None:
    tree = MinTree(len(values))
    for i, v in enumerate(values):
        tree[i] = v
    assert [tree[i] for i in range(len(values))] == values

    def scan(fits: Callable[[float], bool]) -> Iterator[int]:
        return (i for i in range(start, len(values)) if fits(values[i]))

    assert tree.first(start) == next(scan(lambda v: v < float("inf")), None)
    assert tree.first(start, lambda v: v <= bound) == next(scan(lambda v: v <= bound), None)
    assert list(tree.each(start, len(values) - 1, lambda v: v < bound)) == [
        i for i in scan(lambda v: v < bound) if i < len(values) - 1
    ]


# ---------------------------------------------------------------------------------- end to end

NO_TRACEBACK = ("Traceback", "INTERNALERROR", "RecursionError")


def _chain_project(project: Project, size: int, failing: int) -> None:
    """``size`` checks of ``true``, each needing the next one (the root is listed last);
    ``failing`` runs ``false``."""
    checks = {
        name(i): {
            "kind": "command",
            "run": ["false"] if i == failing else ["true"],
            **({"needs": [name(i + 1)]} if i < size - 1 else {}),
        }
        for i in range(size)
    }
    project.write(checks)


def test_a_2000_check_chain_through_github_json_timeline_and_plan(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The root c01999 and the 29 links after it pass, c01970 fails, the 1,970 that need it
    # (directly or not) are skipped; every output holds all 2,000.
    _chain_project(project, 2000, failing=1970)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "summary.md"))
    result = project.pytester.runpytest_subprocess(
        "--parex", "-p", "no:randomly", "--parex-json=report.json", "--parex-timeline=tl.svg"
    )
    output = "\n".join([*result.outlines, *result.errlines])
    assert not [word for word in NO_TRACEBACK if word in output], output[-3000:]
    assert result.ret == 1, output[-3000:]
    result.assert_outcomes(passed=29, failed=1, skipped=1970)
    assert f"parex: failed: {name(1970)} failed" in result.outlines

    report = project.json_report()
    assert len(report["checks"]) == 2000
    assert {k: v for k, v in report["totals"]["counts"].items() if v} == {
        "passed": 29,
        "failed": 1,
        "skipped": 1970,
    }
    reasons = {c["name"]: c["reason"] for c in report["checks"]}
    assert reasons[name(1969)] == f"needs {name(1970)}, which failed"
    assert reasons[name(0)] == f"needs {name(1)}, which was skipped"
    _validate_json(report)

    svg = ET.parse(project.path / "tl.svg").getroot()
    bars = [r.get("data-check") for r in svg.iter("{http://www.w3.org/2000/svg}rect")]
    assert sorted(bars) == [name(i) for i in range(1970, 2000)]

    annotations = [line for line in result.outlines if line.startswith("::error")]
    assert annotations == [
        f"::error title=parex%3A {name(1970)}::{name(1970)} failed: exit code 1"
        f"%0Afull log: .parex/logs/{name(1970)}.log"
    ]
    table = (project.path / "summary.md").read_text().splitlines()
    assert sum(1 for line in table if line.startswith("| c0")) == 2000

    planned = project.pytester.runpytest_subprocess("--parex", "-p", "no:randomly", "--parex-plan")
    output = "\n".join([*planned.outlines, *planned.errlines])
    assert not [word for word in NO_TRACEBACK if word in output], output[-3000:]
    assert planned.ret == 0, output[-3000:]
    order = [line for line in planned.outlines if re.match(r"  \d+\. c\d{5} ", line)]
    assert len(order) == 2000
    assert order[0].startswith(f"  1. {name(1999)} ") and order[-1].startswith(
        f"  2000. {name(0)} "
    )
    assert any(line.startswith("predicted: wall ") for line in planned.outlines)


def test_a_2000_check_cycle_is_one_usage_error(project: Project) -> None:
    _chain_project(project, 2000, failing=-1)
    text = (project.path / "pyproject.toml").read_text()
    # Close the chain: the root needs the first check.
    root = f"[tool.parex.checks.{name(1999)}]\n"
    project.path.joinpath("pyproject.toml").write_text(
        text.replace(root, root + f'needs = ["{name(0)}"]\n')
    )
    result = project.pytester.runpytest_subprocess("--parex", "-p", "no:randomly")
    output = "\n".join([*result.outlines, *result.errlines])
    assert not [word for word in NO_TRACEBACK if word in output], output[-3000:]
    assert result.ret == 4, output[-3000:]
    errors = [line for line in result.errlines if line.strip()]
    cycle = " -> ".join(name(i) for i in (*range(2000), 0))
    path = project.path / "pyproject.toml"
    assert errors == [f"ERROR: {path}: [tool.parex.checks] needs form a cycle: {cycle}"]


def test_20000_findings_through_every_ci_report(tmp_path: Path) -> None:
    # One check per tool, 5,000 findings each over 500 files: every report holds them all, the
    # step summary stays within its limit, 20 annotations and the notice are chosen.
    from pytest_parex.findings import file_lines, fingerprints, of_gate
    from pytest_parex.output import codequality, sarif

    def issues(tool: int) -> list[dict[str, Any]]:
        return [
            {
                "path": f"pkg/m{i % 500}.py",
                "line": i // 500 + 1,
                "column": 1,
                "code": f"R{i % 40}",
                "message": f"finding {i} of tool {tool}",
                "severity": "warning" if i % 3 else "error",
            }
            for i in range(5000)
        ]

    results = tuple(
        CheckResult(
            f"t{n}",
            "a",
            Status.FAILED,
            1.0,
            1.0,
            2.0,
            figures={"tool": f"tool{n}", "issues": issues(n)},
        )
        for n in range(4)
    )
    gate = GateResult(results, 3.0, False, "failed")
    found = of_gate(gate)
    assert len(found) == 20_000
    doc = sarif.document(gate, found, tmp_path)
    assert [len(run["results"]) for run in doc["runs"]] == [5000] * 4
    prints = fingerprints(found, file_lines(tmp_path))
    report, left = codequality.document(found, prints)
    assert len(report) == 20_000 and left == 0 and len(set(prints)) == 20_000
    head, parts = stepsummary.sections(gate, ROOT, found)
    text, cut = stepsummary.fit(head, parts, stepsummary.LIMIT, ".parex/report.md")
    assert cut and len(text.encode()) <= stepsummary.LIMIT
    candidates = github.check_annotations(gate, ROOT)
    candidates += github.finding_annotations(found, {r.name: r for r in results})
    chosen = github.select(candidates, AnnotationLimits())
    assert chosen.emitted == 21 and len(chosen.left_out) == 20_004 - 20
