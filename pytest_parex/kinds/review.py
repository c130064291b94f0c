"""``kind = "review"``: a linter or type checker. Its verdict is the tool's exit code; its
issues are parsed (:mod:`pytest_parex.kinds.reviewparse`: ruff's JSON, ruff format, mypy, or
``file:line: message``) into a count and the first issues, which explain the verdict."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_parex.files import relative_posix
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
SHOWN_ISSUES = 20
"""Issues listed in the failure report."""
PARSE_BYTES = 8 * 1024 * 1024
"""At most this much of a tool's output is parsed (its log keeps everything): the issues in
a result's figures -- every one of them, for annotations, SARIF and Code Quality -- are the
ones in that part."""
MYPY_CODE_URL = "https://mypy.rtfd.io/en/stable/_refs.html#code-{code}"
"""Where mypy itself sends its readers for an error code (its ``See ... for more info``)."""

PROGRAMS = {"ruff-check": "ruff", "ruff-format": "ruff", "mypy": "mypy"}
"""A parser's name -> the tool's."""
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
        text = read_head(log, PARSE_BYTES, inv.log_offset)
        missing = _missing_module(text)
        if code != 0 and missing:
            return Verdict(Status.ERROR, f"{missing} is not installed in this environment")
        tool = str(check.option("tool", ""))
        parser = PARSERS.get(tool, reviewparse.parse_generic)
        issues = parser(text, ctx.rootdir / check.cwd)
        counted = [
            _located(i, tool, ctx.rootdir, check.cwd) for i in issues if i.severity != "note"
        ]
        figures: dict[str, Any] = {
            "tool": tool or "generic",
            "program": _program(check, tool),
            "issue_count": len(counted),
            # Every issue, not the first few: annotations, SARIF and Code Quality report them
            # all, also when this pass is replayed from the result cache.
            "issues": [issue_dict(i) for i in counted],
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


def issue_dict(issue: reviewparse.Issue) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": issue.path,
        "line": issue.line,
        "column": issue.column,
        "code": issue.code,
        "message": issue.message,
        "severity": issue.severity,
    }
    # Only when known: a result's figures travel (xdist) and are stored (the result cache).
    if issue.end_line is not None:
        data["end_line"] = issue.end_line
    if issue.end_column is not None:
        data["end_column"] = issue.end_column
    if issue.url:
        data["url"] = issue.url
    return data


def _located(issue: reviewparse.Issue, tool: str, rootdir: Path, cwd: str) -> reviewparse.Issue:
    """``issue`` with its path relative to the rootdir (a tool in ``cwd = "src"`` names its
    files from there) and, for mypy, the documentation of its error code."""
    changes: dict[str, Any] = {}
    path = issue.path
    if path and (os.path.isabs(path) or cwd not in ("", ".")):
        moved = relative_posix(path if os.path.isabs(path) else rootdir / cwd / path, rootdir)
        if moved and moved != path:
            changes["path"] = moved
    if tool == "mypy" and issue.code and not issue.url:
        changes["url"] = MYPY_CODE_URL.format(code=issue.code)
    return replace(issue, **changes) if changes else issue


def _program(check: Check, tool: str) -> str:
    """The name people know the tool by: ``ruff`` for both ruff parsers, ``mypy`` (also when
    a shell line runs it), else the command's program (``flake8`` for ``python -m flake8
    src``) -- the tool a SARIF run is named after."""
    if tool in PROGRAMS:
        return PROGRAMS[tool]
    argv: list[str] = list(check.argv)
    if check.shell:
        try:
            argv = shlex.split(check.argv[0]) if check.argv else []
        except ValueError:
            return ""
    return reviewparse.program_name(argv)


def _missing_module(text: str) -> str:
    """``python -m TOOL`` for a tool that is not installed says so on its first lines."""
    marker = "No module named "
    for line in text.splitlines()[:5]:
        if marker in line:
            return line.split(marker, 1)[1].strip().strip("'\"")
    return ""


KIND = ReviewKind()
