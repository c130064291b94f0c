"""``--parex-codequality PATH``: every finding of the gate as a GitLab Code Quality report
(pure) -- a JSON array of Code Climate issues, the subset GitLab reads: ``description``,
``check_name``, ``fingerprint``, ``severity``, ``location.path`` and ``location.lines.begin``
(or ``location.positions.begin.line``).

GitLab keeps one finding per fingerprint and stops reading the report at the first entry its
schema refuses, so every entry is complete and every fingerprint unique and stable across runs
(:func:`pytest_parex.findings.fingerprints`). A finding without a file in the repository has
nowhere to be shown in a merge request: it is left out, and counted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pytest_parex.findings import Finding, inside

SEVERITY = {"error": "major", "warning": "minor", "note": "info"}
"""A finding's level -> GitLab's severity (info, minor, major, critical, blocker)."""


def issue(finding: Finding, fingerprint: str) -> dict[str, Any]:
    """One Code Quality issue; ``finding``'s path is relative to the repository."""
    line = finding.line or 1
    location: dict[str, Any] = {"path": finding.path}
    if finding.column is not None:
        begin = {"line": line, "column": finding.column}
        end = {"line": finding.end_line or line}
        if finding.end_column is not None:
            end["column"] = finding.end_column
        location["positions"] = {"begin": begin, "end": end}
    else:
        location["lines"] = {"begin": line, "end": finding.end_line or line}
    rule = f"{finding.tool}/{finding.rule}" if finding.rule else finding.tool
    return {
        "type": "issue",
        "check_name": rule,
        "description": f"{finding.rule} {finding.message}" if finding.rule else finding.message,
        "severity": SEVERITY.get(finding.level, "major"),
        "fingerprint": fingerprint,
        "location": location,
        "engine_name": finding.tool,
    }


def document(found: Sequence[Finding], fingerprints: Sequence[str]) -> tuple[list[Any], int]:
    """The report, and how many findings it left out (no file in the repository)."""
    out = [
        issue(finding, fingerprint)
        for finding, fingerprint in zip(found, fingerprints, strict=True)
        if inside(finding.path)
    ]
    return out, len(found) - len(out)


def dumps(doc: Sequence[Any]) -> str:
    # One entry per line: json's C encoder (indenting is pure Python and ten times slower on
    # large reports), and still a report a person can read and diff.
    return "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in doc) + "\n]\n"
