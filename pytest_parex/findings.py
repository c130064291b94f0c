"""Findings (pure): what review tools reported, in one model for every report that shows them
-- GitHub annotations, the step summary, SARIF, GitLab Code Quality.

A kind reports findings as builtins in its result's figures (they cross from an xdist worker
and are stored with a pass in the result cache, so a replayed pass reports them as the run
that earned it did)::

    figures["tool"]    = "ruff-check" | "ruff-format" | "mypy" | "generic"  # the parser
    figures["program"] = "ruff" | "mypy" | "flake8" | ...  # the tool, as people name it
    figures["issues"]  = [{"path", "line", "column", "code", "message", "severity",
                           "end_line"?, "end_column"?, "url"?, "tool"?}, ...]

``path`` is relative to the rootdir (posix), ``code`` the tool's rule, ``severity`` one of
:data:`LEVELS`; a ``tool`` on an issue overrides the check's (a check that runs several tools,
as a pre-commit run does). Every field is read leniently: a finding is data from a tool, and a
damaged one is shown as well as it can be, never a crash.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_parex.files import relative_posix
from pytest_parex.results import CheckResult, GateResult, Status

LEVELS = ("error", "warning", "note")
COMPLETED = frozenset({Status.PASSED, Status.FLAKY, Status.FAILED})
"""Statuses whose findings are the tool's whole answer (it ran to its end)."""


@dataclass(frozen=True)
class Finding:
    """One finding of one check: a tool's rule, at a place, with a level and a message."""

    check: str
    tool: str
    rule: str
    """The tool's code for it (``F401``, ``arg-type``); "" when the tool names none."""
    level: str
    """``error``, ``warning`` or ``note``: the tool's own judgement."""
    path: str
    """Relative to the rootdir (or, after :func:`relocate`, to the repository), posix; "" when
    the finding has no file; absolute when the file is outside."""
    line: int | None
    column: int | None
    message: str
    end_line: int | None = None
    end_column: int | None = None
    """The column just after the span (SARIF's convention)."""
    url: str = ""
    """The rule's documentation."""

    @property
    def location(self) -> str:
        """``path:line``, ``path`` or ""."""
        if self.path and self.line is not None:
            return f"{self.path}:{self.line}"
        return self.path


def _positive(value: object) -> int | None:
    # bool is an int subclass: a JSON true is no line number.
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def tool_of(figures: Mapping[str, Any], check: str) -> str:
    """The tool a check's findings come from (one SARIF run per tool): its ``program``, else
    the parser that read it, else the check's own name."""
    tool = _text(figures.get("tool"))
    return _text(figures.get("program")) or (tool if tool != "generic" else "") or check


def reports_findings(result: CheckResult) -> bool:
    """Whether ``result`` is a tool's complete answer in findings: its kind parsed findings
    and the tool ran to its end (a timeout or an error found nothing, it did not look)."""
    figures = result.figures if isinstance(result.figures, Mapping) else {}
    return result.status in COMPLETED and isinstance(figures.get("issues"), (list, tuple))


def of_result(result: CheckResult) -> list[Finding]:
    """The findings in ``result``'s figures, in the tool's order."""
    if not reports_findings(result):
        return []
    figures = result.figures
    tool = tool_of(figures, result.name)
    found: list[Finding] = []
    for raw in figures["issues"]:
        if not isinstance(raw, Mapping):
            continue
        severity = _text(raw.get("severity")).lower()
        line = _positive(raw.get("line"))
        end_line = _positive(raw.get("end_line")) if line is not None else None
        if line is None or end_line is None or end_line < line:
            end_line = None
        column = _positive(raw.get("column")) if line is not None else None
        found.append(
            Finding(
                check=result.name,
                tool=_text(raw.get("tool")) or tool,
                rule=_text(raw.get("code")),
                level=severity if severity in LEVELS else "error",
                path=_text(raw.get("path")),
                line=line,
                column=column,
                message=_text(raw.get("message")) or _text(raw.get("code")) or "issue",
                end_line=end_line,
                end_column=_positive(raw.get("end_column")) if column is not None else None,
                url=_text(raw.get("url")),
            )
        )
    return found


def of_gate(gate: GateResult) -> list[Finding]:
    """Every finding of the gate, check by check in the summary's order."""
    return [finding for result in gate.results for finding in of_result(result)]


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    """``{"error": n, "warning": n, "note": n}``."""
    out = dict.fromkeys(LEVELS, 0)
    for finding in findings:
        out[finding.level] = out.get(finding.level, 0) + 1
    return out


def describe_counts(numbers: Mapping[str, int]) -> str:
    """``"250 errors, 9 warnings"`` (levels with none left out)."""
    parts = [f"{n} {level}{'s' if n != 1 else ''}" for level, n in numbers.items() if n]
    return ", ".join(parts) or "none"


def relocate(findings: Sequence[Finding], rootdir: Path, repository: Path) -> list[Finding]:
    """``findings`` with their paths relative to ``repository`` (where CI systems start
    paths) instead of the rootdir; a file outside it keeps its absolute path."""
    if rootdir == repository:
        return list(findings)
    moved: dict[str, str] = {}
    out: list[Finding] = []
    for finding in findings:
        path = finding.path
        if path and path not in moved:
            full = Path(path) if os.path.isabs(path) else rootdir / path
            moved[path] = relative_posix(full, repository) or full.as_posix()
        out.append(replace(finding, path=moved[path]) if path else finding)
    return out


def inside(path: str) -> bool:
    """Whether a relocated path names a file in the repository."""
    return bool(path) and not os.path.isabs(path) and not path.startswith("../")


LineReader = Callable[[str, int], str | None]


def file_lines(repository: Path) -> LineReader:
    """``(path, line) -> the line's text`` for files under ``repository``, each read once;
    None when it cannot be read."""
    cache: dict[str, list[str] | None] = {}

    def read(path: str, line: int) -> str | None:
        if path not in cache:
            try:
                data = (repository / path).read_bytes() if inside(path) else None
            except OSError:
                data = None
            cache[path] = data.decode("utf-8", "replace").splitlines() if data is not None else None
        lines = cache[path]
        if lines is None or not 0 < line <= len(lines):
            return None
        return lines[line - 1]

    return read


def fingerprints(findings: Sequence[Finding], read: LineReader) -> list[str]:
    """A stable fingerprint per finding: the same finding has the same one in the next run,
    also when lines above it moved it down -- the tool, rule, file, message and the text of
    its line (not its number), plus how many identical ones came before it. Unique within
    ``findings`` (GitLab keeps one finding per fingerprint)."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for finding in findings:
        text = None
        if finding.path and finding.line is not None:
            text = read(finding.path, finding.line)
        where = " ".join(text.split()) if text is not None else f"line {finding.line}"
        base = "\0".join((finding.tool, finding.rule, finding.path, where, finding.message))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(hashlib.sha256(f"{base}\0{n}".encode()).hexdigest()[:32])
    return out
