"""Tests for pytest_parex.scheduler.ParexScheduling, with mock xdist worker nodes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_parex.compat import CANCEL_COMMAND
from pytest_parex.config import DEFAULT_AGENTS, Check, ParexConfig
from pytest_parex.dispatch import Skip
from pytest_parex.items import PARK_NAME
from pytest_parex.kinds.base import RunContext
from pytest_parex.modes.controller import ControllerPlugin
from pytest_parex.modes.worker import WorkerPlugin
from pytest_parex.results import CheckResult, Status
from pytest_parex.scheduler import ParexScheduling
from pytest_parex.state import GateRun, Mode
from pytest_parex.workers import COLLECTION_KEY

AGENTS = tuple(sorted(DEFAULT_AGENTS))
FILE = "pyproject.toml"


class Node:
    """What the scheduler uses of xdist's WorkerController."""

    def __init__(self, wid: str, spec: str = "popen") -> None:
        self.gateway = SimpleNamespace(id=wid, spec=spec)
        self.workerinfo = {"cwd": "/somewhere"}
        self.workeroutput: dict[str, Any] = {}
        self.sent: list[list[int]] = []
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.shutdowns = 0

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.append(list(indices))

    # Same signature as xdist's WorkerController.sendcommand: a keyword argument called
    # "name" would collide with the command name.
    def sendcommand(self, name: str, **kwargs: Any) -> None:
        self.commands.append((name, kwargs))

    def shutdown(self) -> None:
        self.shutdowns += 1

    def __repr__(self) -> str:
        return f"<Node {self.gateway.id}>"


class Problem(Exception):
    """What the controller does with a worker that cannot run the gate: end the session."""


class Harness:
    def __init__(self, tmp_path: Path, checks: Iterable[Check], **kw: Any) -> None:
        self.config = ParexConfig(
            source=str(tmp_path / FILE),
            checks=tuple(checks),
            agents=tuple(sorted(DEFAULT_AGENTS.items())),
            **kw,
        )
        context = RunContext(
            rootdir=tmp_path,
            log_dir=tmp_path / ".parex" / "logs",
            state_dir=tmp_path / ".parex" / "run",
            config_path=str(tmp_path / FILE),
        )
        self.run = GateRun(
            config=self.config,
            config_path=tmp_path / FILE,
            context=context,
            mode=Mode.CONTROLLER,
        )
        self.collections: list[list[str]] = []
        self.skips: list[Skip] = []
        self.crashes: list[tuple[str, str]] = []
        self.started: list[dict[str, Any]] = []
        hook = SimpleNamespace(pytest_parex_check_started=lambda **kw: self.started.append(kw))
        self.pytest_config = SimpleNamespace(hook=hook)
        self.sched = ParexScheduling(
            self.pytest_config,  # type: ignore[arg-type]
            self.run,
            on_collection=lambda names: self.collections.append(list(names)),
            on_skip=self.skips.append,
            on_crash=lambda name, wid: self.crashes.append((name, wid)),
            on_problem=self._problem,
        )
        self.ids = [f"{FILE}::{c.name}" for c in self.config.checks] + [f"{FILE}::{PARK_NAME}"]
        self.park = len(self.ids) - 1

    @staticmethod
    def _problem(line: str) -> None:
        raise Problem(line)

    def index(self, name: str) -> int:
        return self.ids.index(f"{FILE}::{name}")

    def name(self, index: int) -> str:
        return self.ids[index].rsplit("::", 1)[1]

    def add(self, *wids: str) -> list[Node]:
        nodes = [Node(w) for w in wids]
        for node in nodes:
            self.sched.add_node(node)
        for node in nodes:
            self.sched.add_node_collection(node, self.ids)
            if self.sched.collection_is_completed:
                self.sched.schedule()
        return nodes

    def sent(self, node: Node) -> list[str]:
        """Check names sent to ``node``, asserting the [check, park] shape."""
        out = []
        for indices in node.sent:
            assert len(indices) == 2 and indices[1] == self.park, indices
            out.append(self.name(indices[0]))
        return out

    def complete(self, node: Node, name: str, status: str = Status.PASSED) -> None:
        """The worker reports the check (logreport) and then its protocol completion."""
        check = self.config.check(name)
        self.run.results[name] = CheckResult(name, check.agent, status)
        self.sched.mark_test_complete(node, self.index(name), 0.5)


def _check(name: str, agent: str, **kw: Any) -> Check:
    return Check(name=name, agent=agent, argv=("true",), **kw)


def _three() -> list[Check]:
    return [_check("a", AGENTS[0]), _check("b", AGENTS[1]), _check("c", AGENTS[2])]


def test_nothing_before_the_first_collection(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three())
    node = Node("gw0")
    h.sched.add_node(node)
    assert h.sched.nodes == [node]
    assert not h.sched.collection_is_completed
    assert h.sched.has_pending
    assert not h.sched.tests_finished
    h.sched.add_node_collection(node, h.ids)
    assert h.sched.collection_is_completed
    assert h.sched.collection == h.ids
    assert h.collections == [["a", "b", "c"]]  # the park item is not a check
    assert node.sent == []  # only schedule() sends


def test_collection_completes_with_the_first_worker(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three())
    first, second = Node("gw0"), Node("gw1")
    h.sched.add_node(first)
    h.sched.add_node(second)
    h.sched.add_node_collection(first, h.ids)
    assert h.sched.collection_is_completed
    h.sched.schedule()
    assert h.sent(first) == ["a"]
    h.sched.add_node_collection(second, h.ids)
    h.sched.schedule()
    assert h.sent(second) == ["b"]
    assert len(h.collections) == 2


def test_dispatch_sends_check_and_park(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three())
    nodes = h.add("gw0", "gw1", "gw2")
    assert [n.sent for n in nodes] == [
        [[h.index("a"), h.park]],
        [[h.index("b"), h.park]],
        [[h.index("c"), h.park]],
    ]
    assert h.park == 3


def test_started_hook_for_every_dispatch(tmp_path: Path) -> None:
    h = Harness(tmp_path, [_check("x1", AGENTS[0]), _check("x2", AGENTS[0])])
    (node,) = h.add("gw0")
    h.complete(node, "x1")
    assert h.started == [
        {"config": h.pytest_config, "name": "x1", "agent": AGENTS[0], "worker": "gw0"},
        {"config": h.pytest_config, "name": "x2", "agent": AGENTS[0], "worker": "gw0"},
    ]


def test_park_completion_is_ignored(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three(), max_parallel=1)
    (node,) = h.add("gw0")
    assert h.sent(node) == ["a"]
    h.sched.mark_test_complete(node, h.park, 0.0)
    assert h.sent(node) == ["a"]
    assert h.run.dispatcher.running == ["a"]
    assert not h.run.dispatcher.status


def test_completed_check_frees_its_worker(tmp_path: Path) -> None:
    h = Harness(tmp_path, [_check("x1", AGENTS[0]), _check("x2", AGENTS[0])])
    (node,) = h.add("gw0")
    assert h.sent(node) == ["x1"]
    assert h.run.dispatcher.running_on("gw0") == "x1"
    h.complete(node, "x1")
    assert h.run.dispatcher.status["x1"] == Status.PASSED
    assert h.sent(node) == ["x1", "x2"]
    assert h.run.dispatcher.running_on("gw0") == "x2"


def test_next_check_goes_to_the_worker_of_its_agent(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three(), max_parallel=1)
    nodes = h.add("gw0", "gw1", "gw2")
    assert [h.sent(n) for n in nodes] == [["a"], [], []]
    h.complete(nodes[0], "a")
    assert h.sent(_holder(h, nodes, "b")) == ["b"]
    assert h.run.dispatcher.running == ["b"]
    h.complete(_holder(h, nodes, "b"), "b")
    assert sorted(name for n in nodes for name in h.sent(n)) == ["a", "b", "c"]


def _holder(h: Harness, nodes: list[Node], name: str) -> Node:
    """The node the check was last sent to."""
    for node in nodes:
        if h.sent(node) and h.sent(node)[-1] == name:
            return node
    raise AssertionError(f"{name} was not sent")


def test_tests_finished_only_after_every_check(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three())
    nodes = h.add("gw0", "gw1", "gw2")
    for name in ("a", "b"):
        h.complete(_holder(h, nodes, name), name)
        assert not h.sched.tests_finished
        assert h.sched.has_pending
    h.complete(_holder(h, nodes, "c"), "c", Status.FAILED)
    assert h.sched.tests_finished
    assert not h.sched.has_pending
    assert all(n.shutdowns == 0 for n in nodes)  # xdist's DSession shuts down, not us


def test_missing_result_counts_as_error(tmp_path: Path) -> None:
    checks = [_check("a", AGENTS[0]), _check("b", AGENTS[1], needs=("a",))]
    h = Harness(tmp_path, checks)
    (node,) = h.add("gw0")
    h.sched.mark_test_complete(node, h.index("a"), 0.1)  # no report arrived
    assert h.run.dispatcher.status["a"] == "error"
    assert h.skips == [Skip("b", Status.SKIPPED, "needs a, which had an error")]
    assert h.sched.tests_finished


def test_worker_with_a_different_collection(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three())
    h.add("gw0")
    odd = Node("gw1")
    h.sched.add_node(odd)
    other = [h.ids[1], h.ids[0], *h.ids[2:]]
    with pytest.raises(Problem) as info:
        h.sched.add_node_collection(odd, other)
    assert str(info.value) == (
        "worker gw1 (popen) collected b, a, c in /somewhere instead of this gate's a, b, c; "
        f"run it in the project (here: {tmp_path})"
    )
    assert h.sched.nodes[-1] is odd and not h.sched.collected("gw1")


def test_collection_without_park_item(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three())
    node = Node("gw0", "socket=10.0.0.7:8888")
    h.sched.add_node(node)
    with pytest.raises(Problem, match=r"^worker gw0 \(socket=10.0.0.7:8888\) collected a, b, c "):
        h.sched.add_node_collection(node, h.ids[:-1])
    assert h.sched.collection is None  # nothing was scheduled from it


def test_a_worker_that_collected_nothing_or_another_gate(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three())
    node = Node("gw0", "socket=10.0.0.7:8888")
    h.sched.add_node(node)
    with pytest.raises(Problem) as info:
        h.sched.add_node_collection(node, [f"{FILE}::{PARK_NAME}"])
    assert "collected no check in /somewhere instead of this gate's a, b, c; add //chdir=" in (
        str(info.value)
    )
    # Fewer checks than the gate (a worker that deselected some): not this gate either.
    assert h.sched.check_collection(node, ["a", "c", PARK_NAME]) is not None
    assert h.sched.check_collection(node, ["a", "b", "c", PARK_NAME]) is None


def test_remove_node_mid_check(tmp_path: Path) -> None:
    h = Harness(tmp_path, [_check("x1", AGENTS[0]), _check("x2", AGENTS[0])])
    (node,) = h.add("gw0")
    assert h.sent(node) == ["x1"]
    assert h.sched.remove_node(node) == f"{FILE}::x1"
    assert h.crashes == [("x1", "gw0")]
    assert h.run.dispatcher.status["x1"] == "error"
    assert h.sched.nodes == []
    assert not h.sched.tests_finished
    # xdist starts a replacement worker: it gets the rest of that agent's work.
    (fresh,) = h.add("gw1")
    assert h.sent(fresh) == ["x2"]
    h.complete(fresh, "x2")
    assert h.sched.tests_finished


def test_remove_idle_node(tmp_path: Path) -> None:
    h = Harness(tmp_path, [_check("a", AGENTS[0])])
    busy, idle = h.add("gw0", "gw1")
    assert h.sent(busy) == ["a"]
    assert h.sched.remove_node(idle) is None
    assert h.crashes == []
    assert "gw1" not in h.run.dispatcher.workers
    # A node that never collected.
    assert h.sched.remove_node(Node("gw7")) is None


def test_fail_fast_cancels_the_other_nodes(tmp_path: Path) -> None:
    checks = [*_three(), _check("d", AGENTS[0])]
    h = Harness(tmp_path, checks, on_failure="fail-fast")
    nodes = h.add("gw0", "gw1", "gw2")
    failing = _holder(h, nodes, "b")
    h.complete(failing, "b", Status.FAILED)
    reason = "cancelled: fail-fast after b failed"
    assert failing.commands == []
    for name in ("a", "c"):
        node = _holder(h, nodes, name)
        assert node.commands == [(CANCEL_COMMAND, {"check": name, "reason": reason})]
    assert h.skips == [Skip("d", Status.CANCELLED, reason)]
    assert not h.sched.tests_finished
    for name in ("a", "c"):
        h.complete(_holder(h, nodes, name), name, Status.CANCELLED)
    assert h.sched.tests_finished
    assert sum(len(n.sent) for n in nodes) == 3  # d was never sent


def test_cancel_command_reaches_the_worker_plugin(tmp_path: Path) -> None:
    """The command the controller sends is the one the worker's handler understands."""
    h = Harness(tmp_path, _three(), on_failure="fail-fast")
    nodes = h.add("gw0", "gw1", "gw2")
    h.complete(_holder(h, nodes, "b"), "b", Status.FAILED)
    (command,) = _holder(h, nodes, "a").commands
    worker_run = Harness(tmp_path, _three()).run
    WorkerPlugin(SimpleNamespace(), worker_run)._command(*command)  # type: ignore[arg-type]
    assert worker_run.cancel_reason("a") == "cancelled: fail-fast after b failed"
    assert worker_run.cancel_reason("c") is None


def test_cancel_to_a_closed_channel_is_ignored(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three(), on_failure="fail-fast")
    nodes = h.add("gw0", "gw1")

    def closed(name: str, **kwargs: Any) -> None:
        raise OSError("cannot send (already closed?)")

    running = _holder(h, nodes, "a")
    running.sendcommand = closed  # type: ignore[method-assign]
    h.complete(_holder(h, nodes, "b"), "b", Status.FAILED)
    assert h.skips == [Skip("c", Status.CANCELLED, "cancelled: fail-fast after b failed")]


def test_skip_actions_reach_on_skip(tmp_path: Path) -> None:
    checks = [
        _check("a", AGENTS[0]),
        _check("b", AGENTS[1], needs=("a",)),
        _check("c", AGENTS[2], needs=("b",)),
    ]
    h = Harness(tmp_path, checks)
    (node,) = h.add("gw0")
    h.complete(node, "a", Status.FAILED)
    assert h.skips == [
        Skip("b", Status.SKIPPED, "needs a, which failed"),
        Skip("c", Status.SKIPPED, "needs b, which was skipped"),
    ]
    assert h.sched.tests_finished
    assert h.sched.nodeid("c") == f"{FILE}::c"


def test_cancel_all(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three(), max_parallel=2)
    nodes = h.add("gw0", "gw1", "gw2")
    h.sched.cancel_all("interrupted")
    for name in ("a", "b"):
        node = _holder(h, nodes, name)
        assert node.commands == [(CANCEL_COMMAND, {"check": name, "reason": "interrupted"})]
    h.sched.schedule()
    assert h.skips == [Skip("c", Status.CANCELLED, "interrupted")]


def test_no_requeue_and_no_stealing(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three())
    (node,) = h.add("gw0")
    with pytest.raises(NotImplementedError):
        h.sched.mark_test_pending(h.ids[0])
    with pytest.raises(NotImplementedError):
        h.sched.remove_pending_tests_from_node(node, [0])


def test_workers_that_arrive_while_an_exclusive_check_waits_get_backfilled(
    tmp_path: Path,
) -> None:
    checks = [
        _check("long", AGENTS[0]),
        _check("ex", AGENTS[1], exclusive=True),
        _check("b", AGENTS[2]),
        _check("c", AGENTS[3]),
    ]
    h = Harness(tmp_path, checks)
    h.run.expected = {"long": 600.0, "ex": 2.0, "b": 0.5, "c": 0.5}
    h.run.workers = 4
    nodes = h.add("gw0", "gw1", "gw2", "gw3")
    # The scheduler reads the clock: b and c are expected to end long before long does.
    assert sorted(name for n in nodes for name in h.sent(n)) == ["b", "c", "long"]
    (b_node,) = [n for n in nodes if h.sent(n) == ["b"]]
    h.complete(b_node, "b")
    assert sorted(name for n in nodes for name in h.sent(n)) == ["b", "c", "long"]
    for name in ("c", "long"):
        (node,) = [n for n in nodes if h.sent(n)[-1:] == [name]]
        h.complete(node, name)
    assert sorted(name for n in nodes for name in h.sent(n)) == ["b", "c", "ex", "long"]


# ---------------------------------------------------------------------------- workers that go


def _controller(h: Harness) -> ControllerPlugin:
    plugin = ControllerPlugin(h.pytest_config, h.run)  # type: ignore[arg-type]
    plugin.scheduler = h.sched
    return plugin


def test_a_worker_down_before_collecting_ends_the_session(tmp_path: Path) -> None:
    h = Harness(tmp_path, _three())
    plugin = _controller(h)
    node = Node("gw3", "socket=10.0.0.7:8888")
    error = "Traceback ...\npytest.UsageError: parex agent: no [tool.parex] in /x: not the project"
    with pytest.raises(pytest.Session.Failed) as info:
        plugin.pytest_testnodedown(node, error)
    assert str(info.value).startswith(
        "worker gw3 (socket=10.0.0.7:8888) could not start: no [tool.parex] in /x: not the "
        "project; add //chdir="
    )
    assert h.run.problems == [str(info.value)]
    # Ctrl-C is not a worker's problem: the interruption is reported as such.
    plugin.pytest_testnodedown(Node("gw4"), "keyboard-interrupt")
    assert len(h.run.problems) == 1


def test_a_worker_that_collected_late_is_checked_when_it_finishes(tmp_path: Path) -> None:
    """xdist ignores collections that arrive while it shuts down; the worker's output still
    carries its collection, and another gate's fails the run even then."""
    h = Harness(tmp_path, _three())
    plugin = _controller(h)
    late = Node("gw1", "socket=10.0.0.7:8888")
    late.workeroutput = {COLLECTION_KEY: ["a", "b", "c", PARK_NAME]}
    plugin.pytest_testnodedown(late, None)  # this gate's collection: fine
    foreign = Node("gw2", "socket=10.0.0.7:8888")
    foreign.workeroutput = {COLLECTION_KEY: ["lint", PARK_NAME]}
    with pytest.raises(pytest.Session.Failed, match=r"gw2 .* collected lint in /somewhere "):
        plugin.pytest_testnodedown(foreign, None)
    silent = Node("gw5")
    silent.workeroutput = {}
    with pytest.raises(pytest.Session.Failed, match="finished without collecting the checks"):
        plugin.pytest_testnodedown(silent, None)


def test_a_worker_that_crashes_after_collecting_is_the_schedulers(tmp_path: Path) -> None:
    h = Harness(tmp_path, [_check("x1", AGENTS[0])])
    plugin = _controller(h)
    (node,) = h.add("gw0")
    plugin.pytest_testnodedown(node, "Not properly terminated")  # no problem: a crash
    assert h.run.problems == []
    assert h.sched.remove_node(node) == f"{FILE}::x1"
    assert h.crashes == [("x1", "gw0")]
