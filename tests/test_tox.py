"""tox: the repository's ``tox -e gate`` from a fresh clone, and the example tox recipe."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "examples" / "tox-recipe"


def _clean_env() -> dict[str, str]:
    """Our environment without what would make the inner run believe it is nested."""
    drop = ("PYTEST_", "TOX_", "NOX_", "GITHUB_", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_tox_ini_declares_the_test_and_gate_environments() -> None:
    import configparser

    ini = configparser.ConfigParser(interpolation=None)
    ini.read(REPO / "tox.ini")
    assert ini["tox"]["skip_missing_interpreters"] == "true"
    assert [e.strip() for e in ini["tox"]["env_list"].split(",")] == [
        "py310",
        "py311",
        "py312",
        "py313",
    ]
    # The same command as README's "run this project's own tests".
    assert ini["testenv"]["commands"].strip() == "python -m pytest -q -n 2 {posargs}"
    assert ".venv/bin/python -m pytest -q -n 2\n" in (REPO / "README.md").read_text()
    assert ".venv/bin/python -m pytest -q -n 2\n" in (REPO / ".ci" / "run").read_text()
    assert ini["testenv:gate"]["commands"].strip() == "pytest --parex {posargs}"
    assert ini["testenv:gate"]["extras"].strip() == "dev"


@pytest.mark.skipif(
    bool(os.environ.get("PYTEST_PAREX_ACTIVE")),
    reason="runs inside a gate: tox -e gate would run the gate inside itself",
)
@pytest.mark.skipif(
    importlib.util.find_spec("tox") is None,
    reason="tox is not installed here (pip install -e '.[dev]' installs it)",
)
def test_tox_gate_from_a_fresh_clone(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: no fresh clone to make")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    # Only mypy: the point is that the environment builds from the clone and runs the gate;
    # the whole test suite inside it would run this very test again.
    proc = subprocess.run(
        [sys.executable, "-m", "tox", "-e", "gate", "--", "--parex-only", "types"],
        cwd=clone,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "parex: pyproject.toml, 1 check" in out
    assert "parex: passed" in out
    assert "gate: OK" in out


def test_the_tox_recipe_example_gate_passes(tmp_path: Path) -> None:
    if shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists():
        pytest.skip("ruff is not installed here")
    project = tmp_path / "tox-recipe"
    shutil.copytree(RECIPE, project, ignore=shutil.ignore_patterns(".parex", ".tox"))
    env = _clean_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--parex", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "parex: passed" in proc.stdout
    for name in ("lint", "format", "tests"):
        assert f"[parex] {name} passed" in proc.stdout
