"""End to end: dependencies, conflicts, instances, order, gates, fail-fast, retries, crashes."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import Project

NO_XDIST = ("-p", "no:xdist")
FLAKY = """\
import os, sys
marker = sys.argv[1]
if os.path.exists(marker):
    print("second try: fine")
    sys.exit(0)
open(marker, "w").close()
print("first try: failing")
sys.exit(1)
"""


def test_needs_are_respected_and_a_failed_dependency_skips(project: Project) -> None:
    project.write(
        {
            # test fails if it starts before build has ended.
            "build": {"agent": "feature-implementer", "run": project.sync("build", hold=0.5)},
            "test": {
                "agent": "test-runner",
                "run": project.sync("test", needs_ended=["build"]),
                "needs": ["build"],
            },
            "lint": {"agent": "code-reviewer", "run": project.rec("lint", 0.3, code=1)},
            "docs": {"agent": "debugger", "run": project.rec("docs", 0.1), "needs": ["lint"]},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "-rs")
    assert result.ret == 1
    times = project.times()
    assert "build" in times and "test" in times
    assert "docs" not in times
    result.stdout.fnmatch_lines(
        ["docs*debugger*skipped*needs lint, which failed*", "parex: failed: lint failed"]
    )
    result.assert_outcomes(passed=2, failed=1, skipped=1)


def test_deselected_dependency_does_not_block(project: Project) -> None:
    project.write(
        {
            "lint": {"run": project.rec("lint", 0.1, code=1)},
            "docs": {"agent": "debugger", "run": project.rec("docs", 0.1), "needs": ["lint"]},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "--parex-only", "docs")
    assert result.ret == 0, result.stdout.str()
    assert sorted(project.times()) == ["docs"]


def test_conflicting_writes_are_serialised_and_exclusive_runs_alone(project: Project) -> None:
    # A check fails if it finds one it must not run beside running when it starts or before it
    # ends; the holds give a scheduler that ran them together the time to be caught.
    project.write(
        {
            "format": {
                "agent": "refactorer",
                "run": project.sync("format", hold=0.8, alone_from=["lint", "bench"]),
                "writes": ["src/**"],
            },
            "lint": {
                "agent": "code-reviewer",
                "run": project.sync("lint", hold=0.8, alone_from=["format", "bench"]),
                "reads": ["src/**"],
            },
            "bench": {
                "agent": "debugger",
                "run": project.sync("bench", hold=0.5, alone_from=["format", "lint", "tests"]),
                "exclusive": True,
            },
            "tests": {
                "agent": "test-runner",
                "run": project.sync("tests", hold=0.8, alone_from=["bench"]),
            },
        }
    )
    result = project.pytester.runpytest_subprocess("--parex")
    assert result.ret == 0, result.stdout.str()
    assert sorted(project.times()) == ["bench", "format", "lint", "tests"]
    result.stdout.fnmatch_lines(["*format and lint share src/**: serialised*"])


def test_agent_with_two_instances_runs_two_never_three(project: Project) -> None:
    # Two: no check ends before a second one has started, so the first ran beside another.
    # Never three: a check that finds more than two running (itself included) when it starts
    # or before it ends fails; the 1 s holds give a third instance the time to be caught.
    project.write(
        {
            f"t{i}": {
                "agent": "test-runner",
                "run": project.sync(f"t{i}", after_starts=2, at_most=2, hold=1.0),
            }
            for i in range(4)
        },
        agents={"test-runner": 2},
    )
    result = project.pytester.runpytest_subprocess("--parex")
    assert result.ret == 0, result.stdout.str()
    assert sorted(project.times()) == ["t0", "t1", "t2", "t3"]


def test_second_run_starts_the_critical_path_first(project: Project) -> None:
    shorts = [f"a{i}" for i in range(4)]
    # Submission (name) order is the worst order: the long check comes last. z fails if it
    # starts before one of the short checks has ended (it waited for a free instance). Its
    # 2.5 s hold is what the gate remembers as the longest check.
    checks = {n: {"agent": "w", "run": project.sync(n, hold=0.5)} for n in shorts}
    checks["z"] = {"agent": "w", "run": project.sync("z", hold=2.5, needs_one_ended=shorts)}
    project.write(checks, agents={"w": 2})
    first = project.pytester.runpytest_subprocess("--parex")
    assert first.ret == 0, first.stdout.str()
    assert sorted(project.times()) == [*shorts, "z"]
    # The gate's own order for the next run (the one its dispatcher follows): z first.
    plan = project.pytester.runpytest_subprocess("--parex", "--parex-plan")
    assert plan.ret == 0, plan.stdout.str()
    plan.stdout.fnmatch_lines(["  1. z [[]w] expected *s (last runs)*"])

    # Same checks, now synchronised for the second run. z starts at once: no short check can
    # end before z has started, so had z been queued behind two of them, both instances would
    # have waited for it in vain. And the four run beside it on the other instance: z ends only
    # after all four have ended. (Which of two checks handed out together to the two starting
    # instances starts a few ms earlier is the workers' pace, not the gate's order: the plan
    # above shows that order.)
    project.forget_runs()
    checks = {n: {"agent": "w", "run": project.sync(n, after_start=["z"])} for n in shorts}
    checks["z"] = {"agent": "w", "run": project.sync("z", after_end=shorts)}
    project.write(checks, agents={"w": 2})
    second = project.pytester.runpytest_subprocess("--parex")
    assert second.ret == 0, second.stdout.str()
    assert sorted(project.times()) == [*shorts, "z"]


@pytest.mark.parametrize("spec", [None, "--tx=3*popen"], ids=["local-agents", "tx-popen"])
def test_fail_fast_cancels_running_checks(project: Project, spec: str | None) -> None:
    # fails fails only once both sleepers are running, so fail-fast has running checks to
    # cancel, not only pending ones.
    project.write(
        {
            "fails": {
                "agent": "code-reviewer",
                "run": project.sync("fails", after_start=["sleep1", "sleep2"], code=1),
            },
            "sleep1": {"agent": "test-runner", "run": project.sync("sleep1", hold=30)},
            "sleep2": {"agent": "debugger", "run": project.sync("sleep2", hold=30)},
        },
        **{"on-failure": "fail-fast"},
    )
    args = ["--parex", "-rs"] + ([spec] if spec else [])
    result = project.pytester.runpytest_subprocess(*args, timeout=120)
    assert result.ret == 1, result.stdout.str()
    # Stopped, not waited for: neither sleeper reached the end of its 30 s (nor is left over).
    assert sorted(project.times()) == ["fails"]
    result.stdout.fnmatch_lines_random(
        [
            "sleep1*cancelled*fail-fast after fails failed*",
            "sleep2*cancelled*fail-fast after fails failed*",
            "parex: failed: fails failed*",
        ]
    )
    assert project.leftovers() == []


def test_dash_x_means_fail_fast_in_process(project: Project) -> None:
    project.write(
        {
            "a": {"run": project.rec("a", 0.1, code=1)},
            "b": {"agent": "debugger", "run": project.rec("b", 0.1)},
        }
    )
    # One check at a time (the critical path puts a first): b never starts.
    result = project.pytester.runpytest_subprocess(
        "--parex", *NO_XDIST, "-x", "--parex-max-parallel=1"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["b*cancelled*fail-fast after a failed*"])
    assert "b" not in project.times()


def test_gate_any_passes_on_first_success_and_cancels_the_rest(project: Project) -> None:
    project.write(
        {
            "mirror1": {"agent": "code-reviewer", "run": project.rec("mirror1", 0.3)},
            "mirror2": {"agent": "test-runner", "run": project.rec("mirror2", 30)},
            "mirror3": {"agent": "debugger", "run": project.rec("mirror3", 0.1, code=1)},
        },
        gate="any",
    )
    result = project.pytester.runpytest_subprocess("--parex", timeout=60)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "mirror2*cancelled*gate any passed with mirror1*",
            "parex: passed: mirror1 passed (gate any)",
        ]
    )


def test_gate_any_fails_when_nothing_passes(project: Project) -> None:
    project.write(
        {
            "a": {"run": project.rec("a", 0.1, code=1)},
            "b": {"agent": "debugger", "run": project.rec("b", 0.1, code=2)},
        },
        gate="any",
    )
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["parex: failed: no check passed (gate any)"])


def test_gate_threshold(project: Project) -> None:
    project.write(
        {
            "a": {"agent": "code-reviewer", "run": project.rec("a", 0.2)},
            "b": {"agent": "test-runner", "run": project.rec("b", 0.2)},
            "c": {"agent": "debugger", "run": project.rec("c", 30)},
        },
        gate=2,
    )
    result = project.pytester.runpytest_subprocess("--parex", timeout=60)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["c*cancelled*gate 2 reached*", "parex: passed: 2 of 3 checks passed (gate 2)"]
    )
    # Unreachable: two fail quickly, so 2 of 3 can no longer pass; the sleeper is cancelled.
    project.write(
        {
            "a": {"agent": "code-reviewer", "run": project.rec("a", 0.1, code=1)},
            "b": {"agent": "test-runner", "run": project.rec("b", 0.1, code=1)},
            "c": {"agent": "debugger", "run": project.rec("c", 30)},
        },
        gate=2,
    )
    result = project.pytester.runpytest_subprocess("--parex", timeout=60)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "c*cancelled*gate 2 can no longer be reached*",
            "parex: failed: 0 of 3 checks passed, 2 needed",
        ]
    )


def test_retry_that_passes_is_flaky_and_the_gate_passes(project: Project) -> None:
    (project.path / "flaky.py").write_text(FLAKY)
    project.write(
        {"shaky": {"run": [sys.executable, "flaky.py", "marker"], "retries": 2}},
    )
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["shaky*flaky*passed on attempt 2*", "parex: passed, with 1 flaky"])
    log = (project.path / ".parex" / "logs" / "shaky.log").read_text()
    assert "first try: failing" in log and "attempt 2 of 3" in log and "second try: fine" in log


def test_non_blocking_failure_passes_the_gate(project: Project) -> None:
    project.write(
        {
            "style": {"run": project.rec("style", 0.1, code=1), "blocking": False},
            "tests": {"agent": "test-runner", "run": project.rec("tests", 0.1)},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["style*failed*[non-blocking]*", "parex: passed, with 1 non-blocking failure"]
    )


def test_killed_worker_is_an_error_and_the_others_pass(project: Project) -> None:
    # The check kills its own xdist worker (its parent process).
    kill_parent = [
        sys.executable,
        "-c",
        f"import os, time; time.sleep(0.3); os.kill(os.getppid(), 9)  # {project.token}",
    ]
    project.write(
        {
            "doomed": {"agent": "debugger", "run": kill_parent},
            "a": {"agent": "code-reviewer", "run": project.rec("a", 1.5)},
            "b": {"agent": "test-runner", "run": project.rec("b", 1.5)},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "-n", "3", timeout=120)
    assert result.ret == 1
    result.stdout.fnmatch_lines_random(
        [
            "doomed*debugger*error*agent crashed*",
            "a*code-reviewer*passed*",
            "b*test-runner*passed*",
            "parex: failed: doomed had an error",
        ]
    )


def test_killed_worker_of_a_shard_takes_the_shards_processes_and_log(project: Project) -> None:
    """A shard's files are named after the shard (tests.shard-1-of-2.*), not its check name:
    the controller must find the shard's process group and log by that name."""
    tests = project.path / "tests"
    tests.mkdir()
    (tests / "test_a.py").write_text(
        "import os, subprocess, time\n"
        "def test_kills_its_worker():\n"
        f"    subprocess.Popen(['sleep', '60', '{project.token}'])\n"
        "    print('shard started', flush=True)\n"
        "    os.kill(os.getppid(), 9)  # the child pytest's parent: the xdist worker\n"
        "    time.sleep(60)\n"
    )
    (tests / "test_b.py").write_text("def test_fine():\n    pass\n")
    # Committed durations: one file a shard (by size, test_a.py alone would outweigh a share
    # and its one test could land beside test_b's).
    durations = {"tests/test_a.py::test_kills_its_worker": 1.0, "tests/test_b.py::test_fine": 1.0}
    (project.path / ".test_durations").write_text(json.dumps(durations))
    project.write(
        {"tests": {"pytest": ["-q", "-s", "tests"], "shards": 2, "durations": ".test_durations"}}
    )
    result = project.pytester.runpytest_subprocess("--parex", "-n", "2", timeout=120)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines_random(
        [
            "tests[[]?/2[]]*error*agent crashed*(log: .parex/logs/tests.shard-?-of-2.log)*",
            "tests[[]?/2[]]*passed*1 passed*",
        ]
    )
    # The project fixture proves the shard's `sleep 60` died with its process group.


def test_plan_prints_order_waves_and_runs_nothing(project: Project) -> None:
    project.write(
        {
            "build": {
                "agent": "feature-implementer",
                "run": project.rec("build", 0.1),
                "expected": 4,
            },
            "test": {
                "agent": "test-runner",
                "run": project.rec("test", 0.1),
                "needs": ["build"],
                "expected": 6,
            },
            "lint": {
                "agent": "code-reviewer",
                "run": project.rec("lint", 0.1),
                "expected": 2,
                "writes": ["src/**"],
            },
            "format": {
                "agent": "refactorer",
                "run": project.rec("format", 0.1),
                "expected": 1,
                "reads": ["src/x.py"],
            },
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "--parex-plan")
    assert result.ret == 0
    assert project.times() == {}
    result.stdout.fnmatch_lines(
        [
            "*= parex plan =*",
            "workers: 4 (max-parallel 5)",
            "agents:",
            "  code-reviewer x1: lint*",
            "order (longest remaining critical path first):",
            "  1. build [feature-implementer] expected 4.00s (expected key), path 10.00s"
            "; runs: no earlier pass",
            "waves:",
            "  at 0.00s: build@*",
            "  at 4.00s: test@*",
            "serialised:",
            "  format and lint share src/x.py: serialised",
            "predicted: wall 10.00s, sequential 13.00s, critical path 10.00s, ideal speedup 1.30x*",
        ]
    )
