"""CPU-bound checks (pure): what share of a core each check keeps busy, remembered between runs,
and how many of them fit on the cores at once.

A check's *CPU share* is its CPU seconds per second of wall time: ~0 for ``sleep 2``, ~1 for a
single-threaded computation, more for a check that runs processes side by side. Five CPU-bound
checks started together on two cores do not finish sooner than two at a time, they only stretch
each other (and the xdist workers that run them compete for the same cores); so the scheduler
starts a check only while the shares of the running checks plus its own fit on the cores.

Except at the end: once the CPU-bound checks not yet started could no longer fill the cores,
they start beside the running ones. Waiting would leave cores idle for the whole last check:
five 2-second computations on two cores take 6 s two at a time, 5 s when the fifth joins the
third and fourth.

Shares are measured from the results of a run (``cpu`` / ``duration``), corrected for the
contention of that run (see :func:`measured`), and remembered in pytest's cache under their own
key, beside the durations: a cache written before shares existed simply has no data, and a
check without data counts as not CPU-bound.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Iterable, Mapping, Sequence

from pytest_parex.mintree import MinTree
from pytest_parex.results import CheckResult, Status

CPU_KEY = "parex/cpu-shares"
"""pytest cache key: ``{check name: CPU share}``."""

NEGLIGIBLE = 0.25
"""Shares below this count as 0: a check that mostly waits (I/O, sleep, network) hardly
competes for a core, and a cap on such checks would only serialise them."""

SLACK = 1.1
"""The running shares may exceed the cores by 10%: shares are measured, not exact (two
single-threaded checks measure 1.02 each and still fit on 2 cores)."""

HUNGRY = 0.5
"""A check that used at least half of the core it could get counts as competing for cores."""

KEEP = 0.3
"""Weight of the remembered share against a new measurement (as for durations)."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows: no affinity API
        return max(1, os.cpu_count() or 1)


def effective(share: float) -> float:
    """The share the scheduler counts for a check (0 when negligible)."""
    return share if share >= NEGLIGIBLE else 0.0


def limit(cores: int) -> float:
    """Most total share that may run at once; unlimited when the cores are unknown (0)."""
    return cores * SLACK if cores > 0 else math.inf


def fills(pending: float, cores: int) -> bool:
    """Whether CPU-bound checks of this total share, not yet started, can still fill the cores
    (then they wait for room; else they are the last ones, and start)."""
    return pending >= cores / SLACK


def system_load() -> float:
    """Runnable processes on this machine, averaged over the last minute (0 when unknown)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return 0.0


def measured(results: Sequence[CheckResult], cores: int, load: float = 0.0) -> dict[str, float]:
    """Each check's CPU share in this run, corrected for contention.

    When more CPU-hungry checks ran side by side than there are cores, each got only part of a
    core: five single-threaded computations on two cores measure 0.4 each, which would make them
    look I/O-bound and let all five start again next time. So a check that used at least half of
    what it could get (``HUNGRY``; with n checks beside it on c cores, c / n of a core) has its
    share scaled up by how crowded the cores were: the time-weighted number of hungry checks
    running (itself included) divided by the cores, or ``load`` (the machine's load average:
    other processes crowd the cores too) divided by the cores, whichever is more. Scaling can
    show that a check wanted a whole core, never more: more than one core shows unscaled.
    """
    spans = [
        (r, r.start, r.end)
        for r in results
        if r.start is not None
        and r.end is not None
        and r.end > r.start
        and r.duration > 0
        and r.status is not Status.CANCELLED
    ]
    rate = {r.name: r.cpu / r.duration for r, _, _ in spans}
    intervals = _Runs(sorted((s, e) for _, s, e in spans))
    hungry: dict[str, bool] = {}
    for r, start, end in spans:
        around = max(intervals.crowd(start, end), load, 1.0)
        hungry[r.name] = rate[r.name] >= HUNGRY * min(1.0, cores / around) and cores > 0
    competing = _Runs(sorted((s, e) for r, s, e in spans if hungry[r.name]))
    out: dict[str, float] = {}
    for r, start, end in spans:
        share = rate[r.name]
        if hungry[r.name] and share < 1.0:
            around = max(competing.crowd(start, end), load)
            share = min(1.0, share * max(1.0, around / cores))
        out[r.name] = round(share, 3)
    return out


class _Runs:
    """Runs (start, end), sorted, and how crowded a stretch of time was: the runs that overlap
    it are found through a tree of their ends (not by looking at all that started before
    it -- all of them, when one run lasted the whole gate)."""

    def __init__(self, intervals: list[tuple[float, float]]) -> None:
        self.intervals = intervals
        self.starts = [s for s, _ in intervals]
        self.ends = MinTree(len(intervals))  # negated: the first run ending after a moment
        for i, (_, e) in enumerate(intervals):
            self.ends[i] = -e

    def crowd(self, start: float, end: float) -> float:
        """Time-weighted number of the runs running during [start, end]."""
        hi = bisect.bisect_left(self.starts, end)
        runs = self.intervals
        # The overlaps in the runs' order, as one sum: the same figure as summing over every
        # run that started before ``end`` (the others add exact zeros).
        busy = sum(
            max(0.0, min(end, runs[i][1]) - max(start, runs[i][0]))
            for i in self.ends.each(0, hi, lambda v: -v > start)
        )
        return busy / (end - start)


def merge(previous: Mapping[str, float], new: Mapping[str, float]) -> dict[str, float]:
    """Remembered shares updated with a new run's: a weighted mean where both exist."""
    out = dict(previous)
    for name, share in new.items():
        old = previous.get(name)
        out[name] = round(share if old is None else KEEP * old + (1 - KEEP) * share, 3)
    return out


def _fitting(shares: Iterable[float], cores: int) -> tuple[int, int]:
    """How many of these (non-negligible) shares fit on the cores at once, smallest first (a
    check too big for the cores still runs, alone); and how many more may join them at the end,
    as the last ones (see :func:`fills`)."""
    ordered = sorted(shares)
    total, fit = 0.0, 0
    for share in ordered:
        if fit and total + share > limit(cores):
            break
        total += share
        fit += 1
    pending, last = 0.0, 0
    for share in ordered[fit:]:
        if fills(pending + share, cores):
            break
        pending += share
        last += 1
    return fit, last


def busy_at_most(names: Iterable[str], shares: Mapping[str, float], cores: int) -> int:
    """How many of ``names`` can ever run at once under the CPU constraint: every check that is
    not CPU-bound, plus as many CPU-bound ones as fit on the cores."""
    names = list(names)
    bound = [effective(shares.get(n, 0.0)) for n in names]
    hungry = [s for s in bound if s > 0]
    if cores <= 0 or not hungry:
        return len(names)
    return len(names) - len(hungry) + sum(_fitting(hungry, cores))


def note(names: Iterable[str], shares: Mapping[str, float], cores: int) -> str:
    """For the header and the plan, when the cores cap the CPU-bound checks; else empty."""
    hungry = [s for s in (effective(shares.get(n, 0.0)) for n in names) if s > 0]
    if cores <= 0 or not hungry:
        return ""
    fit, last = _fitting(hungry, cores)
    if fit >= len(hungry):
        return ""
    text = f"CPU-bound checks: at most {fit} at once ({cores} core{'s' if cores != 1 else ''})"
    return text + (f", {fit + last} for the last ones" if last else "")
