"""The pure parts of watch mode: what is watched and ignored, the watcher's batches on real
files, and the reaping of orphans the gate adopts (no zombie, no stolen exit status)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_parex.watching import Ignored, Watcher, directories

pytest.importorskip("watchfiles")


def test_ignored_paths() -> None:
    ignored = Ignored([".parex/logs", "report.json", "", "../outside"])
    for path in (
        ".git/index",
        "pkg/.venv/lib/x.py",
        "src/__pycache__/a.cpython-311.pyc",
        "x.egg-info/PKG-INFO",
        ".parex/logs/lint.log",
        "report.json",
        "node_modules/a/b.js",
        "../elsewhere.py",
        "",
    ):
        assert ignored(path), path
    for path in ("src/a.py", ".gitignore", "build/out.txt", "report.json.bak", ".env"):
        assert not ignored(path), path


def test_directories_prune_virtualenvs_and_caches(tmp_path: Path) -> None:
    for folder in ("src/pkg", ".git/objects", "env/lib", "docs", "out/.mypy_cache/x"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "linked").symlink_to(tmp_path / "docs")
    assert directories(tmp_path, Ignored(["docs"])) == ["", "out", "src", "src/pkg"]


def test_the_watcher_gathers_batches_and_watches_new_directories(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    watcher = Watcher(tmp_path, Ignored([".parex"]))
    watcher.start()
    try:
        assert watcher.ready()
        (tmp_path / "src" / "a.py").write_text("a\n")
        (tmp_path / ".parex").mkdir()
        (tmp_path / ".parex" / "x.log").write_text("ignored\n")
        assert watcher.wait(30)
        assert _take_until(watcher, {"src/a.py"}) >= {"src/a.py"}
        (tmp_path / "new").mkdir()
        assert watcher.wait(30)
        assert "new" in _take_until(watcher, {"new"})
        # Watched from then on: the rebuild keeps what it saw meanwhile, and sees the rest.
        (tmp_path / "new" / "b.py").write_text("b\n")
        assert "new/b.py" in _take_until(watcher, {"new/b.py"})
        assert ".parex/x.log" not in watcher.take() and watcher.batches >= 3
    finally:
        watcher.stop()
    assert watcher.error is None


def _take_until(watcher: Watcher, wanted: set[str]) -> set[str]:
    seen: set[str] = set()
    for _ in range(100):
        seen.update(watcher.take())
        if wanted <= seen:
            return seen
        watcher.wait(0.3)
    pytest.fail(f"never saw {wanted}: {seen}")


# Runs checks through the runner: one leaves an orphan that escaped its group and its marker
# (an env-less setsid daemon) and exits soon after; one exits 3 itself; the probe's own child
# in its own process group exits 5. The orphan must be reaped as it exits, and neither exit
# status may be stolen.
ORPHANS_PROBE = """\
import os, subprocess, sys, time
from pathlib import Path
from pytest_parex import runner

def children():
    out = []
    for task in os.listdir("/proc/self/task"):
        out += open(f"/proc/self/task/{task}/children").read().split()
    states = {}
    for pid in out:
        try:
            states[pid] = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            pass
    return states

# The check ends once its orphan has left its session (or the check's kill would take it).
leave = ("env -i /bin/sh -c 'setsid /bin/sh -c \\"touch escaped; sleep 0.3\\" &'; "
         "while [ ! -f escaped ]; do sleep 0.01; done")
a = runner.run_process([leave], cwd=Path("."), env=dict(os.environ), log=Path("a.log"),
                       timeout=30, shell=True)
b = runner.run_process(["sh", "-c", "exit 3"], cwd=Path("."), env=dict(os.environ),
                       log=Path("b.log"), timeout=30)
own = subprocess.Popen(["sh", "-c", "sleep 0.5; exit 5"])
code = own.wait()  # ours: never the reaper's to take
deadline = time.monotonic() + 10
while children() and time.monotonic() < deadline:  # the orphan: exits, then reaped
    time.sleep(0.05)
print(a.returncode, b.returncode, code, sorted(children().values()), runner.ORPHANS.reaped)
"""


def test_orphans_are_reaped_as_they_exit_without_stealing_a_status(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(ORPHANS_PROBE)
    done = subprocess.run(
        [sys.executable, "probe.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    assert done.returncode == 0, done.stderr
    a, b, own, rest = done.stdout.split(" ", 3)
    left, reaped = rest.rsplit(" ", 1)
    assert (a, b, own) == ("0", "3", "5"), done.stdout
    assert left == "[]", done.stdout  # the orphan is gone: reaped, not a zombie
    assert int(reaped.strip()) >= 1, done.stdout


def test_the_reaper_leaves_children_of_its_own_group_alone() -> None:
    from pytest_parex.runner import Orphans

    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    while True:  # a zombie of this process's own group: subprocess's to wait for
        with open(f"/proc/{child.pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
    assert Orphans().reap() == 0
    assert child.wait(timeout=10) == 7
