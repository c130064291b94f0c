"""What the kinds that run a child ``python -m pytest`` share: the command line, the child's
own report of counts and durations (:mod:`pytest_parex.child.report`), and what the counts
mean."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_parex import child
from pytest_parex.kinds.base import (
    Invocation,
    Kind,
    RunContext,
    Verdict,
    exit_phrase,
    load_json,
)
from pytest_parex.results import Status

if TYPE_CHECKING:
    from pytest_parex.config import Check, Validator

PYTEST_ORDER = ("failed", "passed", "skipped", "xfailed", "xpassed", "error")
"""The order of the counts in the detail phrase (pytest's own outcome words)."""


class ChildPytest(Kind):
    """A kind whose command is ``python -m pytest ARGS`` (``pytest = [...]`` gives ARGS)."""

    runs_pytest = True
    default_args: ClassVar[tuple[str, ...]] = ()
    """The child's arguments when the check gives no ``pytest`` key."""

    def resolve(
        self,
        v: Validator,
        where: str,
        argv: tuple[str, ...] | None,
        options: dict[str, Any],
        *,
        shell: bool,
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        return (self.default_args if argv is None else argv), options

    def prepare(self, check: Check, ctx: RunContext, env: dict[str, str]) -> Invocation:
        files = {"pytest": ctx.state_dir / f"{check.file_name}.pytest.json"}
        env[child.REPORT_ENV] = str(files["pytest"])
        argv = [sys.executable, "-m", "pytest", *check.argv]
        argv += self.child_args(check, ctx, files)
        argv += ["-p", child.REPORT_PLUGIN]
        return Invocation(tuple(argv), env, files=files)

    def child_args(self, check: Check, ctx: RunContext, files: dict[str, Path]) -> list[str]:
        """Extra arguments for the child (plugins, report files); may add to ``files``."""
        return []

    def interpret(
        self, check: Check, code: int | None, inv: Invocation, log: Path, ctx: RunContext
    ) -> Verdict:
        return counts_verdict(code, inv.files.get("pytest"))


def counts_verdict(code: int | None, report: Path | None, *, empty_ok: bool = False) -> Verdict:
    """The verdict of a child pytest from its exit code and its own counts; ``empty_ok``: "no
    tests ran" (exit code 5) passes."""
    data = load_json(report)
    counts = data.get("counts", {})
    counts = counts if isinstance(counts, dict) else {}
    parts = [
        f"{counts[k]} {k if k != 'error' or counts[k] == 1 else 'errors'}"
        for k in PYTEST_ORDER
        if counts.get(k)
    ]
    detail = ", ".join(parts)
    figures: dict[str, Any] = {"counts": counts}
    if isinstance(data.get("durations"), dict):
        figures["durations"] = data["durations"]
    if isinstance(data.get("tests"), list):
        figures["tests"] = [t[0] for t in data["tests"] if isinstance(t, list) and t]
    if code == 0:
        return Verdict(Status.PASSED, detail or "no tests", figures)
    if code == 5:
        if empty_ok:
            # More shards than test files: an empty shard has nothing to fail.
            return Verdict(Status.PASSED, "no tests in this shard", figures)
        return Verdict(Status.FAILED, "no tests ran", figures)
    if not data:
        return Verdict(Status.FAILED, f"pytest {exit_phrase(code)}, no results", figures)
    return Verdict(Status.FAILED, detail or f"pytest {exit_phrase(code)}", figures)
