"""``--parex-plan``: what the scheduler would do, without running anything (pure text)."""

from __future__ import annotations

from collections.abc import Mapping

from pytest_parex import graph
from pytest_parex.config import ParexConfig
from pytest_parex.dispatch import simulate
from pytest_parex.output.summary import sanitize, seconds


def render(
    config: ParexConfig,
    expected: Mapping[str, float],
    workers: int,
    sources: Mapping[str, str],
) -> str:
    """The plan: agents and workers, order, waves, serialised conflicts, predictions.

    ``sources`` says where each expected duration came from ("last runs", "expected", ...).
    """
    checks = config.checks
    if not checks:
        return "no checks selected\n"
    plan = simulate(config, expected, workers)
    rank = graph.ranks(checks, expected)
    instances = config.agent_instances
    out: list[str] = []
    used = sorted({c.agent for c in checks})
    per_worker: dict[str, list[str]] = {}
    for run in plan.runs:
        per_worker.setdefault(run.agent, [])
        if run.worker not in per_worker[run.agent]:
            per_worker[run.agent].append(run.worker)
    out.append(f"workers: {workers} (max-parallel {config.max_parallel})")
    out.append("agents:")
    for agent in used:
        names = [c.name for c in checks if c.agent == agent]
        workers_of = ", ".join(sorted(per_worker.get(agent, []))) or "-"
        out.append(
            f"  {sanitize(agent)} x{instances[agent]}: {', '.join(names)}  (workers: {workers_of})"
        )
    out.append("order (longest remaining critical path first):")
    for i, run in enumerate(sorted(plan.runs, key=lambda r: (r.start, -rank[r.name])), 1):
        check = config.check(run.name)
        needs = f", needs {', '.join(check.needs)}" if check.needs else ""
        flags = ", exclusive" if check.exclusive else ""
        guess = seconds(expected.get(run.name, 1.0))
        out.append(
            f"  {i}. {run.name} [{sanitize(run.agent)}] expected {guess}"
            f" ({sources.get(run.name, 'default')}), path {seconds(rank[run.name])}{needs}{flags}"
        )
    out.append("waves:")
    for wave in plan.waves():
        at = wave[0].start
        out.append(f"  at {seconds(at)}: " + ", ".join(f"{r.name}@{r.worker}" for r in wave))
    conflicts = graph.conflicts(checks)
    if conflicts:
        out.append("serialised:")
        out.extend(f"  {sanitize(line)}" for line in graph.describe(conflicts))
    total = sum(expected.get(c.name, 1.0) for c in checks)
    critical = graph.critical_path(checks, expected)
    out.append(
        f"predicted: wall {seconds(plan.makespan)}, sequential {seconds(total)}, "
        f"critical path {seconds(critical)}, ideal speedup {total / critical:.2f}x "
        f"(sum / critical path), planned speedup {total / plan.makespan:.2f}x"
    )
    return "\n".join(out) + "\n"
