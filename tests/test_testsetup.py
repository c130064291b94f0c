"""End to end: the gate session does not load the project's test setup (its conftest.py
files); the checks' own child pytest does. A broken or slow test setup fails or slows only the
checks that run the tests; gate hooks live in plugins or the rootdir's conftest.py."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from conftest import Project

from pytest_parex import compat, testplugins

# xdist on (local agents), xdist workers, xdist not loaded.
HOW = [(), ("-n", "2"), ("-p", "no:xdist")]
HOW_IDS = ["local", "xdist-workers", "no-xdist"]


def _write(project: Project, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = project.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _review(name: str) -> dict[str, object]:
    """A review check that passes (no linter needed)."""
    return {"kind": "review", "run": [sys.executable, "-c", f"print('{name} ok')"]}


@pytest.mark.parametrize("how", HOW, ids=HOW_IDS)
def test_a_broken_test_setup_fails_only_the_checks_that_run_the_tests(
    project: Project, how: tuple[str, ...]
) -> None:
    """A test dependency missing: ``tests/conftest.py`` raises ImportError. The review checks
    give their verdicts, the tests check fails with the child's own error as its detail, the
    JSON report is written (before: exit 4 before any check ran)."""
    _write(
        project,
        {
            "tests/conftest.py": "import missing_test_dependency_xyz\n",
            "tests/test_a.py": "def test_a():\n    pass\n",
        },
    )
    project.write(
        {
            "lint": _review("lint"),
            "types": {**_review("types"), "agent": "debugger"},
            "tests": {"pytest": ["-q", "-p", "no:cacheprovider", "tests"], "shards": 2},
        },
        agents={"test-runner": 2},
    )
    result = project.pytester.runpytest_subprocess(
        "--parex", "--parex-no-cache", "--parex-json=r.json", *how
    )
    assert result.ret == 1, result.stdout.str()
    why = "tests/conftest.py: ModuleNotFoundError: No module named 'missing_test_dependency_xyz'"
    result.stdout.fnmatch_lines_random(
        [
            "lint*code-reviewer*passed*",
            "types*debugger*passed*",
            f"tests[[]1/2[]]*test-runner*failed*{why}*",
            f"tests[[]2/2[]]*test-runner*failed*{why}*",
        ]
    )
    report = project.json_report("r.json")
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        "lint": "passed",
        "types": "passed",
        "tests[1/2]": "failed",
        "tests[2/2]": "failed",
    }
    assert {c["detail"] for c in report["checks"] if c["name"].startswith("tests")} == {why}


def test_a_child_that_cannot_start_says_why(project: Project) -> None:
    """An option the tests' pytest does not know, a path that does not exist: the child's own
    one-line error is the check's detail."""
    _write(project, {"tests/test_a.py": "def test_a():\n    pass\n"})
    project.write(
        {
            "unknown": {"pytest": ["--no-such-option-xyz", "tests"]},
            "missing": {"pytest": ["no/such/dir"]},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "--parex-no-cache")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines_random(
        [
            "missing*failed*file or directory not found: no/such/dir*",
            "unknown*failed*unrecognized arguments: --no-such-option-xyz*",
        ]
    )


OPTION_CONFTEST = """
    def pytest_addoption(parser):
        parser.addoption("--run-slow", action="store_true", help="run the slow tests")
        parser.addini("slow_reason", "why the slow tests are slow")
"""


@pytest.mark.parametrize("how", HOW, ids=HOW_IDS)
def test_a_conftest_option_in_addopts_does_not_break_the_gate(
    project: Project, how: tuple[str, ...]
) -> None:
    """``tests/conftest.py`` defines ``--run-slow`` (in addopts) and an ini key: the gate
    session, which does not load that conftest, neither fails on them nor warns about them
    (``strict_config``, ``filterwarnings = error``); the tests' pytest gets both."""
    _write(
        project,
        {
            "tests/conftest.py": OPTION_CONFTEST,
            "tests/test_slow.py": """
                def test_slow_is_on(request):
                    assert request.config.getoption("--run-slow")
                    assert request.config.getini("slow_reason") == "hashing"
            """,
        },
    )
    project.write({"lint": _review("lint"), "tests": {"pytest": ["-q", "tests"]}})
    with (project.path / "pyproject.toml").open("a") as fh:
        fh.write(
            "\n[tool.pytest.ini_options]\n"
            'addopts = "--run-slow"\n'
            'slow_reason = "hashing"\n'
            "strict_config = true\n"
            'filterwarnings = ["error"]\n'
        )
    result = project.pytester.runpytest_subprocess("--parex", "--parex-no-cache", *how)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines_random(["lint*passed*", "tests*passed*1 passed*"])
    result.stdout.fnmatch_lines(["parex: set aside for the gate *--run-slow (addopts)*"])
    assert "Unknown config option" not in result.stdout.str() + result.stderr.str()


HOOKS = """
    import json, os

    def pytest_parex_check_finished(config, result):
        with open(os.path.join(config.rootpath, "hooks-{where}.jsonl"), "a") as fh:
            fh.write(json.dumps([result.name, result.status.value]) + "\\n")
"""


@pytest.mark.parametrize("how", HOW[:2], ids=HOW_IDS[:2])
def test_gate_hooks_fire_from_a_plugin_and_the_rootdir_conftest(
    project: Project, how: tuple[str, ...]
) -> None:
    """Where README says ``pytest_parex_*`` hooks may live: an installed or ``-p`` plugin,
    and ``conftest.py`` in the rootdir (loaded because it implements one). A conftest.py
    below it is the tests' (loaded by their own pytest only): its hook never fires."""
    _write(
        project,
        {
            "gatehooks.py": HOOKS.format(where="plugin"),
            "conftest.py": HOOKS.format(where="rootdir"),
            "tests/conftest.py": HOOKS.format(where="tests"),
            "tests/test_a.py": "def test_a():\n    pass\n",
        },
    )
    project.write({"lint": _review("lint"), "tests": {"pytest": ["-q", "tests"]}})
    result = project.pytester.runpytest_subprocess(
        "-p", "gatehooks", "--parex", "--parex-no-cache", *how
    )
    assert result.ret == 0, result.stdout.str()
    for where in ("plugin", "rootdir"):
        lines = (project.path / f"hooks-{where}.jsonl").read_text().splitlines()
        assert sorted(json.loads(line)[0] for line in lines) == ["lint", "tests"], where
    assert not (project.path / "hooks-tests.jsonl").exists()


def test_a_slow_test_setup_does_not_delay_the_review_checks(project: Project) -> None:
    """``tests/conftest.py`` cannot finish importing until the lint check has ended (sync.py,
    bounded): a gate that imported it before starting its checks would wait in vain and
    fail; the gate starts lint at once, and the tests check's own pytest imports the conftest
    once lint is done."""
    _write(
        project,
        {
            "tests/conftest.py": """
                import os
                import sync
                sync.wait_for("conftest", "lint to end",
                              lambda: os.path.exists(sync.marker("done", "lint")))
            """,
            "tests/test_a.py": "def test_a():\n    pass\n",
        },
    )
    project.write(
        {
            "lint": {"kind": "review", "run": project.sync("lint")},
            "tests": {"pytest": ["-q", "-p", "no:cacheprovider", "tests"]},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "--parex-no-cache")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines_random(["lint*passed*", "tests*passed*1 passed*"])


def test_the_gate_reads_a_tests_checks_paths_as_pytest_does(pytester: pytest.Pytester) -> None:
    """An option's value is not a test path (``--deselect tests/a.py::x``, ``-k slow``): the
    first run's walk for test files asks the session's own parser."""
    config = pytester.parseconfig("--parex")
    parser = config.stash[testplugins.PARSER]
    argv = ["-q", "-p", "no:cacheprovider", "--deselect", "tests/a.py::x", "-k", "slow", "tests"]
    assert compat.positional_args(parser, argv) == ["tests"]
    assert compat.positional_args(parser, ["tests/a.py::test_x", "-x", "b"]) == [
        "tests/a.py::test_x",
        "b",
    ]
