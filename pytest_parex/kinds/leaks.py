"""``kind = "leaks"``: the child pytest re-runs every test under tracemalloc
(:mod:`pytest_parex.child.leaks`) and reports the tests whose memory keeps growing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_parex import child
from pytest_parex.kinds.base import Invocation, Key, RunContext, Verdict, load_json
from pytest_parex.kinds.pytestrun import ChildPytest, counts_verdict
from pytest_parex.results import Status

if TYPE_CHECKING:
    from pytest_parex.config import Check, Validator

DEFAULT_ITERATIONS = 5
DEFAULT_THRESHOLD = "64 KiB"


def _iterations(v: Validator, where: str, key: str, value: object) -> int:
    return v.integer(where, key, value, minimum=1)


def _threshold(v: Validator, where: str, key: str, value: object) -> str:
    from argparse import ArgumentTypeError

    # The child parses the same text (its option's type): one parser, on the child's side.
    from pytest_parex.child.leaks import parse_size

    text = v.string(where, key, value)
    try:
        parse_size(text)
    except ArgumentTypeError as exc:
        raise v.error(
            where, f'{key} must be a size like "64 KiB", got {v.show(text)} ({exc})'
        ) from None
    return text


class LeaksKind(ChildPytest):
    name = "leaks"
    agent = "debugger"
    keys = (Key("iterations", _iterations), Key("threshold", _threshold))

    def child_args(self, check: Check, ctx: RunContext, files: dict[str, Path]) -> list[str]:
        files["leaks"] = ctx.state_dir / f"{check.file_name}.leaks.json"
        return [
            "-n",
            "0",
            "-p",
            child.LEAKS_PLUGIN,
            "--parex-leaks",
            f"--parex-leaks-iterations={check.option('iterations', DEFAULT_ITERATIONS)}",
            f"--parex-leaks-threshold={check.option('threshold', DEFAULT_THRESHOLD)}",
            f"--parex-leaks-report={files['leaks']}",
        ]

    def interpret(
        self, check: Check, code: int | None, inv: Invocation, log: Path, ctx: RunContext
    ) -> Verdict:
        base = counts_verdict(code, inv.files.get("pytest"), log=log, rootdir=ctx.rootdir)
        data = load_json(inv.files.get("leaks"))
        summary_data = data.get("summary", {}) if isinstance(data.get("summary"), dict) else {}
        tests = [t for t in data.get("tests", []) if isinstance(t, dict)]
        leaking = [t for t in tests if t.get("leaking")]
        checked = int(summary_data.get("tests_checked", len(tests)) or 0)
        figures: dict[str, Any] = dict(base.figures)
        figures["leaks"] = leaking
        figures["tests_checked"] = checked
        if not data:
            return Verdict(
                base.status if base.status is not Status.PASSED else Status.FAILED,
                base.detail or "no leak report",
                figures,
            )
        if leaking:
            noun = "test" if len(leaking) == 1 else "tests"
            lines = []
            for t in leaking:
                growth = float(t.get("growth_per_iteration", 0))
                lines.append(f"{t.get('nodeid')}: +{growth / 1024:.1f} KiB per iteration")
                lines += [f"    {site}" for site in t.get("top_sites", [])[:5]]
            return Verdict(
                Status.FAILED,
                f"{len(leaking)} leaking {noun} of {checked}",
                figures,
                "\n".join(lines),
            )
        if base.status is not Status.PASSED:
            return Verdict(base.status, base.detail, figures)
        return Verdict(Status.PASSED, f"no leaks in {checked} tests", figures)


KIND = LeaksKind()
