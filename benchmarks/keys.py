"""Cost of computing result-cache keys (not part of the test suite).

    python benchmarks/keys.py [--files 5000] [--reps 7] [--json keys.json]

Builds a tree of ``--files`` files (inside a git repository and as a plain directory), then
computes the keys of four checks the way the gate will: list the project (a check without
``reads``), match three checks' ``reads`` globs, load the file index, digest the union of
their inputs, identify the tools, the Python and the installed distributions, build and digest
the key parts, and look the four checks up in the result store. *Cold* starts without a file
index (every file is read); *warm* re-uses the index saved by the run before, nothing having
changed (the case the 50 ms target is about). Prints medians of wall and CPU time per step;
CPU includes child processes (git). The machine's load average is printed with them: on a
shared machine, wall time is CPU time stretched by the load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_parex.cache.digests import FileIndex
from pytest_parex.cache.identity import (
    executable_identity,
    installed_distributions,
    python_identity,
)
from pytest_parex.cache.key import KeyParts, env_values
from pytest_parex.cache.listing import Scanner
from pytest_parex.cache.store import ResultCache

T = TypeVar("T")
STEPS = ("reads", "listing", "index load", "stat+hash", "tools+dists", "parts", "total", "lookup")
CHECKS: dict[str, tuple[str, ...] | None] = {
    "lint": ("**/*.py", "pyproject.toml"),
    "data": ("pkg1*/data/*.txt",),
    "docs": ("docs", "README.md"),
    "tests": None,  # no reads: every project file
}
# The racy window of the file index: a file younger than this is always read again, so a warm
# measurement must wait until the freshly built tree is older.
SETTLE_S = 2.1


def cpu_now() -> float:
    """User + system seconds of this process and its waited-for children (git), to the
    microsecond (``os.times`` counts in clock ticks of 10 ms)."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Step:
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


@dataclass
class Timer:
    steps: dict[str, Step] = field(default_factory=dict)

    def measure(self, name: str, fn: Callable[[], T]) -> T:
        before = cpu_now()
        start = time.perf_counter()
        value = fn()
        wall = time.perf_counter() - start
        cpu = cpu_now() - before
        step = self.steps.setdefault(name, Step())
        step.walls.append(wall)
        step.cpus.append(cpu)
        return value


def build_tree(root: Path, files: int) -> None:
    """``files`` files: packages of 80 modules and 20 data files, a docs directory, a README."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "bench"\n')
    (root / "README.md").write_text("# bench\n")
    made = 2
    pkg = 0
    while made < files:
        base = root / f"pkg{pkg}"
        (base / "data").mkdir(parents=True)
        for i in range(min(100, files - made)):
            if i < 80:
                (base / f"mod{i}.py").write_text(f"VALUE = {i}\n" * (20 + i % 40))
            else:
                (base / "data" / f"d{i}.txt").write_text(f"{pkg},{i}\n" * 50)
            made += 1
        pkg += 1
    (root / "docs").mkdir()


def git_init(root: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, timeout=300)


def compute_keys(root: Path, state: Path, timer: Timer) -> tuple[dict[str, KeyParts], int]:
    """One key computation as the gate would do it; returns the parts and files hashed."""
    start = time.perf_counter()
    cpu0 = cpu_now()
    exclude = [".pytest_cache"]
    scanner = Scanner(root, exclude=exclude)  # one per key computation: listings shared
    scanner.start_project_files()  # as the gate does: git lists while the reads are matched
    declared = timer.measure(
        "reads",
        lambda: {n: scanner.matching(r) for n, r in CHECKS.items() if r is not None},
    )
    everything = timer.measure("listing", scanner.project_files)
    index_path = state / "index.json"
    index, warning = timer.measure("index load", lambda: FileIndex.load(index_path))
    if warning:
        print(warning, file=sys.stderr)
    union = sorted({*everything, *(p for files in declared.values() for p in files)})
    digests = timer.measure("stat+hash", lambda: index.digests(root, union))

    def identities() -> tuple[dict[str, str], dict[str, str], str]:
        path = os.environ.get("PATH")
        tools = {"git": executable_identity("git", path, root, index=index)}
        return tools, installed_distributions(), python_identity()

    tools, versions, python = timer.measure("tools+dists", identities)
    env = env_values(("PATH", "PYTHON*", "PYTEST_*"), os.environ)

    def build() -> dict[str, KeyParts]:
        out = {}
        for name, reads in CHECKS.items():
            files = everything if reads is None else declared[name]
            parts = KeyParts(
                definition={"name": name, "reads": reads},
                files={p: digests[p] for p in files if p in digests},
                tools=tools,
                versions=versions,
                python=python,
                env=env,
            )
            parts.digest()
            out[name] = parts
        return out

    parts = timer.measure("parts", build)
    step = timer.steps.setdefault("total", Step())
    step.walls.append(time.perf_counter() - start)
    step.cpus.append(cpu_now() - cpu0)
    index.save(index_path)
    return parts, index.hashed


def lookups(store: ResultCache, parts: dict[str, KeyParts], timer: Timer) -> None:
    def look() -> None:
        for name, p in parts.items():
            if not store.lookup(name).replayable(p):
                raise RuntimeError(f"{name} not replayable on an unchanged tree")

    timer.measure("lookup", look)


@contextmanager
def scratch() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="parex-keys-"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def bench(root: Path, reps: int) -> dict[str, Timer]:
    state = root.parent / f"{root.name}-state"
    store = ResultCache(state / "results", max_entries=100, max_bytes=10**9)
    cold, warm = Timer(), Timer()
    for _ in range(reps):
        (state / "index.json").unlink(missing_ok=True)
        _, hashed = compute_keys(root, state, cold)
        assert hashed > 0, "a cold run reads every file"
    parts, _ = compute_keys(root, state, Timer())  # a second run: racy leftovers settle
    for name, p in parts.items():
        store.record_pass(name, p, {"status": "passed"}, b"output\n" * 100)
    for _ in range(reps):
        parts, hashed = compute_keys(root, state, warm)
        if hashed:
            raise RuntimeError(f"a warm run read {hashed} files: the tree is not settled")
        lookups(store, parts, warm)
    return {"cold": cold, "warm": warm}


def calibrate(root: Path, files: Sequence[str]) -> dict[str, float]:
    """Two yardsticks to scale the figures to another machine: a pure-Python loop, and the
    floor of a warm key computation (one ``lstat`` per file, nothing else)."""
    timer = Timer()
    prefix = os.path.join(root, "")
    for _ in range(5):
        timer.measure("python", lambda: sum(range(10**6)))
        timer.measure("lstat", lambda: [os.lstat(prefix + f) for f in files])
    return {
        f"{name}_cpu_ms": round(statistics.median(step.cpus) * 1e3, 2)
        for name, step in timer.steps.items()
    }


def report(
    results: dict[str, dict[str, Timer]], files: int, yardsticks: dict[str, float]
) -> dict[str, Any]:
    out: dict[str, Any] = {"files": files, "load": os.getloadavg(), "cpus": os.cpu_count()}
    out.update(yardsticks)
    print(f"key computation for {files} files, medians in ms (wall / cpu incl. git)")
    header = f"{'':20}" + "".join(f"{s:>18}" for s in STEPS)
    print(header)
    for mode, runs in results.items():
        for kind, timer in runs.items():
            row = f"{mode + ' ' + kind:20}"
            for step in STEPS:
                s = timer.steps.get(step)
                if s is None:
                    row += f"{'-':>18}"
                    continue
                wall, cpu = statistics.median(s.walls) * 1e3, statistics.median(s.cpus) * 1e3
                row += f"{wall:>10.1f} / {cpu:<5.1f}"
                out[f"{mode}_{kind}_{step.replace(' ', '_').replace('+', '_')}_ms"] = round(wall, 2)
            print(row)
    load = ", ".join(f"{x:.2f}" for x in out["load"])
    print(f"load average {load} on {out['cpus']} cpus")
    print(
        "yardsticks (cpu, to compare machines): "
        f"sum(range(10**6)) {yardsticks['python_cpu_ms']:.1f} ms, "
        f"lstat of every file {yardsticks['lstat_cpu_ms']:.1f} ms"
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000, help="Files in the tree (default 5000)")
    parser.add_argument("--reps", type=int, default=7, help="Repetitions (default 7)")
    parser.add_argument("--json", type=Path, default=None, help="Write the medians here")
    args = parser.parse_args(argv)
    with scratch() as base:
        in_git, plain = base / "git" / "tree", base / "plain" / "tree"
        build_tree(in_git, args.files)
        git_init(in_git)
        build_tree(plain, args.files)
        time.sleep(SETTLE_S)
        results = {"git": bench(in_git, args.reps), "walk": bench(plain, args.reps)}
        yardsticks = calibrate(plain, Scanner(plain).walk())
    out = report(results, args.files, yardsticks)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
