"""One check, from its definition to its result: the environment it runs in, its kind's
command, the process (:mod:`pytest_parex.runner`), retries, and its kind's verdict.

Runs wherever the check runs (an xdist worker, or the gate's own process); imports no pytest.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import replace
from pathlib import Path

from pytest_parex import kinds, runner
from pytest_parex.config import Check
from pytest_parex.files import publish
from pytest_parex.kinds.base import RunContext, Verdict
from pytest_parex.results import CheckResult, Status

ACTIVE_ENV = "PYTEST_PAREX_ACTIVE"
"""Config files of the gates this process runs inside (os.pathsep-separated): a check that
starts ``pytest --parex`` on the same config again would recurse without end."""
CHECK_ENV = "PYTEST_PAREX_CHECK"
XDIST_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")
"""xdist sets these in its workers; a check's own child pytest must not believe it is one."""


def environment(check: Check, ctx: RunContext) -> dict[str, str]:
    """The environment a check's process gets (its kind may add to it)."""
    env = dict(os.environ)
    for name in XDIST_ENV:
        env.pop(name, None)
    active = [p for p in env.get(ACTIVE_ENV, "").split(os.pathsep) if p]
    env[ACTIVE_ENV] = os.pathsep.join([*active, ctx.config_path])
    env[CHECK_ENV] = check.name
    # A nested `pytest -n auto` would take every core while the other checks use them too.
    env["PYTEST_XDIST_AUTO_NUM_WORKERS"] = str(max(1, ctx.cores))
    # The gate's own interpreter comes first on PATH, as in an activated virtualenv: `ruff`
    # and `mypy` installed beside pytest are found even when the venv is not activated.
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join([bindir, path]) if path else bindir
    env.update(dict(check.env))
    return env


def _verdict(
    check: Check,
    outcome: runner.ProcessOutcome,
    inv: kinds.base.Invocation,
    log: Path,
    ctx: RunContext,
) -> Verdict:
    if outcome.ending is runner.Ending.TIMED_OUT:
        return Verdict(Status.TIMEOUT, outcome.reason)
    if outcome.ending is runner.Ending.CANCELLED:
        return Verdict(Status.CANCELLED, outcome.reason)
    if outcome.ending is runner.Ending.NOT_STARTED:
        return Verdict(Status.ERROR, outcome.reason)
    return kinds.get(check.kind).interpret(check, outcome.returncode, inv, log, ctx)


def log_path(check: Check, ctx: RunContext) -> Path:
    """Where a check's output is kept once it ended (``.parex/logs/NAME.log``)."""
    return ctx.log_dir / f"{check.file_name}.log"


def live_log(check: Check, ctx: RunContext) -> Path:
    """Where a check's output goes while it runs: in the run's own directory, so two gates
    at once never write one file; :func:`execute` moves it to :func:`log_path` whole."""
    return ctx.state_dir / f"{check.file_name}.log"


def execute(check: Check, ctx: RunContext) -> CheckResult:
    """Run ``check`` (with its retries) and say what became of it."""
    ctx.state_dir.mkdir(parents=True, exist_ok=True)
    live = live_log(check, ctx)
    live.write_bytes(b"")
    try:
        result = _execute(check, ctx, live)
    finally:
        publish(live, log_path(check, ctx))
    return result


def _execute(check: Check, ctx: RunContext, log: Path) -> CheckResult:
    kind = kinds.get(check.kind)
    attempts = 0
    duration = cpu = 0.0
    start: float | None = None
    verdict = Verdict(Status.ERROR, "did not run")
    outcome: runner.ProcessOutcome | None = None
    while True:
        attempts += 1
        inv = kind.prepare(check, ctx, environment(check, ctx))
        with contextlib.suppress(OSError):  # the log is gone: run_process will say so
            inv = replace(inv, log_offset=log.stat().st_size)
        for path in inv.files.values():
            path.unlink(missing_ok=True)
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
            pgid_file=ctx.state_dir / f"{check.file_name}.pgid",
            header=header,
        )
        start = outcome.start if start is None else start
        duration += outcome.duration
        cpu += outcome.cpu
        verdict = _verdict(check, outcome, inv, log, ctx)
        if verdict.status in (Status.FAILED, Status.TIMEOUT) and attempts <= check.retries:
            continue
        break
    status = verdict.status
    if status is Status.PASSED and attempts > 1:
        status = Status.FLAKY
    detail = verdict.detail
    if status is Status.FLAKY:
        detail = f"{detail}; " if detail else ""
        detail += f"passed on attempt {attempts}"
    elif attempts > 1 and status in (Status.FAILED, Status.TIMEOUT):
        detail = f"{detail} ({attempts} attempts)" if detail else f"{attempts} attempts"
    reason = verdict.detail if status in (Status.ERROR, Status.CANCELLED, Status.TIMEOUT) else ""
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
        log_path=str(log_path(check, ctx)),
        returncode=outcome.returncode if outcome else None,
        blocking=check.blocking,
        cpu=cpu,
        figures=verdict.figures,
        summary=verdict.summary,
        tail="" if verdict.quiet else runner.tail(log),
    )
