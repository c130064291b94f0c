"""End to end: choosing checks from the command line (--parex-only, --parex-skip, --lf), and a
gate nested in another parallel runner."""

from __future__ import annotations

import os

import pytest
from conftest import Project

NO_XDIST = ("-p", "no:xdist")


def _three(project: Project, failing: str = "") -> None:
    project.write(
        {
            name: {"agent": agent, "run": project.rec(name, 0.2, code=int(name == failing))}
            for name, agent in (
                ("lint", "code-reviewer"),
                ("tests", "test-runner"),
                ("types", "debugger"),
            )
        }
    )


def test_only_and_skip_choose_checks(project: Project) -> None:
    _three(project)
    result = project.pytester.runpytest_subprocess(
        "--parex", "--parex-only", "lint,types", "--parex-skip", "types"
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    assert sorted(project.times()) == ["lint"]
    result.stdout.fnmatch_lines(["parex: pyproject.toml, 1 check, *", "lint*passed*"])


@pytest.mark.parametrize("option", ["--parex-only", "--parex-skip"])
def test_unknown_names_are_a_usage_error_naming_the_known_ones(
    project: Project, option: str
) -> None:
    _three(project)
    result = project.pytester.runpytest("--parex", option, "lint,typo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f'*{option}: unknown check "typo"; known checks: lint, tests, types*']
    )
    assert project.times() == {}


def test_last_failed_reruns_only_the_failed_check(project: Project) -> None:
    _three(project, failing="tests")
    first = project.pytester.runpytest_subprocess("--parex")
    assert first.ret == 1
    first.assert_outcomes(passed=2, failed=1)
    # Local agents, xdist workers (the controller chooses, not its workers), no xdist at all.
    for args in (("--lf",), ("--lf", "-n", "2"), ("--lf", *NO_XDIST)):
        for record in (project.path / "times").iterdir():
            record.unlink()
        again = project.pytester.runpytest_subprocess("--parex", *args)
        assert again.ret == 1
        assert sorted(project.times()) == ["tests"], args
        again.assert_outcomes(failed=1)
        again.stdout.fnmatch_lines(["tests*test-runner*failed*", "parex: failed: tests failed"])
        again.stdout.no_fnmatch_line("lint*code-reviewer*")


DROP_TWO = """
def pytest_collection_modifyitems(items):
    # Removes checks without deselecting them (no pytest_deselected): not the user's choice.
    items[:] = [item for item in items if item.name not in ("lint", "types")]
"""


@pytest.mark.parametrize("how", [(), ("-n", "2")], ids=["local", "xdist"])
def test_checks_removed_without_deselection_fail_the_gate(
    project: Project, how: tuple[str, ...]
) -> None:
    """Only the user's deselection makes the gate smaller: checks a plugin or conftest.py
    silently removes from the collection are errors, and the gate fails even though every
    check that ran passed."""
    _three(project)
    # A plugin of the project's (-p: the gate session loads it, as every session does).
    (project.path / "dropper.py").write_text(DROP_TWO)
    result = project.pytester.runpytest_subprocess(
        "-p", "dropper", "--parex", "--parex-json=r.json", *how
    )
    assert result.ret == 1, result.stdout.str()
    line = (
        "parex: failed: 2 checks (lint, types) removed from the collection without being "
        "deselected (by a pytest_collection_modifyitems hook of a plugin or conftest.py); "
        "choose checks with -k, -m, --deselect or --parex-skip instead"
    )
    result.stdout.fnmatch_lines(
        [
            "lint*code-reviewer*error*removed from the collection without being deselected",
            "tests*test-runner*passed*",
            "types*debugger*error*removed from the collection without being deselected",
            line,
        ]
    )
    assert sorted(project.times()) == ["tests"]
    report = project.json_report("r.json")
    assert report["totals"]["verdict"] == "failed"
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        "lint": "error",
        "tests": "passed",
        "types": "error",
    }


@pytest.mark.parametrize("how", [(), ("-n", "2")], ids=["local", "xdist"])
def test_an_empty_collection_is_a_failure_unless_the_user_deselected_everything(
    project: Project, how: tuple[str, ...]
) -> None:
    _three(project)
    # -k that matches nothing: the user's choice, pytest's "no tests ran" (5) stands.
    chosen = project.pytester.runpytest_subprocess("--parex", "-k", "nothing_matches", *how)
    assert chosen.ret == pytest.ExitCode.NO_TESTS_COLLECTED, chosen.stdout.str()
    chosen.stdout.fnmatch_lines(["*3 deselected*"])
    # A hook that empties the collection: nothing ran, and that is a failed gate, not 5. It
    # lives in the rootdir's conftest.py, which the gate loads because it implements a gate
    # hook (pytest_parex_*).
    (project.path / "conftest.py").write_text(
        "def pytest_parex_gate_finished(config, gate):\n    pass\n\n"
        "def pytest_collection_modifyitems(items):\n    items.clear()\n"
    )
    emptied = project.pytester.runpytest_subprocess("--parex", *how)
    assert emptied.ret == 1, emptied.stdout.str()
    emptied.stdout.fnmatch_lines(["parex: failed: 3 checks (lint, tests, types) removed *"])
    assert project.times() == {}


def test_nested_in_an_xdist_worker_runs_one_check_at_a_time(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One at a time: each fails if it finds the other running when it starts or before it ends.
    project.write(
        {
            "a": {"agent": "code-reviewer", "run": project.sync("a", hold=0.3, alone_from=["b"])},
            "b": {"agent": "test-runner", "run": project.sync("b", hold=0.3, alone_from=["a"])},
        }
    )
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    result = project.pytester.runpytest_subprocess("--parex")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "parex: *; one after another (nested gate); "
            "inside xdist worker gw7: capped at 1 worker (of 2)"
        ]
    )
    assert sorted(project.times()) == ["a", "b"]


def test_nested_in_tox_run_parallel_says_so(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _three(project)
    monkeypatch.setenv("TOX_PARALLEL_ENV", "py311")
    result = project.pytester.runpytest_subprocess("--parex", "--parex-plan")
    result.stdout.fnmatch_lines(
        ["parex: *; inside tox run-parallel (TOX_PARALLEL_ENV=py311): capped at * (of 3)"]
    )
    # The plan shows the capped number of workers too (half the cores, at most 3).
    cap = min(3, max(1, (os.cpu_count() or 1) // 2))
    result.stdout.fnmatch_lines([f"workers: {cap} (max-parallel 5)"])
    explicit = project.pytester.runpytest_subprocess(
        "--parex", "--parex-plan", "--parex-max-parallel", "3"
    )
    explicit.stdout.fnmatch_lines(["parex: *; worker count set explicitly, not capped"])
