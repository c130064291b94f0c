"""Differential tests: ``pre-commit run --all-files`` and ``pytest --parex`` on two copies of the
same git work tree must give every hook the same verdict and leave byte-identical trees.

pre-commit comes from PyPI (the dev extra); the hooks come from ``repo: local`` and from a
git repository the test creates (pre-commit clones it into a store of the test's own, which
the gate then reads) -- no network. Few, short runs: each case is one pre-commit run and one
gate run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("yaml")
pytest.importorskip("identify")
PRE_COMMIT = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(PRE_COMMIT is None, reason="pre-commit is not installed")

_LINE = re.compile(
    r"^(?P<name>.+?)\.{2,}(?:\(no files to check\))?(?P<status>Passed|Failed|Skipped)$"
)
_IGNORED = {".git", ".parex", ".pytest_cache"}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def _repo(path: Path, files: dict[str, str], executable: tuple[str, ...] = ()) -> str:
    path.mkdir(parents=True)
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        if name in executable:
            target.chmod(0o755)
    _git(path, "init", "-q")
    _git(path, "add", "-A")
    _git(path, "commit", "-qm", "init")
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True)
    return out.stdout.strip()


def _tree(root: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in _IGNORED or not path.is_file():
            continue
        out[rel.as_posix()] = path.read_bytes()
    return out


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GIT_"))}
    env["PRE_COMMIT_HOME"] = str(home)
    env["PREK_HOME"] = str(home / "prek")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("SKIP", None)
    return env


def _pre_commit(cwd: Path, env: dict[str, str]) -> dict[str, str]:
    proc = subprocess.run(
        [str(PRE_COMMIT), "run", "--all-files", "--color=never"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    verdicts = {}
    for line in proc.stdout.splitlines():
        found = _LINE.match(line.strip())
        if found:
            verdicts[found["name"]] = found["status"].lower()
    assert verdicts, proc.stdout + proc.stderr
    return verdicts


def _gate(cwd: Path, env: dict[str, str], *extra: str) -> tuple[dict[str, str], str]:
    """Each hook's verdict (by its name) from the gate's JSON report: a hook split in parts
    failed when one part did; a hook with no check (no files) is "skipped"."""
    report = cwd.parent / f"{cwd.name}-report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--parex",
            "--parex-no-cache",
            "-p",
            "no:randomly",
            "--parex-progress=plain",
            f"--parex-json={report}",
            *extra,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    data = json.loads(report.read_text())
    verdicts: dict[str, str] = {}
    for check in data["checks"]:
        name = check["name"].split("[", 1)[0]  # a part counts for its hook
        if verdicts.get(name) != "failed":
            verdicts[name] = check["status"]
    return verdicts, proc.stdout + proc.stderr


def _compare(
    tmp: Path,
    files: dict[str, str],
    config: str,
    parex: str = "",
    *extra: str,
    executable: tuple[str, ...] = (),
) -> tuple[dict[str, str], str]:
    home = tmp / "store"
    files = {**files, ".pre-commit-config.yaml": config}
    if parex:
        files["pyproject.toml"] = parex
    _repo(tmp / "a", files, executable)
    shutil.copytree(tmp / "a", tmp / "b", symlinks=True)
    env = _env(home)
    expected = _pre_commit(tmp / "a", env)
    got, output = _gate(tmp / "b", env, *extra)
    for name, status in expected.items():
        if status == "skipped":  # no files to check (or fail_fast): no check ran
            assert got.get(name, "skipped") in ("skipped", "cancelled"), (name, got, output)
        else:
            assert got.get(name) == status, (name, expected, got, output)
    for name in set(got) - set(expected):  # after a fail_fast stop pre-commit prints nothing
        assert got[name] in ("skipped", "cancelled"), (name, got, expected, output)
    assert _tree(tmp / "a") == _tree(tmp / "b"), output
    return got, output


TOOLS = {
    # fixer: foo -> bar in the files it is passed
    "tools/rename.py": """\
        import sys
        for name in sys.argv[1:]:
            text = open(name).read()
            if "foo" in text:
                open(name, "w").write(text.replace("foo", "bar"))
        """,
    # fixer: trailing whitespace
    "tools/strip.py": """\
        import sys
        for name in sys.argv[1:]:
            text = open(name).read()
            fixed = "".join(line.rstrip() + "\\n" for line in text.splitlines())
            if fixed != text:
                open(name, "w").write(fixed)
        """,
    # a reader that records whether the other one ran at the same time
    "tools/meet.py": """\
        import os, pathlib, sys, time
        me, other = sys.argv[1], "b" if sys.argv[1] == "a" else "a"
        where = pathlib.Path(os.environ["MEET_DIR"])
        where.mkdir(exist_ok=True)
        (where / me).touch()
        end = time.monotonic() + float(os.environ.get("MEET_WAIT", "0"))
        while time.monotonic() < end and not (where / other).exists():
            time.sleep(0.02)
        (where / (me + ".result")).write_text("met" if (where / other).exists() else "alone")
        """,
}

HOOK_REPO_MANIFEST = """\
    - id: no-shout
      name: no-shout
      entry: hooks/no-shout.sh
      language: script
      types: [text]
    - id: no-tabs
      name: no-tabs
      entry: "\\t"
      language: pygrep
      types: [python]
    """


def test_parity_fixers_readers_filters_and_a_cloned_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook_repo = tmp_path / "hook-repo"
    rev = _repo(
        hook_repo,
        {
            ".pre-commit-hooks.yaml": HOOK_REPO_MANIFEST,
            "hooks/no-shout.sh": '#!/bin/sh\n! grep -l SHOUT "$@"\n',
        },
        executable=("hooks/no-shout.sh",),
    )
    config = f"""\
        exclude: ^(data|tools)/
        repos:
        - repo: local
          hooks:
          - {{id: rename, name: rename, entry: python tools/rename.py, language: system,
              types: [python]}}
          - {{id: no-foo, name: no-foo, entry: foo, language: pygrep,
              types_or: [python, markdown], exclude_types: [markdown]}}
          - {{id: strip, name: strip, entry: python tools/strip.py, language: system,
              types: [text], exclude: ^docs/keep}}
          - {{id: meet-a, name: meet-a, entry: python tools/meet.py a, language: system,
              pass_filenames: false, files: \\.md$}}
          - {{id: meet-b, name: meet-b, entry: python tools/meet.py b, language: system,
              pass_filenames: false, files: \\.md$}}
          - {{id: readme, name: readme, entry: test -f README.md, language: system,
              pass_filenames: false}}
          - {{id: always, name: always, entry: "python -c pass", language: system,
              files: \\.nomatch$, always_run: true}}
          - {{id: serial, name: serial, entry: wc -l, language: system, types: [python],
              require_serial: true}}
          - {{id: broken, name: broken, entry: "python -c 'raise SystemExit(3)'",
              language: system, files: \\.cfg$}}
          - {{id: nothing, name: nothing, entry: "false", language: system, files: \\.rs$}}
          - {{id: ghost, name: ghost, entry: no-such-tool-here, language: system,
              files: \\.cfg$}}
        - repo: {hook_repo}
          rev: {rev}
          hooks:
          - id: no-shout
          - id: no-tabs
        """
    parex = """\
        [tool.parex]
        pre-commit = true
        [tool.parex.agents]
        pre-commit = 2
        [tool.parex.checks.meet-a]
        kind = "pre-commit"
        modifies = false
        [tool.parex.checks.meet-b]
        kind = "pre-commit"
        modifies = false
        """
    files = {
        **TOOLS,
        "src/app.py": "x = 1   \nfoo = 2\n",
        "src/util.py": "def f():\n    return 'foo'\n",
        "src/tabbed.py": "if True:\n\tpass\n",
        "README.md": "# title  \nSHOUT\n",
        "docs/guide.md": "foo  \n",
        "docs/keep.txt": "kept  \n",
        "data/skip.py": "foo  \n",
        "setup.cfg": "[x]\n",
    }
    monkeypatch.setenv("MEET_DIR", str(tmp_path / "meet-pre-commit"))
    monkeypatch.setenv("MEET_WAIT", "0")
    home = tmp_path / "store"
    files = {**files, ".pre-commit-config.yaml": config, "pyproject.toml": parex}
    _repo(tmp_path / "a", files)
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
    env = _env(home)
    expected = _pre_commit(tmp_path / "a", env)
    assert expected == {
        "rename": "failed",
        "no-foo": "passed",
        "strip": "failed",
        "meet-a": "passed",
        "meet-b": "passed",
        "readme": "passed",
        "always": "passed",
        "serial": "passed",
        "broken": "failed",
        "nothing": "skipped",
        "ghost": "failed",
        "no-shout": "failed",
        "no-tabs": "failed",
    }
    env["MEET_DIR"], env["MEET_WAIT"] = str(tmp_path / "meet-parex"), "20"
    got, output = _gate(tmp_path / "b", env)
    assert {k: v for k, v in expected.items() if v != "skipped"} == got, output
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b"), output
    # The two readers of the same files ran side by side: each saw the other's marker.
    meet = tmp_path / "meet-parex"
    assert (meet / "a.result").read_text() == (meet / "b.result").read_text() == "met"
    # The cloned repository's manifest came from pre-commit's store.
    assert "no-shout (system: script; manifest from pre-commit's store)" in output, output
    assert "strip: +1 -1" not in output or "src/app.py" in output


def test_parity_fail_fast_without_xdist(tmp_path: Path) -> None:
    config = """\
        fail_fast: true
        repos:
        - repo: local
          hooks:
          - {id: first, name: first, entry: 'NEVER[_]THERE', language: pygrep, types: [text]}
          - {id: bad, name: bad, entry: "python -c 'raise SystemExit(1)'", language: system,
             types: [python]}
          - {id: fixer, name: fixer, entry: python tools/strip.py, language: system,
             types: [text]}
        """
    files = {"tools/strip.py": TOOLS["tools/strip.py"], "a.py": "x = 1  \n"}
    got, output = _compare(tmp_path, files, config, "", "-p", "no:xdist")
    assert got == {"first": "passed", "bad": "failed", "fixer": "skipped"}, output
    assert "needs bad, which failed" in output
