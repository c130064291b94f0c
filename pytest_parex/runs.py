"""Each gate run's own state directory, ``.parex/run/RUN/`` (pure).

What the checks of one run hand each other -- the shard plan every shard reads, each child
pytest's report, the leak and benchmark reports, the process group files the controller
kills from, each check's log while it runs -- lives in a directory of that run alone: two
gates at once in one checkout (an editor's gate beside a terminal's, two CI jobs in one
workspace) never read each other's. The process that owns the verdict makes it (xdist
workers get its name through ``workerinput``) and removes it when the gate ends; the
directories of runs whose process is gone (killed, the machine rebooted) go when the next
gate starts.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

RUNS_DIR = Path(".parex") / "run"
"""Relative to the rootdir."""
WORKER_KEY = "parex_run"
"""``workerinput`` key: the run's name, from the controller to its workers."""
STALE_ELSEWHERE = 24 * 3600.0
"""Seconds after which a run directory made on another host (a remote worker's checkout)
is taken to be abandoned: its process cannot be asked."""

_NAME = re.compile(r"^(?P<host>[A-Za-z0-9_.-]*)-(?P<pid>\d+)-[0-9a-f]+$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:40] or "host"


def new_name() -> str:
    """A run's name: the host and process that own it (so a later gate can tell whether it
    is still running), and a random part."""
    return f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}"


def directory(rootdir: Path, name: str) -> Path:
    return rootdir / RUNS_DIR / name


def create(rootdir: Path, name: str) -> Path:
    """Make the run's directory (and remove those of runs that ended without removing
    theirs)."""
    path = directory(rootdir, name)
    path.mkdir(parents=True, exist_ok=True)
    prune(path.parent, keep=name)
    return path


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, another user's
        return True
    return True


def abandoned(entry: Path, now: float, host: str) -> bool:
    """Whether ``entry`` (in the runs directory) belongs to no running gate: a run made on
    this host whose process is gone, one made elsewhere a day ago, or a file of the layout
    before runs had directories."""
    found = _NAME.match(entry.name)
    try:
        age = now - entry.lstat().st_mtime
    except OSError:
        return False
    if not entry.is_dir() or found is None:
        return age > 60.0  # a leftover of an older version (give a running one a minute)
    if found.group("host") == host:
        return not _alive(int(found.group("pid")))
    return age > STALE_ELSEWHERE


def prune(runs: Path, keep: str) -> None:
    """Remove what :func:`abandoned` says no gate uses any more."""
    now = time.time()
    host = _host()
    try:
        entries = sorted(runs.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name == keep or not abandoned(entry, now, host):
            continue
        if entry.is_dir() and not entry.is_symlink():
            remove(entry)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
