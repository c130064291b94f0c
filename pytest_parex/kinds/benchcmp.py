"""Compare a pytest-benchmark ``--benchmark-json`` run with a baseline.

Pure functions over already-measured numbers: no timing happens here, so the
verdict is reproducible from the two JSON files alone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "STATS",
    "Comparison",
    "Threshold",
    "compare",
    "load_benchmarks",
    "parse_threshold",
]

# Only location statistics: "stddev got 10% worse" is not a slowdown, and
# ``rounds`` depends on the machine's speed rather than the code's.
STATS = ("min", "max", "mean", "median")
# What load_benchmarks keeps from each benchmark's ``stats`` (the rest, like the
# raw ``data`` samples, can be large and is not needed for a comparison).
KEPT_STATS = ("min", "max", "mean", "median", "stddev", "rounds")

_THRESHOLD = re.compile(r"^\s*(?:(?P<stat>[A-Za-z]+)\s*:)?\s*(?P<value>[0-9]*\.?[0-9]+)\s*%\s*$")


@dataclass(frozen=True)
class Threshold:
    """A regression limit: *stat* may grow by at most *percent* percent."""

    stat: str
    percent: float

    def __str__(self) -> str:
        return f"{self.stat}:{_number(self.percent)}%"


def parse_threshold(spec: str) -> Threshold:
    """Parse ``"mean:10%"``; ``"10%"`` alone means the mean.

    The ``%`` is required so that ``mean:0.1`` cannot be silently read as
    either 0.1% or 10%.

    Raises:
        ValueError: with a message naming the expected form and allowed stats.
    """
    match = _THRESHOLD.match(spec)
    if match is None:
        raise ValueError(
            f"invalid benchmark threshold {spec!r}: expected STAT:PERCENT%, e.g. 'mean:10%'"
            f" (STAT is one of {', '.join(STATS)})"
        )
    stat = (match["stat"] or "mean").lower()
    if stat not in STATS:
        raise ValueError(
            f"invalid benchmark threshold {spec!r}: unknown statistic {stat!r}"
            f" (expected one of {', '.join(STATS)})"
        )
    return Threshold(stat, float(match["value"]))


def load_benchmarks(source: str | Path | Mapping[str, object]) -> dict[str, dict[str, float]]:
    """Map each benchmark's ``fullname`` (or ``name``) to its stats.

    *source* is a path, the JSON text itself (recognised by its leading
    ``{``), or the already decoded document.

    Raises:
        ValueError: when the document is not pytest-benchmark JSON.
        OSError: when the path cannot be read.
    """
    if isinstance(source, Mapping):
        document: object = source
    else:
        text = source if isinstance(source, str) and source.lstrip().startswith("{") else None
        if text is None:
            text = Path(source).read_text(encoding="utf-8")
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"benchmark JSON is not valid JSON: {exc}") from exc
    benchmarks = document.get("benchmarks") if isinstance(document, Mapping) else None
    if not isinstance(benchmarks, list):
        raise ValueError("not pytest-benchmark JSON: no 'benchmarks' list")
    result: dict[str, dict[str, float]] = {}
    for entry in benchmarks:
        if not isinstance(entry, Mapping):
            continue
        name = entry.get("fullname") or entry.get("name")
        stats = entry.get("stats")
        if not isinstance(name, str) or not isinstance(stats, Mapping):
            continue  # a benchmark that errored has no stats: nothing to compare
        result[name] = {
            key: float(value)
            for key in KEPT_STATS
            if isinstance(value := stats.get(key), int | float) and not isinstance(value, bool)
        }
    return result


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`; changes are in percent (``+34.0`` = 34% slower)."""

    threshold: Threshold
    changes: dict[str, float]
    regressions: list[tuple[str, float]]  # worst first
    worst: tuple[str, float] | None
    new: list[str]
    missing: list[str]
    count: int = 0  # benchmarks in the current run
    # Display names, see label(); filled by compare().
    labels: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when no benchmark regressed beyond the threshold."""
        return not self.regressions

    def label(self, name: str) -> str:
        """Short display name: the test name, or the full id when that is ambiguous."""
        return self.labels.get(name, name)

    def detail(self) -> str:
        """One line for the summary table."""
        limit = f"limit {_number(self.threshold.percent)}%"
        if self.regressions:
            name, change = self.regressions[0]
            text = f"{_percent(change)} on {self.label(name)} ({self.threshold.stat}), {limit}"
            others = len(self.regressions) - 1
            return f"{text}; {others} more over the limit" if others else text
        counted = _plural(self.count, "benchmark")
        if self.worst is None:
            return f"{counted} (no baseline)" if self.count else counted
        name, change = self.worst
        parts = [f"{counted}, worst {_percent(change)} on {self.label(name)}"]
        parts += [f"{len(self.new)} new"] if self.new else []
        parts += [f"{len(self.missing)} missing"] if self.missing else []
        return ", ".join(parts)


def compare(
    current: Mapping[str, Mapping[str, float]],
    baseline: Mapping[str, Mapping[str, float]],
    threshold: Threshold,
) -> Comparison:
    """Compare *current* against *baseline* on ``threshold.stat``.

    A benchmark regresses when its change is strictly above the limit. A
    benchmark whose baseline value is zero and current value is not has an
    infinite change (it can only have been a broken measurement before).
    """
    stat = threshold.stat
    changes: dict[str, float] = {}
    for name in sorted(current):
        now, before = current[name].get(stat), baseline.get(name, {}).get(stat)
        if now is None or before is None:
            continue
        if before > 0:
            changes[name] = (now / before - 1.0) * 100.0
        else:
            changes[name] = 0.0 if now == before else math.inf
    # Sort by change, then name, so that equal changes are reported stably.
    ranked = sorted(changes.items(), key=lambda item: (-item[1], item[0]))
    return Comparison(
        threshold=threshold,
        changes=changes,
        regressions=[item for item in ranked if item[1] > threshold.percent],
        worst=ranked[0] if ranked else None,
        new=sorted(set(current) - set(baseline)),
        missing=sorted(set(baseline) - set(current)),
        count=len(current),
        labels=_short_labels(current),
    )


def _short_labels(names: Mapping[str, object]) -> dict[str, str]:
    """``tests/test_x.py::test_parse`` -> ``test_parse`` unless two share that name."""
    short = {name: name.rsplit("::", 1)[-1] for name in names}
    taken: dict[str, int] = {}
    for label in short.values():
        taken[label] = taken.get(label, 0) + 1
    return {name: label if taken[label] == 1 else name for name, label in short.items()}


def _number(value: float) -> str:
    """``10.0`` -> ``10``, ``0.5`` -> ``0.5``: limits are shown as the user wrote them."""
    return f"{value:g}"


def _percent(change: float) -> str:
    """Signed, whole percent from 10% up, one decimal below (``+34%``, ``+3%``, ``+0.4%``)."""
    if math.isinf(change):
        return "+inf%" if change > 0 else "-inf%"
    text = f"{change:+.0f}" if abs(change) >= 10 else f"{change:+.1f}".replace(".0", "")
    return f"{text}%"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}" if count else f"no {noun}s"
