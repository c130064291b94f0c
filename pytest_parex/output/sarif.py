"""``--parex-sarif PATH``: every finding of the gate as one SARIF 2.1.0 log (pure).

One run per tool (GitHub code scanning wants one run per tool and category), with the checks
that ran it as its invocations, its rules (with their documentation when the tool names it),
and a result per finding: rule, level, message and place, paths relative to the repository
root (``%SRCROOT%``). A tool that ran to its end and found nothing still has its run, with no
results: that is how code scanning learns its earlier alerts are fixed. A tool that did not
finish (timeout, error, cancelled) has no run -- it found nothing, it did not look.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytest_parex.findings import Finding, inside, reports_findings, tool_of
from pytest_parex.results import GateResult

VERSION = "2.1.0"
SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"


def _uri(path: str) -> tuple[str, str | None]:
    """A finding's path as an artifact location: relative to %SRCROOT%, or an absolute file
    URI for a file outside the repository."""
    if inside(path):
        return quote(path), SRCROOT
    return (Path(path).as_uri() if Path(path).is_absolute() else quote(path)), None


def _location(finding: Finding, uris: dict[str, tuple[str, str | None]]) -> list[dict[str, Any]]:
    if not finding.path:
        return []
    if finding.path not in uris:  # many findings share a file
        uris[finding.path] = _uri(finding.path)
    uri, base = uris[finding.path]
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if finding.line is not None:
        region: dict[str, Any] = {"startLine": finding.line}
        if finding.column is not None:
            region["startColumn"] = finding.column
        if finding.end_line is not None:
            region["endLine"] = finding.end_line
        if finding.end_column is not None and finding.column is not None:
            region["endColumn"] = finding.end_column
        physical["region"] = region
    return [{"physicalLocation": physical}]


def _rule_id(finding: Finding) -> str:
    # A tool without rule codes (a generic linter) still needs an id: code scanning groups
    # its alerts by rule.
    return finding.rule or finding.tool


def document(
    gate: GateResult,
    found: Sequence[Finding],
    repository: Path,
    *,
    version: str = "",
) -> dict[str, Any]:
    """The SARIF log of ``found`` (paths relative to ``repository``) for ``gate``."""
    tools: dict[str, list[Any]] = {}  # tool -> its checks' results
    for result in gate.results:
        if reports_findings(result):
            tools.setdefault(tool_of(result.figures, result.name), []).append(result)
    by_tool: dict[str, list[Finding]] = {}
    for finding in found:
        by_tool.setdefault(finding.tool, []).append(finding)
        tools.setdefault(finding.tool, [])
    runs = []
    for tool in sorted(tools):
        runs.append(_run(tool, tools[tool], by_tool.get(tool, []), repository, version))
    return {"$schema": SCHEMA, "version": VERSION, "runs": runs}


def _run(
    tool: str,
    results: Sequence[Any],
    found: Sequence[Finding],
    repository: Path,
    version: str,
) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    index: dict[str, int] = {}
    uris: dict[str, tuple[str, str | None]] = {}
    out = []
    for finding in found:
        rule_id = _rule_id(finding)
        if rule_id not in rules:
            rule: dict[str, Any] = {"id": rule_id}
            if finding.url:
                rule["helpUri"] = finding.url
            index[rule_id] = len(rules)
            rules[rule_id] = rule
        entry: dict[str, Any] = {
            "ruleId": rule_id,
            "ruleIndex": index[rule_id],
            "level": finding.level,
            "message": {"text": finding.message},
            "properties": {"check": finding.check},
        }
        locations = _location(finding, uris)
        if locations:
            entry["locations"] = locations
        out.append(entry)
    invocations = [
        {
            "executionSuccessful": True,
            **({"exitCode": r.returncode} if isinstance(r.returncode, int) else {}),
            "properties": {"check": r.name, "status": r.status.value, "cached": r.cached},
        }
        for r in results
    ]
    driver: dict[str, Any] = {"name": tool, "rules": list(rules.values())}
    return {
        "tool": {
            "driver": driver,
            "extensions": [
                {
                    "name": "pytest-parex",
                    "informationUri": "https://pypi.org/project/pytest-parex/",
                    **({"version": version} if version else {}),
                }
            ],
        },
        "invocations": invocations,
        "originalUriBaseIds": {SRCROOT: {"uri": repository.as_uri().rstrip("/") + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": out,
    }


def dumps(doc: Mapping[str, Any]) -> str:
    # Compact: json's indenting encoder is pure Python, ten times slower on a log of 20,000
    # results (3.5 s against 0.3 s), which tools read, not people.
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"
