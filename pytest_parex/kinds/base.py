"""What a check kind is: its keys, its command, its verdict (the interface every kind module
implements), and what a kind is handed when its check runs.

A kind never imports :mod:`pytest_parex.config` at run time (only for types): the config layer
imports the kinds to validate their keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pytest_parex.results import CheckResult, Status

if TYPE_CHECKING:
    from pytest_parex.config import Check, Validator


@dataclass(frozen=True)
class Key:
    """A key of a ``[tool.parex.checks.NAME]`` table: how its value is validated and where it
    lands on the :class:`~pytest_parex.config.Check` (a field, or ``check.options``)."""

    name: str
    parse: Callable[[Validator, str, str, object], Any]
    """``(validator, where, key, value) -> value``; raises through the validator."""
    field: str = ""
    """The Check field it sets; empty: ``check.options[name]`` (kind-specific keys)."""


@dataclass(frozen=True)
class PytestLayout:
    """Where the project's pytest looks for tests (its ini file, read by the gate's pytest):
    what a first run's shard plan walks to find the test files."""

    python_files: tuple[str, ...] = ("test_*.py", "*_test.py")
    testpaths: tuple[str, ...] = ()
    norecursedirs: tuple[str, ...] = (
        "*.egg",
        ".*",
        "_darcs",
        "build",
        "CVS",
        "dist",
        "node_modules",
        "venv",
        "{arch}",
    )
    paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The test paths (and node ids) in each tests check's arguments, as pytest's parser
    reads them (by the check's configured name; missing: not known)."""


@dataclass(frozen=True)
class RunContext:
    """Where and how checks run on this process."""

    rootdir: Path
    log_dir: Path
    state_dir: Path
    config_path: str
    worker: str = "main"
    cancelled: Callable[[], str | None] = lambda: None
    cores: int = 1
    """Cores a nested ``-n auto`` may use."""
    save_baseline: bool = False
    """``--parex-save-baseline``: benchmark checks store their results as the new baseline."""
    save_durations: bool = False
    """``--parex-save-durations``: tests checks write their durations to their ``durations``
    file."""
    layout: PytestLayout = field(default_factory=PytestLayout)
    shared_state: bool = False
    """Every check of the run sees ``state_dir`` (local agents, or xdist workers on this
    machine the gate started): shards with no durations may take their tests as they go."""


@dataclass(frozen=True)
class Invocation:
    """The process a check runs."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    shell: bool = False
    files: Mapping[str, Path] = field(default_factory=dict)
    """Report files the child writes: "pytest", "benchmark", "leaks"."""
    log_offset: int = 0
    """Where this attempt's output starts in the check's log (a retry appends to it): a kind
    that reads the output reads from there, or every attempt's findings would count."""
    state: Any = None
    """What the kind keeps from ``prepare`` for ``interpret`` (the tree a pre-commit hook
    found), in this process only."""


@dataclass(frozen=True)
class Verdict:
    """What a kind made of a finished process."""

    status: Status
    detail: str
    figures: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    """Text that leads the failure report (issues, regressions, leaks) before the log tail."""
    quiet: bool = False
    """The output is for the gate, not for people (ruff's JSON): no tail in the report."""


class Store(Protocol):
    """What a kind may remember between runs (pytest's cache, on the controller)."""

    def get(self, key: str, default: Any) -> Any: ...

    def set(self, key: str, value: object) -> None: ...


class Kind:
    """A kind of check. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    agent: ClassVar[str] = "code-reviewer"
    """The agent type a check of this kind gets when it names none."""
    runs_pytest: ClassVar[bool] = False
    """The command is a child ``python -m pytest``; ``pytest = [...]`` holds its arguments."""
    exclusive: ClassVar[bool] = False
    """Checks of this kind run alone unless their table says otherwise."""
    keys: ClassVar[tuple[Key, ...]] = ()
    """Keys only this kind accepts (stored in ``check.options``)."""
    cacheable: ClassVar[bool] = True
    """A pass may be replayed when nothing it depends on changed (not for benchmarks: their
    verdict depends on the machine's state)."""

    # ------------------------------------------------------------------ configuration

    def resolve(
        self,
        v: Validator,
        where: str,
        argv: tuple[str, ...] | None,
        options: dict[str, Any],
        *,
        shell: bool,
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The check's argv and options, from what its table gave: ``argv`` from ``run`` or
        ``pytest`` (None: neither), ``options`` from :attr:`keys` (validated)."""
        if argv is None:
            raise v.error(where, 'needs a command: run = "..." or pytest = [...]')
        return argv, options

    def expand(self, check: Check) -> list[Check]:
        """The checks one table stands for (a sharded tests check: one per shard)."""
        return [check]

    # ------------------------------------------------------------------ running

    def prepare(self, check: Check, ctx: RunContext, env: dict[str, str]) -> Invocation:
        """The process to start; ``env`` is the check's environment, the kind may add to it."""
        return Invocation(check.argv, env, shell=check.shell)

    def interpret(
        self, check: Check, code: int | None, inv: Invocation, log: Path, ctx: RunContext
    ) -> Verdict:
        """The verdict of a process that exited with ``code`` (not timed out or cancelled)."""
        if code == 0:
            return Verdict(Status.PASSED, "")
        return Verdict(Status.FAILED, exit_phrase(code))

    # ------------------------------------------------------------------ the whole gate

    def before_gate(self, checks: Sequence[Check], ctx: RunContext, store: Store | None) -> None:
        """Called on the controller before any check of this kind starts (files written to
        ``ctx.state_dir`` are there for every check of the run)."""

    def after_gate(
        self,
        checks: Sequence[Check],
        results: Sequence[CheckResult],
        store: Store | None,
        ctx: RunContext,
    ) -> list[str]:
        """Called on the controller once the gate is decided, to remember what helps next time
        (``store`` is None without pytest's cache); returns lines for the summary."""
        return []


def exit_phrase(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


def load_json(path: Path | None) -> dict[str, Any]:
    """A JSON object written by a child; {} when missing or damaged (the exit code decides)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_head(path: Path, limit: int, offset: int = 0) -> str:
    """The first ``limit`` bytes of a log from ``offset`` on, decoded leniently."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""
