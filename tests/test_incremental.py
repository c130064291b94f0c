"""End to end: the incremental gate replays a check's last pass when nothing it depends on
changed, and only then (real files, real processes; the pure parts are in
test_cache_files.py and test_cache_store.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_parex.config import to_toml

# A check that counts its runs in ../PROJECT-runs/NAME (one line a run; outside the project,
# whose every file is an input of a check without reads) and fails when FAIL names it.
COUNT = """\
import os, sys
name = sys.argv[1]
runs = os.path.join("..", os.path.basename(os.getcwd()) + "-runs")
os.makedirs(runs, exist_ok=True)
with open(os.path.join(runs, name), "a") as fh:
    fh.write("run\\n")
print(f"{name} ran", flush=True)
sys.exit(1 if name in os.environ.get("FAIL", "").split(",") else 0)
"""


def _counter(project: Project) -> None:
    (project.path / "count.py").write_text(COUNT)


def _runs(project: Project, name: str) -> int:
    path = project.path.parent / f"{project.path.name}-runs" / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def _check(name: str, **keys: Any) -> dict[str, Any]:
    return {"run": [sys.executable, "count.py", name], **keys}


@dataclass
class Gate:
    """One run of the gate: pytest's result and the JSON report it wrote (none for a plan)."""

    result: pytest.RunResult
    report: dict[str, Any]

    @property
    def ret(self) -> int:
        return int(self.result.ret)

    @property
    def stdout(self) -> pytest.LineMatcher:
        return self.result.stdout

    @property
    def cached(self) -> set[str]:
        return {c["name"] for c in self.report.get("checks", []) if c["cached"]}

    def assert_outcomes(self, **outcomes: int) -> None:
        self.result.assert_outcomes(**outcomes)


def _gate(project: Project, *args: str) -> Gate:
    report = project.path / "report.json"
    report.unlink(missing_ok=True)
    result = project.pytester.runpytest_subprocess(
        "--parex", "--parex-json=report.json", "-p", "no:randomly", *args
    )
    return Gate(result, json.loads(report.read_text()) if report.exists() else {})


def _three(project: Project, **extra: Any) -> None:
    """lint reads src/, docs reads docs/, all reads every file of the project: in git, the
    tracked and the untracked unignored ones (pytester's own files are ignored here)."""
    subprocess.run(["git", "init", "-q"], cwd=project.path, check=True)
    (project.path / ".gitignore").write_text("runpytest-*\nstdout\nstderr\n")
    _counter(project)
    for d in ("src", "docs"):
        (project.path / d).mkdir(exist_ok=True)
    (project.path / "src" / "a.py").write_text("A = 1\n")
    (project.path / "docs" / "index.md").write_text("# docs\n")
    project.write(
        {
            "lint": _check("lint", reads=["src/**"]),
            "docs": _check("docs", reads=["docs/**"], agent="debugger"),
            "all": _check("all", agent="test-runner"),
        },
        **extra,
    )


def test_an_unchanged_rerun_replays_every_pass_and_starts_no_process(project: Project) -> None:
    _three(project)
    first = _gate(project)
    assert first.ret == 0, first.stdout.str()
    assert first.cached == set()
    second = _gate(project, "-v")
    assert second.ret == 0, second.stdout.str()
    assert second.cached == {"lint", "docs", "all"}
    # No check process ran again.
    assert [_runs(project, n) for n in ("lint", "docs", "all")] == [1, 1, 1]
    second.assert_outcomes(passed=3)
    second.stdout.fnmatch_lines(
        [
            "*; one after another (every check is cached)",
            "[[]parex[]] lint cached (passed in *s before)",
            "lint*code-reviewer*cached*s*",
            "sequential 0.00s, wall *, 3 cached, saved *s",
            "parex: passed",
        ]
    )
    totals = second.report["totals"]
    assert totals["cached"] == 3 and totals["sequential"] == 0
    statuses = {c["name"]: c["status"] for c in second.report["checks"]}
    assert statuses == {"lint": "passed", "docs": "passed", "all": "passed"}
    # Asked for xdist workers, a fully cached gate still starts none.
    workers = _gate(project, "-n", "2")
    assert workers.cached == {"lint", "docs", "all"}
    workers.stdout.fnmatch_lines(["*; one after another (every check is cached)"])
    workers.stdout.no_fnmatch_line("*xdist workers*")
    # The stored output is shown again, from the restored log.
    shown = _gate(project, "--parex-show-output")
    shown.stdout.fnmatch_lines(["*lint (passed)*", "lint ran"])
    assert (project.path / ".parex" / "logs" / "lint.log").read_text() == "lint ran\n"


def test_an_edit_reruns_exactly_the_checks_that_read_the_file(project: Project) -> None:
    _three(project)
    assert _gate(project).ret == 0
    (project.path / "src" / "a.py").write_text("A = 2\n")
    edited = _gate(project, "--parex-plan")
    edited.stdout.fnmatch_lines_random(
        [
            "*lint*runs: src/a.py changed",
            "*all*runs: src/a.py changed",
            "cached (replayed, not run, *): docs",
        ]
    )
    rerun = _gate(project, "-v")
    assert rerun.ret == 0, rerun.stdout.str()
    assert rerun.cached == {"docs"}
    rerun.stdout.fnmatch_lines_random(
        [
            "[[]parex[]] lint started on * (code-reviewer): src/a.py changed",
            "[[]parex[]] all started on * (test-runner): src/a.py changed",
        ]
    )
    assert [_runs(project, n) for n in ("lint", "docs", "all")] == [2, 1, 2]


def test_touch_without_change_reruns_nothing_but_restored_mtimes_do(project: Project) -> None:
    _three(project)
    assert _gate(project).ret == 0
    source = project.path / "src" / "a.py"
    old = source.stat()
    os.utime(source, ns=(old.st_atime_ns + 10**9, old.st_mtime_ns + 10**9))
    touched = _gate(project)
    assert touched.cached == {"lint", "docs", "all"}
    # Same size, same mtime as before, other content: content decides, never mtimes.
    source.write_text("A = 3\n")
    os.utime(source, ns=(old.st_atime_ns, old.st_mtime_ns))
    changed = _gate(project)
    assert changed.cached == {"docs"}


def test_command_env_and_tool_changes_rerun(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _counter(project)
    bindir = project.path / "bin"
    bindir.mkdir()
    tool = bindir / "mytool"
    tool.write_text(f"#!{sys.executable}\nprint('mytool 1.0')\n")
    tool.chmod(0o755)

    def write(mode: str, command: str = "run") -> None:
        project.write(
            {
                "tool": {"run": ["mytool"], "reads": ["nothing/**"]},
                "env": _check("env", reads=["nothing/**"], env={"MODE": mode}, agent="debugger"),
                "other": {
                    "run": [sys.executable, "count.py", "other", command],
                    "reads": ["nothing/**"],
                    "agent": "test-runner",
                },
            }
        )

    write("a")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert _gate(project).cached == set()
    assert _gate(project).cached == {"tool", "env", "other"}
    tool.write_text(f"#!{sys.executable}\nprint('mytool 1.1')\n")
    plan = _gate(project, "--parex-plan")
    plan.stdout.fnmatch_lines(["*tool*runs: mytool executable changed"])
    assert _gate(project).cached == {"env", "other"}
    write("b")
    plan = _gate(project, "--parex-plan")
    plan.stdout.fnmatch_lines(["*env*runs: env changed", "cached (*): other, tool"])
    assert _gate(project).cached == {"tool", "other"}
    write("b", command="again")
    plan = _gate(project, "--parex-plan")
    plan.stdout.fnmatch_lines(["*other*runs: argv changed", "cached (*): env, tool"])
    # A variable every check's key holds (PATH, PYTHON*, PYTEST_*...) reruns them all.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-q")
    plan = _gate(project, "--parex-plan")
    plan.stdout.fnmatch_lines(["*runs: PYTEST_ADDOPTS changed"])


def test_an_installed_version_change_reruns_python_checks(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _counter(project)
    site = project.path / "site"
    site.mkdir()
    (site / "fakepkg-1.0.dist-info").mkdir()
    project.write(
        {
            "py": _check("py", reads=["nothing/**"]),
            "sh": {"run": ["true"], "reads": ["nothing/**"], "agent": "debugger"},
        }
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    assert _gate(project).cached == set()
    assert _gate(project).cached == {"py", "sh"}
    (site / "fakepkg-1.0.dist-info").rename(site / "fakepkg-1.1.dist-info")
    plan = _gate(project, "--parex-plan")
    # A Python check depends on what is installed; a system program does not.
    plan.stdout.fnmatch_lines(["*py*runs: fakepkg 1.0 → 1.1", "cached (*): sh"])
    assert _gate(project).cached == {"sh"}


def test_failed_and_flaky_runs_are_never_replayed(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _counter(project)
    (project.path / "flaky.py").write_text(
        "import os, sys\n"
        "path = os.path.join('..', os.path.basename(os.getcwd()) + '-runs', 'flaky')\n"
        "os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "n = len(open(path).readlines()) if os.path.exists(path) else 0\n"
        "open(path, 'a').write('run\\n')\n"
        "sys.exit(1 if n % 2 == 0 else 0)\n"
    )
    project.write(
        {
            "bad": _check("bad", reads=["nothing/**"]),
            "flaky": {"run": [sys.executable, "flaky.py"], "reads": ["x/**"], "retries": 1},
        }
    )
    monkeypatch.setenv("FAIL", "bad")
    first = _gate(project)
    assert first.ret == 1
    flaky = {c["name"]: c["status"] for c in first.report["checks"]}
    assert flaky == {"bad": "failed", "flaky": "flaky"}
    second = _gate(project, "--parex-plan")
    second.stdout.fnmatch_lines_random(
        ["*bad*runs: last run failed", "*flaky*runs: last run was flaky"]
    )
    assert _gate(project).cached == set()
    assert _runs(project, "bad") == 2


@pytest.mark.parametrize(
    "off",
    [
        ["--parex-no-cache"],
        ["-p", "no:cacheprovider"],
        ["--cache-clear"],
        ["env"],
        ["key"],
    ],
    ids=["option", "no-cacheprovider", "cache-clear", "env", "cache-false"],
)
def test_turning_the_cache_off(
    project: Project, monkeypatch: pytest.MonkeyPatch, off: list[str]
) -> None:
    _counter(project)
    checks = {"a": _check("a", reads=["x/**"])}
    if off == ["key"]:
        checks["a"]["cache"] = False
    project.write(checks)
    args = [] if off in (["env"], ["key"]) else off
    assert _gate(project).ret == 0
    if off == ["env"]:
        monkeypatch.setenv("PYTEST_PAREX_CACHE", "0")
    again = _gate(project, *args)
    assert again.ret == 0 and again.cached == set()
    assert _runs(project, "a") == 2


def _entry_of(project: Project, name: str, store: Path | None = None) -> Path:
    """The entry file of a check's last pass, found through its head."""
    folder = store or project.path / ".pytest_cache" / "d" / "parex-store"
    (head,) = (folder / "heads").glob(f"{name}-*.json")
    address = json.loads(head.read_text())["address"]
    return folder / "entries" / address[:2] / f"{address[2:]}.entry"


def test_a_corrupt_entry_is_a_miss_with_a_warning(project: Project) -> None:
    _three(project)
    assert _gate(project).ret == 0
    entry = _entry_of(project, "lint")
    entry.write_bytes(b"\x00garbage{")
    again = _gate(project)
    assert again.ret == 0
    assert again.cached == {"docs", "all"}
    again.stdout.fnmatch_lines(["parex cache: the entry of 'lint' is corrupt*"])
    assert "Traceback" not in again.stdout.str()
    assert _gate(project).cached == {"lint", "docs", "all"}  # rewritten by the rerun


def test_two_gates_at_once_neither_crash_nor_replay_wrongly(project: Project) -> None:
    _three(project)
    args = [sys.executable, "-m", "pytest", "--parex", "-p", "no:randomly", "-q"]
    for _ in range(2):
        # pytester.popen: the same environment as _gate's runs (it sets PYTHONPATH, which
        # every check's key holds).
        procs = [
            project.pytester.popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
            for _ in range(2)
        ]
        for proc in procs:
            out, _ = proc.communicate(timeout=300)
            text = out.decode(errors="replace")
            assert proc.returncode == 0, text
            assert "Traceback" not in text and "INTERNALERROR" not in text
    assert _gate(project).cached == {"lint", "docs", "all"}
    (project.path / "src" / "a.py").write_text("A = 5\n")
    after = _gate(project)
    assert after.cached == {"docs"}


def test_needs_on_a_replayed_dependency_and_a_dependent_of_a_rerun(project: Project) -> None:
    _counter(project)
    (project.path / "src").mkdir()
    (project.path / "src" / "a.py").write_text("A = 1\n")
    (project.path / "docs").mkdir()
    project.write(
        {
            "build": _check("build", reads=["src/**"]),
            "docs": _check("docs", reads=["docs/**"], needs=["build"], agent="debugger"),
            "pkg": _check("pkg", reads=["docs/**"], agent="test-runner"),
        }
    )
    assert _gate(project).ret == 0
    (project.path / "docs" / "new.md").write_text("new\n")
    # docs' input changed: it runs after its cached dependency, which counts as passed.
    rerun = _gate(project)
    assert rerun.ret == 0 and rerun.cached == {"build"}
    (project.path / "src" / "a.py").write_text("A = 2\n")
    # build runs: docs, which needs it, runs too even though its own inputs did not change.
    plan = _gate(project, "--parex-plan")
    plan.stdout.fnmatch_lines_random(
        ["*build*runs: src/a.py changed", "*docs*runs: needs build, which runs"]
    )
    assert _gate(project).cached == {"pkg"}


def test_gate_any_and_fail_fast_with_replayed_checks(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _counter(project)
    project.write(
        {
            "quick": _check("quick", reads=["q/**"]),
            "slow": {"run": project.rec("slow", 30), "reads": ["s/**"], "agent": "debugger"},
        },
        gate="any",
    )
    (project.path / "s").mkdir()
    first = _gate(project)
    assert first.ret == 0
    statuses = {c["name"]: c["status"] for c in first.report["checks"]}
    assert statuses["quick"] == "passed" and statuses["slow"] == "cancelled"
    # The replayed pass decides gate any at once: slow never starts.
    second = _gate(project)
    assert second.ret == 0 and second.cached == {"quick"}
    slow = next(c for c in second.report["checks"] if c["name"] == "slow")
    assert slow["status"] == "cancelled" and slow["start"] is None
    assert "gate any passed with quick" in slow["reason"]
    # fail-fast: a replayed pass never fails, the failing check still cancels the rest.
    project.write(
        {
            "quick": _check("quick", reads=["q/**"]),
            "bad": _check("bad", reads=["b/**"], agent="test-runner"),
            "slow": {"run": project.rec("slow", 30), "reads": ["s/**"], "agent": "debugger"},
        },
        **{"on-failure": "fail-fast"},
    )
    monkeypatch.setenv("FAIL", "bad")
    third = _gate(project)
    assert third.ret == 1
    statuses = {c["name"]: (c["status"], c.get("cached")) for c in third.report["checks"]}
    assert statuses == {
        "quick": ("passed", True),
        "bad": ("failed", False),
        "slow": ("cancelled", False),
    }


def test_junitxml_and_json_mark_replayed_checks(project: Project) -> None:
    _three(project)
    assert _gate(project).ret == 0
    result = _gate(project, "--junitxml=out.xml")
    assert result.ret == 0
    cases = ET.parse(project.path / "out.xml").getroot().findall(".//testcase")
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.findall(".//property")}
        for case in cases
    }
    assert {name: p["parex_cached"] for name, p in props.items()} == dict.fromkeys(
        ("lint", "docs", "all"), "true"
    )
    assert all(c["cached"] is True for c in result.report["checks"])


# ------------------------------------------------------------------------------ property

FILES = ("a/x.txt", "a/y.txt", "b/deep/z.txt", "top.cfg")
CHECKS = {"ca": ["a/*.txt"], "cb": ["b/**"], "cc": ["*.cfg", "a/y.txt"]}

_op = st.one_of(
    st.tuples(st.just("edit"), st.sampled_from(FILES), st.binary(max_size=4)),
    st.tuples(st.just("touch"), st.sampled_from(FILES), st.just(b"")),
    st.tuples(st.just("restored"), st.sampled_from(FILES), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("rename"), st.sampled_from(FILES), st.just(b"")),
    st.tuples(st.just("delete"), st.sampled_from(FILES), st.just(b"")),
)


def _matched(root: Path, patterns: list[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for pattern in patterns:
        for path in root.glob(pattern.replace("b/**", "b/**/*")):
            if path.is_file():
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def _apply(root: Path, op: tuple[str, str, bytes]) -> None:
    kind, rel, data = op
    path = root / rel
    if kind == "edit":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    elif kind == "touch" and path.exists():
        st_ = path.stat()
        os.utime(path, ns=(st_.st_atime_ns + 10**9, st_.st_mtime_ns + 10**9))
    elif kind == "restored" and path.exists():
        st_ = path.stat()
        path.write_bytes(data + path.read_bytes()[len(data) :])
        os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    elif kind == "rename" and path.exists():
        path.rename(path.with_name("renamed-" + path.name))
    elif kind == "delete" and path.exists():
        path.unlink()


@settings(
    max_examples=5,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.lists(_op, max_size=3), min_size=1, max_size=3))
def test_replayed_iff_inputs_and_definition_are_those_of_the_last_pass(
    project: Project, steps: list[list[tuple[str, str, bytes]]]
) -> None:
    root = Path(tempfile.mkdtemp(dir=project.path))
    (root / "count.py").write_text(COUNT)
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"0")
    (root / "pyproject.toml").write_text(
        to_toml({"checks": {n: _check(n, reads=r) for n, r in CHECKS.items()}})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_PAREX_")}
    cmd = [sys.executable, "-m", "pytest", "--parex", "--parex-json=r.json", "-p", "no:randomly"]
    last_pass: dict[str, dict[str, bytes]] = {}
    for ops in [[], *steps]:
        for op in ops:
            _apply(root, op)
        now = {name: _matched(root, patterns) for name, patterns in CHECKS.items()}
        expected = {name for name in CHECKS if last_pass.get(name) == now[name]}
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout
        report = json.loads((root / "r.json").read_text())
        cached = {c["name"] for c in report["checks"] if c["cached"]}
        assert cached == expected, (ops, done.stdout)
        last_pass = now


def test_zero_config_checks_read_what_their_tools_read(project: Project) -> None:
    """Issue 16, case 12: the default gate's ruff checks read every file of the project -- ruff
    checks notebooks and whatever its include settings name, so an edited notebook reruns lint
    -- while mypy, which reads Python files only, keeps its narrowing: a changed README reruns
    the tests and lint, not the types."""
    pytest.importorskip("ruff")
    pytest.importorskip("mypy")
    (project.path / "rec.py").unlink()
    (project.path / "sync.py").unlink()
    (project.path / "pkg").mkdir()
    (project.path / "pkg" / "__init__.py").write_text("X = 1\n")
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_x.py").write_text("def test_x():\n    assert True\n")
    (project.path / "README.md").write_text("# readme\n")
    notebook = project.path / "explore.ipynb"
    notebook.write_text(json.dumps(_notebook("x = 1\n")))
    (project.path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\n[tool.mypy]\nfiles = ["pkg"]\n'
    )
    shown = project.pytester.runpytest_subprocess("--parex-show-config")
    shown.stdout.fnmatch_lines(["[[]tool.parex.checks.types[]]", "*reads = [[]*.py*"])
    assert "reads" not in shown.stdout.str().split("[tool.parex.checks.lint]")[1].split("[")[0]
    first = _gate(project)
    assert first.ret == 0, first.stdout.str()
    (project.path / "README.md").write_text("# readme, edited\n")
    again = _gate(project)
    assert again.ret == 0 and again.cached == {"types"}
    # An unused import in a notebook: ruff's verdict changes, so lint must not replay.
    notebook.write_text(json.dumps(_notebook("import os\nx = 1\n")))
    edited = _gate(project)
    assert edited.ret == 1, edited.stdout.str()
    statuses = {c["name"]: c["status"] for c in edited.report["checks"]}
    assert statuses["lint"] == "failed" and "lint" not in edited.cached


def _notebook(source: str) -> dict[str, Any]:
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "a1",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
