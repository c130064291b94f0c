"""A plugin for the child pytest of one shard of a ``tests`` check
(``-p pytest_parex.child.shard --parex-shard 2/3 --parex-shard-plan FILE``), and the split
itself.

The gate writes one plan file, before any shard starts, and hands it to every shard. Every
shard collects the whole suite; what it keeps depends on how the shards run:

* **Side by side on this machine** (local agents, lean ``-n`` workers: the shards see the
  run's directory) they take units as they go (:class:`Taker`, :func:`plan_as_they_go`):
  units biggest first -- by remembered durations, else committed ones, else file sizes --
  each taken by exactly one shard before its first test runs. A unit is a test file (its
  module and class fixtures set up once), or one test of a file that alone outweighs a
  shard's share (one big ``test_more.py``). Whatever a guess in advance gets wrong (a run
  slower than the last, a CPU shared with a type checker, random examples) the shards even
  out: they end together, up to one unit.
* **On ``--tx`` workers** (no shared directory) the split is made in advance (:func:`plan`,
  :func:`assign`): which shard each test file (or test) goes to. A test's shard depends only
  on the plan and the test itself, so two shards whose collections differ (a test file
  edited between them) still never both run, nor both drop, a test the plan knows:

  * a file the plan names goes whole to its shard;
  * a heavy file's remembered tests go to the shards the plan names, the others by a
    stable hash of their node id, in the proportions the plan gives;
  * files the plan does not know (new since the durations were taken, or no plan at all)
    are split among the shards by the greedy split below, from the loads the plan left, as
    every shard collected them.

Nothing here depends on hash or set order: the split is the same in every shard's process
and on every machine.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_parex.child import SHARE, SUITE
from pytest_parex.compat import tear_down_for

PLAN_VERSION = 1
NOTABLE = 0.001
"""A heavy file's test that weighs at least this part of a shard's share is ordered by its
own remembered duration when shards take units as they go (the plan names it)."""
TAKER = pytest.StashKey["Taker"]()


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
        help="Run only the I-th of N shards of the selected tests",
    )
    group.addoption(
        "--parex-shard-plan",
        default=None,
        metavar="PATH",
        help="The gate's plan of the split (JSON): which shard each file or test goes to",
    )


def read_plan(path: str | None) -> Mapping[str, Any]:
    """The plan file; damaged or missing means "no plan" (:func:`assign` splits what it
    collected by count then, as every shard does alike)."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("parex_shard")
    if shard is None:
        return
    index, total = shard
    config.stash[SUITE] = len(items)
    plan_data = read_plan(config.getoption("parex_shard_plan"))
    usable = plan_data.get("version") == PLAN_VERSION and plan_data.get("shards") == total
    claims = plan_data.get("dynamic") if usable else None
    if isinstance(claims, str) and claims:
        weights = plan_data.get("weights")
        weights = weights if isinstance(weights, dict) else {}
        tests = plan_data.get("tests")
        tests = tests if isinstance(tests, dict) else {}
        if hasattr(config, "workerinput"):
            # An xdist worker of this shard: xdist, not this plugin, says what runs next, so
            # the shards cannot take files as they go. Every shard computes the same plan on
            # the same weights instead.
            plan_data = plan(weights, tests, total, source=str(plan_data.get("source", "")))
        else:
            heavy = plan_data.get("split")
            default = _seconds(plan_data.get("unit"))
            taker = Taker(
                Path(claims),
                index - 1,
                weights,
                {f for f in heavy if isinstance(f, str)} if isinstance(heavy, list) else set(),
                tests,
                default if default is not None else 0.0,
            )
            items[:] = taker.order(items)
            config.stash[TAKER] = taker
            return
    mine = assign([item.nodeid for item in items], total, plan_data)
    kept = [item for item in items if mine[item.nodeid] == index - 1]
    dropped = [item for item in items if mine[item.nodeid] != index - 1]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    taker = session.config.stash.get(TAKER, None)
    if taker is not None and taker.looped:  # the report's "collected": this shard's share
        session.config.stash[SHARE] = taker.ran


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """pytest's own loop, over the tests this shard takes as it goes: each test runs with
    the next test this shard *would* run as its ``nextitem`` (so fixtures are torn down as in
    a plain run of the same tests) -- the next one of a unit it holds, else of a unit no
    shard took yet. That unit is taken only once the test is done: a shard holds one unit at
    a time, so another shard is free to take the next one meanwhile (then the next test's
    setup first tears down what the named one would have kept, see
    :func:`pytest_parex.compat.tear_down_for`)."""
    taker = session.config.stash.get(TAKER, None)
    if taker is None:
        return None
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        errors = session.testsfailed
        raise session.Interrupted(f"{errors} error{'s' if errors != 1 else ''} during collection")
    if session.config.option.collectonly:
        return True  # nothing taken, nothing run: the share is what was collected
    taker.looped = True
    items = session.items
    current = taker.next_mine(items, 0)
    while current is not None:
        named = taker.peek(items, current + 1)
        item = items[current]
        nextitem = items[named] if named is not None else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
        following = taker.next_mine(items, current + 1)
        if following is not None and following != named:
            taker.stale = items[following]
        current = following
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    taker = item.config.stash.get(TAKER, None)
    if taker is not None and taker.stale is item:
        taker.stale = None
        tear_down_for(item)


# ---------------------------------------------------------------------------- taking as it goes


class Taker:
    """The split made as the shards go (what a guess in advance gets wrong -- a small file
    of slow hypothesis tests, a run slower than the one the durations came from -- one shard
    would wait for): every shard collects the whole suite, runs its units (files; a heavy
    file's tests one by one) biggest first, and before a unit's first test takes it -- a hard
    link named after the unit in the run's claims directory, which exists at most once. A
    unit another shard took is passed over. So each unit runs in exactly one shard, whatever
    each collected, and a shard that is done with its unit takes the next one left: the
    shards end together, up to one unit."""

    def __init__(
        self,
        claims: Path,
        index: int,
        weights: Mapping[str, Any],
        heavy: set[str],
        tests: Mapping[str, Any] | None = None,
        default: float = 0.0,
    ) -> None:
        self.claims = claims
        self.index = index
        self.weights = weights
        self.heavy = heavy
        self.tests: Mapping[str, Any] = tests or {}
        """Remembered durations of a heavy file's notable tests (the rest share what is left
        of the file's weight)."""
        self.default = default
        """What a file the plan does not know weighs (the mean of the ones it knows)."""
        self.taken: dict[str, bool] = {}
        self.ran = 0
        """Tests of this shard's share (it took their unit)."""
        self.looped = False
        """Whether the shard went through its tests (not with ``--co``)."""
        self.stale: pytest.Item | None = None
        """The next test to run, when the one before was torn down for another."""
        self._mark: Path | None = None

    def unit(self, nodeid: str) -> str:
        file = nodeid.split("::", 1)[0]
        return nodeid if file in self.heavy else file

    def order(self, items: Sequence[pytest.Item]) -> list[pytest.Item]:
        """Units biggest first, each unit's tests in collection order. A heavy file's tests
        weigh their remembered duration, those it does not know an equal part of what is left
        of the file's weight; units of equal weight keep their collection order (a heavy
        file's small tests run in their file's order, so its class fixtures are set up once
        per shard)."""
        groups: dict[str, list[pytest.Item]] = {}
        for item in items:
            groups.setdefault(self.unit(item.nodeid), []).append(item)
        counts: dict[str, int] = {}
        known: dict[str, float] = {}
        for unit in groups:
            file = unit.split("::", 1)[0]
            if unit != file and _known(self.tests, unit):
                known[file] = known.get(file, 0.0) + float(self.tests[unit])
            else:
                counts[file] = counts.get(file, 0) + 1

        def weight(unit: str) -> float:
            file = unit.split("::", 1)[0]
            if unit != file and _known(self.tests, unit):
                return float(self.tests[unit])
            whole = float(self.weights[file]) if _known(self.weights, file) else self.default
            return max(0.0, whole - known.get(file, 0.0)) / counts[file]

        ordered = sorted(groups, key=lambda u: -weight(u))  # stable: collection order
        return [item for unit in ordered for item in groups[unit]]

    def mine(self, nodeid: str) -> bool:
        """Whether this shard runs ``nodeid`` (taking its unit if no shard has yet)."""
        unit = self.unit(nodeid)
        if unit not in self.taken:
            self.taken[unit] = self._take(unit)
        return self.taken[unit]

    def next_mine(self, items: Sequence[pytest.Item], start: int) -> int | None:
        """The index of the next test from ``start`` on that this shard runs."""
        for index in range(start, len(items)):
            if self.mine(items[index].nodeid):
                self.ran += 1
                return index
        return None

    def peek(self, items: Sequence[pytest.Item], start: int) -> int | None:
        """The index of the next test from ``start`` on that this shard would run -- of a unit
        it holds, or of one no shard took yet -- without taking anything."""
        for index in range(start, len(items)):
            unit = self.unit(items[index].nodeid)
            held = self.taken.get(unit)
            if held or (held is None and not self._claim(unit).exists()):
                return index
        return None

    def _claim(self, unit: str) -> Path:
        digest = hashlib.blake2b(unit.encode("utf-8", "surrogatepass"), digest_size=12)
        return self.claims / digest.hexdigest()

    def _take(self, unit: str) -> bool:
        claim = self._claim(unit)
        if self._mark is None:
            self.claims.mkdir(parents=True, exist_ok=True)
            mark = self.claims / f".shard-{self.index}-{os.getpid()}"
            mark.write_text(str(self.index), encoding="ascii")
            self._mark = mark
        try:
            os.link(self._mark, claim)  # atomic: exactly one shard's link is made
            return True
        except FileExistsError:
            pass
        try:
            return claim.read_text(encoding="ascii").strip() == str(self.index)
        except OSError:
            return False


# ---------------------------------------------------------------------------- the plan


def plan(
    files: Mapping[str, Any], tests: Mapping[str, Any], n: int, *, source: str = ""
) -> dict[str, Any]:
    """The split of a suite into ``n`` shards, from the weight of each test file (seconds,
    or on a first run bytes: only their ratios count) and of the tests known one by one.

    Files are whole units unless one alone outweighs a shard's share (the total over ``n``):
    then its known tests are units, and the rest of its weight is shared out in the
    proportions (``fractions``) that even the shards out best -- water-filling after the
    greedy split of the whole units. ``loads`` is each shard's planned weight, ``unit`` the
    mean weight of a file (what a file the plan does not know is taken to weigh).
    """
    if n < 1:
        raise ValueError(f"the number of shards must be at least 1, got {n}")
    weights, _, heavy = _file_weights(files, n)
    known_tests = {str(t): float(tests[t]) for t in sorted(tests) if _known(tests, t)}
    total = math.fsum(weights.values())
    units: dict[str, float] = {f: w for f, w in weights.items() if f not in heavy}
    heavy_set = set(heavy)
    remainder = 0.0
    for file in heavy:
        mine = {t: w for t, w in known_tests.items() if t.split("::", 1)[0] == file}
        units.update(mine)
        remainder += max(0.0, weights[file] - math.fsum(mine.values()))
    shards = split(sorted(units), n, units)
    loads = [math.fsum(units[u] for u in shard) for shard in shards]
    fractions = water_fill(loads, remainder)
    final = [load + remainder * f for load, f in zip(loads, fractions, strict=True)]
    placed_files: dict[str, int] = {}
    placed_tests: dict[str, int] = {}
    for index, shard in enumerate(shards):
        for unit in shard:
            if "::" in unit and unit.split("::", 1)[0] in heavy_set:
                placed_tests[unit] = index
            else:
                placed_files[unit] = index
    return {
        "version": PLAN_VERSION,
        "shards": n,
        "source": source,
        "files": placed_files,
        "tests": placed_tests,
        "split": heavy,
        "fractions": fractions,
        "loads": final,
        "unit": total / len(weights) if weights else 1.0,
    }


def plan_as_they_go(
    files: Mapping[str, Any],
    n: int,
    claims: Path,
    *,
    tests: Mapping[str, Any] | None = None,
    source: str = "",
) -> dict[str, Any]:
    """The plan of shards that take units as they go (:class:`Taker`) from ``claims``,
    biggest first by the weight of each file (seconds, or on a first run bytes); a file that
    alone outweighs a shard's share is taken test by test, its notable tests (``tests``: at
    least :data:`NOTABLE` of a share) first, by their remembered durations."""
    weights, share, heavy = _file_weights(files, n)
    heavy_set = set(heavy)
    known = tests or {}
    notable = {
        str(t): float(known[t])
        for t in sorted(known)
        if str(t).split("::", 1)[0] in heavy_set
        and _known(known, t)
        and float(known[t]) >= share * NOTABLE
    }
    return {
        "version": PLAN_VERSION,
        "shards": n,
        "source": source,
        "dynamic": str(claims),
        "weights": weights,
        "split": heavy,
        "tests": notable,
        "unit": math.fsum(weights.values()) / len(weights) if weights else 0.0,
    }


def _file_weights(files: Mapping[str, Any], n: int) -> tuple[dict[str, float], float, list[str]]:
    """The files' known weights (in name order), a shard's share of their total, and the
    heavy files: those that alone outweigh a share (none with one shard)."""
    weights = {str(f): float(files[f]) for f in sorted(files) if _known(files, f)}
    share = math.fsum(weights.values()) / n
    return weights, share, sorted(f for f, w in weights.items() if n > 1 and w > share)


def water_fill(loads: Sequence[float], amount: float) -> list[float]:
    """How to share ``amount`` (divisible at will) out over shards already holding
    ``loads`` so that the fullest ends as low as possible: the fraction of it each gets.
    Nothing to share: equal parts (for tests no plan knew)."""
    n = len(loads)
    if amount <= 0 or n == 0:
        return [1.0 / n] * n if n else []
    order = sorted(range(n), key=lambda i: (loads[i], i))
    level = loads[order[0]]
    left = amount
    filled = 1
    while filled < n:
        step = (loads[order[filled]] - level) * filled
        if step >= left:
            break
        left -= step
        level = loads[order[filled]]
        filled += 1
    level += left / filled
    return [max(0.0, level - load) / amount for load in loads]


def position(nodeid: str) -> float:
    """A stable place in [0, 1) for a node id (the same on every machine and run)."""
    digest = hashlib.blake2b(nodeid.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def by_fraction(nodeid: str, fractions: Sequence[float]) -> int:
    """The shard whose slice of [0, 1) holds the node id's :func:`position`."""
    where = position(nodeid)
    total = math.fsum(fractions) or 1.0
    edge = 0.0
    last = max((i for i, f in enumerate(fractions) if f > 0), default=0)
    for index, fraction in enumerate(fractions):
        edge += fraction / total
        if fraction > 0 and where < edge:
            return index
    return last


def _index(value: Any, n: int) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n
    return value if ok else None


def assign(nodeids: Sequence[str], n: int, plan_data: Mapping[str, Any]) -> dict[str, int]:
    """The shard (0-based) of every node id, from the gate's plan (see the module's doc).

    A plan for another number of shards, or none, knows nothing: the node ids are then
    split as collected (:func:`units`, :func:`split`), by count."""
    usable = plan_data.get("version") == PLAN_VERSION and plan_data.get("shards") == n
    files: Mapping[str, Any] = plan_data.get("files", {}) if usable else {}
    tests: Mapping[str, Any] = plan_data.get("tests", {}) if usable else {}
    files = files if isinstance(files, dict) else {}
    tests = tests if isinstance(tests, dict) else {}
    heavy = plan_data.get("split", []) if usable else []
    heavy_set = {f for f in heavy if isinstance(f, str)} if isinstance(heavy, list) else set()
    fractions = _numbers(plan_data.get("fractions"), n) if usable else None
    loads = _numbers(plan_data.get("loads"), n) if usable else None
    unit = plan_data.get("unit") if usable else None
    out: dict[str, int] = {}
    unknown: list[str] = []
    for nodeid in nodeids:
        file = nodeid.split("::", 1)[0]
        index = _index(tests.get(nodeid), n)
        if index is None and file in heavy_set:
            index = by_fraction(nodeid, fractions or [1.0] * n)
        if index is None:
            index = _index(files.get(file), n)
        if index is None:
            unknown.append(nodeid)
        else:
            out[nodeid] = index
    if not unknown:
        return out
    if not files and not tests and not heavy_set:
        mapping, weights = units(unknown, n)
        start = None
    else:
        # Files the plan did not know: whole, each weighing a known file's mean.
        groups = group_by_file(unknown)
        mapping = {nodeid: file for file, ids in groups.items() for nodeid in ids}
        each = _seconds(unit) or 1.0
        weights = dict.fromkeys(groups, each)
        start = loads
    shares = split(sorted(set(mapping.values())), n, weights, loads=start)
    where = {u: index for index, shard in enumerate(shares) for u in shard}
    for nodeid in unknown:
        out[nodeid] = where[mapping[nodeid]]
    return out


def _numbers(value: Any, n: int) -> list[float] | None:
    if not isinstance(value, list) or len(value) != n:
        return None
    numbers = [_seconds(v) for v in value]
    return None if None in numbers else [float(v) for v in value]


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


def _seconds(value: Any) -> float | None:
    """``value`` as seconds: a finite, non-negative number (not a bool); else None."""
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
    return float(value) if ok else None


def _known(durations: Mapping[str, Any] | None, unit: str) -> bool:
    return _seconds(durations.get(unit) if durations is not None else None) is not None


def split(
    units: Sequence[str],
    n: int,
    durations: Mapping[str, Any] | None = None,
    *,
    loads: Sequence[float] | None = None,
) -> list[list[str]]:
    """Split *units* into *n* shards of about equal total duration.

    Longest-processing-time-first greedy: units are taken longest first (ties
    by name) and each goes to the shard with the least total so far (ties to
    the one with fewer units, then the lowest index), which is within 4/3 of
    the optimal makespan. Duplicate units are kept once. Each shard is sorted;
    when *n* exceeds the number of units the trailing shards are empty and the
    caller decides what to do. *loads*: what each shard holds already.

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
    start = list(loads) if loads is not None and len(loads) == n else [0.0] * n
    heap = [(start[index], 0, index) for index in range(n)]
    heapq.heapify(heap)
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
