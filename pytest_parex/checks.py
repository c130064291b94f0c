"""Check kinds: what to run for a check, and what its outcome means.

A kind prepares an :class:`Invocation` (argv, environment, the report files the child writes)
and interprets the finished process into a status, a detail phrase and figures:

* ``command`` -- any command; exit code 0 passes.
* ``review`` -- a linter or type checker; its issues are parsed (ruff JSON, mypy lines, or
  ``file:line: message``) into a count and the first issues.
* ``tests`` -- a child ``python -m pytest``; counts read from the child's own results, optionally
  split into shards.
* ``benchmarks`` -- pytest-benchmark in a child pytest (never inside an xdist worker's session),
  compared with a saved baseline.
* ``leaks`` -- the child pytest re-runs every test under tracemalloc
  (:mod:`pytest_parex.child.leaks`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_parex import runner
from pytest_parex.child.report import REPORT_ENV
from pytest_parex.config import Check
from pytest_parex.kinds import benchcmp, review
from pytest_parex.results import (
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
# xdist sets these in its workers; a check's own child pytest must not believe it is one.
XDIST_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")
MAX_ISSUES = 200
"""Review issues kept in a result's figures (the count is always exact)."""
SHOWN_ISSUES = 20
"""Review issues listed in the failure report."""
PARSE_BYTES = 8 * 1024 * 1024
"""At most this much of a review tool's output is parsed (its log keeps everything)."""


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
    save_baseline: bool = False
    """``--parex-save-baseline``: benchmark checks store their results as the new baseline."""


@dataclass(frozen=True)
class Invocation:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    shell: bool = False
    files: Mapping[str, Path] = field(default_factory=dict)
    """Report files the child writes: "pytest", "benchmark", "leaks"."""


@dataclass(frozen=True)
class Verdict:
    status: str
    detail: str
    figures: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    """Text that leads the failure report (issues, regressions, leaks) before the log tail."""


def _base_env(check: Check, ctx: RunContext) -> dict[str, str]:
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


def shard_durations_path(state_dir: Path, check: Check) -> Path:
    return state_dir / f"{check.base_name}.shard-durations.json"


def prepare(check: Check, ctx: RunContext) -> Invocation:
    env = _base_env(check, ctx)
    if not check.runs_pytest:
        command = check.argv
        if check.kind == "review" and not check.shell:
            command = tuple(review.machine_readable_argv(list(command)))
        return Invocation(command, env, shell=check.shell)
    files = {"pytest": ctx.state_dir / f"{check.file_name}.pytest.json"}
    env[REPORT_ENV] = str(files["pytest"])
    argv = [sys.executable, "-m", "pytest", *check.argv]
    if check.shard is not None:
        index, total = check.shard
        durations = shard_durations_path(ctx.state_dir, check)
        argv += ["-p", "pytest_parex.child.shard", f"--parex-shard={index}/{total}"]
        argv += [f"--parex-shard-durations={durations}"]
    if check.kind == "benchmarks":
        files["benchmark"] = ctx.state_dir / f"{check.file_name}.benchmark.json"
        # pytest-benchmark disables itself under xdist: never let the child distribute.
        argv += ["-n", "0", f"--benchmark-json={files['benchmark']}"]
    elif check.kind == "leaks":
        files["leaks"] = ctx.state_dir / f"{check.file_name}.leaks.json"
        argv += ["-n", "0", "-p", "pytest_parex.child.leaks", "--parex-leaks"]
        argv += [f"--parex-leaks-iterations={check.iterations}"]
        argv += [f"--parex-leaks-threshold={check.threshold}"]
        argv += [f"--parex-leaks-report={files['leaks']}"]
    argv += ["-p", "pytest_parex.child.report"]
    return Invocation(tuple(argv), env, files=files)


def interpret(
    check: Check, outcome: runner.ProcessOutcome, inv: Invocation, log: Path, ctx: RunContext
) -> Verdict:
    if outcome.status == "timeout":
        return Verdict(TIMEOUT, outcome.reason)
    if outcome.status == "cancelled":
        return Verdict(CANCELLED, outcome.reason)
    if outcome.status == "not-found":
        return Verdict(ERROR, outcome.reason)
    code = outcome.returncode
    if check.kind == "review":
        return _interpret_review(check, code, log, ctx.rootdir)
    if check.kind == "benchmarks":
        return _interpret_benchmarks(check, code, inv, ctx)
    if check.kind == "leaks":
        return _interpret_leaks(code, inv)
    if check.kind == "tests":
        return _interpret_pytest(code, inv.files.get("pytest"), shard=check.shard is not None)
    if code == 0:
        return Verdict(PASSED, "")
    return Verdict(FAILED, _exit_phrase(code))


def _exit_phrase(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


# ------------------------------------------------------------------------------------ review


def _read_head(path: Path, limit: int = PARSE_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _interpret_review(check: Check, code: int | None, log: Path, root: Path) -> Verdict:
    text = _read_head(log)
    missing = _missing_module(text)
    if code != 0 and missing:
        return Verdict(ERROR, f"{missing} is not installed in this environment")
    parser = {
        "ruff-check": review.parse_ruff_json,
        "ruff-format": review.parse_ruff_format_check,
        "mypy": review.parse_mypy,
    }.get(check.tool, review.parse_generic)
    issues = parser(text, root)
    counted = [i for i in issues if i.severity != "note"]
    figures: dict[str, Any] = {
        "tool": check.tool or "generic",
        "issue_count": len(counted),
        "issues": [_issue_dict(i) for i in counted[:MAX_ISSUES]],
    }
    summary = ""
    if counted:
        shown = [i.format() for i in counted[:SHOWN_ISSUES]]
        more = len(counted) - len(shown)
        summary = "\n".join(shown + ([f"... and {more} more"] if more > 0 else []))
    if code == 0:
        return Verdict(PASSED, review.summarize(counted), figures, summary)
    detail = review.summarize(counted) if counted else _exit_phrase(code)
    return Verdict(FAILED, detail, figures, summary)


def _issue_dict(issue: review.Issue) -> dict[str, Any]:
    return {
        "path": issue.path,
        "line": issue.line,
        "column": issue.column,
        "code": issue.code,
        "message": issue.message,
        "severity": issue.severity,
    }


def _missing_module(text: str) -> str:
    """``python -m TOOL`` for a tool that is not installed says so on its first lines."""
    marker = "No module named "
    for line in text.splitlines()[:5]:
        if marker in line:
            return line.split(marker, 1)[1].strip().strip("'\"")
    return ""


# ------------------------------------------------------------------------------------ pytest


PYTEST_ORDER = ("failed", "passed", "skipped", "xfailed", "xpassed", "error")


def _load_json(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _interpret_pytest(code: int | None, report: Path | None, *, shard: bool = False) -> Verdict:
    data = _load_json(report)
    counts = data.get("counts", {})
    counts = counts if isinstance(counts, dict) else {}
    parts = [
        f"{counts[k]} {k if k != 'error' or counts[k] == 1 else 'errors'}"
        for k in PYTEST_ORDER
        if counts.get(k)
    ]
    detail = ", ".join(parts)
    figures: dict[str, Any] = {"counts": counts}
    if isinstance(data.get("durations"), dict):
        figures["durations"] = data["durations"]
    if isinstance(data.get("tests"), list):
        figures["tests"] = [t[0] for t in data["tests"] if isinstance(t, list) and t]
    if code == 0:
        return Verdict(PASSED, detail or "no tests", figures)
    if code == 5:
        if shard:
            # More shards than test files: an empty shard has nothing to fail.
            return Verdict(PASSED, "no tests in this shard", figures)
        return Verdict(FAILED, "no tests ran", figures)
    if not data:
        return Verdict(FAILED, f"pytest {_exit_phrase(code)}, no results", figures)
    return Verdict(FAILED, detail or f"pytest {_exit_phrase(code)}", figures)


def _interpret_benchmarks(
    check: Check, code: int | None, inv: Invocation, ctx: RunContext
) -> Verdict:
    base = _interpret_pytest(code, inv.files.get("pytest"))
    path = inv.files["benchmark"]
    try:
        current = benchcmp.load_benchmarks(path)
    except (OSError, ValueError):
        current = {}
    figures = dict(base.figures)
    figures["exclusive"] = check.exclusive
    if base.status != PASSED or not current:
        detail = base.detail if current else f"{base.detail}; no benchmark results".lstrip("; ")
        return Verdict(FAILED, detail, figures)
    baseline = ctx.rootdir / (check.baseline or f".parex/benchmarks/{check.file_name}.json")
    threshold = benchcmp.parse_threshold(check.fail_if_slower or "mean:10%")
    if ctx.save_baseline or check.save_baseline:
        baseline.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, baseline)
        figures["baseline_saved"] = str(baseline)
        noun = "benchmark" if len(current) == 1 else "benchmarks"
        return Verdict(PASSED, f"{len(current)} {noun}, baseline saved", figures)
    saved: dict[str, dict[str, float]] = {}
    if baseline.is_file():
        try:
            saved = benchcmp.load_benchmarks(baseline)
        except (OSError, ValueError):
            saved = {}
    comparison = benchcmp.compare(current, saved, threshold)
    figures["changes"] = comparison.changes
    figures["worst"] = list(comparison.worst) if comparison.worst else None
    detail = comparison.detail()
    if saved and not comparison.ok and check.fail_if_slower:
        lines = [
            f"{comparison.label(name)}: {change:+.1f}% ({threshold.stat})"
            for name, change in comparison.regressions
        ]
        summary = f"slower than the baseline {baseline} by more than {threshold}:\n" + "\n".join(
            lines
        )
        return Verdict(FAILED, detail, figures, summary)
    return Verdict(PASSED, detail, figures)


def _interpret_leaks(code: int | None, inv: Invocation) -> Verdict:
    base = _interpret_pytest(code, inv.files.get("pytest"))
    data = _load_json(inv.files.get("leaks"))
    summary_data = data.get("summary", {}) if isinstance(data.get("summary"), dict) else {}
    tests = [t for t in data.get("tests", []) if isinstance(t, dict)]
    leaking = [t for t in tests if t.get("leaking")]
    checked = int(summary_data.get("tests_checked", len(tests)) or 0)
    figures = dict(base.figures)
    figures["leaks"] = leaking
    figures["tests_checked"] = checked
    if not data:
        return Verdict(
            base.status if base.status != PASSED else FAILED,
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
            FAILED, f"{len(leaking)} leaking {noun} of {checked}", figures, "\n".join(lines)
        )
    if base.status != PASSED:
        return Verdict(base.status, base.detail, figures)
    return Verdict(PASSED, f"no leaks in {checked} tests", figures)


# ------------------------------------------------------------------------------------ running


def execute(check: Check, ctx: RunContext) -> CheckResult:
    """Run ``check`` (with its retries) and say what became of it."""
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    ctx.state_dir.mkdir(parents=True, exist_ok=True)
    log = ctx.log_dir / f"{check.file_name}.log"
    log.write_bytes(b"")
    attempts = 0
    duration = cpu = 0.0
    start: float | None = None
    verdict = Verdict(ERROR, "did not run")
    outcome: runner.ProcessOutcome | None = None
    while True:
        attempts += 1
        inv = prepare(check, ctx)
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
        verdict = interpret(check, outcome, inv, log, ctx)
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
        summary=verdict.summary,
        # ruff's JSON is for us, not for people: its parsed issues are the report.
        tail="" if verdict.summary and check.tool == "ruff-check" else runner.tail(log),
    )
