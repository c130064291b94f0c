"""Tests for pytest_parex.child.sharding: balanced, deterministic shards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_parex.child.shard import group_by_file, split


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
