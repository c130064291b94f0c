"""A gate inside another parallel runner: tox run-parallel, nox, an xdist worker (pure).

Each of those already keeps the cores busy; a gate that starts one worker per agent on top of
that multiplies processes blindly. It starts fewer instead, and says so in its header line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


def detect(environ: Mapping[str, str], cpu_count: int | None) -> Nesting | None:
    """The runner this process is nested in, from the variables those runners set."""
    half = max(1, (cpu_count or 1) // 2)
    worker = environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # Its siblings run on the other cores; one more process per agent would oversubscribe.
        return Nesting(f"xdist worker {worker}", 1)
    tox = environ.get("TOX_PARALLEL_ENV")
    if tox:
        return Nesting(f"tox run-parallel (TOX_PARALLEL_ENV={tox})", half)
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
