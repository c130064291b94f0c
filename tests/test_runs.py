"""Each gate run has its own state (``.parex/run/RUN/``): two gates at once in one checkout
never read each other's shard plan, reports or process group files, and logs are written
whole (:mod:`pytest_parex.runs`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import Project

from pytest_parex import runs

# test_a takes time, the others none: remembered durations put test_a alone in one shard
# and the three others in the other; without them (a count split) two files go each way.
SUITE = {
    "tests/test_a.py": "import time\n\ndef test_a():\n    time.sleep(0.4)\n",
    **{f"tests/test_{n}.py": f"def test_{n}():\n    pass\n" for n in "bcd"},
    # With HOLD set, the first shard waits (after its collection chose its share) until the
    # file "release" exists: another gate runs meanwhile.
    "tests/conftest.py": """
        import os
        import sync

        def pytest_collection_finish(session):
            if os.environ.get("HOLD") and os.environ.get("PYTEST_PAREX_CHECK") == "tests[1/2]":
                open("held", "w").close()
                sync.wait_for("held", "the file release", lambda: os.path.exists("release"))
    """,
}


def _gate(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "--parex", "--parex-no-cache", *args]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """A gate the test gave up on: SIGTERM makes it kill its checks' trees first."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_two_gates_at_once_keep_their_own_shard_plans(project: Project) -> None:
    """Gate A's first shard has chosen its share when gate B -- without remembered
    durations, so splitting otherwise -- runs from start to end in the same checkout. A's
    second shard then starts: it must follow A's plan, or a test runs nowhere (or twice)
    while A passes. Before runs had their own state, B's durations file replaced A's."""
    for name, text in SUITE.items():
        path = project.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    # One test-runner: A's shards run one after the other.
    project.write(
        {"tests": {"pytest": ["-q", "-p", "no:cacheprovider", "tests"], "shards": 2}},
        agents={"test-runner": 1},
    )
    first = project.pytester.runpytest_subprocess("--parex", "--parex-no-cache")
    assert first.ret == 0, first.stdout.str()  # durations remembered
    every = sorted(f"tests/test_{n}.py::test_{n}" for n in "abcd")

    env = {**os.environ, "HOLD": "1"}
    a = subprocess.Popen(
        _gate("--parex-json=a.json"),
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not (project.path / "held").exists():
            assert a.poll() is None, a.communicate()[0].decode(errors="replace")
            assert time.monotonic() < deadline, "gate A's first shard never got to its tests"
            time.sleep(0.05)
        b = project.pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--parex", "--parex-no-cache", "--parex-json=b.json"
        )
        assert b.ret == 0, b.stdout.str()
        (project.path / "release").touch()
        out, _ = a.communicate(timeout=120)
    finally:
        _stop(a)
    assert a.returncode == 0, out.decode(errors="replace")
    for report in ("a.json", "b.json"):
        ran = [
            test
            for check in project.json_report(report)["checks"]
            for test in check["figures"]["tests"]
        ]
        assert sorted(ran) == every, (report, ran)
    assert not list((project.path / ".parex" / "run").iterdir())  # both removed theirs


def test_a_run_removes_its_state_and_prunes_abandoned_ones(tmp_path: Path) -> None:
    base = tmp_path / runs.RUNS_DIR
    host = runs.new_name().rsplit("-", 2)[0]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = base / f"{host}-{dead.pid}-0a1b2c3d"
    alive = base / f"{host}-{os.getpid()}-0a1b2c3d"
    elsewhere = base / "otherhost-12345-0a1b2c3d"
    for path in (gone, alive, elsewhere):
        (path / "x.log").parent.mkdir(parents=True)
        (path / "x.log").write_text("x")
    old = base / "tests.shard-durations.json"  # the layout before runs had directories
    old.write_text("{}")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    name = runs.new_name()
    mine = runs.create(tmp_path, name)
    assert mine == base / name and mine.is_dir()
    assert sorted(p.name for p in base.iterdir()) == sorted([alive.name, elsewhere.name, name])
    # Another host's run: only once it is a day old.
    day = time.time() - runs.STALE_ELSEWHERE - 60
    os.utime(elsewhere, (day, day))
    runs.prune(base, keep=name)
    assert sorted(p.name for p in base.iterdir()) == sorted([alive.name, name])
    runs.remove(mine)
    assert not mine.exists()


@pytest.mark.parametrize("how", [(), ("-n", "2")], ids=["local", "xdist-workers"])
def test_logs_are_kept_whole_once_a_check_ends(project: Project, how: tuple[str, ...]) -> None:
    """While a check runs its output goes to its run's directory; when it ends the log
    replaces ``.parex/logs/NAME.log`` in one step (a reader sees the last run's whole log)."""
    project.write(
        {
            "a": {"run": project.sync("a", after_file=["go"])},
            "b": {"agent": "test-runner", "run": project.rec("b", 0)},
        }
    )
    logs = project.path / ".parex" / "logs"
    logs.mkdir(parents=True)
    (logs / "a.log").write_text("the last run's log\n")
    proc = subprocess.Popen(
        _gate(*how),
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not project.live_log_says("a", "a starting"):
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            assert time.monotonic() < deadline, "check a never started"
            time.sleep(0.05)
        assert (logs / "a.log").read_text() == "the last run's log\n"
        (project.path / "go").touch()
        out, _ = proc.communicate(timeout=120)
    finally:
        _stop(proc)
    assert proc.returncode == 0, out.decode(errors="replace")
    assert "a done with 0" in (logs / "a.log").read_text()
    assert "b done with 0" in (logs / "b.log").read_text()
    assert not list((project.path / ".parex" / "run").iterdir())
