"""The progress display's pure parts: mode choice, the block, plain lines, redrawing in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_parex.output import live
from pytest_parex.results import CheckResult

ROOT = Path("/r")
CHECKS = [
    ("docs", "code-reviewer"),
    ("lint", "code-reviewer"),
    ("tests", "test-runner"),
    ("types", "debugger"),
]


def _rows() -> list[live.Row]:
    now = [100.0]
    progress = live.Progress(clock=lambda: now[0])
    progress.started("lint", "code-reviewer", "gw1")
    now[0] += 1.25
    progress.started("tests", "test-runner", "gw2")
    now[0] += 0.5
    progress.finished(
        CheckResult(
            "lint",
            "code-reviewer",
            "failed",
            1.5,
            1.0,
            2.5,
            detail="exit code 1",
            worker="gw1",
            log_path="/r/.parex/logs/lint.log",
        )
    )
    return progress.rows(CHECKS)


@pytest.mark.parametrize(
    ("option", "isatty", "hasmarkup", "environ", "verbosity", "expected"),
    [
        ("auto", True, True, {}, 0, "live"),
        ("auto", True, True, {}, -1, "live"),
        ("auto", True, True, {}, -2, "off"),
        ("auto", False, True, {}, 0, "plain"),  # a pipe, a CI log (--color=yes or not)
        ("auto", True, False, {}, 0, "plain"),  # --color=no
        ("auto", True, True, {"TERM": "dumb"}, 0, "plain"),
        ("auto", True, True, {"NO_COLOR": "1"}, 0, "plain"),
        ("auto", True, True, {"CI": "true"}, 0, "plain"),
        ("plain", True, True, {}, 0, "plain"),
        ("live", False, False, {}, 0, "live"),
        ("off", True, True, {}, 0, "off"),
    ],
)
def test_mode(
    option: str,
    isatty: bool,
    hasmarkup: bool,
    environ: dict[str, str],
    verbosity: int,
    expected: str,
) -> None:
    mode = live.choose_mode(
        option, isatty=isatty, hasmarkup=hasmarkup, environ=environ, verbosity=verbosity
    )
    assert mode == expected


def test_block_lists_every_check_with_its_state() -> None:
    text = live.render_block(_rows(), 3.04, ROOT, width=90, color=False)
    assert text == (
        "parex 3.0s  1 running, 2 waiting, 1 failed\n"
        "  docs   code-reviewer  waiting\n"
        "  lint   code-reviewer  failed   1.50s  exit code 1 (log: .parex/logs/lint.log)\n"
        "  tests  test-runner    running   0.5s  on gw2\n"
        "  types  debugger       waiting\n"
    )


def test_quiet_block_shows_only_running_checks_verbose_shows_more() -> None:
    quiet = live.render_block(_rows(), 3.04, ROOT, width=70, color=False, verbosity=-1)
    assert quiet == (
        "parex 3.0s  1 running, 2 waiting, 1 failed\n  tests  test-runner  running  0.5s  on gw2\n"
    )
    verbose = live.render_block(_rows(), 3.04, ROOT, width=120, color=False, verbosity=1)
    assert "exit code 1 (on gw1, log: .parex/logs/lint.log)" in verbose


def test_block_fits_the_terminal() -> None:
    rows = [live.Row(f"check-{'x' * 50}-{i}", "agent-" + "y" * 40, "waiting") for i in range(30)]
    rows[7] = live.Row("running-one", "a", "running", "gw0", 2.0)
    text = live.render_block(rows, 1.0, ROOT, width=50, height=10, color=True)
    lines = text.splitlines()
    assert len(lines) <= 9
    assert "running-one" in text  # running checks are kept when folding
    assert lines[-1].endswith("... and 23 more: 23 waiting\x1b[0m")
    plain = live.render_block(rows, 1.0, ROOT, width=50, height=10, color=False)
    assert max(len(line) for line in plain.splitlines()) < 50


def test_block_escapes_names() -> None:
    rows = [live.Row("[red]x[/red]\x1b[2J", "a", "waiting")]
    text = live.render_block(rows, 0.0, ROOT, width=60, color=True)
    assert "[red]x[/red]\\x1b[2J" in text
    assert "\x1b[2J" not in text


def test_plain_lines() -> None:
    lint = CheckResult(
        "lint",
        "code-reviewer",
        "failed",
        1.234,
        1.0,
        2.0,
        detail="exit code 3",
        worker="gw0",
        log_path="/r/.parex/logs/lint.log",
        attempts=2,
    )
    ok = CheckResult("ok", "a", "passed", 0.5, 1.0, 1.5, log_path="/r/.parex/logs/ok.log")
    skipped = CheckResult("docs", "debugger", "skipped", reason="needs lint, which failed")
    assert live.plain_started("tests", "test-runner", "gw1", 0) == (
        "[parex] tests started on gw1 (test-runner)"
    )
    assert live.plain_started("tests", "test-runner", "main", 0) == (
        "[parex] tests started (test-runner)"
    )
    assert live.plain_started("tests", "test-runner", "gw1", -1) is None
    assert live.plain_finished(ok, ROOT, 0) == "[parex] ok passed in 0.50s"
    assert live.plain_finished(lint, ROOT, 0) == (
        "[parex] lint failed in 1.23s: exit code 3 (log: .parex/logs/lint.log)"
    )
    assert live.plain_finished(lint, ROOT, 1) == (
        "[parex] lint failed in 1.23s: exit code 3 (on gw0, 2 attempts, log: .parex/logs/lint.log)"
    )
    assert live.plain_finished(skipped, ROOT, 0) == (
        "[parex] docs skipped: needs lint, which failed"
    )
    assert live.plain_finished(ok, ROOT, -2) is None
    assert live.plain_finished(CheckResult("e\x1b[1m", "a", "passed"), ROOT, 0) == (
        "[parex] e\\x1b[1m passed"
    )


def test_screen_redraws_in_place_and_erases() -> None:
    pyte = pytest.importorskip("pyte")
    screen = pyte.Screen(40, 8)
    stream = pyte.Stream(screen)
    written: list[str] = []

    def write(text: str) -> None:
        written.append(text)
        stream.feed(text.replace("\n", "\r\n"))  # what the tty's output processing does

    stream.feed("header\r\n")
    block = live.Screen(write)
    block.draw("a1\na2\na3\n")
    block.draw("b1\nb2\n")  # shrinks: a3 must go
    assert [line.rstrip() for line in screen.display[:5]] == ["header", "b1", "b2", "", ""]
    block.draw("c1\nc2\nc3\nc4\n")
    block.erase()
    write("after\n")
    assert [line.rstrip() for line in screen.display[:4]] == ["header", "after", "", ""]
    # Never "erase below": from the top-left corner it clears the whole screen, which tmux
    # pushes into the scrollback (copies of the block in the history).
    assert not any("\x1b[J" in w for w in written)
