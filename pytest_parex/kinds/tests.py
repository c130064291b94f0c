"""``kind = "tests"``: the project's test suite in a child pytest, optionally split into shards
(``shards = N``) that run side by side on the test-runner agents.

The gate writes one plan file for all the shards of a check, before any starts
(:mod:`pytest_parex.child.shard`): the weight of each test file -- the per-file and per-test
durations it remembered from earlier runs; where it remembers none, the durations the project
committed (``durations = "PATH"``, pytest-split's ``.test_durations`` format, written by
``--parex-save-durations``); with neither, the files' sizes. Shards that share the run's
directory (local agents, lean ``-n`` workers) take units as they go, biggest first by those
weights; on ``--tx`` workers the plan is a split made in advance on them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_parex import child
from pytest_parex.child import shard as sharding
from pytest_parex.files import relative_posix, write_atomic
from pytest_parex.kinds.base import Invocation, Key, PytestLayout, RunContext, Store, Verdict
from pytest_parex.kinds.pytestrun import ChildPytest, counts_verdict
from pytest_parex.results import CheckResult

if TYPE_CHECKING:
    from pytest_parex.config import Check, Validator

DURATIONS_KEY = "parex/test-durations"
"""pytest cache key prefix of the per-test and per-file durations of each tests check."""
SCAN_LIMIT = 50_000
"""Directory entries a first run looks at to find the test files; a bigger tree is left to
the shards' own split by count."""


def _shards(v: Validator, where: str, key: str, value: object) -> int:
    return v.integer(where, key, value, minimum=1)


def _durations(v: Validator, where: str, key: str, value: object) -> str:
    return v.string(where, key, value)


def plan_path(state_dir: Path, check: Check) -> Path:
    """The plan file every shard of ``check``'s tests check reads."""
    return state_dir / f"{check.base_name}.shard-plan.json"


class TestsKind(ChildPytest):
    name = "tests"
    agent = "test-runner"
    keys = (Key("shards", _shards), Key("durations", _durations))

    def expand(self, check: Check) -> list[Check]:
        shards = int(check.option("shards", 1))
        if shards == 1:
            return [check]
        return [
            replace(check, name=f"{check.name}[{i}/{shards}]", shard=(i, shards))
            for i in range(1, shards + 1)
        ]

    def child_args(self, check: Check, ctx: RunContext, files: dict[str, Path]) -> list[str]:
        if check.shard is None:
            return []
        index, total = check.shard
        return [
            "-p",
            child.SHARD_PLUGIN,
            f"--parex-shard={index}/{total}",
            f"--parex-shard-plan={plan_path(ctx.state_dir, check)}",
        ]

    def interpret(
        self, check: Check, code: int | None, inv: Invocation, log: Path, ctx: RunContext
    ) -> Verdict:
        return counts_verdict(
            code,
            inv.files.get("pytest"),
            shard=check.shard is not None,
            log=log,
            rootdir=ctx.rootdir,
        )

    def before_gate(self, checks: Sequence[Check], ctx: RunContext, store: Store | None) -> None:
        """The plan of each sharded tests check, written once for all its shards."""
        for base in sorted({c.base_name for c in checks if c.shard is not None}):
            check = next(c for c in checks if c.base_name == base)
            assert check.shard is not None
            files, tests, source = weights(check, ctx, store)
            n = check.shard[1]
            path = plan_path(ctx.state_dir, check)
            if ctx.shared_state:  # the shards take the units as they go, biggest first
                claims = path.with_name(f"{check.base_name}.claims")
                table = sharding.plan_as_they_go(files, n, claims, tests=tests, source=source)
            else:  # --tx workers share no directory: a split made in advance
                table = sharding.plan(files, tests, n, source=source)
            write_atomic(path, json.dumps(table), durable=False)

    def after_gate(
        self,
        checks: Sequence[Check],
        results: Sequence[CheckResult],
        store: Store | None,
        ctx: RunContext,
    ) -> list[str]:
        """Remember the per-test and per-file durations of each tests check, to balance shards
        next time; with ``--parex-save-durations``, write them to the ``durations`` file."""
        base_of = {c.name: c.base_name for c in checks}
        by_base: dict[str, dict[str, float]] = {}
        for r in results:
            timings: Any = r.figures.get("durations")
            if r.name not in base_of or not isinstance(timings, dict) or r.cached:
                continue
            by_base.setdefault(base_of[r.name], {}).update(
                {str(k): float(v) for k, v in timings.items() if _seconds(v)}
            )
        for base, tests in by_base.items():
            if store is not None:
                store.set(f"{DURATIONS_KEY}/{base}", {"files": per_file(tests), "tests": tests})
        notes: list[str] = []
        if not ctx.save_durations:
            return notes
        for base in sorted({c.base_name for c in checks}):
            check = next(c for c in checks if c.base_name == base)
            given = check.option("durations")
            if not given:
                notes.append(
                    f'parex: --parex-save-durations: {base} has no durations = "PATH" to '
                    "write them to"
                )
                continue
            measured = by_base.get(base)
            path = ctx.rootdir / given
            if not measured:
                notes.append(f"parex: no test durations of {base} measured: {given} unchanged")
                continue
            saved = {**read_durations(path), **{k: round(v, 4) for k, v in measured.items()}}
            write_atomic(path, json.dumps(saved, indent=4, sort_keys=True) + "\n")
            notes.append(
                f"parex: saved the durations of {len(measured)} tests of {base} to {given}"
            )
        return notes


def _seconds(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def per_file(tests: Mapping[str, float]) -> dict[str, float]:
    """Per-test durations summed by test file (the node id's part before ``::``)."""
    files: dict[str, float] = {}
    for nodeid, seconds in tests.items():
        file = nodeid.split("::", 1)[0]
        files[file] = files.get(file, 0.0) + seconds
    return files


def read_durations(path: Path) -> dict[str, float]:
    """A committed durations file: a JSON object node id -> seconds (pytest-split's
    ``.test_durations``); {} when missing or damaged, values that are not seconds dropped."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if _seconds(v)}


def weights(
    check: Check, ctx: RunContext, store: Store | None
) -> tuple[dict[str, float], dict[str, float], str]:
    """What the split of ``check``'s suite is balanced on: per-file and per-test weights, and
    where they came from (for the plan file, and for people reading it)."""
    data = store.get(f"{DURATIONS_KEY}/{check.base_name}", {}) if store is not None else {}
    data = data if isinstance(data, dict) else {}
    files_seen: dict[str, Any] = data["files"] if isinstance(data.get("files"), dict) else {}
    tests_seen: dict[str, Any] = data["tests"] if isinstance(data.get("tests"), dict) else {}
    given = check.option("durations")
    committed = read_durations(ctx.rootdir / given) if given else {}
    files = {**per_file(committed), **{str(k): v for k, v in files_seen.items() if _seconds(v)}}
    tests = {**committed, **{str(k): v for k, v in tests_seen.items() if _seconds(v)}}
    if files_seen:
        return files, tests, "remembered durations"
    if committed:
        return files, tests, f"durations committed in {given}"
    paths = ctx.layout.paths.get(check.base_name)
    if paths is None:  # no parser to ask: words that name something on disk
        paths = tuple(a for a in check.argv if not a.startswith("-"))
    sizes = sizes_of_test_files(ctx.rootdir, ctx.rootdir / check.cwd, paths, ctx.layout)
    return {k: float(v) for k, v in sizes.items()}, {}, "test file sizes"


def sizes_of_test_files(
    rootdir: Path, cwd: Path, paths: Sequence[str], layout: PytestLayout
) -> dict[str, int]:
    """The test files a child pytest run in ``cwd`` on ``paths`` would collect, as far as a
    walk can tell (those paths, else ``testpaths``, else ``cwd``; ``python_files``,
    ``norecursedirs``): node id path -> size in bytes. {} when the tree is too big to walk."""
    starts = [
        cwd / path.split("::", 1)[0] for path in paths if (cwd / path.split("::", 1)[0]).exists()
    ]
    if not starts:
        for pattern in layout.testpaths:
            starts += [Path(p) for p in sorted(glob.glob(str(rootdir / pattern)))]
    if not starts:
        starts = [cwd]
    sizes: dict[str, int] = {}
    budget = SCAN_LIMIT

    def add(path: Path) -> None:
        name = relative_posix(path, rootdir)
        if name is None or not name.endswith(".py"):
            return
        if not any(
            fnmatch.fnmatch(name if "/" in p else path.name, p) for p in layout.python_files
        ):
            return
        with contextlib.suppress(OSError):
            sizes[name] = path.stat().st_size

    for start in starts:
        if start.is_file():
            add(start)
            continue
        for dirpath, dirnames, filenames in os.walk(start):
            budget -= len(dirnames) + len(filenames)
            if budget < 0:
                return {}
            here = Path(dirpath)
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not any(fnmatch.fnmatch(d, p) for p in layout.norecursedirs)
                and d != "__pycache__"
                and not (here / d / "pyvenv.cfg").exists()
            )
            for name in sorted(filenames):
                add(here / name)
    return sizes


KIND = TestsKind()
