"""What became of a check and of the whole gate (pure): statuses, results, the verdict.

Results are frozen data, sent as builtins between processes (xdist worker -> controller, see
:meth:`CheckResult.to_dict`) and read by every report. This is the one module that knows the
status words; everything else compares against :class:`Status`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from pytest_parex import graph

if TYPE_CHECKING:
    from pytest_parex.config import Check, ParexConfig


class Status(str, enum.Enum):
    """How a check ended. A ``str`` so that reports, JSON and xdist see the plain word."""

    PASSED = "passed"
    FLAKY = "flaky"
    """Passed on a retry."""
    FAILED = "failed"
    TIMEOUT = "timeout"
    ERROR = "error"
    """Could not run, or its agent crashed."""
    SKIPPED = "skipped"
    """A dependency did not pass."""
    CANCELLED = "cancelled"
    """Stopped (or never started) because the gate was already decided, or interrupted."""

    def __str__(self) -> str:
        return self.value

    @property
    def past(self) -> str:
        """The status as a verb phrase: "timed out", "had an error", "was skipped"."""
        return _PAST.get(self, self.value)


_PAST = {
    Status.TIMEOUT: "timed out",
    Status.ERROR: "had an error",
    Status.SKIPPED: "was skipped",
    Status.CANCELLED: "was cancelled",
}

CACHED = "cached"
"""What the summary says of a replayed pass (its status stays :attr:`Status.PASSED`)."""
GOOD = frozenset({Status.PASSED, Status.FLAKY})
BAD = frozenset({Status.FAILED, Status.TIMEOUT, Status.ERROR})
STATUSES = tuple(Status)


def durations(raw: object) -> dict[str, float]:
    """Remembered ``{name: seconds}`` read back from JSON (a cache file, a report): entries that
    are not non-negative numbers are dropped, so a damaged file means "no data", not a crash."""
    if not isinstance(raw, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in raw.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
    }


@dataclass(frozen=True)
class CheckResult:
    """What became of one check."""

    name: str
    agent: str
    status: Status
    duration: float = 0.0
    """Seconds the check's process(es) ran, all attempts together."""
    start: float | None = None
    """Wall-clock (``time.time()``) start of the first attempt; None when it never ran."""
    end: float | None = None
    kind: str = "command"
    detail: str = ""
    """One short phrase for the summary: "45 passed, 2 skipped", "3 issues", "exit code 1"."""
    reason: str = ""
    """Why it was skipped, cancelled or errored."""
    attempts: int = 0
    worker: str = ""
    log_path: str = ""
    returncode: int | None = None
    blocking: bool = True
    cpu: float = 0.0
    """CPU seconds (user + system) of the check's processes, when known."""
    figures: Mapping[str, Any] = field(default_factory=dict)
    """Kind-specific numbers (counts, issues, ...), builtins only."""
    summary: str = ""
    """What the kind made of the output (first issues, regressions, leaks), for the report."""
    tail: str = ""
    """The last lines of the check's output (for the failure report)."""
    cached: bool = False
    """Not run: its last pass was replayed (same definition, same inputs). ``duration``,
    ``detail`` and ``figures`` are that pass's; ``start`` is None."""
    inputs_key: str = ""
    """The result cache's key of what it ran on, as the xdist worker that ran it computed it
    ("" elsewhere): the controller records a worker's pass only when it equals its own."""

    def __post_init__(self) -> None:
        # Results built from builtins (another process, a report) carry the plain word.
        object.__setattr__(self, "status", Status(self.status))

    @property
    def ok(self) -> bool:
        return self.status in GOOD

    @property
    def bad(self) -> bool:
        return self.status in BAD

    @property
    def ran(self) -> bool:
        return self.start is not None

    @property
    def label(self) -> str:
        """The status as the summary shows it: "cached" for a replayed pass (a failure the
        watch loop keeps, its inputs unchanged, still says "failed")."""
        return CACHED if self.cached and self.ok else self.status.value

    @property
    def measured(self) -> bool:
        """Whether ``duration`` says something: it ran now, or its replayed pass did."""
        return self.start is not None or self.cached

    def to_dict(self) -> dict[str, Any]:
        """Builtins only: what crosses from an xdist worker to the controller."""
        data = asdict(self)
        data["status"] = self.status.value
        data["figures"] = dict(self.figures)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def unrun(check: Check, status: Status, reason: str, **extra: Any) -> CheckResult:
    """The result of a check that did not run (to its end): skipped, cancelled, an error."""
    return CheckResult(
        check.name,
        check.agent,
        status,
        kind=check.kind,
        reason=reason,
        blocking=check.blocking,
        **extra,
    )


@dataclass(frozen=True)
class GateResult:
    """The gate as a whole, computed from the check results."""

    results: tuple[CheckResult, ...]
    wall: float
    """Seconds from the gate's start (its configuration, once pytest has started) to its end."""
    verdict: bool
    headline: str
    """"passed", "failed: lint failed", "passed, with 1 non-blocking failure", ..."""
    gate: str | int = "all"
    on_failure: str = "best-effort"
    critical_path: float = 0.0
    """Longest chain of measured durations through ``needs``."""
    serialised: tuple[str, ...] = ()
    """Conflicts the scheduler serialised, as sentences."""
    interrupted: bool = False
    workers: int = 0
    parallel: bool = True
    process_wall: float = 0.0
    """Seconds from the pytest process's start to the gate's end (0 when unknown): what the
    user waited for, start-up included."""

    @property
    def sequential(self) -> float:
        """Sum of the durations of the checks that ran: what one-after-another would have
        taken (replayed passes took no time now)."""
        return sum(r.duration for r in self.results if not r.cached)

    @property
    def cached(self) -> int:
        return sum(1 for r in self.results if r.cached)

    @property
    def saved(self) -> float:
        """Seconds the replayed passes took when they ran."""
        return sum(r.duration for r in self.results if r.cached)

    @property
    def cpu(self) -> float:
        return sum(r.cpu for r in self.results if not r.cached)

    @property
    def waited(self) -> float:
        """The wall time the speedup is measured against: since the process started when that
        is known (so pytest's own start-up never flatters it), else since the gate started."""
        return max(self.process_wall, self.wall)

    @property
    def speedup(self) -> float:
        return self.sequential / self.waited if self.waited > 0 else 0.0

    @property
    def bound(self) -> float:
        """The best speedup the dependency graph allows: sum / critical path."""
        return self.sequential / self.critical_path if self.critical_path > 0 else 0.0


def verdict(
    config: ParexConfig,
    results: Sequence[CheckResult],
    *,
    interrupted: bool = False,
    problems: Sequence[str] = (),
) -> tuple[bool, str]:
    """The gate's verdict and its one-line headline, from the final check results.

    ``problems`` are reasons the run cannot account for every selected check (a worker that
    could not run them, a check removed from the collection): any of them fails the gate,
    whatever the checks that did run say, and the first one is the headline."""
    good = [r for r in results if r.ok]
    flaky = [r for r in results if r.status is Status.FLAKY]
    if interrupted:
        return False, "interrupted"
    if problems:
        others = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        return False, f"failed: {problems[0]}{others}"
    gate = config.gate
    if gate == "any":
        if good:
            return True, f"passed: {good[0].name} passed (gate any)"
        return False, "failed: no check passed (gate any)"
    if isinstance(gate, int):
        if len(good) >= gate:
            return True, f"passed: {len(good)} of {len(results)} checks passed (gate {gate})"
        return False, f"failed: {len(good)} of {len(results)} checks passed, {gate} needed"
    blocking_bad = [r for r in results if r.blocking and not r.ok]
    if blocking_bad:
        shown = [r for r in blocking_bad if r.bad] or blocking_bad
        parts = [f"{r.name} {r.status.past}" for r in shown[:3]]
        more = len(shown) - 3
        return False, "failed: " + ", ".join(parts) + (f" and {more} more" if more > 0 else "")
    minor = [r for r in results if not r.blocking and not r.ok]
    headline = "passed"
    extras = []
    if minor:
        extras.append(f"{len(minor)} non-blocking failure{'s' if len(minor) != 1 else ''}")
    if flaky:
        extras.append(f"{len(flaky)} flaky")
    if extras:
        headline += ", with " + " and ".join(extras)
    return True, headline


def gate_result(
    config: ParexConfig,
    results: Sequence[CheckResult],
    *,
    wall: float,
    interrupted: bool = False,
    workers: int = 0,
    parallel: bool = True,
    process_wall: float = 0.0,
    problems: Sequence[str] = (),
) -> GateResult:
    """Everything the summary says about a finished run."""
    ok, headline = verdict(config, results, interrupted=interrupted, problems=problems)
    measured = {r.name: r.duration for r in results if r.ran}
    ran = [c for c in config.checks if c.name in measured]
    return GateResult(
        results=tuple(results),
        wall=wall,
        verdict=ok,
        headline=headline,
        gate=config.gate,
        on_failure=config.on_failure,
        critical_path=graph.critical_path(ran, measured),
        serialised=tuple(graph.serialised(config.checks)),
        interrupted=interrupted,
        workers=workers,
        parallel=parallel,
        process_wall=process_wall,
    )
