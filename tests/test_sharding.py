"""Tests for pytest_parex.child.sharding: balanced, deterministic shards."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_parex.child.shard import (
    Taker,
    assign,
    by_fraction,
    group_by_file,
    plan,
    plan_as_they_go,
    position,
    split,
    units,
    water_fill,
)
from pytest_parex.kinds.base import PytestLayout
from pytest_parex.kinds.tests import sizes_of_test_files


def _load(shard: list[str], durations: dict[str, float]) -> float:
    return sum(durations[unit] for unit in shard)


def test_split_balances_by_duration() -> None:
    durations = {"a": 8.0, "b": 7.0, "c": 6.0, "d": 5.0, "e": 4.0}
    shards = split(sorted(durations), 2, durations)
    # LPT: a->0, b->1, c->1 (7<8), d->0 (8<13), e->0 (13<=13, lower index).
    assert shards == [["a", "d", "e"], ["b", "c"]]
    assert [_load(shard, durations) for shard in shards] == [17.0, 13.0]


def test_split_longest_first_beats_input_order() -> None:
    # "zbig" sorts last by name; taken first by duration it gets a shard of its own.
    durations = {"t1": 1.0, "t2": 1.0, "t3": 1.0, "t4": 1.0, "zbig": 4.0}
    shards = split(["t1", "t2", "t3", "t4", "zbig"], 2, durations)
    assert shards == [["zbig"], ["t1", "t2", "t3", "t4"]]


def test_split_unknown_durations_get_the_mean() -> None:
    # Known mean is (10 + 2) / 2 = 6, so "new" weighs 6 and lands next to "small".
    durations = {"long": 10.0, "small": 2.0, "unrelated": 1000.0}
    shards = split(["long", "small", "new"], 2, durations)
    assert shards == [["long"], ["new", "small"]]


def test_split_without_durations_balances_by_count() -> None:
    shards = split([f"t{i}" for i in range(7)], 3)
    assert sorted(len(shard) for shard in shards) == [2, 2, 3]


def test_split_zero_durations_are_spread() -> None:
    units = [f"t{i}" for i in range(6)]
    shards = split(units, 3, dict.fromkeys(units, 0.0))
    assert [len(shard) for shard in shards] == [2, 2, 2]


def test_split_ignores_bad_durations() -> None:
    durations = {"a": float("nan"), "b": -5.0, "c": float("inf"), "d": 3.0}
    # Only "d" is usable: every unit weighs 3, so the split is by count.
    shards = split(["a", "b", "c", "d"], 2, durations)
    assert [len(shard) for shard in shards] == [2, 2]


def test_split_more_shards_than_units() -> None:
    assert split(["b", "a"], 4) == [["a"], ["b"], [], []]
    assert split([], 2) == [[], []]


def test_split_is_deterministic_and_order_independent() -> None:
    units = [f"tests/test_{i % 7}.py::test_{i}" for i in range(50)]
    durations = {unit: float(i % 5) for i, unit in enumerate(units)}
    first = split(units, 4, durations)
    assert split(list(reversed(units)), 4, durations) == first
    assert all(shard == sorted(shard) for shard in first)


def test_split_drops_duplicates() -> None:
    assert split(["a", "a", "b"], 1) == [["a", "b"]]


@pytest.mark.parametrize("n", [0, -1])
def test_split_rejects_bad_n(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split(["a"], n)


# database=None: no .hypothesis directory left in the checkout.
@settings(database=None)
@given(
    units=st.lists(st.text(min_size=1, max_size=8), max_size=40),
    n=st.integers(min_value=1, max_value=8),
    durations=st.dictionaries(
        st.text(min_size=1, max_size=8), st.floats(min_value=0, max_value=100), max_size=20
    ),
)
def test_split_partitions_exactly(units: list[str], n: int, durations: dict[str, float]) -> None:
    shards = split(units, n, durations)
    assert len(shards) == n
    flat = [unit for shard in shards for unit in shard]
    assert len(flat) == len(set(flat))  # no unit twice
    assert set(flat) == set(units)  # and none lost
    assert all(shard == sorted(shard) for shard in shards)
    # Empty shards only at the end.
    sizes = [len(shard) for shard in shards]
    assert sizes == sorted(sizes, key=lambda size: size == 0)


@settings(database=None)
@given(
    weights=st.lists(st.floats(min_value=0.1, max_value=100), min_size=1, max_size=30),
    n=st.integers(min_value=1, max_value=6),
)
def test_split_lpt_bound(weights: list[float], n: int) -> None:
    units = [f"u{i:02d}" for i in range(len(weights))]
    durations = dict(zip(units, weights, strict=True))
    loads = [_load(shard, durations) for shard in split(units, n, durations)]
    # Greedy guarantee: the largest shard exceeds the average by at most one unit.
    assert max(loads) <= sum(weights) / n + max(weights) + 1e-9


def test_group_by_file() -> None:
    nodeids = [
        "tests/test_b.py::test_one",
        "tests/test_a.py::TestX::test_two",
        "tests/test_b.py::test_three[1-2]",
        "tests/test_c.py",
        "tests/test_a.py::test_p[a::b]",
    ]
    assert group_by_file(nodeids) == {
        "tests/test_b.py": ["tests/test_b.py::test_one", "tests/test_b.py::test_three[1-2]"],
        "tests/test_a.py": ["tests/test_a.py::TestX::test_two", "tests/test_a.py::test_p[a::b]"],
        "tests/test_c.py": ["tests/test_c.py"],
    }
    assert list(group_by_file(nodeids)) == ["tests/test_b.py", "tests/test_a.py", "tests/test_c.py"]


# A suite like more-itertools: one file holds most of the time.
BIG = [f"tests/test_more.py::test_{i}" for i in range(6)]
SMALL = ["tests/test_a.py::test_x", "tests/test_b.py::test_y", "tests/test_b.py::test_z"]


def test_units_are_files_when_no_file_outweighs_a_share() -> None:
    files = {"tests/test_more.py": 3.0, "tests/test_a.py": 2.0, "tests/test_b.py": 2.0}
    unit, weights = units(BIG + SMALL, 2, files, {})
    assert set(unit.values()) == set(files)
    assert unit["tests/test_b.py::test_z"] == "tests/test_b.py"
    assert weights == files


def test_units_split_a_file_that_outweighs_a_share_into_its_tests() -> None:
    files = {"tests/test_more.py": 12.0, "tests/test_a.py": 1.0, "tests/test_b.py": 1.0}
    tests = {nodeid: 2.0 for nodeid in BIG}
    unit, weights = units(BIG + SMALL, 2, files, tests)
    assert all(unit[nodeid] == nodeid for nodeid in BIG)
    assert unit["tests/test_a.py::test_x"] == "tests/test_a.py"
    shards = split(sorted(set(unit.values())), 2, weights)
    # 14 s of work: 7 s a shard, where the file as one unit would have left 12 s against 2 s.
    assert [_load(shard, weights) for shard in shards] == [7.0, 7.0]


def test_units_share_a_heavy_file_equally_when_its_tests_are_unknown() -> None:
    files = {"tests/test_more.py": 12.0, "tests/test_a.py": 1.0, "tests/test_b.py": 1.0}
    # One test known: the others get its mean, the file is split.
    unit, weights = units(BIG + SMALL, 2, files, {BIG[0]: 4.0})
    assert all(unit[nodeid] == nodeid for nodeid in BIG)
    assert [weights[nodeid] for nodeid in BIG] == [4.0] * 6
    # None known: each gets an equal part of the file's 12 s.
    unit, weights = units(BIG + SMALL, 2, files, {})
    assert all(unit[nodeid] == nodeid for nodeid in BIG)
    assert [weights[nodeid] for nodeid in BIG] == [2.0] * 6
    assert weights["tests/test_b.py"] == 1.0


def test_units_without_durations_are_files_and_with_few_files_tests() -> None:
    unit, weights = units(BIG + SMALL, 2)
    assert set(unit.values()) == {"tests/test_more.py", "tests/test_a.py", "tests/test_b.py"}
    assert set(weights.values()) == {1.0}
    unit, _ = units(BIG, 2, {"tests/test_more.py": 50.0})
    assert all(unit[nodeid] == nodeid for nodeid in BIG)
    # One shard: nothing to balance, files stay whole.
    unit, _ = units(BIG + SMALL, 1, {"tests/test_more.py": 50.0})
    assert unit[BIG[0]] == "tests/test_more.py"


@settings(database=None)
@given(
    layout=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=8),
    n=st.integers(min_value=1, max_value=5),
    seconds=st.lists(st.floats(min_value=0, max_value=50), min_size=1, max_size=60),
)
def test_units_keep_a_file_whole_or_split_it_entirely(
    layout: list[int], n: int, seconds: list[float]
) -> None:
    nodeids = [f"t/f{f}.py::test_{t}" for f, count in enumerate(layout) for t in range(count)]
    tests = {nodeid: seconds[i % len(seconds)] for i, nodeid in enumerate(nodeids)}
    files = {file: sum(tests[i] for i in ids) for file, ids in group_by_file(nodeids).items()}
    unit, weights = units(nodeids, n, files, tests)
    assert set(unit) == set(nodeids)
    assert set(weights) == set(unit.values())
    for file in files:
        mine = {unit[nodeid] for nodeid in nodeids if nodeid.startswith(file + "::")}
        assert mine == {file} or all("::" in u for u in mine)
    # A file left whole weighs no more than a share (or is a single test, or there is one
    # shard), and a plan built on these units stays within one unit of the average.
    share = sum(files.values()) / n
    for file, count in zip(files, layout, strict=True):
        if file in weights:
            assert n == 1 or count == 1 or weights[file] <= share + 1e-9
    loads = [_load(shard, weights) for shard in split(sorted(weights), n, weights)]
    assert max(loads) <= sum(weights.values()) / n + max(weights.values()) + 1e-6


# ---------------------------------------------------------------------------- the gate's plan


def _shards_of(mapping: dict[str, int], n: int) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in range(n)]
    for nodeid, index in sorted(mapping.items()):
        out[index].append(nodeid)
    return out


def test_plan_places_whole_files_and_every_shard_follows_it() -> None:
    files = {"t/a.py": 5.0, "t/b.py": 3.0, "t/c.py": 2.0}
    table = plan(files, {}, 2, source="remembered durations")
    assert table["files"] == {"t/a.py": 0, "t/b.py": 1, "t/c.py": 1}
    assert table["loads"] == [5.0, 5.0] and table["split"] == []
    ids = ["t/a.py::x", "t/a.py::y", "t/b.py::z", "t/c.py::w"]
    assert _shards_of(assign(ids, 2, table), 2) == [
        ["t/a.py::x", "t/a.py::y"],
        ["t/b.py::z", "t/c.py::w"],
    ]


def test_plan_shares_a_heavy_file_out_in_the_proportions_that_even_the_shards() -> None:
    files = {"t/more.py": 12.0, "t/a.py": 1.0, "t/b.py": 1.0}
    table = plan(files, {}, 2)
    assert table["split"] == ["t/more.py"]
    assert table["fractions"] == [0.5, 0.5] and table["loads"] == [7.0, 7.0]
    # One of its tests known (4 s): a unit of its own; the rest evens the shards out.
    table = plan(files, {"t/more.py::t0": 4.0, "t/a.py::x": 1.0}, 2)
    assert table["tests"] == {"t/more.py::t0": 0}
    assert table["files"] == {"t/a.py": 1, "t/b.py": 1}
    assert table["fractions"] == [3 / 8, 5 / 8]
    assert table["loads"] == [7.0, 7.0]


def test_water_fill() -> None:
    assert water_fill([3.0, 0.0], 7.0) == [2 / 7, 5 / 7]
    assert water_fill([10.0, 0.0], 4.0) == [0.0, 1.0]
    assert water_fill([1.0, 1.0, 1.0], 0.0) == [1 / 3, 1 / 3, 1 / 3]


def test_by_fraction_is_stable_and_proportional() -> None:
    ids = [f"t/more.py::test_{i}" for i in range(4000)]
    first = [by_fraction(nodeid, [0.25, 0.75]) for nodeid in ids]
    assert first == [by_fraction(nodeid, [0.25, 0.75]) for nodeid in ids]
    assert 0.22 < first.count(0) / len(ids) < 0.28
    assert all(0.0 <= position(nodeid) < 1.0 for nodeid in ids[:50])
    # A shard with no part gets nothing.
    assert {by_fraction(nodeid, [0.0, 1.0, 0.0]) for nodeid in ids} == {1}


def test_assign_without_a_plan_splits_what_it_collected_by_count() -> None:
    ids = [f"t/f{i}.py::test" for i in range(5)]
    unit, weights = units(ids, 2)
    expected = split(sorted(set(unit.values())), 2, weights)
    for table in ({}, {"version": 1, "shards": 3, "files": {"t/f0.py": 2}}, {"version": 99}):
        got = _shards_of(assign(ids, 2, table), 2)
        assert got == [[f"{f}::test" for f in shard] for shard in expected], table


def test_files_the_plan_does_not_know_fill_the_lighter_shards() -> None:
    table = plan({"t/a.py": 3.0, "t/b.py": 2.0, "t/c.py": 2.0}, {}, 2)
    assert table["loads"] == [3.0, 4.0] and table["unit"] == 7 / 3
    ids = ["t/a.py::x", "t/b.py::y", "t/new.py::z", "t/newer.py::w"]
    mapping = assign(ids, 2, table)
    # Each new file weighs a known file's mean (7/3 s) and goes to the lighter shard.
    assert mapping["t/new.py::z"] == 0  # 3 < 4
    assert mapping["t/newer.py::w"] == 1  # 4 < 3 + 7/3


@settings(database=None)
@given(
    layout=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=8),
    n=st.integers(min_value=1, max_value=4),
    seconds=st.lists(st.floats(min_value=0, max_value=20), min_size=1, max_size=40),
    known=st.integers(min_value=0, max_value=3),
    edits=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_two_collections_with_one_plan_never_disagree_on_a_test_the_plan_knows(
    layout: list[int], n: int, seconds: list[float], known: int, edits: list[int]
) -> None:
    """A shard that collected before an edit and one that collected after: every test whose
    file (or itself) the plan names gets the same shard in both, so none runs nowhere and none
    twice; and every collected test gets exactly one shard in [0, n)."""
    ids = [f"t/f{f}.py::test_{t}" for f, count in enumerate(layout) for t in range(count)]
    tests = {nodeid: seconds[i % len(seconds)] for i, nodeid in enumerate(ids)}
    files = {file: sum(tests[i] for i in group) for file, group in group_by_file(ids).items()}
    table = plan(files, {k: v for i, (k, v) in enumerate(tests.items()) if i % 4 < known}, n)
    after = list(ids)
    for e in edits:  # add tests to known files, add files, drop tests
        if e % 3 == 0:
            after.append(f"t/f{e % len(layout)}.py::added_{e}")
        elif e % 3 == 1:
            after.append(f"t/new{e}.py::test")
        elif after:
            after.pop(e % len(after))
    before_map, after_map = assign(ids, n, table), assign(after, n, table)
    assert set(before_map) == set(ids) and set(after_map) == set(after)
    assert all(0 <= i < n for i in [*before_map.values(), *after_map.values()])
    planned = set(table["files"]) | set(table["split"])
    for nodeid in set(ids) & set(after):
        if nodeid.split("::")[0] in planned or nodeid in table["tests"]:
            assert before_map[nodeid] == after_map[nodeid], nodeid


@settings(database=None)
@given(
    weights=st.lists(st.floats(min_value=0.1, max_value=100), min_size=1, max_size=30),
    n=st.integers(min_value=1, max_value=6),
)
def test_plan_loads_stay_within_one_file_of_the_average(weights: list[float], n: int) -> None:
    files = {f"t/f{i:02d}.py": w for i, w in enumerate(weights)}
    table = plan(files, {}, n)
    total = sum(weights)
    assert abs(sum(table["loads"]) - total) < 1e-6 * max(1.0, total)
    light = [w for f, w in files.items() if f not in table["split"]]
    assert max(table["loads"]) <= total / n + max(light, default=0.0) + 1e-6


# ---------------------------------------------------------------------------- as they go


def test_shards_that_take_units_as_they_go_take_each_exactly_once(tmp_path: Path) -> None:
    sizes = {"t/big.py": 900.0, "t/a.py": 50.0, "t/b.py": 40.0}
    table = plan_as_they_go(sizes, 2, tmp_path / "claims", source="test file sizes")
    assert table["split"] == ["t/big.py"] and table["dynamic"] == str(tmp_path / "claims")
    ids = [*(f"t/big.py::test_{i}" for i in range(4)), "t/a.py::x", "t/a.py::y", "t/b.py::z"]
    one = Taker(tmp_path / "claims", 0, table["weights"], set(table["split"]))
    two = Taker(tmp_path / "claims", 1, table["weights"], set(table["split"]))
    assert [one.unit(i) for i in ids[:5]] == [*ids[:4], "t/a.py"]
    # Biggest unit first: big.py's tests (900 / 4 each), then a.py (50), then b.py (40);
    # units of equal weight in collection order.
    items = [cast(pytest.Item, SimpleNamespace(nodeid=i)) for i in reversed(ids)]
    assert [item.nodeid for item in one.order(items)] == [
        *reversed(ids[:4]),
        "t/a.py::y",
        "t/a.py::x",
        "t/b.py::z",
    ]
    # Interleaved as two processes would: each unit has one owner, and both agree.
    owners = {}
    for nodeid in ids:
        first, second = one.mine(nodeid), two.mine(nodeid)
        assert first != second, nodeid
        owners[nodeid] = 0 if first else 1
    assert owners["t/a.py::x"] == owners["t/a.py::y"]  # a file stays whole
    # A third process of shard 2 (its own xdist worker, say) follows shard 2's claims.
    late = Taker(tmp_path / "claims", 1, table["weights"], set(table["split"]))
    assert [late.mine(nodeid) for nodeid in ids] == [owners[n] == 1 for n in ids]


def _items(ids: list[str]) -> list[pytest.Item]:
    return [cast(pytest.Item, SimpleNamespace(nodeid=i)) for i in ids]


def test_remembered_durations_order_what_shards_take(tmp_path: Path) -> None:
    """With durations, a heavy file's notable tests are taken by their own weight (one slow
    test among many quick ones goes first, not in its file's place); its other tests share
    what is left of the file's weight; a file the plan does not know weighs the mean."""
    files = {"t/recipes.py": 17.0, "t/more.py": 11.0, "t/small.py": 1.0}
    tests = {"t/recipes.py::test_primes": 13.5, "t/recipes.py::test_tiny": 0.000001}
    table = plan_as_they_go(files, 2, tmp_path / "c", tests=tests, source="remembered")
    assert table["split"] == ["t/recipes.py"]
    assert table["tests"] == {"t/recipes.py::test_primes": 13.5}  # not notable: left out
    assert table["unit"] == pytest.approx(29.0 / 3)
    taker = Taker(
        tmp_path / "c", 0, table["weights"], set(table["split"]), table["tests"], table["unit"]
    )
    ids = [
        "t/more.py::a",
        *(f"t/recipes.py::test_{i}" for i in range(4)),
        "t/recipes.py::test_primes",
        "t/new.py::n",
        "t/small.py::s",
    ]
    assert [item.nodeid for item in taker.order(_items(ids))] == [
        "t/recipes.py::test_primes",  # 13.5
        "t/more.py::a",  # 11
        "t/new.py::n",  # the mean, 9.67
        "t/small.py::s",  # 1
        *(f"t/recipes.py::test_{i}" for i in range(4)),  # (17 - 13.5) / 4 each
    ]


def test_peeking_takes_nothing(tmp_path: Path) -> None:
    """The next test a shard names as ``nextitem`` is one of a unit it holds or one no shard
    took; naming it does not take it, so the other shard may."""
    ids = ["t/a.py::x", "t/a.py::y", "t/b.py::z", "t/c.py::w"]
    items = _items(ids)
    one = Taker(tmp_path / "c", 0, {}, set())
    two = Taker(tmp_path / "c", 1, {}, set())
    assert one.next_mine(items, 0) == 0  # takes a.py
    assert one.peek(items, 1) == 1  # its own a.py
    assert one.peek(items, 2) == 2  # b.py: nobody's yet, still nobody's after the peek
    assert two.next_mine(items, 0) == 2  # so shard 2 takes it
    assert one.peek(items, 2) == 3  # and shard 1 passes it over
    assert one.next_mine(items, 2) == 3
    assert two.peek(items, 3) is None and two.next_mine(items, 3) is None


def test_a_first_run_finds_the_test_files_where_pytest_would(tmp_path: Path) -> None:
    files = {
        "tests/test_a.py": "x" * 10,
        "tests/sub/b_test.py": "x" * 20,
        "tests/helper.py": "x",
        "tests/.hidden/test_h.py": "x",
        "tests/venv/test_v.py": "x",
        "tests/env/pyvenv.cfg": "",
        "tests/env/test_e.py": "x",
        "other/test_o.py": "x" * 5,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    layout = PytestLayout(testpaths=("tests",))
    assert sizes_of_test_files(tmp_path, tmp_path, (), layout) == {
        "tests/sub/b_test.py": 20,
        "tests/test_a.py": 10,
    }
    # Paths given: those (a node id's file too), not testpaths.
    given = ("other", "tests/test_a.py::test_x")
    assert sizes_of_test_files(tmp_path, tmp_path, given, layout) == {
        "other/test_o.py": 5,
        "tests/test_a.py": 10,
    }
    only = PytestLayout(python_files=("*_test.py",))
    assert sizes_of_test_files(tmp_path, tmp_path, (), only) == {"tests/sub/b_test.py": 20}
