"""Command-line options of pytest-parex (cheap to import: loaded in every pytest run)."""

from __future__ import annotations

import argparse

import pytest

PROGRESS_MODES = ("auto", "live", "plain", "off")
WATCH_MODES = ("queue", "restart")
TIMELINE_SUFFIXES = (".svg", ".html", ".htm")


def timeline_path(text: str) -> str:
    """``--parex-timeline=PATH``: an SVG or HTML file ("" -- the option alone -- is text)."""
    if text and not text.lower().endswith(TIMELINE_SUFFIXES):
        raise argparse.ArgumentTypeError(
            f"expected a file name ending in .svg or .html, got {text!r} "
            "(write --parex-timeline=PATH; --parex-timeline alone draws text bars)"
        )
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def annotation_limits(text: str) -> dict[str, int]:
    """``--parex-annotations``: ``errors=5,warnings=5,job=20`` or ``off``."""
    from pytest_parex.config import annotation_spec  # only when the option is given

    try:
        return annotation_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def watch_mode(text: str) -> str:
    """``--parex-watch[=queue|restart]``."""
    if text not in WATCH_MODES:
        raise argparse.ArgumentTypeError(
            f"expected queue or restart, got {text!r} (write --parex-watch=restart; "
            "--parex-watch alone queues)"
        )
    return text


def names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("parex", "pytest-parex quality gate")
    group.addoption(
        "--parex",
        action="store_true",
        default=False,
        help="Run the checks of [tool.parex] as the session's items, concurrently",
    )
    group.addoption(
        "--parex-config",
        metavar="PATH",
        default=None,
        help="Read [tool.parex] from this TOML file instead of the rootdir's pyproject.toml",
    )
    group.addoption(
        "--parex-plan",
        action="store_true",
        default=False,
        help="Print the agents, order, waves and predicted speedup; run no check",
    )
    group.addoption(
        "--parex-only",
        metavar="NAMES",
        type=names,
        default=None,
        help="Run only these checks (comma-separated)",
    )
    group.addoption(
        "--parex-skip",
        metavar="NAMES",
        type=names,
        default=None,
        help="Do not run these checks (comma-separated)",
    )
    group.addoption(
        "--parex-max-parallel",
        metavar="N",
        type=positive_int,
        default=None,
        help="At most N checks at once (overrides max-parallel)",
    )
    group.addoption(
        "--parex-show-config",
        action="store_true",
        default=False,
        help="Print the gate's [tool.parex] as TOML (the zero-config default too) and exit",
    )
    group.addoption(
        "--parex-no-cache",
        action="store_true",
        default=False,
        help="Run every check, replaying no earlier pass (PYTEST_PAREX_CACHE=0 does too)",
    )
    group.addoption(
        "--parex-save-baseline",
        action="store_true",
        default=False,
        help="Benchmark checks save their results as the baseline later runs compare with",
    )
    group.addoption(
        "--parex-save-durations",
        action="store_true",
        default=False,
        help="Tests checks write this run's test durations to their durations file "
        "(commit it: a fresh checkout's first run is balanced too)",
    )
    group.addoption(
        "--parex-fail-fast",
        action="store_true",
        default=None,
        help="Cancel running checks at the first failure (on-failure = fail-fast); -x does too",
    )
    group.addoption(
        "--parex-changed",
        metavar="REF",
        nargs="?",
        const="",
        default=None,
        help="Give pre-commit hooks and file-scoped reviews (ruff) only the changed files: "
        "staged and unstaged changes against HEAD, or with =REF the changes since the merge "
        "base with REF (GitHub Actions: the pull request's base)",
    )
    group.addoption(
        "--parex-watch",
        metavar="MODE",
        nargs="?",
        const="queue",
        default=None,
        type=watch_mode,
        help="After the gate, watch the project and rerun the checks whose inputs change; a "
        "change during a round queues one more (queue, the default) or restarts the running "
        "checks it concerns (--parex-watch=restart). Needs pytest-parex[watch]",
    )
    group.addoption(
        "--parex-progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="Progress while the gate runs: a live block on a colour terminal, one line per "
        "state change elsewhere (auto, the default), or always live / plain / off",
    )
    group.addoption(
        "--parex-show-output",
        action="store_true",
        default=False,
        help="After the run, print every check's output block (tail and log path), "
        "not only the failed ones",
    )
    group.addoption(
        "--parex-json",
        metavar="PATH",
        default=None,
        help="Write the gate's JSON report to PATH (also when it fails or is interrupted)",
    )
    group.addoption(
        "--parex-sarif",
        metavar="PATH",
        default=None,
        help="Write every review finding to PATH as a SARIF 2.1.0 log, one run per tool "
        "(GitHub code scanning: upload-sarif)",
    )
    group.addoption(
        "--parex-codequality",
        metavar="PATH",
        default=None,
        help="Write every review finding to PATH as a GitLab Code Quality report "
        "(artifacts:reports:codequality)",
    )
    group.addoption(
        "--parex-annotations",
        metavar="LIMITS",
        type=annotation_limits,
        default=None,
        help="GitHub annotations at most, per step and in the job: errors=N,warnings=N,"
        "notices=N,job=N (defaults 10, 10, 10, 50: GitHub's limits) or off",
    )
    group.addoption(
        "--parex-timeline",
        metavar="PATH",
        nargs="?",
        const="",
        default=None,
        type=timeline_path,
        help="Draw each check's start-end bar per worker after the run; "
        "--parex-timeline=out.svg (or .html) writes a file instead",
    )
