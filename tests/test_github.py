"""GitHub Actions output (pure): escaping, groups, annotations ranked and capped to what GitHub
shows, the closing notice, the job's count across steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_parex.config import AnnotationLimits
from pytest_parex.findings import Finding, of_gate
from pytest_parex.output import github
from pytest_parex.repo import Changes
from pytest_parex.results import CheckResult, GateResult

ROOT = Path("/repo")


def _gate(*results: CheckResult) -> GateResult:
    return GateResult(results, 2.0, False, "failed: lint failed")


def _lines(gate: GateResult, changes: Changes | None = None, **limits: int) -> list[str]:
    results = {r.name: r for r in gate.results}
    candidates = github.check_annotations(gate, ROOT)
    candidates += github.finding_annotations(of_gate(gate), results, changes)
    return github.select(candidates, AnnotationLimits(**limits), where="the report").lines()


def test_escaping_follows_the_workflow_command_rules() -> None:
    assert github.escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert github.command("error", "x: y", title="parex: a,b", file=None) == (
        "::error title=parex%3A a%2Cb::x: y"
    )


def test_one_error_per_failed_check_with_its_tail_and_log() -> None:
    gate = _gate(
        CheckResult(
            "lint",
            "code-reviewer",
            "failed",
            1.0,
            1.0,
            2.0,
            detail="exit code 3",
            log_path="/repo/.parex/logs/lint.log",
            tail="\n".join(f"line {i}" for i in range(30)),
        ),
        CheckResult("ok", "test-runner", "passed", 1.0, 1.0, 2.0),
        CheckResult("docs", "debugger", "skipped", reason="needs lint, which failed"),
        CheckResult("style", "refactorer", "failed", 1.0, 1.0, 2.0, blocking=False),
    )
    lines = _lines(gate)
    assert len(lines) == 2
    error, warning = lines
    assert error.startswith("::error title=parex%3A lint::lint failed: exit code 3%0Aline 20%0A")
    assert error.endswith("line 29%0Afull log: .parex/logs/lint.log")
    assert "line 19" not in error
    assert warning.startswith("::warning title=parex%3A style::style failed")


def test_review_issues_become_file_and_line_annotations() -> None:
    issues: list[Any] = [
        {
            "path": "src/a.py",
            "line": 3,
            "column": 5,
            "code": "E501",
            "message": "line too long",
            "severity": "error",
        },
        {"path": "src/b,c.py", "line": None, "code": "", "message": "x", "severity": "warning"},
        {"path": "", "line": 7, "message": "no file", "severity": "note"},
        "not a dict",
        {"path": "src/d.py", "line": True, "message": "bool is no line", "severity": "odd"},
    ]
    gate = _gate(
        CheckResult("lint", "code-reviewer", "failed", 1.0, 1.0, 2.0, figures={"issues": issues})
    )
    lines = _lines(gate)
    assert lines[1:] == [
        "::error file=src/a.py,line=3,col=5,title=parex%3A lint (E501)::line too long",
        "::error file=src/d.py,title=parex%3A lint::bool is no line",
        "::warning file=src/b%2Cc.py,title=parex%3A lint::x",
        "::notice title=parex%3A lint::no file",
    ]


def _finding(**kw: Any) -> Finding:
    base: dict[str, Any] = {
        "check": "lint",
        "tool": "ruff",
        "rule": "E1",
        "level": "error",
        "path": "a.py",
        "line": 3,
        "column": 2,
        "message": "m",
    }
    return Finding(**{**base, **kw})


def test_spans_over_several_lines_keep_their_lines_but_no_columns() -> None:
    failing = {"lint": CheckResult("lint", "a", "failed", 1.0, 1.0, 2.0)}
    (multi,) = github.finding_annotations([_finding(end_line=5, end_column=4)], failing)
    assert multi.command() == "::error file=a.py,line=3,endLine=5,title=parex%3A lint (E1)::m"
    (single,) = github.finding_annotations([_finding(end_line=3, end_column=9)], failing)
    # GitHub's end column is the last one of the span; a finding's is the one after it.
    assert single.command() == (
        "::error file=a.py,line=3,col=2,endColumn=8,title=parex%3A lint (E1)::m"
    )
    (outside,) = github.finding_annotations([_finding(path="/usr/lib/x.py")], failing)
    assert outside.command() == "::error title=parex%3A lint (E1)::/usr/lib/x.py:3: m"


def test_errors_of_a_check_that_passed_or_does_not_block_are_warnings() -> None:
    results = {
        "passed": CheckResult("passed", "a", "passed", 1.0, 1.0, 2.0, cached=True),
        "minor": CheckResult("minor", "a", "failed", 1.0, 1.0, 2.0, blocking=False),
        "bad": CheckResult("bad", "a", "failed", 1.0, 1.0, 2.0),
    }
    found = [_finding(check=name) for name in results]
    levels = [a.level for a in github.finding_annotations(found, results)]
    assert levels == ["warning", "warning", "error"]


def _many() -> GateResult:
    """200 findings over 4 checks: two failing (errors), one failing without blocking, one
    that passed with warnings."""

    def issues(prefix: str, n: int, severity: str) -> list[dict[str, Any]]:
        return [
            {
                "path": f"{prefix}/m{i % 7}.py",
                "line": i + 1,
                "column": 1,
                "code": f"{prefix.upper()}{i % 3}",
                "message": f"{prefix} {i}",
                "severity": severity,
            }
            for i in range(n)
        ]

    return _gate(
        CheckResult(
            "lint", "a", "failed", 1, 1, 2, figures={"issues": issues("lint", 80, "error")}
        ),
        CheckResult(
            "types", "b", "failed", 1, 1, 2, figures={"issues": issues("types", 60, "error")}
        ),
        CheckResult(
            "docs",
            "c",
            "failed",
            1,
            1,
            2,
            blocking=False,
            figures={"issues": issues("docs", 30, "error")},
        ),
        CheckResult(
            "style", "d", "passed", 1, 1, 2, figures={"issues": issues("style", 30, "warning")}
        ),
    )


def test_200_findings_are_ranked_capped_and_closed_by_one_notice() -> None:
    gate = _many()
    assert len(of_gate(gate)) == 200
    changes = Changes({"types/m3.py": ((50, 60),), "style/m0.py": ((1, 1),)})
    lines = _lines(gate, changes)
    errors = [line for line in lines if line.startswith("::error")]
    warnings = [line for line in lines if line.startswith("::warning")]
    notices = [line for line in lines if line.startswith("::notice")]
    assert len(errors) == 10 and len(warnings) == 10 and len(notices) == 1
    assert len(lines) == 21
    # The failing checks' own lines first (the non-blocking one is a warning)...
    assert errors[0].startswith("::error title=parex%3A lint::lint failed")
    assert errors[1].startswith("::error title=parex%3A types::types failed")
    assert warnings[0].startswith("::warning title=parex%3A docs::docs failed")
    # ... then the findings on changed lines: types lines 50-60 of m3.py (i = 52 and 59)...
    assert errors[2:4] == [
        "::error file=types/m3.py,line=53,col=1,title=parex%3A types (TYPES1)::types 52",
        "::error file=types/m3.py,line=60,col=1,title=parex%3A types (TYPES2)::types 59",
    ]
    # ... and style's line 1 of m0.py (a warning: style passed)...
    assert warnings[1] == (
        "::warning file=style/m0.py,line=1,col=1,title=parex%3A style (STYLE0)::style 0"
    )
    # ... then by file.
    assert errors[4] == "::error file=lint/m0.py,line=1,col=1,title=parex%3A lint (LINT0)::lint 0"
    assert warnings[2].startswith("::warning file=docs/m0.py,line=1,")
    # 200 findings and 3 failed checks (142 errors, 61 warnings), 20 shown, one notice.
    assert notices == [
        "::notice title=parex%3A more findings::183 findings (132 errors, 51 warnings) "
        "not annotated: GitHub shows at most 10 errors, 10 warnings and 10 notices per step "
        "and 50 in a job; all of them are in the report"
    ]


def test_the_job_limit_spans_steps_and_leaves_room_for_the_notice(tmp_path: Path) -> None:
    environ = {"RUNNER_TEMP": str(tmp_path), "GITHUB_RUN_ID": "7", "GITHUB_JOB": "lint/x"}
    state = github.job_state(environ)
    assert state is not None and state.parent == tmp_path and "/" not in state.name
    assert github.job_used(state) == 0
    gate = _many()
    candidates = github.check_annotations(gate, ROOT) + github.finding_annotations(
        of_gate(gate), {r.name: r for r in gate.results}
    )
    spent = 0
    emitted = []
    for _step in range(4):
        used = github.job_used(state)
        chosen = github.select(candidates, AnnotationLimits(), used=used)
        assert github.record_job_used(state, used + chosen.emitted) is None
        emitted.append(chosen.emitted)
        spent += chosen.emitted
    # 21 + 21 fill 42 of 50; the third step gets 7 annotations and the notice; then none.
    assert emitted == [21, 21, 8, 0]
    assert spent == 50 == json.loads(state.read_text())["used"]
    assert github.job_state({}) is None and github.job_used(None) == 0
    state.write_text("{damaged")
    assert github.job_used(state) == 0


@pytest.mark.parametrize(
    ("limits", "shown", "notice"),
    [
        ({"errors": 0, "warnings": 0, "notices": 0, "job": 0}, 0, False),
        ({"errors": 2, "warnings": 1}, 3, True),
        ({"notices": 0}, 20, False),  # no room for the notice: none
        ({"job": 1}, 0, True),  # the one slot goes to the notice
    ],
)
def test_limits_are_configurable(limits: dict[str, int], shown: int, notice: bool) -> None:
    gate = _many()
    candidates = github.check_annotations(gate, ROOT) + github.finding_annotations(
        of_gate(gate), {r.name: r for r in gate.results}
    )
    chosen = github.select(candidates, AnnotationLimits(**limits))
    assert len(chosen.shown) == shown
    assert (chosen.notice is not None) is notice
    assert len(chosen.shown) + len(chosen.left_out) == 203


def test_nothing_left_out_means_no_notice() -> None:
    gate = _gate(CheckResult("lint", "a", "failed", 1.0, 1.0, 2.0, detail="exit code 1"))
    assert _lines(gate) == ["::error title=parex%3A lint::lint failed: exit code 1"]


def test_output_cannot_inject_workflow_commands() -> None:
    gate = _gate(
        CheckResult(
            "x",
            "a",
            "failed",
            1.0,
            1.0,
            2.0,
            tail="::endgroup::\n::error::forged\n\x1b]0;t\x07",
            figures={"issues": [{"path": "a\nb.py", "line": 1, "message": "::error::x\r\n"}]},
        )
    )
    lines = _lines(gate)
    # One line each: GitHub reads commands only at the start of a line.
    assert all("\n" not in line and "\r" not in line and "\x1b" not in line for line in lines)
    assert lines[0].startswith("::error title=parex%3A x::x failed%0A::endgroup::%0A")
    assert lines[1] == "::error file=a%0Ab.py,line=1,title=parex%3A x::::error::x\\x0d%0A"
    block = github.group("parex: x (failed)", "::endgroup::\nok\n::error::forged")
    assert block == (
        "::group::parex: x (failed)\n ::endgroup::\nok\n ::error::forged\n::endgroup::\n"
    )
