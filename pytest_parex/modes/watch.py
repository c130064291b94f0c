"""``--parex-watch``: local agents in a loop that follows the project's edits.

The gate runs once (round 1), then watches the tree (:mod:`pytest_parex.watching`). On a
change it decides again -- the result cache says which checks' inputs changed; everything else
is replayed, and a check whose inputs did not change since its last run in this loop keeps
that result, a failure included -- and runs a round of exactly those checks. Each round ends
with the summary and one status line.

A change during a round queues one more round (``queue``, the default); with ``restart`` the
running checks whose inputs it changed are cancelled (whole trees) and started again at once,
keyed on what is there now. Whatever the mode, a pass is recorded only when its inputs are,
after it ran, those it was keyed on (:meth:`Incremental.record`): a pass whose inputs changed
while it ran is never recorded.

Ctrl-C ends the loop: running checks are killed, and the exit code is the last completed
round's (pytest's own items report that round, so ``--junitxml`` and ``--lf`` see it).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Generator, Iterable
from typing import Any

import pytest

from pytest_parex.cache.incremental import Decision, Kept
from pytest_parex.cache.reasons import explain, printable
from pytest_parex.dispatch import workers_needed
from pytest_parex.items import ParexItem
from pytest_parex.modes.local import INTERRUPTED, LocalPlugin
from pytest_parex.output.live import LiveProgress
from pytest_parex.output.text import sanitize, seconds
from pytest_parex.results import CheckResult, GateResult, Status, gate_result
from pytest_parex.state import GateRun
from pytest_parex.watching import STEP_MS, Ignored, Watcher

POLL = 0.05
"""Seconds between two looks for changes while a round runs (restart mode)."""
IDLE_WAKE = 1.0
"""Seconds between two wake-ups of the idle loop (a stopped watcher must not hang it)."""
RESTART = "restarted"
VERDICTS = (Status.PASSED, Status.FLAKY, Status.FAILED, Status.TIMEOUT, Status.ERROR)
"""Statuses the loop keeps while a check's inputs stay the same (a cancelled or skipped
check reached no verdict: it runs again)."""


class WatchPlugin(LocalPlugin):
    """The watch loop around local agents; owns the verdict of each round."""

    def __init__(
        self,
        config: pytest.Config,
        run: GateRun,
        mode: str,
        exclude: Iterable[str],
        quiet_ms: int = STEP_MS,
    ):
        super().__init__(config, run)
        self.mode = mode
        self.quiet_ms = quiet_ms
        self.exclude = list(exclude)
        self.round = 0
        self.completed = 0
        """The last round that ended (a Ctrl-C may cut the next one short)."""
        self.kept: dict[str, Kept] = {}
        self.last: GateResult | None = None
        """The last completed round (its verdict is the exit code)."""
        self.last_results: list[CheckResult] = []
        self.watcher: Watcher | None = None
        self.slots = run.workers
        self._final = False
        self._restarting: dict[str, str] = {}
        """Checks cancelled to start again at once: name -> the agent slot they keep."""
        self._seen_batches = 0

    # ------------------------------------------------------------------ the loop

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(
                f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} "
                "during collection"
            )
        items = {it.name: it for it in session.items if isinstance(it, ParexItem)}
        ignored = Ignored(self.exclude)
        self.watcher = Watcher(self.config.rootpath, ignored, step_ms=self.quiet_ms)
        self.watcher.start()
        try:
            self._loop(session, items)
        except (KeyboardInterrupt, _WatcherStopped) as exc:
            if self.last is None:
                raise  # no round completed: as a gate without --parex-watch (exit code 2)
            why = f": {exc}" if isinstance(exc, _WatcherStopped) else ""
            rounds = f"{self.completed} round{'s' if self.completed != 1 else ''}"
            self._say(f"parex watch: stopped after {rounds}{why}", bold=True)
        finally:
            self.watcher.stop()
        self._final = True
        self.run.results.clear()
        for result in self.last_results:
            self.run.results[result.name] = result
            item = items.get(result.name)
            if item is not None:
                self._ready[result.name] = result
                item.ihook.pytest_runtest_protocol(item=item, nextitem=None)
        return True

    def _loop(self, session: pytest.Session, items: dict[str, Any]) -> None:
        assert self.watcher is not None
        while True:
            self.round += 1
            self._round(session, items)
            self._finish_round()
            self.watcher.ready()
            self._status_line()
            during = self.watcher.pending()
            while True:
                if not during:
                    self._wait()
                changed = self.watcher.take()
                self._seen_batches = self.watcher.batches
                decisions = self._decide(changed)
                runs = [d for d in decisions.values() if not d.cached]
                if runs:
                    self._trigger_line(changed, decisions)
                    break
                if not during:
                    self._say(f"parex watch: {_paths(changed)}: no check's inputs changed")
                during = False

    def _wait(self) -> None:
        assert self.watcher is not None
        while not self.watcher.wait(IDLE_WAKE):
            if self.watcher.error is not None:
                raise _WatcherStopped(f"the watcher stopped ({self.watcher.error})")

    def _decide(self, changed: list[str]) -> dict[str, Decision]:
        """Decide the next round: which checks run, which replay or keep their result."""
        run = self.run
        checks = run.checks.checks
        inc = run.incremental
        if inc is None:  # no cache: no keys; every check runs on every change
            why = f"{_paths(changed)} changed (no result cache: every check runs)"
            decisions = {c.name: Decision(c.name, why) for c in checks}
            run.replayed = {}
        else:
            inc.warnings.clear()
            decisions = inc.decide(checks, kept=self.kept)
            run.replayed = {
                c.name: inc.replayed(c.name, run.context.log_dir / f"{c.file_name}.log")
                for c in checks
                if decisions[c.name].cached
            }
        run.reasons = {name: d.reason for name, d in decisions.items()}
        return decisions

    # ------------------------------------------------------------------ one round

    def _round(self, session: pytest.Session, items: dict[str, Any]) -> None:
        run = self.run
        if self.round > 1:
            run.new_round()
            self.started.clear()
            live = self._live()
            if live is not None:
                live.new_round()
        self._restarting.clear()
        dispatcher = run.dispatcher
        run.workers = max(1, min(self.slots, workers_needed(run.checks)))
        for slot in range(run.workers):
            dispatcher.add_worker(f"w{slot}")
        try:
            for name, result in run.replayed.items():
                if name in items:
                    self._report(session, items, name, result)
            self._apply(session, items, dispatcher.assign(time.monotonic()))
            while self._threads:
                name, result = self._next()
                self._threads.pop(name).join()
                worker = self._restarting.pop(name, None)
                if worker is not None:
                    run.uncancel(name)
                    self._start(name, worker)
                    continue
                self._report(session, items, name, result)
                self._apply(session, items, [*dispatcher.finish(name, result.status)])
                self._apply(session, items, dispatcher.assign(time.monotonic()))
        except BaseException:
            self._stop_all(INTERRUPTED)
            raise

    def _report(
        self, session: pytest.Session, items: dict[str, Any], name: str, result: CheckResult
    ) -> None:
        # pytest's items report once, when the loop ends (the last round): a round only
        # records its result (progress, hooks).
        self.record(result)

    def _next(self) -> tuple[str, CheckResult]:
        assert self.watcher is not None
        while True:
            try:
                return self._done.get(timeout=POLL)
            except queue.Empty:
                pass
            if self.mode == "restart" and self.watcher.batches != self._seen_batches:
                self._seen_batches = self.watcher.batches
                self._restart_affected()

    def _restart_affected(self) -> None:
        """Cancel the running checks whose inputs changed; they start again on the same
        agent, keyed on what is there now, as soon as their trees are gone."""
        run = self.run
        running = [n for n in self._threads if n not in self._restarting]
        if not running:
            return
        inc = run.incremental
        workers = {name: self.started.get(name, (0.0, ""))[1] for name in running}
        if inc is None:
            for name in running:
                self._restarting[name] = workers[name]
                run.cancel(name, f"{RESTART}: the tree changed")
            return
        fresh = inc.fresh_keys([run.checks.check(n) for n in running])
        for name in running:
            decision = inc.decisions.get(name)
            if name not in fresh or decision is None or decision.parts is None:
                continue
            parts, signatures = fresh[name]
            if parts.digest() == decision.parts.digest():
                continue
            why = explain(decision.parts, parts, last_status=None)
            inc.rebase(name, parts, signatures)
            run.reasons[name] = why
            self._restarting[name] = workers[name]
            run.cancel(name, f"{RESTART}: {why}")
            self._say(f"parex watch: {sanitize(name)} restarted: {sanitize(why)}")

    def _finish_round(self) -> None:
        run = self.run
        run.finished = time.time()
        results = self.ordered_results(False)
        self.gate = gate_result(
            run.checks,
            results,
            wall=run.finished - run.started,
            process_wall=0.0,
            workers=run.workers,
            parallel=run.workers > 1,
            problems=run.problems,
        )
        self.remember(results)
        inc = run.incremental
        if inc is not None:
            inc.record(run.checks.checks, results, run.context.log_dir)
            for result in results:
                decision = inc.decisions.get(result.name)
                if decision is None or decision.parts is None:
                    continue
                if result.cached and result.name in self.kept:
                    continue  # kept from an earlier round: its round stays
                if result.status in VERDICTS:
                    self.kept[result.name] = Kept(
                        decision.parts.digest(), result, self.round, decision.parts
                    )
                else:
                    self.kept.pop(result.name, None)
        self.config.hook.pytest_parex_gate_finished(config=self.config, gate=self.gate)
        live = self._live()
        if live is not None:
            live.stop()
        tr = self._tr()
        if tr is not None:
            self.print_summary(tr, f"parex round {self.round}")
        self.last = self.gate
        self.last_results = results
        self.completed = self.round

    # ------------------------------------------------------------------ lines

    def _status_line(self) -> None:
        gate = self.last
        assert gate is not None and self.watcher is not None
        ran = sum(1 for r in gate.results if r.ran)
        word = "passed" if gate.verdict else "failed"
        line = (
            f"parex watch: round {self.round} {word} in {seconds(gate.wall)}: {ran} ran, "
            f"{gate.cached} not rerun; watching {len(self.watcher.watched)} directories for "
            "changes (Ctrl-C to stop)"
        )
        self._say(line, green=gate.verdict, red=not gate.verdict, bold=True)

    def _trigger_line(self, changed: list[str], decisions: dict[str, Decision]) -> None:
        """Which change triggers which checks: ``src/a.py changed: lint, tests``."""
        groups: dict[str, list[str]] = {}
        for name, decision in decisions.items():
            if not decision.cached:
                groups.setdefault(decision.reason, []).append(name)
        said = "; ".join(f"{why}: {', '.join(names)}" for why, names in groups.items())
        others = sum(1 for d in decisions.values() if d.cached)
        tail = f" ({others} not rerun)" if others else ""
        self._say(f"parex watch: round {self.round + 1}: {sanitize(said)}{tail}", bold=True)

    def _say(self, line: str, **markup: bool) -> None:
        tr = self._tr()
        if tr is not None and self.config.get_verbosity() > -2:
            tr.ensure_newline()
            tr.write_line(line, **markup)
            tr.flush()  # a pipe is block-buffered: the loop now waits, the line must be out

    def _tr(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def _live(self) -> LiveProgress | None:
        plugin = self.config.pluginmanager.get_plugin("parex-live")
        return plugin if isinstance(plugin, LiveProgress) else None

    # ------------------------------------------------------------------ the session's end

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self._final:
            super().pytest_runtest_logreport(report)

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport | pytest.CollectReport, config: pytest.Config
    ) -> Generator[None, Any, Any]:
        result = yield
        if result and self._final and "parex" in getattr(report, "keywords", {}):
            return (result[0], "", "")  # the rounds said it all; keep the count
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.last is None:
            super().pytest_sessionfinish(session, exitstatus)
            return
        self.gate = self.last
        self.run.finished = self.run.finished or time.time()
        if int(session.exitstatus) in (0, 1, 2, 5):
            session.exitstatus = (
                pytest.ExitCode.OK if self.last.verdict else pytest.ExitCode.TESTS_FAILED
            )

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.last is None:
            super().pytest_terminal_summary(terminalreporter)
            return
        terminalreporter.write_line(
            f"parex watch: the last round ({self.completed}) {sanitize(self.last.headline)}",
            green=self.last.verdict,
            red=not self.last.verdict,
        )


class _WatcherStopped(Exception):
    """The watching thread died (the OS refused a watch): the loop ends like on Ctrl-C."""


def _paths(changed: list[str]) -> str:
    """``src/a.py`` or ``src/a.py, +3 more``."""
    if not changed:
        return "the tree"
    first = printable(changed[0])
    return first if len(changed) == 1 else f"{first}, +{len(changed) - 1} more"
