"""Helpers for tests that install code for real: small wheels built here (no build backend, no
network) and virtualenvs that see this environment's packages, so a gate run in them finds
pytest and pytest-parex while what a test installs stays its own."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    files: Mapping[str, str],
    *,
    scripts: Mapping[str, str] | None = None,
) -> Path:
    """A pure-Python wheel ``NAME-VERSION-py3-none-any.whl`` in ``folder`` holding ``files``
    (paths inside site-packages -> text), with a correct ``RECORD``; ``scripts`` go to the
    installing environment's ``bin`` (``.data/scripts``)."""
    dist = f"{name}-{version}.dist-info"
    entries = dict(files)
    entries.update({f"{name}-{version}.data/scripts/{k}": v for k, v in (scripts or {}).items()})
    entries[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    entries[f"{dist}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: parex-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = []
    for path, text in entries.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    entries[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    wheel.unlink(missing_ok=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in entries.items():
            zf.writestr(path, text)
    return wheel


@dataclass
class Venv:
    """A virtualenv whose Python also imports what this test environment has installed."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def site(self) -> Path:
        found = sorted(self.root.glob("lib/python*/site-packages"))
        assert found, f"no site-packages in {self.root}"
        return found[0]

    def install(self, wheel: Path, *extra: str) -> None:
        """``pip install`` a wheel into this environment (pip of the test environment, aimed at
        this one's Python), replacing any installed version."""
        pip = [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet"]
        options = ["--no-deps", "--no-index", "--force-reinstall", "--disable-pip-version-check"]
        subprocess.run(
            [*pip, *options, *extra, str(wheel)],
            check=True,
            capture_output=True,
        )


def make_venv(root: Path, *, inherit: bool = True) -> Venv:
    """A virtualenv at ``root`` (no pip of its own); with ``inherit``, a ``.pth`` file adds this
    test environment's site-packages (and the ``.pth`` files there, such as pytest-parex's
    editable install) to its path."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    venv = Venv(root)
    if inherit:
        parent = sysconfig.get_paths()["purelib"]
        (venv.site / "_parex_tests_parent.pth").write_text(
            f"import site; site.addsitedir({parent!r})\n"
        )
    return venv


def scrubbed_env(**extra: str) -> dict[str, str]:
    """This process's environment without what steers a gate (``PYTEST_PAREX_*``, addopts,
    xdist, CI annotations), plus ``extra``."""
    drop = ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_PAREX_") and k not in drop and k != "PYTHONPATH"
    }
    env.update(extra)
    return env
