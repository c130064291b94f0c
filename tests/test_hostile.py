"""Hostile input: checks and configs that try to break the gate.

In every case the verdict is right, nothing is left running (the ``project`` fixture waits for
every process carrying the test's token to be gone) and no output is lost.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, processes_with
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_parex.config import GLOBAL_KEYS, check_keys, toml_value

NO_XDIST = ("-p", "no:xdist")

STUBBORN = """\
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
time.sleep(60)
"""
# Leaves a grandchild in its process group, and a daemon in a session of its own (setsid):
# both outlive the check's own process.
LEAVER = """\
import subprocess, sys
token = sys.argv[1]
sleep = [sys.executable, "-c", "import time; time.sleep(60)", token]
subprocess.Popen(sleep)
subprocess.Popen(sleep, start_new_session=True, stdout=subprocess.DEVNULL)
print("left a grandchild and a daemon behind", flush=True)
"""
BINARY = b"ok line\nbad utf-8: \xff\xfe\xc3\x28 and NUL: \x00\x00 end\n\x80\x81\x82"
WRITE_BYTES = """\
import sys
sys.stdout.buffer.write(open(sys.argv[1], "rb").read())
sys.exit(1)
"""
FLOOD = """\
import sys
line = b"x" * 1023 + b"\\n"
block = line * 1024  # 1 MiB
for _ in range(int(sys.argv[1])):
    sys.stdout.buffer.write(block)
"""
PEAK_RSS = """\
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, of the largest process
print(proc.returncode, peak)
"""


def test_stubborn_leaving_and_binary_checks_in_one_gate(project: Project) -> None:
    (project.path / "stubborn.py").write_text(STUBBORN)
    (project.path / "leaver.py").write_text(LEAVER)
    (project.path / "write_bytes.py").write_text(WRITE_BYTES)
    (project.path / "binary.out").write_bytes(BINARY)
    project.write(
        {
            "stubborn": {
                "agent": "debugger",
                "run": [sys.executable, "stubborn.py", project.token],
                "timeout": 1,
            },
            "leaver": {"agent": "test-runner", "run": [sys.executable, "leaver.py", project.token]},
            "binary": {
                "agent": "code-reviewer",
                "run": [sys.executable, "write_bytes.py", "binary.out", project.token],
            },
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "-rA", timeout=120)
    assert result.ret == 1
    out = result.stdout.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    result.stdout.fnmatch_lines_random(
        [
            "stubborn*debugger*timeout*timed out after 1s*",
            "leaver*test-runner*passed*",
            "binary*code-reviewer*failed*exit code 1*",
            "parex: failed: binary failed, stubborn timed out",
        ]
    )
    # The bytes reach the log untouched; the report shows them escaped, never raw.
    logs = project.path / ".parex" / "logs"
    assert (logs / "binary.log").read_bytes() == BINARY
    assert "bad utf-8: \ufffd\ufffd\ufffd( and NUL: \\x00\\x00 end" in out
    assert "\x00" not in out
    assert "left a grandchild and a daemon behind" in (logs / "leaver.log").read_text()
    # Gone right after the gate, not only after the fixture's grace period.
    assert processes_with(project.token) == []


RUNNER_PROBE = """\
import os, sys
from pathlib import Path
from pytest_parex import runner
out = runner.run_process(
    [sys.executable, "leaver.py", sys.argv[1]], cwd=Path("."), env=dict(os.environ),
    log=Path("probe.log"), timeout=30,
)
children = [
    pid for tid in os.listdir("/proc/self/task")
    for pid in open(f"/proc/self/task/{tid}/children").read().split()
]
print(out.ending.name.lower(), out.returncode, children)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_the_runner_leaves_neither_daemons_nor_zombies(project: Project) -> None:
    # The process that runs checks adopts their orphans (child subreaper): it must kill the
    # daemons and reap the dead, or a long gate piles up zombies.
    (project.path / "leaver.py").write_text(LEAVER)
    (project.path / "probe.py").write_text(RUNNER_PROBE)
    done = subprocess.run(
        [sys.executable, "probe.py", project.token],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "exited 0 []", done
    assert processes_with(project.token) == []


def _peak_rss_kib(project: Project, megabytes: int) -> int:
    project.write(
        {
            "flood": {"agent": "test-runner", "run": [sys.executable, "flood.py", str(megabytes)]},
            "other": {"agent": "code-reviewer", "run": project.rec("other", 0.1)},
        }
    )
    gate = [sys.executable, "-m", "pytest", "--parex", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [sys.executable, "peak.py", *gate],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    code, peak = (int(x) for x in done.stdout.split())
    assert code == 0, done
    log = project.path / ".parex" / "logs" / "flood.log"
    assert log.stat().st_size == megabytes * 1024 * 1024  # every byte, nothing more
    log.unlink()  # 100 MB: do not keep it in pytest's temp dirs
    return peak


def test_100mb_of_output_keeps_the_gate_memory_flat(project: Project) -> None:
    (project.path / "flood.py").write_text(FLOOD)
    (project.path / "peak.py").write_text(PEAK_RSS)
    small = _peak_rss_kib(project, 1)
    big = _peak_rss_kib(project, 100)
    # Peak RSS of the largest process of the gate (controller, workers, checks).
    assert big < 200 * 1024, (small, big)
    assert big - small < 50 * 1024, (small, big)


HOSTILE_OUTPUT = (
    "print('[red]boom[/red] [link=file:///etc/passwd]click[/link] [bold]'); "
    "print('\\x1b]8;;http://evil.example\\x1b\\\\hyperlink\\x1b]8;;\\x1b\\\\'); "
    "print('\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\x9b31m'); raise SystemExit(1)"
)
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_escapes_in_output_never_reach_the_terminal_from_a_worker(project: Project) -> None:
    # test_gate covers the in-process summary; here the text crosses from an xdist worker.
    project.write(
        {
            "evil": {"agent": "code-reviewer", "run": [sys.executable, "-c", HOSTILE_OUTPUT]},
            "fine": {"agent": "test-runner", "run": project.rec("fine", 0.1)},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "--color=yes", "-rA")
    assert result.ret == 1
    out = result.stdout.str()
    assert "[red]boom[/red] [link=file:///etc/passwd]click[/link] [bold]" in out
    assert "\\x1b]8;;http://evil.example\\x1b\\hyperlink" in out
    assert "\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\x9b31m" in out
    # Colour (SGR) is pytest's and rich's own; any other escape would come from the check.
    assert "\x1b" not in _SGR.sub("", out)
    assert "\x9b" not in out and "\x07" not in out


@pytest.mark.parametrize(
    "name",
    ["[red]x[/red]", "\u001b]0;pwned\u0007", "[link=http://evil]x", "a\nb", ""],
    ids=["markup", "osc", "link", "newline", "empty"],
)
def test_a_hostile_check_name_is_a_one_line_usage_error(
    pytester: pytest.Pytester, name: str
) -> None:
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.parex.checks.{json.dumps(name)}]\nrun = "true"\n',
    )
    result = pytester.runpytest("--parex", *NO_XDIST, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: "), errors
    assert "check name" in errors[0]
    assert "\x1b" not in errors[0] and "\x07" not in errors[0]


@pytest.mark.parametrize("xdist", [True, False], ids=["xdist", "no-xdist"])
def test_ctrl_c_mid_run_writes_logs_and_json_report_and_exits_2(
    project: Project, xdist: bool
) -> None:
    project.write(
        {
            "s1": {"agent": "code-reviewer", "run": project.rec("s1", 60)},
            "s2": {"agent": "test-runner", "run": project.rec("s2", 60)},
        }
    )
    # xdist workers (-n 2), and local agents with xdist not even loaded: both checks run.
    args = ["--parex", "--parex-json=report.json", "-p", "no:cacheprovider"]
    started = ["s1", "s2"]
    code, text = project.interrupt([*args, *(["-n", "2"] if xdist else NO_XDIST)], started)
    assert code == 2, text
    assert "interrupted" in text
    assert "Traceback" not in text
    report = project.json_report()
    assert report["totals"]["verdict"] == "failed"
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses == {"s1": "cancelled", "s2": "cancelled"}
    for name in started:
        assert "starting" in (project.path / ".parex" / "logs" / f"{name}.log").read_text()
    assert project.times() == {}  # neither ran to its end
    assert processes_with(project.token) == []


def _many(count: int, *, chain: bool = False) -> dict[str, dict[str, Any]]:
    agents = ["code-reviewer", "test-runner", "feature-implementer", "refactorer", "debugger"]
    out: dict[str, dict[str, Any]] = {}
    for i in range(count):
        check: dict[str, Any] = {"agent": agents[i % 5], "run": "true", "expected": 0.01}
        if chain and i:
            check["needs"] = [f"c{i - 1:04d}"]
        out[f"c{i:04d}"] = check
    return out


def test_a_thousand_checks_plan_and_collect(project: Project) -> None:
    project.write(_many(1000))
    plan = project.pytester.runpytest_subprocess("--parex", "--parex-plan", timeout=120)
    assert plan.ret == 0, plan.stdout.str()
    plan.stdout.fnmatch_lines(
        [
            "workers: 5 (max-parallel 5)",
            "  1. c0000 *",
            "  1000. c0999 *",
            "predicted: wall 2.00s, sequential 10.00s, *",
        ]
    )
    collected = project.pytester.runpytest_subprocess("--parex", "--collect-only", "-q")
    assert collected.ret == 0
    ids = [line for line in collected.outlines if line.startswith("pyproject.toml::")]
    # Every check once (in plan order, the order an in-process run would use).
    assert sorted(ids) == [f"pyproject.toml::c{i:04d}" for i in range(1000)]
    assert "parex: failed" not in collected.stdout.str()
    # A chain of 1000 needs: one critical path through all of them.
    project.write(_many(1000, chain=True))
    plan = project.pytester.runpytest_subprocess("--parex", "--parex-plan", timeout=120)
    assert plan.ret == 0, plan.stdout.str()
    plan.stdout.fnmatch_lines(["predicted: wall 10.00s, sequential 10.00s, critical path 10.00s*"])


def test_a_thousand_checks_run(project: Project) -> None:
    project.write(_many(1000))
    result = project.pytester.runpytest_subprocess(
        "--parex", *NO_XDIST, "-q", "--parex-json=report.json", timeout=300
    )
    assert result.ret == 0, result.stdout.str()[-3000:]
    result.assert_outcomes(passed=1000)
    report = project.json_report()
    assert report["totals"]["counts"]["passed"] == 1000
    assert len(list((project.path / ".parex" / "logs").glob("c*.log"))) == 1000


# ---------------------------------------------------------------------------- fuzzing


def _toml_key(key: str) -> str:
    return json.dumps(key)


def _toml(value: Any) -> str:
    """An inline TOML value; JSON string escapes are TOML's, but for a few that TOML lacks."""
    if isinstance(value, str):
        return json.dumps(value).replace("\\/", "/")
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (datetime, date, dtime)):
        return value.isoformat()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return toml_value(value)


PLAUSIBLE = st.sampled_from(
    [
        "true",
        ["true"],
        ["python", "-c", "pass"],
        [],
        "",
        "all",
        "any",
        "fail-fast",
        "best-effort",
        "code-reviewer",
        "nope",
        0,
        1,
        2,
        -1,
        10**9,
        0.5,
        True,
        False,
        ["a"],
        ["src/**"],
        {"X": "1"},
    ]
)
SCALARS = st.one_of(
    PLAUSIBLE,
    st.text(max_size=8),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
NAMES = st.one_of(st.sampled_from(["a", "b", "lint", "c-1", "x.y"]), st.text(max_size=6))
CHECK_TABLES = st.dictionaries(
    st.one_of(st.sampled_from(check_keys()), st.text(max_size=6)), VALUES, max_size=5
)
PAREX_TABLES = st.fixed_dictionaries(
    {},
    optional={
        "checks": st.one_of(st.dictionaries(NAMES, CHECK_TABLES | VALUES, max_size=4), VALUES),
        "agents": st.one_of(st.dictionaries(NAMES, VALUES, max_size=3), VALUES),
        **{key: VALUES for key in GLOBAL_KEYS if key not in ("checks", "agents")},
        "unknown-key": VALUES,
    },
)
DOCUMENTS = st.one_of(
    PAREX_TABLES.map(
        lambda t: "[tool.parex]\n" + "".join(f"{_toml_key(k)} = {_toml(v)}\n" for k, v in t.items())
    ),
    st.text(max_size=200),
    st.text(alphabet='[]=".tolpareckhsun \n1', max_size=80).map("[tool.parex]\n".__add__),
)


@settings(
    max_examples=int(os.environ.get("PAREX_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=not os.environ.get("PAREX_FUZZ_RANDOM"),  # CI: the same examples every run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=DOCUMENTS)
def test_any_toml_document_is_a_plan_or_a_one_line_usage_error(
    pytester: pytest.Pytester, document: str
) -> None:
    Path(pytester.path, "gate.toml").write_text(document, encoding="utf-8", errors="surrogatepass")
    result = pytester.runpytest(
        "--parex", *NO_XDIST, "--parex-plan", "--parex-config=gate.toml", "-p", "no:cacheprovider"
    )
    out = "\n".join(result.outlines + result.errlines)
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    if result.ret == pytest.ExitCode.USAGE_ERROR:
        errors = [line for line in result.errlines if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("ERROR: "), errors
        assert "\x1b" not in errors[0]
    else:
        # A [tool.parex] table without checks collects nothing: pytest's own exit code 5.
        assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), out


def test_a_supervisor_that_breaks_makes_its_check_an_error_not_a_hang(project: Project) -> None:
    """A bug in the gate's own code while it supervises a check (here: execute raising) ends
    that check as an error; the other checks and the verdict go on."""
    (project.path / "breaker.py").write_text(
        "import pytest_parex.modes.local as local\n"
        "real = local.execute\n"
        "def execute(check, context):\n"
        "    if check.name == 'broken':\n"
        "        raise RuntimeError('boom in the supervisor')\n"
        "    return real(check, context)\n"
        "local.execute = execute\n"
    )
    project.write(
        {
            "broken": {"agent": "code-reviewer", "run": project.rec("broken", 0)},
            "fine": {"agent": "test-runner", "run": project.rec("fine", 0)},
        }
    )
    result = project.pytester.runpytest_subprocess(
        "-p", "breaker", "--parex", "--parex-no-cache", timeout=120
    )
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines_random(
        [
            "broken*error*internal error: RuntimeError: boom in the supervisor*",
            "fine*passed*",
            "parex: failed: broken had an error",
        ]
    )
    assert "Traceback" not in result.stdout.str()
