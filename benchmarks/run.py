"""Reproducible performance figures for pytest-parex (not part of the test suite).

    python benchmarks/run.py [--reps 3] [--json benchmarks/results.json] [--only overhead,...]
                             [--project NAME==VERSION,...] [--workdir DIR] [--tox PATH]

Every workload runs in scratch projects under a temporary directory, every contender once per
repetition (interleaved, so a change of machine load hits them alike), and the table shows
medians. Every subprocess has a timeout and its process group is killed on the way out; the
script fails if a process it started outlives its run. Every gate that measures running checks
passes ``--parex-no-cache`` (a second repetition would otherwise measure a replay); only the
cache sections use the result cache, on purpose.

Sections (see ``--only``):

- overhead: 5 x ``sleep 2`` on 5 agents -- ``pytest --parex`` (local agents) and ``-n 5``
  (xdist workers) vs ``xargs -P5``, tox run-parallel, ``pytest -n 5``, one after another, each
  with and without ``PYTHONDONTWRITEBYTECODE=1``; the checks' start offsets from the JSON
  report; where the time goes (``python -c pass``, ``import pytest``, the controller alone).
- cpu: 5 x ~2 s of Python work: parex vs ``xargs -P5``, ``-n 5``, ``-n 0``; the honest speedup.
- project: real projects from PyPI (``--project``, default ``more-itertools`` and ``attrs``):
  ruff, ruff format, mypy and the tests in 2 shards, gated, vs the shell lines for the same
  tools -- the best one, and the reviews beside pytest-split's two groups (``--splits 2
  --group N``, its durations stored in the untimed warm-up, as the gate remembers its own
  there). Each sdist and its venv (with pytest-split, and the ruff and mypy its pre-commit
  configuration pins) are made once, untimed, under ``--workdir`` (PyPI through pip: the only
  sections that need the network, and only the first time); tests that fail here as released
  are deselected for every contender, and the notes say which.
- startup: the same projects' gates before their checks: the controller alone
  (``--parex-plan``, with and without the result cache), an unchanged rerun (every check
  replayed) and where its time goes, with bytecode written and without; the imports the gate
  pays (pytest, xdist's plugin, rich, the gate's modules).
- cache: a generated project of 5,000 files: first run, unchanged rerun, one file changed; the
  key computation on 5,000 and 50,000 files warm (``benchmarks/keys.py``); installed code of a
  virtualenv of 150 distributions keyed by content vs by name and version.
- watch: ``--parex-watch`` on 2,000 files: a save -> the first affected check started (from
  each round's JSON report), and the watcher's CPU over 10 idle seconds.
- store: branch A -> B -> A on the cache project (the third run replays A's passes); a lookup
  in a store of 10,000 entries (hit and miss), the eviction scan over them.
- selfgate: this repository's own gate in a fresh copy of the working tree (no pytest cache):
  the first run, a balanced run that runs everything again, unchanged reruns; and the first run
  of a copy without the committed durations file (its shards take the files as they go).
- scheduling, scale, failfast: a DAG vs its lower bound; 200 checks of ``true``; fail-fast.

Every target is listed at the end with its figure and whether it holds. Measure on a quiet
machine: the header prints the load average, and warns when the 1-minute load is above 1.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keys as keybench  # benchmarks/keys.py, beside this file

from pytest_parex.config import to_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

PY = sys.executable
REPO = Path(__file__).resolve().parent.parent
AGENTS = ("code-reviewer", "test-runner", "feature-implementer", "refactorer", "debugger")
SECTIONS = (
    "overhead",
    "cpu",
    "project",
    "startup",
    "cache",
    "watch",
    "store",
    "selfgate",
    "scheduling",
    "scale",
    "failfast",
    "precommit",
)
TIMEOUT = 300.0
"""Seconds any one measured command may take before it is killed (and the run fails)."""
SELFGATE_TIMEOUT = 3600.0
"""The repository's own first gate runs its whole test suite."""
DEFAULT_PROJECTS = "more-itertools==11.2.1,attrs==26.1.0"
"""ruff, ruff format and mypy pass on both as released (with the ruff their pre-commit
configuration pins), their tests run offline: more-itertools 765 tests and ~21,000 subtests
(one file holds most of them), attrs ~1,400 tests in 25 files, with hypothesis and a
``tests/conftest.py``."""
BENCH_VENV = 2
"""Bumped when the project venvs need something new (2: pytest-split, pinned review tools)."""

TARGETS = {
    "overhead_vs_xargs": 1.25,  # parex / xargs -P5 (5 x sleep 2), with and without pyc writes
    "overhead_vs_tox": 1.00,  # parex / tox run-parallel
    "start_offset_s": 0.35,  # the last check's start after the gate's start (median run)
    "cpu_vs_xargs": 1.25,  # parex / xargs -P5 (5 x 2 s of Python)
    "project_vs_shell": 1.00,  # parex / the best shell line for the same tools
    "project_vs_split": 0.90,  # parex / reviews beside pytest-split's two groups
    "startup_rerun_s": 0.35,  # a real project's unchanged rerun (every check replayed)
    "startup_plan_s": 0.35,  # a real project's controller alone (--parex-plan)
    "selfgate_fresh_vs_balanced": 1.10,  # fresh clone's first run / a balanced second run
    "cache_rerun_fraction": 0.25,  # unchanged rerun <= this x the first run ...
    "cache_rerun_plus_s": 0.25,  # ... + this
    "cache_rerun_started": 0,  # checks started by an unchanged rerun
    "keys_warm_ms": 50.0,  # key computation on 5,000 files, warm
    "keys_warm_large_ms": 300.0,  # key computation on 50,000 files, warm
    "installed_content_extra_ms": 50.0,  # keying 150 distributions by content, over by version
    "selfgate_rerun_s": 1.0,  # the repository's own gate, second run, nothing changed
    "scale_ms": 10.0,  # per-check overhead
    "failfast_s": 0.2,  # failing check's end -> last cancelled tree gone
    "precommit_vs_pre_commit": 0.5,  # parex / pre-commit run --all-files (same hooks, warm)
    "precommit_vs_prek": 1.0,  # parex / prek run --all-files
    "precommit_rerun_started": 0,  # hooks run by an unchanged rerun (every one replays)
    "watch_start_ms": 100.0,  # --parex-watch: save -> first affected check started (median)
    "watch_idle_percent": 1.0,  # the watcher's CPU while nothing changes, % of one core
    "store_ab_fraction": 0.25,  # branch A -> B -> A: the third run <= this x the first ...
    "store_ab_plus_s": 0.25,  # ... + this
    "store_lookup_ms": 5.0,  # a lookup in a store of 10,000 entries
}
NAN = float("nan")


# ------------------------------------------------------------------------------ running


@dataclass
class Measured:
    """One run of one command."""

    wall: float
    cpu: float
    """User + system seconds of the command and every process it waited for."""
    returncode: int
    output: str


class BenchError(RuntimeError):
    pass


def clean_env(extra: Mapping[str, str] | None = None, bindir: str | None = None) -> dict[str, str]:
    """The caller's environment without anything that would change a gate or a pytest run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_PAREX_", "PYTEST_XDIST_")) and k != "PYTEST_ADDOPTS"
    }
    env["PATH"] = (bindir or str(Path(PY).parent)) + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


BYTECODE = {"pyc": "bytecode written", "nopyc": "PYTHONDONTWRITEBYTECODE=1"}


def bytecode_env(variant: str) -> dict[str, str]:
    """``clean_env`` with ``PYTHONDONTWRITEBYTECODE`` set (``nopyc``) or unset (``pyc``)."""
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if variant == "nopyc":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout: float = TIMEOUT,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> Measured:
    """Run ``argv`` in its own process group; kill the group on timeout or on any error."""
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
    except BaseException:
        # Timeout or Ctrl-C: the command and everything in its group die with it. (After a
        # normal exit, leftovers are not killed here: assert_nothing_left reports them.)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return Measured(wall, cpu, proc.returncode, out.decode("utf-8", "replace"))


def processes_under(root: Path) -> list[str]:
    """Live processes whose working directory is inside ``root`` (ours, by construction)."""
    found = []
    prefix = str(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd.startswith(prefix) and stat != "Z":
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {cmd.strip()}")
    return found


def assert_nothing_left(root: Path, what: str) -> None:
    deadline = time.monotonic() + 5.0
    left = processes_under(root)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_under(root)
    if left:
        for line in left:
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        raise BenchError(f"{what}: processes left running: {left}")


def gate_pyproject(checks: Mapping[str, Mapping[str, Any]], **top: Any) -> str:
    return to_toml({**top, "checks": checks})


def parex_cmd(*extra: str, cache: bool = False, python: str = PY) -> list[str]:
    """``pytest --parex``; with ``--parex-no-cache`` unless ``cache``: a measured run runs its
    checks rather than replaying the previous repetition's passes."""
    return [python, "-m", "pytest", "--parex", *(() if cache else ("--parex-no-cache",)), *extra]


SECONDS = r"(\d+m)?(\d+(?:\.\d+)?)s"


def parse_seconds(text: str) -> float:
    m = re.fullmatch(SECONDS, text)
    if not m:
        raise ValueError(text)
    minutes = float(m.group(1)[:-1]) if m.group(1) else 0.0
    return minutes * 60 + float(m.group(2))


def median(values: Sequence[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else NAN


def rnd(value: float, digits: int = 4) -> float | None:
    """JSON has no NaN: a figure that could not be measured is null."""
    return None if math.isnan(value) else round(value, digits)


@dataclass
class Series:
    """Repeated measurements of one contender."""

    label: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)
    """One figure per run (its median is reported)."""
    pooled: dict[str, list[float]] = field(default_factory=dict)
    """Several figures per run, pooled over the runs (median and max are reported)."""

    def add(self, m: Measured, **extra: float) -> None:
        self.walls.append(m.wall)
        self.cpus.append(m.cpu)
        for k, v in extra.items():
            self.extra.setdefault(k, []).append(v)

    def pool(self, key: str, values: Sequence[float]) -> None:
        self.pooled.setdefault(key, []).extend(values)

    @property
    def wall(self) -> float:
        return median(self.walls)

    def fig(self, key: str) -> float:
        return median(self.extra.get(key, []))

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "wall_median": rnd(self.wall),
            "cpu_median": rnd(median(self.cpus)),
            "walls": [round(w, 4) for w in self.walls],
            "cpus": [round(c, 4) for c in self.cpus],
            **{f"{k}_median": rnd(median(v)) for k, v in self.extra.items()},
            **{
                f"{k}_pooled": {
                    "median": rnd(median(v)),
                    "max": rnd(max(v, default=NAN)),
                    "n": len(v),
                }
                for k, v in self.pooled.items()
            },
        }


def expect_ok(m: Measured, what: str, code: int = 0) -> Measured:
    if m.returncode != code:
        tail = "\n".join(m.output.splitlines()[-30:])
        raise BenchError(f"{what}: exit code {m.returncode} (expected {code})\n{tail}")
    return m


def target(
    name: str, figure: float, limit: float, unit: str, note: str = "", valid: bool = True
) -> dict[str, Any]:
    """One promise: ``figure`` must be at most ``limit``. A figure not measured, or not
    measured on the promised workload (``valid`` false, ``note`` says why), misses."""
    return {
        "name": name,
        "figure": rnd(figure),
        "limit": limit,
        "unit": unit,
        "holds": valid and not math.isnan(figure) and figure <= limit,
        "note": note,
    }


# ------------------------------------------------------------------------------ gates


@dataclass
class Gates:
    """Runs ``pytest --parex`` with a JSON report (written outside the project: a file the run
    leaves in the tree would be an input of the next run's checks)."""

    reports: Path

    def run(
        self,
        proj: Path,
        *extra: str,
        what: str,
        cache: bool = False,
        env: Mapping[str, str] | None = None,
        code: int | None = 0,
        timeout: float = TIMEOUT,
        python: str = PY,
    ) -> tuple[Measured, dict[str, Any]]:
        self.reports.mkdir(parents=True, exist_ok=True)
        path = self.reports / f"gate-{time.time_ns()}.json"
        argv = parex_cmd(f"--parex-json={path}", *extra, cache=cache, python=python)
        m = run(argv, proj, env=env, timeout=timeout)
        if code is not None:
            expect_ok(m, what, code)
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            tail = "\n".join(m.output.splitlines()[-30:])
            raise BenchError(f"{what}: no JSON report ({exc})\n{tail}") from exc
        path.unlink()
        return m, doc


def gate_figures(m: Measured, doc: Mapping[str, Any]) -> dict[str, float]:
    """Where a gate's time went, from its JSON report (offsets from the gate's start)."""
    totals = doc["totals"]
    ran = [c for c in doc["checks"] if c.get("start") is not None]
    starts = [float(c["start"]) for c in ran]
    ends = [float(c["end"]) for c in ran if c.get("end") is not None]
    wall, process_wall = float(totals["wall"]), float(totals["process_wall"])
    return {
        "gate_wall": wall,
        "process_wall": process_wall,
        "before_gate": process_wall - wall,
        "after_gate": m.wall - process_wall,
        "first_start": min(starts, default=NAN),
        "last_start": max(starts, default=NAN),
        "last_end": max(ends, default=NAN),
        "after_checks": wall - max(ends) if ends else NAN,
        "sequential": float(totals["sequential"]),
        "speedup": float(totals["speedup"]),
        "reported_cpu": float(totals["cpu"]),
        "cached": float(totals["cached"]),
        "ran": float(len(ran)),
    }


def check_starts(doc: Mapping[str, Any]) -> list[float]:
    return [float(c["start"]) for c in doc["checks"] if c.get("start") is not None]


def add_gate(series: Series, m: Measured, doc: Mapping[str, Any]) -> None:
    series.add(m, **gate_figures(m, doc))
    series.pool("start", check_starts(doc))
    for c in doc["checks"]:
        if c.get("start") is not None:
            series.extra.setdefault(f"duration:{c['name']}", []).append(float(c["duration"]))


def header_note(output: str, prefix: str) -> str:
    """A clause of the gate's header line (``CPU-bound checks: ...``), or empty."""
    m = re.search(re.escape(prefix) + r"[^;\n]*", output)
    return m.group(0).strip() if m else ""


# ------------------------------------------------------------------------------ tools


def parallel_tool() -> tuple[str, Callable[[Sequence[str], int], list[str]]] | None:
    """GNU parallel when installed: (name, argv builder for N shell commands)."""
    gnu = shutil.which("parallel")
    if gnu:
        probe = subprocess.run([gnu, "--version"], capture_output=True, text=True, timeout=30)
        if "GNU parallel" in probe.stdout:
            return "GNU parallel", lambda cmds, jobs: [
                gnu,
                "--will-cite",
                "-j",
                str(jobs),
                ":::",
                *cmds,
            ]
    return None


def xargs_argv(cmds: Sequence[str], jobs: int) -> list[str]:
    # The commands arrive on stdin, one a line (see run_xargs).
    return ["xargs", "-P", str(jobs), "-I", "{}", "sh", "-c", "{}"]


def run_xargs(cmds: Sequence[str], jobs: int, cwd: Path) -> Measured:
    return run(xargs_argv(cmds, jobs), cwd, stdin="\n".join(cmds) + "\n")


def find_tox(given: str | None) -> str | None:
    """The tox executable as an absolute path (it runs in scratch directories): ``--tox``
    (a name on PATH, or a path from here), else tox on PATH or beside this Python."""
    if given:
        found = shutil.which(given)
        if found is None:
            raise BenchError(f"--tox {given}: no executable of that name or at that path")
        return str(Path(found).resolve())
    for candidate in (shutil.which("tox"), str(Path(PY).parent / "tox")):
        if candidate and os.access(candidate, os.X_OK):
            return str(Path(candidate).resolve())
    return None


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------ overhead


TOX_INI = """\
[tox]
envlist = c0,c1,c2,c3,c4
skipsdist = true
[testenv]
skip_install = true
allowlist_externals = sleep
commands = sleep 2
"""


def overhead(root: Path, reps: int, tox: str | None) -> dict[str, Any]:
    """5 x ``sleep 2`` on 5 agents: parex (local agents, and -n 5) vs xargs -P5, tox
    run-parallel, pytest -n 5 and one after another, with and without bytecode writes; the
    checks' start offsets; where the gate's time goes."""
    gates = Gates(root / "reports")
    gate = root / "overhead-gate"
    write(
        gate / "pyproject.toml",
        gate_pyproject({f"c{i}": {"agent": a, "run": "sleep 2"} for i, a in enumerate(AGENTS)}),
    )
    one = root / "overhead-one"
    write(one / "pyproject.toml", gate_pyproject({"c0": {"run": "true"}}))
    xd = root / "overhead-xdist"
    write(
        xd / "test_sleep.py",
        "import time\n\n" + "".join(f"\ndef test_{i}():\n    time.sleep(2)\n" for i in range(5)),
    )
    write(xd / "pytest.ini", "[pytest]\n")
    toxdir = root / "overhead-tox"
    write(toxdir / "tox.ini", TOX_INI)
    tox_argv = [tox, "p", "-p", "5", "--parallel-no-spinner", "-q"] if tox else []
    gnu = parallel_tool()
    cmds = ["sleep 2"] * 5
    notes: list[str] = []
    series: dict[str, Series] = {}
    for v, label in BYTECODE.items():
        series[f"parex_{v}"] = Series(f"pytest --parex (local agents) [{label}]")
        series[f"parex_n5_{v}"] = Series(f"pytest --parex -n 5 (xdist workers) [{label}]")
        if tox:
            series[f"tox_{v}"] = Series(f"tox run-parallel -p 5 [{label}]")
        series[f"xdist_{v}"] = Series(f"pytest -n 5 (5 sleeping tests) [{label}]")
    series["xargs"] = Series("xargs -P5")
    if gnu:
        series["parallel"] = Series(gnu[0] + " -j5")
    else:
        notes.append("GNU parallel not installed: its row is left out")
    series["sequential"] = Series("one after another (shell)")
    floors: dict[str, Series] = {
        "python": Series("python -c pass"),
        "import_pytest": Series('python -c "import pytest"'),
    }
    for v in BYTECODE:
        floors[f"plan_{v}"] = Series("controller alone: pytest --parex --parex-plan")
        floors[f"one_{v}"] = Series("pytest --parex, one check of true")
    if tox:
        for v in BYTECODE:
            warm = run(tox_argv, toxdir, env=bytecode_env(v), timeout=600)
            if warm.returncode != 0:
                notes.append(f"tox run-parallel failed to set up (exit {warm.returncode}): skipped")
                tox = None
                for k in [k for k in series if k.startswith("tox_")]:
                    del series[k]
                break
    else:
        notes.append("tox not installed: tox run-parallel skipped (--tox PATH to give one)")
    # Unmeasured: the gate remembers durations (and CPU shares), as it does every day.
    for v in BYTECODE:
        env = bytecode_env(v)
        gates.run(gate, what="parex overhead warm-up", env=env)
        gates.run(gate, "-n", "5", what="parex -n 5 warm-up", env=env)
        gates.run(one, what="parex one-check warm-up", env=env)
    for _ in range(reps):
        for v in BYTECODE:
            env = bytecode_env(v)
            m, doc = gates.run(gate, what="parex overhead", env=env)
            add_gate(series[f"parex_{v}"], m, doc)
            m, doc = gates.run(gate, "-n", "5", what="parex -n 5 overhead", env=env)
            add_gate(series[f"parex_n5_{v}"], m, doc)
            if tox:
                series[f"tox_{v}"].add(expect_ok(run(tox_argv, toxdir, env=env), "tox p"))
            m = run([PY, "-m", "pytest", "-n", "5", "-p", "no:cacheprovider", "-q"], xd, env=env)
            series[f"xdist_{v}"].add(expect_ok(m, "pytest -n 5"))
            plan = run(parex_cmd("--parex-plan"), gate, env=env)
            floors[f"plan_{v}"].add(expect_ok(plan, "parex plan"))
            m, doc = gates.run(one, what="parex one check", env=env)
            add_gate(floors[f"one_{v}"], m, doc)
        series["xargs"].add(expect_ok(run_xargs(cmds, 5, gate), "xargs -P5"))
        if gnu:
            series["parallel"].add(expect_ok(run(gnu[1](cmds, 5), gate), gnu[0]))
        series["sequential"].add(expect_ok(run(["sh", "-c", "; ".join(cmds)], gate), "serial"))
        floors["python"].add(expect_ok(run([PY, "-c", "pass"], gate), "python"))
        m = run([PY, "-c", "import pytest"], gate)
        floors["import_pytest"].add(expect_ok(m, "import pytest"))
        assert_nothing_left(root, "overhead")
    xargs = series["xargs"].wall
    targets = []
    floor: dict[str, dict[str, float | None]] = {}
    for v, label in BYTECODE.items():
        par = series[f"parex_{v}"]
        targets.append(
            target(
                f"5 x sleep 2: parex / xargs -P5 [{label}]",
                par.wall / xargs,
                TARGETS["overhead_vs_xargs"],
                "x",
            )
        )
        if tox:
            targets.append(
                target(
                    f"5 x sleep 2: parex / tox run-parallel [{label}]",
                    par.wall / series[f"tox_{v}"].wall,
                    TARGETS["overhead_vs_tox"],
                    "x",
                )
            )
        starts = par.pooled.get("start", [])
        targets.append(
            target(
                f"5 x sleep 2: last start after the gate's start [{label}]",
                par.fig("last_start"),
                TARGETS["start_offset_s"],
                "s",
                f"median run; every start: median {median(starts):.3f}s, worst "
                f"{max(starts, default=NAN):.3f}s",
            )
        )
        # The floor of any design built on a pytest session: a gate of one `true` check,
        # plus the 2 s every sleep takes.
        one_fixed = (
            floors[f"one_{v}"].wall
            - floors[f"one_{v}"].fig("last_end")
            + floors[f"one_{v}"].fig("first_start")
        )
        floor[v] = {
            "one_check_wall": rnd(floors[f"one_{v}"].wall),
            "fixed_cost": rnd(one_fixed),
            "floor_wall": rnd(one_fixed + 2.0),
            "floor_vs_xargs": rnd((one_fixed + 2.0) / xargs, 3),
        }
    return {
        "tool": "xargs -P5",
        "notes": notes,
        "series": {k: s.to_dict() for k, s in series.items()},
        "floors": {k: s.to_dict() for k, s in floors.items()},
        "floor": floor,
        "ratios": {k: rnd(s.wall / xargs, 3) for k, s in series.items()},
        "targets": targets,
    }


# ------------------------------------------------------------------------------ cpu


CPU_WORK = "n = {n}\nx = 0\nfor i in range(n):\n    x += i * i\n"


def calibrate(seconds: float, root: Path) -> int:
    """Loop iterations that take ``seconds`` of one core, alone (best of 3)."""
    probe = 2_000_000
    best = min(run([PY, "-c", CPU_WORK.format(n=probe)], root, timeout=120).cpu for _ in range(3))
    return max(1, int(probe * seconds / max(best, 1e-3)))


def cpu_bound(root: Path, reps: int, iterations: int | None = None) -> dict[str, Any]:
    """5 checks of ~2 s pure-Python CPU work: parex vs xargs -P5; the honest speedup."""
    gates = Gates(root / "reports")
    n = iterations or calibrate(2.0, root)
    proj = root / "cpu-gate"
    write(proj / "work.py", CPU_WORK.format(n=n))
    write(
        proj / "pyproject.toml",
        gate_pyproject(
            {f"c{i}": {"agent": a, "run": [PY, "work.py"]} for i, a in enumerate(AGENTS)}
        ),
    )
    cmds = [f"{PY} work.py"] * 5
    series = {
        "parex": Series("pytest --parex (local agents)"),
        "parex_n5": Series("pytest --parex -n 5 (xdist workers)"),
        "xargs": Series("xargs -P5"),
        "serial_parex": Series("pytest --parex -n 0 (one after another)"),
        "serial": Series("one after another (shell)"),
    }
    # Unmeasured: the first run remembers durations and CPU shares (the CPU limit needs them).
    warm, _ = gates.run(proj, what="parex cpu warm-up")
    gates.run(proj, "-n", "5", what="parex cpu -n 5 warm-up")
    limit = ""
    for _ in range(reps):
        m, doc = gates.run(proj, what="parex cpu")
        add_gate(series["parex"], m, doc)
        limit = limit or header_note(m.output, "CPU-bound checks:")
        m, doc = gates.run(proj, "-n", "5", what="parex cpu -n 5")
        add_gate(series["parex_n5"], m, doc)
        series["xargs"].add(expect_ok(run_xargs(cmds, 5, proj), "xargs -P5"))
        m, doc = gates.run(proj, "-n", "0", what="parex cpu -n 0")
        add_gate(series["serial_parex"], m, doc)
        series["serial"].add(expect_ok(run(["sh", "-c", "; ".join(cmds)], proj), "serial"))
        assert_nothing_left(root, "cpu")
    par = series["parex"]
    gate_wall = par.fig("gate_wall")
    reported = par.fig("speedup")
    honest = series["serial_parex"].wall / par.wall
    xargs = series["xargs"].wall
    return {
        "iterations": n,
        "cpu_limit": limit or "(no CPU limit in the header)",
        "warm_up_header": header_note(warm.output, "CPU-bound checks:"),
        "series": {k: s.to_dict() for k, s in series.items()},
        "ratios": {k: rnd(s.wall / xargs, 3) for k, s in series.items()},
        "targets": [
            target(
                "5 x 2 s of Python: parex / xargs -P5",
                par.wall / xargs,
                TARGETS["cpu_vs_xargs"],
                "x",
            ),
        ],
        "speedup": {
            "reported": rnd(reported),
            "reported_sequential": rnd(par.fig("sequential")),
            "reported_cpu": rnd(par.fig("reported_cpu")),
            "gate_wall": rnd(gate_wall),
            "process_wall": rnd(par.fig("process_wall")),
            "measured": rnd(honest, 3),
            "measured_checks_only": rnd(series["serial_parex"].fig("sequential") / gate_wall, 3),
            "cpu_based": rnd(par.fig("reported_cpu") / gate_wall, 3),
            "overstated_by": rnd(reported / honest, 3) if honest else None,
        },
    }


# ------------------------------------------------------------------------------ project


@dataclass(frozen=True)
class Project:
    """A project from PyPI, unpacked, with a venv that has its test dependencies, this
    package (editable), ruff and mypy."""

    spec: str
    tree: Path
    venv: Path
    tests: tuple[str, ...]
    mypy: tuple[str, ...] | None
    """mypy's arguments when the project configures mypy, else None."""
    notes: tuple[str, ...]

    @property
    def bindir(self) -> Path:
        return self.venv / "bin"

    @property
    def python(self) -> str:
        return str(self.bindir / "python")

    def env(self) -> dict[str, str]:
        return clean_env({"VIRTUAL_ENV": str(self.venv)}, bindir=str(self.bindir))


TEST_GROUPS = ("test", "tests", "testing")
REQUIREMENT_FILES = (
    "requirements/testing.txt",
    "requirements/test.txt",
    "requirements/tests.txt",
    "requirements-test.txt",
    "requirements-tests.txt",
    "requirements_test.txt",
    "test-requirements.txt",
    "tests/requirements.txt",
)


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    return data


def dependency_group(groups: Mapping[str, Any], name: str) -> list[str]:
    """PEP 735: a group's requirements, included groups resolved."""
    out: list[str] = []
    for item in groups.get(name, []):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and "include-group" in item:
            out += dependency_group(groups, str(item["include-group"]))
    return out


def test_requirements(tree: Path) -> tuple[list[str], list[Path]]:
    """What its tests need, as far as the project says: a test dependency group, a test
    extra, a test requirements file (requirements, and files for ``pip -r``)."""
    data = read_toml(tree / "pyproject.toml")
    reqs: list[str] = []
    groups = data.get("dependency-groups", {})
    for name in TEST_GROUPS:
        if name in groups:
            reqs += dependency_group(groups, name)
            break
    extras = data.get("project", {}).get("optional-dependencies", {})
    for name in TEST_GROUPS:
        if name in extras:
            reqs += [str(r) for r in extras[name]]
            break
    files = [tree / f for f in REQUIREMENT_FILES if (tree / f).is_file()]
    return reqs, files


def mypy_config(tree: Path) -> dict[str, Any] | None:
    """The project's mypy settings (only ``files`` is read), or None when it has none."""
    tool = read_toml(tree / "pyproject.toml").get("tool", {})
    if "mypy" in tool:
        return dict(tool["mypy"])
    for name, section in (("mypy.ini", "mypy"), (".mypy.ini", "mypy"), ("setup.cfg", "mypy")):
        path = tree / name
        if not path.is_file():
            continue
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error:
            continue
        if parser.has_section(section):
            files = parser.get(section, "files", fallback="")
            return {"files": [f.strip() for f in files.split(",") if f.strip()]}
    return None


def import_dirs(tree: Path, name: str) -> list[str]:
    """Where the project's package is: ``src/NAME`` or ``NAME`` (``-``, ``.`` -> ``_``)."""
    module = re.sub(r"[-.]+", "_", name).lower()
    return [d for d in (f"src/{module}", module) if (tree / d / "__init__.py").is_file()]


def test_paths(tree: Path) -> list[str]:
    data = read_toml(tree / "pyproject.toml").get("tool", {}).get("pytest", {})
    paths = data.get("ini_options", data).get("testpaths")
    if isinstance(paths, str):
        paths = paths.split()
    if paths:
        return [str(p) for p in paths if (tree / str(p)).exists()]
    return [d for d in ("tests", "testing", "test") if (tree / d).is_dir()][:1]


def pip(python: str, *args: str, cwd: Path, what: str) -> Measured:
    m = run([python, "-m", "pip", *args], cwd, timeout=1800, env=clean_env())
    if m.returncode != 0:
        tail = "\n".join(line for line in m.output.splitlines()[-30:])
        raise BenchError(f"{what}: pip exit code {m.returncode}\n{tail}")
    return m


def unpack(archive: Path, dest: Path) -> Path:
    """The sdist's single top directory, unpacked under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, filter="data")
            else:  # pragma: no cover - Pythons without extraction filters
                tf.extractall(dest)
    tops = [p for p in dest.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise BenchError(f"{archive.name}: expected one top directory, found {len(tops)}")
    return tops[0]


PRE_COMMIT_TOOLS = {
    "ruff": ("astral-sh/ruff-pre-commit",),
    "mypy": ("pre-commit/mirrors-mypy",),
}


def pinned_by_pre_commit(tree: Path) -> dict[str, str]:
    """The ruff and mypy versions a project's ``.pre-commit-config.yaml`` pins (its ``rev``):
    the versions its code is clean with. Read with a pattern (no YAML parser needed)."""
    path = tree / ".pre-commit-config.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    found: dict[str, str] = {}
    for dist, repos in PRE_COMMIT_TOOLS.items():
        for repo in repos:
            m = re.search(re.escape(repo) + r"\s*\n\s*rev:\s*['\"]?v?([0-9][^'\"\s]*)", text)
            if m:
                found[dist] = m.group(1)
    return found


def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def prepare_project(spec: str, workdir: Path, extra_deps: Sequence[str]) -> Project:
    """Download, unpack and install ``spec`` once; later benchmark runs re-use ``workdir``."""
    name, sep, version = spec.partition("==")
    if not sep or not name or not version:
        raise BenchError(f"--project {spec!r}: expected NAME==VERSION")
    base = workdir / f"{re.sub(r'[^A-Za-z0-9.]+', '-', name).lower()}-{version}"
    marker = base / "ready.json"
    if marker.is_file():
        saved = json.loads(marker.read_text())
        # The venv has this checkout installed (editable): another checkout makes another.
        same = (saved.get("spec"), saved.get("extra"), saved.get("repo"), saved.get("venv_v"))
        if same == (spec, list(extra_deps), str(REPO), BENCH_VENV):
            return Project(
                spec=spec,
                tree=Path(saved["tree"]),
                venv=Path(saved["venv"]),
                tests=tuple(saved["tests"]),
                mypy=tuple(saved["mypy"]) if saved["mypy"] is not None else None,
                notes=tuple(saved["notes"]),
            )
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    print(f"  project: downloading the sdist of {spec} (PyPI)", file=sys.stderr)
    downloads = base / "download"
    pip(
        PY,
        "download",
        "-q",
        "--no-binary",
        ":all:",
        "--no-deps",
        "-d",
        str(downloads),
        spec,
        cwd=base,
        what=f"pip download {spec}",
    )
    archives = sorted(downloads.iterdir())
    if len(archives) != 1:
        raise BenchError(f"pip download {spec}: expected one sdist, got {archives}")
    tree = unpack(archives[0], base / "src")
    notes: list[str] = []
    venv = base / "venv"
    print(f"  project: making its venv in {venv}", file=sys.stderr)
    expect_ok(run([PY, "-m", "venv", str(venv)], base, timeout=600), "python -m venv")
    python = str(venv / "bin" / "python")
    reqs, files = test_requirements(tree)
    tools = []
    pinned = pinned_by_pre_commit(tree)
    for dist in ("ruff", "mypy"):
        # The version the project pins for its pre-commit hooks, else the one the benchmark
        # itself runs with: a newer ruff or mypy may flag code that was clean when the
        # project was released.
        have = pinned.get(dist) or installed_version(dist)
        tools.append(f"{dist}=={have}" if have else dist)
        if dist in pinned:
            notes.append(f"{dist}=={pinned[dist]}, as its .pre-commit-config.yaml pins")
    args = [
        "install",
        "-q",
        "-e",
        str(REPO),
        *tools,
        "pytest-xdist",
        "pytest-split",
        *reqs,
        *extra_deps,
    ]
    for f in files:
        args += ["-r", str(f)]
    pip(python, *args, cwd=tree, what=f"installing the test dependencies of {spec}")
    pip(python, "install", "-q", "-e", str(tree), cwd=tree, what=f"installing {spec}")
    declared = [*reqs, *extra_deps, *(str(f.relative_to(tree)) for f in files)]
    notes.append(f"test dependencies: {', '.join(declared) or 'none found'}")
    config = mypy_config(tree)
    mypy: list[str] | None = None
    if config is not None:
        files_cfg = config.get("files") or []
        if isinstance(files_cfg, str):
            files_cfg = [f.strip() for f in files_cfg.split(",")]
        given = [str(f) for f in files_cfg if (tree / str(f)).exists()]
        mypy = given or import_dirs(tree, name)
        if not mypy:
            notes.append("mypy is configured but no package directory was found: no types check")
            mypy = None
    else:
        notes.append("mypy is not configured: no types check")
    tests = test_paths(tree)
    if not tests:
        raise BenchError(f"{spec}: no test directory found (tests, testing, test, testpaths)")
    saved = {
        "spec": spec,
        "extra": list(extra_deps),
        "repo": str(REPO),
        "venv_v": BENCH_VENV,
        "tree": str(tree),
        "venv": str(venv),
        "tests": tests,
        "mypy": mypy,
        "notes": notes,
    }
    marker.write_text(json.dumps(saved, indent=2) + "\n")
    return Project(spec, tree, venv, tuple(tests), tuple(mypy) if mypy else None, tuple(notes))


def project_tools(p: Project) -> dict[str, list[str]]:
    """The tools both contenders run: name -> argv (the tests without their parallelism)."""
    tools = {
        "lint": ["ruff", "check", "."],
        "format": ["ruff", "format", "--check", "."],
    }
    if p.mypy is not None:
        tools["types"] = ["mypy", *p.mypy]
    seed = ["--hypothesis-seed=0"] if uses_hypothesis(p) else []
    tools["tests"] = [p.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *seed, *p.tests]
    return tools


def uses_hypothesis(p: Project) -> bool:
    """Whether the project's venv has hypothesis: its tests then draw random examples, and a
    run's work differs from the next -- by a third of the suite's time on attrs. Every
    contender gets ``--hypothesis-seed=0`` (hypothesis' own pytest option): the same
    examples in every run, so the runs measure the contenders, not the draw."""
    return any(p.venv.glob("lib/python*/site-packages/hypothesis-*.dist-info"))


def project_gate(p: Project, tools: Mapping[str, Sequence[str]]) -> str:
    checks: dict[str, dict[str, Any]] = {
        "lint": {"kind": "review", "tool": "ruff"},
        "format": {"kind": "review", "tool": "ruff-format", "agent": "refactorer"},
    }
    if "types" in tools:
        checks["types"] = {"kind": "review", "run": list(tools["types"]), "agent": "debugger"}
    # The same arguments as the shell lines' pytest (deselections included), after
    # "python -m pytest".
    checks["tests"] = {"pytest": list(tools["tests"][3:]), "shards": 2}
    return gate_pyproject(checks, agents={"test-runner": 2})


def shell_script(parts: Sequence[Sequence[Sequence[str]]]) -> str:
    """``sh`` that runs each part in the background (a part's commands one after another,
    stopping at the first failure), waits for every part and fails if any failed."""
    lines = ["s=0"]
    pids = []
    for i, part in enumerate(parts):
        chain = " && ".join(shlex.join(argv) for argv in part)
        lines.append(f"( {chain} ) & p{i}=$!")
        pids.append(f"$p{i}")
    lines.append(f"for p in {' '.join(pids)}; do wait $p || s=1; done")
    lines.append("exit $s")
    return "\n".join(lines) + "\n"


def test_files(p: Project, tests_argv: Sequence[str]) -> list[str]:
    """The project's test files, as its pytest collects them (``--co``: its conftest's
    ``collect_ignore`` applies, which naming the files on a command line would bypass)."""
    m = run([*tests_argv, "--co", "-q"], p.tree, env=p.env(), timeout=600)
    expect_ok(m, f"{p.spec}: pytest --co")
    found = {line.split("::", 1)[0] for line in m.output.splitlines() if "::" in line}
    return sorted(f for f in found if (p.tree / f).is_file())


def halves(tree: Path, files: Sequence[str]) -> list[list[str]]:
    """``files`` in two groups of about equal size in bytes (largest first, to the lighter)."""
    groups: list[list[str]] = [[], []]
    sizes = [0, 0]
    for f in sorted(files, key=lambda f: -(tree / f).stat().st_size):
        i = sizes.index(min(sizes))
        groups[i].append(f)
        sizes[i] += (tree / f).stat().st_size
    return groups


def display(argv: Sequence[str]) -> str:
    """``argv`` for a person: a path to the interpreter shown as ``python``."""
    return shlex.join(["python" if "/" in argv[0] else argv[0], *argv[1:]])


def failing_tests(output: str) -> list[str]:
    """The node ids of the ``FAILED``/``ERROR`` lines of pytest's short test summary."""
    found = set()
    for line in output.splitlines():
        m = re.match(r"(?:FAILED|ERROR) (\S+::\S+?)(?: - .*)?$", line)
        if m:
            found.add(m.group(1))
    return sorted(found)


def project_tests_pass(p: Project, tools: dict[str, list[str]]) -> tuple[float, list[str]]:
    """Run the project's tests alone (untimed) and make them pass here: tests that fail as
    released on this machine (an interpreter detail, a newer dependency) are deselected for
    every contender alike. Returns the wall of the passing run and the deselected ids."""
    argv = tools["tests"]
    m = run([*argv, "-rfE"], p.tree, env=p.env(), timeout=1800)
    if m.returncode == 0:
        return m.wall, []
    failed = failing_tests(m.output)
    if not failed:
        expect_ok(m, f"{p.spec}: {display(argv)} (the project must pass it as released)")
    paths = len(p.tests)
    argv[-paths:-paths] = [w for nodeid in failed for w in ("--deselect", nodeid)]
    m = run(argv, p.tree, env=p.env(), timeout=1800)
    expect_ok(m, f"{p.spec}: {display(argv)} (after deselecting what failed as released)")
    return m.wall, failed


def project(
    root: Path, reps: int, specs: Sequence[str], workdir: Path, extra_deps: Sequence[str]
) -> dict[str, Any]:
    """Each project of ``specs``, gated by parex vs the shell lines for the same tools."""
    out: dict[str, Any] = {"projects": {}, "targets": []}
    for spec in specs:
        found = one_project(root, reps, spec, workdir, extra_deps)
        out["projects"][spec] = found
        out["targets"] += found.pop("targets")
    return out


def one_project(
    root: Path, reps: int, spec: str, workdir: Path, extra_deps: Sequence[str]
) -> dict[str, Any]:
    """A real project from PyPI gated by parex vs the shell lines a careful engineer writes
    for the same tools: the best of them, and pytest-split's (the ecosystem's tool for
    splitting a suite; its durations stored in the untimed warm-up, as parex remembers its
    own there)."""
    p = prepare_project(spec, workdir, extra_deps)
    gates = Gates(root / "reports")
    env = p.env()
    tools = project_tools(p)
    # Unmeasured, once: each tool alone (what the shell lines are made of; it also warms
    # mypy's and ruff's caches, which every contender then uses).
    alone: dict[str, float] = {}
    for name, argv in tools.items():
        if name == "tests":
            continue
        m = run(argv, p.tree, env=env, timeout=1800)
        expect_ok(m, f"{spec}: {display(argv)} (the project must pass it as released)")
        alone[display(argv)] = m.wall
    wall, deselected = project_tests_pass(p, tools)
    alone[display(tools["tests"])] = wall
    tag = re.sub(r"[^A-Za-z0-9.]+", "-", spec)
    config = write(root / f"project-{tag}-parex.toml", project_gate(p, tools))
    # "=": pytest would take a separate value for a path when it finds the rootdir (before
    # plugin options are known), and root the gate at the common ancestor of both.
    gate_args = (f"--parex-config={config}",)
    pytest_argv = tools["tests"][: -len(p.tests)]
    tests_n2 = [*tools["tests"], "-n", "2"]
    review = [tools[k] for k in tools if k != "tests"]
    durations = p.tree / ".test_durations"
    # The shell lines a careful person would try on 2 cores; the best one is the reference.
    shells: dict[str, tuple[str, list[list[list[str]]]]] = {
        "shell_all": (
            "shell: every tool in the background, pytest -n 2",
            [*([t] for t in review), [tests_n2]],
        ),
        "shell_single": (
            "shell: the reviews one after another beside one pytest",
            [review, [tools["tests"]]],
        ),
    }
    split = [h for h in halves(p.tree, test_files(p, tools["tests"])) if h]
    if len(split) == 2:
        shells["shell_split"] = (
            "shell: the reviews beside two pytest (test files halved by size)",
            [review, [[*pytest_argv, *split[0]]], [[*pytest_argv, *split[1]]]],
        )
    for algorithm in ("least_duration", "duration_based_chunks"):
        groups = [
            [
                [
                    *tools["tests"],
                    "--splits",
                    "2",
                    "--group",
                    str(g),
                    f"--durations-path={durations}",
                    f"--splitting-algorithm={algorithm}",
                ]
            ]
            for g in (1, 2)
        ]
        shells[f"shell_pytest_split_{algorithm}"] = (
            f"shell: the reviews beside pytest-split's 2 groups ({algorithm})",
            [review, *groups],
        )
    for key, (_, parts) in shells.items():
        write(root / f"project-{tag}-{key}.sh", shell_script(parts))
    # Unmeasured, once: pytest-split stores its durations, the gate remembers its own (and
    # CPU shares) -- what each has on any day but the first.
    store = [*tools["tests"], "--store-durations", f"--durations-path={durations}"]
    expect_ok(run(store, p.tree, env=env, timeout=1800), f"{spec}: pytest --store-durations")
    m = run(tests_n2, p.tree, env=env, timeout=1800)
    alone[display(tests_n2)] = expect_ok(m, f"{spec}: {display(tests_n2)}").wall
    warm, _ = gates.run(p.tree, *gate_args, what=f"{spec}: parex warm-up", env=env, python=p.python)
    series = {"parex": Series("pytest --parex --parex-no-cache (local agents)")}
    series.update({k: Series(label) for k, (label, _) in shells.items()})
    limit = ""
    for _ in range(reps):
        m, doc = gates.run(p.tree, *gate_args, what=f"{spec}: parex", env=env, python=p.python)
        add_gate(series["parex"], m, doc)
        limit = limit or header_note(m.output, "CPU-bound checks:")
        for key in shells:
            m = run(["sh", str(root / f"project-{tag}-{key}.sh")], p.tree, env=env, timeout=1800)
            series[key].add(expect_ok(m, f"{spec}: {key}"))
        assert_nothing_left(p.tree, "project")
    best = min(shells, key=lambda k: series[k].wall)
    splits = [k for k in shells if k.startswith("shell_pytest_split_")]
    best_split = min(splits, key=lambda k: series[k].wall)
    par = series["parex"]
    # Each repetition runs every contender one after another: the ratio within a repetition
    # compares runs minutes apart, not hours -- this machine's speed drifts by a quarter
    # over minutes. The targets take the median of those paired ratios.
    paired = {k: [a / b for a, b in zip(par.walls, series[k].walls, strict=True)] for k in shells}
    notes = list(p.notes)
    if "--hypothesis-seed=0" in tools["tests"]:
        notes.append("hypothesis: every contender runs with --hypothesis-seed=0 (same examples)")
    if deselected:
        notes.append(
            f"deselected for every contender (they fail here as released): {', '.join(deselected)}"
        )
    if limit:
        notes.append(f"gate header: {limit}")
    return {
        "project": spec,
        "tree": str(p.tree),
        "notes": notes,
        "tools": {k: display(v) for k, v in tools.items()},
        "gate": config.read_text(),
        "shell": {k: shell_script(parts) for k, (_, parts) in shells.items()},
        "alone": {k: round(v, 4) for k, v in alone.items()},
        "series": {k: s.to_dict() for k, s in series.items()},
        "ratios": {k: rnd(s.wall / series[best].wall, 3) for k, s in series.items()},
        "best_shell": best,
        "best_split": best_split,
        "vs_split": rnd(par.wall / series[best_split].wall, 3),
        "paired": {k: [round(r, 3) for r in v] for k, v in paired.items()},
        "paired_median": {k: rnd(median(v), 3) for k, v in paired.items()},
        "warm_up_wall": round(warm.wall, 4),
        "targets": [
            target(
                f"{spec}: parex / the best shell line ({best}), median of paired runs",
                median(paired[best]),
                TARGETS["project_vs_shell"],
                "x",
            ),
            target(
                f"{spec}: parex / the reviews beside pytest-split ({best_split}), median of "
                "paired runs",
                median(paired[best_split]),
                TARGETS["project_vs_split"],
                "x",
            ),
        ],
    }


# ------------------------------------------------------------------------------ startup


def startup(
    root: Path, reps: int, specs: Sequence[str], workdir: Path, extra_deps: Sequence[str]
) -> dict[str, Any]:
    """What a real project's gate pays before its checks, and for an unchanged rerun: per
    project, the controller alone (``--parex-plan``), the rerun where every check is
    replayed, and what their time is made of -- with bytecode written and without."""
    out: dict[str, Any] = {"projects": {}, "targets": []}
    for spec in specs:
        found = startup_one(root, reps, spec, workdir, extra_deps)
        out["projects"][spec] = found
        out["targets"] += found.pop("targets")
    return out


IMPORTS = {
    "import_pytest": ("python -c 'import pytest'", "import pytest"),
    "import_xdist": (
        "+ xdist's plugin (loaded by every pytest there)",
        "import pytest, xdist.plugin",
    ),
    "import_rich": ("+ rich's console (the summary)", "import pytest, rich.console"),
    "import_gate": (
        "+ the gate's modules (pytest_parex.gate and its modes)",
        "import pytest, pytest_parex.gate, pytest_parex.modes.local, pytest_parex.modes.plan",
    ),
}


def project_env(p: Project, variant: str) -> dict[str, str]:
    """The project's environment with bytecode written (``pyc``) or not (``nopyc``)."""
    env = p.env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if variant == "nopyc":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def startup_one(
    root: Path, reps: int, spec: str, workdir: Path, extra_deps: Sequence[str]
) -> dict[str, Any]:
    p = prepare_project(spec, workdir, extra_deps)
    gates = Gates(root / "reports")
    tools = project_tools(p)
    _, deselected = project_tests_pass(p, tools)
    tag = re.sub(r"[^A-Za-z0-9.]+", "-", spec)
    config = write(root / f"startup-{tag}-parex.toml", project_gate(p, tools))
    gate_args = (f"--parex-config={config}",)
    series: dict[str, Series] = {}
    for v, label in BYTECODE.items():
        series[f"plan_{v}"] = Series(f"controller alone: pytest --parex --parex-plan [{label}]")
        series[f"plan_nocache_{v}"] = Series(
            f"controller alone, no result cache (--parex-no-cache) [{label}]"
        )
        series[f"rerun_{v}"] = Series(f"unchanged rerun, every check replayed [{label}]")
    floors: dict[str, Series] = {"python": Series("python -c pass")}
    for key, (label, _) in IMPORTS.items():
        floors[key] = Series(label)
    # PYTHON* variables are part of every check's cache key: each variant keeps its passes
    # in a cache of its own (outside the tree: not an input), so the two interleave.
    caches = {v: f"cache_dir={root / f'startup-cache-{tag}-{v}'}" for v in BYTECODE}
    first: dict[str, dict[str, float | None]] = {}
    for v in BYTECODE:  # unmeasured: one gate that runs everything and records its passes
        m, doc = gates.run(
            p.tree,
            *gate_args,
            "-o",
            caches[v],
            what=f"{spec}: startup warm-up",
            cache=True,
            env=project_env(p, v),
            python=p.python,
        )
        # Its checks' first start, from the process's start (one run: indicative).
        fig = gate_figures(m, doc)
        first[v] = {
            "before_gate": rnd(fig["before_gate"]),
            "first_start": rnd(fig["first_start"]),
            "process_to_first_start": rnd(fig["before_gate"] + fig["first_start"]),
        }
    for _ in range(reps):
        for v in BYTECODE:
            env = project_env(p, v)
            plan_argv = [p.python, "-m", "pytest", "--parex", "--parex-plan", *gate_args]
            plan_argv += ["-o", caches[v]]
            m = run(plan_argv, p.tree, env=env)
            series[f"plan_{v}"].add(expect_ok(m, f"{spec}: parex plan"))
            m = run([*plan_argv, "--parex-no-cache"], p.tree, env=env)
            series[f"plan_nocache_{v}"].add(expect_ok(m, f"{spec}: parex plan, no cache"))
            m, doc = gates.run(
                p.tree,
                *gate_args,
                "-o",
                caches[v],
                what=f"{spec}: rerun",
                cache=True,
                env=env,
                python=p.python,
            )
            add_gate(series[f"rerun_{v}"], m, doc)
            if int(gate_figures(m, doc)["cached"]) != len(doc["checks"]):
                raise BenchError(f"{spec}: the unchanged rerun ran checks:\n{m.output[-3000:]}")
    for _ in range(reps):
        env = project_env(p, "pyc")
        floors["python"].add(expect_ok(run([p.python, "-c", "pass"], p.tree, env=env), "python"))
        for key, (_, code) in IMPORTS.items():
            floors[key].add(expect_ok(run([p.python, "-c", code], p.tree, env=env), code))
    assert_nothing_left(p.tree, "startup")
    targets = [
        target(
            f"{spec}: unchanged rerun [bytecode written]",
            series["rerun_pyc"].wall,
            TARGETS["startup_rerun_s"],
            "s",
        ),
        target(
            f"{spec}: controller alone (--parex-plan) [bytecode written]",
            series["plan_pyc"].wall,
            TARGETS["startup_plan_s"],
            "s",
        ),
    ]
    notes = list(p.notes)
    if deselected:
        notes.append(f"deselected (they fail here as released): {', '.join(deselected)}")
    return {
        "project": spec,
        "notes": notes,
        "series": {k: s.to_dict() for k, s in series.items()},
        "floors": {k: s.to_dict() for k, s in floors.items()},
        "first_check": first,
        "targets": targets,
    }


# ------------------------------------------------------------------------------ cache


SCAN = """\
import os, sys, time
start = time.perf_counter()
top, seconds = sys.argv[1], float(sys.argv[2])
total = 0
for base, dirs, files in os.walk(top):
    dirs[:] = [d for d in dirs if not d.startswith(".")]
    for name in files:
        with open(os.path.join(base, name), "rb") as fh:
            total += len(fh.read())
time.sleep(max(0.0, seconds - (time.perf_counter() - start)))
print(total, "bytes")
"""
CACHE_TESTS = """\
import time

import pytest


@pytest.mark.parametrize("i", range(3))
def test_slow(i):
    time.sleep(0.3)
"""
CACHE_CHANGED = "pkg3/mod7.py"
"""The file the one-file-changed rerun edits: an input of ``lint`` and ``tests`` (which read
every file), not of ``data`` (``reads`` = pkg0 only)."""
CACHE_RERUNS = ("lint", "tests")


LARGE_FILES = 50_000
"""The large tree of the key computation target (300 ms warm)."""
DISTRIBUTIONS = 150
"""Distributions in the virtualenv whose installed code is keyed by content."""


def cache_project(proj: Path, files: int) -> None:
    """``files`` files (``benchmarks/keys.py``'s tree) in git, and a gate of three checks."""
    keybench.build_tree(proj, files - 2)
    write(proj / "scan.py", SCAN)
    write(proj / "tests" / "test_quick.py", CACHE_TESTS)
    checks: dict[str, dict[str, Any]] = {
        "data": {
            "agent": "code-reviewer",
            "run": [PY, "scan.py", "pkg0", "1.5"],
            "reads": ["scan.py", "pkg0/**"],
        },
        "lint": {"agent": "refactorer", "run": [PY, "scan.py", ".", "1.5"]},
        "tests": {"pytest": ["-q", "-p", "no:cacheprovider", "tests"]},
    }
    write(proj / "pyproject.toml", '[project]\nname = "bench"\n\n' + gate_pyproject(checks))
    keybench.git_init(proj)


def cache(root: Path, reps: int, files: int = 5000) -> dict[str, Any]:
    """The result cache on a project of ``files`` files: first run, unchanged rerun (local
    agents and -n 2), one file changed; the key computation alone (benchmarks/keys.py)."""
    gates = Gates(root / "reports")
    proj = root / "cache-gate"
    cache_project(proj, files)
    keytrees = {"git": root / "cache-keys" / "git" / "tree", "walk": root / "cache-keys" / "walk"}
    keybench.build_tree(keytrees["git"], files)
    keybench.git_init(keytrees["git"])
    keybench.build_tree(keytrees["walk"], files)
    # The file index re-reads files younger than its racy window: let the trees age.
    time.sleep(keybench.SETTLE_S)
    series = {
        "first": Series("first run (--cache-clear)"),
        "unchanged": Series("unchanged rerun"),
        "unchanged_n2": Series("unchanged rerun, -n 2"),
        "changed": Series(f"one file changed ({CACHE_CHANGED})"),
    }
    floors = {
        "plan_no_cache": Series("controller alone: pytest --parex --parex-plan --parex-no-cache"),
        "plan_keys": Series("controller and keys: pytest --parex --parex-plan (all cached)"),
    }
    problems: list[str] = []
    reran: dict[str, list[str]] = {k: [] for k in series}
    started_workers: list[float] = []
    for rep in range(reps):
        m, doc = gates.run(proj, "--cache-clear", what="cache: first run", cache=True)
        add_gate(series["first"], m, doc)
        for key, extra in (("unchanged", ()), ("unchanged_n2", ("-n", "2"))):
            m, doc = gates.run(proj, *extra, what=f"cache: {key}", cache=True)
            add_gate(series[key], m, doc)
            ran = sorted(c["name"] for c in doc["checks"] if not c.get("cached"))
            reran[key] = ran
            # A worker would say "created: N/N workers" (xdist) or run a check (local).
            workers = len(ran) + (
                1 if re.search(r"^created: \d+/\d+ workers", m.output, re.M) else 0
            )
            started_workers.append(float(workers))
            if ran:
                problems.append(f"rep {rep + 1}: the {key} rerun ran {', '.join(ran)}")
        m = run(parex_cmd("--parex-plan"), proj)
        floors["plan_no_cache"].add(expect_ok(m, "cache: plan without the cache"))
        m = run(parex_cmd("--parex-plan", cache=True), proj)
        floors["plan_keys"].add(expect_ok(m, "cache: plan with the cache"))
        changed = proj / CACHE_CHANGED
        changed.write_text(changed.read_text() + f"CHANGED = {rep}\n")
        m, doc = gates.run(proj, what="cache: one file changed", cache=True)
        add_gate(series["changed"], m, doc)
        ran = sorted(c["name"] for c in doc["checks"] if not c.get("cached"))
        reran["changed"] = ran
        if tuple(ran) != CACHE_RERUNS:
            problems.append(
                f"rep {rep + 1}: changing {CACHE_CHANGED} reran {ran or 'nothing'}, expected "
                f"{list(CACHE_RERUNS)}"
            )
        assert_nothing_left(root, "cache")
    key_reps = max(reps, 5)
    keys = {mode: keybench.bench(tree, key_reps) for mode, tree in keytrees.items()}
    key_ms = {
        f"{mode}_{kind}_ms": rnd(median(timers[kind].steps["total"].walls) * 1000, 2)
        for mode, timers in keys.items()
        for kind in ("cold", "warm")
    }
    warm_ms = max(v for k, v in key_ms.items() if k.endswith("_warm_ms") and v is not None)
    large = root / "cache-keys-large" / "tree"
    keybench.build_tree(large, LARGE_FILES)
    keybench.git_init(large)
    time.sleep(keybench.SETTLE_S)
    large_timers = keybench.bench(large, max(reps, 3))
    large_ms = median(large_timers["warm"].steps["total"].walls) * 1000
    shutil.rmtree(large.parent, ignore_errors=True)
    installed = keybench.installed_bench(
        keybench.distributions_venv(root / "cache-dists", DISTRIBUTIONS), max(reps, 7)
    )
    extra_ms = installed["content_ms"] - installed["names_ms"]
    first = series["first"].wall
    limit = TARGETS["cache_rerun_fraction"] * first + TARGETS["cache_rerun_plus_s"]
    return {
        "files": files,
        "series": {k: s.to_dict() for k, s in series.items()},
        "floors": {k: s.to_dict() for k, s in floors.items()},
        "ratios": {k: rnd(s.wall / first, 3) for k, s in series.items()},
        "reran_last": reran,
        "problems": problems,
        "keys": {
            **key_ms,
            "reps": key_reps,
            "large_warm_ms": rnd(large_ms, 2),
            "large_files": LARGE_FILES,
        },
        "installed": {**installed, "extra_ms": rnd(extra_ms, 2), "distributions": DISTRIBUTIONS},
        "targets": [
            target(
                f"cache: unchanged rerun (25% of the first run {first:.2f}s + 0.25s)",
                series["unchanged"].wall,
                round(limit, 4),
                "s",
            ),
            target(
                "cache: processes and workers an unchanged rerun starts (local, -n 2)",
                max(started_workers, default=NAN),
                TARGETS["cache_rerun_started"],
                "",
            ),
            target(
                f"cache: key computation on {files} files, warm (git and plain tree)",
                warm_ms,
                TARGETS["keys_warm_ms"],
                "ms",
                f"benchmarks/keys.py, median of {key_reps}",
            ),
            target(
                f"cache: key computation on {LARGE_FILES} files, warm (git)",
                large_ms,
                TARGETS["keys_warm_large_ms"],
                "ms",
                "benchmarks/keys.py --files 50000",
            ),
            target(
                f"cache: {DISTRIBUTIONS} distributions keyed by content, over by version (warm)",
                extra_ms,
                TARGETS["installed_content_extra_ms"],
                "ms",
                f"by version {installed['names_ms']} ms, by content {installed['content_ms']} ms",
            ),
        ],
    }


def copy_worktree(src: Path, dest: Path) -> int:
    """The files of ``src``'s working tree (tracked and untracked, not ignored), in a new
    git repository at ``dest`` (the gate's inputs are what git lists, as in the original)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=src,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout.decode()
    count = 0
    for rel in filter(None, listed.split("\0")):
        source = src / rel
        if not source.is_file():  # deleted in the working tree, still in the index
            continue
        target_path = dest / rel
        target_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target_path)
        count += 1
    keybench.git_init(dest)
    return count


def failed_tests(proj: Path) -> list[str]:
    """The ``FAILED``/``ERROR`` lines of pytest's short summary in the gate's check logs."""
    found: list[str] = []
    for log in sorted((proj / ".parex" / "logs").glob("*.log")):
        found += [
            f"{log.name}: {line}"
            for line in log.read_text(errors="replace").splitlines()
            if line.startswith(("FAILED ", "ERROR "))
        ]
    return found


def committed_durations(proj: Path) -> list[str]:
    """The ``durations`` files the project's tests checks name (relative to ``proj``)."""
    checks = read_toml(proj / "pyproject.toml").get("tool", {}).get("parex", {}).get("checks", {})
    return sorted(
        {str(c["durations"]) for c in checks.values() if isinstance(c, dict) and "durations" in c}
    )


def selfgate(root: Path, reps: int, attempts: int = 2) -> dict[str, Any]:
    """This repository's own gate in a fresh copy of its working tree (no pytest cache, as a
    CI's first run): the first run, a second run that runs everything again (balanced on the
    durations the first remembered), and unchanged reruns (every check replayed). Also the
    first run of a copy without the committed durations file (its shards take the files as
    they go).

    A failed check is never replayed, so a first run that fails (a test that flakes under
    load) is run again, up to ``attempts`` times, its passes replayed: the rerun figure is
    about a tree whose every check passed. Every attempt is reported."""
    gates = Gates(root / "reports")
    proj = root / "selfgate"
    files = copy_worktree(REPO, proj)
    first: list[dict[str, Any]] = []
    for attempt in range(attempts):
        m, doc = gates.run(
            proj, what="selfgate: first run", cache=True, code=None, timeout=SELFGATE_TIMEOUT
        )
        status = {c["name"]: ("cached" if c.get("cached") else c["status"]) for c in doc["checks"]}
        first.append(
            {
                "wall": round(m.wall, 4),
                "cpu": round(m.cpu, 4),
                "returncode": m.returncode,
                "status": status,
                "durations": {c["name"]: c["duration"] for c in doc["checks"]},
                "tail": m.output.splitlines()[-40:] if m.returncode else [],
                # Which tests failed, from the checks' logs (kept whole in .parex/logs).
                "failed_tests": failed_tests(proj) if m.returncode else [],
            }
        )
        print(
            f"  selfgate: run {attempt + 1}: exit code {m.returncode} in {m.wall:.1f}s: "
            + ", ".join(f"{k} {v}" for k, v in status.items()),
            *(f"    {line}" for line in first[-1]["failed_tests"]),
            sep="\n",
            file=sys.stderr,
        )
        if m.returncode == 0:
            break
    # Everything again, balanced on what the first run remembered: what a fresh clone's
    # first run is held to.
    m, doc = gates.run(proj, what="selfgate: balanced run", code=None, timeout=SELFGATE_TIMEOUT)
    balanced = {
        "wall": round(m.wall, 4),
        "cpu": round(m.cpu, 4),
        "returncode": m.returncode,
        "durations": {c["name"]: c["duration"] for c in doc["checks"]},
    }
    # A fresh copy without the committed durations: its shards take the files as they go.
    sizes: dict[str, Any] = {}
    given = committed_durations(proj)
    if given:
        bare = root / "selfgate-sizes"
        copy_worktree(REPO, bare)
        for name in given:
            (bare / name).unlink(missing_ok=True)
        m, doc = gates.run(
            bare, what="selfgate: first run, no durations", code=None, timeout=SELFGATE_TIMEOUT
        )
        sizes = {
            "wall": round(m.wall, 4),
            "cpu": round(m.cpu, 4),
            "returncode": m.returncode,
            "removed": given,
            "durations": {c["name"]: c["duration"] for c in doc["checks"]},
        }
        shutil.rmtree(bare, ignore_errors=True)
    series = {"rerun": Series("second run, nothing changed")}
    not_cached: list[str] = []
    # A first run that still fails makes every rerun run its failed checks again (minutes):
    # one such rerun shows it.
    for _ in range(reps if first[-1]["returncode"] == 0 else 1):
        m, doc = gates.run(
            proj, what="selfgate: second run", cache=True, code=None, timeout=SELFGATE_TIMEOUT
        )
        add_gate(series["rerun"], m, doc)
        not_cached = sorted(c["name"] for c in doc["checks"] if not c.get("cached"))
        assert_nothing_left(root, "selfgate")
    if first[-1]["returncode"]:
        note = f"the first run failed {len(first)} times: its failed checks ran again"
    elif len(first) > 1:
        note = f"the first run passed at attempt {len(first)} (see first[].status)"
    else:
        note = ""
    if not_cached:
        note = "; ".join(filter(None, [note, f"ran again: {', '.join(not_cached)}"]))
    fresh_ok = first[0]["returncode"] == 0 and balanced["returncode"] == 0
    return {
        "files": files,
        "first": first,
        "balanced": balanced,
        "sizes": sizes,
        "series": {k: s.to_dict() for k, s in series.items()},
        "not_cached_last": not_cached,
        "targets": [
            target(
                "selfgate: the repository's own gate, second run",
                series["rerun"].wall,
                TARGETS["selfgate_rerun_s"],
                "s",
                note or "every check replayed",
                valid=not not_cached,
            ),
            target(
                "selfgate: fresh clone's first run / a balanced run",
                first[0]["wall"] / balanced["wall"],
                TARGETS["selfgate_fresh_vs_balanced"],
                "x",
                f"{first[0]['wall']:.1f}s vs {balanced['wall']:.1f}s"
                + ("" if fresh_ok else "; a run failed (see first, balanced)"),
                valid=fresh_ok,
            ),
        ],
    }


# ------------------------------------------------------------------ watch mode and the store

WATCH_SAVES = 20
"""Saves timed in the watch section (one round each)."""
WATCH_IDLE_S = 10.0
"""Seconds the watcher is left idle while its CPU time is measured."""
STORE_ENTRIES = 10_000
STORE_FILES = 500
"""Files in each stored key of the lookup benchmark (a mid-sized project's check)."""
QUICK = "import sys; sys.exit(0)"


def proc_cpu(pid: int) -> float:
    """User + system seconds of process ``pid`` (all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WatchGate:
    """``pytest --parex --parex-watch`` in ``proj``, its output read as it comes."""

    def __init__(self, proj: Path, report: Path) -> None:
        argv = parex_cmd("--parex-watch", f"--parex-json={report}", "-q", cache=True)
        self.proc = subprocess.Popen(
            argv,
            cwd=proj,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_round(self, n: int, timeout: float = TIMEOUT) -> None:
        prefix = f"parex watch: round {n} "
        deadline = time.monotonic() + timeout
        while not any(line.startswith(prefix) and " in " in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"watch: no round {n}\n" + "".join(self.lines[-30:]))
            time.sleep(0.005)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def check_start(report: Path, name: str) -> float:
    """``time.time()`` when ``name`` started in the round the JSON report is of."""
    doc = json.loads(report.read_text())
    origin = datetime.datetime.fromisoformat(doc["started_at"]).timestamp()
    check = next(c for c in doc["checks"] if c["name"] == name)
    if check.get("start") is None:
        return NAN
    return origin + float(check["start"])


def watch(root: Path, reps: int, files: int = 2000) -> dict[str, Any]:
    """``--parex-watch`` on a project of ``files`` files: a save -> the first affected check
    started (from the round's JSON report), and the watcher's CPU while nothing changes."""
    proj = root / "watch"
    keybench.build_tree(proj, files)
    checks = {
        "near": {"run": [PY, "-c", QUICK], "reads": ["pkg0/**"]},
        "far": {"run": [PY, "-c", QUICK], "reads": ["pkg1/**"], "agent": "debugger"},
        "all": {"run": [PY, "-c", QUICK], "agent": "refactorer"},
    }
    write(proj / "pyproject.toml", '[project]\nname = "bench"\n\n' + gate_pyproject(checks))
    keybench.git_init(proj)
    time.sleep(keybench.SETTLE_S)
    report = root / "watch-report.json"
    latencies: list[float] = []
    idle: list[float] = []
    problems: list[str] = []
    for rep in range(reps):
        shutil.rmtree(proj / ".pytest_cache", ignore_errors=True)
        gate = WatchGate(proj, report)
        try:
            gate.wait_round(1)
            time.sleep(1.0)  # let the first round's writes settle
            before, start = proc_cpu(gate.proc.pid), time.perf_counter()
            time.sleep(WATCH_IDLE_S)
            spent = proc_cpu(gate.proc.pid) - before
            idle.append(100.0 * spent / (time.perf_counter() - start))
            target_file = proj / "pkg0" / "mod3.py"
            for i in range(WATCH_SAVES):
                saved = time.time()
                target_file.write_text(f"VALUE = {rep}_{i}\n")
                gate.wait_round(i + 2)
                started = check_start(report, "near")
                latencies.append(started - saved)
                ran = sorted(
                    c["name"] for c in json.loads(report.read_text())["checks"] if not c["cached"]
                )
                if ran != ["all", "near"]:
                    problems.append(f"rep {rep + 1}, save {i + 1}: ran {ran}")
        finally:
            code = gate.stop()
        if code != 0:
            problems.append(f"rep {rep + 1}: exit code {code} after Ctrl-C")
        assert_nothing_left(root, "watch")
    return {
        "files": files,
        "saves": len(latencies),
        "latency_ms": {
            "median": rnd(median(latencies) * 1000, 1),
            "max": rnd(max(latencies, default=NAN) * 1000, 1),
            "all": [round(x * 1000, 1) for x in latencies],
        },
        "idle_cpu_percent": [round(x, 3) for x in idle],
        "problems": problems,
        "targets": [
            target(
                f"watch: save -> first affected check started ({files} files, median)",
                median(latencies) * 1000,
                TARGETS["watch_start_ms"],
                "ms",
                "the round's JSON report; a batch ends 30 ms after the last write",
                valid=not problems,
            ),
            target(
                f"watch: the watcher idle ({WATCH_IDLE_S:.0f} s, % of a core)",
                max(idle, default=NAN),
                TARGETS["watch_idle_percent"],
                "%",
            ),
        ],
    }


def _store_parts(i: int, files: int) -> Any:
    from pytest_parex.cache.key import KeyParts

    # Digests as random as real ones (blake2b): they are what an entry cannot compress.
    seed = hashlib.blake2b(str(i).encode(), digest_size=20).digest()
    return KeyParts(
        definition={"kind": "command", "argv": ["ruff", "check", "."], "cwd": ".", "i": i % 100},
        files={
            f"pkg{j // 80}/mod{j % 80}.py": hashlib.blake2b(
                seed + j.to_bytes(4, "little"), digest_size=20
            ).hexdigest()
            for j in range(files)
        },
        tools={"ruff": "/venv/bin/ruff 0123456789abcdef"},
        versions={"ruff": "0.8.1", "pytest": "8.3.0"},
        python="cpython 3.11.7 /venv/bin/python",
        env={"PATH": "sha256:0123", "CI": None},
    )


def ab_project(proj: Path, files: int) -> None:
    """:func:`cache_project` with a branch ``b`` where one module differs."""
    cache_project(proj, files)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, "checkout", "-qb", "b"], cwd=proj, check=True, timeout=120)
    changed = proj / CACHE_CHANGED
    changed.write_text(changed.read_text() + "ON_B = True\n")
    subprocess.run([*git, "commit", "-qam", "b"], cwd=proj, check=True, timeout=120)
    subprocess.run([*git, "checkout", "-q", "-"], cwd=proj, check=True, timeout=120)


def store(root: Path, reps: int, files: int = 5000) -> dict[str, Any]:
    """The store: branch A -> B -> A (the third run replays A's passes), and a lookup in a
    store of :data:`STORE_ENTRIES` entries."""
    from pytest_parex.cache.store import Store

    gates = Gates(root / "reports")
    proj = root / "store-ab"
    ab_project(proj, files)
    time.sleep(keybench.SETTLE_S)
    series = {
        "a": Series("branch A, first run (empty store)"),
        "b": Series("branch B"),
        "a_again": Series("branch A again"),
    }
    problems: list[str] = []
    git = ["git", "checkout", "-q"]
    for rep in range(reps):
        shutil.rmtree(proj / ".pytest_cache", ignore_errors=True)
        for key, branch in (("a", None), ("b", "b"), ("a_again", "-")):
            if branch is not None:
                subprocess.run([*git, branch], cwd=proj, check=True, timeout=120)
            m, doc = gates.run(proj, what=f"store: {series[key].label}", cache=True)
            add_gate(series[key], m, doc)
            ran = sorted(c["name"] for c in doc["checks"] if not c.get("cached"))
            expected = {"a": ["data", "lint", "tests"], "b": list(CACHE_RERUNS), "a_again": []}
            if ran != expected[key]:
                problems.append(f"rep {rep + 1}, {series[key].label}: ran {ran}")
        assert_nothing_left(root, "store")
    # A lookup among STORE_ENTRIES entries: 100 checks, 100 states each.
    folder = root / "store-lookup"
    big = Store(folder, max_bytes=10**12, max_age=10**9)
    build_start = time.perf_counter()
    keys = []
    for i in range(STORE_ENTRIES):
        parts = _store_parts(i, STORE_FILES)
        name = f"check{i % 100}"
        big.record_pass(name, parts, {"status": "passed", "duration": 1.0}, b"ok\n" * 200)
        if i % 50 == 0:
            keys.append((name, parts))
    build_s = time.perf_counter() - build_start
    entry_sizes = [size for _, size, _ in big.entries()]
    hits, misses = [], []
    for name, parts in keys:
        start = time.perf_counter()
        found = big.lookup(name, parts)
        hits.append(time.perf_counter() - start)
        if found.entry is None:
            problems.append(f"lookup: {name} missed a stored key")
        other = _store_parts(STORE_ENTRIES + len(misses), STORE_FILES)
        start = time.perf_counter()
        missed = big.lookup(name, other)
        misses.append(time.perf_counter() - start)
        if missed.entry is not None:
            problems.append(f"lookup: {name} hit a key never stored")
    start = time.perf_counter()
    big.evict()
    evict_s = time.perf_counter() - start
    first = series["a"].wall
    limit = TARGETS["store_ab_fraction"] * first + TARGETS["store_ab_plus_s"]
    return {
        "files": files,
        "series": {k: s.to_dict() for k, s in series.items()},
        "ratios": {k: rnd(s.wall / first, 3) for k, s in series.items()},
        "problems": problems,
        "lookup": {
            "entries": len(entry_sizes),
            "files_per_key": STORE_FILES,
            "entry_bytes_median": int(median([float(s) for s in entry_sizes])),
            "store_bytes": sum(entry_sizes),
            "build_s": round(build_s, 2),
            "hit_ms": {"median": rnd(median(hits) * 1000, 3), "max": rnd(max(hits) * 1000, 3)},
            "miss_ms": {
                "median": rnd(median(misses) * 1000, 3),
                "max": rnd(max(misses) * 1000, 3),
            },
            "evict_scan_ms": rnd(evict_s * 1000, 1),
            "n": len(hits),
        },
        "targets": [
            target(
                f"store: branch A -> B -> A, the third run (25% of the first {first:.2f}s + 0.25s)",
                series["a_again"].wall,
                round(limit, 4),
                "s",
                valid=not problems,
            ),
            target(
                f"store: a lookup among {len(entry_sizes):,} entries (hit and miss, median)",
                max(median(hits), median(misses)) * 1000,
                TARGETS["store_lookup_ms"],
                "ms",
                f"{STORE_FILES} files a key; a miss also reads the head and the last pass",
            ),
        ],
    }


# ------------------------------------------------------------------ scheduling, scale, fail-fast


REC = """\
import json, os, sys, time
name, seconds = sys.argv[1], float(sys.argv[2])
start = time.time()
time.sleep(seconds)
os.makedirs("times", exist_ok=True)
with open(os.path.join("times", name + ".json"), "w") as fh:
    json.dump({"start": start, "end": time.time()}, fh)
"""

# Submission (name) order is bad: the longest check comes last among equals, so a first run
# (no durations remembered: every check "1 s") starts it late; a second run starts it first.
DAG: dict[str, dict[str, Any]] = {
    "a_lint": {"agent": "builder", "seconds": 1.0},
    "b_compile": {"agent": "builder", "seconds": 1.0},
    "c1_unit": {"agent": "tester", "seconds": 0.5},
    "c2_unit": {"agent": "tester", "seconds": 0.5},
    "c3_unit": {"agent": "tester", "seconds": 0.5},
    "c4_unit": {"agent": "tester", "seconds": 0.5},
    "x_long": {"agent": "tester", "seconds": 3.0},
    "y_e2e": {"agent": "tester", "seconds": 1.0, "needs": ["b_compile"]},
}
DAG_AGENTS = {"builder": 1, "tester": 2}


def dag_bounds() -> dict[str, float]:
    durations = {n: float(c["seconds"]) for n, c in DAG.items()}
    memo: dict[str, float] = {}

    def chain(name: str) -> float:
        # Longest path ending at ``name``.
        if name not in memo:
            needs = DAG[name].get("needs", [])
            memo[name] = durations[name] + max((chain(d) for d in needs), default=0.0)
        return memo[name]

    critical = max(chain(n) for n in DAG)
    total = sum(durations.values())
    workers = sum(DAG_AGENTS.values())
    per_agent = max(
        sum(durations[n] for n, c in DAG.items() if c["agent"] == agent) / count
        for agent, count in DAG_AGENTS.items()
    )
    return {
        "critical_path": critical,
        "total_work": total,
        "workers": workers,
        "lower_bound": max(critical, total / workers),
        "agent_lower_bound": max(critical, total / workers, per_agent),
    }


def scheduling(root: Path, reps: int) -> dict[str, Any]:
    """A DAG with known durations: measured makespan vs the lower bound and submission order."""
    bounds = dag_bounds()
    first, second = Series("first run (empty cache)"), Series("second run (remembered)")
    plans: dict[str, list[float]] = {"plan_first": [], "plan_second": []}
    for rep in range(reps):
        proj = root / f"dag-{rep}"
        write(proj / "rec.py", REC)
        checks = {}
        for name, c in DAG.items():
            keys: dict[str, Any] = {
                "agent": c["agent"],
                "run": [PY, "rec.py", name, str(c["seconds"])],
            }
            if "needs" in c:
                keys["needs"] = c["needs"]
            checks[name] = keys
        write(proj / "pyproject.toml", gate_pyproject(checks, agents=DAG_AGENTS))
        for label, series in (("plan_first", first), ("plan_second", second)):
            plan = expect_ok(run(parex_cmd("--parex-plan"), proj), "plan")
            m_plan = re.search(r"predicted: wall ((?:\d+m)?[\d.]+s)", plan.output)
            if m_plan:
                plans[label].append(parse_seconds(m_plan.group(1)))
            shutil.rmtree(proj / "times", ignore_errors=True)
            m = expect_ok(run(parex_cmd(), proj), "dag run")
            times = [json.loads(p.read_text()) for p in sorted((proj / "times").glob("*.json"))]
            if len(times) != len(DAG):
                raise BenchError(f"dag run: {len(times)} of {len(DAG)} checks recorded")
            span = max(t["end"] for t in times) - min(t["start"] for t in times)
            series.add(m, makespan=span)
        assert_nothing_left(root, "scheduling")
    lb = bounds["lower_bound"]
    m1 = median(first.extra["makespan"])
    m2 = median(second.extra["makespan"])
    return {
        "dag": DAG,
        "agents": DAG_AGENTS,
        "bounds": bounds,
        "series": {"first": first.to_dict(), "second": second.to_dict()},
        "plan_first": median(plans["plan_first"]),
        "plan_second": median(plans["plan_second"]),
        "ratios": {
            "first_vs_lower_bound": round(m1 / lb, 3),
            "second_vs_lower_bound": round(m2 / lb, 3),
            "first_vs_agent_lower_bound": round(m1 / bounds["agent_lower_bound"], 3),
            "second_vs_agent_lower_bound": round(m2 / bounds["agent_lower_bound"], 3),
            "second_vs_first": round(m2 / m1, 3),
        },
    }


def scale(root: Path, reps: int, count: int = 200) -> dict[str, Any]:
    """``count`` checks of ``true`` on 5 agents: the gate's cost per check."""
    gates = Gates(root / "reports")
    projects = {}
    for n in (1, 5, count):
        proj = root / f"scale-{n}"
        checks = {f"c{i:04d}": {"agent": AGENTS[i % 5], "run": "true"} for i in range(n)}
        write(proj / "pyproject.toml", gate_pyproject(checks))
        projects[n] = proj
    series = {n: Series(f"{n} checks") for n in projects}
    for n, proj in projects.items():
        # Unmeasured: the gate remembers durations; measure what a developer sees every day.
        gates.run(proj, "-q", what=f"scale {n} warm-up")
    for _ in range(reps):
        for n, proj in projects.items():
            m, doc = gates.run(proj, "-q", what=f"scale {n}")
            series[n].add(m, **gate_figures(m, doc))
        assert_nothing_left(root, "scale")
    w1, w5, wn = (series[n].wall for n in (1, 5, count))
    per_check = (wn - w5) / (count - 5)
    return {
        "count": count,
        "series": {str(n): s.to_dict() for n, s in series.items()},
        "per_check_ms": round(per_check * 1000, 2),
        "per_check_vs_1_ms": round((wn - w1) / (count - 1) * 1000, 2),
        "targets": [
            target(
                f"scale: per-check cost ({count} checks of true)",
                per_check * 1000,
                TARGETS["scale_ms"],
                "ms",
            )
        ],
    }


SLEEPER = """\
import os, subprocess, sys, time
token, name = sys.argv[1], sys.argv[2]
# A grandchild too: the whole tree must go.
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", token])
open("started-" + name, "w").close()
time.sleep(60)
"""
FAILER = """\
import os, sys, time
deadline = time.time() + 60
while not all(os.path.exists("started-" + n) for n in sys.argv[1:]) and time.time() < deadline:
    time.sleep(0.01)
time.sleep(0.3)
with open("failed-at", "w") as fh:
    fh.write(repr(time.time()))
sys.exit(1)
"""


class Watcher:
    """Polls /proc for processes carrying ``token``; records when the last one was seen."""

    def __init__(self, token: str, interval: float = 0.005) -> None:
        self.token = token.encode()
        self.interval = interval
        self.last_seen = 0.0
        self.seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _alive(self) -> int:
        count = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    if self.token not in fh.read():
                        continue
                with open(f"/proc/{entry.name}/stat") as fh:
                    if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
            except OSError:
                continue
            count += 1
        return count

    def _loop(self) -> None:
        while not self._stop.is_set():
            alive = self._alive()
            if alive:
                self.seen = max(self.seen, alive)
                self.last_seen = time.time()
            time.sleep(self.interval)

    @contextlib.contextmanager
    def watching(self) -> Iterator[Watcher]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def failfast(root: Path, reps: int) -> dict[str, Any]:
    """Fail-fast: from the failing check's end to the death of the last cancelled tree."""
    latencies: list[float] = []
    series = Series("fail-fast run")
    for rep in range(reps):
        proj = root / f"failfast-{rep}"
        token = f"parex-bench-{os.getpid()}-{rep}-{time.time_ns()}"
        write(proj / "sleeper.py", SLEEPER)
        write(proj / "failer.py", FAILER)
        checks = {
            "fails": {"agent": "code-reviewer", "run": [PY, "failer.py", "s1", "s2"]},
            "s1": {"agent": "test-runner", "run": [PY, "sleeper.py", token, "s1"]},
            "s2": {"agent": "debugger", "run": [PY, "sleeper.py", token, "s2"]},
        }
        write(proj / "pyproject.toml", gate_pyproject(checks, **{"on-failure": "fail-fast"}))
        with Watcher(token).watching() as watcher:
            m = expect_ok(run(parex_cmd("-p", "no:cacheprovider"), proj), "failfast", code=1)
        if watcher.seen < 4:
            raise BenchError(f"failfast: saw {watcher.seen} marked processes, expected 4")
        failed_at = float((proj / "failed-at").read_text())
        latencies.append(watcher.last_seen - failed_at)
        series.add(m, latency=watcher.last_seen - failed_at)
        assert_nothing_left(root, "failfast")
    return {
        "series": series.to_dict(),
        "latency_median_s": round(median(latencies), 4),
        "latency_max_s": round(max(latencies), 4),
        "targets": [
            target(
                "fail-fast: failing check's end -> last cancelled tree gone",
                median(latencies),
                TARGETS["failfast_s"],
                "s",
                f"worst {max(latencies):.3f}s",
            )
        ],
    }


# ------------------------------------------------------------------------------ report


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in load],
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def load_warning(load1: float) -> str:
    if load1 <= 1.0:
        return ""
    return (
        f"WARNING: the 1-minute load average is {load1:.2f} (> 1): other work shares the cores,"
        " these figures are not the machine's"
    )


def fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}s"


def ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 1000:.0f} ms"


def num(value: Any) -> float:
    return NAN if value is None else float(value)


class Table:
    """The text table: aligned rows of figures, ratios beside them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def title(self, text: str) -> None:
        self.lines.append(text)

    def line(self, text: str) -> None:
        self.lines.append("  " + text)

    def row(self, label: str, wall: Any, cpu: Any = None, note: str = "") -> None:
        if wall is not None and math.isnan(num(wall)):
            return  # not measured here (a replayed check has no start)
        wall_text = f"{num(wall):7.2f}s" if wall is not None else " " * 8
        cpu_text = f"{num(cpu):7.2f}s" if cpu is not None else " " * 8
        self.lines.append(f"  {label:<66} {wall_text} {cpu_text}  {note}".rstrip())

    def head(self, title: str) -> None:
        self.lines.append(f"{title:<68} {'wall':>8} {'cpu':>8}  ratio")

    def series(self, r: Mapping[str, Any], ratio_to: str = "") -> None:
        for key, s in r["series"].items():
            ratio = r.get("ratios", {}).get(key)
            note = f"{ratio:.2f}x {ratio_to}".rstrip() if ratio is not None and ratio_to else ""
            self.row(s["label"], s["wall_median"], s["cpu_median"], note)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def where_the_time_goes(
    t: Table, s: Mapping[str, Any], floors: Mapping[str, Any] | None = None
) -> None:
    """A gate's wall cut at the moments its JSON report gives (medians)."""
    pooled = s.get("start_pooled", {})
    parts = [
        ("process start -> gate start (interpreter, pytest, plugins, config)", "before_gate"),
        ("gate start -> first check start", "first_start_median"),
        ("gate start -> last check start", "last_start_median"),
        ("last check start -> last check end", None),
        ("last check end -> gate end", "after_checks_median"),
        ("gate end -> process exit (and the fork/exec before its start)", "after_gate_median"),
    ]
    for label, key in parts:
        if key == "before_gate":
            value = num(s.get("before_gate_median"))
        elif key is None:
            value = num(s.get("last_end_median")) - num(s.get("last_start_median"))
        else:
            value = num(s.get(key))
        t.row("  " + label, value)
    if pooled and pooled["n"]:
        t.line(
            f"  every check's start after the gate's start: median {ms(pooled['median'])}, "
            f"worst {ms(pooled['max'])} ({pooled['n']} starts)"
        )
    t.line(
        f"  process wall {fmt(s.get('process_wall_median'))} vs gate wall "
        f"{fmt(s.get('gate_wall_median'))} (command wall {fmt(s.get('wall_median'))})"
    )
    floors = floors or {}
    for f in floors.values():
        t.row("  floor: " + f["label"], f["wall_median"], f["cpu_median"])
    if "python" in floors and "import_pytest" in floors:
        before = num(s.get("before_gate_median"))
        python = num(floors["python"]["wall_median"])
        imported = num(floors["import_pytest"]["wall_median"])
        t.line(
            f"  of the {fmt(before)} before the gate: the interpreter ~{fmt(python)}, import "
            f"pytest ~{fmt(imported - python)}, the rest (plugins, configuration, the gate's "
            f"setup) ~{fmt(before - imported)}"
        )


def table(results: Mapping[str, Any]) -> str:
    t = Table()
    if "overhead" in results:
        r = results["overhead"]
        t.head("overhead: 5 x sleep 2 on 5 agents")
        t.series(r, "xargs")
        for v, label in BYTECODE.items():
            t.title(f"  where the time goes, pytest --parex [{label}]:")
            floors = {
                k: f
                for k, f in r["floors"].items()
                if k in ("python", "import_pytest") or k.endswith("_" + v)
            }
            where_the_time_goes(t, r["series"][f"parex_{v}"], floors)
            n5 = r["series"][f"parex_n5_{v}"].get("start_pooled", {})
            if n5:
                t.line(
                    f"  for the record, -n 5 (xdist workers): checks start after the gate's "
                    f"start: median {ms(n5['median'])}, worst {ms(n5['max'])}"
                )
            fl = r["floor"][v]
            t.line(
                f"  floor of a pytest-session gate: one check of true costs "
                f"{fmt(fl['fixed_cost'])} beside its check -> 5 x sleep 2 >= "
                f"{fmt(fl['floor_wall'])} = {num(fl['floor_vs_xargs']):.2f}x xargs"
            )
        t.lines.extend(f"  note: {n}" for n in r["notes"])
    if "cpu" in results:
        r = results["cpu"]
        t.head(f"cpu-bound: 5 x ~2 s of Python ({r['iterations']} iterations)")
        t.series(r, "xargs")
        t.line(f"header: {r['cpu_limit']}")
        sp = r["speedup"]
        t.line(
            f"speedup reported by the summary {num(sp['reported']):.2f}x (sequential "
            f"{fmt(sp['reported_sequential'])} = sum of durations measured side by side, "
            f"gate wall {fmt(sp['gate_wall'])}, process wall {fmt(sp['process_wall'])})"
        )
        t.line(
            f"speedup measured (-n 0 wall / parex wall) {num(sp['measured']):.2f}x; checks only "
            f"{num(sp['measured_checks_only']):.2f}x; cpu / gate wall "
            f"{num(sp['cpu_based']):.2f}x; reported overstates by "
            f"{num(sp['overstated_by']):.2f}x"
        )
        t.title("  where the time goes, pytest --parex:")
        where_the_time_goes(t, r["series"]["parex"])
    if "project" in results:
        for r in results["project"]["projects"].values():
            t.head(f"project: {r['project']} from PyPI (ruff, ruff format, mypy, tests)")
            t.series(r, "best shell")
            split = r["series"][r["best_split"]]
            t.line(f"parex / {split['label'].removeprefix('shell: ')}: {num(r['vs_split']):.2f}x")
            t.title("  each tool alone (one unmeasured warm-up run each):")
            for name, wall in r["alone"].items():
                t.row(f"  {name}", wall)
            t.title("  where the time goes, pytest --parex:")
            par = r["series"]["parex"]
            where_the_time_goes(t, par)
            for key, value in par.items():
                if key.startswith("duration:"):
                    t.row(f"  check {key.split(':', 1)[1].removesuffix('_median')}", value)
            t.lines.extend(f"  note: {n}" for n in r["notes"])
    if "startup" in results:
        for r in results["startup"]["projects"].values():
            t.head(f"startup: {r['project']} (its gate: ruff, ruff format, mypy, 2 shards)")
            t.series(r)
            for v, label in BYTECODE.items():
                t.title(f"  where the time goes, unchanged rerun [{label}]:")
                where_the_time_goes(t, r["series"][f"rerun_{v}"])
                plan = num(r["series"][f"plan_{v}"]["wall_median"])
                nocache = num(r["series"][f"plan_nocache_{v}"]["wall_median"])
                t.line(f"  the result cache's keys and decisions: ~{fmt(plan - nocache)}")
            for v, label in BYTECODE.items():
                fc = r["first_check"][v]
                t.line(
                    f"the gate's first run [{label}]: its first check started "
                    f"{fmt(fc['process_to_first_start'])} after the process "
                    f"({fmt(fc['before_gate'])} to the gate's start, "
                    f"{fmt(fc['first_start'])} more)"
                )
            f = r["floors"]
            python = num(f["python"]["wall_median"])
            imported = num(f["import_pytest"]["wall_median"])
            t.title("  imports [bytecode written] (each after the interpreter's start):")
            t.row("  python -c pass", python)
            t.row("  import pytest", imported - python)
            for key in ("import_xdist", "import_rich", "import_gate"):
                t.row("  " + f[key]["label"], num(f[key]["wall_median"]) - imported)
            t.lines.extend(f"  note: {n}" for n in r["notes"])
    if "cache" in results:
        r = results["cache"]
        t.head(f"cache: {r['files']} files, checks data (reads), lint (no reads), tests")
        t.series(r, "of the first")
        for s in r["series"].values():
            cached = s.get("cached_median")
            if cached is not None:
                t.line(f"{s['label']}: {cached:.0f} cached, {s.get('ran_median', 0):.0f} ran")
        t.title(
            "  where the time goes, unchanged rerun (keys are computed before the gate starts):"
        )
        where_the_time_goes(t, r["series"]["unchanged"], r["floors"])
        k = r["keys"]
        t.line(
            f"key computation, {r['files']} files (benchmarks/keys.py, median of {k['reps']}): "
            f"git warm {k['git_warm_ms']} ms, cold {k['git_cold_ms']} ms; plain tree warm "
            f"{k['walk_warm_ms']} ms, cold {k['walk_cold_ms']} ms"
        )
        t.line(f"key computation, {k['large_files']} files, git warm: {k['large_warm_ms']} ms")
        i = r["installed"]
        t.line(
            f"installed code, {i['distributions']} distributions, warm: by name and version "
            f"{i['names_ms']} ms, by content {i['content_ms']} ms (+{i['extra_ms']} ms)"
        )
        t.lines.extend(f"  PROBLEM: {p}" for p in r["problems"])
    if "watch" in results:
        r = results["watch"]
        t.head(f"watch: --parex-watch on {r['files']} files, {r['saves']} saves")
        lat = r["latency_ms"]
        t.line(
            f"save -> first affected check started: median {lat['median']} ms, max {lat['max']} ms"
        )
        t.line(f"watcher idle: {', '.join(f'{x:.2f}%' for x in r['idle_cpu_percent'])} of a core")
        t.lines.extend(f"  PROBLEM: {p}" for p in r["problems"])
    if "store" in results:
        r = results["store"]
        t.head(f"store: branch A -> B -> A on {r['files']} files (data, lint, tests)")
        t.series(r, "of the first")
        lk = r["lookup"]
        t.line(
            f"lookup among {lk['entries']:,} entries ({lk['files_per_key']} files a key, "
            f"{lk['entry_bytes_median']:,} bytes an entry, {lk['store_bytes'] / 2**20:.0f} MiB): "
            f"hit median {lk['hit_ms']['median']} ms (max {lk['hit_ms']['max']}), miss median "
            f"{lk['miss_ms']['median']} ms (max {lk['miss_ms']['max']}); eviction scan "
            f"{lk['evict_scan_ms']} ms"
        )
        t.lines.extend(f"  PROBLEM: {p}" for p in r["problems"])
    if "selfgate" in results:
        r = results["selfgate"]
        t.head(f"selfgate: this repository's own gate ({r['files']} files, a copy)")
        for i, first in enumerate(r["first"]):
            t.row(
                "fresh clone, first run" if i == 0 else f"first run, attempt {i + 1}",
                first["wall"],
                first["cpu"],
                f"exit code {first['returncode']}",
            )
        runs = [("balanced", "everything again, balanced on remembered durations")]
        runs.append(("sizes", "fresh clone without its committed durations (as they go)"))
        for key, label in runs:
            found = r.get(key) or {}
            if found:
                t.row(label, found["wall"], found["cpu"], f"exit code {found['returncode']}")
                shards = {k: v for k, v in found["durations"].items() if "[" in k}
                t.line("  shards: " + ", ".join(f"{k} {fmt(v)}" for k, v in sorted(shards.items())))
        t.series(r)
        if r["not_cached_last"]:
            t.line(f"ran again in the last rerun: {', '.join(r['not_cached_last'])}")
    if "scheduling" in results:
        r = results["scheduling"]
        b = r["bounds"]
        t.title(
            f"scheduling: DAG of {len(r['dag'])} checks on {b['workers']} workers "
            f"(critical path {fmt(b['critical_path'])}, work {fmt(b['total_work'])}, "
            f"lower bound {fmt(b['lower_bound'])}; with agent instances "
            f"{fmt(b['agent_lower_bound'])})"
        )
        for key, s in r["series"].items():
            t.row(
                s["label"] + " makespan",
                s["makespan_median"],
                None,
                f"plan predicted {fmt(r['plan_' + key])}, command wall {fmt(s['wall_median'])}",
            )
        q = r["ratios"]
        t.line(
            f"makespan / lower bound: first {q['first_vs_lower_bound']:.2f}x, "
            f"second {q['second_vs_lower_bound']:.2f}x (agent-aware: "
            f"{q['first_vs_agent_lower_bound']:.2f}x, {q['second_vs_agent_lower_bound']:.2f}x);"
            f" second / first {q['second_vs_first']:.2f}x"
        )
    if "scale" in results:
        r = results["scale"]
        t.title(f"scale: {r['count']} checks of true on 5 agents")
        t.series(r)
        t.line(
            f"per check: {r['per_check_ms']:.1f} ms over the 5-check run "
            f"({r['per_check_vs_1_ms']:.1f} ms over the 1-check run)"
        )
    if "failfast" in results:
        r = results["failfast"]
        t.title("fail-fast: failing check's end -> last cancelled process tree gone")
        t.line(
            f"latency median {r['latency_median_s'] * 1000:.0f} ms, max "
            f"{r['latency_max_s'] * 1000:.0f} ms; command wall "
            f"{fmt(r['series']['wall_median'])}"
        )
    if "precommit" in results:
        r = results["precommit"]
        t.head(f"pre-commit: {r['hooks']} hooks on {r['project']} ({r['checks']} checks), warm")
        t.series(r, "pre-commit")
        t.line(
            f"unchanged rerun: {fmt(r['rerun_wall'])}, {r['rerun_started']} hooks run "
            "(the rest replayed)"
        )
        t.line(
            f"floor of any schedule here: max(hooks' cpu / cores, critical path "
            f"{fmt(r['critical_path'])}) + the gate's start and exit = {fmt(r['floor'])} "
            f"= {num(r['floor_vs_pre_commit']):.2f}x pre-commit"
        )
    targets = [tg for section in SECTIONS for tg in results.get(section, {}).get("targets", [])]
    if targets:
        t.title(f"{'targets':<78} {'figure':>9}    {'target':<9}")
        for tg in targets:
            unit = tg["unit"]
            digits = 2 if unit else 0  # a count
            figure = "-" if tg["figure"] is None else f"{tg['figure']:.{digits}f}{unit}"
            limit = f"{tg['limit']:.{digits}f}{unit}"
            t.lines.append(
                f"  {tg['name']:<76} {figure:>9} <= {limit:<9} "
                f"{'holds' if tg['holds'] else 'MISSED'}"
                + (f"  ({tg['note']})" if tg["note"] else "")
            )
    return t.text()


# ------------------------------------------------------------------------------ pre-commit

PRECOMMIT_PROJECT = "attrs==26.1.0"
PRECOMMIT_TOOLS = (
    # attrs' own pins (its .pre-commit-config.yaml), so that its tree passes every hook
    "ruff==0.15.6",
    "codespell==2.4.2",
    "interrogate==1.7.0",
    "pre-commit-hooks==6.0.0",
    "hypothesis",  # its conftest.py imports it: the gate session imports conftest files
)
PRECOMMIT_CONFIG = """\
# attrs 26.1.0's hooks (and two of pre-commit-hooks more) as repo: local, so that pre-commit and
# prek run them here without cloning anything; entries, filters and args are the hooks'.
repos:
- repo: local
  hooks:
  - {id: ruff-check, name: ruff check, entry: ruff check --force-exclude, language: system,
     types_or: [python, pyi, jupyter], require_serial: true,
     args: [--fix, --exit-non-zero-on-fix]}
  - {id: ruff-format, name: ruff format, entry: ruff format --force-exclude, language: system,
     types_or: [python, pyi, jupyter], require_serial: true}
  - {id: interrogate, name: interrogate, entry: interrogate, language: system,
     types: [python], require_serial: true, args: [tests]}
  - {id: codespell, name: codespell, entry: codespell, language: system, types: [text],
     args: [--exclude-file=tests/test_mypy.yml, --skip=*.svg]}
  - {id: trailing-whitespace, name: trailing-whitespace, entry: trailing-whitespace-fixer,
     language: system, types: [text]}
  - {id: end-of-file-fixer, name: end-of-file-fixer, entry: end-of-file-fixer,
     language: system, types: [text], exclude: docs/_static}
  - {id: check-toml, name: check-toml, entry: check-toml, language: system, types: [toml]}
  - {id: check-yaml, name: check-yaml, entry: check-yaml, language: system, types: [yaml]}
  - {id: debug-statements, name: debug-statements, entry: debug-statement-hook,
     language: system, types: [python]}
  - {id: blanket-noqa, name: blanket-noqa, entry: '(?i)# noqa(?!: )', language: pygrep,
     types: [python]}
"""


def precommit_project(workdir: Path) -> tuple[Path, Path]:
    """attrs' sdist in a git work tree with the hooks' config, and a venv with the tools,
    this checkout, pre-commit and prek (made once per workdir)."""
    base = workdir / "precommit-attrs"
    tree, venv = base / "tree", base / "venv"
    if (base / "ready").is_file():
        return tree, venv
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    print(f"  precommit: downloading {PRECOMMIT_PROJECT} (PyPI)", file=sys.stderr)
    pip(
        PY,
        "download",
        "-q",
        "--no-binary",
        ":all:",
        "--no-deps",
        "-d",
        str(base / "dl"),
        PRECOMMIT_PROJECT,
        cwd=base,
        what=f"pip download {PRECOMMIT_PROJECT}",
    )
    unpacked = unpack(sorted((base / "dl").iterdir())[0], base / "src")
    shutil.move(str(unpacked), tree)
    (tree / ".pre-commit-config.yaml").write_text(PRECOMMIT_CONFIG)
    expect_ok(run([PY, "-m", "venv", str(venv)], base, timeout=600), "python -m venv")
    python = str(venv / "bin" / "python")
    pip(
        python,
        "install",
        "-q",
        "-e",
        f"{REPO}[pre-commit]",
        "pre-commit",
        "prek",
        *PRECOMMIT_TOOLS,
        cwd=base,
        what="installing the hooks' tools",
    )
    for argv in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-qm", "attrs"],
    ):
        expect_ok(run(argv, tree, timeout=120), " ".join(argv))
    (base / "ready").write_text("")
    return tree, venv


def precommit(root: Path, reps: int, workdir: Path) -> dict[str, Any]:
    """The same 10 hooks on attrs' tree: ``pytest --parex`` (pre-commit = true) vs
    ``pre-commit run --all-files`` vs ``prek run --all-files``, warm (one unmeasured run of
    each first: tools' caches, pre-commit's store, the gate's remembered durations), bytecode
    cached as on a developer's machine; then an unchanged rerun of the gate, which must
    replay every hook. ``--noconftest`` beside it: what importing attrs' conftest.py
    (hypothesis) costs the gate session (issue 20 is about that start-up)."""
    tree, venv = precommit_project(workdir)
    bindir = str(venv / "bin")
    env = clean_env(
        {"PRE_COMMIT_HOME": str(root / "pre-commit-home"), "PREK_HOME": str(root / "prek-home")},
        bindir=bindir,
    )
    # A developer's machine caches bytecode: every contender's Python tools start faster.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    gate_config = write(root / "precommit-gate.toml", "[tool.parex]\npre-commit = true\n")
    python = str(venv / "bin" / "python")
    gates = Gates(root / "reports")
    reset = ["git", "checkout", "-q", "--", "."]
    commands = {
        "pre-commit": [str(venv / "bin" / "pre-commit"), "run", "--all-files", "--color=never"],
        "prek": [str(venv / "bin" / "prek"), "run", "--all-files", "--color=never"],
    }
    series = {name: Series(name) for name in ("parex", "parex --noconftest", *commands)}
    for rep in range(reps + 1):  # the first round warms every tool's caches, unmeasured
        for name, argv in commands.items():
            run(reset, tree, timeout=60)
            m = expect_ok(run(argv, tree, env=env, timeout=TIMEOUT), name)
            if rep:
                series[name].add(m)
        for name, extra in (("parex", ()), ("parex --noconftest", ("--noconftest",))):
            run(reset, tree, timeout=60)
            m, doc = gates.run(
                tree, f"--parex-config={gate_config}", *extra, what=name, env=env, python=python
            )
            if rep:
                add_gate(series[name], m, doc)
                series[name].extra.setdefault("critical_path", []).append(
                    float(doc["totals"]["critical_path"])
                )
                hooks = len(doc["checks"])
    run(reset, tree, timeout=60)
    gates.run(
        tree,
        f"--parex-config={gate_config}",
        what="parex (cache)",
        cache=True,
        env=env,
        python=python,
    )
    m, doc = gates.run(
        tree,
        f"--parex-config={gate_config}",
        what="parex (rerun)",
        cache=True,
        env=env,
        python=python,
    )
    started = sum(1 for c in doc["checks"] if not c.get("cached"))
    # The floor of any schedule on these cores: the hooks' CPU shared by the cores, or the
    # longest chain the order needs, whichever is longer -- plus the gate's start and exit.
    px = series["parex"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    chain = median([float(d) for d in px.extra.get("critical_path", [])])
    floor = (
        max(px.fig("reported_cpu") / cores, chain)
        + px.fig("before_gate")
        + px.fig("after_gate")
        + px.fig("after_checks")
    )
    vs_pc = series["parex"].wall / series["pre-commit"].wall
    vs_prek = series["parex"].wall / series["prek"].wall
    ratios = {name: rnd(s.wall / series["pre-commit"].wall) for name, s in series.items()}
    return {
        "ratios": ratios,
        "floor": rnd(floor),
        "floor_vs_pre_commit": rnd(floor / series["pre-commit"].wall),
        "critical_path": rnd(chain),
        "project": PRECOMMIT_PROJECT,
        "hooks": 10,
        "checks": hooks,
        "series": {name: s.to_dict() for name, s in series.items()},
        "rerun_wall": rnd(m.wall),
        "rerun_started": started,
        "targets": [
            target(
                "precommit_vs_pre_commit",
                vs_pc,
                TARGETS["precommit_vs_pre_commit"],
                "x",
                "parex / pre-commit run --all-files, attrs 26.1.0, 10 hooks",
            ),
            target(
                "precommit_vs_prek",
                vs_prek,
                TARGETS["precommit_vs_prek"],
                "x",
                "parex / prek run --all-files",
            ),
            target(
                "precommit_rerun_started",
                started,
                TARGETS["precommit_rerun_started"],
                "checks",
                f"unchanged rerun: {rnd(m.wall)} s",
            ),
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="Repetitions (default 3)")
    parser.add_argument(
        "--json",
        default=str(Path(__file__).with_name("results.json")),
        help="Write the figures here (default benchmarks/results.json)",
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"Comma-separated of {','.join(SECTIONS)}"
    )
    parser.add_argument("--tox", default=None, help="The tox executable (default: on PATH)")
    parser.add_argument("--scale", type=int, default=200, help="Checks in the scale run")
    parser.add_argument("--files", type=int, default=5000, help="Files in the cache run")
    parser.add_argument(
        "--cpu-iterations",
        type=int,
        default=None,
        help="Loop iterations of one CPU-bound check (default: calibrated to ~2 s here); pin it"
        " to compare two runs",
    )
    parser.add_argument(
        "--project",
        default=DEFAULT_PROJECTS,
        help="The PyPI projects of the project and startup sections, NAME==VERSION, "
        f"comma-separated (default {DEFAULT_PROJECTS})",
    )
    parser.add_argument(
        "--project-deps",
        default="",
        help="Comma-separated extra requirements its tests need (beyond what it declares)",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="Keep the project's download and venv here, for the next run (default: a temporary"
        " directory, removed)",
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown or args.reps < 1:
        parser.error(f"unknown section(s) {unknown}" if unknown else "--reps must be >= 1")
    try:
        tox = find_tox(args.tox) if "overhead" in only else None
    except BenchError as exc:
        parser.error(str(exc))
    results: dict[str, Any] = {"machine_before": machine(), "reps": args.reps}
    warning = load_warning(results["machine_before"]["loadavg"][0])
    print(f"load average {results['machine_before']['loadavg']}", file=sys.stderr)
    if warning:
        print(warning, file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="parex-bench-") as tmp:
        root = Path(tmp).resolve()
        workdir = Path(args.workdir).resolve() if args.workdir else root / "workdir"
        deps = [d.strip() for d in args.project_deps.split(",") if d.strip()]
        specs = [d.strip() for d in args.project.split(",") if d.strip()]
        runners: dict[str, Callable[[], dict[str, Any]]] = {
            "overhead": lambda: overhead(root, args.reps, tox),
            "cpu": lambda: cpu_bound(root, args.reps, args.cpu_iterations),
            "project": lambda: project(root, args.reps, specs, workdir, deps),
            "startup": lambda: startup(root, args.reps, specs, workdir, deps),
            "cache": lambda: cache(root, args.reps, args.files),
            "watch": lambda: watch(root, args.reps),
            "store": lambda: store(root, args.reps, args.files),
            "selfgate": lambda: selfgate(root, args.reps),
            "scheduling": lambda: scheduling(root, args.reps),
            "scale": lambda: scale(root, args.reps, args.scale),
            "failfast": lambda: failfast(root, args.reps),
            "precommit": lambda: precommit(root, args.reps, workdir),
        }
        try:
            for section in SECTIONS:
                if section in only:
                    print(
                        f"[{time.strftime('%H:%M:%S')}] {section} ... (load "
                        f"{os.getloadavg()[0]:.2f})",
                        file=sys.stderr,
                    )
                    results[section] = runners[section]()
        finally:
            assert_nothing_left(root, "benchmarks")
    results["machine_after"] = machine()
    results["targets"] = [
        tg for section in SECTIONS for tg in results.get(section, {}).get("targets", [])
    ]
    text = table(results)
    m0, m1 = results["machine_before"], results["machine_after"]
    load0 = "/".join(f"{x:.2f}" for x in m0["loadavg"])
    load1 = "/".join(f"{x:.2f}" for x in m1["loadavg"])
    header = (
        f"pytest-parex benchmarks: {args.reps} repetitions, medians; Python {m0['python']}, "
        f"{m0['cpus']} cpus, load average (1/5/15 min) {load0} before, {load1} after"
        + (", PYTHONDONTWRITEBYTECODE=1" if m0["PYTHONDONTWRITEBYTECODE"] else "")
    )
    print(header)
    for load in (m0["loadavg"][0], m1["loadavg"][0]):
        if load_warning(load):
            print(load_warning(load))
            break
    print(text, end="")
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
