"""Tests for pytest_parex.child.leaks: the child-side memory leak detector."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_parex.child.leaks import format_size, parse_size

REPO_ROOT = Path(__file__).resolve().parent.parent

TESTS = """
import functools

LEAK = []


@functools.lru_cache(maxsize=None)
def load_table():
    return [str(i) * 10 for i in range(50_000)]


def test_leaky():
    LEAK.append("x" * 100_000)


def test_cached():
    assert len(load_table()) == 50_000


def test_clean(tmp_path):
    data = [str(i) for i in range(20_000)]
    (tmp_path / "f").write_text("".join(data))
    assert len(data) == 20_000
"""


@pytest.fixture
def child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose subprocess runs can import pytest_parex (installed or not)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    # Only our plugin: other installed plugins (xdist, benchmark...) are not under test.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "pytest_parex.child.leaks", "-p", "no:cacheprovider", *args
    )


def _report(pytester: pytest.Pytester, name: str = "leaks.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / name).read_text())
    return data


def _by_test(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["nodeid"].rsplit("::", 1)[-1]: entry for entry in report["tests"]}


# --- the plugin in a child pytest -----------------------------------------------------


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if needle in line)


def test_leaky_test_fails_with_figures(child: pytest.Pytester) -> None:
    source = child.makepyfile(test_mem=TESTS)
    line = _line_of(source, "LEAK.append")
    result = _run(child, "--parex-leaks", "--parex-leaks-report=leaks.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*memory leak: +9?.? KiB per iteration over 5 iterations (threshold 64 KiB)",
            "growth per iteration: +9*KiB, +9*KiB, +9*KiB, +9*KiB, +9*KiB",
            "top allocation sites:",
            f"  test_mem.py:{line}: +4??.? KiB",
            "*parex-leaks: 3 tests checked, 1 leaking*",
            "FAILED test_mem.py::test_leaky - Failed: memory leak*",
        ]
    )

    tests = _by_test(_report(child))
    leaky = tests["test_leaky"]
    assert leaky["leaking"] is True
    assert 95_000 <= leaky["growth_per_iteration"] <= 110_000
    assert leaky["iterations"] == 5
    assert len(leaky["growth"]) == 5
    assert all(95_000 <= delta <= 110_000 for delta in leaky["growth"])
    assert re.fullmatch(rf"test_mem\.py:{line}: \+4\d\d\.\d KiB", leaky["top_sites"][0])
    assert len(leaky["top_sites"]) <= 5


def test_cache_filled_once_and_clean_test_pass(child: pytest.Pytester) -> None:
    child.makepyfile(test_mem=TESTS)
    result = _run(child, "--parex-leaks", "--parex-leaks-report=leaks.json", "-k", "not leaky")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2, deselected=1)
    tests = _by_test(_report(child))
    assert set(tests) == {"test_cached", "test_clean"}
    for entry in tests.values():
        assert entry["leaking"] is False
        # The 50 000-string cache is retained from the warm-up, never after it.
        assert entry["growth_per_iteration"] < 4096, entry


def test_report_fields_and_summary(child: pytest.Pytester) -> None:
    child.makepyfile(test_mem=TESTS)
    _run(child, "--parex-leaks", "--parex-leaks-iterations=3", "--parex-leaks-report=out/r.json")
    report = _report(child, "out/r.json")
    assert report["summary"] == {"tests_checked": 3, "leaking": 1}
    assert report["iterations"] == 3
    assert report["threshold"] == 64 * 1024
    expected = {
        "nodeid",
        "leaking",
        "growth_per_iteration",
        "iterations",
        "growth",
        "top_sites",
        "grown_types",
        "error",
    }
    for entry in report["tests"]:
        assert set(entry) == expected
        assert entry["iterations"] == 3
        assert isinstance(entry["top_sites"], list)
        assert isinstance(entry["grown_types"], dict)
    assert [entry["nodeid"] for entry in report["tests"]] == [
        "test_mem.py::test_leaky",
        "test_mem.py::test_cached",
        "test_mem.py::test_clean",
    ]


def test_xdist_workers_report_to_the_controller(child: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    child.makepyfile(test_mem=TESTS)
    result = _run(
        child, "-p", "xdist.plugin", "-n", "2", "--parex-leaks", "--parex-leaks-report=r.json"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*parex-leaks: 3 tests checked, 1 leaking*"])
    report = _report(child, "r.json")
    assert report["summary"] == {"tests_checked": 3, "leaking": 1}
    assert _by_test(report)["test_leaky"]["leaking"] is True


def test_threshold_option_is_applied(child: pytest.Pytester) -> None:
    child.makepyfile(test_mem=TESTS)
    result = _run(child, "--parex-leaks", "--parex-leaks-threshold=1 MiB", "-k", "leaky")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, deselected=2)


def test_grown_object_types_are_reported(child: pytest.Pytester) -> None:
    child.makepyfile(
        test_objs="""
        STORE = []

        class Node:
            pass

        def test_nodes():
            STORE.append([Node() for _ in range(2000)])
        """
    )
    result = _run(child, "--parex-leaks", "--parex-leaks-report=leaks.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["objects added: test_objs.Node +10000*"])
    entry = _report(child)["tests"][0]
    assert entry["grown_types"]["test_objs.Node"] == 10_000


def test_calls_and_fixtures(child: pytest.Pytester) -> None:
    """One warm-up plus N calls, with the same function-scoped fixture values."""
    child.makepyfile(
        test_calls="""
        import pytest

        CALLS = []
        SEEN = set()

        @pytest.fixture
        def token():
            return object()

        def test_counted(token, tmp_path):
            CALLS.append(1)
            SEEN.add(id(token))
            assert len(SEEN) == 1

        def test_zz_check():
            assert len(CALLS) == 1 + 4
        """
    )
    result = _run(child, "--parex-leaks", "--parex-leaks-iterations=4")
    result.assert_outcomes(passed=2)


def test_disabled_by_default(child: pytest.Pytester) -> None:
    child.makepyfile(
        test_once="""
        CALLS = []

        def test_leaky():
            CALLS.append("x" * 1_000_000)

        def test_zz_check():
            assert len(CALLS) == 1
        """
    )
    result = _run(child, "--parex-leaks-report=leaks.json")
    result.assert_outcomes(passed=2)
    assert "parex-leaks" not in result.stdout.str()
    assert not (child.path / "leaks.json").exists()


def test_failing_test_is_not_rerun(child: pytest.Pytester) -> None:
    child.makepyfile(
        test_fail="""
        CALLS = []

        def test_broken():
            CALLS.append(1)
            assert False, "plain failure"

        def test_zz_check():
            assert len(CALLS) == 1
        """
    )
    result = _run(child, "--parex-leaks", "--parex-leaks-report=leaks.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*plain failure*"])
    assert _report(child)["summary"] == {"tests_checked": 1, "leaking": 0}


def test_error_in_extra_call_is_reported(child: pytest.Pytester) -> None:
    child.makepyfile(
        test_once="""
        DONE = []

        def test_only_once():
            assert not DONE, "called twice"
            DONE.append(1)
        """
    )
    result = _run(child, "--parex-leaks", "--parex-leaks-report=leaks.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*called twice*"])
    (entry,) = _report(child)["tests"]
    assert entry["error"].startswith("AssertionError: called twice")
    assert entry["iterations"] == 0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--parex-leaks-threshold=lots", "invalid size 'lots'"),
        ("--parex-leaks-iterations=0", "invalid iteration count '0'"),
    ],
)
def test_bad_options_are_usage_errors(child: pytest.Pytester, option: str, message: str) -> None:
    child.makepyfile(test_x="def test_x(): pass")
    result = _run(child, "--parex-leaks", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


# --- helpers, in process --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2048", 2048),
        ("64 KiB", 65_536),
        ("1 MiB", 1_048_576),
        ("10KB", 10_000),
        ("1.5 mib", 1_572_864),
        ("3k", 3000),
        ("2 GiB", 2 * 1024**3),
        (" 7 B ", 7),
        ("0", 0),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "KiB", "-1 KiB", "10 parsecs", "1e3", "1,5 MiB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "sign", "text"),
    [
        (0, False, "0 B"),
        (512, True, "+512 B"),
        (65_536, False, "64 KiB"),
        (102_400, True, "+100 KiB"),
        (100_049, True, "+97.7 KiB"),
        (-3 * 1024**2, True, "-3 MiB"),
        (5 * 1024**4, False, "5120 GiB"),
    ],
)
def test_format_size(size: int, sign: bool, text: str) -> None:
    assert format_size(size, sign=sign) == text
