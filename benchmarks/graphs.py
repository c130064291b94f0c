"""How every algorithm over checks scales with the size of the graph (not part of the suite).

    python benchmarks/graphs.py [--checks 3000] [--only chain,reverse,dag,wide,exclusive]

Pure modules only, no process is started: for each graph shape, the seconds each step takes
on one thread -- parsing (with the cycle check), ranks and critical chain, conflicts, the plan,
a dispatcher driven to the end with a failure in the middle (best effort, fail-fast, a
threshold gate), the verdict, the summary, the timeline (text, SVG, HTML), the JSON report,
GitHub output, the live block, the result cache's "runs together" and the CPU shares
remembered at the end. A step that is quadratic shows as seconds where the others show
milliseconds. ``PYTHONPATH=OLD_CHECKOUT python benchmarks/graphs.py`` measures another
version of the package (steps it lacks are left out).

Shapes: ``chain`` (each check needs the one before it in config order), ``reverse`` (each
needs the one after it: every failure propagates against config order), ``dag`` (up to three
random needs each), ``wide`` (no needs, five agents), ``exclusive`` (a chain beside
independent checks, every tenth exclusive: backfilling).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_parex import config as config_mod
from pytest_parex import cpubound, graph, plan
from pytest_parex.cache.incremental import Decision, _runs_together
from pytest_parex.config import DEFAULT_AGENTS, ParexConfig
from pytest_parex.dispatch import Dispatcher, Run, Skip
from pytest_parex.output import github, jsonreport, live, summary, timeline
from pytest_parex.results import CheckResult, GateResult, Status, gate_result, unrun

AGENTS = tuple(sorted(DEFAULT_AGENTS))
SHAPES = ("chain", "reverse", "dag", "wide", "exclusive")


def name(i: int) -> str:
    return f"c{i:05d}"


def table(shape: str, n: int, seed: int = 1) -> dict[str, Any]:
    """A ``[tool.parex]`` table of ``n`` command checks of ``shape``."""
    rng = random.Random(seed)
    checks: dict[str, dict[str, Any]] = {}
    for i in range(n):
        check: dict[str, Any] = {"run": ["true"], "agent": AGENTS[i % len(AGENTS)]}
        if shape == "chain" and i:
            check["needs"] = [name(i - 1)]
        elif shape == "reverse" and i < n - 1:
            check["needs"] = [name(i + 1)]
        elif shape == "dag" and i:
            check["needs"] = sorted({name(rng.randrange(i)) for _ in range(rng.randint(0, 3))})
        elif shape == "exclusive":
            if i % 2 and i > 1:
                check["needs"] = [name(i - 2)]
            check["exclusive"] = i % 10 == 0
        checks[name(i)] = check
    return {"max-parallel": 5, "agents": dict.fromkeys(AGENTS, 2), "checks": checks}


def drive(
    config: ParexConfig, failing: set[str], workers: int = 5
) -> tuple[list[CheckResult], int]:
    """The dispatcher on a virtual clock, every check taking 1 s; ``failing`` checks fail.
    Returns every check's result (config order) and the number of actions."""
    d = Dispatcher(config, {})
    for i in range(workers):
        d.add_worker(f"gw{i}")
    now, actions = 0.0, 0
    ends: dict[str, float] = {}
    results: dict[str, CheckResult] = {}
    while not d.finished:
        for action in d.assign(now):
            actions += 1
            if isinstance(action, Run):
                ends[action.name] = now + 1.0
                results[action.name] = CheckResult(
                    action.name,
                    config.check(action.name).agent,
                    Status.FAILED if action.name in failing else Status.PASSED,
                    duration=1.0,
                    start=1000.0 + now,
                    end=1001.0 + now,
                    worker=action.worker,
                    detail="exit code 1" if action.name in failing else "",
                    tail="boom\n" if action.name in failing else "",
                )
            elif isinstance(action, Skip):
                check = config.check(action.name)
                results[action.name] = unrun(check, action.status, action.reason)
        if not ends:
            break
        done = min(ends, key=lambda k: (ends[k], k))
        now = ends.pop(done)
        actions += len(d.finish(done, results[done].status))
    out = [results.get(c.name) or unrun(c, Status.ERROR, "did not run") for c in config.checks]
    return out, actions


def timed(label: str, fn: Callable[[], Any], limit: float) -> Any:
    start = time.perf_counter()
    value = fn()
    took = time.perf_counter() - start
    flag = "  <-- slow" if took > limit else ""
    print(f"  {label:<44} {took:8.3f}s{flag}", flush=True)
    return value


def measure(shape: str, n: int, limit: float) -> None:
    print(f"{shape}: {n} checks", flush=True)
    raw = table(shape, n)
    config = timed("config.parse", lambda: config_mod.parse(raw, "bench"), limit)
    needs: Mapping[str, Sequence[str]] = {c.name: c.needs for c in config.checks}
    expected = {c.name: 1.0 for c in config.checks}
    timed("graph.ranks", lambda: graph.ranks(config.checks, expected), limit)
    names = [c.name for c in config.checks]
    timed("graph.critical_chain", lambda: graph.critical_chain(names, needs, expected), limit)
    timed("graph.conflicts (every pair)", lambda: graph.conflicts(config.checks), limit)
    if hasattr(graph, "serialised"):
        timed("graph.serialised", lambda: graph.serialised(config.checks), limit)
    timed("plan.simulate (5 workers)", lambda: plan.simulate(config, expected, 5), limit)
    sources = dict.fromkeys(names, plan.NO_DATA)
    timed("plan.render", lambda: plan.render(config, expected, 5, sources), limit)
    middle = {name(n // 2)}
    results, _ = timed("dispatcher, best effort", lambda: drive(config, middle), limit)
    ff = replace(config, on_failure="fail-fast")
    timed("dispatcher, fail-fast", lambda: drive(ff, middle), limit)
    threshold = replace(config, gate=n - n // 4)
    every_third = {c.name for i, c in enumerate(config.checks) if i % 3 == 0}
    timed("dispatcher, gate N, a third failing", lambda: drive(threshold, every_third), limit)
    gate: GateResult = timed(
        "results.gate_result", lambda: gate_result(config, results, wall=float(n)), limit
    )
    root = Path.cwd()
    timed("summary.render plain", lambda: summary.render(gate, root), limit)
    timed("summary.render rich", lambda: summary.render(gate, root, color=True), limit)
    tl = timed("timeline.build", lambda: timeline.build(gate, 1000.0, needs), limit)
    timed("timeline.render_text", lambda: timeline.render_text(tl), limit)
    timed("timeline.render_svg", lambda: timeline.render_svg(tl), limit)
    timed("timeline.render_html", lambda: timeline.render_html(tl), limit)
    timed(
        "jsonreport.document + dumps",
        lambda: jsonreport.dumps(
            jsonreport.document(
                gate, origin=1000.0, root=root, config_path=root / "pyproject.toml", needs=needs
            )
        ),
        limit,
    )
    timed("github.annotation_lines", lambda: list(github.annotation_lines(gate, root)), limit)
    timed("github.step_summary", lambda: github.step_summary(gate, root), limit)
    progress = live.Progress(clock=lambda: 5.0)
    for r in results[: n // 2]:
        progress.started(r.name, r.agent, r.worker or "main")
        progress.finished(r)
    pairs = [(c.name, c.agent) for c in config.checks]
    rows = timed("live.Progress.rows", lambda: progress.rows(pairs), limit)
    timed(
        "live.render_block",
        lambda: live.render_block(rows, 5.0, root, width=120, height=40),
        limit,
    )
    timed("live.final_line", lambda: live.final_line(rows, 5.0), limit)

    replay = CheckResult("x", "a", Status.PASSED)
    decisions = {c.name: Decision(c.name, "cached", None, replay) for c in config.checks}
    decisions[name(n // 2)] = Decision(name(n // 2), "src/a.py changed")
    timed("incremental._runs_together", lambda: _runs_together(config.checks, decisions), limit)
    timed("cpubound.measured", lambda: cpubound.measured(results, 2), limit)
    long_one = [replace(results[0], start=0.0, end=1e6, duration=1e6, cpu=5e5), *results[1:]]
    timed("cpubound.measured, one run spans all", lambda: cpubound.measured(long_one, 2), limit)
    print(flush=True)


def cycle(n: int, limit: float) -> None:
    print(f"cycle: {n} checks", flush=True)
    raw = table("reverse", n)
    raw["checks"][name(n - 1)]["needs"] = [name(0)]

    def parse() -> str:
        try:
            config_mod.parse(raw, "bench")
        except config_mod.ConfigError as exc:
            return str(exc)
        return ""

    message = timed("config.parse -> cycle error", parse, limit)
    print(f"  message: {len(message)} characters, {message.count(chr(10)) + 1} line", flush=True)
    print(flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--only", default=",".join((*SHAPES, "cycle")))
    parser.add_argument("--slow", type=float, default=0.5, help="flag steps above this")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(1000)  # the default: what a user's process has
    for shape in args.only.split(","):
        if shape == "cycle":
            cycle(args.checks, args.slow)
        else:
            measure(shape, args.checks, args.slow)
    return 0


if __name__ == "__main__":
    sys.exit(main())
