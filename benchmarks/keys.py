"""Cost of computing result-cache keys (not part of the test suite).

    python benchmarks/keys.py [--files 5000] [--reps 7] [--json keys.json]
    python benchmarks/keys.py --distributions 150   # content-keying installed code

Builds a tree of ``--files`` files (inside a git repository and as a plain directory), then
computes the keys of four checks with the gate's own :class:`KeyBuilder` (``parts``): list
the project (git's listing and its ignored files, for a check without ``reads``), match three
checks' ``reads`` globs and their configuration files, digest the union of their inputs,
identify the tools, the Python and the installed distributions by content, build and digest
the key parts; then look the four checks up in the result store. *Cold* starts without a file
index (every file is read); *warm* re-uses the index saved by the run before, nothing having
changed (the case the 50 ms target is about). Prints medians of wall and CPU time per step;
CPU includes child processes (git). The machine's load average is printed with them: on a
shared machine, wall time is CPU time stretched by the load.

``--distributions N`` builds a virtualenv with N small distributions installed by pip and
times, in it, what the key holds of installed code: names and versions only (what the cache
keyed before) and by content (each ``RECORD`` through the warm file index, development
installs).
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
from pytest_parex.cache.key import KeyBuilder, KeyParts, KeySettings
from pytest_parex.cache.listing import Scanner
from pytest_parex.cache.store import Store
from pytest_parex.config import Check
from pytest_parex.kinds.base import RunContext

T = TypeVar("T")
STEPS = ("listing", "index load", "keys", "total", "lookup")
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


def checks_of(root: Path) -> list[Check]:
    """The four checks of :data:`CHECKS`: ``tests`` runs Python (its key holds the installed
    code), the others ``git``."""
    out = []
    for name, reads in CHECKS.items():
        argv = (sys.executable, "-c", "pass") if reads is None else ("git", "status")
        out.append(Check(name=name, agent="code-reviewer", argv=argv, reads=reads or ()))
    return out


def compute_keys(root: Path, state: Path, timer: Timer) -> tuple[dict[str, KeyParts], int]:
    """One key computation as the gate does it; returns the parts and files hashed."""
    start = time.perf_counter()
    cpu0 = cpu_now()
    exclude = [".pytest_cache"]
    # How long git's listing (tracked, untracked and ignored files) takes alone, for the table.
    timer.measure("listing", Scanner(root, exclude=exclude).project_files)
    start, cpu0 = time.perf_counter(), cpu_now()
    index_path = state / "index.json"
    index, warning = timer.measure("index load", lambda: FileIndex.load(index_path))
    if warning:
        print(warning, file=sys.stderr)
    context = RunContext(rootdir=root, log_dir=state / "logs", state_dir=state, config_path="")
    settings = KeySettings(root, context, root / "pyproject.toml", tuple(exclude))
    builder = KeyBuilder(settings, index)
    checks = checks_of(root)
    parts = timer.measure("keys", lambda: builder.parts(checks))
    for found in parts.values():
        found.digest()
    step = timer.steps.setdefault("total", Step())
    step.walls.append(time.perf_counter() - start)
    step.cpus.append(cpu_now() - cpu0)
    index.save(index_path)
    return parts, index.hashed


def lookups(store: Store, parts: dict[str, KeyParts], timer: Timer) -> None:
    def look() -> None:
        for name, p in parts.items():
            if not store.lookup(name, p).replayable:
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
    store = Store(state / "results", max_bytes=10**9, max_age=10**9)
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


def distributions_venv(base: Path, count: int) -> Path:
    """A virtualenv with ``count`` small distributions installed by pip (real ``RECORD``
    files); returns its site-packages."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from venvs import make_venv, make_wheel

    venv = make_venv(base / "venv", inherit=False)
    wheels = [
        make_wheel(base / "wheels", f"dist{i:03d}", "1.0", {f"dist{i:03d}.py": f"X = {i}\n"})
        for i in range(count)
    ]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv.python), "install", "--quiet",
         "--no-deps", "--no-index", "--disable-pip-version-check", *map(str, wheels)],
        check=True,
    )  # fmt: skip
    return venv.site


def installed_bench(site: Path, reps: int) -> dict[str, float]:
    """Warm medians (ms) of keying the distributions in ``site``: by name and version (what
    the cache keyed before) and by content (what it keys now, through a warm index)."""
    from pytest_parex.cache.identity import installed_code

    path = [str(site)]
    index = FileIndex()
    installed_code(path, index)  # warm the index, as a second run finds it
    time.sleep(SETTLE_S)
    installed_code(path, index)
    timer = Timer()
    for _ in range(reps):
        timer.measure("names", lambda: _names_and_versions(path))
        timer.measure("content", lambda: installed_code(path, index))
    return {
        f"{name}_ms": round(statistics.median(step.walls) * 1e3, 2)
        for name, step in timer.steps.items()
    }


def _names_and_versions(path: Sequence[str]) -> dict[str, str]:
    """What the cache keyed of installed code before content keys: one listing per path entry,
    names and versions from the metadata directory names."""
    out: dict[str, str] = {}
    for entry in path:
        with os.scandir(entry) as it:
            for e in it:
                if e.name.endswith(".dist-info"):
                    name, _, version = e.name[: -len(".dist-info")].partition("-")
                    out.setdefault(name, version)
    return out


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
    parser.add_argument(
        "--distributions",
        type=int,
        default=0,
        help="Time keying N installed distributions instead (a venv built for it)",
    )
    args = parser.parse_args(argv)
    if args.distributions:
        with scratch() as base:
            figures = installed_bench(distributions_venv(base, args.distributions), args.reps)
        print(
            f"{args.distributions} distributions, warm medians: names and versions "
            f"{figures['names_ms']:.2f} ms, by content {figures['content_ms']:.2f} ms "
            f"(load {os.getloadavg()[0]:.2f})"
        )
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return 0
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
