"""Collection: one pytest item per check, under one collector for the config file."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from pytest_parex import checks
from pytest_parex.config import Check, ParexConfig, drop_missing_needs
from pytest_parex.dispatch import Dispatcher
from pytest_parex.output import summary as report
from pytest_parex.results import CANCELLED, SKIPPED, CheckResult

PARK_NAME = "~park"
"""The no-op item that keeps an xdist worker waiting between two checks (see scheduler.py)."""


@dataclass
class GateRun:
    """Everything one gate run shares between hooks; lives in ``config.stash``."""

    config: ParexConfig
    config_path: Path
    context: checks.RunContext
    dispatcher: Dispatcher
    mode: str
    """"xdist" (controller), "worker", "inprocess" or "plan"."""
    why: str = ""
    """Why checks run one after another in this process (for the header)."""
    expected: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    results: dict[str, CheckResult] = field(default_factory=dict)
    cancels: dict[str, str] = field(default_factory=dict)
    """Check name -> reason, set by the controller's cancel command (worker side)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    interrupted: bool = False
    workers: int = 0

    def set_expected(self, expected: dict[str, float], sources: dict[str, str]) -> None:
        self.expected, self.sources = expected, sources
        self.dispatcher = Dispatcher(self.dispatcher.config, expected)

    def restrict(self, names: Sequence[str]) -> None:
        """Schedule only ``names`` (what survived -k, --lf, --deselect): needs on the others
        are dropped, so a deselected check does not block its dependents."""
        # Every worker collects the same checks, so only the first call changes anything.
        if list(names) != [c.name for c in self.dispatcher.config.checks]:
            selected = drop_missing_needs(self.config, names)
            self.dispatcher = Dispatcher(selected, self.expected)

    def cancel(self, name: str, reason: str) -> None:
        with self.lock:
            self.cancels.setdefault(name, reason)

    def cancel_reason(self, name: str) -> str | None:
        with self.lock:
            return self.cancels.get(name) or self.cancels.get("*")


GATE_RUN = pytest.StashKey[GateRun]()


class CheckFailed(Exception):
    """A check did not pass; carries its result for :meth:`ParexItem.repr_failure`."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.name)
        self.result = result


class ParexFile(pytest.File):
    """The config file, as the collector of the checks it defines."""

    def collect(self) -> Iterable[pytest.Item]:
        run = self.config.stash[GATE_RUN]
        for check in run.config.checks:
            yield ParexItem.from_parent(self, name=check.name, check=check)


class ParexItem(pytest.Item):
    """One check."""

    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.add_marker("parex")
        self.result: CheckResult | None = None

    def runtest(self) -> None:
        run = self.config.stash[GATE_RUN]
        name = self.check.name
        result: CheckResult | None = None
        if run.mode == "inprocess":
            skip = run.dispatcher.blocked(name)
            if skip is not None:
                run.dispatcher.finish(name, skip.status)
                result = CheckResult(
                    name,
                    self.check.agent,
                    skip.status,
                    kind=self.check.kind,
                    reason=skip.reason,
                    blocking=self.check.blocking,
                )
            else:
                run.dispatcher.start(name)
                self.config.hook.pytest_parex_check_started(
                    config=self.config, name=name, agent=self.check.agent, worker="main"
                )
        if result is None:
            early = run.cancel_reason(name)
            if early:
                result = CheckResult(
                    name,
                    self.check.agent,
                    CANCELLED,
                    kind=self.check.kind,
                    reason=early,
                    blocking=self.check.blocking,
                )
            else:
                context = replace(run.context, cancelled=lambda: run.cancel_reason(name))
                result = checks.execute(self.check, context)
            if run.mode == "inprocess":
                run.dispatcher.finish(name, result.status)
        self.result = result
        self.user_properties.extend(
            [
                ("parex_agent", result.agent),
                ("parex_status", result.status),
                ("parex_duration", f"{result.duration:.3f}"),
                ("parex_attempts", str(result.attempts)),
                ("parex_detail", result.detail),
            ]
        )
        if result.status in (SKIPPED, CANCELLED):
            pytest.skip(result.reason or result.status)
        if not result.ok:
            raise CheckFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, CheckFailed):
            return report.failure_text(excinfo.value.result, self.config.rootpath)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"parex check: {self.check.name}"


class ParkItem(pytest.Item):
    """Never runs anything; xdist workers idle here between two checks."""

    def runtest(self) -> None:  # pragma: no cover - its protocol is short-circuited
        pass

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "parex park"


def collect(session: pytest.Session, path: Path, *, park: bool) -> list[pytest.Item]:
    """Collect the check items through pytest's own hooks, so ``-k``, ``-m``, ``--lf`` and
    ``--deselect`` apply to them; the park item (workers only) is added after deselection."""
    config = session.config
    hook = config.hook
    parent = ParexFile.from_parent(session, path=path)
    hook.pytest_collectstart(collector=parent)
    rep: pytest.CollectReport = hook.pytest_make_collect_report(collector=parent)
    hook.pytest_collectreport(report=rep)
    items = [x for x in rep.result if isinstance(x, pytest.Item)]
    hook.pytest_collection_modifyitems(session=session, config=config, items=items)
    if park:
        items.append(ParkItem.from_parent(parent, name=PARK_NAME))
    session.items = items
    session.testscollected = len(items) - (1 if park else 0)
    hook.pytest_collection_finish(session=session)
    return items


def order_for_inprocess(items: Sequence[pytest.Item], names: Sequence[str]) -> list[pytest.Item]:
    """``items`` in the order of ``names`` (the plan); others keep their place at the end."""
    position = {n: i for i, n in enumerate(names)}
    return sorted(items, key=lambda it: position.get(it.name, len(position)))
