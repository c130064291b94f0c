"""Reproducible performance figures for pytest-parex (not part of the test suite).

    python benchmarks/run.py [--reps 3] [--json benchmarks/results.json] [--only overhead,...]

Every workload runs in scratch projects under a temporary directory, every contender once per
repetition (interleaved, so a change of machine load hits them alike), and the table shows
medians. Nothing here needs the network; every subprocess has a timeout and its process group
is killed on the way out; the script fails if a process it started outlives its run.

Sections (see ``--only``): overhead, cpu, scheduling, scale, failfast. The honest-speedup
figures come from the cpu section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_parex.config import to_toml

PY = sys.executable
AGENTS = ("code-reviewer", "test-runner", "feature-implementer", "refactorer", "debugger")
SECTIONS = ("overhead", "cpu", "scheduling", "scale", "failfast")
TIMEOUT = 300.0
"""Seconds any one measured command may take before it is killed (and the run fails)."""

TARGETS = {
    "overhead": 1.10,  # parex / GNU parallel (or xargs -P5)
    "cpu": 1.10,  # parex / xargs -P5
    "scale_ms": 10.0,  # per-check overhead
    "failfast_s": 0.2,  # failing check's end -> last cancelled tree gone
}


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


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything that would change a gate or a pytest run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_PAREX_", "PYTEST_XDIST_")) and k != "PYTEST_ADDOPTS"
    }
    bindir = str(Path(PY).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
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


def parex_cmd(*extra: str) -> list[str]:
    return [PY, "-m", "pytest", "--parex", *extra]


SECONDS = r"(\d+m)?(\d+(?:\.\d+)?)s"


def parse_seconds(text: str) -> float:
    m = re.fullmatch(SECONDS, text)
    if not m:
        raise ValueError(text)
    minutes = float(m.group(1)[:-1]) if m.group(1) else 0.0
    return minutes * 60 + float(m.group(2))


def summary_figures(output: str) -> dict[str, float]:
    """The figures of the gate's totals line: sequential, wall, speedup, cpu."""
    out: dict[str, float] = {}
    for key in ("sequential", "wall", "cpu", "critical path"):
        m = re.search(rf"\b{key} ((?:\d+m)?\d+(?:\.\d+)?s)", output)
        if m:
            out["summary_" + key.replace(" ", "_")] = parse_seconds(m.group(1))
    m = re.search(r"speedup (\d+(?:\.\d+)?)x", output)
    if m:
        out["summary_speedup"] = float(m.group(1))
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Series:
    """Repeated measurements of one contender."""

    label: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)

    def add(self, m: Measured, **extra: float) -> None:
        self.walls.append(m.wall)
        self.cpus.append(m.cpu)
        for k, v in extra.items():
            self.extra.setdefault(k, []).append(v)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "wall_median": round(median(self.walls), 4),
            "cpu_median": round(median(self.cpus), 4),
            "walls": [round(w, 4) for w in self.walls],
            "cpus": [round(c, 4) for c in self.cpus],
            **{f"{k}_median": round(median(v), 4) for k, v in self.extra.items()},
        }


def expect_ok(m: Measured, what: str, code: int = 0) -> Measured:
    if m.returncode != code:
        tail = "\n".join(m.output.splitlines()[-30:])
        raise BenchError(f"{what}: exit code {m.returncode} (expected {code})\n{tail}")
    return m


# ------------------------------------------------------------------------------ tools


def parallel_tool() -> tuple[str, Callable[[Sequence[str], int], list[str]]]:
    """GNU parallel when installed, else xargs -P: (name, argv builder for N shell commands)."""
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
    return "xargs -P", xargs_argv


def xargs_argv(cmds: Sequence[str], jobs: int) -> list[str]:
    # The commands arrive on stdin, one a line (see run_xargs).
    return ["xargs", "-P", str(jobs), "-I", "{}", "sh", "-c", "{}"]


def run_many(tool: str, argv: list[str], cmds: Sequence[str], cwd: Path) -> Measured:
    stdin = "\n".join(cmds) + "\n" if tool == "xargs -P" else None
    return run(argv, cwd, stdin=stdin)


def find_tox(given: str | None) -> str | None:
    if given:
        return given
    for candidate in (shutil.which("tox"), str(Path(PY).parent / "tox")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


# ------------------------------------------------------------------------------ workloads


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def overhead(root: Path, reps: int, tox: str | None) -> dict[str, Any]:
    """5 x ``sleep 2`` on 5 agents: parex vs GNU parallel / xargs, tox p, pytest -n 5, serial."""
    gate = root / "overhead-gate"
    write(
        gate / "pyproject.toml",
        gate_pyproject({f"c{i}": {"agent": a, "run": "sleep 2"} for i, a in enumerate(AGENTS)}),
    )
    xd = root / "overhead-xdist"
    write(
        xd / "test_sleep.py",
        "import time\n\n" + "".join(f"\ndef test_{i}():\n    time.sleep(2)\n" for i in range(5)),
    )
    write(xd / "pytest.ini", "[pytest]\n")
    tool, par_argv = parallel_tool()
    cmds = ["sleep 2"] * 5
    series = {
        "parex": Series("pytest --parex"),
        "parallel": Series(tool + " -j5"),
        "xdist": Series("pytest -n 5 (5 sleeping tests)"),
        "sequential": Series("one after another"),
    }
    notes = []
    toxdir = root / "overhead-tox"
    if tox:
        write(
            toxdir / "tox.ini",
            textwrap.dedent(
                """\
                [tox]
                envlist = c0,c1,c2,c3,c4
                skipsdist = true
                [testenv]
                skip_install = true
                allowlist_externals = sleep
                commands = sleep 2
                """
            ),
        )
        warm = run([tox, "p", "-p", "5", "--parallel-no-spinner", "-q"], toxdir, timeout=600)
        if warm.returncode == 0:
            series["tox"] = Series("tox run-parallel -p 5")
        else:
            notes.append(f"tox run-parallel failed to set up (exit {warm.returncode}): skipped")
    else:
        notes.append("tox not installed: tox run-parallel skipped (--tox PATH to give one)")
    expect_ok(run(parex_cmd(), gate), "parex overhead warm-up")  # durations remembered
    for _ in range(reps):
        m = expect_ok(run(parex_cmd(), gate), "parex overhead")
        series["parex"].add(m, **summary_figures(m.output))
        series["parallel"].add(expect_ok(run_many(tool, par_argv(cmds, 5), cmds, gate), tool))
        if tox and "tox" in series:
            m = run([tox, "p", "-p", "5", "--parallel-no-spinner", "-q"], toxdir)
            series["tox"].add(expect_ok(m, "tox p"))
        m = run([PY, "-m", "pytest", "-n", "5", "-p", "no:cacheprovider", "-q"], xd)
        series["xdist"].add(expect_ok(m, "pytest -n 5"))
        series["sequential"].add(expect_ok(run(["sh", "-c", "; ".join(cmds)], gate), "serial"))
        assert_nothing_left(root, "overhead")
    ref = median(series["parallel"].walls)
    return {
        "tool": tool,
        "notes": notes,
        "series": {k: s.to_dict() for k, s in series.items()},
        "ratios": {k: round(median(s.walls) / ref, 3) for k, s in series.items()},
        "target": TARGETS["overhead"],
        "holds": median(series["parex"].walls) / ref <= TARGETS["overhead"],
    }


CPU_WORK = "n = {n}\nx = 0\nfor i in range(n):\n    x += i * i\n"


def calibrate(seconds: float, root: Path) -> int:
    """Loop iterations that take ``seconds`` of one core, alone (best of 3)."""
    probe = 2_000_000
    best = min(run([PY, "-c", CPU_WORK.format(n=probe)], root, timeout=120).cpu for _ in range(3))
    return max(1, int(probe * seconds / max(best, 1e-3)))


def cpu_bound(root: Path, reps: int, iterations: int | None = None) -> dict[str, Any]:
    """5 checks of ~2 s pure-Python CPU work: parex vs xargs -P5; the honest speedup."""
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
        "parex": Series("pytest --parex"),
        "xargs": Series("xargs -P5"),
        "serial_parex": Series("pytest --parex -p no:xdist (one after another)"),
        "serial": Series("one after another (shell)"),
    }
    expect_ok(run(parex_cmd(), proj), "parex cpu warm-up")  # durations remembered
    for _ in range(reps):
        m = expect_ok(run(parex_cmd(), proj), "parex cpu")
        series["parex"].add(m, **summary_figures(m.output))
        series["xargs"].add(expect_ok(run_many("xargs -P", xargs_argv(cmds, 5), cmds, proj), "x"))
        m = expect_ok(run(parex_cmd("-p", "no:xdist"), proj), "parex cpu serial")
        series["serial_parex"].add(m, **summary_figures(m.output))
        series["serial"].add(expect_ok(run(["sh", "-c", "; ".join(cmds)], proj), "serial"))
        assert_nothing_left(root, "cpu")
    par = series["parex"]
    par_wall = median(par.walls)
    reported = median(par.extra.get("summary_speedup", []))
    honest = median(series["serial_parex"].walls) / par_wall
    return {
        "iterations": n,
        "series": {k: s.to_dict() for k, s in series.items()},
        "ratio": round(par_wall / median(series["xargs"].walls), 3),
        "target": TARGETS["cpu"],
        "holds": par_wall / median(series["xargs"].walls) <= TARGETS["cpu"],
        "speedup": {
            "reported": reported,
            "reported_sequential": median(par.extra.get("summary_sequential", [])),
            "reported_cpu": median(par.extra.get("summary_cpu", [])),
            "gate_wall": median(par.extra.get("summary_wall", [])),
            "measured": round(honest, 3),
            "measured_checks_only": round(
                median(series["serial_parex"].extra.get("summary_sequential", []))
                / median(par.extra.get("summary_wall", [])),
                3,
            ),
            "cpu_based": round(
                median(par.extra.get("summary_cpu", [])) / median(par.extra["summary_wall"]), 3
            ),
            "overstated_by": round(reported / honest, 3) if honest else None,
        },
    }


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
    projects = {}
    for n in (1, 5, count):
        proj = root / f"scale-{n}"
        checks = {f"c{i:04d}": {"agent": AGENTS[i % 5], "run": "true"} for i in range(n)}
        write(proj / "pyproject.toml", gate_pyproject(checks))
        projects[n] = proj
    series = {n: Series(f"{n} checks") for n in projects}
    for n, proj in projects.items():
        # Unmeasured: the gate remembers durations; measure what a developer sees every day.
        expect_ok(run(parex_cmd("-q"), proj), f"scale {n} warm-up")
    for _ in range(reps):
        for n, proj in projects.items():
            m = expect_ok(run(parex_cmd("-q"), proj), f"scale {n}")
            series[n].add(m, **summary_figures(m.output))
        assert_nothing_left(root, "scale")
    w1, w5, wn = (median(series[n].walls) for n in (1, 5, count))
    per_check = (wn - w5) / (count - 5)
    return {
        "count": count,
        "series": {str(n): s.to_dict() for n, s in series.items()},
        "per_check_ms": round(per_check * 1000, 2),
        "per_check_vs_1_ms": round((wn - w1) / (count - 1) * 1000, 2),
        "target_ms": TARGETS["scale_ms"],
        "holds": per_check * 1000 <= TARGETS["scale_ms"],
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
        "target_s": TARGETS["failfast_s"],
        "holds": median(latencies) <= TARGETS["failfast_s"],
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


def fmt(value: float) -> str:
    return f"{value:.2f}s"


def table(results: Mapping[str, Any]) -> str:
    lines: list[str] = []

    def row(label: str, wall: float, cpu: float | None = None, note: str = "") -> None:
        cpu_text = f"{cpu:7.2f}s" if cpu is not None else " " * 8
        lines.append(f"  {label:<46} {wall:7.2f}s {cpu_text}  {note}".rstrip())

    if "overhead" in results:
        r = results["overhead"]
        lines.append(f"overhead: 5 x sleep 2 on 5 agents      {'wall':>8} {'cpu':>8}  ratio")
        for key, s in r["series"].items():
            row(s["label"], s["wall_median"], s["cpu_median"], f"{r['ratios'][key]:.2f}x")
        lines.append(
            f"  parex / {r['tool']}: {r['ratios']['parex']:.2f}x"
            f" (target <= {r['target']:.2f}x: {'holds' if r['holds'] else 'MISSED'})"
        )
        lines.extend(f"  note: {n}" for n in r["notes"])
    if "cpu" in results:
        r = results["cpu"]
        lines.append(f"cpu-bound: 5 x ~2 s of Python ({r['iterations']} iterations)")
        for s in r["series"].values():
            row(s["label"], s["wall_median"], s["cpu_median"])
        sp = r["speedup"]
        lines.append(
            f"  parex / xargs -P5: {r['ratio']:.2f}x (target <= {r['target']:.2f}x: "
            f"{'holds' if r['holds'] else 'MISSED'})"
        )
        lines.append(
            f"  speedup reported by the summary {sp['reported']:.2f}x (sequential "
            f"{fmt(sp['reported_sequential'])} = sum of durations measured side by side, "
            f"gate wall {fmt(sp['gate_wall'])})"
        )
        lines.append(
            f"  speedup measured (-p no:xdist wall / parex wall) {sp['measured']:.2f}x; "
            f"checks only {sp['measured_checks_only']:.2f}x; cpu / wall {sp['cpu_based']:.2f}x;"
            f" reported overstates by {sp['overstated_by']:.2f}x"
        )
    if "scheduling" in results:
        r = results["scheduling"]
        b = r["bounds"]
        lines.append(
            f"scheduling: DAG of {len(r['dag'])} checks on {b['workers']} workers "
            f"(critical path {fmt(b['critical_path'])}, work {fmt(b['total_work'])}, "
            f"lower bound {fmt(b['lower_bound'])}; with agent instances "
            f"{fmt(b['agent_lower_bound'])})"
        )
        for key, s in r["series"].items():
            row(
                s["label"] + " makespan",
                s["makespan_median"],
                None,
                f"plan predicted {fmt(r['plan_' + key])}, command wall {fmt(s['wall_median'])}",
            )
        q = r["ratios"]
        lines.append(
            f"  makespan / lower bound: first {q['first_vs_lower_bound']:.2f}x, "
            f"second {q['second_vs_lower_bound']:.2f}x (agent-aware: "
            f"{q['first_vs_agent_lower_bound']:.2f}x, {q['second_vs_agent_lower_bound']:.2f}x);"
            f" second / first {q['second_vs_first']:.2f}x"
        )
    if "scale" in results:
        r = results["scale"]
        lines.append(f"scale: {r['count']} checks of true on 5 agents")
        for s in r["series"].values():
            row(s["label"], s["wall_median"], s["cpu_median"])
        lines.append(
            f"  per check: {r['per_check_ms']:.1f} ms over the 5-check run "
            f"({r['per_check_vs_1_ms']:.1f} ms over the 1-check run); target <= "
            f"{r['target_ms']:.0f} ms: {'holds' if r['holds'] else 'MISSED'}"
        )
    if "failfast" in results:
        r = results["failfast"]
        lines.append("fail-fast: failing check's end -> last cancelled process tree gone")
        lines.append(
            f"  latency median {r['latency_median_s'] * 1000:.0f} ms, max "
            f"{r['latency_max_s'] * 1000:.0f} ms (target <= {r['target_s'] * 1000:.0f} ms: "
            f"{'holds' if r['holds'] else 'MISSED'}); command wall "
            f"{fmt(r['series']['wall_median'])}"
        )
    return "\n".join(lines) + "\n"


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
    parser.add_argument(
        "--cpu-iterations",
        type=int,
        default=None,
        help="Loop iterations of one CPU-bound check (default: calibrated to ~2 s here); pin it"
        " to compare two runs",
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown or args.reps < 1:
        parser.error(f"unknown section(s) {unknown}" if unknown else "--reps must be >= 1")
    results: dict[str, Any] = {"machine_before": machine(), "reps": args.reps}
    with tempfile.TemporaryDirectory(prefix="parex-bench-") as tmp:
        root = Path(tmp).resolve()
        runners: dict[str, Callable[[], dict[str, Any]]] = {
            "overhead": lambda: overhead(root, args.reps, find_tox(args.tox)),
            "cpu": lambda: cpu_bound(root, args.reps, args.cpu_iterations),
            "scheduling": lambda: scheduling(root, args.reps),
            "scale": lambda: scale(root, args.reps, args.scale),
            "failfast": lambda: failfast(root, args.reps),
        }
        try:
            for section in SECTIONS:
                if section in only:
                    print(f"[{time.strftime('%H:%M:%S')}] {section} ...", file=sys.stderr)
                    results[section] = runners[section]()
        finally:
            assert_nothing_left(root, "benchmarks")
    results["machine_after"] = machine()
    text = table(results)
    m0, m1 = results["machine_before"], results["machine_after"]
    header = (
        f"pytest-parex benchmarks: {args.reps} repetitions, medians; Python {m0['python']}, "
        f"{m0['cpus']} cpus, load {m0['loadavg'][0]:.2f} -> {m1['loadavg'][0]:.2f}"
        + (", PYTHONDONTWRITEBYTECODE=1" if m0["PYTHONDONTWRITEBYTECODE"] else "")
    )
    print(header)
    print(text, end="")
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
