"""Split test units into balanced shards.

The result must be identical on every machine that computes it (CI jobs each
compute their own shard), so nothing here depends on hash or set order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence

__all__ = ["group_by_file", "split"]


def _weights(units: Sequence[str], durations: Mapping[str, float] | None) -> dict[str, float]:
    """Duration of every unit; unknown ones get the mean of the known ones.

    The mean (rather than 0) keeps new tests from all piling onto one shard;
    when nothing is known every unit weighs 1.0, i.e. balance by count.
    NaN, infinite and negative timings are treated as unknown: they would
    make the greedy choice meaningless.
    """
    known = {
        unit: float(value)
        for unit in units
        if durations is not None
        and (value := durations.get(unit)) is not None
        and math.isfinite(value)
        and value >= 0
    }
    default = math.fsum(known.values()) / len(known) if known else 1.0
    return {unit: known.get(unit, default) for unit in units}


def split(
    units: Sequence[str], n: int, durations: Mapping[str, float] | None = None
) -> list[list[str]]:
    """Split *units* into *n* shards of about equal total duration.

    Longest-processing-time-first greedy: units are taken longest first (ties
    by name) and each goes to the shard with the least total so far (ties to
    the one with fewer units, then the lowest index), which is within 4/3 of
    the optimal makespan. Duplicate units are kept once. Each shard is sorted;
    when *n* exceeds the number of units the trailing shards are empty and the
    caller decides what to do.

    Raises:
        ValueError: if *n* is less than 1.
    """
    if n < 1:
        raise ValueError(f"the number of shards must be at least 1, got {n}")
    unique = sorted(set(units))  # sorted: set order must not leak into the result
    weights = _weights(unique, durations)
    order = sorted(unique, key=lambda unit: (-weights[unit], unit))
    shards: list[list[str]] = [[] for _ in range(n)]
    # (load, count, index): the heap pops the least loaded shard; the count
    # spreads zero-duration units instead of stacking them on one shard.
    heap = [(0.0, 0, index) for index in range(n)]
    for unit in order:
        load, count, index = heapq.heappop(heap)
        shards[index].append(unit)
        heapq.heappush(heap, (load + weights[unit], count + 1, index))
    for shard in shards:
        shard.sort()
    # Greedy fills the lowest indexes first, so with fewer units than shards the
    # empty ones are already at the end.
    return shards


def group_by_file(nodeids: Sequence[str]) -> dict[str, list[str]]:
    """Group node ids by their file part (before the first ``::``), in input order."""
    groups: dict[str, list[str]] = {}
    for nodeid in nodeids:
        groups.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)
    return groups
