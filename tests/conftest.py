"""Helpers for end-to-end tests: scratch projects whose checks record when they ran."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_parex.config import to_toml

# A check command that records its own start and end (wall clock) in times/NAME.json,
# then sleeps and exits with the given code. Usage: rec.py NAME SECONDS [EXIT] [TOKEN].
REC = """\
import json, os, sys, time
name, seconds = sys.argv[1], float(sys.argv[2])
code = int(sys.argv[3]) if len(sys.argv) > 3 else 0
start = time.time()
print(f"{name} starting", flush=True)
time.sleep(seconds)
end = time.time()
os.makedirs("times", exist_ok=True)
# Written whole or not at all: a check killed while writing leaves no half a file.
with open(os.path.join("times", name + ".json.tmp"), "w") as fh:
    json.dump({"start": start, "end": end}, fh)
os.replace(os.path.join("times", name + ".json.tmp"), os.path.join("times", name + ".json"))
print(f"{name} done with {code}", flush=True)
sys.exit(code)
"""


def pyproject(checks: Mapping[str, Mapping[str, Any]], **top: Any) -> str:
    return to_toml({**top, "checks": checks})


@dataclass
class Project:
    path: Path
    pytester: pytest.Pytester
    token: str

    def write(self, checks: Mapping[str, Mapping[str, Any]], **top: Any) -> None:
        (self.path / "pyproject.toml").write_text(pyproject(checks, **top))

    def rec(self, name: str, seconds: float, code: int = 0) -> list[str]:
        """A command that records its run; the token marks its processes."""
        return [sys.executable, "rec.py", name, str(seconds), str(code), self.token]

    def times(self) -> dict[str, tuple[float, float]]:
        out = {}
        for f in sorted((self.path / "times").glob("*.json")):
            data = json.loads(f.read_text())
            out[f.stem] = (data["start"], data["end"])
        return out

    def interrupt(self, args: Sequence[str], started: Sequence[str]) -> tuple[int, str]:
        """Run ``pytest ARGS`` here, wait until the ``started`` checks have printed that they
        started, send SIGINT (Ctrl-C) to the gate alone; return its exit code and output."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args],
            cwd=self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        logs = [self.path / ".parex" / "logs" / f"{name}.log" for name in started]
        deadline = time.monotonic() + 90
        while not all(p.exists() and "starting" in p.read_text() for p in logs):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                out, _ = proc.communicate(timeout=30)
                pytest.fail("the checks never started:\n" + out.decode(errors="replace"))
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        return proc.returncode, out.decode(errors="replace")

    def leftovers(self) -> list[str]:
        return processes_with(self.token)

    def json_report(self, name: str = "report.json") -> Any:
        return json.loads((self.path / name).read_text())


def processes_with(token: str) -> list[str]:
    """Command lines of live (non-zombie) processes whose argv mentions ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def wait_gone(token: str, timeout: float = 5.0) -> list[str]:
    """Leftover processes after waiting up to ``timeout`` for them to disappear."""
    deadline = time.monotonic() + timeout
    left = processes_with(token)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_with(token)
    return left


SCRUBBED_ENV = (
    "PYTEST_ADDOPTS",
    "PYTEST_XDIST_WORKER",
    "TOX_PARALLEL_ENV",
    "NOX_CURRENT_SESSION",
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_WORKSPACE",
)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    (pytester.path / "rec.py").write_text(REC)
    # The scratch project must not inherit a gate from the environment, nor believe it runs
    # nested (tox run-parallel, nox: fewer workers) or on GitHub Actions (annotations).
    for var in list(os.environ):
        if var.startswith("PYTEST_PAREX_") or var in SCRUBBED_ENV:
            monkeypatch.delenv(var)
    token = f"parex-token-{uuid.uuid4().hex[:12]}"
    proj = Project(pytester.path, pytester, token)
    yield proj
    assert wait_gone(token, timeout=5.0) == [], "a check process outlived the test"


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]
