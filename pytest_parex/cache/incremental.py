"""The incremental gate: a check whose definition and inputs are byte for byte those of its
last pass is not run again -- its pass is replayed.

What decides a check's verdict, and so its key (:class:`~pytest_parex.cache.key.KeyParts`):

* its **definition**: kind, command, shell, cwd, env, timeout, retries, ``reads``,
  ``reads-env`` and its kind's options (not its agent, description, needs or blocking: they
  decide when and how it counts, not what it finds);
* the **content** of its inputs (never mtimes): the files matched by its ``reads`` globs plus
  the tool configuration files (:data:`CONFIG_FILES`; ``conftest.py`` files for kinds that
  run pytest), or, without ``reads``, every file of the project (git's tracked and untracked
  unignored files; outside git the tree minus VCS data, caches and virtualenvs). The gate's
  own ``[tool.parex]`` table counts only through the definitions it makes;
* the **tool**: the resolved executable and its content digest; for Python tools (the
  interpreter, a script of this environment) also the Python and every installed
  distribution with its version;
* the **environment variables** of :data:`~pytest_parex.cache.key.DEFAULT_ENV` and the
  check's ``reads-env`` (their values are stored as digests).

Only a pass is replayed (not flaky, not a failure); a check whose ``needs`` include one that
runs runs too; the shards of a tests check replay all together or not at all; a check whose
inputs changed while the gate ran is not recorded.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_parex import graph, kinds, runner
from pytest_parex.cache.digests import FileIndex
from pytest_parex.cache.identity import (
    executable_identity,
    installed_distributions,
    python_identity,
    resolve_executable,
)
from pytest_parex.cache.key import DEFAULT_ENV, KeyParts, canonical_json, env_values
from pytest_parex.cache.listing import Scanner
from pytest_parex.cache.reasons import explain
from pytest_parex.cache.store import ResultCache
from pytest_parex.config import Check, ConfigError, read_document
from pytest_parex.execute import environment
from pytest_parex.files import write_atomic
from pytest_parex.kinds.base import RunContext
from pytest_parex.results import CheckResult, Status

RESULTS_DIR = "parex-results"
INDEX_DIR = "parex-index"
MAX_ENTRIES = 2000
MAX_BYTES = 64 * 1024 * 1024
CONFIG_FILES = (
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "pytest.ini",
    ".pytest.ini",
    "ruff.toml",
    ".ruff.toml",
    "mypy.ini",
    ".mypy.ini",
    ".coveragerc",
    ".flake8",
)
"""Files at the rootdir that configure the tools checks run: inputs of every check."""
PYTEST_CONFIG_FILES = ("**/conftest.py",)
"""Also inputs of the checks whose kind runs pytest."""
DISABLED_ENV = "PYTEST_PAREX_CACHE"


@dataclass(frozen=True)
class Decision:
    """Whether one check replays, and why (not) -- for the plan, ``-v`` and the recording."""

    name: str
    reason: str
    """"cached", or why it runs ("src/a.py changed", "no earlier pass", "cache = false")."""
    parts: KeyParts | None = None
    """Its key parts before the run (None when it is not cached at all)."""
    replay: CheckResult | None = None
    """The stored pass, ready to report (``cached`` set), when it replays."""
    output: bytes = b""
    """The stored output of that pass."""
    dropped: int = 0

    @property
    def cached(self) -> bool:
        return self.replay is not None


def disabled_by_environment(environ: Mapping[str, str]) -> bool:
    return environ.get(DISABLED_ENV, "").strip().lower() in ("0", "false", "no", "off")


class Incremental:
    """The cache of one gate run (controller side): decide at configure time, record once the
    gate is decided."""

    def __init__(
        self,
        rootdir: Path,
        results_dir: Path,
        index_path: Path,
        *,
        context: RunContext,
        config_path: Path,
        exclude: Sequence[str] = (),
    ) -> None:
        self.rootdir = rootdir
        self.context = context
        self.config_path = config_path
        self.exclude = tuple(exclude)
        self.store = ResultCache(results_dir, max_entries=MAX_ENTRIES, max_bytes=MAX_BYTES)
        self.index_path = index_path
        self.index, warning = FileIndex.load(index_path)
        self.warnings: list[str] = [warning] if warning else []
        self.decisions: dict[str, Decision] = {}

    # ------------------------------------------------------------------ keys

    def key_parts(self, checks: Sequence[Check]) -> dict[str, KeyParts]:
        """The key parts of ``checks`` now: one scan of the tree, one pass over the index."""
        scanner = Scanner(self.rootdir, exclude=self.exclude)
        if not all(check.reads for check in checks):
            scanner.start_project_files()  # git lists while the reads are matched
        project: list[str] | None = None
        inputs: dict[str, list[str]] = {}
        for check in checks:
            if check.reads:
                inputs[check.name] = scanner.matching(_declared(check))
            else:
                if project is None:
                    project = scanner.project_files()
                inputs[check.name] = project
        every = sorted({path for paths in inputs.values() for path in paths})
        digests = self.index.digests(self.rootdir, every)
        own = _relative(self.config_path, self.rootdir)
        if own in digests:
            digests[own] = _without_gate_table(self.config_path, digests[own])
        python: tuple[str, dict[str, str]] | None = None
        out: dict[str, KeyParts] = {}
        for check in checks:
            env = environment(check, self.context)
            cwd = self.context.rootdir / check.cwd
            program = _program(check)
            tools: dict[str, str] = {}
            if program:
                tools[program] = executable_identity(
                    program, env.get("PATH"), cwd, index=self.index
                )
            versions: dict[str, str] = {}
            identity = ""
            if _runs_python(check, program, env.get("PATH"), cwd):
                if python is None:
                    python = (python_identity(), installed_distributions())
                identity, versions = python
            out[check.name] = KeyParts(
                definition=definition(check),
                files={p: digests[p] for p in inputs[check.name] if p in digests},
                tools=tools,
                versions=versions,
                python=identity,
                env=env_values([*DEFAULT_ENV, *check.reads_env], env),
            )
        return out

    # ------------------------------------------------------------------ deciding

    def decide(self, checks: Sequence[Check]) -> dict[str, Decision]:
        """Which checks replay: each whose current key is its last pass's, whose ``needs``
        all replay, and -- for shards -- whose sibling shards all replay."""
        cacheable = [c for c in checks if c.cache and kinds.get(c.kind).cacheable]
        parts = self.key_parts(cacheable)
        decisions: dict[str, Decision] = {}
        for check in checks:
            if check.name not in parts:
                why = "cache = false" if not check.cache else f"{check.kind} are never cached"
                decisions[check.name] = Decision(check.name, why)
                continue
            current = parts[check.name]
            found = self.store.lookup(check.name)
            if found.warning:
                self.warnings.append(found.warning)
            if found.replayable(current) and found.entry is not None:
                decisions[check.name] = Decision(
                    check.name,
                    "cached",
                    current,
                    CheckResult.from_dict(found.entry.result),
                    found.entry.output,
                    found.entry.output_dropped,
                )
            else:
                decisions[check.name] = Decision(check.name, found.reason(current), current)
        _runs_together(checks, decisions)
        self.decisions = decisions
        self._save_index()
        return decisions

    def replayed(self, name: str, log: Path) -> CheckResult:
        """The stored pass of ``name``, its output restored to ``log`` (so the report, the
        tail and ``--parex-show-output`` have it)."""
        decision = self.decisions[name]
        assert decision.replay is not None
        note = b""
        if decision.dropped:
            note = (
                f"parex: the cache kept the end of this output ({decision.dropped} bytes "
                "before it were dropped)\n"
            ).encode()
        try:
            write_atomic(log, note + decision.output, durable=False)
        except OSError as exc:
            self.warnings.append(f"parex: cannot restore the cached output of {name}: {exc}")
        self.store.mark_used(name)
        return replace(
            decision.replay,
            status=Status.PASSED,
            cached=True,
            start=None,
            end=None,
            cpu=0.0,
            worker="",
            log_path=str(log),
            tail="" if not decision.replay.tail else runner.tail(log),
        )

    # ------------------------------------------------------------------ recording

    def record(self, checks: Sequence[Check], results: Iterable[CheckResult], logs: Path) -> None:
        """Once the gate is decided: a pass whose inputs did not change while it ran is
        recorded; a run that did not pass removes its check's replayable pass."""
        by_name = {c.name: c for c in checks}
        passed: list[CheckResult] = []
        for result in results:
            decision = self.decisions.get(result.name)
            if decision is None or decision.parts is None or result.cached:
                continue
            if result.status is Status.PASSED:
                passed.append(result)
            elif result.status in (Status.FLAKY, Status.FAILED, Status.TIMEOUT, Status.ERROR):
                self._warn(self.store.record_not_passed(result.name, result.status.value))
        changed: dict[str, list[str]] = {}
        if passed:
            after = self.key_parts([by_name[r.name] for r in passed])
            for result in passed:
                before = self.decisions[result.name].parts
                if before is None:
                    continue
                if after[result.name].digest() != before.digest():
                    # What it read changed while the gate ran: its pass may not be for what
                    # is there now. Say so, or the next run's "no earlier pass" puzzles.
                    why = explain(before, after[result.name], last_status=None)
                    changed.setdefault(why, []).append(result.name)
                    continue
                log = Path(result.log_path) if result.log_path else logs / f"{result.name}.log"
                try:
                    output = log.read_bytes()
                except OSError:
                    output = b""
                stored = {**result.to_dict(), "tail": result.tail}
                self._warn(self.store.record_pass(result.name, before, stored, output))
        for why, names in changed.items():
            self.warnings.append(
                f"parex: not cached ({why} while {'it' if len(names) == 1 else 'they'} ran;"
                f" ignore such outputs in git, or give reads): {', '.join(names)}"
            )
        self.store.evict()
        self._save_index()

    def _warn(self, warning: str | None) -> None:
        if warning:
            self.warnings.append(warning)

    def _save_index(self) -> None:
        self._warn(self.index.save(self.index_path))


def open_for_writing() -> list[str]:
    """Files this process has open for writing: its own output (``pytest --parex > out.log``,
    kept open by pytest's capture), never an input of a check -- or no check without ``reads``
    could be replayed. Linux ``/proc``; nothing elsewhere."""
    found: list[str] = []
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            with open(f"/proc/self/fdinfo/{fd}") as fh:
                flags = next(
                    (int(line.split()[1], 8) for line in fh if line.startswith("flags:")), 0
                )
            target = os.readlink(f"/proc/self/fd/{fd}")
        except (OSError, ValueError, IndexError):
            continue
        if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR) and target.startswith("/"):
            found.append(target)
    return found


def definition(check: Check) -> dict[str, Any]:
    """What a check does, as key data (see the module docstring for what is left out)."""
    return {
        "kind": check.kind,
        "argv": list(check.argv),
        "shell": check.shell,
        "cwd": check.cwd,
        "env": [list(pair) for pair in check.env],
        "timeout": check.timeout,
        "retries": check.retries,
        "reads": list(check.reads),
        "reads-env": list(check.reads_env),
        "options": [[k, v] for k, v in check.options],
        "shard": list(check.shard) if check.shard else None,
    }


def _declared(check: Check) -> list[str]:
    patterns = [*check.reads, *CONFIG_FILES]
    if kinds.get(check.kind).runs_pytest:
        patterns += PYTEST_CONFIG_FILES
    return patterns


def _program(check: Check) -> str:
    if kinds.get(check.kind).runs_pytest:
        return sys.executable
    if not check.argv:
        return ""
    if check.shell:
        try:
            words = shlex.split(check.argv[0])
        except ValueError:
            return ""
        return words[0] if words else ""
    return check.argv[0]


def _runs_python(check: Check, program: str, path_env: str | None, cwd: Path) -> bool:
    """The interpreter, or a script of this environment (a console script: ``mypy``, ``ruff``
    installed by pip), or a shell command: its behaviour follows the installed
    distributions."""
    if kinds.get(check.kind).runs_pytest or check.shell:
        return True
    resolved = resolve_executable(program, path_env, cwd) if program else None
    if resolved is None:
        return False
    name = Path(resolved).name.lower()
    inside = os.path.realpath(resolved).startswith(os.path.realpath(sys.prefix) + os.sep)
    beside = Path(resolved).parent == Path(sys.executable).parent
    return name.startswith("python") or inside or beside


def _runs_together(checks: Sequence[Check], decisions: dict[str, Decision]) -> None:
    """A check whose dependency runs, runs (it may read what that one writes); the shards of
    one tests check replay all or none (their split changes between runs).

    Settled as passes over ``checks`` would settle it (each check's reason names the first
    dependency or shard that runs when its pass reaches it), without one pass per link of a
    long chain (:func:`pytest_parex.graph.in_passes`)."""
    position = {c.name: i for i, c in enumerate(checks)}
    by_name = {c.name: c for c in checks}
    shards: dict[str, list[str]] = {}  # base name -> its checks, in order
    for check in checks:
        shards.setdefault(check.base_name, []).append(check.name)
    dependents: dict[str, list[str]] = {}
    for check in checks:
        for dep in check.needs:
            dependents.setdefault(dep, []).append(check.name)

    def followers(name: str) -> list[str]:
        siblings = [n for n in shards[by_name[name].base_name] if by_name[n].shard is not None]
        return [*dependents.get(name, ()), *siblings]

    def settle(name: str) -> bool:
        check = by_name[name]
        decision = decisions[name]
        if not decision.cached:
            return False
        why = ""
        for dep in check.needs:
            if dep in decisions and not decisions[dep].cached:
                why = f"needs {dep}, which runs"
                break
        if not why and check.shard is not None:
            for other in shards[check.base_name]:
                if not decisions[other].cached:
                    why = f"{other} runs"
                    break
        if not why:
            return False
        decisions[name] = replace(decision, reason=why, replay=None)
        return True

    graph.in_passes(position, position, followers, settle)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return ""


def _without_gate_table(path: Path, digest: str) -> str:
    """The digest of the gate's config file without its ``[tool.parex]`` table: the table
    counts through the definitions it makes, so adding a check reruns no other."""
    try:
        document = read_document(path)
    except ConfigError:
        return digest
    tool = document.get("tool")
    if isinstance(tool, dict):
        tool = {k: v for k, v in tool.items() if k != "parex"}
        document = {**document, "tool": tool}
    text = canonical_json(_jsonable(document))
    return "toml:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _jsonable(value: Any) -> Any:
    """TOML values as JSON data (dates and times as ISO text)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
