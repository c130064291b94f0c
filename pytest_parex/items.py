"""Collection: one pytest item per check, under one collector for the config file; and the
park item xdist workers idle in between two checks (see :mod:`pytest_parex.scheduler`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_parex import testplugins
from pytest_parex.config import Check
from pytest_parex.output.summary import failure_text
from pytest_parex.results import CheckResult, Status
from pytest_parex.state import GATE_RUN

PARK_NAME = "~park"
"""The no-op item that keeps an xdist worker waiting between two checks (see scheduler.py)."""


class CheckFailed(Exception):
    """A check did not pass; carries its result for :meth:`ParexItem.repr_failure`."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.name)
        self.result = result


def properties(result: CheckResult) -> list[tuple[str, str]]:
    """What a check's test report carries in ``user_properties`` (and so in JUnit XML)."""
    return [
        ("parex_agent", result.agent),
        ("parex_status", result.status.value),
        ("parex_duration", f"{result.duration:.3f}"),
        ("parex_attempts", str(result.attempts)),
        ("parex_detail", result.detail),
        ("parex_cached", "true" if result.cached else "false"),
    ]


class ParexFile(pytest.File):
    """The config file, as the collector of the checks it defines."""

    def collect(self) -> Iterable[pytest.Item]:
        run = self.config.stash[GATE_RUN]
        for check in run.config.checks:
            yield ParexItem.from_parent(self, name=check.name, check=check)


class ParexItem(pytest.Item):
    """One check. How it runs (on a worker, or in this process with the dispatcher's say)
    is the mode's: ``GateRun.run_check``."""

    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.add_marker("parex")
        for mark in testplugins.marks(self.config):  # per-test plugins leave checks alone
            self.add_marker(mark)
        self.result: CheckResult | None = None

    def runtest(self) -> None:
        result = self.config.stash[GATE_RUN].run_check(self.check)
        self.result = result
        self.user_properties.extend(properties(result))
        if result.status in (Status.SKIPPED, Status.CANCELLED):
            pytest.skip(result.reason or result.status.value)
        if not result.ok:
            raise CheckFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, CheckFailed):
            return failure_text(excinfo.value.result, self.config.rootpath)
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
    ``--deselect`` apply to them where the verdict is owned.

    An xdist worker (``park``) collects every check of its config, in the config's order,
    and the park item: the controller chooses (its own collection) and checks that each
    worker's list is its gate -- a worker elsewhere, with its own cache and conftest files,
    would choose differently, and index i must mean the same check on every worker."""
    config = session.config
    hook = config.hook
    parent = ParexFile.from_parent(session, path=path)
    items: list[pytest.Item]
    if park:
        # No collection hook at all: --lf filters in pytest_make_collect_report already.
        items = [*parent.collect(), ParkItem.from_parent(parent, name=PARK_NAME)]
    else:
        hook.pytest_collectstart(collector=parent)
        rep: pytest.CollectReport = hook.pytest_make_collect_report(collector=parent)
        hook.pytest_collectreport(report=rep)
        items = [x for x in rep.result if isinstance(x, pytest.Item)]
        config.stash[GATE_RUN].collected = tuple(it.name for it in items)
        hook.pytest_collection_modifyitems(session=session, config=config, items=items)
    session.items = items
    session.testscollected = len(items) - (1 if park else 0)
    hook.pytest_collection_finish(session=session)
    return items


def order_by(items: Sequence[pytest.Item], names: Sequence[str]) -> list[pytest.Item]:
    """``items`` in the order of ``names`` (the plan); others keep their place at the end."""
    position = {n: i for i, n in enumerate(names)}
    return sorted(items, key=lambda it: position.get(it.name, len(position)))
