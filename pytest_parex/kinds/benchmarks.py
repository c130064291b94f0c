"""``kind = "benchmarks"``: pytest-benchmark in a child pytest, compared with a saved baseline
(:mod:`pytest_parex.kinds.benchcmp`).

pytest-benchmark disables itself under xdist, so the child never distributes (``-n 0``); and
benchmarks run alone by default (``exclusive``): parallel load turns their figures into noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_parex.files import write_atomic
from pytest_parex.kinds import benchcmp
from pytest_parex.kinds.base import Invocation, Key, RunContext, Verdict
from pytest_parex.kinds.pytestrun import ChildPytest, counts_verdict
from pytest_parex.results import Status

if TYPE_CHECKING:
    from pytest_parex.config import Check, Validator

DEFAULT_LIMIT = "mean:10%"


def _limit(v: Validator, where: str, key: str, value: object) -> str:
    text = v.string(where, key, value)
    try:
        benchcmp.parse_threshold(text)
    except ValueError as exc:
        raise v.error(
            where, f'{key} must look like "mean:10%", got {v.show(text)} ({exc})'
        ) from None
    return text


def _string(v: Validator, where: str, key: str, value: object) -> str:
    return v.string(where, key, value)


def _boolean(v: Validator, where: str, key: str, value: object) -> bool:
    return v.boolean(where, key, value)


class BenchmarksKind(ChildPytest):
    name = "benchmarks"
    agent = "test-runner"
    exclusive = True
    cacheable = False
    default_args = ("--benchmark-only",)
    keys = (
        Key("fail-if-slower", _limit),
        Key("baseline", _string),
        Key("save-baseline", _boolean),
    )

    def child_args(self, check: Check, ctx: RunContext, files: dict[str, Path]) -> list[str]:
        files["benchmark"] = ctx.state_dir / f"{check.file_name}.benchmark.json"
        return ["-n", "0", f"--benchmark-json={files['benchmark']}"]

    def interpret(
        self, check: Check, code: int | None, inv: Invocation, log: Path, ctx: RunContext
    ) -> Verdict:
        base = counts_verdict(code, inv.files.get("pytest"), log=log, rootdir=ctx.rootdir)
        path = inv.files["benchmark"]
        try:
            current = benchcmp.load_benchmarks(path)
        except (OSError, ValueError):
            current = {}
        figures: dict[str, Any] = dict(base.figures)
        figures["exclusive"] = check.exclusive
        if base.status is not Status.PASSED or not current:
            detail = base.detail if current else f"{base.detail}; no benchmark results".lstrip("; ")
            return Verdict(Status.FAILED, detail, figures)
        given = check.option("baseline", "")
        baseline = ctx.rootdir / (given or f".parex/benchmarks/{check.file_name}.json")
        limit = check.option("fail-if-slower", "")
        threshold = benchcmp.parse_threshold(limit or DEFAULT_LIMIT)
        if ctx.save_baseline or check.option("save-baseline", False):
            write_atomic(baseline, path.read_bytes())
            figures["baseline_saved"] = str(baseline)
            noun = "benchmark" if len(current) == 1 else "benchmarks"
            return Verdict(Status.PASSED, f"{len(current)} {noun}, baseline saved", figures)
        saved: dict[str, dict[str, float]] = {}
        if baseline.is_file():
            try:
                saved = benchcmp.load_benchmarks(baseline)
            except (OSError, ValueError):
                saved = {}
        comparison = benchcmp.compare(current, saved, threshold)
        figures["changes"] = comparison.changes
        figures["worst"] = list(comparison.worst) if comparison.worst else None
        detail = comparison.detail()
        if saved and not comparison.ok and limit:
            lines = [
                f"{comparison.label(name)}: {change:+.1f}% ({threshold.stat})"
                for name, change in comparison.regressions
            ]
            summary = f"slower than the baseline {baseline} by more than {threshold}:\n"
            return Verdict(Status.FAILED, detail, figures, summary + "\n".join(lines))
        return Verdict(Status.PASSED, detail, figures)


KIND = BenchmarksKind()
