"""The pre-commit hooks end to end in a gate: zero-config, the header, the result cache, xdist
workers, ``--parex-show-config`` and ``--parex-changed``."""

from __future__ import annotations

import subprocess

import pytest

pytest.importorskip("yaml")
pytest.importorskip("identify")

CONFIG = """\
repos:
- repo: local
  hooks:
  - {id: strip, name: strip, entry: sed -i -e 's/ *$//', language: system, types: [text]}
  - {id: no-bad, name: no-bad, entry: BAD, language: pygrep, types: [python]}
- repo: meta
  hooks:
  - {id: check-hooks-apply}
  - {id: identity, files: \\.md$}
"""


def _git(pytester: pytest.Pytester, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=pytester.path,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", **{".pre-commit-config": CONFIG})
    pytester.makepyfile(a="x = 1\n", b="y = 2\n")
    pytester.makefile(".md", README="# r\n")
    pytester.makeini("[pytest]\n")
    _git(pytester, "init", "-q")
    _git(pytester, "add", "-A")
    _git(pytester, "commit", "-qm", "init")
    return pytester


def test_zero_config_gate_runs_the_hooks_caches_them_and_runs_on_xdist(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest_subprocess("--parex", "--parex-progress=plain", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "parex: no [[]tool.parex] in pyproject.toml; default gate: the hooks of "
            ".pre-commit-config.yaml as the reviews*",
            "parex: pre-commit: .pre-commit-config.yaml, 4 hooks: strip (system), no-bad "
            "(native), check-hooks-apply (native), identity (native)",
            "*parex: passed*",
        ]
    )
    assert result.ret == 0
    again = project.runpytest_subprocess("--parex", "--parex-progress=plain")
    again.stdout.fnmatch_lines(["*no-bad * cached *", "*4 cached*"])
    assert "started" not in again.stdout.str()
    # On xdist workers: each builds the same checks from the same tree.
    on_workers = project.runpytest_subprocess("--parex", "--parex-no-cache", "-n", "2")
    on_workers.stdout.fnmatch_lines(["*2 xdist workers*", "*parex: passed*"])
    assert on_workers.ret == 0


def test_show_config_and_changed_files(project: pytest.Pytester) -> None:
    shown = project.runpytest_subprocess("--parex-show-config")
    shown.stdout.fnmatch_lines(
        [
            "# pre-commit: .pre-commit-config.yaml, 4 hooks:*",
            "pre-commit = true",
            "[[]tool.parex.checks.strip]",
            'kind = "pre-commit"',
        ]
    )
    (project.path / "a.py").write_text("x = 1  # BAD   \n")
    result = project.runpytest_subprocess("--parex", "--parex-no-cache", "--parex-changed")
    result.stdout.fnmatch_lines(
        [
            "*files: 1 changed (staged and unstaged changes against HEAD)",
            "*strip * failed * files were modified by this hook: a.py*",
            "*no-bad * failed * 1 issue (1 changed file)*",
        ]
    )
    assert result.ret == 1
    assert (project.path / "a.py").read_text() == "x = 1  # BAD\n"
