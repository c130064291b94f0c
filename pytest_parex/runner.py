"""Running one check's process: its own process group, output to a log file, timeout,
cancellation and clean-up of the whole tree.

Output goes straight from the child to the log file (the child's stdout *is* the file), so a
check that prints gigabytes costs disk, not memory; only the tail is read back.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import select
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

from pytest_parex.files import write_atomic

POLL = 0.05
"""Seconds between two looks at the process, the clock and the cancel flag."""
TERM_GRACE = 1.0
"""Seconds a timed-out check's tree gets between SIGTERM and SIGKILL."""
CANCEL_GRACE = 0.1
"""The same for a cancelled check: fail-fast must stop work within a fraction of a second."""
TAIL_LINES = 50
TAIL_BYTES = 64 * 1024
RUN_ENV = "PYTEST_PAREX_RUN"
"""Marks every process of one check run, so that one that left the process group (a daemon
started with setsid) is still recognised as the check's and killed."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while a check ran: clean up and stop the session like Ctrl-C does
    (a ``KeyboardInterrupt`` so pytest ends the session instead of failing one item)."""


class Ending(enum.Enum):
    """How a process ended."""

    EXITED = enum.auto()
    TIMED_OUT = enum.auto()
    CANCELLED = enum.auto()
    NOT_STARTED = enum.auto()
    """The command was not found, or could not be started."""


@dataclass(frozen=True)
class ProcessOutcome:
    """How one attempt at running a command ended."""

    ending: Ending
    returncode: int | None
    duration: float
    cpu: float
    start: float
    end: float
    reason: str = ""


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    timeout: float,
    shell: bool = False,
    cancelled: Callable[[], str | None] = lambda: None,
    pgid_file: Path | None = None,
    header: str = "",
) -> ProcessOutcome:
    """Run ``argv`` in a new process group with output appended to ``log``.

    ``cancelled`` is polled every :data:`POLL` seconds; when it returns a reason the whole
    group is terminated. Any exception (Ctrl-C included) kills the group before it propagates:
    a process started in its own session does not get the terminal's SIGINT and would be
    orphaned otherwise.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        if header:
            out.write(header.encode("utf-8", "replace"))
            out.flush()
        wall_start = time.time()
        start = time.perf_counter()
        marker = uuid.uuid4().hex
        adopting = _become_subreaper()
        children_before = _children() if adopting else set()
        try:
            # Under the reaper's lock: it must know the leader before the leader can exit.
            with ORPHANS.lock:
                proc = subprocess.Popen(
                    list(argv) if not shell else argv[0],
                    cwd=cwd,
                    env={**env, RUN_ENV: marker},
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    shell=shell,
                    start_new_session=True,
                )
                ORPHANS.leaders.add(proc.pid)
        except OSError as exc:
            if not cwd.is_dir():
                message = f"cwd {cwd} does not exist"
            elif isinstance(exc, FileNotFoundError):
                message = f"{argv[0]} is not installed in this environment"
            else:
                message = f"{argv[0]} cannot be run: {exc.strerror}"
            out.write(f"parex: {message}\n".encode("utf-8", "replace"))
            now = time.time()
            return ProcessOutcome(Ending.NOT_STARTED, None, 0.0, 0.0, now, now, message)
    pgid = proc.pid  # start_new_session: the child leads its own group
    child = Child(proc)
    if pgid_file is not None:
        write_atomic(pgid_file, str(pgid), durable=False)
    ending, reason = Ending.EXITED, ""
    try:
        with _sigterm_raises():
            while not child.wait(POLL):
                if time.perf_counter() - start > timeout:
                    ending, reason = Ending.TIMED_OUT, f"timed out after {timeout:g}s"
                    kill_group(pgid, child, TERM_GRACE)
                    break
                why = cancelled()
                if why:
                    ending, reason = Ending.CANCELLED, why
                    kill_group(pgid, child, CANCEL_GRACE)
                    break
    except BaseException:
        kill_group(pgid, child, CANCEL_GRACE)
        raise
    finally:
        # Whatever the main process did, nothing it started may outlive the check.
        kill_group(pgid, child, 0.0)
        child.close()
        if adopting:
            kill_escaped(marker, children_before | {proc.pid}, pgid)
        ORPHANS.leaders.discard(proc.pid)
        if pgid_file is not None:
            with contextlib.suppress(OSError):
                pgid_file.unlink()
    duration = time.perf_counter() - start
    return ProcessOutcome(
        ending, proc.returncode, duration, child.cpu, wall_start, time.time(), reason
    )


class Child:
    """A started process, reaped with ``os.wait4`` so that its CPU time is its own.

    ``RUSAGE_CHILDREN`` would add up every child this process reaped meanwhile, and the gate
    runs several checks at once. Waiting uses a pidfd where the OS has one (Linux >= 5.3): the
    exit is seen at once, not at the next poll; elsewhere short sleeps that grow to
    :data:`POLL`.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.cpu = 0.0
        """User + system seconds of the process and the children it waited for."""
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._pidfd = os.pidfd_open(proc.pid)

    def poll(self) -> bool:
        """Whether the process has exited (and is reaped: ``proc.returncode`` is set)."""
        if self.proc.returncode is not None:
            return True
        try:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: no usage to read
            return self.proc.poll() is not None
        if pid == 0:
            return False
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = max(usage.ru_utime + usage.ru_stime, 0.0)
        return True

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the exit; whether it happened."""
        if self.poll():
            return True
        if self._pidfd is not None:
            select.select([self._pidfd], [], [], timeout)
            return self.poll()
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.poll()
            time.sleep(min(delay, remaining))
            if self.poll():
                return True
            delay = min(delay * 2, POLL)

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def kill_group(pgid: int, child: Child | None, grace: float) -> None:
    """SIGTERM the group, give it ``grace`` seconds, then SIGKILL what is left; reap ``child``."""
    if grace > 0 and _group_alive(pgid):
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if child is not None and child.poll() and not _group_alive(pgid):
                break
            time.sleep(0.01)
    _signal_group(pgid, signal.SIGKILL)
    if child is not None:
        child.wait(5)


@functools.cache
def _become_subreaper() -> bool:
    """Make this process the child subreaper of what it starts (Linux): a process whose parent
    dies is then re-parented to us, not to init, so a check's daemon can be found again. The
    orphans adopted so are reaped as they exit (:data:`ORPHANS`)."""
    if not os.path.isdir("/proc/self/task"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        adopting = int(libc.prctl(36, 1, 0, 0, 0)) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False
    if adopting:
        ORPHANS.start()
    return adopting


class Orphans:
    """Reaps the processes this process adopted as child subreaper, as they exit.

    A check's daemon that escaped its process group and the marker (``env -i setsid ...``)
    outlives the check; when it exits, it is our child, and without a ``wait`` it stays a
    zombie until the gate ends -- for hours in a watch loop. Every :data:`REAP_EVERY`
    seconds a thread waits for the zombies among our children that we did not start
    ourselves: never a check's own process (:attr:`leaders`: :class:`Child` reads its exit
    status and CPU time) and never a process in our own process group (what the gate's
    ``subprocess`` calls start and wait for, such as ``git``). Adopted processes are in a
    check's group or their own, never in ours.

    One per process (process-wide state by nature: the children of this process).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leaders: set[int] = set()
        self.reaped = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="parex-reaper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(REAP_EVERY)
            with contextlib.suppress(Exception):  # never a traceback from this thread
                self.reap()

    def reap(self) -> int:
        """Wait for every adopted zombie now; returns how many."""
        own = os.getpgrp()
        count = 0
        with self.lock:
            for pid in sorted(_children() - self.leaders):
                stat = proc_stat(pid)
                if stat is None or stat.state != "Z" or stat.pgid == own:
                    continue
                with contextlib.suppress(ChildProcessError, OSError):
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        count += 1
            self.reaped += count
        return count


REAP_EVERY = 0.5
"""Seconds between two looks for adopted zombies."""
ORPHANS = Orphans()


def _children() -> set[int]:
    """Direct children of this process (of all its threads)."""
    out: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as fh:
                out.update(int(pid) for pid in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def _marked(pid: int, marker: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return f"{RUN_ENV}={marker}".encode() in fh.read().split(b"\0")
    except OSError:
        return False


class ProcStat(NamedTuple):
    state: str
    ppid: int
    pgid: int
    sid: int


@functools.cache
def process_start() -> float | None:
    """When this process started (``time.time()`` seconds): Linux ``/proc``, to a clock tick.
    None elsewhere. Cached: it cannot change."""
    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        # The start is in ticks of CLOCK_BOOTTIME; /proc/stat's btime is whole seconds, which
        # put the start up to 1 s early: measure the process's age on the same clock instead.
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def proc_stat(pid: int) -> ProcStat | None:
    """State, parent, process group and session of ``pid`` (Linux ``/proc``; None elsewhere
    or when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # The command name (2nd field) may hold spaces and parentheses: split after it.
            fields = fh.read().rsplit(")", 1)[1].split()
        return ProcStat(fields[0], int(fields[1]), int(fields[2]), int(fields[3]))
    except (OSError, IndexError, ValueError):
        return None


def kill_escaped(marker: str, known: set[int], pgid: int) -> list[int]:
    """Kill the check's processes that left its process group (``setsid`` daemons).

    This process is their subreaper: once their parents are gone, survivors of the check's
    tree are our children. Those carrying the run's marker are killed with their own group;
    dead ones from the check's groups and sessions are reaped (init would have done it).
    Killing one may orphan its own children: look again until none is left.
    """
    owned = {pgid}
    killed: list[int] = []

    def reap() -> None:
        for pid in _children() - known:
            stat = proc_stat(pid)
            if stat is not None and stat.state == "Z" and (stat.pgid in owned or stat.sid in owned):
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)

    deadline = time.monotonic() + 1.0
    while True:
        reap()
        if not _group_alive(pgid) or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    for _ in range(10):
        found = [p for p in sorted(_children() - known) if _marked(p, marker)]
        if not found:
            break
        for pid in found:
            stat = proc_stat(pid)
            if stat is not None:
                owned.update((stat.pgid, stat.sid))
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)
            killed.append(pid)
            known.add(pid)
        time.sleep(0.005)  # let the daemons' own children die and be re-parented
        reap()
    return killed


def kill_group_from_file(pgid_file: Path) -> bool:
    """Kill the group recorded in ``pgid_file`` (left by a worker that died mid-check)."""
    try:
        pgid = int(pgid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    if pgid <= 1:
        return False
    _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        pgid_file.unlink()
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While a check runs, SIGTERM to us raises :class:`Terminated` so the tree gets killed."""
    previous = sigterm_as_interrupt()
    try:
        yield
    finally:
        restore_sigterm(previous)


def sigterm_as_interrupt() -> Any:
    """Make SIGTERM end the session like Ctrl-C (so running checks are cancelled and the
    reports written) instead of killing the gate outright; returns the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)


def restore_sigterm(previous: Any) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
    """The last ``lines`` lines of ``path``, decoded leniently (bad UTF-8 and NULs survive)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    kept = text.splitlines()[-lines:]
    return "\n".join(kept)
