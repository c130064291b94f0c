"""Findings (pure) and the repository around them: reading findings from results, paths
relative to the repository, stable fingerprints, the lines a pull request changed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_parex import findings, repo
from pytest_parex.findings import Finding
from pytest_parex.results import CheckResult, GateResult


def _result(name: str, status: str = "failed", **figures: Any) -> CheckResult:
    return CheckResult(name, "a", status, 1.0, 1.0, 2.0, figures=figures)


def test_findings_are_read_leniently_from_figures() -> None:
    issues = [
        {
            "path": "src/a.py",
            "line": 3,
            "column": 5,
            "end_line": 4,
            "end_column": 2,
            "code": "F401",
            "message": "unused",
            "severity": "error",
            "url": "https://docs.astral.sh/ruff/rules/unused-import",
        },
        {"path": "b.py", "line": 0, "column": 3, "end_line": 9, "severity": "WARNING"},
        {"path": 7, "line": "3", "code": "X1", "severity": "fatal", "end_line": 1},
        {"path": "c.py", "line": 5, "end_line": 2, "tool": "black", "message": "m"},
        "junk",
    ]
    (a, b, c, d) = findings.of_result(
        _result("lint", tool="ruff-check", program="ruff", issues=issues)
    )
    assert a == Finding(
        "lint",
        "ruff",
        "F401",
        "error",
        "src/a.py",
        3,
        5,
        "unused",
        4,
        2,
        "https://docs.astral.sh/ruff/rules/unused-import",
    )
    # No line, so no column or end; the level lowered; a message even when there is none.
    assert (b.line, b.column, b.end_line, b.level, b.message) == (
        None,
        None,
        None,
        "warning",
        "issue",
    )
    assert (c.path, c.line, c.level, c.message, c.rule) == ("", None, "error", "X1", "X1")
    # An end before the start is no end; a finding may name its own tool.
    assert (d.end_line, d.tool) == (None, "black")


def test_tools_are_named_for_people() -> None:
    assert findings.tool_of({"tool": "ruff-format", "program": "ruff"}, "fmt") == "ruff"
    assert findings.tool_of({"tool": "mypy"}, "types") == "mypy"  # a result from before
    assert findings.tool_of({"tool": "generic", "program": "flake8"}, "lint") == "flake8"
    assert findings.tool_of({"tool": "generic"}, "lint") == "lint"


@pytest.mark.parametrize(
    ("status", "reports"),
    [("passed", True), ("flaky", True), ("failed", True), ("timeout", False), ("error", False)],
)
def test_only_a_tool_that_ran_to_its_end_reports_findings(status: str, reports: bool) -> None:
    result = _result("lint", status, issues=[{"path": "a.py", "line": 1}])
    assert findings.reports_findings(result) is reports
    assert len(findings.of_result(result)) == (1 if reports else 0)
    assert not findings.reports_findings(_result("tests", "passed", passed=3))


def test_of_gate_keeps_the_summary_order_and_counts() -> None:
    gate = GateResult(
        (
            _result("b", issues=[{"path": "x.py", "severity": "warning"}]),
            _result("a", "passed", issues=[{"path": "y.py"}, {"path": "z.py"}]),
        ),
        1.0,
        False,
        "failed",
    )
    found = findings.of_gate(gate)
    assert [f.check for f in found] == ["b", "a", "a"]
    assert findings.counts(found) == {"error": 2, "warning": 1, "note": 0}
    assert findings.describe_counts(findings.counts(found)) == "2 errors, 1 warning"


def _f(path: str, line: int | None = 1, **kw: Any) -> Finding:
    return Finding(
        "c",
        kw.pop("tool", "ruff"),
        kw.pop("rule", "E1"),
        "error",
        path,
        line,
        None,
        kw.pop("message", "m"),
    )


def test_relocate_makes_paths_relative_to_the_repository(tmp_path: Path) -> None:
    root = tmp_path / "sub" / "project"
    found = [_f("pkg/m.py"), _f(str(tmp_path / "other.py")), _f("/elsewhere/x.py"), _f("")]
    moved = findings.relocate(found, root, tmp_path)
    assert [f.path for f in moved] == ["sub/project/pkg/m.py", "other.py", "/elsewhere/x.py", ""]
    assert [findings.inside(f.path) for f in moved] == [True, True, False, False]
    assert findings.relocate(found, root, root) == found


def test_fingerprints_follow_a_finding_that_moves_and_are_unique(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import os\nx = 1\nimport os\n")
    found = [_f("a.py", 1), _f("a.py", 3), _f("a.py", 2), _f("gone.py", 4)]
    first = findings.fingerprints(found, findings.file_lines(tmp_path))
    assert len(set(first)) == 4  # the two identical `import os` findings differ by occurrence
    assert all(len(fp) == 32 for fp in first)
    # Two lines added above: the same findings, further down, keep their fingerprints.
    (tmp_path / "a.py").write_text('"""doc"""\n\nimport os\nx = 1\nimport os\n')
    moved = [_f("a.py", 3), _f("a.py", 5), _f("a.py", 4), _f("gone.py", 4)]
    assert findings.fingerprints(moved, findings.file_lines(tmp_path)) == first
    # Another message, rule or tool is another finding.
    other = [_f("a.py", 1, message="n"), _f("a.py", 1, rule="E2"), _f("a.py", 1, tool="mypy")]
    assert not set(findings.fingerprints(other, findings.file_lines(tmp_path))) & set(first)


DIFF = """\
diff --git a/src/a.py b/src/a.py
index 1..2 100644
--- a/src/a.py
+++ b/src/a.py
@@ -3,0 +4,2 @@ def f():
+    x = 1
+    y = 2
@@ -10 +12 @@
-old
+new
@@ -20,3 +22,0 @@
-gone
diff --git a/old.py b/old.py
deleted file mode 100644
--- a/old.py
+++ /dev/null
@@ -1 +0,0 @@
-x
diff --git "a/caf\\303\\251 x.py" "b/caf\\303\\251 x.py"
--- "a/caf\\303\\251 x.py"
+++ "b/caf\\303\\251 x.py"
@@ -1 +1 @@
-a
+b
diff --git a/with space.py b/with space.py
--- a/with space.py\t
+++ b/with space.py\t
@@ -0,0 +1 @@
+new
"""


def test_parse_diff_reads_the_changed_lines_of_the_new_side() -> None:
    assert repo.parse_diff(DIFF) == {
        "src/a.py": [(4, 5), (12, 12)],
        "café x.py": [(1, 1)],
        "with space.py": [(1, 1)],
    }


def test_changes_touch_spans_and_whole_files() -> None:
    changes = repo.Changes({"a.py": ((4, 5), (12, 12)), "only-deleted.py": ()})
    assert changes.touches("a.py", 5)
    assert changes.touches("a.py", 2, 4)  # a span reaching into a change
    assert not changes.touches("a.py", 6, 11)
    assert changes.touches("a.py", None)  # a finding on the whole (changed) file
    assert not changes.touches("only-deleted.py", 1)
    assert not changes.touches("b.py", 4)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_changes_since_the_merge_base_with_the_base_branch(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "a.py").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "base")
    _git(tmp_path, "checkout", "-qb", "feature")
    lines = (tmp_path / "a.py").read_text().splitlines(keepends=True)
    lines[6] = "changed 7\n"
    (tmp_path / "a.py").write_text("".join(lines))
    (tmp_path / "new.py").write_text("x\ny\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "feature")
    # The base branch moves on: its own change is not the pull request's.
    _git(tmp_path, "checkout", "-q", "main")
    (tmp_path / "b.py").write_text("on main\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "main moves")
    _git(tmp_path, "checkout", "-q", "feature")
    (tmp_path / "a.py").write_text((tmp_path / "a.py").read_text() + "uncommitted\n")

    changes, why = repo.changes(tmp_path, "main")
    assert why == "" and changes is not None
    assert changes.base == "main"
    assert dict(changes.lines) == {"a.py": ((7, 7), (11, 11)), "new.py": ((1, 2),)}
    (tmp_path / "sub").mkdir()
    assert repo.root(tmp_path / "sub", {}) == tmp_path.resolve()  # git's top level

    missing, why = repo.changes(tmp_path, "no-such-branch")
    assert missing is None
    assert "no merge base of HEAD with origin/no-such-branch or no-such-branch" in why
    assert "fetch-depth: 0" in why


def test_the_repository_root_is_the_ci_checkout_when_it_holds_the_rootdir(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    assert repo.root(project, {"GITHUB_WORKSPACE": str(tmp_path)}) == tmp_path.resolve()
    assert repo.root(project, {"CI_PROJECT_DIR": str(tmp_path)}) == tmp_path.resolve()
    # A checkout elsewhere says nothing about this rootdir.
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert repo.root(project, {"GITHUB_WORKSPACE": str(elsewhere)}) != elsewhere.resolve()
