"""The third-party pytest plugins of the plugin matrix (tests/test_plugins.py), installed apart.

They must never be installed into the project's own environment: pytest-randomly and
pytest-sugar would change this project's own test runs and every pytester run. They go into a
directory of their own (``pip install --no-deps --target``), which the matrix puts on
``PYTHONPATH`` of its subprocess runs only. ``--no-deps`` with every dependency pinned below:
pip would otherwise put a second pytest and pluggy there, which would shadow the ones under
test.

The directory is keyed by the pins and the interpreter (coverage and markupsafe have compiled
parts) and kept under pytest's cache directory, so it is installed once. ``.ci/run`` warms it:
``python tests/plugin_env.py`` installs it (or fails with pip's message) and prints its path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

PINNED = (
    "pytest-cov==7.1.0",
    "coverage==7.17.5",
    'tomli>=1; python_version < "3.11"',  # coverage[toml]
    "pytest-randomly==5.1.0",
    "pytest-timeout==2.4.0",
    "pytest-rerunfailures==16.7",
    "pytest-sugar==1.1.1",
    "termcolor==3.3.0",
    "pytest-asyncio==1.5.0",
    'typing-extensions==4.16.0; python_version < "3.13"',
    'backports-asyncio-runner>=1.1,<2; python_version < "3.11"',
    "pytest-html==4.2.0",
    "pytest-metadata==3.1.1",
    "jinja2==3.1.6",
    "markupsafe==3.0.4",
)
"""Every distribution the plugins need beyond pytest, pluggy and packaging (the project's)."""

PIP_TIMEOUT = 900.0


class InstallError(Exception):
    """pip could not install the matrix (PyPI unreachable, a pin gone, no wheel ...)."""


def key() -> str:
    digest = hashlib.sha256("\n".join(PINNED).encode()).hexdigest()[:12]
    return f"{sys.implementation.cache_tag}-{digest}"


def default_base(root: Path) -> Path:
    """``<root>/.pytest_cache/d``: pytest's cache directory, where ``config.cache.mkdir`` puts
    directories (computed here so that ``.ci/run`` warms the same one without pytest)."""
    return root / ".pytest_cache" / "d"


def ensure(base: Path) -> Path:
    """The installed directory under ``base`` (installing it first if needed).

    Concurrent sessions each install into a directory of their own and rename it into place:
    the first rename wins, the others remove theirs.
    """
    target = base / f"parex-plugin-matrix-{key()}"
    if (target / "pytest_cov").is_dir():
        return target
    base.mkdir(parents=True, exist_ok=True)
    scratch = base / f".parex-plugin-matrix-{uuid.uuid4().hex}"
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-input",
        "--disable-pip-version-check",
        "--no-deps",
        "--target",
        str(scratch),
        *PINNED,
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise InstallError(f"pip did not finish: {exc}") from None
    if done.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        raise InstallError(
            f"pip install --target exited with {done.returncode}: " + "\n".join(lines[-15:])
        )
    try:
        os.rename(scratch, target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)  # another session was first
        if not (target / "pytest_cov").is_dir():
            raise
    return target


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    try:
        print(ensure(default_base(root)))
    except InstallError as exc:
        print(f"cannot install the plugin matrix (tests/plugin_env.py): {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
