"""Real projects' ``.pre-commit-config.yaml`` through the gate, against each hook's tool run the
way the hook runs it.

For each pinned sdist from PyPI: unpack it into a git work tree (two copies), make a venv with
this checkout and the hooks' tools at their pinned versions (a table hook's ``rev``, its
``additional_dependencies``), then

* copy 1: ``pytest --parex`` with ``pre-commit = true`` (from a config outside the tree);
* copy 2: every hook check's own command, one after another in config order, with
  pre-commit's verdict rule (a non-zero exit, or ``git diff`` changed while it ran);

and print one line per hook: project, hook, how it ran, the gate's verdict, the direct one,
plus whether the two trees ended byte-identical. Needs the network (PyPI) to prepare, so it
is not part of the tests::

    python benchmarks/hooks_corpus.py [--workdir DIR] [NAME==VERSION ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PROJECTS = ("attrs==26.1.0", "pluggy==1.7.0", "pytest==9.0.2")

DIRECT = r"""
import json, os, subprocess, sys
from pathlib import Path
from pytest_parex import config as cfg
from pytest_parex.precommit import build
root = Path.cwd()
gate = build.apply(cfg.parse({"pre-commit": True}, "direct"), root)
def diff():
    return subprocess.run(["git", "diff", "--no-ext-diff", "--no-textconv",
                           "--ignore-submodules"], capture_output=True).stdout
out, how, before = {}, {}, diff()
for check in gate.checks:
    env = {**os.environ, **dict(check.env)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    code = subprocess.run(list(check.argv), env=env, capture_output=True).returncode
    after = diff()
    failed = code != 0 or after != before
    before = after
    name = check.base_name
    how[name] = check.option("how")
    if out.get(name) != "failed":
        out[name] = "failed" if failed else "passed"
print(json.dumps({"verdicts": out, "how": how}))
"""


def run(argv: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, **kw)


def requirements(tree: Path) -> list[str]:
    """The pinned tools of the project's hooks: table hooks at their ``rev``, and every
    ``additional_dependencies``."""
    sys.path.insert(0, str(REPO))
    from pytest_parex.precommit import config as pcc
    from pytest_parex.precommit import manifests

    pc = pcc.load(tree / ".pre-commit-config.yaml")
    out: list[str] = []
    for repo in pc.repos:
        known = manifests.known(repo.repo) if repo.repo not in ("local", "meta") else None
        if known is not None and known.distribution:
            out.append(f"{known.distribution}=={manifests.version_of(repo.rev)}")
        for hook in repo.hooks:
            out.extend(hook.get("additional_dependencies", ()))
    return list(dict.fromkeys(out))


def prepare(spec: str, workdir: Path) -> tuple[Path, Path, Path]:
    name = spec.split("==")[0]
    base = workdir / spec.replace("==", "-")
    venv = base / "venv"
    if not (base / "ready").is_file():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        got = run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(base / "dl"),
                spec,
            ],
            base,
        )
        if got.returncode:
            raise SystemExit(f"pip download {spec}: {got.stderr}")
        with tarfile.open(next((base / "dl").iterdir())) as tar:
            tar.extractall(base / "src", filter="data")
        (base / "tree").mkdir()
        src = next((base / "src").iterdir())
        shutil.copytree(src, base / "tree", dirs_exist_ok=True, symlinks=True)
        run([sys.executable, "-m", "venv", str(venv)], base)
        wanted = requirements(base / "tree")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        got = run([*pip, "-e", f"{REPO}[pre-commit]", "pre-commit", "pre-commit-hooks"], base)
        if got.returncode:
            raise SystemExit(f"installing pytest-parex: {got.stderr}")
        for requirement in wanted:  # one by one: a pin that cannot be had is skipped
            got = run([*pip, requirement], base)
            status = "installed" if not got.returncode else "not installable"
            print(f"  {name}: {requirement}: {status}", file=sys.stderr)
        (base / "ready").write_text("")
    copies = []
    for copy in ("gate", "direct"):
        target = base / copy
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(base / "tree", target, symlinks=True)
        for argv in (
            ["git", "init", "-q"],
            ["git", "add", "-A"],
            ["git", "-c", "user.email=c@example.com", "-c", "user.name=c", "commit", "-qm", spec],
        ):
            run(argv, target)
        copies.append(target)
    return copies[0], copies[1], venv


def tree_bytes(root: Path) -> dict[str, bytes]:
    skip = {".git", ".parex", ".pytest_cache", ".mypy_cache", ".ruff_cache", "__pycache__"}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not skip & set(p.relative_to(root).parts)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("projects", nargs="*", default=list(PROJECTS))
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="parex-hooks-")).resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GIT_"))}
    env["PRE_COMMIT_HOME"] = str(work / "pre-commit-home")
    work.mkdir(parents=True, exist_ok=True)
    config = work / "hooks.toml"
    config.write_text("[tool.parex]\npre-commit = true\n")
    print("project | hook | how it ran | gate | direct")
    agree = True
    for spec in args.projects:
        gate_tree, direct_tree, venv = prepare(spec, work)
        python = str(venv / "bin" / "python")
        env["PATH"] = os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")])
        report = work / f"{spec}.json"
        # --noconftest: the gate session of a project whose conftest imports test-only
        # dependencies (hypothesis) would stop before any hook (issue 20).
        run(
            [
                python,
                "-m",
                "pytest",
                "--noconftest",
                "--parex",
                f"--parex-config={config}",
                "--parex-no-cache",
                f"--parex-json={report}",
                "-p",
                "no:randomly",
            ],
            gate_tree,
            env=env,
            timeout=1800,
        )
        gate: dict[str, str] = {}
        for check in json.loads(report.read_text())["checks"]:
            base = check["name"].split("[", 1)[0]
            if gate.get(base) != "failed":
                gate[base] = check["status"]
        direct = json.loads(run([python, "-c", DIRECT], direct_tree, env=env, timeout=1800).stdout)
        for hook, verdict in gate.items():
            other = direct["verdicts"].get(hook, "-")
            agree &= verdict == other
            print(f"{spec} | {hook} | {direct['how'].get(hook, '?')} | {verdict} | {other}")
        same = tree_bytes(gate_tree) == tree_bytes(direct_tree)
        agree &= same
        print(f"{spec} | (final tree) | | {'identical' if same else 'DIFFERENT'} |")
    print("every verdict agrees" if agree else "DISAGREEMENT")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
