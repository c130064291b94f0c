"""A plugin for the child pytest of one shard of a ``tests`` check
(``-p pytest_parex.child.shard --parex-shard 2/3 --parex-shard-durations FILE``).

Every shard collects the whole suite and keeps its share of the test *files* (of the tests
themselves when there are fewer files than shards, or of a file that alone outweighs a shard's
share: :func:`units`), split by :func:`split` on the durations the gate remembered. Every
shard reads the same durations file, so the shares are disjoint and together cover every
selected test.

The split must be identical in every shard's process (and on every machine that computes it),
so nothing here depends on hash or set order.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest


def _shard(text: str) -> tuple[int, int]:
    try:
        index, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N like 2/3, got {text!r}") from None
    if not 1 <= index <= total:
        raise argparse.ArgumentTypeError(f"expected 1 <= I <= N in I/N, got {text!r}")
    return index, total


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parex-shard", "test sharding (pytest-parex)")
    group.addoption(
        "--parex-shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="Run only the I-th of N shards of the selected test files",
    )
    group.addoption(
        "--parex-shard-durations",
        default=None,
        metavar="PATH",
        help="JSON object file -> seconds used to balance the shards",
    )


def _durations(path: str | None, section: str) -> Mapping[str, Any]:
    """One section of the durations file; damaged or missing means "no data" (the split
    treats values that are not finite non-negative numbers as unknown)."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = data.get(section) if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("parex_shard")
    if shard is None:
        return
    index, total = shard
    path = config.getoption("parex_shard_durations")
    unit, weights = units(
        [item.nodeid for item in items],
        total,
        _durations(path, "files"),
        _durations(path, "tests"),
    )
    shares = split(sorted(set(unit.values())), total, weights)
    mine = set(shares[index - 1])
    kept = [item for item in items if unit[item.nodeid] in mine]
    dropped = [item for item in items if unit[item.nodeid] not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


# ---------------------------------------------------------------------------- the split


def _weights(names: Sequence[str], durations: Mapping[str, Any] | None) -> dict[str, float]:
    """Duration of every unit; unknown ones get the mean of the known ones.

    The mean (rather than 0) keeps new tests from all piling onto one shard;
    when nothing is known every unit weighs 1.0, i.e. balance by count.
    NaN, infinite and negative timings are treated as unknown: they would
    make the greedy choice meaningless.
    """
    known = {
        unit: float(durations[unit])
        for unit in names
        if durations is not None and _known(durations, unit)
    }
    default = math.fsum(known.values()) / len(known) if known else 1.0
    return {unit: known.get(unit, default) for unit in names}


def units(
    nodeids: Sequence[str],
    n: int,
    files: Mapping[str, Any] | None = None,
    tests: Mapping[str, Any] | None = None,
) -> tuple[dict[str, str], dict[str, float]]:
    """The unit every node id is shared out in, and every unit's weight (seconds).

    A test file is one unit, so its module- and class-scoped fixtures are set up once: when
    there are at least *n* files. A file whose remembered duration alone is more than a
    shard's share (the total over *n*) would hold one shard back whatever the split, so its
    tests become units of their own (weighed on their remembered durations; unknown ones get
    the mean of the file's known ones, or an equal part of the file). With fewer files than
    shards every test is a unit.
    """
    groups = group_by_file(nodeids)
    if len(groups) < n:
        every = sorted(set(nodeids))
        return {nodeid: nodeid for nodeid in nodeids}, _weights(every, tests)
    file_weights = _weights(sorted(groups), files)
    share = math.fsum(file_weights.values()) / n
    unit: dict[str, str] = {}
    weights: dict[str, float] = {}
    for file, ids in groups.items():
        own = sorted(set(ids))
        if n == 1 or len(own) == 1 or file_weights[file] <= share:
            unit.update(dict.fromkeys(ids, file))
            weights[file] = file_weights[file]
            continue
        unit.update({nodeid: nodeid for nodeid in ids})
        if any(_known(tests, nodeid) for nodeid in own):
            weights.update(_weights(own, tests))
        else:
            weights.update(dict.fromkeys(own, file_weights[file] / len(own)))
    return unit, weights


def _known(durations: Mapping[str, Any] | None, unit: str) -> bool:
    value = durations.get(unit) if durations is not None else None
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def split(
    units: Sequence[str], n: int, durations: Mapping[str, Any] | None = None
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
