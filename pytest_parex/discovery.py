"""The zero-config gate: what ``pytest --parex`` runs in a project without ``[tool.parex]``,
and TOML output of a ``[tool.parex]`` table (``--parex-show-config``)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_parex.config import ConfigError, read_document

# Directories never searched for tests: virtualenvs, caches, build output, VCS data.
_PRUNE = {
    ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "env", "node_modules", "build",
    "dist", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".parex", "site-packages",
}  # fmt: skip
_MAX_FILES = 5000
"""Stop looking after this many Python files: a default must be cheap to build."""


@dataclass(frozen=True)
class Discovery:
    """A default ``[tool.parex]`` table and what was left out, with reasons."""

    table: dict[str, Any]
    chosen: tuple[str, ...]
    skipped: tuple[str, ...]

    def header(self, config_name: str) -> str:
        chosen = ", ".join(self.chosen) or "nothing"
        text = f"no [tool.parex] in {config_name}; default gate: {chosen}"
        if self.skipped:
            text += "; skipped: " + "; ".join(self.skipped)
        return text + " (pytest --parex-show-config prints it as TOML)"


def _installed(tool: str) -> bool:
    bindir = Path(sys.executable).parent
    return bool(
        shutil.which(tool)
        or (bindir / tool).exists()
        or importlib.util.find_spec(tool.replace("-", "_")) is not None
    )


def _python_files(root: Path) -> Iterator[Path]:
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _PRUNE and not d.startswith(".") and "egg-info" not in d
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                count += 1
                if count > _MAX_FILES:
                    return
                yield Path(dirpath) / name


def _is_test_file(path: Path) -> bool:
    return path.name.startswith("test_") or path.name.endswith("_test.py")


def _uses_benchmark(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "benchmark(" in text or "(benchmark" in text or ", benchmark" in text


def discover(root: Path, pyproject: Mapping[str, Any] | None = None) -> Discovery:
    """Look at ``root`` and build the gate a careful user would write first."""
    tool = (pyproject or {}).get("tool", {})
    tool = tool if isinstance(tool, dict) else {}
    checks: dict[str, dict[str, Any]] = {}
    chosen: list[str] = []
    skipped: list[str] = []
    files = list(_python_files(root))
    tests = [f for f in files if _is_test_file(f)]

    ruff_configured = "ruff" in tool or any(
        (root / name).is_file() for name in ("ruff.toml", ".ruff.toml")
    )
    if not files:
        skipped.append("lint (no Python files)")
    elif _installed("ruff"):
        checks["lint"] = {"kind": "review", "tool": "ruff"}
        chosen.append("lint (ruff check" + (", configured)" if ruff_configured else ")"))
        fmt = tool.get("ruff", {}).get("format") if isinstance(tool.get("ruff"), dict) else None
        if fmt is not None:
            checks["format"] = {"kind": "review", "tool": "ruff-format", "agent": "refactorer"}
            chosen.append("format (ruff format --check)")
    else:
        skipped.append("lint (ruff is not installed)")

    mypy_configured = "mypy" in tool or any(
        (root / name).is_file() for name in ("mypy.ini", ".mypy.ini")
    )
    setup_cfg = root / "setup.cfg"
    if not mypy_configured and setup_cfg.is_file():
        mypy_configured = "[mypy]" in setup_cfg.read_text(encoding="utf-8", errors="replace")
    if not mypy_configured:
        skipped.append("types (mypy is not configured)")
    elif not _installed("mypy"):
        skipped.append("types (mypy is configured but not installed)")
    else:
        mypy_files = (
            tool.get("mypy", {}).get("files") if isinstance(tool.get("mypy"), dict) else None
        )
        run = ["mypy"] if mypy_files else ["mypy", "."]
        checks["types"] = {"kind": "review", "run": run, "agent": "debugger"}
        chosen.append("types (mypy)")

    bench_files = [f for f in tests if _uses_benchmark(f)]
    has_benchmark = importlib.util.find_spec("pytest_benchmark") is not None
    if tests:
        args: list[str] = ["--benchmark-disable"] if bench_files and has_benchmark else []
        checks["tests"] = {"kind": "tests", "pytest": args}
        chosen.append(f"tests ({len(tests)} test file{'s' if len(tests) != 1 else ''})")
    else:
        skipped.append("tests (no test_*.py files)")

    if not bench_files:
        skipped.append("benchmarks (no pytest-benchmark tests found)")
    elif not has_benchmark:
        skipped.append("benchmarks (pytest-benchmark is not installed)")
    else:
        checks["benchmarks"] = {"kind": "benchmarks"}
        chosen.append("benchmarks (pytest-benchmark, run alone)")
    skipped.append('leaks (opt-in: kind = "leaks")')
    return Discovery({"checks": checks}, tuple(chosen), tuple(skipped))


def load_document(path: Path) -> dict[str, Any] | None:
    """The whole TOML document at ``path``, or None when it does not exist or is invalid."""
    if not path.is_file():
        return None
    try:
        return read_document(path)
    except ConfigError:
        return None
