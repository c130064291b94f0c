"""End to end: the built-in check kinds with the real tools (ruff, mypy, pytest-benchmark)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import Project

NO_XDIST = ("-p", "no:xdist")

_BIN = Path(sys.executable).parent
needs_ruff = pytest.mark.skipif(
    shutil.which("ruff") is None and not (_BIN / "ruff").exists(), reason="ruff is not installed"
)


def _write(project: Project, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = project.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@needs_ruff
def test_review_ruff_counts_issues_and_lists_them(project: Project) -> None:
    _write(project, {"pkg/ok.py": "X = 1\n", "pkg/bad.py": "import os\nimport sys\n"})
    project.write({"lint": {"kind": "review", "tool": "ruff"}})
    (project.path / "pyproject.toml").write_text(
        (project.path / "pyproject.toml").read_text()
        + '\n[tool.ruff]\nextend-exclude = ["rec.py", "sync.py"]\n'
    )
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "check lint failed: 2 issues",
            "pkg/bad.py:1: F401 *os*",
            "pkg/bad.py:2: F401 *sys*",
            "lint*code-reviewer*failed*2 issues*",
        ]
    )
    assert '"code": "F401"' not in result.stdout.str()  # the JSON stays in the log

    (project.path / "pkg" / "bad.py").write_text("X = 2\n")
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["lint*code-reviewer*passed*no issues*"])


def test_review_mypy_counts_errors(project: Project) -> None:
    _write(project, {"typed.py": "def f(x: int) -> str:\n    return x\n"})
    project.write({"types": {"kind": "review", "run": [sys.executable, "-m", "mypy", "typed.py"]}})
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["typed.py:2: return-value Incompatible return value type*", "types*failed*1 issue*"]
    )
    (project.path / "typed.py").write_text("def f(x: int) -> int:\n    return x\n")
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["types*passed*no issues*"])


def test_a_retried_review_counts_the_last_attempts_issues(project: Project) -> None:
    """A review check with retries appends each attempt's output to one log: its issues are
    the last attempt's, not every attempt's (2 issues twice are 2 issues, not 4)."""
    _write(
        project,
        {
            "lint.py": "print('a.py:1: error: one')\n"
            "print('a.py:2: error: two')\n"
            "raise SystemExit(1)\n"
        },
    )
    project.write({"lint": {"kind": "review", "run": [sys.executable, "lint.py"], "retries": 1}})
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["lint*failed*2 issues (2 attempts)*"])


def test_review_tool_not_installed_is_an_error(project: Project) -> None:
    project.write(
        {
            "lint": {"kind": "review", "run": "no-such-linter-xyz check ."},
            "types": {"kind": "review", "run": [sys.executable, "-m", "no_such_checker_xyz"]},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 1
    result.stdout.fnmatch_lines_random(
        [
            "lint*error*no-such-linter-xyz is not installed in this environment*",
            "types*error*no_such_checker_xyz is not installed in this environment*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


TESTS = {
    "tests/test_a.py": """
        import pytest
        def test_one(): pass
        def test_two(): pass
        @pytest.mark.skip(reason="not today")
        def test_skipped(): pass
    """,
    "tests/test_b.py": """
        import os
        def test_three(): assert not os.environ.get("BREAK_B")
    """,
}


def test_tests_kind_reports_counts_from_the_child(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(project, TESTS)
    project.write({"tests": {"pytest": ["-q", "tests"]}})
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["tests*test-runner*passed*3 passed, 1 skipped*"])
    monkeypatch.setenv("BREAK_B", "1")
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["tests*failed*1 failed, 2 passed, 1 skipped*"])


@pytest.mark.skipif(
    int(pytest.__version__.split(".")[0]) < 9, reason="subtests are pytest's own from 9.0"
)
def test_subtests_are_counted_as_pytest_counts_them(project: Project) -> None:
    """A subtest is a part of its test: pytest's summary says "2 passed, 3 subtests passed",
    so does the detail; the test is listed and timed once (its remembered duration is its
    own, not its subtests' added to it)."""
    _write(
        project,
        {
            "tests/test_sub.py": """
                import unittest
                class T(unittest.TestCase):
                    def test_parts(self):
                        for i in range(3):
                            with self.subTest(i=i):
                                self.assertGreaterEqual(i, 0)
                def test_plain(): pass
            """
        },
    )
    project.write({"tests": {"pytest": ["-q", "-p", "no:cacheprovider", "tests"]}})
    result = project.pytester.runpytest_subprocess("--parex", "--parex-json=r.json", *NO_XDIST)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["tests*passed*2 passed, 3 subtests passed*"])
    (check,) = project.json_report("r.json")["checks"]
    assert sorted(check["figures"]["tests"]) == [
        "tests/test_sub.py::T::test_parts",
        "tests/test_sub.py::test_plain",
    ]
    assert check["figures"]["counts"] == {"passed": 2, "subtests passed": 3}


SHARDED = {
    # A shard's test ends only once both shards have started a test (sync.py, bounded): two
    # passing shards prove they ran side by side (and each took some of the suite); the done
    # markers prove they waited.
    "tests/conftest.py": """
        import os
        import pytest
        import sync
        NAME = os.environ.get("PYTEST_PAREX_CHECK", "plain").replace("/", "-")
        def shards():
            return [n for n in sync.started() if n.startswith("tests[")]
        @pytest.fixture(autouse=True)
        def together():
            if NAME.startswith("tests["):
                sync.touch(sync.marker("started", NAME))
                sync.wait_for(NAME, "both shards to start", lambda: len(shards()) >= 2)
                sync.touch(sync.marker("done", NAME))
            yield
    """,
    **{
        f"tests/test_{n}.py": f"""
            def test_{n}_1(): pass
            def test_{n}_2(): pass
        """
        for n in "abcd"
    },
}


def _two_shards(project: Project) -> None:
    """The gate of ``project``: its tests in 2 shards on 2 test-runner instances."""
    project.write(
        {"tests": {"pytest": ["-q", "-p", "no:cacheprovider", "tests"], "shards": 2}},
        agents={"test-runner": 2},
    )


def _tests_of(project: Project, check: str, report: str = "r.json") -> list[str]:
    """The tests a check's child pytest ran, from the gate's JSON report."""
    (found,) = [c for c in project.json_report(report)["checks"] if c["name"] == check]
    return sorted(found["figures"]["tests"])


def test_shards_cover_every_test_once_and_overlap(project: Project) -> None:
    _write(project, SHARDED)
    _two_shards(project)
    result = project.pytester.runpytest_subprocess("--parex", "--parex-json=r.json")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["tests[[]1/2]*passed*", "tests[[]2/2]*passed*"])
    first = _tests_of(project, "tests[1/2]")
    second = _tests_of(project, "tests[2/2]")
    assert first and second and not set(first) & set(second)
    assert sorted(p.name for p in (project.path / "sync" / "done").iterdir()) == [
        "tests[1-2]",
        "tests[2-2]",
    ]

    project.write({"tests": {"pytest": ["-q", "-p", "no:cacheprovider", "tests"]}})
    result = project.pytester.runpytest_subprocess("--parex", "--parex-json=r.json", *NO_XDIST)
    assert result.ret == 0
    assert sorted(first + second) == _tests_of(project, "tests")
    assert len(first + second) == 8


BENCH = {
    "tests/test_speed.py": """
        def test_work(benchmark):
            benchmark.pedantic(sum, args=(range(100),), rounds=3, iterations=1)
    """,
    # The benchmark really runs, but the figures written to --benchmark-json come from the fixed
    # file named by FIXED_BENCHMARKS (pytest-benchmark's own hook for editing its JSON), so the
    # comparison does not depend on how busy the machine is. The fixed file must name the
    # benchmarks the run measured.
    "tests/conftest.py": """
        import json, os
        def pytest_benchmark_update_json(config, benchmarks, output_json):
            with open(os.environ["FIXED_BENCHMARKS"]) as fh:
                fixed = json.load(fh)["benchmarks"]
            measured = [b["fullname"] for b in output_json["benchmarks"]]
            assert measured == [b["fullname"] for b in fixed], measured
            output_json["benchmarks"] = fixed
    """,
}


def _benchmark_json(mean: float) -> str:
    """pytest-benchmark's ``--benchmark-json`` document for test_work with the given mean."""
    stats = {"min": mean * 0.9, "max": mean * 1.2, "mean": mean, "median": mean}
    stats |= {"stddev": mean / 20, "rounds": 15, "iqr": 0.0, "ops": 1 / mean}
    entry = {"group": None, "name": "test_work", "fullname": "tests/test_speed.py::test_work"}
    benchmark: dict[str, Any] = {**entry, "params": None, "stats": {**stats, "data": [mean]}}
    return json.dumps(
        {
            "machine_info": {},
            "commit_info": {},
            "benchmarks": [benchmark],
            "datetime": "2025-01-01T00:00:00",
            "version": "5.1.0",
        }
    )


def test_benchmark_regression_fails_against_the_baseline(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(project, BENCH)
    fixed = project.path / "fixed"
    fixed.mkdir()
    for name, mean in [("baseline", 0.004), ("within", 0.0041), ("slower", 0.0052)]:
        (fixed / f"{name}.json").write_text(_benchmark_json(mean))
    project.write(
        {"bench": {"kind": "benchmarks", "pytest": ["tests"], "fail-if-slower": "mean:10%"}}
    )
    monkeypatch.setenv("FIXED_BENCHMARKS", str(fixed / "baseline.json"))
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST, "--parex-save-baseline")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["bench*passed*1 benchmark, baseline saved*"])
    saved = project.path / ".parex" / "benchmarks" / "bench.json"
    assert json.loads(saved.read_text())["benchmarks"][0]["stats"]["mean"] == 0.004

    # 4.1 ms against 4 ms: 2.5% slower, within the 10% limit.
    monkeypatch.setenv("FIXED_BENCHMARKS", str(fixed / "within.json"))
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["bench*passed*1 benchmark, worst +2.5% on test_work*"])

    # 5.2 ms against 4 ms: 30% slower, over the limit.
    monkeypatch.setenv("FIXED_BENCHMARKS", str(fixed / "slower.json"))
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*slower than the baseline*", "bench*failed*+30% on test_work (mean), limit 10%*"]
    )


LEAKY = {
    "tests/test_mem.py": """
        import functools
        HOARD = []
        def test_leaks():
            HOARD.append(bytearray(200 * 1024))
        @functools.lru_cache(maxsize=None)
        def table():
            return [bytearray(1024) for _ in range(300)]
        def test_cache_filled_once():
            assert len(table()) == 300
    """,
}


def test_leak_detector_flags_growth_and_passes_a_cache(project: Project) -> None:
    _write(project, LEAKY)
    project.write({"leaks": {"kind": "leaks", "pytest": ["tests"], "iterations": 4}})
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*tests/test_mem.py::test_leaks: +*KiB per iteration*",
            "leaks*debugger*failed*1 leaking test of 2*",
        ]
    )
    assert "test_cache_filled_once: +" not in result.stdout.str()


def test_zero_config_explains_itself(project: Project) -> None:
    _write(project, {"tests/test_x.py": "def test_x(): pass\n"})
    (project.path / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '0'\n")
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret in (0, 1), result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "parex: no [[]tool.parex] in pyproject.toml; default gate: "
            "*tests (pytest: 1 test file, no testpaths)*"
            "skipped: *types (mypy is not configured)*--parex-show-config*",
            "tests*test-runner*passed*1 passed*",
        ]
    )
    shown = project.pytester.runpytest_subprocess("--parex-show-config")
    assert shown.ret == 0
    shown.stdout.fnmatch_lines(["[[]tool.parex]", "[[]tool.parex.checks.tests]", 'kind = "tests"'])


@needs_ruff
@pytest.mark.parametrize("where", [["-n", "2"], []], ids=["xdist-workers", "local-agents"])
def test_every_kind_on_lean_workers_and_local_agents(project: Project, where: list[str]) -> None:
    """Review, sharded tests, benchmarks and leaks in one gate, in a project with its own
    conftest.py (an autouse fixture and a hook: the tests', not the gate's) and third-party
    plugins installed (pytest-benchmark, hypothesis): on -n 2's lean xdist workers and on
    local agents."""
    _write(
        project,
        {
            "pkg/__init__.py": "def double(x: int) -> int:\n    return 2 * x\n",
            "conftest.py": """\
                import pytest

                @pytest.fixture(autouse=True)
                def seeded():
                    yield 3

                def pytest_report_header(config):
                    return "project conftest loaded"
            """,
            "tests/test_a.py": """\
                from pkg import double

                def test_a():
                    assert double(2) == 4
            """,
            "tests/test_b.py": "def test_b(seeded):\n    assert seeded == 3\n",
            "bench/test_bench.py": """\
                from pkg import double

                def test_double(benchmark):
                    assert benchmark(double, 21) == 42
            """,
        },
    )
    project.write(
        {
            "lint": {"kind": "review", "run": ["ruff", "check", "pkg"]},
            "tests": {"pytest": ["-q", "-p", "no:cacheprovider", "tests"], "shards": 2},
            "bench": {
                "kind": "benchmarks",
                "pytest": ["bench", "--benchmark-only", "--benchmark-max-time=0.05"],
            },
            "leaks": {"kind": "leaks", "pytest": ["tests"], "iterations": 2},
        },
        agents={"test-runner": 2},
    )
    result = project.pytester.runpytest_subprocess(
        "--parex", "--parex-no-cache", *where, timeout=300
    )
    assert result.ret == 0, result.stdout.str()
    # The conftest is the tests' setup: their child pytest loads it (test_b needs its
    # fixture), the gate session does not (its header hook never ran there).
    assert "project conftest loaded" not in result.stdout.str()
    result.stdout.fnmatch_lines_random(
        [
            "lint*code-reviewer*passed*no issues*",
            # (on a first run the shards take the files as they go: either may run both)
            "tests[[]1/2[]]*test-runner*passed*",
            "tests[[]2/2[]]*test-runner*passed*",
            "bench*test-runner*passed*1 benchmark*",
            "leaks*debugger*passed*no leaks in 2 tests*",
        ]
    )
    how = "*; 2 xdist workers*" if where else "*; 4 local agents*"
    result.stdout.fnmatch_lines([how])


EMPTY_CASES = {
    # pytest arguments -> the failed check's detail
    "collect-only": (["--co", "tests"], "no test ran (3 collected)"),
    "nothing-selected": (["-k", "no_such_test", "tests"], "no tests ran"),
    "all-skipped": (["-m", "plain", "tests"], "no test ran: 1 skipped"),
}


@pytest.mark.parametrize("case", sorted(EMPTY_CASES))
def test_a_tests_check_that_runs_no_test_fails(project: Project, case: str) -> None:
    """README: a tests check that runs no test fails -- ``--co`` included (it exits 0), and a
    suite whose every selected test is skipped. A shard whose share of a suite with tests is
    empty passes; the shards of a suite that runs nothing fail like one check."""
    args, why = EMPTY_CASES[case]
    _write(
        project,
        {
            "tests/test_a.py": """
                import pytest
                def test_one(): pass
                def test_two(): pass
                @pytest.mark.plain
                @pytest.mark.skip(reason="not here")
                def test_skipped(): pass
            """,
            "tests/conftest.py": """
                def pytest_configure(config):
                    config.addinivalue_line("markers", "plain: a marker to select by")
            """,
        },
    )
    project.write(
        {
            "tests": {"pytest": ["-q", "-p", "no:cacheprovider", *args]},
            "shards": {"pytest": ["-q", "-p", "no:cacheprovider", *args], "shards": 2},
        },
        agents={"test-runner": 2},
    )
    result = project.pytester.runpytest_subprocess(
        "--parex", "--parex-no-cache", "--parex-json=r.json"
    )
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines([f"tests *failed*{why}*"])
    shards = {c["name"]: c for c in project.json_report("r.json")["checks"] if "[" in c["name"]}
    # The shard that held the suite's tests (or both) failed; one whose share was empty while
    # the other held a skipped test may pass -- the gate fails either way.
    assert any(c["status"] == "failed" for c in shards.values()), shards
    for c in shards.values():
        assert c["status"] == "failed" or "no test ran in this shard" in c["detail"], c


def test_an_empty_shard_of_a_suite_with_tests_passes(project: Project) -> None:
    _write(project, {"tests/test_a.py": "def test_one():\n    pass\n"})
    _two_shards(project)
    result = project.pytester.runpytest_subprocess("--parex", "--parex-no-cache")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines_random(
        [
            "tests[[]*/2[]]*passed*1 passed*",
            "tests[[]*/2[]]*passed*no test ran in this shard, 1 in the others*",
        ]
    )


def _shard_tests(project: Project, report: str = "r.json") -> list[list[str]]:
    checks = sorted(project.json_report(report)["checks"], key=lambda c: c["name"])
    return [sorted(c["figures"]["tests"]) for c in checks if c["name"].startswith("tests[")]


# test_0slow.py is the smallest file: with no durations the shards take it last, and its
# test waits (bounded) until every other test has run. A split made in advance that gives its
# shard another test to run after it (by file count: test_0slow.py, test_b.py) deadlocks and
# fails; shards that take files as they go run the other three meanwhile.
AS_THEY_GO = {
    "tests/test_0slow.py": """
        import os, time
        def test_slow():
            deadline = time.monotonic() + 30
            while len(os.listdir("done") if os.path.isdir("done") else []) < 3:
                assert time.monotonic() < deadline, "the other tests never ran"
                time.sleep(0.02)
    """,
    **{
        f"tests/test_{n}.py": f"""
            import os
            # padding: a bigger file than test_0slow.py {"x" * 200}
            def test_{n}():
                os.makedirs("done", exist_ok=True)
                open(os.path.join("done", "{n}"), "w").close()
        """
        for n in "abc"
    },
}


@pytest.mark.parametrize("how", [(), ("-n", "2")], ids=["local", "xdist-workers"])
def test_a_first_run_takes_the_test_files_as_it_goes(
    project: Project, how: tuple[str, ...]
) -> None:
    """Nothing remembered, nothing committed (a fresh clone): the shards take the test files
    as they go, biggest first, so a small file of slow tests does not hold a shard back
    while the other idles; every test runs exactly once."""
    _write(project, AS_THEY_GO)
    _two_shards(project)
    result = project.pytester.runpytest_subprocess("--parex", "--parex-json=r.json", *how)
    assert result.ret == 0, result.stdout.str()
    first, second = _shard_tests(project)
    assert not set(first) & set(second)
    assert sorted(first + second) == [
        "tests/test_0slow.py::test_slow",
        *(f"tests/test_{n}.py::test_{n}" for n in "abc"),
    ]


RESOURCE = """
@pytest.fixture(scope="module")
def resource():
    with open("fixture.log", "a") as fh:
        fh.write(f"up {os.getpid()}\\n")
    yield
    with open("fixture.log", "a") as fh:
        fh.write(f"down {os.getpid()}\\n")
"""
"""A module fixture that logs its set-up and tear-down with the process's id."""

FIXTURES = {
    # A file big enough to be taken test by test, with a module fixture that logs its set-up
    # and tear-down; small files in other directories.
    "tests/a/test_big.py": "import os\nimport pytest\n\n"
    + RESOURCE
    + "".join(f"\ndef test_{i}(resource):\n    pass\n" for i in range(30)),
    "tests/b/test_x.py": "def test_x():\n    pass\n",
    "tests/c/test_y.py": "def test_y():\n    pass\n",
}


def test_shards_taking_tests_one_by_one_tear_fixtures_down_as_a_plain_run(
    project: Project,
) -> None:
    """A shard taking a big file's tests one by one runs each with the next test *it* runs
    as pytest's ``nextitem``: here the other shard took every odd test of the big file (its
    claims are there already), and this shard's module fixture is torn down once, before the
    files in other directories run -- no "previous item was not torn down properly"."""
    _write(project, FIXTURES)
    claims = project.path / "claims"
    claims.mkdir()
    theirs = claims / ".shard-1"
    theirs.write_text("1")
    for i in range(1, 30, 2):
        unit = f"tests/a/test_big.py::test_{i}"
        digest = hashlib.blake2b(unit.encode(), digest_size=12).hexdigest()
        os.link(theirs, claims / digest)
    plan = {
        "version": 1,
        "shards": 2,
        "dynamic": str(claims),
        "weights": {"tests/a/test_big.py": 3000, "tests/b/test_x.py": 30, "tests/c/test_y.py": 30},
        "split": ["tests/a/test_big.py"],
    }
    (project.path / "plan.json").write_text(json.dumps(plan))
    result = project.pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_parex.child.shard",
        "--parex-shard=1/2",
        "--parex-shard-plan=plan.json",
        "tests",
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=17)  # the 15 even tests, test_x, test_y
    events = (project.path / "fixture.log").read_text().split()
    assert [e for e in events if e in ("up", "down")] == ["up", "down"], events


def _waiter(name: str, others: str | list[str], padding: int = 0) -> str:
    """A test file whose test waits (bounded) until the tests named in ``others`` ran."""
    return f"""
        # {"x" * padding}
        import os, time
        def test_{name}():
            deadline = time.monotonic() + 30
            while not all(os.path.exists(os.path.join("done", n)) for n in {list(others)!r}):
                assert time.monotonic() < deadline, "the other tests never ran"
                time.sleep(0.02)
    """


def _marker(name: str) -> str:
    return f"""
        import os
        # padding: a bigger file than the waiting one {"x" * 300}
        def test_{name}():
            os.makedirs("done", exist_ok=True)
            open(os.path.join("done", "{name}"), "w").close()
    """


def test_committed_durations_balance_a_checkout_with_no_history(project: Project) -> None:
    """``--parex-save-durations`` writes the measured durations to the ``durations`` file
    (pytest-split's format); a checkout without pytest's cache orders what its shards take
    by that file: test_c, known to be slow (and the smallest file), is taken first and waits
    until the others ran -- the other shard runs all three meanwhile. Taken by size, it
    would come last, after its shard ran another test."""
    _write(project, {f"tests/test_{n}.py": f"def test_{n}():\n    pass\n" for n in "abcd"})
    project.write(
        {
            "tests": {
                "pytest": ["-q", "-p", "no:cacheprovider", "tests"],
                "shards": 2,
                "durations": ".test_durations",
            }
        },
        agents={"test-runner": 2},
    )
    saved = project.pytester.runpytest_subprocess("--parex", "--parex-save-durations")
    assert saved.ret == 0, saved.stdout.str()
    saved.stdout.fnmatch_lines(
        ["parex: saved the durations of 4 tests of tests to .test_durations"]
    )
    durations = json.loads((project.path / ".test_durations").read_text())
    every = [f"tests/test_{n}.py::test_{n}" for n in "abcd"]
    assert sorted(durations) == every
    assert all(isinstance(v, float) and v >= 0 for v in durations.values())
    # A fresh clone of a project where test_c is known to be slow.
    shutil.rmtree(project.path / ".pytest_cache")
    _write(project, {"tests/test_c.py": _waiter("c", "abd")})
    _write(project, {f"tests/test_{n}.py": _marker(n) for n in "abd"})
    durations = dict.fromkeys(every, 0.01) | {"tests/test_c.py::test_c": 5.0}
    (project.path / ".test_durations").write_text(json.dumps(durations))
    result = project.pytester.runpytest_subprocess("--parex", "--parex-json=r.json")
    assert result.ret == 0, result.stdout.str()
    assert sorted(_shard_tests(project)) == [
        ["tests/test_a.py::test_a", "tests/test_b.py::test_b", "tests/test_d.py::test_d"],
        ["tests/test_c.py::test_c"],
    ]


def test_saving_durations_runs_the_tests_a_cache_would_replay(project: Project) -> None:
    """``--parex-save-durations`` writes what the run measures: a tests check whose pass
    the cache holds runs again (and says why) instead of replaying no durations."""
    _write(project, {f"tests/test_{n}.py": f"def test_{n}():\n    pass\n" for n in "ab"})
    project.write(
        {
            "tests": {
                "pytest": ["-q", "-p", "no:cacheprovider", "tests"],
                "durations": ".test_durations",
                # (not pytester's stdout/stderr files beside them: they change every run)
                "reads": ["tests/**"],
            }
        }
    )
    first = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert first.ret == 0, first.stdout.str()
    replayed = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    replayed.stdout.fnmatch_lines(["tests*cached*"])
    saved = project.pytester.runpytest_subprocess(
        "--parex", "--parex-save-durations", "--parex-plan", *NO_XDIST
    )
    saved.stdout.fnmatch_lines(["*tests*--parex-save-durations measures it*"])
    saved = project.pytester.runpytest_subprocess("--parex", "--parex-save-durations", *NO_XDIST)
    assert saved.ret == 0, saved.stdout.str()
    saved.stdout.fnmatch_lines(
        ["parex: saved the durations of 2 tests of tests to .test_durations"]
    )
    assert not re.search(r"^tests\s.*\bcached\b", saved.stdout.str(), re.MULTILINE)
    assert sorted(json.loads((project.path / ".test_durations").read_text())) == [
        "tests/test_a.py::test_a",
        "tests/test_b.py::test_b",
    ]


def test_a_shard_holds_one_unit_at_a_time(project: Project) -> None:
    """A shard does not take the next unit before its test is done: the biggest file's test
    waits until the small file's test ran, which only the other shard is free to run."""
    _write(project, {"tests/test_big.py": _waiter("big", ["small"], 2000)})
    _write(project, {"tests/test_small.py": _marker("small")})
    _two_shards(project)
    result = project.pytester.runpytest_subprocess("--parex", "--parex-json=r.json")
    assert result.ret == 0, result.stdout.str()
    assert sorted(_shard_tests(project)) == [
        ["tests/test_big.py::test_big"],
        ["tests/test_small.py::test_small"],
    ]


STALE = {
    # One heavy file taken test by test, with a module fixture; t0 waits until t1 started
    # (in the other shard), t1 until test_x ran -- which the shard of t0 runs after t0,
    # though it named t1 (the next test of t0's module) as t0's nextitem.
    "tests/a/test_big.py": textwrap.dedent(
        """
        import os, time
        import pytest

        def wait_for(name):
            deadline = time.monotonic() + 30
            while not os.path.exists(os.path.join("done", name)):
                assert time.monotonic() < deadline, f"{name} never came"
                time.sleep(0.02)

        def mark(name):
            os.makedirs("done", exist_ok=True)
            open(os.path.join("done", name), "w").close()
        """
    )
    + RESOURCE
    + textwrap.dedent(
        """
        def test_0(resource):
            wait_for("t1")

        def test_1(resource):
            mark("t1")
            wait_for("x")

        # padding: the heaviest file by far, taken test by test
        """
    )
    + "".join(f"# {'x' * 70}\n" for _ in range(50)),
    "tests/b/test_x.py": """
        import os
        def test_x():
            assert open("fixture.log").read().count("down") == 1, "t0's module still set up"
            os.makedirs("done", exist_ok=True)
            open(os.path.join("done", "x"), "w").close()
    """,
}


def test_a_test_after_one_torn_down_for_another_finds_nothing_left_set_up(
    project: Project,
) -> None:
    """The shard running t0 named t1 as its next test (same module: its module fixture
    stays up), but the other shard took t1 meanwhile; the test it runs instead, in another
    directory, is set up after that fixture is torn down -- not failed with "previous item
    was not torn down properly"."""
    _write(project, STALE)
    _two_shards(project)
    result = project.pytester.runpytest_subprocess("--parex", "--parex-json=r.json")
    assert result.ret == 0, result.stdout.str()
    shards = sorted(_shard_tests(project))
    assert ["tests/a/test_big.py::test_1"] in shards, shards
    events = (project.path / "fixture.log").read_text().split()
    assert events.count("up") == 2 and events.count("down") == 2, events
