"""Tests for pytest_parex.child.sharding: balanced, deterministic shards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_parex.child.shard import group_by_file, split, units


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
