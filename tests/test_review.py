"""Tests for pytest_parex.kinds.review: parsing review-tool output into issues."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_parex.kinds.reviewparse import (
    Issue,
    detect_tool,
    machine_readable_argv,
    parse_generic,
    parse_mypy,
    parse_ruff_format_check,
    parse_ruff_json,
    summarize,
)


def _ruff_entry(
    filename: str, row: int, column: int, code: str | None, message: str
) -> dict[str, object]:
    """One diagnostic as ``ruff check --output-format=json`` writes it (trimmed)."""
    return {
        "cell": None,
        "code": code,
        "end_location": {"column": column + 1, "row": row},
        "filename": filename,
        "fix": None,
        "location": {"column": column, "row": row},
        "message": message,
        "noqa_row": row,
        "url": None,
    }


# --- Issue.format ---------------------------------------------------------------------


def test_format_full() -> None:
    issue = Issue("src/a.py", 3, 7, "F401", "`os` imported but unused", "error")
    assert issue.format() == "src/a.py:3: F401 `os` imported but unused"


def test_format_without_line_or_code() -> None:
    assert Issue("a.py", None, None, "format", "would reformat", "error").format() == (
        "a.py: format would reformat"
    )
    assert Issue("a.py", 2, None, "", "bad thing", "error").format() == "a.py:2: bad thing"
    assert Issue("", None, None, "X1", "global", "error").format() == "X1 global"


# --- ruff check -----------------------------------------------------------------------


def test_parse_ruff_json_relative_to_root(tmp_path: Path) -> None:
    unused = _ruff_entry(str(tmp_path / "pkg" / "m.py"), 1, 8, "F401", "`os` imported but unused")
    unused["url"] = "https://docs.astral.sh/ruff/rules/unused-import"
    text = json.dumps(
        [unused, _ruff_entry("/elsewhere/x.py", 4, 1, "E501", "Line too long (120 > 100)")]
    )
    issues = parse_ruff_json(text, root=tmp_path)
    assert issues == [
        Issue(
            "pkg/m.py",
            1,
            8,
            "F401",
            "`os` imported but unused",
            "error",
            end_line=1,
            end_column=9,
            url="https://docs.astral.sh/ruff/rules/unused-import",
        ),
        Issue("/elsewhere/x.py", 4, 1, "E501", "Line too long (120 > 100)", "error", 4, 2),
    ]


def test_parse_ruff_json_without_root_keeps_paths() -> None:
    text = json.dumps([_ruff_entry("/abs/m.py", 2, 1, "F821", "Undefined name `x`")])
    assert [issue.path for issue in parse_ruff_json(text)] == ["/abs/m.py"]


def test_parse_ruff_json_null_code_is_syntax_error() -> None:
    text = json.dumps([_ruff_entry("a.py", 5, 7, None, "Expected an expression")])
    (issue,) = parse_ruff_json(text)
    assert issue.code == "invalid-syntax"
    assert issue.format() == "a.py:5: invalid-syntax Expected an expression"


def test_parse_ruff_json_empty_and_noise() -> None:
    assert parse_ruff_json("[]") == []
    assert parse_ruff_json("") == []
    # A warning printed before the JSON (stderr merged into stdout) is skipped.
    text = "warning: something about the config\n" + json.dumps(
        [_ruff_entry("a.py", 1, 1, "F401", "unused")]
    )
    assert [issue.code for issue in parse_ruff_json(text)] == ["F401"]


def test_parse_ruff_json_lines() -> None:
    text = "\n".join(
        json.dumps(_ruff_entry("a.py", row, 1, "E711", "Comparison to `None`")) for row in (1, 9)
    )
    assert [issue.line for issue in parse_ruff_json(text)] == [1, 9]


def test_parse_ruff_falls_back_to_concise_text() -> None:
    text = (
        "m.py:1:8: F401 [*] `os` imported but unused\n"
        "bad.py:5:7: invalid-syntax: Expected a parameter\n"
        "Found 2 errors.\n"
        "[*] 1 fixable with the `--fix` option.\n"
    )
    assert parse_ruff_json(text) == [
        Issue("m.py", 1, 8, "F401", "`os` imported but unused", "error"),
        Issue("bad.py", 5, 7, "invalid-syntax", "Expected a parameter", "error"),
    ]


def test_parse_ruff_falls_back_to_full_text() -> None:
    text = (
        "F401 [*] `os` imported but unused\n"
        " --> m.py:1:8\n"
        "  |\n"
        "1 | import os\n"
        "  |        ^^\n"
        "help: Remove unused import: `os`\n"
        "\n"
        "F821 Undefined name `reveal_type`\n"
        " --> m.py:3:1\n"
        "  |\n"
        "Found 2 errors.\n"
    )
    assert parse_ruff_json(text) == [
        Issue("m.py", 1, 8, "F401", "`os` imported but unused", "error"),
        Issue("m.py", 3, 1, "F821", "Undefined name `reveal_type`", "error"),
    ]


# --- ruff format --check --------------------------------------------------------------


def test_parse_ruff_format_check_classic() -> None:
    text = "Would reformat: src/a.py\nWould reformat: tests/b.py\n2 files would be reformatted\n"
    assert parse_ruff_format_check(text) == [
        Issue("src/a.py", None, None, "format", "would reformat", "error"),
        Issue("tests/b.py", None, None, "format", "would reformat", "error"),
    ]


def test_parse_ruff_format_check_clean() -> None:
    assert parse_ruff_format_check("3 files already formatted\n") == []


def test_parse_ruff_format_check_diagnostic_format() -> None:
    # ruff >= 0.12-ish prints format problems as diagnostics.
    text = (
        "unformatted: File would be reformatted\n"
        " --> m.py:2:1\n"
        "  |\n"
        "1 | import os\n"
        "2 +\n"
        "  |\n"
        "\n"
        "1 file would be reformatted\n"
    )
    assert parse_ruff_format_check(text) == [
        Issue("m.py", None, None, "format", "would reformat", "error")
    ]


def test_parse_ruff_format_check_json(tmp_path: Path) -> None:
    entry = _ruff_entry(str(tmp_path / "m.py"), 2, 1, "unformatted", "File would be reformatted")
    issues = parse_ruff_format_check(json.dumps([entry]), root=tmp_path)
    assert issues == [Issue("m.py", None, None, "format", "would reformat", "error")]


# --- mypy -----------------------------------------------------------------------------

MYPY_TEXT = """\
src/m.py:2: error: Incompatible types in assignment (expression has type "str", \
variable has type "int")  [assignment]
src/m.py:3:13: note: Revealed type is "builtins.int"
src/n.py:10:5: error: Name "x" is not defined  [name-defined]
src/o.py: error: Cannot read file: No such file or directory
Found 3 errors in 3 files (checked 3 source files)
"""


def test_parse_mypy_lines() -> None:
    issues = parse_mypy(MYPY_TEXT)
    assert issues == [
        Issue(
            "src/m.py",
            2,
            None,
            "assignment",
            'Incompatible types in assignment (expression has type "str", variable has type "int")',
            "error",
        ),
        Issue("src/m.py", 3, 13, "", 'Revealed type is "builtins.int"', "note"),
        Issue("src/n.py", 10, 5, "name-defined", 'Name "x" is not defined', "error"),
        Issue("src/o.py", None, None, "", "Cannot read file: No such file or directory", "error"),
    ]
    assert summarize(issues) == "3 issues"


def test_parse_mypy_error_end_and_windows_path() -> None:
    text = "C:\\src\\m.py:2:10:2:12: error: Bad  [misc]\n"
    # mypy's end column is the span's last character; the issue's is just after it.
    assert parse_mypy(text) == [Issue("C:\\src\\m.py", 2, 10, "misc", "Bad", "error", 2, 13)]


def test_parse_mypy_pretty_wraps_messages() -> None:
    text = (
        "p.py:2: error: Name\n"
        '"some_function_with_a_long_name"\n'
        "is not defined  [name-defined]\n"
        "        return some_function_with_a_long_name(x)\n"
        "               ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
        "Found 1 error in 1 file (checked 1 source file)\n"
    )
    assert parse_mypy(text) == [
        Issue(
            "p.py",
            2,
            None,
            "name-defined",
            'Name "some_function_with_a_long_name" is not defined',
            "error",
        )
    ]


def test_parse_mypy_json_lines() -> None:
    lines = [
        {
            "file": "m.py",
            "line": 2,
            "column": 9,
            "message": "Incompatible types",
            "hint": None,
            "code": "assignment",
            "severity": "error",
        },
        {
            "file": "m.py",
            "line": 3,
            "column": 12,
            "message": "Revealed type",
            "hint": None,
            "code": "misc",
            "severity": "note",
        },
    ]
    issues = parse_mypy("\n".join(json.dumps(line) for line in lines))
    # JSON columns are 0-based; they are reported 1-based like the text format.
    assert issues == [
        Issue("m.py", 2, 10, "assignment", "Incompatible types", "error"),
        Issue("m.py", 3, 13, "misc", "Revealed type", "note"),
    ]
    assert summarize(issues) == "1 issue"


def test_parse_mypy_success() -> None:
    assert parse_mypy("Success: no issues found in 12 source files\n") == []


# --- generic --------------------------------------------------------------------------


def test_parse_generic_flake8_and_pylint() -> None:
    text = (
        "a.py:1:1: F401 'os' imported but unused\n"
        "a.py:7:80: W291 trailing whitespace\n"
        "b.py:12:0: W0611: Unused import sys (unused-import)\n"
        "c.c:4: warning: implicit declaration\n"
        "c.c:9: something odd\n"
        "    indented:1: not a location\n"
        "Your code has been rated at 9.00/10\n"
    )
    assert parse_generic(text) == [
        Issue("a.py", 1, 1, "F401", "'os' imported but unused", "error"),
        Issue("a.py", 7, 80, "W291", "trailing whitespace", "warning"),
        Issue("b.py", 12, 0, "W0611", "Unused import sys (unused-import)", "warning"),
        Issue("c.c", 4, None, "", "implicit declaration", "warning"),
        Issue("c.c", 9, None, "", "something odd", "error"),
    ]


# --- summarize ------------------------------------------------------------------------


def _issue(severity: str) -> Issue:
    return Issue("a.py", 1, None, "X", "m", severity)


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        ([], "no issues"),
        (["note", "note"], "no issues"),
        (["error"], "1 issue"),
        (["warning", "note"], "1 issue"),
        (["error", "error"], "2 issues"),
        (["error", "error", "warning", "note"], "3 issues (2 errors, 1 warning)"),
        (["warning", "warning", "error"], "3 issues (1 error, 2 warnings)"),
    ],
)
def test_summarize(severities: list[str], expected: str) -> None:
    assert summarize([_issue(severity) for severity in severities]) == expected


# --- command lines --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "tool"),
    [
        (["ruff", "check", "."], "ruff-check"),
        (["ruff", "format", "--check", "src"], "ruff-format"),
        (["/path/to/ruff", "format", "--check"], "ruff-format"),
        (["ruff", "--config", "x.toml", "check"], "ruff-check"),
        (["python", "-m", "mypy", "src"], "mypy"),
        (["/venv/bin/python3.11", "-m", "ruff", "check"], "ruff-check"),
        (["mypy"], "mypy"),
        (["C:\\tools\\mypy.exe", "pkg"], "mypy"),
        (["uv", "run", "ruff", "check"], "ruff-check"),
        (["ruff", "version"], None),
        (["python", "-m", "pytest"], None),
        (["tox", "-e", "mypy"], None),
        (["flake8", "src"], None),
        ([], None),
    ],
)
def test_detect_tool(argv: list[str], tool: str | None) -> None:
    assert detect_tool(argv) == tool


def test_machine_readable_ruff_check_adds_json() -> None:
    argv = ["ruff", "check", "src", "--", "-odd-file.py"]
    result = machine_readable_argv(argv)
    assert result == ["ruff", "check", "--output-format=json", "src", "--", "-odd-file.py"]
    assert argv == ["ruff", "check", "src", "--", "-odd-file.py"]  # not modified in place


@pytest.mark.parametrize(
    "argv",
    [
        ["ruff", "check", "--output-format", "concise", "."],
        ["ruff", "check", "--output-format=github", "."],
        ["ruff", "check", "--statistics", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "src"],
        ["python", "-m", "mypy", "--pretty", "src"],
        ["flake8"],
    ],
)
def test_machine_readable_leaves_others(argv: list[str]) -> None:
    assert machine_readable_argv(argv) == argv


# --- the review kind's verdict --------------------------------------------------------


def _interpret(tmp_path: Path, output: str, code: int = 1, **check: Any) -> Any:
    from pytest_parex.config import Check
    from pytest_parex.kinds.base import Invocation, RunContext
    from pytest_parex.kinds.review import KIND

    log = tmp_path / "out.log"
    log.write_text(output)
    ctx = RunContext(rootdir=tmp_path, log_dir=tmp_path, state_dir=tmp_path, config_path="p")
    parsed = Check(name="lint", agent="code-reviewer", kind="review", **check)
    return KIND.interpret(parsed, code, Invocation(parsed.argv, {}), log, ctx)


def test_every_issue_is_kept_in_the_figures(tmp_path: Path) -> None:
    output = "".join(f"src/m.py:{i}:1: E{i} message {i}\n" for i in range(1, 301))
    verdict = _interpret(tmp_path, output, argv=("python", "-m", "flake8", "src"))
    assert verdict.detail == "300 issues"
    assert verdict.figures["issue_count"] == len(verdict.figures["issues"]) == 300
    assert verdict.figures["tool"] == "generic"
    assert verdict.figures["program"] == "flake8"
    assert verdict.summary.endswith("... and 280 more")


def test_issue_paths_are_relative_to_the_rootdir_for_a_check_with_cwd(tmp_path: Path) -> None:
    output = f"m.py:3: E1 x\n{tmp_path}/src/n.py:4: E2 y\n/elsewhere/o.py:5: E3 z\n"
    verdict = _interpret(tmp_path, output, argv=("flake8", "."), cwd="src")
    assert [i["path"] for i in verdict.figures["issues"]] == [
        "src/m.py",
        "src/n.py",
        "/elsewhere/o.py",
    ]


def test_mypy_issues_name_the_documentation_of_their_code(tmp_path: Path) -> None:
    output = "a.py:1: error: Bad  [arg-type]\na.py:2: error: No code\n"
    shell = ("mypy src || true",)  # the parser named, the shell line run
    verdict = _interpret(tmp_path, output, argv=shell, shell=True, options=(("tool", "mypy"),))
    assert verdict.figures["program"] == "mypy"
    first, second = verdict.figures["issues"]
    assert first["url"] == "https://mypy.rtfd.io/en/stable/_refs.html#code-arg-type"
    assert "url" not in second


@pytest.mark.parametrize(
    ("argv", "program"),
    [
        (["python3", "-m", "flake8", "src"], "flake8"),
        (["uv", "run", "pylint", "pkg"], "pylint"),
        (["env", "A=1", "/usr/bin/codespell.exe"], "codespell"),
        (["python", "-X", "dev", "tools/lint.py"], "lint.py"),
        (["python"], ""),
    ],
)
def test_program_name(argv: list[str], program: str) -> None:
    from pytest_parex.kinds.reviewparse import program_name

    assert program_name(argv) == program
