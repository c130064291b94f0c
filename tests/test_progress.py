"""End to end: progress while the gate runs -- a live block under a real pseudo-terminal, plain
lines elsewhere -- and each check's output kept whole."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import Project

NO_XDIST = ("-p", "no:xdist")
SGR = re.compile(r"\x1b\[[0-9;]*m")
CURSOR_UP = re.compile(r"\x1b\[\d+A")
# Prints numbered lines slowly; halfway it waits (bounded, see sync.py in conftest) until the
# OTHER check is halfway too, so two of them running side by side interleave in time for sure.
# Usage: chatty.py NAME COUNT EXIT OTHER.
CHATTY = """\
import os, sys, time
import sync
name, count, code, other = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for i in range(count):
    if i == count // 2:
        sync.touch(sync.marker("half", name))
        half = sync.marker("half", other)
        sync.wait_for(name, f"{other} to be halfway", lambda: os.path.exists(half))
    print(f"{name} line {i}", flush=True)
    time.sleep(0.1)
sys.exit(code)
"""


def run_in_pty(
    project: Project,
    *args: str,
    env: dict[str, str],
    rows: int = 40,
    cols: int = 100,
    release: tuple[Sequence[re.Pattern[str]], Path] | None = None,
) -> tuple[int, str]:
    """Run pytest with a pseudo-terminal as its stdin, stdout and stderr; all it wrote.

    ``release``: (patterns, file) -- create the file once every pattern has been seen in the
    output (colours removed), for a check that waits for it.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project.path,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every process holding the pty's other side has exited
                break
            if not data:
                break
            chunks.append(data)
            if release and not release[1].exists():
                seen = SGR.sub("", b"".join(chunks).decode("utf-8", "replace"))
                if all(pattern.search(seen) for pattern in release[0]):
                    release[1].touch()
        else:
            proc.kill()
            pytest.fail("pytest under the pty did not finish")
        proc.wait(timeout=30)
    finally:
        os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


def screen_of(raw: str, cols: int = 100) -> list[str]:
    """The final screen (tall enough that nothing scrolls away), as a terminal would show it."""
    pyte = pytest.importorskip("pyte")
    screen = pyte.Screen(cols, 500)
    pyte.Stream(screen).feed(raw)
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def tty_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("CI", "NO_COLOR", "PY_COLORS", "FORCE_COLOR", "COLUMNS", "LINES", "TERM"):
        env.pop(var, None)
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


@pytest.mark.parametrize("xdist", [True, False], ids=["xdist", "no-xdist"])
def test_live_block_on_a_terminal_and_a_clean_final_screen(project: Project, xdist: bool) -> None:
    pytest.importorskip("pyte")
    script = "import sys, time; time.sleep(0.6); print('b says no'); sys.exit(1)"
    one_running = re.compile(r"parex \d+\.\ds  1 running")
    a_running = re.compile(r"\n  a\s+code-reviewer\s+running\s+\d+\.\ds")
    # a runs until the block on the terminal has shown it running with one check running
    # (this test then writes release-a): the frame asserted below is awaited, not timed. A
    # block that never shows it leaves a waiting until it fails (see sync.py).
    project.write(
        {
            "a": {"agent": "code-reviewer", "run": project.sync("a", after_file=["release-a"])},
            "b": {"agent": "test-runner", "run": [sys.executable, "-c", script]},
        }
    )
    args = ["--parex", "-n", "2"] if xdist else ["--parex", *NO_XDIST]
    release = ([one_running, a_running], project.path / "release-a")
    code, raw = run_in_pty(project, *args, env=tty_env(), release=release)
    assert code == 1, raw
    text = SGR.sub("", raw)
    # While it ran: the block, redrawn in place, with a running check and the gate's clock.
    assert CURSOR_UP.search(raw), text
    assert one_running.search(text), text
    assert a_running.search(text), text
    lines = screen_of(raw)
    shown = "\n".join(lines)
    # The final screen: the block replaced by one line, then the summary; no frame left over.
    assert not [line for line in lines if re.match(r"parex \d+\.\ds", line)], shown
    assert not [line for line in lines if "running" in line], shown
    final = [line for line in lines if line.startswith("parex: 2 checks in")]
    assert len(final) == 1 and final[0].endswith("s: 1 passed, 1 failed"), shown
    assert lines.index(final[0]) < lines.index("parex: failed: b failed")
    assert "b says no" in shown
    assert "Captured stdout" not in shown  # in-process, nothing leaked into pytest's capture
    # pytest's own progress letters were suppressed, its final line is intact.
    assert re.search(r"=+ 1 failed, 1 passed in [\d.]+s", lines[-1]), shown


@pytest.mark.parametrize("env", [{"TERM": "dumb"}, {"NO_COLOR": "1"}], ids=["dumb", "no-color"])
def test_no_animation_on_a_dumb_or_colourless_terminal(
    project: Project, env: dict[str, str]
) -> None:
    project.write({"a": {"agent": "code-reviewer", "run": project.rec("a", 0.2)}})
    code, raw = run_in_pty(project, "--parex", *NO_XDIST, env=tty_env(**env))
    assert code == 0, raw
    assert not CURSOR_UP.search(raw)
    assert "[parex] a started on w0 (code-reviewer)" in raw
    assert re.search(r"\[parex\] a passed in \d+\.\d\ds", raw)


def test_plain_lines_and_whole_output_blocks_in_a_log(project: Project) -> None:
    (project.path / "chatty.py").write_text(CHATTY)
    project.write(
        {
            "a": {
                "agent": "code-reviewer",
                "run": [sys.executable, "chatty.py", "a", "8", "0", "b"],
            },
            "b": {"agent": "test-runner", "run": [sys.executable, "chatty.py", "b", "8", "1", "a"]},
            "c": {"agent": "debugger", "run": project.rec("c", 0.1), "needs": ["b"]},
        }
    )
    result = project.pytester.runpytest_subprocess("--parex", "--parex-show-output")
    assert result.ret == 1
    out = result.stdout.str()
    assert "\x1b" not in out
    result.stdout.fnmatch_lines_random(
        [
            "[[]parex[]] a started on w? (code-reviewer)",
            "[[]parex[]] b started on w? (test-runner)",
            "[[]parex[]] a passed in *s",
            "[[]parex[]] b failed in *s: exit code 1 (log: .parex/logs/b.log)",
            "[[]parex[]] c skipped: needs b, which failed",
        ]
    )
    # pytest's progress letters are not mixed into the lines.
    assert not re.search(r"^[.FEs]+\[parex\]", out, re.MULTILINE)
    # Each check's output is one block: its lines together, in order, in FAILURES (b) and in
    # the "parex output" section (a and b), never interleaved.
    section = out[out.index("= parex output =") :]
    for name in ("a", "b"):
        block = [f"{name} line {i}" for i in range(8)]
        lines = section.splitlines()
        start = lines.index(block[0])
        assert lines[start : start + 8] == block
    failures = out[out.index("= FAILURES =") : out.index("= parex output =")]
    assert "\n".join(f"b line {i}" for i in range(8)) in failures
    assert "a line" not in failures
    result.stdout.fnmatch_lines(["*- a (passed) -*", "check a passed", "*- b (failed) -*"])


def test_quiet_shows_only_what_ended(project: Project) -> None:
    project.write({"a": {"agent": "code-reviewer", "run": project.rec("a", 0.1)}})
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST, "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["[[]parex[]] a passed in *s"])
    result.stdout.no_fnmatch_line("*started*")
    result = project.pytester.runpytest_subprocess("--parex", *NO_XDIST, "--parex-progress=off")
    result.stdout.no_fnmatch_line("*[[]parex[]]*")
    result.stdout.fnmatch_lines(["pyproject.toml .*"])  # pytest's own progress instead
