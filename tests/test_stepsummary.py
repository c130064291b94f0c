"""The Markdown report (pure): the table of checks, a section per check with findings or a
failure, and the step summary shortened to GitHub's limit, fairly, with a note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_parex.findings import of_gate
from pytest_parex.output import stepsummary
from pytest_parex.output.stepsummary import Links, md_cell
from pytest_parex.results import CheckResult, GateResult

ROOT = Path("/repo")


def _gate(*results: CheckResult) -> GateResult:
    return GateResult(results, 2.0, False, "failed: lint failed")


def _issues(n: int, message: str = "m") -> list[dict[str, Any]]:
    return [
        {"path": f"src/m{i}.py", "line": i + 1, "code": "E1", "message": f"{message} {i}"}
        for i in range(n)
    ]


def _render(gate: GateResult, links: Links | None = None) -> str:
    return stepsummary.render(*stepsummary.sections(gate, ROOT, of_gate(gate), links))


def test_markdown_cells_cannot_break_the_table() -> None:
    assert md_cell("a|b\nc <b>&") == "a\\|b<br>c &lt;b&gt;&amp;"
    assert md_cell("back\\slash") == "back\\\\slash"


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
    text = _render(gate)
    assert text.splitlines()[:6] == [
        "### parex: failed: lint failed",
        "",
        "| check | agent | status | duration | detail |",
        "| --- | --- | --- | ---: | --- |",
        "| lint | code-reviewer | failed | 1.25s | exit \\| code 3 (log: .parex/logs/lint.log) |",
        "| docs | debugger | skipped | - | needs lint,<br>which failed |",
    ]
    assert "verdict: **failed**" in text


def test_findings_and_failures_get_sections() -> None:
    url = "https://docs.astral.sh/ruff/rules/x"
    issues = [
        {"path": "src/a b.py", "line": 3, "code": "E1", "message": "x | y", "url": url},
        {"path": "", "code": "", "message": "global", "severity": "warning"},
    ]
    gate = _gate(
        CheckResult("lint", "a", "failed", 1.0, 1.0, 2.0, figures={"issues": issues}),
        CheckResult("tests", "b", "failed", 1.0, 1.0, 2.0, tail="```\nboom\n"),
        CheckResult("ok", "c", "passed", 1.0, 1.0, 2.0),
    )
    text = _render(gate, Links("https://github.com", "o/r", "abc"))
    assert "#### lint (failed): 2 findings (1 error, 1 warning)" in text
    assert (
        "| [src/a b.py:3](https://github.com/o/r/blob/abc/src/a%20b.py#L3) | error "
        f"| [E1]({url}) | x \\| y |"
    ) in text
    assert "| - | warning | - | global |" in text
    # A failure without findings shows its report, fenced past the backticks inside it.
    assert "<details><summary>tests failed: output</summary>" in text
    assert "````text\ncheck tests failed\n--- last 2 lines of output ---\n```\nboom\n````" in text
    assert "#### ok" not in text and "ok failed" not in text


def test_a_summary_within_the_budget_is_whole() -> None:
    gate = _gate(CheckResult("lint", "a", "failed", 1, 1, 2, figures={"issues": _issues(50)}))
    head, parts = stepsummary.sections(gate, ROOT, of_gate(gate))
    whole = stepsummary.render(head, parts)
    assert stepsummary.fit(head, parts, len(whole.encode()), ".parex/report.md") == (whole, False)


def test_a_summary_over_1_mib_is_cut_fairly_with_a_note() -> None:
    long = "x" * 400
    gate = _gate(
        CheckResult("small", "a", "failed", 1, 1, 2, figures={"issues": _issues(3)}),
        CheckResult("big", "b", "failed", 1, 1, 2, figures={"issues": _issues(3000, long)}),
        CheckResult("huge", "c", "failed", 1, 1, 2, figures={"issues": _issues(6000, long)}),
        CheckResult("tests", "d", "failed", 1, 1, 2, tail="\n".join(f"t{i}" for i in range(50))),
    )
    head, parts = stepsummary.sections(gate, ROOT, of_gate(gate))
    whole = stepsummary.render(head, parts)
    assert len(whole.encode()) > 3 * 1024 * 1024
    text, cut = stepsummary.fit(head, parts, stepsummary.LIMIT, ".parex/report.md")
    assert cut
    assert len(text.encode()) <= stepsummary.LIMIT < 1024 * 1024
    # The small sections whole, the two big ones cut to about the same size, each saying so.
    assert text.count("| src/m") == 3 + text.count(long)
    assert "| src/m2.py:3 | error | E1 | m 2 |" in text
    assert "t49" in text and "t0\n" in text
    big = text.split("#### big")[1].split("#### huge")[0]
    huge = text.split("#### huge")[1].split("<details>")[0]
    assert 0.9 < len(big) / len(huge) < 1.1
    kept_big = big.count("| src/m")
    assert f"*... {3000 - kept_big} more findings: the full report is .parex/report.md*" in big
    assert "more findings: the full report is .parex/report.md*" in huge
    assert text.startswith("### parex: failed: lint failed\n")


def test_a_summary_with_little_room_left_still_fits() -> None:
    gate = _gate(
        *(
            CheckResult(f"c{i}", "a", "failed", 1, 1, 2, figures={"issues": _issues(20)})
            for i in range(300)
        )
    )
    head, parts = stepsummary.sections(gate, ROOT, of_gate(gate))
    text, cut = stepsummary.fit(head, parts, 20_000, "R.md")
    assert cut and len(text.encode()) <= 20_000
    assert text.startswith("### parex:")
    assert "the full report is R.md*" in text


@given(
    sizes=st.lists(st.integers(0, 400), min_size=1, max_size=8),
    budget=st.integers(2_000, 60_000),
)
def test_fit_never_exceeds_the_budget(sizes: list[int], budget: int) -> None:
    gate = _gate(
        *(
            CheckResult(f"c{i}", "a", "failed", 1, 1, 2, figures={"issues": _issues(n, "é" * 30)})
            for i, n in enumerate(sizes)
        )
    )
    head, parts = stepsummary.sections(gate, ROOT, of_gate(gate))
    text, cut = stepsummary.fit(head, parts, budget, ".parex/report.md")
    assert len(text.encode()) <= budget
    assert cut == (len(stepsummary.render(head, parts).encode()) > budget)


@pytest.mark.parametrize(("sizes", "budget"), [([10, 10, 10], 30), ([1, 100, 50], 60)])
def test_shares_keep_small_parts_whole(sizes: list[int], budget: int) -> None:
    shares = stepsummary._shares(sizes, budget)
    assert sum(shares) <= budget
    assert shares[0] == min(sizes[0], budget // len(sizes))
