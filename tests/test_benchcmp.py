"""Tests for pytest_parex.kinds.benchcmp: comparing pytest-benchmark JSON runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_parex.kinds.benchcmp import (
    Threshold,
    compare,
    load_benchmarks,
    parse_threshold,
)


def _document(**means: float) -> dict[str, object]:
    """A trimmed ``--benchmark-json`` document with one benchmark per keyword."""
    return {
        "machine_info": {},
        "commit_info": {},
        "benchmarks": [
            {
                "group": None,
                "name": name,
                "fullname": f"tests/test_perf.py::{name}",
                "params": None,
                "stats": {
                    "min": mean * 0.9,
                    "max": mean * 1.5,
                    "mean": mean,
                    "median": mean,
                    "stddev": mean / 10,
                    "rounds": 100,
                    "iqr": 0.0,
                    "ops": 1 / mean,
                    "data": [mean] * 3,
                },
            }
            for name, mean in means.items()
        ],
        "datetime": "2025-01-01T00:00:00",
        "version": "5.1.0",
    }


# --- parse_threshold ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mean:10%", Threshold("mean", 10.0)),
        ("median:5%", Threshold("median", 5.0)),
        ("min:0.5%", Threshold("min", 0.5)),
        (" MAX : 20 % ", Threshold("max", 20.0)),
        ("15%", Threshold("mean", 15.0)),
    ],
)
def test_parse_threshold(spec: str, expected: Threshold) -> None:
    assert parse_threshold(spec) == expected


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("stddev:10%", "unknown statistic 'stddev'"),
        ("ops:10%", "unknown statistic 'ops'"),
        ("mean:10", "expected STAT:PERCENT%"),
        ("mean:-5%", "expected STAT:PERCENT%"),
        ("mean:%", "expected STAT:PERCENT%"),
        ("", "expected STAT:PERCENT%"),
    ],
)
def test_parse_threshold_rejects(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid benchmark threshold") as info:
        parse_threshold(spec)
    assert fragment in str(info.value)


def test_threshold_str_round_trips() -> None:
    assert str(parse_threshold("min:0.5%")) == "min:0.5%"
    assert parse_threshold(str(Threshold("mean", 10.0))) == Threshold("mean", 10.0)


# --- load_benchmarks ------------------------------------------------------------------


def test_load_benchmarks_from_text_path_and_mapping(tmp_path: Path) -> None:
    document = _document(test_a=0.002, test_b=0.5)
    text = json.dumps(document)
    path = tmp_path / "bench.json"
    path.write_text(text)
    from_text = load_benchmarks(text)
    assert from_text == load_benchmarks(path) == load_benchmarks(str(path))
    assert from_text == load_benchmarks(document)
    assert sorted(from_text) == ["tests/test_perf.py::test_a", "tests/test_perf.py::test_b"]
    stats = from_text["tests/test_perf.py::test_a"]
    assert stats == {
        "min": pytest.approx(0.0018),
        "max": pytest.approx(0.003),
        "mean": 0.002,
        "median": 0.002,
        "stddev": pytest.approx(0.0002),
        "rounds": 100.0,
    }


def test_load_benchmarks_name_fallback_and_skips_broken_entries() -> None:
    document = {
        "benchmarks": [
            {"name": "test_only_name", "stats": {"mean": 1.0, "min": 0.5}},
            {"fullname": "x::broken", "stats": None},
            "garbage",
        ]
    }
    assert load_benchmarks(document) == {"test_only_name": {"mean": 1.0, "min": 0.5}}


@pytest.mark.parametrize("text", ["{not json", '{"version": "5"}', "[]"])
def test_load_benchmarks_rejects_other_documents(text: str, tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="JSON"):
        load_benchmarks(path)


# --- compare --------------------------------------------------------------------------


def _load(**means: float) -> dict[str, dict[str, float]]:
    return load_benchmarks(_document(**means))


def test_compare_regression() -> None:
    baseline = _load(test_parse=1.0, test_x=1.0, test_y=1.0, test_gone=1.0)
    current = _load(test_parse=1.34, test_x=1.03, test_y=0.9, test_new=1.0)
    result = compare(current, baseline, parse_threshold("mean:10%"))
    assert result.changes == {
        "tests/test_perf.py::test_parse": pytest.approx(34.0),
        "tests/test_perf.py::test_x": pytest.approx(3.0),
        "tests/test_perf.py::test_y": pytest.approx(-10.0),
    }
    assert [name for name, _ in result.regressions] == ["tests/test_perf.py::test_parse"]
    assert result.worst is not None
    assert result.worst[0] == "tests/test_perf.py::test_parse"
    assert result.new == ["tests/test_perf.py::test_new"]
    assert result.missing == ["tests/test_perf.py::test_gone"]
    assert not result.ok
    assert result.detail() == "+34% on test_parse (mean), limit 10%"


def test_compare_several_regressions_worst_first() -> None:
    baseline = _load(test_a=1.0, test_b=1.0, test_c=1.0)
    current = _load(test_a=1.2, test_b=2.0, test_c=1.5)
    result = compare(current, baseline, Threshold("mean", 10.0))
    assert [name.rsplit("::")[-1] for name, _ in result.regressions] == [
        "test_b",
        "test_c",
        "test_a",
    ]
    assert result.detail() == "+100% on test_b (mean), limit 10%; 2 more over the limit"


def test_compare_within_threshold() -> None:
    baseline = _load(test_w=1.0, test_x=1.0, test_y=1.0, test_z=1.0)
    current = _load(test_w=0.99, test_x=1.03, test_y=1.0, test_z=1.02)
    result = compare(current, baseline, parse_threshold("median:5%"))
    assert result.ok
    assert result.regressions == []
    assert result.detail() == "4 benchmarks, worst +3% on test_x"


def test_compare_exactly_at_limit_is_not_a_regression() -> None:
    result = compare({"t": {"mean": 1.5}}, {"t": {"mean": 1.0}}, Threshold("mean", 50.0))
    assert result.ok
    assert result.detail() == "1 benchmark, worst +50% on t"


def test_compare_uses_the_threshold_stat() -> None:
    current = {"t": {"mean": 1.0, "min": 2.0}}
    baseline = {"t": {"mean": 1.0, "min": 1.0}}
    assert compare(current, baseline, Threshold("mean", 10.0)).ok
    by_min = compare(current, baseline, Threshold("min", 10.0))
    assert by_min.detail() == "+100% on t (min), limit 10%"


def test_compare_without_baseline() -> None:
    current = _load(test_a=1.0, test_b=1.0, test_c=1.0, test_d=1.0)
    result = compare(current, {}, Threshold("mean", 10.0))
    assert result.ok
    assert result.worst is None
    assert len(result.new) == 4
    assert result.detail() == "4 benchmarks (no baseline)"
    assert compare({}, {}, Threshold("mean", 10.0)).detail() == "no benchmarks"


def test_compare_small_changes_and_ambiguous_names() -> None:
    current = {"a.py::test_x": {"mean": 1.004}, "b.py::test_x": {"mean": 1.0}}
    baseline = {"a.py::test_x": {"mean": 1.0}, "b.py::test_x": {"mean": 1.0}, "c::t": {"mean": 1.0}}
    result = compare(current, baseline, Threshold("mean", 1.0))
    # Two tests share the short name, so the full id is shown.
    assert result.detail() == "2 benchmarks, worst +0.4% on a.py::test_x, 1 missing"


def test_compare_zero_baseline() -> None:
    result = compare(
        {"z": {"mean": 0.0}, "i": {"mean": 1.0}},
        {"z": {"mean": 0.0}, "i": {"mean": 0.0}},
        Threshold("mean", 10.0),
    )
    assert result.changes["z"] == 0.0
    assert math.isinf(result.changes["i"])
    assert result.detail() == "+inf% on i (mean), limit 10%"
