"""End to end: ``pytest --parex --parex-watch`` with a real watcher on real files. Every wait
is on what the gate prints (a round's status line, a check's start), bounded; nothing sleeps to
let time pass."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import DEFAULT_SIGINT_EXEC, Project, wait_gone
from test_incremental import _check, _counter, _runs

pytest.importorskip("watchfiles")

BOUND = 90.0
"""Seconds any one wait may take before the test fails (a loaded 2-core machine)."""
SGR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# Waits (bounded) until ../NAME-go exists, then exits 0; leaves a child behind meanwhile
# whose argv carries the project's token (the fixture proves no such process outlives it).
HOLD = """\
import os, subprocess, sys, time
token = sys.argv[2]
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", token])
print("hold waiting", flush=True)
flag = os.path.join("..", os.path.basename(os.getcwd()) + "-go")
deadline = time.monotonic() + 60
while not os.path.exists(flag):
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.02)
child.kill()
child.wait()
"""

# Writes the time into an ignored file inside the tree: the check's own output, never an input.
STAMP = """\
import os, time
os.makedirs("out", exist_ok=True)
with open(os.path.join("out", "stamp.txt"), "w") as fh:
    fh.write(str(time.time()))
"""


class Watching:
    """``pytest --parex --parex-watch ARGS`` in the project, its output read as it comes (a
    pipe, or a pseudo-terminal with ``tty=True``)."""

    def __init__(
        self, project: Project, *args: str, tty: bool = False, quiet_ms: int | None = None
    ) -> None:
        self.project = project
        extra = {"PYTEST_PAREX_WATCH_QUIET": str(quiet_ms)} if quiet_ms else {}
        self._buf: list[str] = []
        self._lock = threading.Lock()
        argv = [sys.executable, "-c", DEFAULT_SIGINT_EXEC, "-m", "pytest", "--parex"]
        if not any(a.startswith("--parex-watch") for a in args):
            args = ("--parex-watch", *args)
        argv += ["-p", "no:randomly", *args]
        if tty:
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            env = dict(os.environ)
            for var in ("CI", "NO_COLOR", "PY_COLORS", "FORCE_COLOR", "COLUMNS", "LINES"):
                env.pop(var, None)
            env["TERM"] = "xterm-256color"
            env.update(extra)
            self.proc = subprocess.Popen(
                argv, cwd=project.path, stdin=slave, stdout=slave, stderr=slave, env=env
            )
            os.close(slave)
            self._fd = master
        else:
            self.proc = subprocess.Popen(
                argv,
                cwd=project.path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, **extra},
            )
            assert self.proc.stdout is not None
            self._fd = self.proc.stdout.fileno()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except OSError:  # a pty whose other side is closed
                break
            if not data:
                break
            with self._lock:
                self._buf.append(data.decode("utf-8", "replace"))

    @property
    def output(self) -> str:
        with self._lock:
            return SGR.sub("", "".join(self._buf)).replace("\r", "")

    def wait_for(self, pattern: str, count: int = 1) -> str:
        """Wait until ``pattern`` (a regex) occurs ``count`` times in the output."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + BOUND
        while len(regex.findall(self.output)) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"never saw {pattern!r} x{count}:\n{self.output}")
            time.sleep(0.02)
        return self.output

    def round(self, n: int, word: str = "passed") -> str:
        """Wait for round ``n``'s status line."""
        return self.wait_for(rf"^parex watch: round {n} {word} in ")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C; the exit code and everything it printed."""
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running 60 s after Ctrl-C:\n{self.output}")
        self._close()
        return code, self.output

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        else:
            with contextlib.suppress(OSError):
                os.close(self._fd)


def ran_in(output: str, n: int) -> list[str]:
    """The checks that started in round ``n`` (from its plain progress lines)."""
    start = output.index(f"parex watch: round {n}:") if n > 1 else 0
    end = output.index(f"parex watch: round {n} ", start + 1)
    return sorted(re.findall(r"^\[parex\] (\S+) started", output[start:end], re.MULTILINE))


def _project(project: Project) -> None:
    subprocess.run(["git", "init", "-q"], cwd=project.path, check=True)
    (project.path / ".gitignore").write_text("out/\n")
    _counter(project)
    (project.path / "stamp.py").write_text(STAMP)
    for folder in ("src", "docs"):
        (project.path / folder).mkdir()
    (project.path / "src" / "a.py").write_text("A = 1\n")
    (project.path / "docs" / "index.md").write_text("# docs\n")
    project.write(
        {
            "py": _check("py", reads=["src/**"]),
            "docs": _check("docs", reads=["docs/**"], agent="debugger"),
            "all": _check("all", agent="refactorer"),
            "stamp": {"run": [sys.executable, "stamp.py"], "reads": ["stamp.py"]},
        }
    )


def test_an_edit_reruns_exactly_the_checks_that_read_it(project: Project) -> None:
    """One edit reruns the checks whose inputs it changed, the rest are not run; a burst of
    edits is one round; a check's own (ignored) writes start no round; a change no check
    reads starts none either."""
    _project(project)
    # A batch ends after 30 ms without a change; a loaded machine may stop this process that
    # long between two writes of the burst: 400 ms here, so one burst stays one batch.
    gate = Watching(project, "--parex-progress=plain", quiet_ms=400)
    gate.round(1)
    assert _runs(project, "py") == _runs(project, "docs") == _runs(project, "all") == 1
    (project.path / "docs" / "index.md").write_text("# docs, edited\n")
    out = gate.round(2)
    assert "parex watch: round 2: docs/index.md changed: all, docs (2 not rerun)" in out
    assert ran_in(out, 2) == ["all", "docs"], out
    for i in range(6):  # a burst: one round
        (project.path / "src" / f"m{i}.py").write_text(f"M = {i}\n")
    out = gate.round(3)
    assert ran_in(out, 3) == ["all", "py"], out
    assert re.search(r"round 3: 6 files changed: src/m0\.py, src/m1\.py, \+4 more: all, py", out)
    (project.path / "out" / "by-hand.txt").write_text("ignored\n")
    # (stamp's own write, or the burst's last events, may come in the same batch)
    gate.wait_for(r"^parex watch: out/by-hand\.txt(, \+\d+ more)?: no check's inputs changed")
    code, out = gate.stop()
    assert code == 0, out
    assert "parex watch: round 4" not in out  # stamp's own writes never started one
    assert (_runs(project, "py"), _runs(project, "docs"), _runs(project, "all")) == (2, 2, 3)
    assert "parex watch: stopped after 3 rounds" in out
    assert "parex watch: the last round (3) passed" in out


def test_a_failure_whose_inputs_did_not_change_is_not_rerun(project: Project) -> None:
    """A failed check keeps its failure while its inputs stay the same (not run again for
    another check's change); the exit code is the last round's."""
    _project(project)
    project.write(
        {
            "py": _check("py", reads=["src/**"]),
            "docs": {
                **_check("docs", reads=["docs/**"], agent="debugger"),
                "env": {"FAIL": "docs"},
            },
        }
    )
    gate = Watching(project, "--parex-progress=plain")
    gate.round(1, "failed")
    (project.path / "src" / "a.py").write_text("A = 2\n")
    out = gate.round(2, "failed")
    assert ran_in(out, 2) == ["py"], out
    assert re.search(r"docs +debugger +failed .*not rerun: inputs unchanged", out), out
    code, out = gate.stop()
    assert code == 1, out
    assert _runs(project, "docs") == 1


def _hold(project: Project, *, restart: bool) -> Watching:
    subprocess.run(["git", "init", "-q"], cwd=project.path, check=True)
    (project.path / "hold.py").write_text(HOLD)
    (project.path / "src").mkdir()
    (project.path / "docs").mkdir()
    (project.path / "src" / "a.py").write_text("A = 1\n")
    (project.path / "docs" / "index.md").write_text("# docs\n")
    project.write(
        {
            "hold": {"run": [sys.executable, "hold.py", "x", project.token], "reads": ["src/**"]},
            "docs": {"run": ["cat", "docs/index.md"], "reads": ["docs/**"], "agent": "debugger"},
        }
    )
    go = project.path.parent / f"{project.path.name}-go"
    go.touch()
    mode = "--parex-watch=restart" if restart else "--parex-watch"
    gate = Watching(project, mode, "--parex-progress=plain", "-v")
    gate.round(1)
    go.unlink()
    (project.path / "src" / "a.py").write_text("A = 2\n")
    gate.wait_for(r"^\[parex\] hold started", 2)
    log = project.path / ".parex" / "logs" / "hold.log"
    deadline = time.monotonic() + BOUND
    while "hold waiting" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, gate.output
        time.sleep(0.02)
    (project.path / "src" / "b.py").write_text("B = 1\n")  # while hold runs
    return gate


def _checks_of(project: Project, *args: str) -> dict[str, tuple[str, bool]]:
    """A gate in the project, in the watch loop's environment: {check: (status, cached)}."""
    report = project.path.parent / f"{project.path.name}-report.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "--parex", f"--parex-json={report}", "-p",
         "no:randomly", *args],
        cwd=project.path, capture_output=True, timeout=300,
    )  # fmt: skip
    return {c["name"]: (c["status"], c["cached"]) for c in json.loads(report.read_text())["checks"]}


def _agrees_after(project: Project) -> None:
    """What the loop recorded is true: a gate now replays only what running it confirms."""
    (project.path.parent / f"{project.path.name}-go").touch()
    cached = _checks_of(project)
    uncached = _checks_of(project, "--parex-no-cache")
    assert {n: s for n, (s, _) in cached.items()} == {n: s for n, (s, _) in uncached.items()}
    assert {n for n, (_, c) in cached.items() if c} == {"hold", "docs"}  # the last passes


def test_an_edit_during_a_round_queues_one_more(project: Project) -> None:
    gate = _hold(project, restart=False)
    (project.path.parent / f"{project.path.name}-go").touch()
    out = gate.round(2)
    assert "src/b.py added while it ran" in out  # its pass is not recorded
    out = gate.round(3)
    assert "parex watch: round 3: src/b.py added: hold" in out, out
    code, out = gate.stop()
    assert code == 0, out
    assert wait_gone(project.token) == []
    _agrees_after(project)


def test_restart_cancels_the_affected_tree_and_starts_it_again(project: Project) -> None:
    gate = _hold(project, restart=True)
    out = gate.wait_for(r"^parex watch: hold restarted: src/b\.py added")
    gate.wait_for(r"^\[parex\] hold started", 3)
    # The first run's tree (hold.py and its child) is gone; the new run's is there.
    assert len(wait_gone(project.token, timeout=0)) <= 2
    (project.path.parent / f"{project.path.name}-go").touch()
    out = gate.round(2)
    assert "rewritten while it ran" not in out and "changed while it ran" not in out
    (project.path / "docs" / "index.md").write_text("# docs 2\n")
    out = gate.round(3)
    assert "parex watch: round 3: docs/index.md changed: docs" in out  # no round for b.py
    code, out = gate.stop()
    assert code == 0, out
    assert wait_gone(project.token) == []
    _agrees_after(project)


def test_ctrl_c_during_a_round_kills_it_and_keeps_the_last_rounds_code(
    project: Project,
) -> None:
    gate = _hold(project, restart=False)
    code, out = gate.stop()
    assert code == 0, out  # round 1 passed; round 2 was cut short
    assert "parex watch: stopped after 1 round" in out
    assert wait_gone(project.token) == []


def test_a_check_that_writes_its_own_input_converges(project: Project) -> None:
    """A check that writes a file another check reads (declared in writes, the same bytes
    each time): the reader reruns once on the new file, then the loop rests."""
    subprocess.run(["git", "init", "-q"], cwd=project.path, check=True)
    _counter(project)
    (project.path / "gen.py").write_text(
        "import os\nos.makedirs('gen', exist_ok=True)\nopen('gen/data.txt', 'w').write('1')\n"
    )
    (project.path / "docs").mkdir()
    (project.path / "docs" / "index.md").write_text("# docs\n")
    project.write(
        {
            "gen": {"run": [sys.executable, "gen.py"], "reads": ["gen.py"], "writes": ["gen/**"]},
            "use": _check("use", reads=["gen/**"], needs=["gen"], agent="debugger"),
            "docs": _check("docs", reads=["docs/**"], agent="refactorer"),
        }
    )
    gate = Watching(project, "--parex-progress=plain")
    gate.round(1)
    # gen/ appeared while "use" ran: one more round for it (at most), then rest.
    (project.path / "docs" / "index.md").write_text("# docs 2\n")
    out = gate.wait_for(r"^parex watch: round \d+: docs/index\.md changed: docs")
    rounds = re.findall(r"^parex watch: round (\d+): ", out, re.MULTILINE)
    assert int(rounds[-1]) <= 3, out
    code, out = gate.stop()
    assert code == 0, out


def test_live_block_under_a_terminal(project: Project) -> None:
    """The live block is drawn each round and replaced by its one line; the status line
    follows."""
    _project(project)
    gate = Watching(project, tty=True)
    gate.round(1)
    (project.path / "src" / "a.py").write_text("A = 5\n")
    out = gate.round(2)
    assert re.search(r"parex: 4 checks in [0-9.]+s: 2 cached, 2 passed", out), out
    code, out = gate.stop()
    assert code == 0, out
    assert out.count("parex round 2") == 1


def test_two_hundred_rounds_hold_steady(project: Project) -> None:
    """Each round leaves an orphan (escaped from the check's group and marker) that exits
    soon after: none stays a zombie; memory and open files stay flat."""
    subprocess.run(["git", "init", "-q"], cwd=project.path, check=True)
    (project.path / "src").mkdir()
    (project.path / "src" / "a.py").write_text("0\n")
    project.write(
        {
            "t": {
                "run": "env -i /bin/sh -c 'setsid sleep 0.01 &' ; cat src/a.py",
                "shell": True,
                "reads": ["src/**"],
            }
        }
    )
    gate = Watching(project, "-q")
    gate.round(1)
    pid = gate.proc.pid
    samples: dict[int, tuple[int, int]] = {}
    for n in range(2, 201):
        (project.path / "src" / "a.py").write_text(f"{n}\n")
        gate.round(n)
        if n in (20, 200):
            samples[n] = (_rss_kib(pid), len(os.listdir(f"/proc/{pid}/fd")))
    deadline = time.monotonic() + 10
    while _zombies(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _zombies(pid) == []
    (rss20, fds20), (rss200, fds200) = samples[20], samples[200]
    assert fds200 <= fds20, samples
    # KiB: flat (measured: about 1 MiB of allocator steps over 180 rounds, then none over 400
    # more), not a leak per round (20 KiB a round would be 3.6 MiB).
    assert rss200 - rss20 < 3 * 1024, samples
    code, _ = gate.stop()
    assert code == 0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _zombies(pid: int) -> list[int]:
    found = []
    # A thread or a child can end between two reads of /proc: gone is not a zombie.
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            try:
                stat = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            if stat[0] == "Z":
                found.append(int(child))
    return found


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-n", "2"], "--parex-watch runs the checks on local agents, round after round: drop -n"),
        (["--parex-plan"], "drop --parex-plan and --collect-only"),
        (["--parex-watch=sometimes"], "expected queue or restart, got 'sometimes'"),
        (["WATCH_QUIET=soon"], "PYTEST_PAREX_WATCH_QUIET must be milliseconds between 1 and"),
    ],
)
def test_watch_usage_errors(
    project: Project, args: Sequence[str], error: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write({"a": {"run": ["true"]}})
    if args[0].startswith("WATCH_QUIET="):
        monkeypatch.setenv("PYTEST_PAREX_WATCH_QUIET", args[0].split("=", 1)[1])
        args = []
    result = project.pytester.runpytest_subprocess("--parex", "--parex-watch", *args)
    assert result.ret == 4
    assert error in result.stderr.str() + result.stdout.str()


def test_without_watchfiles_one_line_says_how_to_get_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write({"a": {"run": ["true"]}})
    blocker = project.path / "blocker"
    blocker.mkdir()
    (blocker / "watchfiles.py").write_text("raise ImportError('not installed here')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocker))
    result = project.pytester.runpytest_subprocess("--parex", "--parex-watch")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: --parex-watch needs watchfiles, which is not installed: pip install "
         "'pytest-parex[watch]'"]
    )  # fmt: skip


def test_a_loop_that_starts_all_cached_still_runs_its_rounds_side_by_side(
    project: Project,
) -> None:
    _project(project)
    assert {c for c, (_, cached) in _checks_of(project).items() if cached} == set()
    gate = Watching(project, "--parex-progress=plain")
    out = gate.round(1)
    assert "4 ran" not in out and "0 ran, 4 not rerun" in out, out
    (project.path / "src" / "a.py").write_text("A = 7\n")
    out = gate.round(2)
    workers = re.findall(r"^\[parex\] (?:all|py) started on (w\d)", out, re.MULTILINE)
    assert sorted(workers) == ["w0", "w1"], out
    code, _ = gate.stop()
    assert code == 0
