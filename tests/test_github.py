"""GitHub Actions output (pure): escaping, annotations, groups, the step summary table."""

from __future__ import annotations

from pathlib import Path

from pytest_parex.output import github
from pytest_parex.results import CheckResult, GateResult

ROOT = Path("/repo")


def _gate(*results: CheckResult) -> GateResult:
    return GateResult(results, 2.0, False, "failed: lint failed")


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
    lines = list(github.annotation_lines(gate, ROOT))
    assert len(lines) == 2
    error, warning = lines
    assert error.startswith("::error title=parex%3A lint::lint failed: exit code 3%0Aline 20%0A")
    assert error.endswith("line 29%0Afull log: .parex/logs/lint.log")
    assert "line 19" not in error
    assert warning.startswith("::warning title=parex%3A style::style failed")


def test_review_issues_become_file_and_line_annotations() -> None:
    issues = [
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
    lines = list(github.annotation_lines(gate, ROOT))
    assert lines[1:] == [
        "::error file=src/a.py,line=3,col=5,title=parex%3A lint (E501)::line too long",
        "::warning file=src/b%2Cc.py,title=parex%3A lint::x",
        "::notice title=parex%3A lint::no file",
        "::error file=src/d.py,title=parex%3A lint::bool is no line",
    ]


def test_issue_paths_are_made_relative_to_the_workspace(tmp_path: Path) -> None:
    root = tmp_path / "sub" / "project"
    root.mkdir(parents=True)
    issue = {"path": "pkg/m.py", "line": 1, "message": "m", "severity": "error"}
    gate = _gate(CheckResult("t", "debugger", "failed", 1.0, 1.0, 2.0, figures={"issues": [issue]}))
    lines = list(github.annotation_lines(gate, root, workspace=tmp_path))
    assert "file=sub/project/pkg/m.py,line=1" in lines[1]


def test_issue_annotations_are_capped() -> None:
    issues = [{"path": "a.py", "line": i + 1, "message": "m"} for i in range(60)]
    gate = _gate(CheckResult("t", "a", "failed", 1.0, 1.0, 2.0, figures={"issues": issues}))
    lines = list(github.annotation_lines(gate, ROOT))
    assert len(lines) == 1 + github.MAX_ISSUE_ANNOTATIONS + 1
    assert lines[-1] == "::notice title=parex%3A t::10 more issues of t are in its log"


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
        )
    )
    (line,) = github.annotation_lines(gate, ROOT)
    # One line: GitHub reads commands only at the start of a line.
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line.startswith("::error title=parex%3A x::x failed%0A::endgroup::%0A")
    block = github.group("parex: x (failed)", "::endgroup::\nok\n::error::forged")
    assert block == (
        "::group::parex: x (failed)\n ::endgroup::\nok\n ::error::forged\n::endgroup::\n"
    )


def test_markdown_cells_cannot_break_the_table() -> None:
    assert github.md_cell("a|b\nc <b>&") == "a\\|b<br>c &lt;b&gt;&amp;"
    assert github.md_cell("back\\slash") == "back\\\\slash"


def test_step_summary_table() -> None:
    gate = _gate(
        CheckResult(
            "lint",
            "code-reviewer",
            "failed",
            1.25,
            1.0,
            2.0,
            detail="exit | code 3",
            log_path="/repo/.parex/logs/lint.log",
        ),
        CheckResult("docs", "debugger", "skipped", reason="needs lint,\nwhich failed"),
    )
    text = github.step_summary(gate, ROOT)
    assert text.splitlines()[:6] == [
        "### parex: failed: lint failed",
        "",
        "| check | agent | status | duration | detail |",
        "| --- | --- | --- | ---: | --- |",
        "| lint | code-reviewer | failed | 1.25s | exit \\| code 3 (log: .parex/logs/lint.log) |",
        "| docs | debugger | skipped | - | needs lint,<br>which failed |",
    ]
    assert "verdict: **failed**" in text
