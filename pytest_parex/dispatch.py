"""Which check runs where and when: a pure state machine shared by the xdist scheduler, the
in-process (sequential) run and the ``--parex-plan`` simulation (:mod:`pytest_parex.plan`).

It knows nothing of xdist or pytest. The caller tells it about workers and finished checks and
asks for :class:`Run`, :class:`Skip` and :class:`Cancel` actions.

Time comes from the caller too (``assign(now)``, ``start(name, now)``): a monotonic clock in a
run, the virtual clock in :func:`simulate`. The dispatcher needs it for one decision only,
backfilling (see :meth:`Dispatcher.assign`); without a clock it never backfills.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from pytest_parex import cpubound, graph
from pytest_parex.config import Check, ParexConfig
from pytest_parex.mintree import MinTree
from pytest_parex.results import BAD, GOOD, Status

PENDING, RUNNING, DONE = "pending", "running", "done"

_EPSILON = 1e-9

SHORT_CPU = 1.0
"""Seconds: a check expected to take no longer is never held back by the CPU limit."""
"""Float slack when comparing expected ends (sums of durations)."""


@dataclass(frozen=True)
class Run:
    """Start ``name`` on ``worker``."""

    worker: str
    name: str
    before: str = ""
    """Set when ``name`` is backfilled: the exclusive check that waits for the running checks
    to drain, which ``name`` is expected to finish before."""


@dataclass(frozen=True)
class Skip:
    """``name`` will never run: report it with ``status`` (skipped / cancelled) and ``reason``."""

    name: str
    status: Status
    reason: str


@dataclass(frozen=True)
class Cancel:
    """Stop ``name``, running on ``worker``: kill its process tree."""

    worker: str
    name: str
    reason: str


Action = Run | Skip | Cancel

_HUGE = sys.float_info.max
"""What a :class:`_Queue` holds for a ready check expected to take forever (``expected =
inf``): infinity there means "not ready"."""


class _Queue:
    """The ready checks of one agent (exclusive or not), in start order -- highest rank first:
    a minimum tree over all the checks of the queue, in that order, holding the expected
    duration of each ready check and infinity for the others. The first ready check after
    any place, or the first one short enough to backfill, is found in log time, however many
    checks wait before it (thousands of ready checks; every assign() asks).
    """

    def __init__(self, keys: list[tuple[float, int, str]]) -> None:
        self.keys = keys
        """The checks' start-order keys (see Dispatcher._ready_key), sorted."""
        self.durations = MinTree(len(keys))


@dataclass
class _Worker:
    agent: str | None = None
    running: str | None = None


def workers_needed(config: ParexConfig) -> int:
    """One worker per agent instance that has work, capped by ``max-parallel``."""
    instances = config.agent_instances
    per_agent: dict[str, int] = {}
    for c in config.checks:
        per_agent[c.agent] = per_agent.get(c.agent, 0) + 1
    total = sum(min(instances[a], n) for a, n in per_agent.items())
    return min(total, config.max_parallel)


@dataclass
class Dispatcher:
    """The scheduling state of one gate run."""

    config: ParexConfig
    expected: Mapping[str, float] = field(default_factory=dict)
    done: Mapping[str, Status] = field(default_factory=dict)
    """Checks decided before the run starts (replayed passes), with their status."""
    cpu: Mapping[str, float] = field(default_factory=dict)
    """Remembered CPU share of each check (see :mod:`pytest_parex.cpubound`); none: not
    CPU-bound."""
    cores: int = 0
    """The cores the checks share: the running CPU shares must fit on them (0: no limit)."""
    backfill: bool = True
    """Whether checks may backfill while an exclusive check waits (see
    :func:`pytest_parex.plan.simulate`)."""
    fail_fast_on_done: bool = True
    """Whether a failure among ``done`` stops the run at once (fail-fast). The watch loop's
    kept failures do not: they are an earlier round's, and the checks that changed run."""

    def __post_init__(self) -> None:
        self.checks: dict[str, Check] = {c.name: c for c in self.config.checks}
        self.position = {c.name: i for i, c in enumerate(self.config.checks)}
        self.instances = self.config.agent_instances
        self.rank = graph.ranks(self.config.checks, self.expected)
        # Pairs with an exclusive check are left out: _startable keeps one alone by itself.
        self.conflicts: dict[str, set[str]] = {name: set() for name in self.checks}
        for conflict in graph.conflicts(self.config.checks, exclusive=False):
            self.conflicts[conflict.a].add(conflict.b)
            self.conflicts[conflict.b].add(conflict.a)
        self.state: dict[str, str] = dict.fromkeys(self.checks, PENDING)
        self.status: dict[str, Status] = {}
        # Indexes kept in step with ``state`` by _set_state, so that each scheduling step costs
        # about the number of ready checks, not the square of all checks (1000-check configs).
        self._pending: dict[str, dict[str, None]] = {a: {} for a in self.instances}
        for name, check in self.checks.items():
            self._pending.setdefault(check.agent, {})[name] = None
        self._running: dict[str, None] = {}
        self._running_per_agent: dict[str, int] = dict.fromkeys(self._pending, 0)
        self._exclusive_running = 0
        self._share = {
            name: cpubound.effective(self.cpu.get(name, 0.0)) if self.cores > 0 else 0.0
            for name in self.checks
        }
        self._cpu_limit = cpubound.limit(self.cores)
        self._cpu_running = 0.0
        self._cpu_pending = sum(self._share.values())
        self._started: dict[str, float] = {}
        """Clock reading when each running check started (when the caller gave one)."""
        # Every check, highest rank first, and the index of the first that may still be
        # pending: checks only move forward (pending -> running -> done), so the cursor only
        # advances (see _pending_ahead_of).
        self._by_rank = sorted(self.checks, key=self._ready_key)
        # Whether every check comes before the checks that need it in that order (expected
        # durations above zero): then backfilling looks at few checks (_outrankers_ready).
        self._needs_outrank = all(
            self._ready_key(dep) < self._ready_key(c.name)
            for c in self.config.checks
            for dep in c.needs
            if dep in self.checks
        )
        self._rank_cursor = 0
        self._done_count = 0
        self._dependents = graph.dependents(self.config.checks)
        # Ready checks (pending, every need passed), and the queues that give them in start
        # order (highest rank first): one per agent and exclusive or not.
        self._ready_names: set[str] = set()
        self._queues: list[_Queue] = []
        self._queue_of: dict[str, tuple[_Queue, int]] = {}
        grouped: dict[tuple[str, bool], list[str]] = {}
        for name in self._by_rank:
            check = self.checks[name]
            grouped.setdefault((check.agent, check.exclusive), []).append(name)
        self._queue_keys = sorted(grouped)
        for key in self._queue_keys:
            queue = _Queue([self._ready_key(name) for name in grouped[key]])
            self._queues.append(queue)
            for index, name in enumerate(grouped[key]):
                self._queue_of[name] = (queue, index)
        for name in self.checks:
            self._refresh_ready(name)
        # Pending checks that may have become blocked since the last assign(): the dependents
        # of checks that did not pass.
        self._recheck: dict[str, None] = {}
        # For the threshold gate, kept in step by _done and _set_state: how many checks
        # passed, and how many pending checks a need that did not pass blocks.
        self._good = 0
        self._bad_needs: dict[str, int] = dict.fromkeys(self.checks, 0)
        self._blocked_pending = 0
        self.workers: dict[str, _Worker] = {}
        self.decided: str = ""
        """Why the gate is decided early (fail-fast, any, threshold); empty while it is not."""
        self._starting = True
        for name, status in self.done.items():
            if name in self.checks:
                self.finish(name, status)
        self._starting = False

    # ------------------------------------------------------------------ workers

    def add_worker(self, wid: str) -> None:
        self.workers[wid] = _Worker(agent=self._agent_wanting_worker())

    def remove_worker(self, wid: str) -> str | None:
        """Forget ``wid``; return the check it was running (which is now an error)."""
        worker = self.workers.pop(wid, None)
        if worker is None or worker.running is None:
            return None
        return worker.running

    def agent_of(self, wid: str) -> str | None:
        worker = self.workers.get(wid)
        return worker.agent if worker else None

    def running_on(self, wid: str) -> str | None:
        worker = self.workers.get(wid)
        return worker.running if worker else None

    def _bound(self, agent: str) -> int:
        return sum(1 for w in self.workers.values() if w.agent == agent)

    def _agent_wanting_worker(self) -> str | None:
        best: tuple[float, str] | None = None
        # Open work is pending or running: one pass over those, not over every check per agent.
        open_per_agent: dict[str, list[str]] = {a: list(p) for a, p in self._pending.items()}
        for name in self._running:
            open_per_agent[self.checks[name].agent].append(name)
        for agent in sorted(self.instances):
            open_work = open_per_agent.get(agent, [])
            if not open_work or self._bound(agent) >= min(self.instances[agent], len(open_work)):
                continue
            key = (-max(self.rank[n] for n in open_work), agent)
            if best is None or key < best:
                best = key
        return best[1] if best else None

    # ------------------------------------------------------------------ progress

    @property
    def finished(self) -> bool:
        return self._done_count == len(self.checks)

    @property
    def running(self) -> list[str]:
        return sorted(self._running, key=self.position.__getitem__)

    def _set_state(self, name: str, new: str) -> None:
        old = self.state[name]
        if old == new:
            return
        check = self.checks[name]
        if self._bad_needs[name] and PENDING in (old, new):
            self._blocked_pending += 1 if new == PENDING else -1
        if old == PENDING:
            del self._pending[check.agent][name]
            self._drop_ready(name)
            self._cpu_pending = max(0.0, self._cpu_pending - self._share[name])
        elif old == RUNNING:
            del self._running[name]
            self._running_per_agent[check.agent] -= 1
            self._exclusive_running -= check.exclusive
            self._started.pop(name, None)
            # Reset when idle, so float sums cannot drift over a long run.
            self._cpu_running = self._cpu_running - self._share[name] if self._running else 0.0
        else:
            self._done_count -= 1
        if new == PENDING:
            self._pending[check.agent][name] = None
            self._recheck[name] = None
            self._refresh_ready(name)
            self._rank_cursor = 0
            self._cpu_pending += self._share[name]
        elif new == RUNNING:
            self._running[name] = None
            self._running_per_agent[check.agent] += 1
            self._exclusive_running += check.exclusive
            self._cpu_running += self._share[name]
        else:
            self._done_count += 1
        self.state[name] = new

    def _ready_key(self, name: str) -> tuple[float, int, str]:
        return (-self.rank[name], self.position[name], name)

    def _refresh_ready(self, name: str) -> None:
        if self.ready(name):
            if name not in self._ready_names:
                self._ready_names.add(name)
                queue, index = self._queue_of[name]
                queue.durations[index] = min(self.expected_duration(name), _HUGE)
        else:
            self._drop_ready(name)

    def _drop_ready(self, name: str) -> None:
        if name in self._ready_names:
            self._ready_names.discard(name)
            queue, index = self._queue_of[name]
            queue.durations[index] = math.inf

    def _head(self) -> str | None:
        """The ready check that starts first (highest rank), if any."""
        best: tuple[float, int, str] | None = None
        for queue in self._queues:
            index = queue.durations.first(0)
            if index is not None and (best is None or queue.keys[index] < best):
                best = queue.keys[index]
        return best[2] if best else None

    def _ready_in_order(
        self,
        queues: Iterable[int],
        fits: Callable[[float], bool] | None = None,
        dropped: set[int] | None = None,
    ) -> Iterator[tuple[str, int]]:
        """The ready checks of ``queues`` (indices) whose expected duration ``fits``, in
        start order, merged, each with its queue. A queue the caller adds to ``dropped`` is
        left out from then on (its agent found no worker)."""
        dropped = set() if dropped is None else dropped
        heap: list[tuple[tuple[float, int, str], int, int]] = []
        for q in queues:
            index = self._queues[q].durations.first(0, fits)
            if index is not None:
                heap.append((self._queues[q].keys[index], q, index))
        heapq.heapify(heap)
        while heap:
            key, q, index = heapq.heappop(heap)
            if q in dropped:
                continue
            yield key[2], q
            nxt = self._queues[q].durations.first(index + 1, fits)
            if nxt is not None:
                heapq.heappush(heap, (self._queues[q].keys[nxt], q, nxt))

    def ready(self, name: str) -> bool:
        check = self.checks[name]
        return self.state[name] == PENDING and all(
            self.status.get(dep) in GOOD or (dep in check.after and dep in self.status)
            for dep in check.needs
        )

    def blocked(self, name: str) -> Skip | None:
        """Why a pending check will never run, or None while it still may."""
        if self.state[name] != PENDING:
            return None
        check = self.checks[name]
        for dep in check.needs:
            status = self.status.get(dep)
            if status is not None and status not in GOOD and dep not in check.after:
                return Skip(name, Status.SKIPPED, f"needs {dep}, which {Status(status).past}")
        if self.decided:
            return Skip(name, Status.CANCELLED, self.decided)
        return None

    def _startable(self, name: str) -> bool:
        if not self.ready(name):
            return False
        check = self.checks[name]
        running = self._running
        if len(running) >= self.config.max_parallel:
            return False
        if self._running_per_agent[check.agent] >= self.instances[check.agent]:
            return False
        if running and (check.exclusive or self._exclusive_running):
            return False
        # CPU-bound checks beyond the cores only stretch each other; a check too big for the
        # cores still starts, alone; a check that is not CPU-bound always fits. The last
        # CPU-bound checks, too few to fill the cores, start rather than leave cores idle.
        # A check expected to take at most SHORT_CPU seconds starts anyway: holding a linter
        # back behind a long test shard costs more (its verdict comes late) than it saves.
        share = self._share[name]
        crowded = running and self._cpu_running + share > self._cpu_limit
        short = self.expected_duration(name) <= SHORT_CPU
        if share and crowded and not short and cpubound.fills(self._cpu_pending, self.cores):
            return False
        return self.conflicts[name].isdisjoint(running)

    def _idle_worker_for(self, agent: str, alone: bool = False) -> str | None:
        """An idle worker for a check of ``agent``; ``alone``: the check runs with nothing
        beside it (exclusive), so any idle worker may take it."""
        idle = sorted(w for w, s in self.workers.items() if s.running is None)
        for wid in idle:
            if self.workers[wid].agent == agent:
                return wid
        if self._bound(agent) >= self.instances[agent]:
            return None

        # Rebind an idle worker whose own agent has nothing it could start now; prefer one whose
        # agent has no open work at all, so bound workers stay with their type where they can.
        def pending(a: str | None) -> dict[str, None]:
            return self._pending.get(a, {}) if a is not None else {}

        def has_open(a: str | None) -> bool:
            return bool(pending(a))

        candidates = [w for w in idle if alone or not self._can_start(self.workers[w].agent)]
        candidates.sort(key=lambda w: (has_open(self.workers[w].agent), w))
        return candidates[0] if candidates else None

    def _can_start(self, agent: str | None) -> bool:
        """Whether a check of ``agent`` could start now. Only ready checks can: they are few
        where pending ones are many (a long chain), and the limits that stop them all are
        asked once."""
        if agent is None or len(self._running) >= self.config.max_parallel:
            return False
        if self._running_per_agent[agent] >= self.instances[agent]:
            return False
        if self._running and self._exclusive_running:
            return False
        mine = [q for q, key in enumerate(self._queue_keys) if key[0] == agent]
        return any(self._startable(name) for name, _ in self._ready_in_order(mine))

    def assign(self, now: float | None = None) -> list[Action]:
        """Everything that can happen now: skips for blocked checks, then new runs.

        ``now`` is the caller's clock (monotonic seconds; the virtual clock in a simulation).
        With it, the checks that start are timed, and an exclusive check that waits for the
        running checks to drain lets shorter checks *backfill* the idle workers meanwhile (see
        :meth:`_backfill`).
        """
        actions: list[Action] = []
        # Only a decision or a dependency that did not pass can block a pending check. The
        # skips come as passes over the pending checks in config order would find them, until
        # a pass finds none -- without the passes (a failure early in a long chain listed
        # last-first takes one pass per link).
        seeds = list(self._pending_in_order()) if self.decided else list(self._recheck)
        self._recheck.clear()

        def skip(name: str) -> bool:
            found = self.blocked(name)
            if found is None:
                return False
            self._done(name, found.status)
            actions.append(found)
            return True

        graph.in_passes(self.position, seeds, lambda n: self._dependents.get(n, ()), skip)
        self._recheck.clear()  # what the skips added, in_passes followed already
        if self.decided:
            return actions
        while self._ready_names and any(w.running is None for w in self.workers.values()):
            head = self._head()
            if head is None:
                break
            # An exclusive check at the head of the queue waits for the others to drain rather
            # than being overtaken forever; only checks that do not delay it start meanwhile.
            if self.checks[head].exclusive and self._running:
                if now is not None and self.backfill:
                    self._backfill(head, now, actions)
                break
            if len(self._running) >= self.config.max_parallel:
                break
            found = self._first_startable()
            if found is None:
                break
            actions.append(self._launch(found[1], found[0], now))
        return actions

    def _first_startable(self) -> tuple[str, str] | None:
        """The ready check that starts next, in start order, and its worker."""
        # Checks held back all alike are left out whole, not one by one (long queues of them):
        # everything while an exclusive check runs, an agent with all its instances busy,
        # exclusive checks while anything runs.
        if self._running and self._exclusive_running:
            return None
        queues = [
            q
            for q, (agent, exclusive) in enumerate(self._queue_keys)
            if self._running_per_agent[agent] < self.instances[agent]
            and not (exclusive and self._running)
        ]
        # Until a check starts, an agent that found no worker finds none: ask once.
        no_worker: set[str] = set()
        dropped: set[int] = set()
        for name, q in self._ready_in_order(queues, dropped=dropped):
            agent = self.checks[name].agent
            if agent in no_worker:
                dropped.add(q)
                continue
            if not self._startable(name):
                continue
            # An exclusive check that can start runs alone: no other check of any
            # worker's own agent could start beside it, so it may take any idle worker.
            wid = self._idle_worker_for(agent, alone=self.checks[name].exclusive)
            if wid is None:
                no_worker.add(agent)
                dropped.add(q)
                continue
            return name, wid
        return None

    def _launch(self, wid: str, name: str, now: float | None, before: str = "") -> Run:
        self.workers[wid].agent = self.checks[name].agent
        self.workers[wid].running = name
        self._set_state(name, RUNNING)
        if now is not None:
            self._started[name] = now
        return Run(wid, name, before)

    def expected_duration(self, name: str) -> float:
        """What ``name`` is expected to take (the default is the one ranks use)."""
        return self.expected.get(name, 1.0)

    def _backfill(self, head: str, now: float, actions: list[Action]) -> None:
        """Start ready checks that do not delay ``head``, an exclusive check waiting for the
        running checks to drain.

        A check backfills when it is expected to end (``now`` + its expected duration) no later
        than the running checks are expected to end -- the earliest the exclusive check can
        start -- and before any pending check that outranks the exclusive one can become ready
        (that check would start first and the exclusive one wait for it too; a backfilled
        check must not hold its agent, a worker or a core then). Expected ends never move the
        horizon out: a backfilled check ends inside it, and a check that overruns its
        expectation leaves a horizon in the past, where nothing fits. So the exclusive check
        waits for no more than it would without backfilling, give or take wrong expectations,
        and is never starved; it still starts only when nothing runs.
        """
        if self._exclusive_running:
            return  # nothing starts beside it
        horizon = self._drain_time()
        if horizon is None:
            return
        cutoff = self._outrankers_ready(head, now)

        def fits(duration: float) -> bool:
            end = now + duration
            # Ending exactly when an outranking check becomes ready could still hold what it
            # needs at that instant: strictly before.
            return not (end > horizon + _EPSILON or end >= cutoff - _EPSILON)

        idle = sum(1 for w in self.workers.values() if w.running is None)
        no_worker: set[str] = set()
        # Exclusive checks never backfill; the queues skip the checks too long to fit.
        queues = [q for q, (_, exclusive) in enumerate(self._queue_keys) if not exclusive]
        dropped: set[int] = set()
        for name, q in self._ready_in_order(queues, fits, dropped):
            if len(self._running) >= self.config.max_parallel or not idle:
                break
            check = self.checks[name]
            # Once its agent found no worker or has all its instances busy, none of its
            # checks backfills (launches only fill them up).
            if check.agent in no_worker or (
                self._running_per_agent[check.agent] >= self.instances[check.agent]
            ):
                dropped.add(q)
                continue
            if not fits(self.expected_duration(name)) or not self._startable(name):
                continue
            wid = self._idle_worker_for(check.agent)
            if wid is None:
                no_worker.add(check.agent)
                dropped.add(q)
                continue
            actions.append(self._launch(wid, name, now, before=head))
            idle -= 1

    def _drain_time(self) -> float | None:
        """When the running checks are expected to have ended; None when one has no start."""
        ends = []
        for name in self._running:
            started = self._started.get(name)
            if started is None:
                return None
            ends.append(started + self.expected_duration(name))
        return max(ends, default=None)

    def _outrankers_ready(self, head: str, now: float) -> float:
        """The earliest a pending check that outranks ``head`` can become ready (inf: none).

        When every check outranks the checks that need it (durations above zero), the
        earliest is that of an outranking check whose needs all run or are done: any other
        waits for one of those (which outranks it, so ``head`` too). Those checks are among
        the dependents of the running ones -- a few, where the pending checks can be
        thousands.
        """
        if not self._needs_outrank:
            return self._outrankers_ready_by_walk(head, now)
        limit = self._ready_key(head)
        earliest = math.inf
        for running in self._running:
            for name in self._dependents.get(running, ()):
                if self.state[name] != PENDING or self._ready_key(name) >= limit:
                    continue
                needs = self.checks[name].needs
                if any(self.state[d] == PENDING for d in needs):
                    continue
                earliest = min(earliest, max([now, *(self._earliest_end(d, now) for d in needs)]))
        return earliest

    def _earliest_end(self, name: str, now: float) -> float:
        """When ``name``, running or done, is expected to end."""
        if self.state[name] == DONE:
            return now
        started = self._started.get(name, now)
        return max(now, started + self.expected_duration(name))

    def _outrankers_ready_by_walk(self, head: str, now: float) -> float:
        """:meth:`_outrankers_ready` when a check does not outrank all that need it: every
        pending check that outranks ``head``, and the needs of those, walked."""
        ahead = self._pending_ahead_of(head)
        if not ahead:
            return math.inf
        end: dict[str, float] = {}

        def earliest_end(name: str) -> float:
            # Needs form a DAG; walk it without recursion (chains of 1000 needs).
            stack = [name]
            while stack:
                top = stack[-1]
                if top in end:
                    stack.pop()
                    continue
                if self.state[top] == DONE:
                    end[top] = now
                    stack.pop()
                    continue
                if self.state[top] == RUNNING:
                    started = self._started.get(top, now)
                    end[top] = max(now, started + self.expected_duration(top))
                    stack.pop()
                    continue
                todo = [d for d in self.checks[top].needs if d not in end]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                start = max([now, *(end[d] for d in self.checks[top].needs)])
                end[top] = start + self.expected_duration(top)
            return end[name]

        return min(max([now, *(earliest_end(d) for d in self.checks[p].needs)]) for p in ahead)

    def _pending_ahead_of(self, head: str) -> list[str]:
        """Pending checks that come before ``head`` in rank order (``head`` is the best ready
        check, so these are all waiting for their needs)."""
        order = self._by_rank
        while self._rank_cursor < len(order) and self.state[order[self._rank_cursor]] != PENDING:
            self._rank_cursor += 1
        out = []
        for name in order[self._rank_cursor :]:
            if name == head:
                break
            if self.state[name] == PENDING:
                out.append(name)
        return out

    def _pending_in_order(self) -> list[str]:
        """Pending checks in config order."""
        names = [n for per_agent in self._pending.values() for n in per_agent]
        return sorted(names, key=self.position.__getitem__)

    def start(self, name: str, now: float | None = None) -> None:
        """Mark ``name`` running outside of any worker (the in-process run), started at
        ``now`` on the caller's clock."""
        self._set_state(name, RUNNING)
        if now is not None:
            self._started[name] = now

    def finish(self, name: str, status: Status) -> list[Action]:
        """Record that ``name`` ended with ``status``; returns cancellations it causes."""
        for worker in self.workers.values():
            if worker.running == name:
                worker.running = None
        self._done(name, status)
        if self.decided:
            return []
        self._decide(name)
        if not self.decided:
            return []
        return [
            Cancel(wid, w.running, self.decided)
            for wid, w in sorted(self.workers.items())
            if w.running is not None
        ]

    def crash(self, wid: str) -> tuple[str | None, list[Action]]:
        """``wid`` died: its check is an error; returns it and the cancellations that follow."""
        name = self.remove_worker(wid)
        if name is None:
            return None, []
        return name, self.finish(name, Status.ERROR)

    def interrupt(self, reason: str) -> list[Action]:
        """Stop everything (Ctrl-C): cancel what runs; pending checks become cancelled."""
        if not self.decided:
            self.decided = reason
        return [
            Cancel(wid, w.running, reason)
            for wid, w in sorted(self.workers.items())
            if w.running is not None
        ]

    def _done(self, name: str, status: Status) -> None:
        self._set_state(name, DONE)
        old = self.status.get(name)
        self.status[name] = status
        self._good += (status in GOOD) - (old in GOOD)
        was_bad, bad = old is not None and old not in GOOD, status not in GOOD
        for dependent in self._dependents.get(name, ()):
            if name in self.checks[dependent].after:
                # Only ordered after it: any verdict lets the dependent start.
                self._refresh_ready(dependent)
                continue
            if bad != was_bad:
                self._bad_needs[dependent] += 1 if bad else -1
                if self.state[dependent] == PENDING and self._bad_needs[dependent] == int(bad):
                    self._blocked_pending += 1 if bad else -1
            if bad and self.state[dependent] == PENDING:
                self._recheck[dependent] = None
            self._refresh_ready(dependent)

    def _decide(self, last: str) -> None:
        gate = self.config.gate
        status = self.status[last]
        if gate == "any":
            if status in GOOD:
                self.decided = f"cancelled: gate any passed with {last}"
        elif isinstance(gate, int):
            # Checks that passed, and those not done that a failed need does not block.
            good = self._good
            possible = good + len(self.checks) - self._done_count - self._blocked_pending
            if good >= gate:
                self.decided = f"cancelled: gate {gate} reached ({good} checks passed)"
            elif possible < gate:
                self.decided = f"cancelled: gate {gate} can no longer be reached"
        elif (
            self.config.on_failure == "fail-fast"
            and status in BAD
            and self.checks[last].blocking
            and (self.fail_fast_on_done or not self._starting)
        ):
            self.decided = f"cancelled: fail-fast after {last} {Status(status).past}"
