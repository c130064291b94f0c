"""Check kinds: what to run for a check, and what its outcome means.

A kind prepares an :class:`Invocation` (argv, environment, a report file the child writes) and
interprets the finished process into a status, a detail phrase and figures.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_parex import runner
from pytest_parex.child import REPORT_ENV
from pytest_parex.config import Check
from pytest_parex.model import (
    CANCELLED,
    ERROR,
    FAILED,
    FLAKY,
    PASSED,
    TIMEOUT,
    CheckResult,
)

ACTIVE_ENV = "PYTEST_PAREX_ACTIVE"
"""Config files of the gates this process runs inside (os.pathsep-separated): a check that
starts ``pytest --parex`` on the same config again would recurse without end."""
CHECK_ENV = "PYTEST_PAREX_CHECK"


@dataclass(frozen=True)
class RunContext:
    """Where and how checks run on this process."""

    rootdir: Path
    log_dir: Path
    state_dir: Path
    config_path: str
    worker: str = "main"
    cancelled: Callable[[], str | None] = lambda: None
    cores: int = 1
    """Cores a nested ``-n auto`` may use."""


@dataclass(frozen=True)
class Invocation:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    shell: bool = False
    report: Path | None = None


@dataclass(frozen=True)
class Verdict:
    status: str
    detail: str
    figures: Mapping[str, Any] = field(default_factory=dict)


def _base_env(check: Check, ctx: RunContext) -> dict[str, str]:
    env = dict(os.environ)
    active = [p for p in env.get(ACTIVE_ENV, "").split(os.pathsep) if p]
    env[ACTIVE_ENV] = os.pathsep.join([*active, ctx.config_path])
    env[CHECK_ENV] = check.name
    # A nested `pytest -n auto` would take every core while the other checks use them too.
    env["PYTEST_XDIST_AUTO_NUM_WORKERS"] = str(max(1, ctx.cores))
    env.update(dict(check.env))
    return env


def prepare(check: Check, ctx: RunContext) -> Invocation:
    env = _base_env(check, ctx)
    if check.kind == "tests":
        report = ctx.state_dir / f"{check.name}.pytest.json"
        env[REPORT_ENV] = str(report)
        argv = (sys.executable, "-m", "pytest", *check.argv, "-p", "pytest_parex.child")
        return Invocation(argv, env, report=report)
    return Invocation(check.argv, env, shell=check.shell)


def interpret(check: Check, outcome: runner.ProcessOutcome, inv: Invocation) -> Verdict:
    if outcome.status == "timeout":
        return Verdict(TIMEOUT, outcome.reason)
    if outcome.status == "cancelled":
        return Verdict(CANCELLED, outcome.reason)
    if outcome.status == "not-found":
        return Verdict(ERROR, outcome.reason)
    code = outcome.returncode
    if check.kind == "tests":
        return _interpret_pytest(code, inv.report)
    if code == 0:
        return Verdict(PASSED, "")
    if code is not None and code < 0:
        return Verdict(FAILED, f"killed by signal {-code}")
    return Verdict(FAILED, f"exit code {code}")


PYTEST_ORDER = ("failed", "passed", "skipped", "xfailed", "xpassed", "error")


def _interpret_pytest(code: int | None, report: Path | None) -> Verdict:
    data: dict[str, Any] = {}
    if report is not None:
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
    counts: dict[str, int] = data.get("counts", {}) if isinstance(data, dict) else {}
    parts = [
        f"{counts[k]} {k if k != 'error' or counts[k] == 1 else 'errors'}"
        for k in PYTEST_ORDER
        if counts.get(k)
    ]
    detail = ", ".join(parts)
    figures: dict[str, Any] = {"counts": counts}
    if isinstance(data.get("durations"), dict):
        figures["durations"] = data["durations"]
    if code == 0:
        return Verdict(PASSED, detail or "no tests", figures)
    if code == 5:
        return Verdict(FAILED, "no tests ran", figures)
    if not data:
        return Verdict(FAILED, f"pytest exit code {code}, no results", figures)
    return Verdict(FAILED, detail or f"pytest exit code {code}", figures)


def execute(check: Check, ctx: RunContext) -> CheckResult:
    """Run ``check`` (with its retries) and say what became of it."""
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    log = ctx.log_dir / f"{check.name}.log"
    log.write_bytes(b"")
    attempts = 0
    duration = cpu = 0.0
    start: float | None = None
    verdict = Verdict(ERROR, "did not run")
    outcome: runner.ProcessOutcome | None = None
    while True:
        attempts += 1
        inv = prepare(check, ctx)
        if inv.report is not None:
            inv.report.parent.mkdir(parents=True, exist_ok=True)
            inv.report.unlink(missing_ok=True)
        header = ""
        if attempts > 1:
            header = (
                f"\n===== parex: {check.name}, attempt {attempts} of {check.retries + 1} =====\n"
            )
        outcome = runner.run_process(
            inv.argv,
            cwd=(ctx.rootdir / check.cwd),
            env=inv.env,
            log=log,
            timeout=check.timeout,
            shell=inv.shell,
            cancelled=ctx.cancelled,
            pgid_file=ctx.state_dir / f"{check.name}.pgid",
            header=header,
        )
        start = outcome.start if start is None else start
        duration += outcome.duration
        cpu += outcome.cpu
        verdict = interpret(check, outcome, inv)
        if verdict.status in (FAILED, TIMEOUT) and attempts <= check.retries:
            continue
        break
    status = verdict.status
    if status == PASSED and attempts > 1:
        status = FLAKY
    detail = verdict.detail
    if status == FLAKY:
        detail = f"{detail}; " if detail else ""
        detail += f"passed on attempt {attempts}"
    elif attempts > 1 and status in (FAILED, TIMEOUT):
        detail = f"{detail} ({attempts} attempts)" if detail else f"{attempts} attempts"
    reason = verdict.detail if status in (ERROR, CANCELLED, TIMEOUT) else ""
    return CheckResult(
        name=check.name,
        agent=check.agent,
        status=status,
        duration=duration,
        start=start,
        end=outcome.end if outcome else None,
        kind=check.kind,
        detail=detail,
        reason=reason,
        attempts=attempts,
        worker=ctx.worker,
        log_path=str(log),
        returncode=outcome.returncode if outcome else None,
        blocking=check.blocking,
        cpu=cpu,
        figures=verdict.figures,
        tail=runner.tail(log),
    )
