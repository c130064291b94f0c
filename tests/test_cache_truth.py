"""A cached verdict is the uncached verdict (issue 16): each way a pass used to be replayed
although running the check would fail, end to end on real files, real git repositories, real
installs and real xdist workers. Every test here runs the check for real (``--parex-no-cache``)
where the cache must not answer, and asserts both say the same."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import Project
from test_incremental import Gate, _gate
from venvs import Venv, make_venv, make_wheel, scrubbed_env

# A check that passes when every file named on its command line holds "ok" (after stripping),
# and fails naming the first one that does not. Files are read through whatever path is given:
# links, directories outside the rootdir, the import path.
READS = """\
import sys
for path in sys.argv[1:]:
    with open(path) as fh:
        if fh.read().strip() != "ok":
            print(f"{path}: not ok", flush=True)
            sys.exit(1)
print("all ok", flush=True)
"""


def _reads(project: Project) -> None:
    (project.path / "reads.py").write_text(READS)


def _reader(*paths: str, **keys: Any) -> dict[str, Any]:
    return {"run": [sys.executable, "reads.py", *paths], **keys}


def _git(project: Project, ignore: str = "") -> None:
    subprocess.run(["git", "init", "-q"], cwd=project.path, check=True)
    (project.path / ".gitignore").write_text("runpytest-*\nstdout\nstderr\nreport.json\n" + ignore)


def _status(gate: Gate, name: str) -> str:
    """A check's status as the summary says it: "cached" for a replayed pass."""
    check = next(c for c in gate.report["checks"] if c["name"] == name)
    return "cached" if check["cached"] else str(check["status"])


def _agree(project: Project, name: str, expected: str, *args: str) -> Gate:
    """Run the gate cached, then uncached: ``name`` must be ``expected`` both times (never a
    replayed pass where running it fails)."""
    cached = _gate(project, *args)
    uncached = _gate(project, "--parex-no-cache", *args)
    assert _status(uncached, name) == expected, uncached.stdout.str()
    assert _status(cached, name) == expected, (
        f"cached gate said {_status(cached, name)}, running it says {expected}:\n"
        + cached.stdout.str()
    )
    return cached


# ------------------------------------------------------------------------------ 1: workers


def test_a_pass_earned_on_another_tree_is_not_recorded(project: Project, tmp_path: Path) -> None:
    """Case 1: a worker started in another copy of the project (``--tx popen//chdir=``) runs
    the check there; its pass must not be replayed here, where the check fails."""
    _git(project)
    _reads(project)
    (project.path / "data.txt").write_text("bad\n")
    project.write({"t": _reader("data.txt")})
    other = tmp_path.parent / f"{tmp_path.name}-other"
    shutil.copytree(project.path, other)
    (other / "data.txt").write_text("ok\n")
    remote = _gate(project, "--tx", f"popen//chdir={other}")
    assert remote.ret == 0, remote.stdout.str()
    _agree(project, "t", "failed")
    remote.stdout.fnmatch_lines(["*not cached (run on an xdist worker whose tree*): t"])


def test_a_pass_earned_on_another_interpreter_is_not_recorded(
    project: Project, tmp_path: Path
) -> None:
    """Case 1: a worker on another Python (``--tx popen//python=``) where the check's package
    is installed passes it; here, where it is not, the check fails."""
    venv = make_venv(tmp_path.parent / f"{tmp_path.name}-venv")
    wheels = tmp_path.parent / f"{tmp_path.name}-wheels"
    venv.install(make_wheel(wheels, "onlythere", "1.0", {"onlythere.py": "VALUE = 'ok'\n"}))
    (project.path / "check.py").write_text(IMPORTS.format(module="onlythere"))
    project.write({"t": {"run": ["python", "check.py"], "reads": ["check.py"]}})
    remote = _gate(project, "--tx", f"popen//python={venv.python}")
    assert remote.ret == 0, remote.stdout.str()
    _agree(project, "t", "failed")
    remote.stdout.fnmatch_lines(["*not cached (run on an xdist worker whose tree*): t"])


def test_a_pass_earned_on_a_worker_of_this_tree_replays(project: Project) -> None:
    """Case 1, the other way: workers that share the tree and the interpreter (``-n 2``) key
    what they run as the gate does, so their passes are recorded and replay locally."""
    _git(project)  # pytester's basetemp and its link are in the project: ignored
    _reads(project)
    (project.path / "data.txt").write_text("ok\n")
    project.write({"t": _reader("data.txt"), "u": _reader("data.txt", agent="debugger")})
    first = _gate(project, "-n", "2")
    assert first.ret == 0, first.stdout.str()
    assert "not cached" not in first.stdout.str()
    assert _gate(project).cached == {"t", "u"}


# ------------------------------------------------------------------------------ 2: ignored files


@pytest.mark.parametrize(
    "path",
    [".env", "pkg/_version.py", "local_settings.py", "pkg/_speedups.cpython-311-x86_64.so"],
)
def test_an_ignored_file_the_check_reads_is_an_input(project: Project, path: str) -> None:
    """Case 2: files git ignores but checks read -- an environment file, a generated version
    module, local settings, an extension module built in place."""
    _git(project, ignore=".env\n_version.py\nlocal_settings.py\n*.so\n")
    _reads(project)
    (project.path / "pkg").mkdir()
    (project.path / "pkg" / "__init__.py").write_text("")
    (project.path / path).write_text("ok\n")
    project.write({"t": _reader(path)})
    assert _gate(project).ret == 0
    assert _gate(project).cached == {"t"}
    (project.path / path).write_text("bad\n")
    _agree(project, "t", "failed")


def test_what_checks_write_to_ignored_outputs_does_not_stop_the_cache(project: Project) -> None:
    """Case 2, what stays out: a check that writes coverage data and build output (ignored)
    is still replayed on an unchanged tree."""
    _git(project, ignore=".coverage\nbuild/\nout.log\n")
    (project.path / "w.py").write_text(
        "import os\n"
        "open('.coverage', 'a').write('x')\n"
        "os.makedirs('build/lib', exist_ok=True)\n"
        "open('build/lib/gen.py', 'a').write('x = 1\\n')\n"
        "open('out.log', 'a').write('x')\n"
    )
    project.write({"w": {"run": [sys.executable, "w.py"]}})
    first = _gate(project)
    assert first.ret == 0 and "not cached" not in first.stdout.str(), first.stdout.str()
    assert _gate(project).cached == {"w"}


# ------------------------------------------------------------------------------ 3: links


def test_a_file_link_counts_by_its_targets_content(project: Project) -> None:
    """Case 3: a check that reads ``conf.txt``, a link to ``real/conf.txt``."""
    _reads(project)
    (project.path / "real").mkdir()
    (project.path / "real" / "conf.txt").write_text("ok\n")
    (project.path / "conf.txt").symlink_to("real/conf.txt")
    project.write({"t": _reader("conf.txt", reads=["conf.txt"])})
    assert _gate(project).ret == 0
    (project.path / "real" / "conf.txt").write_text("bad\n")
    _agree(project, "t", "failed")


@pytest.mark.parametrize("reads", [None, ["vendor/**"]], ids=["project", "reads"])
def test_links_that_leave_the_rootdir_hide_nothing(
    project: Project, tmp_path: Path, reads: list[str] | None
) -> None:
    """Case 3: a link in the tree to a directory (or a file) outside the rootdir: the
    target's content is an input."""
    _git(project)
    _reads(project)
    outside = tmp_path.parent / f"{tmp_path.name}-vendor"
    (outside / "lib").mkdir(parents=True)
    (outside / "lib" / "data.txt").write_text("ok\n")
    (outside / "single.txt").write_text("ok\n")
    (project.path / "vendor").symlink_to(outside)
    (project.path / "single.txt").symlink_to(outside / "single.txt")
    keys = {} if reads is None else {"reads": [*reads, "single.txt"]}
    project.write({"t": _reader("vendor/lib/data.txt", "single.txt", **keys)})
    assert _gate(project).ret == 0
    assert _gate(project).cached == {"t"}
    (outside / "lib" / "data.txt").write_text("bad\n")
    _agree(project, "t", "failed")
    (outside / "lib" / "data.txt").write_text("ok\n")
    assert _gate(project).ret == 0
    (outside / "single.txt").write_text("bad\n")
    _agree(project, "t", "failed")


# ------------------------------------------------------------------------------ 4: configuration


def test_pytest_toml_is_a_configuration_file(project: Project) -> None:
    """Case 4: pytest reads ``pytest.toml``; a tests check with ``reads`` must see it."""
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_a.py").write_text("def test_a():\n    assert True\n")
    (project.path / "pytest.toml").write_text('[pytest]\naddopts = ["-p", "no:randomly"]\n')
    project.write({"tests": {"pytest": ["tests"], "reads": ["tests/**"]}})
    assert _gate(project).ret == 0
    # Now pytest collects nothing under tests/: the check fails ("no tests ran").
    (project.path / "pytest.toml").write_text('[pytest]\npython_files = ["check_*.py"]\n')
    _agree(project, "tests", "failed")


def test_configuration_in_the_checks_cwd_counts(project: Project) -> None:
    """Case 4: a sub-project's own configuration, in the check's ``cwd``."""
    _reads(project)
    sub = project.path / "sub"
    (sub / "src").mkdir(parents=True)
    (sub / "src" / "a.py").write_text("A = 1\n")
    (sub / "ruff.toml").write_text("ok\n")
    checks = {"t": {"run": [sys.executable, "../reads.py", "ruff.toml"], "cwd": "sub"}}
    checks["t"]["reads"] = ["sub/src/**"]
    project.write(checks)
    assert _gate(project).ret == 0
    (sub / "ruff.toml").write_text("bad\n")
    _agree(project, "t", "failed")


def test_a_committed_durations_file_orders_the_shards_and_decides_no_verdict(
    project: Project,
) -> None:
    """A tests check's ``durations`` file only orders what its shards take: with ``reads``
    it is not an input, so rewriting it replays the shards' passes -- and running them, in
    the new order, passes too. (A suite whose verdict depends on its order: README, "What it
    cannot see".)"""
    for name in "abc":
        (project.path / "tests").mkdir(exist_ok=True)
        (project.path / "tests" / f"test_{name}.py").write_text(f"def test_{name}(): pass\n")
    durations = project.path / ".test_durations"
    weights = {"a": 5.0, "b": 0.01, "c": 0.01}
    durations.write_text(
        json.dumps({f"tests/test_{k}.py::test_{k}": v for k, v in weights.items()})
    )
    tests = {
        "pytest": ["-q", "-p", "no:cacheprovider", "tests"],
        "shards": 2,
        "durations": ".test_durations",
        "reads": ["tests/**"],
    }
    project.write({"tests": tests}, agents={"test-runner": 2})
    assert _gate(project).ret == 0
    weights = {"a": 0.01, "b": 0.01, "c": 5.0}
    durations.write_text(
        json.dumps({f"tests/test_{k}.py::test_{k}": v for k, v in weights.items()})
    )
    cached = _gate(project)
    uncached = _gate(project, "--parex-no-cache")
    for shard in ("tests[1/2]", "tests[2/2]"):
        assert _status(cached, shard) == "cached", cached.stdout.str()
        assert _status(uncached, shard) == "passed", uncached.stdout.str()
    assert cached.ret == uncached.ret == 0


# ------------------------------------------------------------------------------ 5: cwd outside


def test_a_cwd_outside_the_rootdir_is_not_cached(project: Project, tmp_path: Path) -> None:
    """Case 5: nothing keys the files of a ``cwd`` outside the rootdir: the check always runs,
    and the plan says why."""
    sibling = tmp_path.parent / f"{tmp_path.name}-sibling"
    sibling.mkdir()
    (sibling / "reads.py").write_text(READS)
    (sibling / "data.txt").write_text("ok\n")
    project.write(
        {"t": {"run": [sys.executable, "reads.py", "data.txt"], "cwd": f"../{sibling.name}"}}
    )
    assert _gate(project).ret == 0
    plan = project.pytester.runpytest_subprocess("--parex", "--parex-plan")
    plan.stdout.fnmatch_lines(["*t*runs: not cached: cwd ../* is outside the rootdir*"])
    (sibling / "data.txt").write_text("bad\n")
    _agree(project, "t", "failed")


# ------------------------------------------------------------------------------ 6: writers


def test_a_reader_of_what_a_running_check_writes_runs_after_it(project: Project) -> None:
    """Case 6: ``gen`` runs (its input changed) and writes ``gen/data.txt``; ``use`` reads it.
    Replaying ``use`` would vouch for data ``gen`` is about to replace."""
    _reads(project)
    (project.path / "src").mkdir()
    (project.path / "src" / "seed.txt").write_text("ok\n")
    # gen takes longer than use: the critical path puts it first, from remembered durations
    # as from the expected ones, so use reads what gen writes (serialisation orders them).
    (project.path / "gen.py").write_text(
        "import os, time\ntime.sleep(0.3)\nos.makedirs('gen', exist_ok=True)\n"
        "open('gen/data.txt', 'w').write(open('src/seed.txt').read())\n"
    )
    project.write(
        {
            "gen": {
                "run": [sys.executable, "gen.py"],
                "reads": ["src/**"],
                "writes": ["gen/**"],
                "expected": 5,
            },
            "use": _reader("gen/data.txt", reads=["gen/**"], agent="debugger", expected=0.1),
        }
    )
    first = _gate(project)
    assert first.ret == 0, first.stdout.str()
    # gen/data.txt appeared while use ran: its first pass is not recorded, its second is.
    assert _gate(project).cached == {"gen"}
    assert _gate(project).cached == {"gen", "use"}
    (project.path / "src" / "seed.txt").write_text("bad\n")
    plan = project.pytester.runpytest_subprocess("--parex", "--parex-plan")
    plan.stdout.fnmatch_lines(["*use*runs: gen writes * and runs"])
    cached = _gate(project)
    assert _status(cached, "use") == "failed", cached.stdout.str()
    assert _status(_gate(project, "--parex-no-cache"), "use") == "failed"


# ------------------------------------------------------------------------------ 7: changed back


def test_an_input_changed_and_changed_back_during_the_run_is_not_recorded(
    project: Project,
) -> None:
    """Case 7: while ``t`` runs, ``swap`` puts good content in its input and restores the bad
    one after ``t`` read it. The digests before and after agree; the pass is not for them."""
    _reads(project)
    (project.path / "src").mkdir()
    (project.path / "src" / "x.txt").write_text("bad\n")
    (project.path / "swap.py").write_text(
        "import os, time\n"
        "path = 'src/x.txt'\n"
        "old = open(path, 'rb').read()\n"
        "open(path, 'w').write('ok\\n')\n"
        "open('swapped', 'w').close()\n"
        "while not os.path.exists('read'):\n"
        "    time.sleep(0.02)\n"
        "open(path, 'wb').write(old)\n"
    )
    (project.path / "t.py").write_text(
        "import os, sys, time\n"
        "while not os.path.exists('swapped'):\n"
        "    time.sleep(0.02)\n"
        "ok = open('src/x.txt').read().strip() == 'ok'\n"
        "open('read', 'w').close()\n"
        "sys.exit(0 if ok else 1)\n"
    )
    project.write(
        {
            "t": {"run": [sys.executable, "t.py"], "reads": ["src/**"]},
            "swap": {
                "run": [sys.executable, "swap.py"],
                "reads": ["nothing/**"],
                "cache": False,
                "agent": "debugger",
            },
        }
    )
    first = _gate(project)
    assert first.ret == 0, first.stdout.str()
    first.stdout.fnmatch_lines(["*not cached (src/x.txt rewritten while it ran*): t"])
    for marker in ("swapped", "read"):
        (project.path / marker).unlink()
    # Nothing swaps any more: t reads "bad" and fails, cached or not.
    project.write({"t": {"run": [sys.executable, "t.py"], "reads": ["src/**"]}})
    (project.path / "swapped").touch()
    _agree(project, "t", "failed")


# ------------------------------------------------------------------------------ 8, 9: installs


def _venv_gate(venv: Venv, project: Project, *args: str, **env: str) -> Gate:
    report = project.path / "report.json"
    report.unlink(missing_ok=True)
    done = subprocess.run(
        [
            str(venv.python),
            "-m",
            "pytest",
            "--parex",
            "--parex-json=report.json",
            "-p",
            "no:randomly",
            *args,
        ],
        cwd=project.path,
        env=scrubbed_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = pytest.RunResult(
        done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), 0
    )
    return Gate(result, json.loads(report.read_text()) if report.exists() else {})


def _venv_agree(venv: Venv, project: Project, name: str, expected: str, **env: str) -> None:
    cached = _venv_gate(venv, project, **env)
    uncached = _venv_gate(venv, project, "--parex-no-cache", **env)
    assert _status(uncached, name) == expected, uncached.stdout.str()
    assert _status(cached, name) == expected, cached.stdout.str()


IMPORTS = "import sys, {module}\nsys.exit(0 if {module}.VALUE == 'ok' else 1)\n"


def test_a_package_rebuilt_at_the_same_version_reruns(project: Project, tmp_path: Path) -> None:
    """Case 8: installed code is keyed by content (its RECORD), not by name and version."""
    venv = make_venv(tmp_path.parent / f"{tmp_path.name}-venv")
    wheels = tmp_path.parent / f"{tmp_path.name}-wheels"
    venv.install(make_wheel(wheels, "localpkg", "1.0", {"localpkg.py": "VALUE = 'ok'\n"}))
    (project.path / "check.py").write_text(IMPORTS.format(module="localpkg"))
    project.write({"t": {"run": ["python", "check.py"], "reads": ["check.py"]}})
    assert _venv_gate(venv, project).ret == 0
    assert _venv_gate(venv, project).cached == {"t"}
    venv.install(make_wheel(wheels, "localpkg", "1.0", {"localpkg.py": "VALUE = 'bad'\n"}))
    _venv_agree(venv, project, "t", "failed")


@pytest.mark.parametrize("how", ["pth", "PYTHONPATH", "pythonpath"])
def test_code_imported_from_outside_the_rootdir_is_an_input(
    project: Project, tmp_path: Path, how: str
) -> None:
    """Case 8: a sibling project on the import path -- an editable install's ``.pth`` path
    entry (what hatchling and uv write), ``PYTHONPATH``, pytest's ``pythonpath``."""
    venv = make_venv(tmp_path.parent / f"{tmp_path.name}-venv")
    sibling = tmp_path.parent / f"{tmp_path.name}-sibling"
    (sibling / "src").mkdir(parents=True)
    (sibling / "src" / "sibmod.py").write_text("VALUE = 'ok'\n")
    env: dict[str, str] = {}
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_sib.py").write_text(
        "import sibmod\n\ndef test_sib():\n    assert sibmod.VALUE == 'ok'\n"
    )
    ini = ""
    if how == "pth":
        wheels = tmp_path.parent / f"{tmp_path.name}-wheels"
        venv.install(make_wheel(wheels, "sib", "1.0", {"sib.pth": f"{sibling / 'src'}\n"}))
    elif how == "PYTHONPATH":
        env["PYTHONPATH"] = str(sibling / "src")
    else:
        ini = f'[tool.pytest.ini_options]\npythonpath = ["../{sibling.name}/src"]\n'
    project.write({"tests": {"pytest": ["tests"], "reads": ["tests/**"]}})
    if ini:
        (project.path / "pyproject.toml").write_text(
            ini + (project.path / "pyproject.toml").read_text()
        )
    first = _venv_gate(venv, project, **env)
    assert first.ret == 0, first.stdout.str()
    assert _venv_gate(venv, project, **env).cached == {"tests"}
    (sibling / "src" / "sibmod.py").write_text("VALUE = 'bad'\n")
    _venv_agree(venv, project, "tests", "failed", **env)


def test_a_tool_in_its_own_environment_is_keyed_by_its_packages(
    project: Project, tmp_path: Path
) -> None:
    """Case 9: a pipx or ``uv tool`` launcher is byte-identical across versions; upgrading the
    tool's package in its own environment must rerun the check."""
    tool = make_venv(tmp_path.parent / f"{tmp_path.name}-tool", inherit=False)
    wheels = tmp_path.parent / f"{tmp_path.name}-wheels"
    launcher = f"#!{tool.python}\nimport sys, toolpkg\nsys.exit(toolpkg.main())\n"
    tool.install(
        make_wheel(wheels, "toolpkg", "1.0", {"toolpkg.py": "def main():\n    return 0\n"})
    )
    (tool.root / "bin" / "mytool").write_text(launcher)
    (tool.root / "bin" / "mytool").chmod(0o755)
    bindir = tmp_path.parent / f"{tmp_path.name}-bin"  # pipx's ~/.local/bin
    bindir.mkdir()
    (bindir / "mytool").symlink_to(tool.root / "bin" / "mytool")
    path = f"{bindir}{os.pathsep}{os.environ['PATH']}"
    project.write({"t": {"run": ["mytool"], "reads": ["nothing/**"]}})
    gate_venv = make_venv(tmp_path.parent / f"{tmp_path.name}-venv")
    assert _venv_gate(gate_venv, project, PATH=path).ret == 0
    assert _venv_gate(gate_venv, project, PATH=path).cached == {"t"}
    tool.install(
        make_wheel(wheels, "toolpkg", "1.1", {"toolpkg.py": "def main():\n    return 3\n"})
    )
    assert (tool.root / "bin" / "mytool").read_text() == launcher
    _venv_agree(gate_venv, project, "t", "failed", PATH=path)


# ------------------------------------------------------------------------------ differential


TEST_ALL = """\
import os, localpkg, sibmod
from pkg import mod

def read(path):
    with open(path) as fh:
        return fh.read().strip()

def test_module():
    assert mod.VALUE == "ok"

def test_ignored_env_file():
    assert read(".env") == "ok"

def test_links_out_of_the_tree():
    assert read("linked.txt") == "ok" and read("ext/data.txt") == "ok"

def test_installed_and_editable():
    assert localpkg.VALUE == "ok" and sibmod.VALUE == "ok"
"""

GOOD_PYTEST_TOML = "[pytest]\nxfail_strict = true\n"
BAD_PYTEST_TOML = '[pytest]\npython_files = ["nothing_*.py"]\n'


class _Tree:
    """A small real project whose checks read every kind of input the cache must see: a
    module, an ignored file, links out of the tree (a file, a directory), an installed local
    package, a sibling project on the import path, pytest's configuration file; and a second
    git branch where the module differs."""

    def __init__(self, base: Path) -> None:
        self.root = base / "proj"
        self.outside = base / "outside"
        self.sibling = base / "sib"
        self.wheels = base / "wheels"
        self.venv = make_venv(base / "venv")
        for folder in (self.root / "pkg", self.root / "tests", self.outside / "ext"):
            folder.mkdir(parents=True)
        (self.sibling / "src").mkdir(parents=True)
        self.targets = {
            "module": self.root / "pkg" / "mod.py",
            "ignored": self.root / ".env",
            "linked file": self.outside / "linked.txt",
            "linked dir": self.outside / "ext" / "data.txt",
            "sibling": self.sibling / "src" / "sibmod.py",
            "config": self.root / "pytest.toml",
        }
        for name in self.targets:
            self.write(name, good=True)
        (self.root / "pkg" / "__init__.py").write_text("")
        (self.root / "tests" / "test_all.py").write_text(TEST_ALL)
        (self.root / "check_env.py").write_text(
            "import sys\n"
            "ok = all(open(p).read().strip() == 'ok' for p in ('.env', 'ext/data.txt'))\n"
            "sys.exit(0 if ok else 1)\n"
        )
        (self.root / "check_pkg.py").write_text(
            "import sys\nsys.path.insert(0, '.')\nfrom pkg import mod\n"
            "sys.exit(0 if mod.VALUE == 'ok' else 1)\n"
        )
        (self.root / "linked.txt").symlink_to(self.outside / "linked.txt")
        (self.root / "ext").symlink_to(self.outside / "ext")
        (self.root / ".gitignore").write_text(".env\nreport.json\n")
        (self.root / "pyproject.toml").write_text(
            "[tool.parex.checks.tests]\npytest = []\n\n"
            '[tool.parex.checks.pkg]\nrun = ["python", "check_pkg.py"]\nreads = ["pkg/**"]\n'
            'agent = "debugger"\n\n'
            '[tool.parex.checks.env]\nrun = ["python", "check_env.py"]\nagent = "refactorer"\n'
        )
        self.reinstall(good=True)
        self.venv.install(
            make_wheel(self.wheels, "sib", "1.0", {"sib.pth": f"{self.sibling / 'src'}\n"})
        )
        self.git("init", "-q", "-b", "main")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "main")
        self.git("checkout", "-q", "-b", "other")
        self.write("module", good=False)
        self.git("commit", "-q", "-am", "other: a bad module")
        self.git("checkout", "-q", "main")

    def git(self, *args: str) -> None:
        env = scrubbed_env(
            GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
            GIT_COMMITTER_EMAIL="t@t",
        )  # fmt: skip
        subprocess.run(["git", *args], cwd=self.root, env=env, check=True, capture_output=True)

    def write(self, name: str, *, good: bool) -> None:
        value = "ok" if good else "bad"
        path = self.targets[name]
        if name == "config":
            path.write_text(GOOD_PYTEST_TOML if good else BAD_PYTEST_TOML)
        elif path.suffix == ".py":
            path.write_text(f"VALUE = {value!r}\n")
        else:
            path.write_text(value + "\n")

    def reinstall(self, *, good: bool) -> None:
        value = "ok" if good else "bad"
        files = {"localpkg.py": f"VALUE = {value!r}\n"}
        self.venv.install(make_wheel(self.wheels, "localpkg", "1.0", files))

    def verdicts(self, *args: str) -> tuple[dict[str, str], set[str]]:
        """Each check's verdict ("cached" counts as "passed") and the checks replayed."""
        report = self.root / "report.json"
        report.unlink(missing_ok=True)
        done = subprocess.run(
            [str(self.venv.python), "-m", "pytest", "--parex", "--parex-json=report.json",
             "-p", "no:randomly", *args],
            cwd=self.root, env=scrubbed_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert report.exists(), done.stdout + done.stderr
        checks = json.loads(report.read_text())["checks"]
        verdicts = {c["name"]: "passed" if c["cached"] else c["status"] for c in checks}
        return verdicts, {c["name"] for c in checks if c["cached"]}


def test_cached_and_uncached_gates_agree_on_every_change(tmp_path: Path) -> None:
    """The invariant, differentially: after any sequence of changes to what the checks read
    (edit, revert, touch, rename away and back, delete, rebuild and reinstall a package,
    switch a git branch), the cached gate gives every check the verdict of running it."""
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

    names = ["module", "ignored", "linked file", "linked dir", "sibling", "config"]

    class Changes(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tree = _Tree(Path(tempfile.mkdtemp(dir=tmp_path)))
            self.saved: dict[str, bytes | None] = {}  # what an edit replaced (None: nothing)
            first, _ = self.tree.verdicts()
            assert set(first.values()) == {"passed"}, first
            # The cache is on and the tree is stable: an unchanged rerun replays everything.
            assert self.tree.verdicts()[1] == set(first)

        def compare(self, step: str) -> None:
            cached, _ = self.tree.verdicts()
            uncached, _ = self.tree.verdicts("--parex-no-cache")
            assert cached == uncached, f"after {step}: cached {cached}, uncached {uncached}"

        @rule(name=st.sampled_from(names), good=st.booleans())
        def edit(self, name: str, good: bool) -> None:
            path = self.tree.targets[name]
            self.saved.setdefault(name, path.read_bytes() if path.exists() else None)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.tree.write(name, good=good)
            self.compare(f"edit {name} {'good' if good else 'bad'}")

        @rule(name=st.sampled_from(names))
        def revert(self, name: str) -> None:
            if name in self.saved:
                content = self.saved.pop(name)
                path = self.tree.targets[name]
                if content is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(content)
            self.compare(f"revert {name}")

        @rule(name=st.sampled_from(names))
        def touch(self, name: str) -> None:
            path = self.tree.targets[name]
            if path.exists():
                st_ = path.stat()
                os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
            self.compare(f"touch {name}")

        @rule(name=st.sampled_from(names), back=st.booleans())
        def rename(self, name: str, back: bool) -> None:
            path = self.tree.targets[name]
            away = path.with_name(path.name + ".away")
            if path.exists() and not away.exists():
                path.rename(away)
                if back:
                    away.rename(path)
            self.compare(f"rename {name}{' and back' if back else ''}")

        @rule(name=st.sampled_from(names))
        def delete(self, name: str) -> None:
            self.tree.targets[name].unlink(missing_ok=True)
            self.compare(f"delete {name}")

        @rule(good=st.booleans())
        def reinstall(self, good: bool) -> None:
            self.tree.reinstall(good=good)
            self.compare(f"rebuild and reinstall localpkg {'good' if good else 'bad'}")

        @rule(branch=st.sampled_from(["main", "other"]))
        def switch(self, branch: str) -> None:
            self.tree.git("stash", "-q", "--include-untracked")
            self.tree.git("checkout", "-q", branch)
            self.compare(f"switch to {branch}")

    run_state_machine_as_test(
        Changes,
        settings=settings(
            max_examples=2,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
