"""The gate session is not a test session: the project's test options and plugins stay with
its tests (pytest_parex.testplugins).

The plugin matrix installs the most used test plugins together, apart from this project's
environment (tests/plugin_env.py), and runs gates of a project configured the way projects
configure them, with xdist on and off.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import plugin_env
import pytest
from conftest import Project, pyproject

from pytest_parex.testplugins import ADDOPTS, COMMAND_LINE, ENV, SetAside, group_words, split

# ------------------------------------------------------------------------ pure: what is kept

VALUED = {"-n", "-p", "-o", "--maxfail", "--parex-only", "--cov-report", "-k", "--assert"}


def fake_consumes(option: str, following: str) -> bool:
    """The parser's answer for the options of these tests (``--cov`` takes no separate value
    here, as when its value is written with ``=``)."""
    return option in VALUED


def test_options_are_grouped_with_their_values() -> None:
    words = ["-n", "auto", "-x", "--maxfail=1", "tests", "-pno:x", "--", "-k", "a"]
    assert group_words(words, fake_consumes) == [
        ["-n", "auto"],
        ["-x"],
        ["--maxfail=1"],
        ["tests"],
        ["-pno:x"],
        ["--", "-k", "a"],
    ]
    # A word starting with "-" is never a value; "@file" is argparse's, never probed.
    assert group_words(["-n", "-x", "-k", "@args"], fake_consumes) == [
        ["-n"],
        ["-x"],
        ["-k"],
        ["@args"],
    ]


def test_addopts_are_set_aside_but_startup_and_parex_options_kept() -> None:
    ini = ["-n", "auto", "-p", "no:cacheprovider", "--cov=pkg", "-x", "--parex-only", "a,b"]
    env = ["--assert=plain", "--color=yes", "-k", "fast and not slow", "tests"]
    kept, aside = split([(ADDOPTS, ini), (ENV, env)], ["--parex", "-v"], fake_consumes)
    assert kept == [
        "-p",
        "no:cacheprovider",
        "--parex-only",
        "a,b",
        "--assert=plain",
        "--color=yes",
        "--parex",
        "-v",
    ]
    assert aside == SetAside(
        (
            (ADDOPTS, "-n auto"),
            (ADDOPTS, "--cov=pkg"),
            (ADDOPTS, "-x"),
            (ENV, "-k 'fast and not slow'"),
            (ENV, "tests"),
        )
    )
    assert aside.lines() == [
        "parex: set aside for the gate (the tests checks' own pytest reads them): "
        "-n auto, --cov=pkg, -x (addopts); -k 'fast and not slow', tests (PYTEST_ADDOPTS)"
    ]


def test_coverage_options_are_set_aside_from_the_command_line_too() -> None:
    kept, aside = split(
        [(ADDOPTS, [])],
        ["--parex", "--cov=pkg", "--cov-report", "term", "--no-cov-on-fail", "-n", "2"],
        fake_consumes,
    )
    assert kept == ["--parex", "-n", "2"]
    assert [text for source, text in aside.options if source == COMMAND_LINE] == [
        "--cov=pkg",
        "--cov-report term",
        "--no-cov-on-fail",
    ]
    (line,) = aside.lines()
    assert line.startswith(
        "parex: set aside for the gate: --cov=pkg, --cov-report term, --no-cov-on-fail "
        "(command line; "
    )


def test_nothing_set_aside_says_nothing() -> None:
    kept, aside = split([(ADDOPTS, ["-p", "x"]), (ENV, [])], ["--parex"], fake_consumes)
    assert kept == ["-p", "x", "--parex"]
    assert aside.lines() == []
    assert "could not tell" in SetAside(unrecognised=True).lines()[0]


# ------------------------------------------------------------ end to end, no extra plugins


def _quick_checks(project: Project, failing: str) -> dict[str, dict[str, object]]:
    checks: dict[str, dict[str, object]] = {}
    for name, agent in (("a", "code-reviewer"), ("b", "test-runner"), ("c", "debugger")):
        code = 1 if name == failing else 0
        checks[name] = {"agent": agent, "run": project.rec(name, 0.2, code)}
    return checks


def test_addopts_and_pytest_addopts_do_not_reach_the_gate(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = "[tool.pytest.ini_options]\n"
    ini += 'addopts = "-x --maxfail=1 -n 2 --strict-markers -p no:cacheprovider"\n'
    (project.path / "pyproject.toml").write_text(ini + pyproject(_quick_checks(project, "a")))
    monkeypatch.setenv("PYTEST_ADDOPTS", "--tb=line --parex-progress=off")
    result = project.pytester.runpytest_subprocess(
        "--parex", "--parex-json=report.json", timeout=300
    )
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "parex: pyproject.toml, 3 checks, *; gate all, best-effort, *; 3 local agents",
            "parex: set aside for the gate (the tests checks' own pytest reads them): "
            "-x, --maxfail=1, -n 2, --strict-markers (addopts); --tb=line (PYTEST_ADDOPTS)",
        ]
    )
    assert result.ret == 1
    # Not fail-fast: b and c ran to the end although a failed first.
    statuses = {c["name"]: c["status"] for c in project.json_report()["checks"]}
    assert statuses == {"a": "failed", "b": "passed", "c": "passed"}
    assert set(project.times()) == {"a", "b", "c"}
    # What pytest acted on at start-up stays: the cache provider is still off, and the
    # --parex-* option from PYTEST_ADDOPTS still applies (no progress lines).
    assert not (project.path / ".pytest_cache").exists()
    assert "[parex]" not in out


def test_only_parex_on_the_command_line_sets_anything_aside(project: Project) -> None:
    ini = '[tool.pytest.ini_options]\naddopts = "--parex -x -p no:cacheprovider"\n'
    (project.path / "pyproject.toml").write_text(ini + pyproject(_quick_checks(project, "")))
    result = project.pytester.runpytest_subprocess("-p", "no:xdist", timeout=300)
    result.stdout.fnmatch_lines(["parex: pyproject.toml, 3 checks, *; gate all, fail-fast, *"])
    assert "set aside" not in result.stdout.str()
    assert result.ret == 0


# ---------------------------------------------------------------------- the plugin matrix


@pytest.fixture(scope="session")
def plugin_dir(pytestconfig: pytest.Config) -> Path:
    """The matrix's plugins, installed once (and kept) under pytest's cache directory."""
    try:
        return plugin_env.ensure(plugin_env.default_base(pytestconfig.rootpath))
    except plugin_env.InstallError as exc:
        pytest.fail(
            "the plugin matrix needs pytest-cov, pytest-randomly, pytest-timeout, "
            "pytest-rerunfailures, pytest-sugar, pytest-asyncio and pytest-html from PyPI, "
            f"installed apart from this environment (tests/plugin_env.py): {exc}",
            pytrace=False,
        )


INI = """\
[tool.pytest.ini_options]
addopts = "-n auto -x --maxfail=1 --cov=pkg --cov-fail-under=100 --html=report.html"
testpaths = ["tests"]
timeout = 1
reruns = 2
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"

"""

PKG = """\
def add(a, b):
    return a + b
"""

UNCOVERED = """
def never_called():
    return 0
"""

TESTS = """\
import asyncio

from pkg import add


def test_add():
    assert add(1, 2) == 3


async def test_add_after_a_tick():
    await asyncio.sleep(0)
    assert add(2, 2) == 4
"""

# Outlives pytest-timeout's `timeout = 1`: its SIGALRM would interrupt the gate's item.
LONG = "import sys, time; time.sleep(1.5); sys.exit(0)"
# Counts its runs: pytest-rerunfailures' `reruns = 2` would run it three times.
FAILS = "import sys; open('runs.txt', 'a').write('run\\n'); sys.exit(1)"


def _matrix_project(project: Project, failing: bool) -> None:
    path = project.path
    (path / "pkg").mkdir()
    (path / "pkg" / "__init__.py").write_text(PKG + (UNCOVERED if failing else ""))
    (path / "tests").mkdir()
    (path / "tests" / "test_pkg.py").write_text(TESTS)
    checks: dict[str, dict[str, object]] = {
        "tests": {"pytest": ["tests"]},
        "long": {"agent": "debugger", "run": [sys.executable, "-c", LONG, project.token]},
    }
    if failing:
        checks["fails"] = {
            "agent": "refactorer",
            "run": [sys.executable, "-c", FAILS, project.token],
        }
    (path / "pyproject.toml").write_text(INI + pyproject(checks))


MATRIX = [
    # xdist, failing, extra command-line options
    pytest.param(True, False, ["--cov=pkg"], id="xdist-passing-cov-on-command-line"),
    pytest.param(True, True, ["--force-sugar"], id="xdist-failing-sugar"),
    pytest.param(False, False, ["--force-sugar"], id="no-xdist-passing-sugar"),
    pytest.param(False, True, [], id="no-xdist-failing"),
]


@pytest.mark.parametrize(("xdist", "failing", "extra"), MATRIX)
def test_plugin_matrix(
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    plugin_dir: Path,
    xdist: bool,
    failing: bool,
    extra: Sequence[str],
) -> None:
    _matrix_project(project, failing)
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(plugin_dir), *([path] if path else [])]))
    monkeypatch.setenv("PYTEST_ADDOPTS", "--durations=2")
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    # xdist on: the gate's checks on xdist workers (-n 2 on the command line, the user's
    # choice); off: local agents with xdist not even loaded.
    where = ["-n", "2"] if xdist else ["-p", "no:xdist"]
    args = ["--parex", "--parex-json=gate.json", *extra, *where]
    result = project.pytester.runpytest_subprocess(*args, timeout=600)
    out = result.stdout.str() + result.stderr.str()

    # Every plugin of the matrix is loaded, in the gate and (through its log) in the child.
    result.stdout.fnmatch_lines(["Using --randomly-seed=*", "plugins: *"])
    plugins_line = next(ln for ln in result.outlines if ln.startswith("plugins: "))
    for name in ("cov-", "randomly-", "timeout-", "rerunfailures-", "sugar-", "asyncio-", "html-"):
        assert name in plugins_line
    assert "INTERNALERROR" not in out and "Traceback" not in out, out

    # The header: what the gate set aside, and that it chose its own workers and policy.
    agents = 3 if failing else 2
    how = "2 xdist workers" if xdist else f"{agents} local agents"
    lines = [
        f"parex: pyproject.toml, {agents} checks, *; gate all, best-effort, *; {how}",
        "parex: set aside for the gate (the tests checks' own pytest reads them): "
        "-n auto, -x, --maxfail=1, --cov=pkg, --cov-fail-under=100, --html=report.html "
        "(addopts); --durations=2 (PYTEST_ADDOPTS)",
    ]
    if "--cov=pkg" in extra:
        lines.append("parex: set aside for the gate: --cov=pkg (command line; *")
    result.stdout.fnmatch_lines(lines)

    # The verdict is the checks' verdicts: the tests check fails on coverage alone (both of
    # its tests pass, the async one through pytest-asyncio's auto mode), the long check
    # outlives `timeout = 1`, the failing check ran once despite `reruns = 2`.
    gate = json.loads((project.path / "gate.json").read_text())
    checks = {c["name"]: (c["status"], c["detail"]) for c in gate["checks"]}
    expected = {
        "tests": ("failed" if failing else "passed", "2 passed"),
        "long": ("passed", ""),
    }
    if failing:
        expected["fails"] = ("failed", "exit code 1")
    assert checks == expected
    assert gate["totals"]["verdict"] == ("failed" if failing else "passed")
    assert result.ret == (1 if failing else 0)
    result.stdout.fnmatch_lines(["*= parex =*", f"parex: {'failed' if failing else 'passed'}*"])
    if failing:
        assert (project.path / "runs.txt").read_text() == "run\n"
    else:
        # pytest-cov measured nothing in the gate session (its report would follow).
        assert "coverage: platform" not in out
    assert "CoverageWarning" not in out

    # pytest-html's report is the tests' (the child's), not one of the gate's checks.
    html = (project.path / "report.html").read_text()
    assert "test_add_after_a_tick" in html
    assert "pyproject.toml::long" not in html
