"""A gate inside another parallel runner: tox run-parallel, nox, an xdist worker (pure).

Each of those already keeps the cores busy; a gate that starts one worker per agent on top of
that multiplies processes blindly. It starts fewer instead, and says so in its header line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Nesting:
    """What the gate runs inside, and how many workers it may start there."""

    where: str
    """"tox run-parallel (TOX_PARALLEL_ENV=py311)", ... for the header line."""
    cap: int


@dataclass(frozen=True)
class Capped:
    """The outcome of :func:`apply`: the nesting, the workers wanted and those allowed."""

    nesting: Nesting
    wanted: int
    allowed: int
    explicit: bool
    """The user chose the worker count (``-n``, ``--tx``, ``--parex-max-parallel``)."""

    def note(self) -> str:
        if self.explicit:
            return f"inside {self.nesting.where}; worker count set explicitly, not capped"
        workers = f"{self.allowed} worker{'s' if self.allowed != 1 else ''}"
        return f"inside {self.nesting.where}: capped at {workers} (of {self.wanted})"


NESTING = pytest.StashKey[Capped]()


def tox_parallel(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is a tox that runs environments in parallel (``tox p``,
    ``tox run-parallel``, ``tox -p auto``, ``tox --parallel``)."""
    for i, arg in enumerate(argv[:3]):
        if Path(arg).name == "tox" or (arg == "-m" and argv[i + 1 : i + 2] == ["tox"]):
            start = i + (2 if arg == "-m" else 1)
            break
    else:
        return False
    rest = list(argv[start:])
    if "--" in rest:  # what follows goes to the commands (pytest's own -p, say)
        rest = rest[: rest.index("--")]
    words = [a for a in rest if not a.startswith("-")]
    if words[:1] in (["p"], ["run-parallel"]):
        return True
    return any(a in ("-p", "--parallel") or a.startswith("--parallel=") for a in rest)


def ancestors(limit: int = 8) -> Iterator[list[str]]:
    """The command lines of this process's parents, nearest first (Linux ``/proc``; nothing
    elsewhere)."""
    pid = os.getppid()
    for _ in range(limit):
        if pid <= 1:
            return
        proc = Path("/proc") / str(pid)
        try:
            argv = proc.joinpath("cmdline").read_bytes().decode(errors="replace").split("\0")
            pid = int(proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return
        yield [a for a in argv if a]


def detect(
    environ: Mapping[str, str],
    cpu_count: int | None,
    parents: Iterator[Sequence[str]] | None = None,
) -> Nesting | None:
    """The runner this process is nested in, from the variables those runners set.

    tox 4 no longer sets ``TOX_PARALLEL_ENV`` (tox 3 did): under tox, when the variable is
    missing, the parent processes' command lines tell whether it runs environments in parallel.
    """
    half = max(1, (cpu_count or 1) // 2)
    worker = environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # Its siblings run on the other cores; one more process per agent would oversubscribe.
        return Nesting(f"xdist worker {worker}", 1)
    tox = environ.get("TOX_PARALLEL_ENV")
    if tox:
        return Nesting(f"tox run-parallel (TOX_PARALLEL_ENV={tox})", half)
    env = environ.get("TOX_ENV_NAME")
    if env and any(tox_parallel(argv) for argv in (parents or ancestors())):
        return Nesting(f"tox run-parallel (env {env})", half)
    nox = environ.get("NOX_CURRENT_SESSION")
    if nox:
        return Nesting(f"nox (NOX_CURRENT_SESSION={nox})", half)
    return None


def apply(
    environ: Mapping[str, str], cpu_count: int | None, wanted: int, *, explicit: bool
) -> Capped | None:
    """How many workers to start when ``wanted`` would be started outside any runner."""
    nesting = detect(environ, cpu_count)
    if nesting is None:
        return None
    allowed = wanted if explicit else max(1, min(wanted, nesting.cap))
    return Capped(nesting, wanted, allowed, explicit)
