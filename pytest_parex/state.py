"""The state of one gate run, shared by the hooks of this process (in ``config.stash``)."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_parex.config import Check, ParexConfig, drop_missing_needs
from pytest_parex.dispatch import Dispatcher
from pytest_parex.kinds.base import RunContext
from pytest_parex.results import CheckResult, Status, unrun

if TYPE_CHECKING:
    from pytest_parex.cache.incremental import Incremental
    from pytest_parex.workers import Capped


class Mode(enum.Enum):
    """What this process does in the gate."""

    LOCAL = "local"
    """The default: this process runs the checks side by side, each supervised by a thread
    (local agents; one at a time with ``-n 0``), and owns the summary."""
    CONTROLLER = "xdist"
    """The xdist controller (``-n N``, ``--tx``): schedules checks on workers, owns the
    summary."""
    WORKER = "worker"
    """An xdist worker: runs the checks it is sent."""
    PLAN = "plan"
    """``--parex-plan`` / ``--collect-only``: the plan is printed, no check runs."""

    @property
    def owns_verdict(self) -> bool:
        """Whether this process decides the gate, prints the summary and writes reports."""
        return self in (Mode.LOCAL, Mode.CONTROLLER)


@dataclass
class GateRun:
    """Everything one gate run shares between hooks of one process."""

    config: ParexConfig
    """The gate as configured (after ``--parex-only``/``--parex-skip``)."""
    config_path: Path
    context: RunContext
    mode: Mode
    run_name: str = ""
    """This run's own state directory under ``.parex/run`` (see :mod:`pytest_parex.runs`)."""
    why: str = ""
    """Why checks run one after another in this process (for the header)."""
    capped: Capped | None = None
    """Fewer workers because the gate runs nested in another parallel runner."""
    remembered: dict[str, float] = field(default_factory=dict)
    """Durations remembered by earlier runs (pytest's cache)."""
    expected: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    """Remembered CPU share of each check (see :mod:`pytest_parex.cpubound`)."""
    cores: int = 0
    """The cores the checks share (0: no CPU limit)."""
    sources: dict[str, str] = field(default_factory=dict)
    """Where each expected duration came from ("last runs", "expected key", "no data")."""
    results: dict[str, CheckResult] = field(default_factory=dict)
    cancels: dict[str, str] = field(default_factory=dict)
    """Check name -> reason, set by the controller's cancel command (worker side)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    interrupted: bool = False
    workers: int = 0
    run_check: Callable[[Check], CheckResult] = field(default=lambda check: _no_runner(check))
    """How this process runs one check item (set by the mode's plugin)."""
    incremental: Incremental | None = None
    """The result cache of this run (None when it is off)."""
    inputs_key: Callable[[Check], str] | None = None
    """On an xdist worker of a gate whose cache is on: the cache key of a check on this
    worker's tree, interpreter and environment (see :attr:`CheckResult.inputs_key`)."""
    replayed: dict[str, CheckResult] = field(default_factory=dict)
    """Checks that do not run: their last pass is replayed (the result cache)."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Why each check runs, or "cached" (the result cache; empty when it is off)."""
    selected: ParexConfig | None = None
    """The checks that survived -k, --lf and --deselect (None until collection says)."""
    collected: tuple[str, ...] | None = None
    """The checks the collector produced -- after the collect-report hooks (``--lf`` keeps
    only the last failures there), before ``pytest_collection_modifyitems``."""
    deselected: set[str] = field(default_factory=set)
    """Checks the user deselected (``pytest_deselected``: -k, -m, --deselect, --lf)."""
    dropped: dict[str, CheckResult] = field(default_factory=dict)
    """Selected checks that cannot run: a collection hook removed them without deselecting
    them. They stay in the selection as errors: the gate never counts fewer than selected."""
    problems: list[str] = field(default_factory=list)
    """Why the gate cannot account for every selected check (a worker that cannot run it, a
    check removed from the collection), one line each: any of them fails the gate."""
    watching: bool = False
    """``--parex-watch``: rounds follow the project's edits (:mod:`pytest_parex.modes.watch`)."""
    _dispatcher: Dispatcher | None = None

    @property
    def checks(self) -> ParexConfig:
        """The gate as it runs: the selected checks once collection has chosen them."""
        return self.selected if self.selected is not None else self.config

    def select(self, names: Sequence[str]) -> None:
        """Schedule only ``names`` (what survived -k, --lf, --deselect): needs on the others
        are dropped, so a deselected check does not block its dependents. Only the first call
        counts (the collection of the process that owns the verdict).

        A check that is neither collected nor deselected (a plugin's or conftest's
        ``pytest_collection_modifyitems`` removed it) stays selected, as an error: only the
        user's deselection makes the gate smaller."""
        if self.selected is not None:
            return
        kept = set(names)
        offered = set(self.collected if self.collected is not None else names)
        lost = [
            c
            for c in self.config.checks
            if c.name in offered and c.name not in kept and c.name not in self.deselected
        ]
        for check in lost:
            self.dropped[check.name] = unrun(check, Status.ERROR, DROPPED, detail=DROPPED)
        if lost:
            shown = ", ".join(c.name for c in lost[:5]) + (" ..." if len(lost) > 5 else "")
            self.problems.append(
                f"{len(lost)} check{'s' if len(lost) != 1 else ''} ({shown}) removed from the "
                "collection without being deselected (by a pytest_collection_modifyitems hook "
                "of a plugin or conftest.py); choose checks with -k, -m, --deselect or "
                "--parex-skip instead"
            )
        chosen = [c.name for c in self.config.checks if c.name in kept or c.name in self.dropped]
        if chosen == [c.name for c in self.config.checks]:
            self.selected = self.config
        else:
            self.selected = drop_missing_needs(self.config, chosen)

    @property
    def dispatcher(self) -> Dispatcher:
        """The scheduling state, built once -- after the expected durations and the selection
        are known (workers never build one)."""
        if self._dispatcher is None:
            done = {n: r.status for n, r in {**self.replayed, **self.dropped}.items()}
            # Backfill when the plan for these workers does (see plan.simulate): the same
            # decision in the plan and the run.
            backfill = True
            if self.workers > 1 and any(c.exclusive for c in self.checks.checks):
                from pytest_parex.plan import simulate

                planned = simulate(
                    self.checks, self.expected, self.workers, done, cpu=self.cpu, cores=self.cores
                )
                backfill = planned.backfill
            self._dispatcher = Dispatcher(
                self.checks,
                self.expected,
                done,
                cpu=self.cpu,
                cores=self.cores,
                backfill=backfill,
                fail_fast_on_done=not self.watching,
            )
        return self._dispatcher

    def cancel(self, name: str, reason: str) -> None:
        with self.lock:
            self.cancels.setdefault(name, reason)

    def uncancel(self, name: str) -> None:
        """``name`` may run again (the watch loop restarts a check it cancelled)."""
        with self.lock:
            self.cancels.pop(name, None)

    def new_round(self) -> None:
        """The watch loop starts another round: no result, no cancellation, a new clock and a
        new dispatcher (built from :attr:`replayed`, which the loop set)."""
        with self.lock:
            self.cancels.clear()
        self.results.clear()
        self.started = time.time()
        self.finished = None
        self.interrupted = False
        self._dispatcher = None

    def cancel_reason(self, name: str) -> str | None:
        with self.lock:
            return self.cancels.get(name) or self.cancels.get("*")


DROPPED = "removed from the collection without being deselected"


def _no_runner(check: Check) -> CheckResult:
    raise RuntimeError(f"parex: check {check.name} was to run where no check runs")


GATE_RUN = pytest.StashKey[GateRun]()
GATE_PRINT = pytest.StashKey[str]()
"""The fingerprint of the gate's table, on the controller (sent to its workers)."""


def run_here(run: GateRun, check: Check) -> CheckResult:
    """Run ``check`` in this process, unless the controller already cancelled it; on a worker
    of a cached gate, say what it ran on (:attr:`GateRun.inputs_key`, keyed before it
    starts)."""
    from dataclasses import replace

    from pytest_parex.execute import execute
    from pytest_parex.results import Status, unrun

    early = run.cancel_reason(check.name)
    if early:
        return unrun(check, Status.CANCELLED, early)
    key = run.inputs_key(check) if run.inputs_key is not None else ""
    result = execute(check, replace(run.context, cancelled=lambda: run.cancel_reason(check.name)))
    return replace(result, inputs_key=key) if key else result
