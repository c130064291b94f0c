"""End to end: reports for machines -- the JSON report against its schema (passing, failing and
interrupted runs), GitHub Actions output, JUnit XML properties, the timeline."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, wait_gone

from pytest_parex import files
from pytest_parex.output import jsonreport

NO_XDIST = ("-p", "no:xdist")
jsonschema = pytest.importorskip("jsonschema")


def validate(doc: Any) -> None:
    schema = jsonreport.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)


def test_schema_rejects_what_it_should() -> None:
    schema = jsonreport.schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 1}, schema)
    assert schema["properties"]["schema_version"]["const"] == jsonreport.SCHEMA_VERSION


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    files.write_atomic(target, "one")
    files.write_atomic(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_jsonable_has_no_nan() -> None:
    data = {"a": float("nan"), "b": [float("inf"), 1.5], "c": {1: Path("x")}}
    assert jsonreport.jsonable(data) == {"a": None, "b": [None, 1.5], "c": {"1": "x"}}


def test_passing_run_json_and_text_timeline(project: Project) -> None:
    project.write(
        {
            "build": {"agent": "feature-implementer", "run": project.rec("build", 0.4)},
            "test": {"agent": "test-runner", "run": project.rec("test", 0.3), "needs": ["build"]},
            "lint": {"agent": "code-reviewer", "run": project.rec("lint", 0.2)},
        }
    )
    result = project.pytester.runpytest_subprocess(
        "--parex", "--parex-json=out/report.json", "--parex-timeline"
    )
    assert result.ret == 0, result.stdout.str()
    doc = project.json_report("out/report.json")
    validate(doc)
    checks = {c["name"]: c for c in doc["checks"]}
    assert [c["name"] for c in doc["checks"]] == ["build", "lint", "test"]
    assert {c["status"] for c in checks.values()} == {"passed"}
    assert checks["test"]["start"] >= checks["build"]["end"]
    for check in checks.values():
        assert re.fullmatch(r"w\d+", check["worker"]), check["worker"]  # a local agent slot
        assert 0 <= check["start"] <= check["end"] <= doc["totals"]["wall"] + 0.01
        assert check["log"] == f".parex/logs/{check['name']}.log"
        assert check["attempts"] == 1 and check["kind"] == "command"
    totals = doc["totals"]
    assert totals["verdict"] == "passed" and totals["headline"] == "passed"
    assert totals["interrupted"] is False and totals["counts"]["passed"] == 3
    assert totals["sequential"] == pytest.approx(
        sum(c["duration"] for c in doc["checks"]), abs=1e-3
    )
    assert doc["timeline"]["critical_path"] == ["build", "test"]
    bars = [b for w in doc["timeline"]["workers"] for b in w["checks"]]
    assert sorted(b["name"] for b in bars if b["critical"]) == ["build", "test"]
    result.stdout.fnmatch_lines(
        [
            "*= parex =*",
            "parex: passed",
            "*= parex timeline =*",
            "wall *s on * workers; critical path build > test (*s), marked #",
            "w*|*#*|*",
            "*- parex: JSON report: out/report.json -*",
        ]
    )


def test_failing_run_json_and_svg_timeline(project: Project) -> None:
    project.write(
        {
            "lint": {"agent": "code-reviewer", "run": project.rec("lint", 0.1, code=2)},
            "docs": {"agent": "debugger", "run": project.rec("docs", 0.1), "needs": ["lint"]},
        }
    )
    result = project.pytester.runpytest_subprocess(
        "--parex", *NO_XDIST, "--parex-json", "report.json", "--parex-timeline=tl.svg"
    )
    assert result.ret == 1
    doc = project.json_report()
    validate(doc)
    lint, docs = sorted(doc["checks"], key=lambda c: c["name"] != "lint")
    assert (lint["status"], lint["returncode"], lint["detail"]) == ("failed", 2, "exit code 2")
    assert re.fullmatch(r"w\d+", lint["worker"])  # a local agent slot
    assert (docs["status"], docs["start"], docs["worker"]) == ("skipped", None, None)
    assert docs["reason"] == "needs lint, which failed"
    assert doc["totals"]["verdict"] == "failed"
    assert doc["totals"]["headline"] == "failed: lint failed"
    assert doc["timeline"]["not_run"] == [{"name": "docs", "status": "skipped"}]
    svg = (project.path / "tl.svg").read_text()
    root = ET.fromstring(svg)
    assert [r.get("data-check") for r in root.iter("{http://www.w3.org/2000/svg}rect")] == ["lint"]
    result.stdout.fnmatch_lines(["*- parex: timeline: tl.svg -*"])
    result.stdout.no_fnmatch_line("*= parex timeline =*")


def test_interrupted_run_still_writes_the_json(project: Project) -> None:
    project.write(
        {
            "s1": {"agent": "code-reviewer", "run": project.rec("s1", 60)},
            "s2": {"agent": "test-runner", "run": project.rec("s2", 60)},
            "quick": {"agent": "debugger", "run": project.rec("quick", 0.1)},
        }
    )
    args = ["--parex", "-p", "no:cacheprovider", "--parex-json=r.json"]
    code, text = project.interrupt(args, ["s1", "s2"])
    assert code == 2, text
    doc = project.json_report("r.json")
    validate(doc)
    assert doc["totals"]["interrupted"] is True
    assert doc["totals"]["headline"] == "interrupted"
    statuses = {c["name"]: c["status"] for c in doc["checks"]}
    assert statuses["s1"] == statuses["s2"] == "cancelled"
    assert not list(project.path.glob(".r.json.*"))
    assert wait_gone(project.token, timeout=5) == []


REVIEW = (
    "import sys; print('src/app.py:12:5: E501 line too long'); "
    "print('src/app.py:40: W291 trailing, spaces'); sys.exit(1)"
)


def test_github_actions_groups_annotations_summary_and_junit(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(project.path))
    project.write(
        {
            "lint": {"kind": "review", "run": [sys.executable, "-c", REVIEW]},
            "tests": {"agent": "test-runner", "run": project.rec("tests", 0.2)},
            "docs": {"agent": "debugger", "run": project.rec("docs", 0.1), "needs": ["lint"]},
        }
    )
    result = project.pytester.runpytest_subprocess(
        "--parex", "--parex-show-output", "--junitxml=junit.xml"
    )
    assert result.ret == 1
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*= parex output =*",
            "::group::parex: lint (failed)",
            "check lint failed: *",
            "::endgroup::",
            "::group::parex: tests (passed)",
            "check tests passed",
            "*tests starting*",
            "::endgroup::",
        ]
    )
    assert "::group::parex: docs" not in out  # never ran, no output
    # One annotation for the check (what the review found, then the log), one per issue.
    assert (
        "::error title=parex%3A lint::lint failed: 2 issues (1 error, 1 warning)"
        "%0Asrc/app.py:12: E501 line too long%0Asrc/app.py:40: W291 trailing, spaces"
        "%0Afull log: .parex/logs/lint.log\n"
    ) in out
    assert "::error file=src/app.py,line=12,col=5,title=parex%3A lint (E501)::line too long" in out
    assert "::warning file=src/app.py,line=40,title=parex%3A lint (W291)::trailing, spaces" in out
    assert "::error title=parex%3A tests" not in out
    text = summary.read_text()
    assert text.startswith("earlier step\n### parex: failed: lint failed\n")
    assert "| check | agent | status | duration | detail |" in text
    assert "| docs | debugger | skipped | - | needs lint, which failed |" in text
    assert "| tests | test-runner | passed |" in text

    cases = {
        c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}
        for c in ET.parse(project.path / "junit.xml").getroot().iter("testcase")
    }
    assert sorted(cases) == ["docs", "lint", "tests"]
    assert cases["tests"]["parex_status"] == "passed"
    assert cases["tests"]["parex_agent"] == "test-runner"
    assert float(cases["tests"]["parex_duration"] or 0) >= 0.2
    assert cases["tests"]["parex_attempts"] == "1"
    assert cases["lint"]["parex_status"] == "failed"
    assert cases["lint"]["parex_detail"] == "2 issues (1 error, 1 warning)"
    assert cases["docs"]["parex_status"] == "skipped"


def test_timeline_path_must_be_svg_or_html(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--parex", "--parex-timeline=out.png")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--parex-timeline: expected a file name ending in .svg or .html*"]
    )
