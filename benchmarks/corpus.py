"""Zero-config against real projects: does every default check agree with its own command?

    python benchmarks/corpus.py [--projects attrs,click|all] [--workdir DIR] [--keep] [--json FILE]

For each project of :data:`PROJECTS` (pinned releases), the script downloads the sdist from
PyPI (``pip download --no-binary :all: --no-deps NAME==VERSION``; nothing is fetched any other
way), unpacks it, makes one virtualenv per project holding the project (editable), its test
requirements, the tools the default gate can pick (:data:`TOOLS`) and this plugin (editable,
from this checkout), and then, in the project's directory:

1. ``pytest --parex-show-config``: the default gate and its header line;
2. ``pytest --parex --parex-json=...``: the zero-config gate and each check's verdict;
3. each default check's own command, run directly (``python -m pytest ARGS`` for the pytest
   kinds, the review command as written): exit code 0 passes.

It prints one row per check -- project, version, check, command, gate verdict, direct verdict,
whether they agree, seconds -- and the header line of each gate, and exits 1 when any row
disagrees. It needs the network (PyPI) and several minutes, so it is not part of the test suite.
The default projects are all but the slow ones and those blocked by a known defect of the
gate itself (``--projects all`` adds them). ``--keep``
keeps the temporary work directory; a ``--workdir`` is never removed, and its downloads and
virtualenvs are reused by the next run (the logs of every command are in its ``reports/``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
sys.path.insert(0, str(CHECKOUT))

from pytest_parex import config as cfg  # noqa: E402

TIMEOUT = 1200.0
"""Seconds one command (an install, a gate, a direct run) may take before its group is killed."""
TOOLS = ("ruff==0.17.6", "mypy==2.4.1", "pytest-benchmark==5.3.1")
"""What the default gate may pick besides the tests, in every project's environment: every
rule of the discovery gets a chance to fire."""


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    requires: tuple[str, ...]
    """Test requirements, as the project declares them (dependency group or extra)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables for the gate and the direct runs alike (the project's own knobs)."""
    why: str = ""
    """What this project brings to the corpus."""
    slow: bool = False
    """Only on request (``--projects NAME`` or ``--projects all``): minutes of tests."""
    blocked: str = ""
    """Only on request, for the reason given: a known disagreement that no discovery rule
    can mend (the gate's own defect, to be fixed there)."""

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"


PROJECTS: tuple[Project, ...] = (
    Project(
        "attrs",
        "26.1.0",
        (
            "cloudpickle",
            "hypothesis",
            "pympler",
            "pytest",
            "pytest-xdist[psutil]",
            "pytest-codspeed",
        ),
        why="src layout, two packages; [tool.mypy] without files; codspeed marker benchmarks "
        "in bench/ outside testpaths",
    ),
    Project(
        "click",
        "8.5.1",
        ("pytest",),
        why="src layout; [tool.mypy] files; testpaths; addopts -m",
    ),
    Project(
        "iniconfig",
        "2.3.1",
        ("pytest>=8.4.2", "pytest-xdist>=3.8"),
        why="src layout; [tool.mypy] without files; testpaths = testing in [tool.pytest]",
    ),
    Project(
        "packaging",
        "26.4",
        (
            "coverage[toml]>=7.2.0",
            "hypothesis>=6.0.0",
            "pip>=21.1",
            "pretend",
            "pytest>=6.2.0",
            "tomli_w",
        ),
        why="src layout; [tool.mypy] files with a module file; ruff format configured",
        slow=True,  # 64,000 tests: 7 minutes on a busy 2-core machine, twice
    ),
    Project(
        "pluggy",
        "1.7.0",
        ("pytest>=8", "pytest-benchmark", "coverage"),
        why="src layout; testpaths in tox.ini; pytest-benchmark fixture in testing/benchmark.py",
    ),
    Project(
        "more-itertools",
        "11.2.1",
        ("pytest",),
        why="flat layout; [mypy] in setup.cfg; unittest tests; ruff format configured",
    ),
    Project(
        "markdown-it-py",
        "4.3.0",
        ("flit_core>=3.4,<5", "pytest", "pytest-regressions", "pytest-timeout", "requests"),
        why="flat layout; [tool.mypy] without files; no testpaths",
        blocked="pytest-timeout's `timeout = 10` in its [tool.pytest.ini_options] applies to "
        "the gate's own items: checks longer than 10 s end in 'did not run' (issue 10, item 4)",
    ),
    Project(
        "six",
        "1.17.0",
        ("pytest",),
        why="one module (six.py) and test_six.py at the top; setup.py; no mypy or ruff config",
    ),
    Project(
        "idna",
        "3.20",
        ("pytest", "hypothesis"),
        why="flat layout; no mypy config; ruff config; no testpaths (tests/, tools/)",
    ),
    Project(
        "cattrs",
        "26.2.1",
        (
            "hypothesis>=6.135.26",
            "pytest>=8.4.1",
            "pytest-benchmark>=5.1.0",
            "immutables>=0.21",
            "coverage>=7.9.2",
            "pytest-xdist>=3.8.0",
            "ujson",
            "orjson",
            "msgpack",
            "PyYAML",
            "tomlkit",
            "cbor2",
            "pymongo",
            "msgspec",
        ),
        env={"FAST": "1"},
        why="src layout; no testpaths; pytest-benchmark fixture in bench/; [tool.pytest] table",
    ),
)


# ------------------------------------------------------------------------------ processes


@dataclass(frozen=True)
class Ran:
    returncode: int
    seconds: float
    output: str


class CorpusError(RuntimeError):
    pass


def clean_env(venv: Path | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything that would change a gate or a pytest run,
    with ``venv`` activated."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "PYTHON"))
    }
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


def run(argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float = TIMEOUT) -> Ran:
    """Run ``argv`` in its own process group; kill the group on timeout or on any error."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        # Whatever the command left in its group (a daemon, a stuck worker) goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return Ran(proc.returncode, time.perf_counter() - start, out.decode("utf-8", "replace"))


def must(ran: Ran, what: str) -> Ran:
    if ran.returncode != 0:
        tail = "\n".join(ran.output.splitlines()[-25:])
        raise CorpusError(f"{what}: exit code {ran.returncode}\n{tail}")
    return ran


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ set-up


def fetch(project: Project, workdir: Path) -> Path:
    """The unpacked sdist of ``project`` (downloaded through pip from PyPI once)."""
    source = workdir / "src" / project.dirname
    if (source / "pyproject.toml").is_file() or (source / "setup.py").is_file():
        return source
    sdists = workdir / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    spec = f"{project.name}=={project.version}"
    argv = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
    must(run([*argv, "-d", str(sdists), spec], workdir, clean_env(None)), f"pip download {spec}")
    wanted = {project.name.lower().replace("-", "_"), project.name.lower()}
    archives = [
        p
        for p in sdists.iterdir()
        if p.name.endswith(".tar.gz")
        and p.name[: -len(".tar.gz")].rsplit("-", 1)[0].lower() in wanted
        and p.name[: -len(".tar.gz")].rsplit("-", 1)[1] == project.version
    ]
    if len(archives) != 1:
        raise CorpusError(f"pip download {spec}: expected one sdist in {sdists}, got {archives}")
    unpack = workdir / "src" / f".{project.dirname}.tmp"
    shutil.rmtree(unpack, ignore_errors=True)
    with tarfile.open(archives[0]) as tar:
        tar.extractall(unpack, filter="data")
    (top,) = list(unpack.iterdir())
    top.rename(source)
    unpack.rmdir()
    return source


def make_venv(project: Project, source: Path, workdir: Path) -> Path:
    venv = workdir / "venvs" / project.dirname
    done = venv / ".corpus-installed"
    wanted = json.dumps([*project.requires, *TOOLS, str(CHECKOUT)])
    if done.is_file() and done.read_text() == wanted:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    must(run([sys.executable, "-m", "venv", str(venv)], workdir, clean_env(None)), "venv")
    python = str(venv / "bin" / "python")
    argv = [python, "-m", "pip", "install", "-q", "-e", str(source), "-e", str(CHECKOUT)]
    must(
        run([*argv, *project.requires, *TOOLS], source, clean_env(venv)),
        f"{project.dirname}: pip install",
    )
    done.write_text(wanted)
    return venv


def reset(source: Path) -> None:
    """Forget what earlier runs left behind: every run starts from the same tree."""
    for name in (".parex", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".benchmarks"):
        shutil.rmtree(source / name, ignore_errors=True)


# ------------------------------------------------------------------------------ comparison


@dataclass(frozen=True)
class Row:
    project: str
    version: str
    check: str
    command: str
    gate: str
    gate_detail: str
    direct: str
    direct_detail: str
    gate_seconds: float
    direct_seconds: float

    @property
    def agrees(self) -> bool:
        # A gate that errored or timed out gave no verdict: that never agrees.
        return self.gate in ("passed", "failed") and self.gate == self.direct


def direct_argv(check: cfg.Check, venv: Path) -> list[str]:
    """The check's own command, as a user would type it in the activated environment."""
    if check.runs_pytest:
        return [str(venv / "bin" / "python"), "-m", "pytest", *check.argv]
    if check.shell:
        return ["sh", "-c", check.argv[0]]
    return list(check.argv)


def shown(check: cfg.Check) -> str:
    if check.runs_pytest:
        return shlex.join(["pytest", *check.argv])
    return check.argv[0] if check.shell else shlex.join(check.argv)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:120] if lines else ""


def evaluate(project: Project, workdir: Path) -> tuple[list[Row], str, float]:
    """Rows of one project, its gate's header line, and the gate's wall time."""
    log(f"{project.dirname}: download")
    source = fetch(project, workdir)
    log(f"{project.dirname}: virtualenv")
    venv = make_venv(project, source, workdir)
    env = clean_env(venv, project.env)
    python = str(venv / "bin" / "python")
    reset(source)
    shown_config = run([python, "-m", "pytest", "--parex-show-config"], source, env)
    if shown_config.returncode != 0:
        raise CorpusError(
            f"{project.dirname}: pytest --parex-show-config: exit code {shown_config.returncode}"
            f"\n{shown_config.output[-3000:]}"
        )
    text = shown_config.output
    header = next((ln[2:] for ln in text.splitlines() if ln.startswith("# no [tool.parex]")), "")
    lines = text.splitlines()
    if "[tool.parex]" not in lines:
        raise CorpusError(f"{project.dirname}: no [tool.parex] in --parex-show-config:\n{text}")
    toml = "\n".join(lines[lines.index("[tool.parex]") :])
    table = tomllib.loads(toml)["tool"]["parex"]
    checks = cfg.parse(table, "default gate").checks

    log(f"{project.dirname}: gate ({', '.join(c.name for c in checks)})")
    report = workdir / "reports" / f"{project.dirname}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    reset(source)
    gate = run([python, "-m", "pytest", "--parex", f"--parex-json={report}"], source, env)
    (workdir / "reports" / f"{project.dirname}.gate.log").write_text(gate.output)
    results: dict[str, dict[str, Any]] = {}
    if report.is_file():
        results = {c["name"]: c for c in json.loads(report.read_text())["checks"]}
    elif gate.returncode not in (0, 1):
        log(f"{project.dirname}: the gate ended with exit code {gate.returncode}, no report")

    rows = []
    for check in checks:
        log(f"{project.dirname}: direct {check.name}")
        reset(source)
        ran = run(direct_argv(check, venv), source, env)
        (workdir / "reports" / f"{project.dirname}.{check.name}.log").write_text(ran.output)
        got = results.get(check.name, {})
        rows.append(
            Row(
                project.name,
                project.version,
                check.name,
                shown(check),
                str(got.get("status", f"gate exit {gate.returncode}")),
                str(got.get("detail") or got.get("reason") or ""),
                "passed" if ran.returncode == 0 else "failed",
                f"exit {ran.returncode}: {last_line(ran.output)}",
                float(got.get("duration", 0.0)),
                ran.seconds,
            )
        )
    return rows, header, gate.seconds


def table(rows: Sequence[Row], gates: Mapping[str, float]) -> str:
    head = (
        "project",
        "version",
        "check",
        "command",
        "gate",
        "direct",
        "agree",
        "gate s",
        "direct s",
    )
    body = [
        (
            r.project,
            r.version,
            r.check,
            r.command,
            r.gate,
            r.direct,
            "yes" if r.agrees else "NO",
            f"{r.gate_seconds:.1f}",
            f"{r.direct_seconds:.1f}",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in body
    ]
    lines.append("")
    lines += [f"gate wall time: {name} {secs:.1f} s" for name, secs in gates.items()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [p.name for p in PROJECTS]
    usual = [p.name for p in PROJECTS if not p.slow and not p.blocked]
    parser.add_argument(
        "--projects",
        default=",".join(usual),
        help=f"Comma-separated of {','.join(names)}, or all (default: all but the slow or "
        f"blocked {','.join(n for n in names if n not in usual)})",
    )
    parser.add_argument(
        "--workdir", default=None, help="Work here, reusing earlier downloads and virtualenvs"
    )
    parser.add_argument("--keep", action="store_true", help="Keep the work directory")
    parser.add_argument("--json", default=None, help="Also write the rows here as JSON")
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.projects.split(",") if n.strip()]
    wanted = names if wanted == ["all"] else wanted
    unknown = sorted(set(wanted) - set(names))
    if unknown or not wanted:
        parser.error(f"unknown project(s) {unknown}" if unknown else "--projects is empty")
    chosen = [p for p in PROJECTS if p.name in wanted]

    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="parex-corpus-")).resolve()
    rows: list[Row] = []
    headers: dict[str, str] = {}
    gates: dict[str, float] = {}
    failures: list[str] = []
    try:
        for project in chosen:
            try:
                found, header, seconds = evaluate(project, workdir)
            except CorpusError as exc:
                failures.append(str(exc))
                log(str(exc))
                continue
            rows += found
            headers[project.dirname] = header
            gates[project.dirname] = seconds
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"work directory kept: {workdir}")
    print(table(rows, gates))
    for project in PROJECTS:
        if project.name not in wanted and (project.slow or project.blocked):
            why = project.blocked or "slow"
            print(f"left out: {project.dirname} ({why}); --projects {project.name} runs it")
    for name, header in headers.items():
        print(f"{name}: {header}")
    for failure in failures:
        print(f"\nnot evaluated: {failure}")
    disagree = [r for r in rows if not r.agrees]
    for r in disagree:
        print(
            f"\nDISAGREE {r.project} {r.check}: gate {r.gate} ({r.gate_detail}); "
            f"direct {r.direct} ({r.direct_detail})"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": [r.__dict__ for r in rows], "headers": headers}, indent=2) + "\n"
        )
    return 1 if disagree or failures else 0


if __name__ == "__main__":
    sys.exit(main())
