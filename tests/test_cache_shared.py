"""End to end: the result cache's store -- passes of several states per check (branches
switched back and forth), its bounds, a store elsewhere (``cache-dir``,
``PYTEST_PAREX_CACHE_DIR``) shared by checkouts, and read-only use. Cached and uncached gates
agree throughout (the promise of the incremental gate)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Project
from test_incremental import Gate, _check, _counter, _gate

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}

# Passes when every line of src/*.py says "ok" (a value assigned), fails naming the first
# that does not.
CHECK = """\
import pathlib, sys
for path in sorted(pathlib.Path("src").glob("*.py")):
    if "ok" not in path.read_text():
        print(f"{path}: not ok", flush=True)
        sys.exit(1)
print("all ok", flush=True)
"""


def git(project: Project, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=project.path, check=True, capture_output=True,
        env={**os.environ, **GIT_ENV},
    )  # fmt: skip


def _branches(project: Project) -> None:
    """main: src/a.py "ok"; b: src/a.py edited, still "ok"; bad: src/a.py not ok. The checks:
    ``src`` (reads src/**) runs check.py, ``docs`` reads docs/**."""
    git(project, "init", "-q", "-b", "main")
    (project.path / ".gitignore").write_text("runpytest-*\nstdout\nstderr\nreport.json\n")
    _counter(project)
    (project.path / "check.py").write_text(CHECK)
    (project.path / "src").mkdir()
    (project.path / "docs").mkdir()
    (project.path / "src" / "a.py").write_text("A = 'ok'\n")
    (project.path / "docs" / "index.md").write_text("# docs\n")
    project.write(_checks())
    git(project, "add", "-A")
    git(project, "commit", "-qm", "main")
    for branch, text in (("b", "A = 'ok, on b'\n"), ("bad", "A = 'no'\n")):
        git(project, "checkout", "-qb", branch, "main")
        (project.path / "src" / "a.py").write_text(text)
        git(project, "commit", "-qam", branch)
    git(project, "checkout", "-q", "main")


def _checks() -> dict[str, Any]:
    return {
        "src": {"run": [sys.executable, "check.py"], "reads": ["src/**", "check.py"]},
        "docs": _check("docs", reads=["docs/**"], agent="debugger"),
    }


def _status(gate: Gate, name: str) -> str:
    check = next(c for c in gate.report["checks"] if c["name"] == name)
    return "cached" if check["cached"] else str(check["status"])


def _agree(project: Project, name: str, expected: str) -> Gate:
    """The cached gate says ``expected`` of ``name``; running it says the same."""
    cached = _gate(project)
    assert _status(cached, name) == expected, cached.stdout.str()
    uncached = _gate(project, "--parex-no-cache", "-p", "no:cacheprovider")
    verdict = "passed" if expected == "cached" else expected
    assert _status(uncached, name) == verdict, uncached.stdout.str()
    return cached


def test_switching_branches_back_and_forth_replays_each_branchs_passes(
    project: Project,
) -> None:
    _branches(project)
    assert _gate(project).ret == 0  # main
    git(project, "checkout", "-q", "b")
    assert _status(_gate(project), "src") == "passed"
    git(project, "checkout", "-q", "bad")
    assert _agree(project, "src", "failed").cached == {"docs"}  # docs/ is the same everywhere
    # Back to main, then b: both branches' passes replay, main's after a failure on bad too.
    for branch in ("main", "b", "main", "b"):
        git(project, "checkout", "-q", branch)
        again = _agree(project, "src", "cached")
        assert again.cached == {"src", "docs"}
    git(project, "checkout", "-q", "bad")
    assert _agree(project, "src", "failed").cached == {"docs"}  # a failure is never stored


def _store(project: Project) -> Path:
    return project.path / ".pytest_cache" / "d" / "parex-store"


def _entries(store: Path) -> list[Path]:
    return sorted(store.glob("entries/*/*.entry"))


def _snapshot(store: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(store)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }


def test_the_store_stays_under_its_size_dropping_the_least_recently_used(
    project: Project,
) -> None:
    _branches(project)
    first = _gate(project)
    assert first.ret == 0
    size = max(p.stat().st_size for p in _entries(_store(project)))
    # Room for about three entries.
    project.write(_checks(), **{"cache-size": 3 * size + size // 2})
    for i in range(6):
        (project.path / "src" / "a.py").write_text(f"A = 'ok {i}'\n")
        assert _gate(project).ret == 0
        total = sum(p.stat().st_size for p in _entries(_store(project)))
        assert total <= 3 * size + size // 2
    # The newest states replay, the oldest were dropped.
    assert _gate(project).cached == {"src", "docs"}
    (project.path / "src" / "a.py").write_text("A = 'ok 0'\n")
    assert "src" not in _gate(project).cached


def test_read_only_replays_and_writes_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _branches(project)
    assert _gate(project).ret == 0
    before = _snapshot(_store(project))
    monkeypatch.setenv("PYTEST_PAREX_CACHE", "read")
    replayed = _gate(project)
    assert replayed.cached == {"src", "docs"}
    (project.path / "src" / "a.py").write_text("A = 'ok, changed'\n")
    changed = _gate(project)
    assert changed.ret == 0 and changed.cached == {"docs"}
    (project.path / "src" / "a.py").write_text("A = 'no'\n")
    failed = _gate(project)
    assert failed.ret == 1
    assert _snapshot(_store(project)) == before  # no entry, no head, no recency
    monkeypatch.delenv("PYTEST_PAREX_CACHE")
    (project.path / "src" / "a.py").write_text("A = 'ok, changed'\n")
    assert _gate(project).cached == {"docs"}  # the read-only pass was never recorded


def _cached_in(folder: Path) -> set[str]:
    """Run the gate in ``folder`` (a plain environment: pytester's runs put the project's
    path on PYTHONPATH, which every key holds) and say which checks it replayed."""
    report = folder / "report.json"
    report.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--parex", "--parex-json=report.json", "-p",
         "no:randomly"],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return {c["name"] for c in json.loads(report.read_text())["checks"] if c["cached"]}


def test_a_store_elsewhere_is_shared_by_checkouts(project: Project, tmp_path: Path) -> None:
    """``cache-dir`` puts the store outside pytest's cache; a second checkout of the project
    in another directory replays the first one's passes (entries hold relative paths)."""
    _branches(project)
    shared = tmp_path.parent / f"{tmp_path.name}-store"
    project.write(_checks(), **{"cache-dir": str(shared)})
    assert _cached_in(project.path) == set()
    assert _entries(shared) and not _store(project).exists()
    for entry in _entries(shared):
        assert str(project.path).encode() not in entry.read_bytes()
    other = tmp_path.parent / f"{tmp_path.name}-other"
    shutil.copytree(project.path, other, ignore=shutil.ignore_patterns(".pytest_cache", ".parex"))
    assert _cached_in(other) == {"src", "docs"}
    (other / "src" / "a.py").write_text("A = 'ok, elsewhere'\n")
    assert _cached_in(other) == {"docs"}


def test_the_store_directory_from_the_environment(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _branches(project)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-env-store"
    monkeypatch.setenv("PYTEST_PAREX_CACHE_DIR", str(elsewhere))
    assert _gate(project).ret == 0
    assert _entries(elsewhere) and not _store(project).exists()
    assert _gate(project).cached == {"src", "docs"}
    heads = sorted(p.name.split("-")[0] for p in elsewhere.glob("heads/*.json"))
    assert heads == ["docs", "src"]
    head = json.loads(next(elsewhere.glob("heads/src-*.json")).read_text())
    assert head["status"] == "passed"


def test_an_older_cache_directory_is_removed(project: Project) -> None:
    _branches(project)
    old = project.path / ".pytest_cache" / "d" / "parex-results"
    old.mkdir(parents=True)
    (old / "lint-0123.json").write_text("{}")
    assert _gate(project).ret == 0
    assert not old.exists()
