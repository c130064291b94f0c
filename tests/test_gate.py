"""End to end: the core gate in scratch projects, with xdist on and with ``-p no:xdist``."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import Project, overlap

AGENTS = ["code-reviewer", "test-runner", "feature-implementer", "refactorer", "debugger"]
NO_XDIST = ("-p", "no:xdist")


def test_five_agents_run_side_by_side(project: Project) -> None:
    project.write(
        {f"c{i}": {"agent": a, "run": project.rec(f"c{i}", 4.0)} for i, a in enumerate(AGENTS)}
    )
    result = project.pytester.runpytest_subprocess("--parex")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=5)
    times = project.times()
    assert len(times) == 5
    # Every check overlapped every other: all started before the first one ended.
    assert max(s for s, _ in times.values()) < min(e for _, e in times.values())
    result.stdout.fnmatch_lines(
        [
            "*= parex =*",
            "check*agent*status*duration*detail*",
            "c0*code-reviewer*passed*",
            "c4*debugger*passed*",
            "sequential *s, wall *s, speedup *x*",
            "parex: passed",
        ]
    )


def test_one_instance_agent_never_overlaps_itself(project: Project) -> None:
    project.write(
        {
            "r1": {"agent": "code-reviewer", "run": project.rec("r1", 1.0)},
            "r2": {"agent": "code-reviewer", "run": project.rec("r2", 1.0)},
            # The long check starts first (critical path), so that it spans both short ones
            # even when the second worker comes up late on a busy machine.
            "t1": {"agent": "test-runner", "run": project.rec("t1", 3.0), "expected": 3},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex")
    assert result.ret == 0, result.stdout.str()
    times = project.times()
    assert not overlap(times["r1"], times["r2"])
    assert overlap(times["t1"], times["r1"]) and overlap(times["t1"], times["r2"])


def test_failing_check_fails_the_gate_with_its_output(project: Project) -> None:
    script = "import sys; print('lint says: bad spacing in x.py'); sys.exit(3)"
    project.write(
        {
            "lint": {"agent": "code-reviewer", "run": [sys.executable, "-c", script]},
            "ok": {"agent": "test-runner", "run": project.rec("ok", 0.1)},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex")
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*check lint failed: exit code 3*",
            "*lint says: bad spacing in x.py*",
            "*full log: .parex/logs/lint.log*",
            "lint*code-reviewer*failed*exit code 3 (log: .parex/logs/lint.log)*",
            "parex: failed: lint failed",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    log = (project.path / ".parex" / "logs" / "lint.log").read_text()
    assert "lint says: bad spacing in x.py" in log


GRANDCHILD = """\
import os, signal, subprocess, sys, time
# a grandchild that ignores SIGTERM, then the check itself hangs
subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
    sys.argv[1]])
print("spawned", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("xdist", [True, False], ids=["xdist", "no-xdist"])
def test_timeout_kills_the_whole_tree(project: Project, xdist: bool) -> None:
    (project.path / "hang.py").write_text(GRANDCHILD)
    project.write(
        {
            "hang": {
                "agent": "debugger",
                "run": [sys.executable, "hang.py", project.token],
                "timeout": 1,
            },
            "quick": {"agent": "code-reviewer", "run": project.rec("quick", 0.1)},
        }
    )
    # xdist workers (-n 2), and local agents with xdist not even loaded.
    args = ["--parex", "-n", "2"] if xdist else ["--parex", *NO_XDIST]
    result = project.pytester.runpytest_subprocess(*args)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["hang*debugger*timeout*timed out after 1s*", "parex: failed: hang timed out"]
    )
    # The fixture also waits for every process carrying the token to be gone.
    assert project.leftovers() == []


def test_dash_k_runs_one_check_and_junitxml_lists_checks(project: Project) -> None:
    project.write(
        {
            n: {"agent": a, "run": project.rec(n, 0.1)}
            for n, a in zip(["lint", "types", "tests"], AGENTS[:3], strict=True)
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "-k", "types")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["types*passed*"])
    result.stdout.no_fnmatch_line("lint*passed*")
    assert sorted(project.times()) == ["types"]
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST, "-k", "lint or tests")
    result.assert_outcomes(passed=2, deselected=1)

    result = project.pytester.runpytest_subprocess("--parex", "--junitxml=out.xml")
    assert result.ret == 0
    cases = ET.parse(project.path / "out.xml").getroot().findall(".//testcase")
    assert sorted(c.get("name") or "" for c in cases) == ["lint", "tests", "types"]
    props = {p.get("name"): p.get("value") for p in cases[0].findall(".//property")}
    assert props["parex_status"] == "passed"
    assert props["parex_agent"] in AGENTS


@pytest.mark.parametrize("xdist", [True, False], ids=["xdist", "no-xdist"])
def test_summary_shows_table_times_and_speedup(project: Project, xdist: bool) -> None:
    project.write(
        {
            "a": {"agent": "code-reviewer", "run": project.rec("a", 0.5)},
            "b": {"agent": "test-runner", "run": project.rec("b", 0.5), "description": "b"},
        }
    )
    # xdist workers (-n 2); without xdist, one check at a time: the sequential baseline.
    args = ["--parex", "-n", "2"] if xdist else ["--parex", *NO_XDIST, "--parex-max-parallel=1"]
    result = project.pytester.runpytest_subprocess(*args)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*parex: pyproject.toml, 2 checks, agents: code-reviewer x1, test-runner x1*",
            "*= parex =*",
            "check*agent*status*duration*detail",
            "a*code-reviewer*passed*s",
            "b*test-runner*passed*s",
            "sequential 1.*s, wall *s, speedup *x*",
            "parex: passed",
        ]
    )
    if not xdist:
        result.stdout.fnmatch_lines(["*one after another (max-parallel 1)*"])
        # One after another: the two runs do not overlap.
        times = project.times()
        assert not overlap(times["a"], times["b"])


def test_markup_and_escapes_in_output_are_shown_literally(project: Project) -> None:
    script = (
        r"print('[red]boom[/red] [link=http://x]y[/link] \x1b[31mred\x1b]0;title\x07');"
        r"raise SystemExit(1)"
    )
    project.write({"evil": {"agent": "code-reviewer", "run": [sys.executable, "-c", script]}})
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST, "--color=yes")
    assert result.ret == 1
    out = result.stdout.str()
    assert "[red]boom[/red] [link=http://x]y[/link]" in out
    assert "\\x1b[31mred\\x1b]0;title\\x07" in out
    assert "\x1b]0;title" not in out
