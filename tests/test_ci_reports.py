"""Every finding reaches the reviewer: SARIF and GitLab Code Quality validated against their
schemas (vendored in tests/schemas), annotations ranked and capped end to end in a git
project with a base branch, the step summary, and a replayed pass that reports its findings
as the run that earned it did -- on local agents, without xdist and on xdist workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Project

from pytest_parex.findings import Finding, file_lines, fingerprints, of_gate
from pytest_parex.output import codequality, jsonreport, sarif
from pytest_parex.results import CheckResult, GateResult

jsonschema = pytest.importorskip("jsonschema")

SCHEMAS = Path(__file__).parent / "schemas"


def _schema(name: str) -> Any:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def validate_sarif(doc: Any) -> None:
    schema = _schema("sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)


def validate_codequality(doc: Any) -> None:
    documented = _schema("gitlab-codequality.schema.json")
    jsonschema.Draft202012Validator.check_schema(documented)
    jsonschema.Draft202012Validator(documented).validate(doc)
    gitlab = jsonschema.Draft7Validator(_schema("gitlab-codeclimate.json"))
    for entry in doc:  # GitLab validates entry by entry and stops at the first bad one
        gitlab.validate(entry)
    prints = [entry["fingerprint"] for entry in doc]
    assert len(set(prints)) == len(prints), "GitLab keeps one finding per fingerprint"


def test_the_schemas_refuse_what_they_should() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_sarif({"version": "2.1.0", "runs": [{"tool": {}}]})
    good = {
        "description": "d",
        "check_name": "c",
        "fingerprint": "f",
        "severity": "minor",
        "location": {"path": "a.py", "lines": {"begin": 1}},
    }
    validate_codequality([good])
    for bad in (
        {**good, "severity": "bad"},
        {**good, "location": {"path": "/abs.py", "lines": {"begin": 1}}},
        {**good, "location": {"path": "a.py"}},
        {k: v for k, v in good.items() if k != "check_name"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_codequality([bad])
    with pytest.raises(AssertionError):
        validate_codequality([good, good])


# --------------------------------------------------------------------------------------------
# the documents, from results


def _result(name: str, status: str = "failed", **figures: Any) -> CheckResult:
    return CheckResult(name, "a", status, 1.0, 1.0, 2.0, returncode=1, figures=figures)


ISSUES = [
    {
        "path": "src/a b.py",
        "line": 3,
        "column": 8,
        "end_line": 3,
        "end_column": 10,
        "code": "F401",
        "message": "`os` imported but unused",
        "severity": "error",
        "url": "https://docs.astral.sh/ruff/rules/unused-import",
    },
    {"path": "src/a b.py", "line": 9, "column": 1, "end_line": 12, "end_column": 3, "code": "C9"},
    {"path": "pkg/m.py", "code": "format", "message": "would reformat"},
    {"path": "/usr/lib/x.py", "line": 2, "message": "outside", "severity": "warning"},
    {"path": "", "message": "nowhere", "severity": "note"},
]


def _gate() -> GateResult:
    return GateResult(
        (
            _result("lint", tool="ruff-check", program="ruff", issues=ISSUES),
            _result("fmt", "passed", tool="ruff-format", program="ruff", issues=[]),
            _result("types", "passed", tool="mypy", program="mypy", issues=[]),
            _result("slow", "timeout", tool="pylint-ish", issues=[{"path": "a.py"}]),
            _result("tests", "passed", passed=3),
        ),
        1.0,
        False,
        "failed",
    )


def test_sarif_has_one_run_per_tool_with_rules_levels_and_places(tmp_path: Path) -> None:
    doc = sarif.document(_gate(), of_gate(_gate()), tmp_path, version="9.9")
    validate_sarif(doc)
    runs = {run["tool"]["driver"]["name"]: run for run in doc["runs"]}
    # ruff (check and format together), mypy with nothing found; the timed-out tool none.
    assert sorted(runs) == ["mypy", "ruff"]
    assert runs["mypy"]["results"] == []
    assert [i["properties"]["check"] for i in runs["ruff"]["invocations"]] == ["lint", "fmt"]
    assert runs["ruff"]["invocations"][0]["exitCode"] == 1
    ruff = runs["ruff"]
    assert [r["id"] for r in ruff["tool"]["driver"]["rules"]] == ["F401", "C9", "format", "ruff"]
    assert ruff["tool"]["driver"]["rules"][0]["helpUri"].endswith("/unused-import")
    first, multi, whole, outside, nowhere = ruff["results"]
    assert first["ruleIndex"] == 0 and first["level"] == "error"
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "src/a%20b.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 3, "startColumn": 8, "endLine": 3, "endColumn": 10},
    }
    assert multi["locations"][0]["physicalLocation"]["region"]["endLine"] == 12
    assert "region" not in whole["locations"][0]["physicalLocation"]
    assert outside["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "file:///usr/lib/x.py"
    }
    assert outside["level"] == "warning"
    assert nowhere["level"] == "note" and "locations" not in nowhere
    assert ruff["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"
    assert ruff["tool"]["extensions"][0] == {
        "name": "pytest-parex",
        "informationUri": "https://pypi.org/project/pytest-parex/",
        "version": "9.9",
    }


def test_code_quality_entries_are_complete_and_unique(tmp_path: Path) -> None:
    found = of_gate(_gate())
    prints = fingerprints(found, file_lines(tmp_path))
    doc, left = codequality.document(found, prints)
    validate_codequality(doc)
    assert left == 2  # outside the repository, and no file at all
    assert [e["location"] for e in doc] == [
        {
            "path": "src/a b.py",
            "positions": {"begin": {"line": 3, "column": 8}, "end": {"line": 3, "column": 10}},
        },
        {
            "path": "src/a b.py",
            "positions": {"begin": {"line": 9, "column": 1}, "end": {"line": 12, "column": 3}},
        },
        {"path": "pkg/m.py", "lines": {"begin": 1, "end": 1}},
    ]
    assert doc[0]["check_name"] == "ruff/F401"
    assert doc[0]["description"] == "F401 `os` imported but unused"
    assert [e["severity"] for e in doc] == ["major", "major", "major"]
    note = Finding("c", "t", "", "note", "a.py", 1, None, "n")
    assert codequality.issue(note, "x")["severity"] == "info"


# --------------------------------------------------------------------------------------------
# end to end

EMIT = """\
import sys
n, severity, code = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
letter = "E" if severity == "error" else "W"
for i in range(n):
    print(f"src/m{i % 7}.py:{i + 1}:1: {letter}{100 + i % 3} finding {i}")
sys.exit(code)
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def _review(script: str, n: int, severity: str, code: int, **extra: Any) -> dict[str, Any]:
    return {"kind": "review", "run": [sys.executable, script, str(n), severity, str(code)], **extra}


def _four_checks(project: Project) -> None:
    """200 findings over 4 review checks: lint and types fail, docs fails without blocking,
    style passes with warnings; each its own tool (a script whose name no module shadows)."""
    for script in ("lint-tool.py", "types-tool.py", "docs-tool.py", "style-tool.py"):
        (project.path / script).write_text(EMIT)
    src = project.path / "src"
    src.mkdir()
    for m in range(7):
        (src / f"m{m}.py").write_text("".join(f"value_{i} = {i}\n" for i in range(1, 101)))
    project.write(
        {
            "lint": _review("lint-tool.py", 80, "error", 1),
            "types": _review("types-tool.py", 60, "error", 1),
            "docs": _review("docs-tool.py", 30, "error", 1, blocking=False),
            "style": _review("style-tool.py", 30, "warning", 0),
        }
    )


def _github_env(monkeypatch: pytest.MonkeyPatch, project: Project, tmp_path: Path) -> Path:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(project.path))
    return summary


def test_200_findings_on_github_ranked_capped_and_in_every_report(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _four_checks(project)
    _git(project.path, "init", "-q", "-b", "main")
    _git(project.path, "add", ".")
    _git(project.path, "commit", "-qm", "base")
    _git(project.path, "checkout", "-qb", "feature")
    m3 = project.path / "src" / "m3.py"
    m3.write_text(m3.read_text().replace("value_53 = 53", "value_53 = 530"))
    _git(project.path, "commit", "-qam", "change line 53")
    summary = _github_env(monkeypatch, project, tmp_path)
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    args = ["--parex", "-p", "no:randomly", "--parex-json=gate.json"]
    args += ["--parex-sarif=out/parex.sarif", "--parex-codequality=gl-code-quality.json"]
    result = project.pytester.runpytest_subprocess(*args)
    assert result.ret == 1
    lines = result.outlines
    errors = [line for line in lines if line.startswith("::error")]
    warnings = [line for line in lines if line.startswith("::warning")]
    notices = [line for line in lines if line.startswith("::notice")]
    assert len(errors) == 10 and len(warnings) == 10 and len(notices) == 1
    # The failing checks' own lines first, in the gate's order...
    assert errors[0].startswith("::error title=parex%3A lint::lint failed: 80 issues")
    assert errors[1].startswith("::error title=parex%3A types::types failed: 60 issues")
    assert warnings[0].startswith("::warning title=parex%3A docs::docs failed: 30 issues")
    # ... then the findings on the line the branch changed (finding 52 of lint and types)...
    assert errors[2:4] == [
        "::error file=src/m3.py,line=53,col=1,title=parex%3A lint (E101)::finding 52",
        "::error file=src/m3.py,line=53,col=1,title=parex%3A types (E101)::finding 52",
    ]
    # ... then by file.
    assert errors[4] == "::error file=src/m0.py,line=1,col=1,title=parex%3A lint (E100)::finding 0"
    assert notices == [
        "::notice title=parex%3A more findings::183 findings (132 errors, 51 warnings) not "
        "annotated: GitHub shows at most 10 errors, 10 warnings and 10 notices per step and "
        "50 in a job; all of them are in the step summary, .parex/report.md, gate.json, "
        "out/parex.sarif, gl-code-quality.json"
    ]
    assert json.loads(next(tmp_path.glob("parex-annotations-*.json")).read_text()) == {"used": 21}

    # Every report holds every finding, and the counts agree with the summary's.
    report = project.json_report("gate.json")
    jsonschema.Draft202012Validator(jsonreport.schema()).validate(report)
    issue_counts = {c["name"]: c["figures"]["issue_count"] for c in report["checks"]}
    assert issue_counts == {"docs": 30, "lint": 80, "style": 30, "types": 60}
    details = {c["name"]: c["detail"] for c in report["checks"]}
    assert details["lint"] == "80 issues" and details["style"] == "30 issues"
    log = json.loads((project.path / "out" / "parex.sarif").read_text())
    validate_sarif(log)
    per_tool = {run["tool"]["driver"]["name"]: len(run["results"]) for run in log["runs"]}
    assert per_tool == {
        "docs-tool.py": 30,
        "lint-tool.py": 80,
        "style-tool.py": 30,
        "types-tool.py": 60,
    }
    quality = json.loads((project.path / "gl-code-quality.json").read_text())
    validate_codequality(quality)
    assert len(quality) == 200
    assert "parex: SARIF log: out/parex.sarif (200 results from 4 tools)" in result.stdout.str()
    text = summary.read_text()
    for name, n in issue_counts.items():
        assert f"({'passed' if name == 'style' else 'failed'}): {n} findings" in text
    assert text.count("| src/m") == 200
    full = (project.path / ".parex" / "report.md").read_text()
    assert full == text


def _run(project: Project, *extra: str) -> tuple[Any, Any, list[str], str]:
    for name in ("parex.sarif", "cq.json"):
        (project.path / name).unlink(missing_ok=True)
    result = project.pytester.runpytest_subprocess(
        "--parex",
        "-p",
        "no:randomly",
        "--parex-sarif=parex.sarif",
        "--parex-codequality=cq.json",
        *extra,
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    log = json.loads((project.path / "parex.sarif").read_text())
    validate_sarif(log)
    quality = json.loads((project.path / "cq.json").read_text())
    validate_codequality(quality)
    annotations = [line for line in result.outlines if line.startswith("::")]
    return log, quality, annotations, result.stdout.str()


def _results(log: Any) -> dict[str, Any]:
    return {
        run["tool"]["driver"]["name"]: (run["tool"]["driver"]["rules"], run["results"])
        for run in log["runs"]
    }


def test_a_replayed_pass_reports_its_findings_as_the_run_that_earned_it(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for script in ("style-tool.py", "hints-tool.py"):
        (project.path / script).write_text(EMIT)
    (project.path / "src").mkdir()
    for m in range(7):
        (project.path / "src" / f"m{m}.py").write_text("x = 1\n" * 40)
    reads = ["src/**", "*-tool.py"]  # not pytester's own files, new in every run
    project.write(
        {
            "style": _review("style-tool.py", 25, "warning", 0, reads=reads),
            "hints": _review("hints-tool.py", 12, "error", 0, agent="debugger", reads=reads),
        }
    )
    _github_env(monkeypatch, project, tmp_path)
    fresh = _run(project, "-p", "no:xdist")
    assert "cached" not in fresh[3]
    replayed = _run(project)
    assert "2 cached" in replayed[3]
    on_workers = _run(project, "--parex-no-cache", "-n", "2")
    assert "2 xdist workers" in on_workers[3]
    for other in (replayed, on_workers):
        assert _results(other[0]) == _results(fresh[0])
        assert other[1] == fresh[1]  # Code Quality: entries, fingerprints and all
        assert other[2] == fresh[2]  # the same annotations, in the same order
    assert sum(len(results) for _, results in _results(fresh[0]).values()) == 37
    assert [
        i["properties"]["cached"] for run in replayed[0]["runs"] for i in run["invocations"]
    ] == [True, True]
    # A passing check's errors are warnings in annotations, errors in SARIF (the tool's word).
    assert all(line.startswith(("::warning", "::notice")) for line in fresh[2])
    levels = {r["level"] for _, results in _results(fresh[0]).values() for r in results}
    assert levels == {"error", "warning"}


def _levels(result: pytest.RunResult) -> dict[str, int]:
    lines = result.outlines
    return {
        level: sum(line.startswith(f"::{level}") for line in lines)
        for level in ("error", "warning", "notice")
    }


def test_limits_from_the_command_line_the_environment_and_the_config(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _four_checks(project)
    text = (project.path / "pyproject.toml").read_text()
    (project.path / "pyproject.toml").write_text(
        text + "\n[tool.parex.annotations]\nerrors = 4\nnotices = 0\n"
    )
    _github_env(monkeypatch, project, tmp_path)
    run = project.pytester.runpytest_subprocess
    # The config's: 4 errors, 10 warnings, no notice (so no closing notice either).
    assert _levels(run("--parex", "-p", "no:randomly")) == {"error": 4, "warning": 10, "notice": 0}
    monkeypatch.setenv("PYTEST_PAREX_ANNOTATIONS", "warnings=2,notices=1")
    assert _levels(run("--parex", "-p", "no:randomly")) == {"error": 4, "warning": 2, "notice": 1}
    # The command line over the environment (the config's notices = 0 again); the job's
    # limit over the step's: the three failed checks' own lines, best ranked first.
    result = run("--parex", "-p", "no:randomly", "--parex-annotations=job=3")
    assert _levels(result) == {"error": 2, "warning": 1, "notice": 0}
    assert _levels(run("--parex", "-p", "no:randomly", "--parex-annotations=off")) == {
        "error": 0,
        "warning": 0,
        "notice": 0,
    }


def test_a_step_summary_that_would_pass_1_mib_is_cut_with_a_note(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _four_checks(project)
    summary = _github_env(monkeypatch, project, tmp_path)
    earlier = "x" * 99 + "\n"
    summary.write_text(earlier * 9_950)  # what earlier commands of the step wrote: 995,000 B
    result = project.pytester.runpytest_subprocess("--parex", "-p", "no:randomly")
    assert result.ret == 1
    data = summary.read_bytes()
    assert len(data) <= 1_000_000 < 1024 * 1024
    text = data.decode()
    assert text.startswith(earlier * 9_950 + "### parex: failed: lint failed, types failed\n")
    assert "the full report is .parex/report.md*" in text
    full = (project.path / ".parex" / "report.md").read_text()
    assert full.count("| src/m") == 200 and len(full) > 5_000
    result.stdout.fnmatch_lines(
        [
            "*parex: the step summary was shortened to *(GitHub drops one over 1 MiB); the full "
            "report is .parex/report.md*"
        ]
    )
    notice = next(line for line in result.outlines if line.startswith("::notice"))
    assert notice.endswith("all of them are in the step summary (shortened), .parex/report.md")


def test_a_step_summary_already_full_gets_nothing_appended(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project.write({"lint": _review("lint-tool.py", 3, "error", 1)})
    (project.path / "lint-tool.py").write_text(EMIT)
    summary = _github_env(monkeypatch, project, tmp_path)
    summary.write_bytes(b"y" * 999_500)
    result = project.pytester.runpytest_subprocess("--parex", "-p", "no:randomly")
    assert result.ret == 1
    assert summary.read_bytes() == b"y" * 999_500
    result.stdout.fnmatch_lines(
        [
            "parex: GITHUB_STEP_SUMMARY already holds 999,500 bytes; nothing appended (the report "
            "is .parex/report.md)"
        ]
    )
    assert (
        "| src/m0.py:1 | error | E100 | finding 0 |"
        in (project.path / ".parex" / "report.md").read_text()
    )
