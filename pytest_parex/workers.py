"""How the gate's agents run: the mode decision (local slots by default, xdist workers with
``-n N``/``--tx``, one after another with ``-n 0``), lean xdist workers, and nesting.

Local agents cost nothing to start (:mod:`pytest_parex.modes.local`). An xdist worker costs a
pytest process -- and a gate worker runs no Python test: it collects the checks from the
config and starts their processes. Measured on this project's 2-core machine, per worker:

* assertion rewriting of every module of every plugin distribution (pytest_parex, xdist,
  pytest-benchmark, hypothesis...): cheap when pytest can cache the rewritten bytecode,
  0.4-0.8 s when it cannot (``PYTHONDONTWRITEBYTECODE=1``, common in containers and CI);
* the terminal summary, whose output goes to ``/dev/null`` on a worker: hypothesis's hook
  imports all of hypothesis there (0.3 s; 1-2 s with rewriting and no bytecode cache);
* pytest's unraisable-exception plugin collects garbage twice at exit (0.1 s).

So the workers of ``-n N`` get ``--assert=plain -p no:unraisableexception`` through
``PYTEST_ADDOPTS`` in their xdist spec (``popen//env:NAME=value``), and drop their terminal
reporter once configured (:mod:`pytest_parex.modes.worker`). The options of every other
plugin still load, so the controller's arguments parse on the worker as before. The worker
restores the environment before any check runs: checks inherit the user's own
``PYTEST_ADDOPTS``, never ours. A user's own ``--tx`` specs are left as they are.

Nested in another parallel runner (tox run-parallel, nox, an xdist worker), each of which
already keeps the cores busy, the gate runs fewer checks at once and says so in its header.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_parex import dispatch, runner
from pytest_parex.config import ParexConfig
from pytest_parex.output.text import sanitize
from pytest_parex.state import Mode

ADDOPTS = "PYTEST_ADDOPTS"
SAVED_ENV = "PYTEST_PAREX_WORKER_SAVED_ENV"
"""Set on lean workers only: the user's values of the variables the spec changed."""

WORKER_ADDOPTS = ("--assert=plain", "-p", "no:unraisableexception")
"""Options for the gate's workers: none changes what a check does (checks are processes)."""


def _encode(value: object) -> str:
    # urlsafe base64 has no "/" (execnet splits specs on "//") and no space.
    return base64.urlsafe_b64encode(json.dumps(value).encode("utf-8")).decode("ascii")


def local_specs(count: int, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """xdist ``--tx`` specs for ``count`` local workers that start lean."""
    env = os.environ if environ is None else environ
    original = env.get(ADDOPTS)
    addopts = " ".join([*([original] if original else []), *WORKER_ADDOPTS])
    if "//" in addopts:
        # Cannot be carried in an execnet spec; plain workers still work, only slower.
        return ["popen"] * count
    spec = f"popen//env:{ADDOPTS}={addopts}//env:{SAVED_ENV}={_encode({ADDOPTS: original})}"
    return [spec] * count


def restore_environ(environ: MutableMapping[str, str] | None = None) -> bool:
    """On a lean worker, put back the variables its spec changed; return whether it was one."""
    env = os.environ if environ is None else environ
    saved = env.pop(SAVED_ENV, None)
    if saved is None:
        return False
    try:
        values = json.loads(base64.urlsafe_b64decode(saved.encode("ascii")))
    except ValueError:
        values = {}
    original = values.get(ADDOPTS) if isinstance(values, dict) else None
    if isinstance(original, str):
        env[ADDOPTS] = original
    else:
        env.pop(ADDOPTS, None)
    return True


# ---------------------------------------------------------------------------- nesting


@dataclass(frozen=True)
class Nesting:
    """What the gate runs inside, and how many workers it may start there."""

    where: str
    """"tox run-parallel (TOX_PARALLEL_ENV=py311)", ... for the header line."""
    cap: int


@dataclass(frozen=True)
class Capped:
    """The outcome of :func:`apply`: the nesting, the workers wanted and those allowed."""

    nesting: Nesting
    wanted: int
    allowed: int
    explicit: bool
    """The user chose the worker count (``-n``, ``--tx``, ``--parex-max-parallel``)."""

    def note(self) -> str:
        if self.explicit:
            return f"inside {self.nesting.where}; worker count set explicitly, not capped"
        workers = f"{self.allowed} worker{'s' if self.allowed != 1 else ''}"
        return f"inside {self.nesting.where}: capped at {workers} (of {self.wanted})"


def tox_parallel(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is a tox that runs environments in parallel (``tox p``,
    ``tox run-parallel``, ``tox -p auto``, ``tox --parallel``)."""
    for i, arg in enumerate(argv[:3]):
        if Path(arg).name == "tox" or (arg == "-m" and argv[i + 1 : i + 2] == ["tox"]):
            start = i + (2 if arg == "-m" else 1)
            break
    else:
        return False
    rest = list(argv[start:])
    if "--" in rest:  # what follows goes to the commands (pytest's own -p, say)
        rest = rest[: rest.index("--")]
    words = [a for a in rest if not a.startswith("-")]
    if words[:1] in (["p"], ["run-parallel"]):
        return True
    return any(a in ("-p", "--parallel") or a.startswith("--parallel=") for a in rest)


def ancestors(limit: int = 8) -> Iterator[list[str]]:
    """The command lines of this process's parents, nearest first (Linux ``/proc``; nothing
    elsewhere)."""
    pid = os.getppid()
    for _ in range(limit):
        if pid <= 1:
            return
        stat = runner.proc_stat(pid)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return
        if stat is None:
            return
        yield [a for a in cmdline.decode(errors="replace").split("\0") if a]
        pid = stat.ppid


def detect(
    environ: Mapping[str, str],
    cpu_count: int | None,
    parents: Iterator[Sequence[str]] | None = None,
) -> Nesting | None:
    """The runner this process is nested in, from the variables those runners set.

    tox 4 no longer sets ``TOX_PARALLEL_ENV`` (tox 3 did): under tox, when the variable is
    missing, the parent processes' command lines tell whether it runs environments in parallel.
    """
    half = max(1, (cpu_count or 1) // 2)
    worker = environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # Its siblings run on the other cores; one more process per agent would oversubscribe.
        return Nesting(f"xdist worker {worker}", 1)
    tox = environ.get("TOX_PARALLEL_ENV")
    if tox:
        return Nesting(f"tox run-parallel (TOX_PARALLEL_ENV={tox})", half)
    env = environ.get("TOX_ENV_NAME")
    if env and any(tox_parallel(argv) for argv in (parents or ancestors())):
        return Nesting(f"tox run-parallel (env {env})", half)
    nox = environ.get("NOX_CURRENT_SESSION")
    if nox:
        return Nesting(f"nox (NOX_CURRENT_SESSION={nox})", half)
    return None


def apply(
    environ: Mapping[str, str], cpu_count: int | None, wanted: int, *, explicit: bool
) -> Capped | None:
    """How many workers to start when ``wanted`` would be started outside any runner."""
    nesting = detect(environ, cpu_count)
    if nesting is None:
        return None
    allowed = wanted if explicit else max(1, min(wanted, nesting.cap))
    return Capped(nesting, wanted, allowed, explicit)


# ---------------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class Decision:
    """What this process is in the gate, and with how many workers."""

    mode: Mode
    workers: int
    """Agent slots (local), xdist workers (controller), or 1 (one after another)."""
    why: str = ""
    """Why the checks run one after another in this process (for the header)."""
    specs: tuple[str, ...] = ()
    """Lean xdist ``--tx`` specs for ``-n N`` (none: the user's ``--tx`` stand)."""
    capped: Capped | None = None


def decide(config: pytest.Config, parex_config: ParexConfig) -> Decision:
    """The mode of this process and its agents, from xdist's options and the gate.

    By default the checks run side by side on local agent slots of this process
    (:mod:`pytest_parex.modes.local`): one slot per agent instance that has work, at most
    ``max-parallel``, fewer when nested. ``-n N`` and ``--tx`` ask for xdist workers instead
    (other interpreters, other machines); ``-n 0`` for one check after another.
    """
    if hasattr(config, "workerinput"):
        return Decision(Mode.WORKER, int(config.workerinput.get("workercount", 1) or 1))
    needed = dispatch.workers_needed(parex_config)
    capped = apply(os.environ, os.cpu_count(), needed, explicit=explicit(config))
    if capped is not None:
        needed = capped.allowed
    if config.getoption("parex_plan") or config.getoption("collectonly"):
        # --collect-only runs no check either: the plan, not a gate of "did not run" errors.
        return Decision(Mode.PLAN, needed, capped=capped)
    if not parex_config.checks:
        return Decision(Mode.LOCAL, 1, "every check is cached", capped=capped)
    xdist_on = config.pluginmanager.hasplugin("xdist")
    numprocesses = config.getoption("numprocesses", None) if xdist_on else None
    user_tx = config.getoption("tx", None) if xdist_on else None
    if user_tx and numprocesses != 0:
        # -n N: xdist made N plain popen specs; they start lean (nothing of theirs runs tests).
        wanted = expand_specs(user_tx)
        specs = tuple(local_specs(len(wanted))) if numprocesses else ()
        if not numprocesses:
            check_specs(wanted)
        return Decision(Mode.CONTROLLER, len(wanted), specs=specs, capped=capped)
    if numprocesses == 0:
        return Decision(Mode.LOCAL, 1, "-n 0", capped=capped)
    if needed <= 1:
        why = (
            "nested gate"
            if capped is not None
            else (
                "max-parallel 1"
                if parex_config.max_parallel == 1
                else "one agent instance has work"
            )
        )
        return Decision(Mode.LOCAL, 1, why, capped=capped)
    return Decision(Mode.LOCAL, needed, capped=capped)


def explicit(config: pytest.Config) -> bool:
    """The user chose how many workers (a nested gate's cap does not apply then)."""
    return bool(
        config.getoption("numprocesses", None) is not None
        or config.getoption("tx", None)
        or config.getoption("parex_max_parallel") is not None
        or os.environ.get("PYTEST_PAREX_MAX_PARALLEL")
    )


def apply_to_xdist(config: pytest.Config, decision: Decision) -> None:
    """Tell xdist what was decided: its options are read by its own ``pytest_configure``
    (trylast, after this) and when its session starts the workers."""
    if not config.pluginmanager.hasplugin("xdist") or decision.mode is Mode.WORKER:
        return
    if decision.mode is Mode.CONTROLLER:
        if decision.specs:
            config.option.tx = list(decision.specs)
            config.option.numprocesses = decision.workers
        if config.option.dist == "no":
            config.option.dist = "load"
    else:
        # No DSession: xdist's pytest_configure checks these.
        config.option.dist = "no"
        config.option.tx = []


# ---------------------------------------------------------------------------- agents' health
#
# A worker elsewhere (``--tx socket=``/``ssh=``, or ``popen//chdir=``) finds its project from
# its own working directory. Started anywhere else, its pytest reads another pyproject.toml --
# or none: the default gate of whatever lies there -- and it would collect other checks, or
# none. The gate must then fail with one line saying which worker, what it saw and what to do,
# never count "no tests ran" as a pass. Three checks make sure of it:
#
# * the controller sends the fingerprint of its [tool.parex] table and its version in the
#   worker's ``workerinput``; a worker that reads another gate refuses to start (a usage
#   error, AGENT_PREFIX) and the controller turns the error into that line;
# * the controller compares every worker's collection with its own gate (older or foreign
#   workers, that do not know the fingerprint);
# * a worker's collection also travels in its ``workeroutput``: xdist drops collections that
#   arrive while it shuts down, and a worker must not escape the check by being late.

GATE_KEY = "parex_gate"
"""``workerinput``: the fingerprint of the controller's ``[tool.parex]`` table."""
VERSION_KEY = "parex_version"
"""``workerinput``: the controller's pytest-parex version."""
CACHE_EXCLUDE_KEY = "parex_cache_exclude"
"""``workerinput``: what the controller's result cache leaves out of every key (its outputs),
or None when the cache is off: the worker keys what it runs the same way."""
COLLECTION_KEY = "parex_collection"
"""``workeroutput``: the item names the worker collected (checks and the park item)."""
AGENT_PREFIX = "parex agent: "
"""Starts the usage error of a worker that cannot run this gate (read back by the controller)."""
_XDIST_EXECMODEL = "execmodel=main_thread_only//"
"""What xdist puts before every ``--tx`` spec (``NodeManager``); not the user's words."""
_EXCEPTION_NAME = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit): ")


def fingerprint(table: Mapping[str, Any]) -> str:
    """A digest of a ``[tool.parex]`` table (or the default gate's): equal on the controller
    and a worker when both run the same checks the same way. The table, not the parsed gate:
    resolved commands name each machine's own interpreter and paths."""
    text = json.dumps(table, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def agent_mismatch(
    workerinput: Mapping[str, Any], gate: str, version: str, *, where: str, default: bool
) -> str | None:
    """On a worker: why it cannot run the controller's gate (None when it can).

    ``where`` names the config file this worker read and its rootdir; ``default`` says that
    it found no ``[tool.parex]`` there (the zero-config gate)."""
    wanted = workerinput.get(VERSION_KEY)
    if wanted is not None and wanted != version:
        return f"{AGENT_PREFIX}pytest-parex {version} there, {wanted} on the controller"
    expected = workerinput.get(GATE_KEY)
    if expected is None or expected == gate:
        return None
    if default:
        return not_the_project(where)
    return f"{AGENT_PREFIX}the [tool.parex] in {where} is not the controller's"


def not_the_project(where: str) -> str:
    """A worker's usage error when it finds no ``[tool.parex]`` where it runs."""
    return f"{AGENT_PREFIX}no [tool.parex] in {where}: not the project"


def expand_specs(tx: Sequence[str]) -> list[str]:
    """``--tx`` values as xdist expands them (``3*popen`` is three workers)."""
    out: list[str] = []
    for value in tx:
        count, star, rest = value.partition("*")
        if star and count.isdigit():
            out.extend([rest] * int(count))
        else:
            out.append(value)
    return out


def check_specs(specs: Sequence[str]) -> None:
    """The user's ``--tx`` specs: one socket server runs one worker at a time (it serves
    connections one after another), so a second worker on the same server would wait for the
    first one to end -- and the gate with it, forever."""
    seen: set[str] = set()
    for spec in specs:
        keys = spec_keys(spec)
        address = keys.get("socket", "")
        if not address or "installvia" in keys:
            continue
        if address in seen:
            raise pytest.UsageError(
                f"--tx: socket={address} is given for two workers; a socket server runs one "
                "worker at a time: start one server (one port) per worker"
            )
        seen.add(address)


def spec_text(spec: object) -> str:
    """A worker's ``--tx`` spec as the user wrote it, without its ``env:`` keys (the lean
    workers' own are long and say nothing to the user)."""
    text = str(spec)
    if text.startswith(_XDIST_EXECMODEL):
        text = text[len(_XDIST_EXECMODEL) :]
    return "//".join(part for part in text.split("//") if not part.startswith("env:"))


def spec_keys(spec: object) -> dict[str, str]:
    """The keys of a ``--tx`` spec as the user wrote it (xdist sets a default ``chdir`` on
    the spec object of every worker that is not a local popen one)."""
    keys = {}
    for part in spec_text(spec).split("//"):
        key, _, value = part.partition("=")
        keys[key] = value
    return keys


def _project_fix(spec: object, rootdir: Path) -> str:
    """How to make a worker run in the project."""
    keys = spec_keys(spec)
    chdir = keys.get("chdir")
    if chdir:
        return f"point chdir={chdir} at the project's directory there (here: {rootdir})"
    if "popen" in keys and "via" not in keys:
        return f"run it in the project (here: {rootdir})"
    return (
        f"add //chdir=/path/to/the/project to its --tx spec (the project here: {rootdir}; "
        "see README, Remote agents)"
    )


def last_line(error: object) -> str:
    """The message of a worker's error (a remote traceback): its last line that names an
    exception or an error (argparse's usage errors end with the inifile and rootdir), without
    the exception's name."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):
        if _EXCEPTION_NAME.match(line) or " error: " in line:
            return _EXCEPTION_NAME.sub("", line)
    return lines[-1] if lines else "no message"


def startup_problem(wid: str, spec: object, error: object, *, rootdir: Path, version: str) -> str:
    """The line for a worker that went down before it collected the checks."""
    message = last_line(error)
    if AGENT_PREFIX in message:
        what = message.split(AGENT_PREFIX, 1)[1]
        if what.startswith("pytest-parex "):
            fix = f"install pytest-parex {version} there"
        else:
            fix = _project_fix(spec, rootdir)
    elif "unrecognized arguments" in message and "--parex" in message:
        what = "its pytest does not know --parex"
        fix = f"install pytest-parex {version} in the Python that runs it"
    elif "No module named" in message:
        what = message
        fix = f"install pytest-xdist and pytest-parex {version} in the Python that runs it"
    else:
        what = message
        fix = "the project and pytest-parex must be there (see README, Remote agents)"
    return _line(wid, spec, f"could not start: {what}", fix)


def collection_problem(
    wid: str,
    spec: object,
    checks: Sequence[str],
    expected: Sequence[str],
    *,
    park: bool,
    cwd: str,
    rootdir: Path,
    version: str,
) -> str:
    """The line for a worker whose collection is not this gate's."""
    saw = f"collected {_names(checks)}" if checks else "collected no check"
    where = f" in {cwd}" if cwd else ""
    if not park:
        return _line(
            wid,
            spec,
            f"{saw}{where}, not as a pytest-parex {version} agent",
            f"install pytest-parex {version} there",
        )
    return _line(
        wid,
        spec,
        f"{saw}{where} instead of this gate's {_names(expected)}",
        _project_fix(spec, rootdir),
    )


def unreachable_problem(
    wid: str, spec: object, error: BaseException, *, replacing: bool = False
) -> str:
    """The line for a worker that could not even be started (no server, no host) -- or, with
    ``replacing``, not started again after it crashed."""
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if "socket" in spec_keys(spec):
        fix = "start execnet's socket server there (see README, Remote agents)"
    else:
        fix = "check that the host is reachable and runs Python"
    how = "crashed and could not be started again" if replacing else "could not be started"
    return _line(wid, spec, f"{how}: {what}", fix)


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _line(wid: str, spec: object, what: str, fix: str) -> str:
    # One line, and data from the other side is shown, never interpreted.
    text = f"worker {wid} ({spec_text(spec)}) {what}; {fix}"
    return sanitize(" ".join(text.split()))
