"""GitHub Actions (pure): workflow commands for groups and annotations, and the Markdown table
for ``$GITHUB_STEP_SUMMARY``.

Every piece of check data is escaped by GitHub's rules (``%``, CR and LF in messages; also ``:``
and ``,`` in properties) after control characters are shown escaped, so a check's output can
never inject a workflow command of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pytest_parex.files import relative_posix
from pytest_parex.output.summary import totals_line
from pytest_parex.output.text import detail_of, rel, sanitize, seconds
from pytest_parex.results import BAD, CheckResult, GateResult, Status

MAX_ISSUE_ANNOTATIONS = 50
"""Per check; GitHub shows only the first few per step anyway."""
ANNOTATION_TAIL_LINES = 10
LEVELS = {"error": "error", "warning": "warning", "note": "notice", "notice": "notice"}


def active(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str = "", **properties: object) -> str:
    """``::name key=value,...::message``, with ``None`` properties left out."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def group(title: str, body: str) -> str:
    """``body`` as a collapsed group of the log. A line of ``body`` that looks like a workflow
    command is neutralised, or a check could close the group or annotate the run."""
    lines = [f" {line}" if line.startswith("::") else line for line in sanitize(body).splitlines()]
    return "\n".join([command("group", sanitize(title)), *lines, "::endgroup::"]) + "\n"


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _issues(result: CheckResult) -> list[Mapping[str, Any]]:
    raw = result.figures.get("issues") if isinstance(result.figures, Mapping) else None
    if not isinstance(raw, (list, tuple)):
        return []
    return [i for i in raw if isinstance(i, Mapping)]


def _workspace_path(path: str, root: Path, workspace: Path | None) -> str:
    """Issue paths are relative to the rootdir; GitHub wants them relative to the checkout."""
    full = Path(path) if os.path.isabs(path) else root / path
    if workspace is not None:
        try:
            return relative_posix(full, workspace) or path
        except OSError:
            pass
    return path


def annotation_lines(gate: GateResult, root: Path, workspace: Path | None = None) -> Iterator[str]:
    """One ``::error`` per failed check (``::warning`` when it is non-blocking), and one
    annotation per review issue (``file=``, ``line=``, ``col=``) of a failed check."""
    for result in gate.results:
        if result.status not in BAD:
            continue
        level = "error" if result.blocking else "warning"
        name = sanitize(result.name)
        head = f"{name} {result.status}"
        why = detail_of(result)
        if why:
            head += f": {why}"
        # What the kind made of the output (a review's first issues) says more than the tail.
        found = result.summary.rstrip("\n").splitlines()[:ANNOTATION_TAIL_LINES]
        tail = found or result.tail.rstrip("\n").splitlines()[-ANNOTATION_TAIL_LINES:]
        lines = [sanitize(head), *(sanitize(line) for line in tail)]
        if result.log_path:
            lines.append(f"full log: {rel(result.log_path, root)}")
        yield command(level, "\n".join(lines), title=f"parex: {name}")
        issues = _issues(result)
        for issue in issues[:MAX_ISSUE_ANNOTATIONS]:
            path = issue.get("path")
            severity = str(issue.get("severity", "error"))
            issue_level = LEVELS.get(severity, "error")
            if not result.blocking and issue_level == "error":
                issue_level = "warning"
            code = sanitize(str(issue.get("code") or ""))
            title = f"parex: {name}" + (f" ({code})" if code else "")
            yield command(
                issue_level,
                sanitize(str(issue.get("message") or code or "issue")),
                file=_workspace_path(sanitize(path), root, workspace)
                if isinstance(path, str) and path
                else None,
                line=_int(issue.get("line")) if path else None,
                col=_int(issue.get("column")) if path else None,
                title=title,
            )
        if len(issues) > MAX_ISSUE_ANNOTATIONS:
            more = len(issues) - MAX_ISSUE_ANNOTATIONS
            yield command(
                "notice",
                f"{more} more issues of {name} are in its log",
                title=f"parex: {name}",
            )


def md_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: one line, no column breaks, no HTML."""
    text = sanitize(text.replace("\r\n", "\n"))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def step_summary(gate: GateResult, root: Path) -> str:
    """The gate as Markdown: the verdict, a table of the checks, the totals."""
    mark = Status.PASSED if gate.verdict else Status.FAILED
    out = [
        f"### parex: {md_cell(gate.headline)}",
        "",
        "| check | agent | status | duration | detail |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for r in gate.results:
        detail = detail_of(r)
        if r.bad and r.log_path:
            detail = f"{detail} (log: {rel(r.log_path, root)})" if detail else rel(r.log_path, root)
        if not r.blocking:
            detail = f"{detail} [non-blocking]" if detail else "[non-blocking]"
        duration = seconds(r.duration) if r.measured else "-"
        cells = (r.name, r.agent, r.label, duration, detail)
        out.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    out += ["", md_cell(totals_line(gate)) + f"; verdict: **{mark}**", ""]
    return "\n".join(out) + "\n"
