"""What the scheduler would do, without running anything (pure): the same
:class:`~pytest_parex.dispatch.Dispatcher` driven on a virtual clock, every check taking its
expected time. ``--parex-plan`` prints it; the in-process run takes its order; the worker
count is chosen with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pytest_parex import cpubound, graph
from pytest_parex.config import ParexConfig
from pytest_parex.dispatch import Dispatcher, Run
from pytest_parex.output.text import sanitize, seconds
from pytest_parex.results import CACHED, Status

NO_DATA = "no data"
DEFAULT_DURATION = 1.0
"""What a check is expected to take when nothing is known: all weigh the same."""


def expected_durations(
    config: ParexConfig, remembered: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, str]]:
    """Each check's expected duration -- remembered from earlier runs > its ``expected`` key >
    :data:`DEFAULT_DURATION` -- and where that figure came from."""
    out: dict[str, float] = {}
    sources: dict[str, str] = {}
    for check in config.checks:
        if check.name in remembered:
            out[check.name], sources[check.name] = remembered[check.name], "last runs"
        elif check.expected is not None:
            out[check.name], sources[check.name] = check.expected, "expected key"
        else:
            out[check.name], sources[check.name] = DEFAULT_DURATION, NO_DATA
    return out, sources


@dataclass(frozen=True)
class PlannedRun:
    name: str
    agent: str
    worker: str
    start: float
    end: float
    before: str = ""
    """The exclusive check this run was backfilled before, if it was."""


@dataclass(frozen=True)
class Plan:
    runs: tuple[PlannedRun, ...]
    makespan: float
    workers: int
    backfill: bool = True
    """Whether this plan lets checks backfill beside a waiting exclusive check."""

    def waves(self) -> list[list[PlannedRun]]:
        """Runs grouped by the simulated moment they start."""
        out: dict[float, list[PlannedRun]] = {}
        for run in self.runs:
            out.setdefault(round(run.start, 6), []).append(run)
        return [out[k] for k in sorted(out)]


_EPSILON = 1e-9


def simulate(
    config: ParexConfig,
    expected: Mapping[str, float],
    workers: int,
    done: Mapping[str, Status] | None = None,
    *,
    cpu: Mapping[str, float] | None = None,
    cores: int = 0,
    backfill: bool | None = None,
) -> Plan:
    """Run the dispatcher on a virtual clock, every check taking its expected time; ``done``
    checks (replayed passes) are decided before it starts.

    ``cpu`` and ``cores`` are the CPU shares and cores of :class:`Dispatcher`. ``backfill``
    None plans with backfilling unless planning without it finishes sooner: each backfill
    leaves the exclusive check's start where it was, but starting work earlier can still make
    a greedy schedule longer later on (Graham's anomalies), rarely and by little. A run takes
    the same decision from the same plan (see ``GateRun.dispatcher``), so plan and run agree.
    """
    if backfill is None:
        plan = simulate(config, expected, workers, done, cpu=cpu, cores=cores, backfill=True)
        if not any(r.before for r in plan.runs):
            return plan
        plain = simulate(config, expected, workers, done, cpu=cpu, cores=cores, backfill=False)
        return plain if plain.makespan < plan.makespan - _EPSILON else plan
    dispatcher = Dispatcher(
        config, expected, done or {}, cpu=cpu or {}, cores=cores, backfill=backfill
    )
    for i in range(workers):
        dispatcher.add_worker(f"w{i}")  # as local agent slots are called
    now = 0.0
    ends: dict[str, float] = {}
    runs: list[PlannedRun] = []
    while not dispatcher.finished:
        for action in dispatcher.assign(now):
            if isinstance(action, Run):
                end = now + dispatcher.expected_duration(action.name)
                ends[action.name] = end
                agent = dispatcher.checks[action.name].agent
                runs.append(PlannedRun(action.name, agent, action.worker, now, end, action.before))
        if not ends:
            break
        name = min(ends, key=lambda n: (ends[n], n))
        now = ends.pop(name)
        dispatcher.finish(name, Status.PASSED)
    return Plan(tuple(runs), now, workers, backfill)


def render(
    config: ParexConfig,
    expected: Mapping[str, float],
    workers: int,
    sources: Mapping[str, str],
    reasons: Mapping[str, str] | None = None,
    *,
    cpu: Mapping[str, float] | None = None,
    cores: int = 0,
) -> str:
    """The plan: agents and workers, order, waves, serialised conflicts, predictions.

    ``sources`` says where each expected duration came from ("last runs", "expected", ...);
    ``reasons`` (the result cache) why each check runs, or "cached" when it is replayed;
    ``cpu`` and ``cores``: remembered CPU shares and the cores they must fit on.
    """
    checks = config.checks
    if not checks:
        return "no checks selected\n"
    reasons = reasons or {}
    cached = [c.name for c in checks if reasons.get(c.name) == CACHED]
    plan = simulate(
        config, expected, workers, dict.fromkeys(cached, Status.PASSED), cpu=cpu, cores=cores
    )
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
    cpu_note = cpubound.note([c.name for c in checks], cpu or {}, cores)
    if cpu_note:
        out.append(cpu_note)
    out.append("agents:")
    per_agent: dict[str, list[str]] = {}
    for c in checks:
        per_agent.setdefault(c.agent, []).append(c.name)
    for agent in used:
        names = per_agent[agent]
        workers_of = ", ".join(sorted(per_worker.get(agent, []))) or "-"
        out.append(
            f"  {sanitize(agent)} x{instances[agent]}: {', '.join(names)}  (workers: {workers_of})"
        )
    by_name = {c.name: c for c in checks}
    out.append("order (longest remaining critical path first):")
    for i, run in enumerate(sorted(plan.runs, key=lambda r: (r.start, -rank[r.name])), 1):
        check = by_name[run.name]
        strict = [n for n in check.needs if n not in check.after]
        needs = f", needs {', '.join(strict)}" if strict else ""
        needs += f", after {', '.join(check.after)}" if check.after else ""
        flags = ", exclusive" if check.exclusive else ""
        guess = seconds(expected.get(run.name, DEFAULT_DURATION))
        why = f"; runs: {sanitize(reasons[run.name])}" if run.name in reasons else ""
        out.append(
            f"  {i}. {run.name} [{sanitize(run.agent)}] expected {guess}"
            f" ({sources.get(run.name, 'default')}), path {seconds(rank[run.name])}{needs}{flags}"
            f"{why}"
        )
    if cached:
        saved = sum(expected.get(n, DEFAULT_DURATION) for n in cached)
        out.append(f"cached (replayed, not run, ~{seconds(saved)} saved): {', '.join(cached)}")
    out.append("waves:")
    for wave in plan.waves():
        at = wave[0].start
        out.append(f"  at {seconds(at)}: " + ", ".join(_placed(r) for r in wave))
    serialised = graph.serialised(checks)
    if serialised:
        out.append("serialised:")
        out.extend(f"  {sanitize(line)}" for line in serialised)
    running = [c for c in checks if c.name not in cached]
    total = sum(expected.get(c.name, DEFAULT_DURATION) for c in running)
    critical = graph.critical_path(running, expected)
    ideal = f"{total / critical:.2f}x" if critical > 0 else "-"
    planned = f"{total / plan.makespan:.2f}x" if plan.makespan > 0 else "-"
    out.append(
        f"predicted: wall {seconds(plan.makespan)}, sequential {seconds(total)}, "
        f"critical path {seconds(critical)}, ideal speedup {ideal} "
        f"(sum / critical path), planned speedup {planned}"
    )
    return "\n".join(out) + "\n"


def _placed(run: PlannedRun) -> str:
    # A backfilled check is expected to end before the exclusive check it ran beside can start.
    return f"{run.name}@{run.worker}" + (f" (backfill before {run.before})" if run.before else "")
