"""End to end: the core gate in scratch projects, with xdist on and with ``-p no:xdist``."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import Project

AGENTS = ["code-reviewer", "test-runner", "feature-implementer", "refactorer", "debugger"]
NO_XDIST = ("-p", "no:xdist")


def test_five_agents_run_side_by_side(project: Project) -> None:
    # Each check ends only once all five have started (a check that waits in vain fails): five
    # passes prove that when the last one started, all five were running side by side.
    project.write(
        {
            f"c{i}": {"agent": a, "run": project.sync(f"c{i}", after_starts=5)}
            for i, a in enumerate(AGENTS)
        }
    )
    result = project.pytester.runpytest_subprocess("--parex")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=5)
    assert sorted(project.times()) == [f"c{i}" for i in range(5)]
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
    # r1 and r2 share the one code-reviewer instance: each fails if it finds the other's
    # "running" marker when it starts or before it ends (so any overlap is caught), and holds
    # 0.5 s after t1 started, which lines two wrongly concurrent runs up against each other.
    # t1 spans both: they cannot end before t1 has started, t1 cannot end before both ended.
    def reviewer(name: str, other: str) -> list[str]:
        return project.sync(name, after_start=["t1"], alone_from=[other], hold=0.5)

    project.write(
        {
            "r1": {"agent": "code-reviewer", "run": reviewer("r1", "r2")},
            "r2": {"agent": "code-reviewer", "run": reviewer("r2", "r1")},
            "t1": {"agent": "test-runner", "run": project.sync("t1", after_end=["r1", "r2"])},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=3)
    assert sorted(project.times()) == ["r1", "r2", "t1"]


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
    # Without xdist, one after another: each fails if it finds the other running.
    project.write(
        {
            "a": {
                "agent": "code-reviewer",
                "run": project.sync("a", hold=0.5, alone_from=[] if xdist else ["b"]),
            },
            "b": {
                "agent": "test-runner",
                "run": project.sync("b", hold=0.5, alone_from=[] if xdist else ["a"]),
                "description": "b",
            },
        }
    )
    # xdist workers (-n 2); without xdist, one check at a time: the sequential baseline.
    args = ["--parex", "-n", "2"] if xdist else ["--parex", *NO_XDIST, "--parex-max-parallel=1"]
    result = project.pytester.runpytest_subprocess(*args)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*parex: pyproject.toml, 2 checks, agents: code-reviewer x1, test-runner x1*",
            "*= parex =*",
            "check*agent*status*duration*detail",
            "a*code-reviewer*passed*s",
            "b*test-runner*passed*s",
            "sequential *s, wall *s, speedup *x*",
            "parex: passed",
        ]
    )
    # Sequential is the sum of the durations in the table (each rounded there), and each
    # check lasted at least the 0.5 s it held.
    out = result.stdout.str()
    durations = [float(d) for d in re.findall(r"^[ab] +\S+ +passed +(\d+\.\d\d)s", out, re.M)]
    sequential = re.search(r"^sequential (\d+\.\d\d)s, wall", out, re.M)
    assert len(durations) == 2 and min(durations) >= 0.5 and sequential, out
    assert float(sequential.group(1)) == pytest.approx(sum(durations), abs=0.011)
    assert sorted(project.times()) == ["a", "b"]
    if not xdist:
        result.stdout.fnmatch_lines(["*one after another (max-parallel 1)*"])


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
