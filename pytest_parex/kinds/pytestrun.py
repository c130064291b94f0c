"""What the kinds that run a child ``python -m pytest`` share: the command line, the child's
own report of counts and durations (:mod:`pytest_parex.child.report`), and what the counts
mean."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_parex import child
from pytest_parex.files import relative_posix
from pytest_parex.kinds.base import (
    Invocation,
    Kind,
    RunContext,
    Verdict,
    exit_phrase,
    load_json,
    read_head,
)
from pytest_parex.results import Status

if TYPE_CHECKING:
    from pytest_parex.config import Check, Validator

PYTEST_ORDER = ("failed", "passed", "skipped", "xfailed", "xpassed", "error")
"""The order of the counts in the detail phrase (pytest's own outcome words); the words
plugins add (``subtests passed``, ``rerun``) follow, alphabetically."""


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
        return counts_verdict(code, inv.files.get("pytest"), log=log, rootdir=ctx.rootdir)


RAN = ("passed", "failed", "xfailed", "xpassed", "error")
"""Outcomes of a test that ran (a skipped test did not)."""

HEAD_BYTES = 64 * 1024
"""How much of a child's output :func:`child_error` reads: pytest says why it could not start
in its first lines."""


def counts_verdict(
    code: int | None,
    report: Path | None,
    *,
    shard: bool = False,
    log: Path | None = None,
    rootdir: Path | None = None,
) -> Verdict:
    """The verdict of a child pytest from its exit code and its own counts.

    A run passes only when at least one test ran: ``--co``, a selection that keeps nothing
    or a suite whose every test is skipped proves nothing. ``shard``: one shard of a split
    suite, whose share may be empty (or all skipped) while the rest of the suite holds tests
    -- the other shards run them; a shard of an empty suite fails like an unsplit one, and so
    does one that ran none of its share (``--co``). A child that could not start (a conftest
    that fails to import, an unknown option) says why in ``log``."""
    data = load_json(report)
    counts = data.get("counts", {})
    counts = counts if isinstance(counts, dict) else {}
    words = [*PYTEST_ORDER, *sorted(k for k in counts if k not in PYTEST_ORDER)]
    parts = [
        f"{counts[k]} {k if k != 'error' or counts[k] == 1 else 'errors'}"
        for k in words
        if isinstance(k, str) and _number(counts.get(k))
    ]
    detail = ", ".join(parts)
    figures: dict[str, Any] = {"counts": counts}
    if isinstance(data.get("durations"), dict):
        figures["durations"] = data["durations"]
    if isinstance(data.get("tests"), list):
        figures["tests"] = [t[0] for t in data["tests"] if isinstance(t, list) and t]
    ran = sum(int(counts.get(k) or 0) for k in RAN)
    if code in (0, 5) and not ran:
        suite = _number(data.get("suite"))
        collected = _number(data.get("collected"))
        skipped = _number(counts.get("skipped"))
        if shard and suite > collected and skipped == collected:
            empty = f"no test ran in this shard, {suite - collected} in the others"
            return Verdict(Status.PASSED, f"{detail}; {empty}" if detail else empty, figures)
        if detail:  # every test skipped
            why = f"no test ran: {detail}"
        elif code == 0 and collected:  # --co: collected, none run
            why = f"no test ran ({collected} collected)"
        else:
            why = "no tests ran"
        return Verdict(Status.FAILED, why, figures)
    if code == 0:
        return Verdict(Status.PASSED, detail, figures)
    if detail:
        return Verdict(Status.FAILED, detail, figures)
    # No test outcome: pytest stopped before or instead of running tests, and says why.
    error = child_error(log, rootdir) if log is not None else ""
    fallback = f"pytest {exit_phrase(code)}" + ("" if data else ", no results")
    return Verdict(Status.FAILED, error or fallback, figures)


def _number(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_CONFTEST = re.compile(r"ImportError while loading conftest '(.+)'\.$")


def child_error(log: Path, rootdir: Path | None = None) -> str:
    """Why a child pytest stopped before its session (it wrote no results), in one line from
    its output: a conftest that does not import (``tests/conftest.py: ModuleNotFoundError:
    No module named 'hypothesis'``), a usage error (``unrecognized arguments: --bogus``), an
    internal error. "" when the output says nothing pytest would."""
    lines = read_head(log, HEAD_BYTES).splitlines()
    for i, line in enumerate(lines):
        found = _CONFTEST.match(line)
        if found:
            where = found.group(1)
            shown = relative_posix(where, rootdir) if rootdir is not None else None
            errors: list[str] = []
            for follow in lines[i + 1 :]:
                if follow.startswith("E "):
                    errors.append(follow[1:].strip())
                elif errors:
                    break
            return f"{shown or where}: {errors[-1] if errors else 'ImportError'}"
        if line.startswith("ERROR: usage:"):
            message = next((x for x in lines[i + 1 :] if ": error: " in x), "")
            return message.split(": error: ", 1)[1].strip() if message else "usage error"
        if line.startswith("ERROR: "):
            return line[len("ERROR: ") :].strip()
        if line.startswith("INTERNALERROR> "):
            internal = [x for x in lines[i:] if x.startswith("INTERNALERROR> ")]
            return f"internal error: {internal[-1][len('INTERNALERROR> ') :].strip()}"
    return ""
