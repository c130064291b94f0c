"""Tests for pytest_parex.graph: glob overlap, conflicts, ranks and the critical path."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_parex.config import Check
from pytest_parex.graph import Conflict, conflicts, critical_path, dependents, globs_overlap, ranks


def _check(name: str, **kw: Any) -> Check:
    return Check(name=name, agent="code-reviewer", argv=("true",), **kw)


# ------------------------------------------------------------------------------ globs_overlap


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("src/**", "src/a.py"),
        ("*.py", "x/y.py"),
        ("**/*.py", "docs/conf.py"),
        ("src/a.py", "src/a.py"),
        ("./src/a.py", "src/a.py"),
        ("src", "src/a.py"),
        ("src/", "src/a.py"),
        ("src/pkg", "src/pkg/sub/mod.py"),
        ("src", "src/**/*.py"),
        ("src/**", "src"),
        ("build/[ab].txt", "build/a.txt"),
        ("src\\a.py", "src/a.py"),
        ("src/", "src"),
    ],
)
def test_globs_overlap(a: str, b: str) -> None:
    assert globs_overlap(a, b)
    assert globs_overlap(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("src/**/*.py", "docs/**"),
        ("src/a.py", "src/b.py"),
        ("src", "srcx/a.py"),
        ("build/out.txt", "build/out.txt.d/x"),
        ("docs/*.md", "src/*.md"),
        ("a/b.py", "a/b"),
    ],
)
def test_globs_do_not_overlap(a: str, b: str) -> None:
    assert not globs_overlap(a, b)
    assert not globs_overlap(b, a)


@pytest.mark.parametrize("root", [".", "./"])
@pytest.mark.parametrize("other", ["src/a.py", "src/**", "docs", "*.md"])
def test_the_rootdir_overlaps_everything(root: str, other: str) -> None:
    # writes = ["."] is how a check says "the whole project" (e.g. `ruff format .`).
    assert globs_overlap(root, other)
    assert globs_overlap(other, root)


# ------------------------------------------------------------------------------ conflicts


def _pairs(found: list[Conflict]) -> list[tuple[str, str]]:
    return [(c.a, c.b) for c in found]


def test_write_conflicts_with_read() -> None:
    found = conflicts(
        [_check("gen", writes=("build/**",)), _check("lint", reads=("build/out.txt",))]
    )
    assert _pairs(found) == [("gen", "lint")]
    assert found[0].why.startswith("share build/")
    assert found[0].sentence() == f"gen and lint {found[0].why}: serialised"


def test_write_conflicts_with_write_either_way() -> None:
    found = conflicts([_check("a", reads=("x",)), _check("b", writes=("x",))])
    assert _pairs(found) == [("a", "b")]
    found = conflicts([_check("a", writes=("dist/*.whl",)), _check("b", writes=("dist/",))])
    assert _pairs(found) == [("a", "b")]


def test_writing_the_whole_project_conflicts_with_readers() -> None:
    found = conflicts([_check("fmt", writes=(".",)), _check("lint", reads=("src/**",))])
    assert _pairs(found) == [("fmt", "lint")]


def test_reads_never_conflict() -> None:
    assert conflicts([_check("a", reads=("src/**",)), _check("b", reads=("src/**",))]) == []


def test_disjoint_writes_do_not_conflict() -> None:
    found = conflicts([_check("a", writes=("build/a/**",)), _check("b", writes=("build/b/**",))])
    assert found == []


def test_exclusive_conflicts_with_everything() -> None:
    checks = [_check("a"), _check("solo", exclusive=True), _check("z", reads=("x",))]
    found = conflicts(checks)
    assert _pairs(found) == [("a", "solo"), ("solo", "z")]
    assert all(c.why == "cannot overlap (solo is exclusive)" for c in found)


def test_pairs_ordered_by_needs_are_not_listed() -> None:
    checks = [
        _check("gen", writes=("build/**",)),
        _check("use", reads=("build/x",), needs=("gen",)),
        # transitively after gen, through use
        _check("late", writes=("build/**",), needs=("use",)),
        _check("free", reads=("build/y",)),
    ]
    assert _pairs(conflicts(checks)) == [("gen", "free"), ("late", "free")]


def test_exclusive_ordered_by_needs_is_not_listed() -> None:
    checks = [_check("a", exclusive=True), _check("b", needs=("a",)), _check("c", needs=("b",))]
    assert conflicts(checks) == []


# ------------------------------------------------------------------------------ ranks


def _dag() -> list[Check]:
    #   a(2) -> c(4) -> e(1)
    #   b(3) -> d(5) -> e
    #   f(7)
    return [
        _check("a"),
        _check("b"),
        _check("c", needs=("a",)),
        _check("d", needs=("b",)),
        _check("e", needs=("c", "d")),
        _check("f"),
    ]


DURATIONS = {"a": 2.0, "b": 3.0, "c": 4.0, "d": 5.0, "e": 1.0, "f": 7.0}


def test_dependents() -> None:
    assert dependents(_dag()) == {
        "a": ["c"],
        "b": ["d"],
        "c": ["e"],
        "d": ["e"],
        "e": [],
        "f": [],
    }


def test_ranks_known_values() -> None:
    assert ranks(_dag(), DURATIONS) == {
        "a": 7.0,
        "b": 9.0,
        "c": 5.0,
        "d": 6.0,
        "e": 1.0,
        "f": 7.0,
    }


def test_ranks_default_for_unknown_durations() -> None:
    assert ranks(_dag(), {"e": 10.0}) == {
        "a": 12.0,
        "b": 12.0,
        "c": 11.0,
        "d": 11.0,
        "e": 10.0,
        "f": 1.0,
    }
    assert ranks(_dag(), {}, default=0.5)["a"] == 1.5


def test_critical_path_known_value() -> None:
    assert critical_path(_dag(), DURATIONS) == 9.0  # b -> d -> e
    assert critical_path(_dag(), {**DURATIONS, "f": 20.0}) == 20.0


def test_critical_path_missing_durations_count_zero() -> None:
    assert critical_path(_dag(), {"a": 2.0, "e": 1.0}) == 3.0


def test_critical_path_empty() -> None:
    assert critical_path([], {}) == 0.0
