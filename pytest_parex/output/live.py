"""Progress while the gate runs: a live block on a terminal, plain lines everywhere else.

Built on the ``pytest_parex_check_started`` / ``_check_finished`` hooks, which run on the
controller (or the single in-process process), never on xdist workers.

*Live* (a colour TTY): one block at the bottom of the terminal lists every check -- waiting,
running (elapsed time, worker), passed, failed, ... -- under a line with the gate's elapsed
time. It is rendered by rich into a string and written through pytest's terminal reporter
(which owns stdout; rich's own ``Live`` would fight it); a background thread redraws it a few
times a second and is stopped before the summary, where the block is replaced by one line.
pytest's own progress letters for the checks are suppressed meanwhile: they would break the
block, and the block says the same.

*Plain* (not a TTY, ``TERM=dumb``, ``--color=no``, ``NO_COLOR``): no cursor movement, one line
per state change, so a CI log reads well: ``[parex] lint passed in 1.20s``.

``-q`` shows less (no "started" lines; only running checks in the block), ``-qq`` nothing;
``-v`` more (worker, log path, attempts; in the live block a line per finished check above it).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_parex.output.text import (
    STATUS_STYLE,
    detail_of,
    rel,
    sanitize,
    seconds,
    string_console,
)
from pytest_parex.results import CACHED, STATUSES, CheckResult, GateResult, Status
from pytest_parex.state import GATE_RUN

WAITING, RUNNING = "waiting", "running"
INTERVAL = 0.25
"""Seconds between two redraws of the live block."""
NAME_WIDTH, AGENT_WIDTH = 32, 24
"""Seconds between two redraws of the live block."""


def choose_mode(
    option: str,
    *,
    isatty: bool,
    hasmarkup: bool,
    environ: Mapping[str, str],
    verbosity: int,
) -> str:
    """ "live", "plain" or "off" for ``--parex-progress=option`` in this terminal."""
    if option in ("live", "plain", "off"):
        return option
    if verbosity < -1:
        return "off"
    if (
        not isatty
        or not hasmarkup
        or environ.get("TERM") == "dumb"
        or environ.get("NO_COLOR")
        # A CI runner that gives its job a pseudo-terminal still keeps a log, not a screen.
        or environ.get("CI", "").lower() in ("true", "1", "yes")
    ):
        return "plain"
    return "live"


# ---------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Row:
    """One check as the progress display shows it."""

    name: str
    agent: str
    state: str
    """"waiting", "running", or a final status."""
    worker: str = ""
    elapsed: float = 0.0
    result: CheckResult | None = None


class Progress:
    """What is known about each check, from the hooks (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._started: dict[str, tuple[str, str, float]] = {}
        self._finished: dict[str, tuple[CheckResult, float]] = {}

    def started(self, name: str, agent: str, worker: str) -> None:
        with self._lock:
            self._started[name] = (agent, worker, self._clock())

    def finished(self, result: CheckResult) -> None:
        with self._lock:
            self._finished[result.name] = (result, self._clock())

    def is_finished(self, name: str) -> bool:
        with self._lock:
            return name in self._finished

    def rows(self, checks: Sequence[tuple[str, str]]) -> list[Row]:
        """``checks`` ((name, agent) in config order) with their state now."""
        now = self._clock()
        out = []
        with self._lock:
            names = {n for n, _ in checks}
            extra = [(n, r.agent) for n, (r, _) in self._finished.items() if n not in names]
            for name, agent in [*checks, *extra]:
                if name in self._finished:
                    result, _ = self._finished[name]
                    out.append(Row(name, agent, result.label, result.worker, 0.0, result))
                elif name in self._started:
                    agent, worker, since = self._started[name]
                    out.append(Row(name, agent, RUNNING, worker, now - since))
                else:
                    out.append(Row(name, agent, WAITING))
        return out


def counts(rows: Sequence[Row]) -> str:
    """ "1 running, 2 waiting, 3 passed, 1 failed" (states that occur, in a fixed order)."""
    order = (RUNNING, WAITING, CACHED, *STATUSES)
    found = {state: sum(1 for r in rows if r.state == state) for state in order}
    return ", ".join(f"{n} {state}" for state, n in found.items() if n)


# ---------------------------------------------------------------------------------- text


def _duration(result: CheckResult) -> str:
    return seconds(result.duration) if result.measured else ""


def _note(row: Row, root: Path, verbosity: int) -> str:
    """The last column: where a running check runs; what a finished one found (``-v``: also
    its worker, attempts and log)."""
    if row.state == RUNNING:
        return f"on {row.worker}" if row.worker and row.worker != "main" else ""
    result = row.result
    if result is None:
        return ""
    note = detail_of(result)
    extras = _extras(result, root, verbosity)
    if extras:
        note = f"{note} ({extras})" if note else f"({extras})"
    return note


def _extras(result: CheckResult, root: Path, verbosity: int) -> str:
    extras = []
    if verbosity > 0 and result.worker and result.worker != "main":
        extras.append(f"on {result.worker}")
    if verbosity > 0 and result.attempts > 1:
        extras.append(f"{result.attempts} attempts")
    if result.log_path and result.start is not None and (verbosity > 0 or result.bad):
        extras.append(f"log: {rel(result.log_path, root)}")
    return ", ".join(extras)


def _visible(rows: Sequence[Row], verbosity: int, limit: int) -> tuple[list[Row], list[Row]]:
    """The rows to show (in their order) and the others, folded into a "more" line; when not
    all fit, running checks come first, then failed ones, finished ones, waiting ones."""
    wanted = [i for i, r in enumerate(rows) if verbosity >= 0 or r.state == RUNNING]
    if len(wanted) > limit:
        rank = {RUNNING: 0, Status.FAILED: 1, Status.TIMEOUT: 1, Status.ERROR: 1, WAITING: 3}
        wanted = sorted(sorted(wanted, key=lambda i: rank.get(rows[i].state, 2))[: limit - 1])
    keep = set(wanted)
    return [rows[i] for i in wanted], [r for i, r in enumerate(rows) if i not in keep]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def render_block(
    rows: Sequence[Row],
    elapsed: float,
    root: Path,
    *,
    width: int,
    height: int = 24,
    verbosity: int = 0,
    color: bool = True,
) -> str:
    """The live block as text (ANSI colours when ``color``); every line shorter than
    ``width``, at most ``height - 1`` lines, so redrawing it never scrolls or wraps."""
    shown, folded = _visible(rows, verbosity, max(height - 2, 2))
    cells = []
    for row in shown:
        if row.state == RUNNING:
            clock, style = f"{row.elapsed:.1f}s", "cyan"
        elif row.state == WAITING:
            clock, style = "", "dim"
        else:
            clock = _duration(row.result) if row.result else ""
            style = STATUS_STYLE.get(row.state, "")
        name = _fit(sanitize(row.name), NAME_WIDTH)
        agent = _fit(sanitize(row.agent), AGENT_WIDTH)
        cells.append((name, agent, row.state, style, clock, sanitize(_note(row, root, verbosity))))
    # rich only when a live block is drawn: plain progress (CI logs) never imports it.
    from rich.text import Text

    lines = [Text("parex ", style="bold") + Text(f"{elapsed:.1f}s", style="cyan")]
    lines[0].append(f"  {counts(rows)}")
    if cells:
        widths = [max(len(c[i]) for c in cells) for i in (0, 1, 2, 4)]
        for name, agent, state, style, clock, note in cells:
            line = Text(f"  {name:<{widths[0]}}  ")
            line.append(f"{agent:<{widths[1]}}", style="dim")
            line.append("  ")
            line.append(f"{state:<{widths[2]}}", style=style)
            line.append(f"  {clock:>{widths[3]}}  {note}".rstrip())
            lines.append(line)
    if folded and verbosity >= 0:
        lines.append(Text(f"  ... and {len(folded)} more: {counts(folded)}", style="dim"))
    buffer = io.StringIO()
    fit = max(width - 1, 20)
    console = string_console(buffer, width=fit, color=color, soft_wrap=False)
    for line in lines:
        line.rstrip()
        line.truncate(fit, overflow="ellipsis")
        console.print(line, no_wrap=True, overflow="ellipsis")
    return buffer.getvalue()


def plain_started(
    name: str, agent: str, worker: str, verbosity: int, reason: str = ""
) -> str | None:
    """``[parex] tests started on gw1 (test-runner)``; None when ``-q`` hides it. ``-v`` adds
    why it runs (the result cache): ``: src/a.py changed``."""
    if verbosity < 0:
        return None
    where = f" on {sanitize(worker)}" if worker and worker != "main" else ""
    why = f": {sanitize(reason)}" if reason and verbosity > 0 else ""
    return f"[parex] {sanitize(name)} started{where} ({sanitize(agent)}){why}"


def plain_finished(result: CheckResult, root: Path, verbosity: int) -> str | None:
    """``[parex] lint passed in 1.20s``, ``[parex] docs skipped: needs lint, which failed``."""
    if verbosity < -1:
        return None
    text = f"[parex] {sanitize(result.name)} {result.label}"
    if result.cached:
        text += f" (passed in {seconds(result.duration)} before)"
    elif result.start is not None:
        text += f" in {seconds(result.duration)}"
    detail = detail_of(result)
    if detail:
        text += f": {sanitize(detail)}"
    extras = _extras(result, root, verbosity)
    if extras:
        text += f" ({sanitize(extras)})"
    return text


def final_line(rows: Sequence[Row], elapsed: float) -> str:
    count = len(rows)
    return f"parex: {count} check{'s' if count != 1 else ''} in {elapsed:.2f}s: {counts(rows)}"


# ---------------------------------------------------------------------------------- screen


class Screen:
    """The live block at the bottom of the terminal, redrawn in place.

    The cursor stays at the start of the line below the block; a redraw moves up over the
    block, rewrites each line (clearing its rest) and clears the lines a shrinking block left.
    Lines are cleared one by one rather than with "erase below": from the top-left corner
    that would clear the whole screen, which some terminals (tmux) push into the scrollback.
    """

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self.height = 0

    @staticmethod
    def _clear(count: int) -> str:
        """Clear ``count`` lines from the cursor's down; the cursor ends where it started."""
        if count <= 0:
            return ""
        back = f"\x1b[{count - 1}A" if count > 1 else ""
        return "\x1b[2K" + "\x1b[1B\x1b[2K" * (count - 1) + back

    def draw(self, text: str) -> None:
        lines = text.splitlines()
        up = f"\x1b[{self.height}A" if self.height else ""
        body = "".join(f"{line}\x1b[K\n" for line in lines)
        self._write(f"{up}\r{body}{self._clear(self.height - len(lines))}")
        self.height = len(lines)

    def erase(self) -> None:
        if self.height:
            self._write(f"\x1b[{self.height}A\r{self._clear(self.height)}")
            self.height = 0


# ---------------------------------------------------------------------------------- plugin


class LiveProgress:
    """The progress display (controller or in-process only)."""

    def __init__(self, config: pytest.Config, option: str) -> None:
        self.config = config
        self.option = option
        self.mode = "off"
        """Decided at session start, once the terminal reporter exists."""
        self.tr: Any = None
        self.verbosity = config.get_verbosity()
        self.root = config.rootpath
        self.progress = Progress()
        self.screen = Screen(self._write)
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stopped = False
        self._suspended = False
        """A foreign write (pytest's -v lines, an xdist message) is in progress."""
        self._captured = False
        """pytest is capturing stdout (an item's setup/teardown in-process): do not write."""
        self._drawn = -math.inf
        """When the block was last drawn (monotonic seconds)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return
        self.tr = terminal
        self.mode = choose_mode(
            self.option,
            isatty=bool(terminal.isatty),
            hasmarkup=bool(terminal.hasmarkup),
            environ=os.environ,
            verbosity=self.verbosity,
        )
        if self.mode == "off":
            return
        # pytest's letters (and the file name before them) would break the block and the
        # plain lines alike; the display says the same. xdist does the same for its runs.
        terminal.showfspath = False
        manager = self.config.pluginmanager
        if self.mode == "live" and manager.has_plugin("xdist"):
            manager.register(_XdistMessages(self), "parex-live-xdist")

    # ------------------------------------------------------------------ output

    def _write(self, text: str) -> None:
        self.tr.write(text, flush=True)

    def _checks(self) -> list[tuple[str, str]]:
        run = self.config.stash[GATE_RUN]
        return [(c.name, c.agent) for c in run.checks.checks]

    def _elapsed(self) -> float:
        run = self.config.stash[GATE_RUN]
        return (run.finished or time.time()) - run.started  # once decided, the summary's wall

    def _frame(self) -> str:
        size = shutil.get_terminal_size()
        return render_block(
            self.progress.rows(self._checks()),
            self._elapsed(),
            self.root,
            width=size.columns,
            height=size.lines,
            verbosity=self.verbosity,
            color=True,
        )

    def redraw(self, *, soon: bool = False) -> None:
        """Draw the block now; ``soon`` (an event asks): unless it was drawn less than
        :data:`INTERVAL` ago -- the ticking thread draws it then. A frame lists every check
        (milliseconds for thousands), and events come two per check: drawing on each would
        cost the square of the checks."""
        with self._lock:
            if self._stopped or self._suspended or self._captured or self.mode != "live":
                return
            now = time.monotonic()
            if soon and self._thread is not None and now - self._drawn < INTERVAL:
                return
            if self.screen.height == 0:
                # Ends a line pytest left open (a -v location), so the block starts on its own.
                self.tr.ensure_newline()
            self.screen.draw(self._frame())
            self._drawn = now

    def _above(self, line: str | None) -> None:
        """A line of text above the live block (or just a line, in plain mode)."""
        if line is None:
            return
        with self._lock:
            if self._stopped or self._captured:
                return
            self.screen.erase()
            self.tr.ensure_newline()
            # bool(): a method since pytest 9 (a callable bool there), a plain bool before.
            if self.mode == "plain" and bool(self.tr.isatty):
                # xdist rewrites its status line in place ("\r") on a terminal: blank it
                # with what even a dumb terminal understands, or the line would follow it.
                width = shutil.get_terminal_size().columns
                self.tr.write("\r" + " " * (width - 1) + "\r")
            self.tr.write_line(line)
        self.redraw(soon=True)

    def _start_thread(self) -> None:
        if self.mode != "live" or self._thread is not None or self._stopped:
            return
        self._thread = threading.Thread(target=self._tick, name="parex-live", daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                self.redraw()
            except Exception:  # never a traceback from this thread in the middle of a run
                with self._lock:
                    self.screen.erase()
                    self.mode = "plain"
                return

    def new_round(self) -> None:
        """The watch loop starts another round: every check waits again, the block is drawn
        anew."""
        self.stop(final=False)
        with self._lock:
            self.progress = Progress()
            self._stop = threading.Event()
            self._thread = None
            self._stopped = False

    def stop(self, *, final: bool = True) -> None:
        """Stop redrawing; replace the block with one line. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            if self.mode != "live" or self._thread is None:
                return
            self.screen.erase()
            if final and self.verbosity >= 0:
                self.tr.write_line(final_line(self.progress.rows(self._checks()), self._elapsed()))

    # ------------------------------------------------------------------ parex hooks

    @pytest.hookimpl
    def pytest_parex_check_started(
        self, config: pytest.Config, name: str, agent: str, worker: str
    ) -> None:
        self.progress.started(name, agent, worker)
        reason = self.config.stash[GATE_RUN].reasons.get(name, "")
        if self.mode == "plain":
            self._above(plain_started(name, agent, worker, self.verbosity, reason))
        elif self.mode == "live":
            if self.verbosity > 0 and reason:
                self._above(plain_started(name, agent, worker, self.verbosity, reason))
            self._start_thread()
            self.redraw(soon=True)

    @pytest.hookimpl
    def pytest_parex_check_finished(self, config: pytest.Config, result: CheckResult) -> None:
        self.progress.finished(result)
        if self.mode == "plain":
            self._above(plain_finished(result, self.root, self.verbosity))
        elif self.mode == "live":
            if self.verbosity > 0:
                self._above(plain_finished(result, self.root, self.verbosity))
            self._start_thread()
            self.redraw(soon=True)

    # ------------------------------------------------------------------ pytest hooks

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport | pytest.CollectReport, config: pytest.Config
    ) -> Generator[None, Any, Any]:
        result = yield
        if (
            result
            and self.mode != "off"
            and not self._stopped
            and "parex" in getattr(report, "keywords", {})
        ):
            # Keep the category (it counts in "1 failed, 3 passed"), drop letter and word --
            # while the run lasts: the short test summary after it asks for the word again.
            return (result[0], "", "")
        return result

    def foreign(self) -> Generator[None, Any, Any]:
        """Around a hook in which pytest or xdist may write whole lines (``-v``)."""
        if self.mode != "live":
            return (yield)
        with self._lock:
            self._suspended = True
            self.screen.erase()
        try:
            return (yield)
        finally:
            with self._lock:
                self._suspended = False
            if self._thread is not None:
                self.redraw(soon=True)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logstart(
        self, nodeid: str, location: tuple[str, int | None, str]
    ) -> Generator[None, Any, Any]:
        if self.verbosity <= 0:
            return (yield)
        return (yield from self.foreign())

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, Any, Any]:
        if self.verbosity <= 0:
            return (yield)
        return (yield from self.foreign())

    def _capturing(self, on: bool) -> None:
        with self._lock:
            self._captured = on

    # pytest captures stdout (at the file-descriptor level) during each phase of an item that
    # runs in this process (local agents report a finished check through one): the terminal
    # reporter's writes would land in the capture, so the display stays quiet meanwhile.

    @contextlib.contextmanager
    def _phase(self) -> Iterator[None]:
        self._capturing(True)
        try:
            yield
        finally:
            self._capturing(False)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        with self._phase():
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, None, None]:
        with self._phase():
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        with self._phase():
            return (yield)

    @pytest.hookimpl
    def pytest_parex_gate_finished(self, config: pytest.Config, gate: GateResult) -> None:
        # Checks that never reported (cancelled by Ctrl-C, never started) end here.
        for result in gate.results:
            if not self.progress.is_finished(result.name):
                self.pytest_parex_check_finished(config, result)

    # Not tryfirst: the gate's own sessionfinish (tryfirst) decides the gate first, so the
    # block's last state and the line replacing it include what an interruption cancelled.
    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.stop()

    @pytest.hookimpl(tryfirst=True)
    def pytest_internalerror(self, excrepr: Any, excinfo: Any) -> None:
        self.stop(final=False)

    @pytest.hookimpl
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stop(final=False)


class _XdistMessages:
    """xdist writes "[gw0] node down: ..." lines while the block is shown."""

    def __init__(self, live: LiveProgress) -> None:
        self.live = live

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> Generator[None, Any, Any]:
        return (yield from self.live.foreign())


def register(config: pytest.Config, option: str) -> LiveProgress:
    """Register the display; it decides at session start how (or whether) to show progress."""
    live = LiveProgress(config, option)
    config.pluginmanager.register(live, "parex-live")
    return live
