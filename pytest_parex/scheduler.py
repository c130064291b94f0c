"""The xdist scheduler (controller side): binds workers to agent types and feeds them checks.

It implements xdist's scheduler protocol (``xdist/scheduler/protocol.py``) around the pure
:class:`~pytest_parex.dispatch.Dispatcher`.

The nextitem trap: an xdist worker runs item *i* only once it has received item *i+1* (or the
shutdown signal), because pytest's runtest protocol needs ``nextitem``. Sending one check and
holding the rest back would deadlock. Each worker therefore also collects a no-op *park* item;
a check is sent as ``[check, park]``: the worker runs the check, then waits in the park until
the next dispatch or the shutdown arrives.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pytest_parex import __version__
from pytest_parex.compat import CANCEL_COMMAND
from pytest_parex.dispatch import Action, Cancel, Run, Skip
from pytest_parex.items import PARK_NAME
from pytest_parex.results import Status
from pytest_parex.state import GateRun
from pytest_parex.workers import collection_problem


class ParexScheduling:
    """``pytest_xdist_make_scheduler`` result when ``--parex`` is on."""

    def __init__(
        self,
        config: pytest.Config,
        run: GateRun,
        *,
        on_collection: Callable[[Sequence[str]], None],
        on_skip: Callable[[Skip], None],
        on_crash: Callable[[str, str], None],
        on_problem: Callable[[str], None],
    ) -> None:
        self.config = config
        self.run = run
        self._on_collection = on_collection
        self._on_skip = on_skip
        self._on_crash = on_crash
        self._on_problem = on_problem
        """Told the line for a worker that cannot run this gate; ends the session."""
        self._nodes: dict[str, Any] = {}
        self._collected: set[str] = set()
        self.collection: list[str] | None = None
        self._index: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._park = -1

    # ------------------------------------------------------------------ protocol

    @property
    def nodes(self) -> list[Any]:
        """The live workers (DSession.worker_workerfinished checks membership)."""
        return list(self._nodes.values())

    @property
    def collection_is_completed(self) -> bool:
        """Asked by DSession.worker_collectionfinish before it calls :meth:`schedule`."""
        # Dispatch starts with the first worker that has collected: waiting for every worker
        # (what xdist's own schedulers do) costs the slowest worker's start-up on every check.
        return self.collection is not None

    @property
    def tests_finished(self) -> bool:
        """Asked by DSession.loop_once after every event; True shuts the workers down."""
        return self.collection is not None and self.run.dispatcher.finished

    @property
    def has_pending(self) -> bool:
        """Asked by DSession.worker_collectionfinish (for its status line)."""
        return self.collection is None or not self.run.dispatcher.finished

    def add_node(self, node: Any) -> None:
        """DSession.worker_workerready: a worker started (it collects next)."""
        self._nodes[node.gateway.id] = node

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        """DSession.worker_collectionfinish: ``node`` collected ``collection`` (node ids)."""
        ids = list(collection)
        problem = self.check_collection(node, [nodeid.rsplit("::", 1)[-1] for nodeid in ids])
        if problem:
            self._on_problem(problem)
            return
        if self.collection is None:
            self.collection = ids
            for index, nodeid in enumerate(ids):
                name = nodeid.rsplit("::", 1)[-1]
                if name == PARK_NAME:
                    self._park = index
                else:
                    self._index[name] = index
                    self._names[index] = name
        # Called for every worker: xdist has just counted the park item as a test again.
        self._on_collection([self._names[i] for i in sorted(self._names)])
        self._collected.add(node.gateway.id)
        self.run.dispatcher.add_worker(node.gateway.id)

    def check_collection(self, node: Any, names: Sequence[str]) -> str | None:
        """Why ``node``'s collection (item names) is not this gate's, or None.

        Every worker collects every check of the gate in the config's order, and the park
        item last (see :func:`pytest_parex.items.collect`): the indices mean the same check
        on every worker, and a worker that read another project says so here."""
        expected = [c.name for c in self.run.config.checks]
        checks = [n for n in names if n != PARK_NAME]
        park = list(names[-1:]) == [PARK_NAME]
        if park and checks == expected:
            return None
        info = getattr(node, "workerinfo", None)
        return collection_problem(
            node.gateway.id,
            node.gateway.spec,
            checks,
            expected,
            park=park,
            cwd=str(info.get("cwd", "")) if isinstance(info, dict) else "",
            rootdir=self.run.context.rootdir,
            version=__version__,
        )

    def collected(self, wid: str) -> bool:
        """Whether worker ``wid`` delivered its collection (and is still up)."""
        return wid in self._collected

    def schedule(self) -> None:
        """DSession.worker_collectionfinish, once :attr:`collection_is_completed`."""
        self._apply(self.run.dispatcher.assign(time.monotonic()))

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        """DSession.worker_runtest_protocol_complete: the check's reports have all arrived
        (through pytest_runtest_logreport), so its result is known."""
        if item_index == self._park:
            return
        name = self._names[item_index]
        result = self.run.results.get(name)
        status = result.status if result is not None else Status.ERROR
        actions = self.run.dispatcher.finish(name, status)
        self._apply([*actions, *self.run.dispatcher.assign(time.monotonic())])

    def mark_test_pending(self, item: str) -> None:
        """pytest_handlecrashitem implementations (pytest-rerunfailures) re-queue with this."""
        raise NotImplementedError("parex does not re-queue checks; use retries = N")

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None:
        """DSession.worker_unscheduled (work stealing, which only xdist's own schedulers ask)."""
        raise NotImplementedError("parex never steals checks")

    def remove_node(self, node: Any) -> str | None:
        """DSession.worker_workerfinished (None on a clean finish) and worker_errordown (the
        node id of the check a crashed worker was running)."""
        wid = node.gateway.id
        self._nodes.pop(wid, None)
        if wid not in self._collected:
            return None
        self._collected.discard(wid)
        name = self.run.dispatcher.running_on(wid)
        if name is None:
            self.run.dispatcher.remove_worker(wid)
            return None
        # The worker died mid-check: the check is an error, the rest goes on.
        self._on_crash(name, wid)
        _, actions = self.run.dispatcher.crash(wid)
        self._apply([*actions, *self.run.dispatcher.assign(time.monotonic())])
        return self.nodeid(name)

    def nodeid(self, name: str) -> str:
        assert self.collection is not None
        return self.collection[self._index[name]]

    # ------------------------------------------------------------------ actions

    def cancel_all(self, reason: str) -> None:
        """Ctrl-C or shutdown: every running check's tree is killed."""
        self._apply(self.run.dispatcher.interrupt(reason))

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Run):
                node = self._nodes[action.worker]
                node.send_runtest_some([self._index[action.name], self._park])
                self.config.hook.pytest_parex_check_started(
                    config=self.config,
                    name=action.name,
                    agent=self.run.dispatcher.checks[action.name].agent,
                    worker=action.worker,
                )
            elif isinstance(action, Cancel):
                node = self._nodes.get(action.worker)
                if node is not None:
                    # OSError: the channel is already closed, the worker is gone.
                    with contextlib.suppress(OSError):
                        node.sendcommand(CANCEL_COMMAND, check=action.name, reason=action.reason)
            else:
                self._on_skip(action)
