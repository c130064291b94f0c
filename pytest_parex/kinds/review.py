"""``kind = "review"``: a linter or type checker. Its verdict is the tool's exit code; its
issues are parsed (:mod:`pytest_parex.kinds.reviewparse`: ruff's JSON, ruff format, mypy, or
``file:line: message``) into a count and the first issues, which explain the verdict."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_parex.kinds import reviewparse
from pytest_parex.kinds.base import (
    Invocation,
    Key,
    Kind,
    RunContext,
    Verdict,
    exit_phrase,
    read_head,
)
from pytest_parex.results import Status

if TYPE_CHECKING:
    from pytest_parex.config import Check, Validator

TOOLS: Mapping[str, tuple[str, ...]] = {
    "ruff": ("ruff", "check", "."),
    "ruff-format": ("ruff", "format", "--check", "."),
    "mypy": ("mypy", "."),
}
"""``tool = NAME``: the command it stands for."""
MAX_ISSUES = 200
"""Issues kept in a result's figures (the count is always exact)."""
SHOWN_ISSUES = 20
"""Issues listed in the failure report."""
PARSE_BYTES = 8 * 1024 * 1024
"""At most this much of a tool's output is parsed (its log keeps everything)."""

PARSERS = {
    "ruff-check": reviewparse.parse_ruff_json,
    "ruff-format": reviewparse.parse_ruff_format_check,
    "mypy": reviewparse.parse_mypy,
}


def _tool(v: Validator, where: str, key: str, value: object) -> str:
    name = v.string(where, key, value)
    if name not in TOOLS:
        known = ", ".join(f'"{t}"' for t in TOOLS)
        raise v.error(where, f"tool must be one of {known}, got {v.show(name)}")
    return name


class ReviewKind(Kind):
    name = "review"
    agent = "code-reviewer"
    keys = (Key("tool", _tool),)

    def resolve(
        self,
        v: Validator,
        where: str,
        argv: tuple[str, ...] | None,
        options: dict[str, Any],
        *,
        shell: bool,
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        named = options.get("tool")
        if argv is None:
            if named is None:
                raise v.error(where, 'needs a command: run = "..." or pytest = [...]')
            argv = TOOLS[named]
        if named is not None:
            # Which parser reads the output: "ruff" names the linter, ruff-check.
            tool = "ruff-check" if named == "ruff" else named
        else:
            tool = "" if shell else reviewparse.detect_tool(argv) or ""
        return argv, {**options, "tool": tool}

    def prepare(self, check: Check, ctx: RunContext, env: dict[str, str]) -> Invocation:
        argv = check.argv
        if not check.shell:
            argv = tuple(reviewparse.machine_readable_argv(list(argv)))
        return Invocation(argv, env, shell=check.shell)

    def interpret(
        self, check: Check, code: int | None, inv: Invocation, log: Path, ctx: RunContext
    ) -> Verdict:
        text = read_head(log, PARSE_BYTES)
        missing = _missing_module(text)
        if code != 0 and missing:
            return Verdict(Status.ERROR, f"{missing} is not installed in this environment")
        tool = str(check.option("tool", ""))
        parser = PARSERS.get(tool, reviewparse.parse_generic)
        issues = parser(text, ctx.rootdir)
        counted = [i for i in issues if i.severity != "note"]
        figures: dict[str, Any] = {
            "tool": tool or "generic",
            "issue_count": len(counted),
            "issues": [_issue_dict(i) for i in counted[:MAX_ISSUES]],
        }
        summary = ""
        if counted:
            shown = [i.format() for i in counted[:SHOWN_ISSUES]]
            more = len(counted) - len(shown)
            summary = "\n".join(shown + ([f"... and {more} more"] if more > 0 else []))
        # ruff's JSON is for us, not for people: its parsed issues are the report.
        quiet = bool(summary) and tool == "ruff-check"
        changed = check.option("changed-files")
        # --parex-changed gave it only the changed files: say how many.
        suffix = f" ({changed} changed file{'s' if changed != 1 else ''})" if changed else ""
        if code == 0:
            detail = reviewparse.summarize(counted) + suffix
            return Verdict(Status.PASSED, detail, figures, summary, quiet)
        detail = (reviewparse.summarize(counted) if counted else exit_phrase(code)) + suffix
        return Verdict(Status.FAILED, detail, figures, summary, quiet)


def _issue_dict(issue: reviewparse.Issue) -> dict[str, Any]:
    return {
        "path": issue.path,
        "line": issue.line,
        "column": issue.column,
        "code": issue.code,
        "message": issue.message,
        "severity": issue.severity,
    }


def _missing_module(text: str) -> str:
    """``python -m TOOL`` for a tool that is not installed says so on its first lines."""
    marker = "No module named "
    for line in text.splitlines()[:5]:
        if marker in line:
            return line.split(marker, 1)[1].strip().strip("'\"")
    return ""


KIND = ReviewKind()
