"""The timeline (pure): bars per worker, the critical path, text / SVG / HTML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pytest_parex.output import timeline
from pytest_parex.results import CheckResult, GateResult

T0 = 1_000.0
SVG = "{http://www.w3.org/2000/svg}"


def _gate() -> GateResult:
    results = (
        CheckResult("build", "feature-implementer", "passed", 1.0, T0, T0 + 1.0, worker="gw0"),
        CheckResult("docs", "code-reviewer", "passed", 0.5, T0 + 2.0, T0 + 2.5, worker="gw1"),
        CheckResult("lint", "code-reviewer", "failed", 1.5, T0, T0 + 1.5, worker="gw1"),
        CheckResult("tests", "test-runner", "passed", 3.0, T0 + 1.0, T0 + 4.0, worker="gw0"),
        CheckResult("types", "debugger", "skipped", reason="needs lint, which failed"),
    )
    return GateResult(results, 4.0, False, "failed: lint failed", critical_path=4.0)


NEEDS = {"tests": ["build"], "types": ["lint"]}


def test_text_timeline_exactly() -> None:
    text = timeline.render_text(timeline.build(_gate(), T0, NEEDS), width=72)
    assert text == (
        "wall 4.00s on 2 workers; critical path build > tests (4.00s), marked #\n"
        "gw0  build |##########                              | 0.00s-1.00s\n"
        "     tests |          ##############################| 1.00s-4.00s\n"
        "gw1  lint  |===============                         | 0.00s-1.50s failed\n"
        "     docs  |                    =====               | 2.00s-2.50s\n"
        "            0s                                 4.00s\n"
        "not run: types (skipped)\n"
    )
    assert max(len(line) for line in text.splitlines()) == 72


def test_workers_sort_naturally_and_bars_by_start() -> None:
    results = tuple(
        CheckResult(f"c{i}", "a", "passed", 1.0, T0 + 3 - i % 2, T0 + 4, worker=f"gw{i % 11}")
        for i in range(12)
    )
    tl = timeline.build(GateResult(results, 5.0, True, "passed"), T0)
    assert tl.workers == [f"gw{i}" for i in range(11)]
    gw0 = [b for b in tl.bars if b.worker == "gw0"]
    assert [b.name for b in gw0] == ["c11", "c0"]  # c11 started a second earlier


def test_critical_chain_follows_needs_and_longest_duration() -> None:
    chain, length = timeline.critical_chain(_gate().results, NEEDS)
    assert chain == ("build", "tests") and length == 4.0
    # Without needs the critical path is the longest check alone.
    assert timeline.critical_chain(_gate().results, {}) == (("tests",), 3.0)
    # A check that did not run is no link of the chain.
    assert timeline.critical_chain(_gate().results, {"types": ["tests"]})[0] == ("tests",)
    assert timeline.critical_chain((), {}) == ((), 0.0)


def test_offsets_are_clipped_to_the_gate() -> None:
    results = (CheckResult("x", "a", "cancelled", 9.0, T0 - 1.0, T0 + 9.0, worker="gw0"),)
    tl = timeline.build(GateResult(results, 2.0, False, "interrupted"), T0)
    assert (tl.bars[0].start, tl.bars[0].end) == (0.0, 2.0)
    text = timeline.render_text(tl, width=60)
    assert "0.00s-2.00s cancelled" in text


def test_names_are_escaped_and_shortened() -> None:
    evil = "a\x1b[31m" + "x" * 40
    results = (CheckResult(evil, "a", "passed", 1.0, T0, T0 + 1, worker="gw0"),)
    tl = timeline.build(GateResult(results, 1.0, True, "passed"), T0)
    text = timeline.render_text(tl, width=80)
    assert "\x1b" not in text
    assert "a\\x1b[31m" + "x" * 10 + "~" in text  # cut to NAME_WIDTH characters
    svg = timeline.render_svg(tl)
    assert "\x1b" not in svg
    ET.fromstring(svg)  # well-formed despite the name


def test_svg_has_one_bar_per_check_and_marks_the_critical_path() -> None:
    svg = timeline.render_svg(timeline.build(_gate(), T0, NEEDS))
    root = ET.fromstring(svg)
    rects = root.findall(f"{SVG}rect")
    assert sorted(r.get("data-check") or "" for r in rects) == ["build", "docs", "lint", "tests"]
    critical = sorted(r.get("data-check") or "" for r in rects if r.get("data-critical"))
    assert critical == ["build", "tests"]
    lint = next(r for r in rects if r.get("data-check") == "lint")
    assert lint.get("data-status") == "failed"
    # build starts at 0 and lasts a quarter of the wall time.
    build = next(r for r in rects if r.get("data-check") == "build")
    assert float(build.get("width") or 0) == 640 / 4
    assert "not run: types (skipped)" in svg


def test_html_holds_the_svg_and_a_table() -> None:
    html = timeline.render_html(timeline.build(_gate(), T0, NEEDS), "parex <timeline>")
    assert html.startswith("<!DOCTYPE html>")
    assert "<svg" in html and "</svg>" in html
    assert "<title>parex &lt;timeline&gt;</title>" in html
    assert html.count("<tr>") == 5  # header and four bars


def test_ticks_are_round() -> None:
    assert timeline._ticks(4.0) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert timeline._ticks(12.3) == [0.0, 5.0, 10.0]
    assert timeline._ticks(0.37) == [0.0, 0.1, 0.2, 0.3]
    assert timeline._ticks(0.0) == [0.0]
