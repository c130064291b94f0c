"""``kind = "tests"``: the project's test suite in a child pytest, optionally split into shards
(``shards = N``) that run side by side on the test-runner agents.

Shards are balanced on the per-file (or per-test) durations the gate remembered from earlier
runs; every shard reads the same durations file, written before any of them starts, so their
shares are disjoint and together cover every selected test (:mod:`pytest_parex.child.shard`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_parex import child
from pytest_parex.kinds.base import Invocation, Key, RunContext, Store, Verdict
from pytest_parex.kinds.pytestrun import ChildPytest, counts_verdict
from pytest_parex.results import CheckResult

if TYPE_CHECKING:
    from pytest_parex.config import Check, Validator

DURATIONS_KEY = "parex/test-durations"
"""pytest cache key prefix of the per-test and per-file durations of each tests check."""


def _shards(v: Validator, where: str, key: str, value: object) -> int:
    return v.integer(where, key, value, minimum=1)


def durations_path(state_dir: Path, check: Check) -> Path:
    """The durations file every shard of ``check``'s tests check reads."""
    return state_dir / f"{check.base_name}.shard-durations.json"


class TestsKind(ChildPytest):
    name = "tests"
    agent = "test-runner"
    keys = (Key("shards", _shards),)

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
            f"--parex-shard-durations={durations_path(ctx.state_dir, check)}",
        ]

    def interpret(
        self, check: Check, code: int | None, inv: Invocation, log: Path, ctx: RunContext
    ) -> Verdict:
        return counts_verdict(code, inv.files.get("pytest"), empty_ok=check.shard is not None)

    def before_gate(self, checks: Sequence[Check], state_dir: Path, store: Store | None) -> None:
        for base in sorted({c.base_name for c in checks if c.shard is not None}):
            check = next(c for c in checks if c.base_name == base)
            data = store.get(f"{DURATIONS_KEY}/{base}", {}) if store is not None else {}
            path = durations_path(state_dir, check)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data if isinstance(data, dict) else {}), encoding="utf-8")

    def after_gate(
        self, checks: Sequence[Check], results: Sequence[CheckResult], store: Store
    ) -> None:
        """Per-test and per-file durations of each tests check, to balance shards next time."""
        base_of = {c.name: c.base_name for c in checks}
        by_base: dict[str, dict[str, float]] = {}
        for r in results:
            timings: Any = r.figures.get("durations")
            if r.name not in base_of or not isinstance(timings, dict):
                continue
            by_base.setdefault(base_of[r.name], {}).update(
                {str(k): float(v) for k, v in timings.items() if isinstance(v, (int, float))}
            )
        for base, tests in by_base.items():
            files: dict[str, float] = {}
            for nodeid, seconds in tests.items():
                file = nodeid.split("::", 1)[0]
                files[file] = files.get(file, 0.0) + seconds
            store.set(f"{DURATIONS_KEY}/{base}", {"files": files, "tests": tests})


KIND = TestsKind()
