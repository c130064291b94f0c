"""Local agents: the gate's own process runs the checks side by side.

Every check is a process of its own (its own process group, see :mod:`pytest_parex.runner`);
what an agent instance does while its check runs is wait for that process, enforce its
timeout and honour a cancellation. That takes a thread, not a Python interpreter: here each
running check is supervised by a thread of the gate's process, while the main thread keeps
the scheduling (the same :class:`~pytest_parex.dispatch.Dispatcher` as with xdist workers: agent
slots, instance limits, ``needs``, conflicts, gates, fail-fast) and everything pytest sees.
Nothing has to start before the first check does, which is where xdist workers cost a second.

Each check is still one pytest item: when its check ends, the item's runtest protocol runs in
the main thread and hands pytest (terminal, JUnit XML, ``--lf``) the result.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from pytest_parex.config import Check
from pytest_parex.dispatch import Action, Cancel, Run, Skip, workers_needed
from pytest_parex.execute import execute
from pytest_parex.items import ParexItem
from pytest_parex.modes.base import CollectChecks, VerdictPlugin
from pytest_parex.results import CheckResult, Status, unrun
from pytest_parex.state import GateRun

INTERRUPTED = "interrupted"
JOIN_TIMEOUT = 30.0
"""Seconds to wait for supervising threads once they were told to stop: the runner kills a
check's tree within a fraction of a second of seeing the cancellation."""


class LocalPlugin(CollectChecks, VerdictPlugin):
    """Schedules the checks on local agent slots (threads); owns the verdict."""

    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        super().__init__(config, run)
        run.run_check = self._result_of
        self._done: queue.SimpleQueue[tuple[str, CheckResult]] = queue.SimpleQueue()
        self._threads: dict[str, threading.Thread] = {}
        self._ready: dict[str, CheckResult] = {}

    # ------------------------------------------------------------------ the loop

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(
                f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} "
                "during collection"
            )
        if session.config.option.collectonly:
            return True
        items = {it.name: it for it in session.items if isinstance(it, ParexItem)}
        dispatcher = self.run.dispatcher
        # After -k and --lf, fewer agents may have work than the decision counted.
        self.run.workers = max(1, min(self.run.workers, workers_needed(self.run.checks)))
        for slot in range(self.run.workers):
            dispatcher.add_worker(f"w{slot}")
        try:
            for name, result in self.run.replayed.items():
                if name in items:
                    self._report(session, items, name, result)
            self._apply(session, items, dispatcher.assign(time.monotonic()))
            while self._threads:
                name, result = self._next()
                self._threads.pop(name).join()
                self._report(session, items, name, result)
                self._apply(session, items, [*dispatcher.finish(name, result.status)])
                self._apply(session, items, dispatcher.assign(time.monotonic()))
                if session.shouldfail:
                    raise session.Failed(session.shouldfail)
                if session.shouldstop:
                    raise session.Interrupted(session.shouldstop)
        except BaseException:
            self._stop_all(INTERRUPTED)
            raise
        return True

    def _next(self) -> tuple[str, CheckResult]:
        # A timeout keeps the main thread responsive to Ctrl-C and SIGTERM between events.
        while True:
            try:
                return self._done.get(timeout=0.2)
            except queue.Empty:
                continue

    def _apply(self, session: pytest.Session, items: dict[str, Any], actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Run):
                self._start(action.name, action.worker)
            elif isinstance(action, Cancel):
                self.run.cancel(action.name, action.reason)
            elif isinstance(action, Skip):
                check = self.run.checks.check(action.name)
                result = unrun(check, action.status, action.reason)
                self._report(session, items, action.name, result)

    def _start(self, name: str, worker: str) -> None:
        check = self.run.checks.check(name)
        context = replace(
            self.run.context, worker=worker, cancelled=lambda: self.run.cancel_reason(name)
        )
        thread = threading.Thread(
            target=self._supervise, args=(check, context), name=f"parex-{worker}", daemon=True
        )
        self._threads[name] = thread
        self.config.hook.pytest_parex_check_started(
            config=self.config, name=name, agent=check.agent, worker=worker
        )
        thread.start()

    def _supervise(self, check: Check, context: Any) -> None:
        # Whatever happens here, the main thread gets a result: it waits for one per thread.
        why = "internal error: the check's supervisor stopped"
        result = unrun(check, Status.ERROR, why, detail=why, worker=context.worker)
        try:
            result = execute(check, context)
        except Exception as exc:  # a bug of ours must not hang the gate: the check is an error
            why = f"internal error: {type(exc).__name__}: {exc}"
            result = unrun(check, Status.ERROR, why, detail=why, worker=context.worker)
        finally:
            self._done.put((check.name, result))

    def _report(
        self, session: pytest.Session, items: dict[str, Any], name: str, result: CheckResult
    ) -> None:
        """The check's item goes through pytest's runtest protocol with its result."""
        item = items.get(name)
        if item is None:  # not collected here (cannot happen with a consistent selection)
            self.record(result)
            return
        self._ready[name] = result
        item.ihook.pytest_runtest_protocol(item=item, nextitem=None)

    def _result_of(self, check: Check) -> CheckResult:
        return self._ready.pop(check.name)

    def _stop_all(self, reason: str) -> None:
        """Ctrl-C, SIGTERM or a stopped session: cancel every running check, wait for their
        trees to be killed, and keep what became of them."""
        if not self._threads:
            return
        self.run.cancel("*", reason)
        for thread in self._threads.values():
            thread.join(JOIN_TIMEOUT)
        while not self._done.empty():
            name, result = self._done.get()
            self._threads.pop(name, None)
            if result.status is Status.CANCELLED and result.reason == reason:
                self.record(result)
