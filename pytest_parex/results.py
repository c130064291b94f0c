"""The result of a check and of the whole gate: plain frozen data, sent as builtins between
processes (xdist worker -> controller) and read by the reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Statuses a check can end in.
PASSED = "passed"
FLAKY = "flaky"  # passed on a retry
FAILED = "failed"
TIMEOUT = "timeout"
ERROR = "error"  # could not run, or its agent crashed
SKIPPED = "skipped"  # a dependency did not pass
CANCELLED = "cancelled"  # stopped (or never started) because the gate was already decided


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


GOOD = frozenset({PASSED, FLAKY})
BAD = frozenset({FAILED, TIMEOUT, ERROR})
STATUSES = (PASSED, FLAKY, FAILED, TIMEOUT, ERROR, SKIPPED, CANCELLED)


@dataclass(frozen=True)
class CheckResult:
    """What became of one check."""

    name: str
    agent: str
    status: str
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

    @property
    def ok(self) -> bool:
        return self.status in GOOD

    @property
    def bad(self) -> bool:
        return self.status in BAD

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["figures"] = dict(self.figures)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class GateResult:
    """The gate as a whole, computed from the check results."""

    results: tuple[CheckResult, ...]
    wall: float
    """Seconds from the gate's start to its end."""
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

    @property
    def sequential(self) -> float:
        """Sum of the check durations: what one-after-another would have taken."""
        return sum(r.duration for r in self.results)

    @property
    def cpu(self) -> float:
        return sum(r.cpu for r in self.results)

    @property
    def speedup(self) -> float:
        return self.sequential / self.wall if self.wall > 0 else 0.0

    @property
    def bound(self) -> float:
        """The best speedup the dependency graph allows: sum / critical path."""
        return self.sequential / self.critical_path if self.critical_path > 0 else 0.0
