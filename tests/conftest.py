"""Helpers for end-to-end tests: scratch projects whose checks record when they ran."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from pytest_parex.config import DEFAULT_AGENTS, Check, ParexConfig, to_toml

# Hypothesis fails an example that runs longer than its deadline (200 ms by default), and on a
# loaded machine a descheduled process does, whatever the code under test: no deadlines here.
# Bounded example counts, not time, keep the property tests short.
# On CI (CI=true, as .ci/run sets it) the examples are the same on every run (derandomize) and
# no example database is kept: a red CI run is the code's doing, not the draw's. Locally the
# draw is random, to go on finding new cases; a failure prints the blob that reproduces it.
settings.register_profile("parex-tests", deadline=None, print_blob=True)
settings.register_profile(
    "parex-ci", deadline=None, print_blob=True, derandomize=True, database=None
)
settings.load_profile("parex-ci" if os.environ.get("CI") else "parex-tests")

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

# A check command that synchronises with other checks through marker files instead of sleeping
# and comparing clocks afterwards: a test proves "ran side by side" because the checks could
# only finish by seeing each other, and "never together" because a check that sees a forbidden
# neighbour's "running" marker fails. Every wait is bounded (BOUND seconds): a check waiting for
# something that never happens fails with a line saying what it waited for, so a broken
# scheduler fails the test instead of hanging it. Importable: other scripts of a scratch
# project use touch/marker/wait_for. Usage: sync.py NAME [options], see Project.sync.
SYNC = """\
import argparse
import json
import os
import sys
import time

BOUND = 60.0


def marker(kind, name):
    return os.path.join("sync", kind, name)


def touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()


def fail(name, message):
    print(f"sync {name}: {message}", flush=True)
    if os.path.exists(marker("running", name)):
        os.remove(marker("running", name))
    sys.exit(97)


def wait_for(name, what, ready):
    deadline = time.monotonic() + BOUND
    while not ready():
        if time.monotonic() > deadline:
            fail(name, f"gave up after {BOUND:.0f}s waiting for {what}")
        time.sleep(0.02)


def started():
    folder = os.path.join("sync", "started")
    return os.listdir(folder) if os.path.isdir(folder) else []


def check_company(name, args, when):
    running = sorted(os.listdir(os.path.join("sync", "running")))
    clash = [n for n in args.alone_from if n in running]
    if clash:
        fail(name, f"{when}, {', '.join(clash)} was running too")
    if args.at_most is not None and len(running) > args.at_most:
        fail(name, f"{when}, {len(running)} checks were running ({', '.join(running)}), "
             f"at most {args.at_most} allowed")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--token")
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--after-start", action="append", default=[])
    parser.add_argument("--after-end", action="append", default=[])
    parser.add_argument("--after-file", action="append", default=[])
    parser.add_argument("--after-starts", type=int)
    parser.add_argument("--needs-ended", action="append", default=[])
    parser.add_argument("--needs-one-ended", action="append", default=[])
    parser.add_argument("--alone-from", action="append", default=[])
    parser.add_argument("--at-most", type=int)
    args = parser.parse_args()
    name = args.name
    start = time.time()
    print(f"{name} starting", flush=True)
    touch(marker("running", name))
    touch(marker("started", name))
    for other in args.needs_ended:
        if not os.path.exists(marker("done", other)):
            fail(name, f"started before {other} ended")
    if args.needs_one_ended and not any(
        os.path.exists(marker("done", other)) for other in args.needs_one_ended
    ):
        fail(name, f"started before any of {', '.join(args.needs_one_ended)} ended")
    check_company(name, args, "when it started")
    for other in args.after_start:
        wait_for(name, f"{other} to start", lambda o=other: os.path.exists(marker("started", o)))
    if args.after_starts is not None:
        wait_for(name, f"{args.after_starts} checks to start",
                 lambda: len(started()) >= args.after_starts)
    for path in args.after_file:
        wait_for(name, f"the file {path}", lambda p=path: os.path.exists(p))
    for other in args.after_end:
        wait_for(name, f"{other} to end", lambda o=other: os.path.exists(marker("done", o)))
    time.sleep(args.hold)
    check_company(name, args, "when it ended")
    os.makedirs("times", exist_ok=True)
    with open(os.path.join("times", name + ".json"), "w") as fh:
        json.dump({"start": start, "end": time.time()}, fh)
    os.remove(marker("running", name))
    touch(marker("done", name))
    print(f"{name} done with {args.exit}", flush=True)
    sys.exit(args.exit)


if __name__ == "__main__":
    main()
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

    def sync(
        self,
        name: str,
        *,
        code: int = 0,
        hold: float = 0.0,
        after_start: Sequence[str] = (),
        after_starts: int | None = None,
        after_file: Sequence[str] = (),
        after_end: Sequence[str] = (),
        needs_ended: Sequence[str] = (),
        needs_one_ended: Sequence[str] = (),
        alone_from: Sequence[str] = (),
        at_most: int | None = None,
    ) -> list[str]:
        """A check that synchronises with others (see SYNC); the token marks its processes.

        It writes ``sync/started/NAME`` and ``sync/running/NAME``, fails at once unless every
        ``needs_ended`` check (or one of ``needs_one_ended``) has ended, waits until the
        ``after_start`` checks have started, ``after_starts`` checks in all have started, the
        ``after_file`` files exist and the ``after_end`` checks have ended, then sleeps ``hold``
        seconds; when it starts and again before it ends it fails if an ``alone_from`` check is
        running or more than ``at_most`` checks are. Then it records ``times/NAME.json`` (it
        ran to its end), replaces its running marker by ``sync/done/NAME`` and exits ``code``.
        """
        argv = [sys.executable, "sync.py", name, "--token", self.token, "--exit", str(code)]
        argv += ["--hold", str(hold)]
        for option, values in (
            ("--after-start", after_start),
            ("--after-file", after_file),
            ("--after-end", after_end),
            ("--needs-ended", needs_ended),
            ("--needs-one-ended", needs_one_ended),
            ("--alone-from", alone_from),
        ):
            for value in values:
                argv += [option, value]
        if after_starts is not None:
            argv += ["--after-starts", str(after_starts)]
        if at_most is not None:
            argv += ["--at-most", str(at_most)]
        return argv

    def forget_runs(self) -> None:
        """Remove what earlier gate runs' checks recorded (times/, sync/) before another run."""
        for folder in ("times", "sync"):
            shutil.rmtree(self.path / folder, ignore_errors=True)

    def times(self) -> dict[str, tuple[float, float]]:
        out = {}
        for f in sorted((self.path / "times").glob("*.json")):
            data = json.loads(f.read_text())
            out[f.stem] = (data["start"], data["end"])
        return out

    def interrupt(self, args: Sequence[str], started: Sequence[str]) -> tuple[int, str]:
        """Run ``pytest ARGS`` here, wait until the ``started`` checks have printed that they
        started, send SIGINT (Ctrl-C) to the gate alone; return its exit code and output.

        The gate starts with SIGINT at its default, whatever this process inherited: a shell
        script's background job (``... &``, ``nohup``) runs with SIGINT ignored, Python keeps
        an ignored SIGINT ignored, and the gate would never see the Ctrl-C."""
        proc = subprocess.Popen(
            [sys.executable, "-c", DEFAULT_SIGINT_EXEC, "-m", "pytest", *args],
            cwd=self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while not all(self.live_log_says(name, "starting") for name in started):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                out, _ = proc.communicate(timeout=30)
                pytest.fail("the checks never started:\n" + out.decode(errors="replace"))
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=30)
            pytest.fail("the gate was still running 60 s after Ctrl-C:\n" + out.decode("replace"))
        return proc.returncode, out.decode(errors="replace")

    def live_log_says(self, name: str, text: str) -> bool:
        """Whether the log of check ``name`` says ``text`` while the check runs (in its run's
        own directory, ``.parex/run/RUN/NAME.log``) or after it ended (``.parex/logs``)."""
        parex = self.path / ".parex"
        for log in [*parex.glob(f"run/*/{name}.log"), parex / "logs" / f"{name}.log"]:
            try:
                if text in log.read_text(errors="replace"):
                    return True
            except OSError:
                continue
        return False

    def leftovers(self) -> list[str]:
        return processes_with(self.token)

    def json_report(self, name: str = "report.json") -> Any:
        return json.loads((self.path / name).read_text())


# ``python -c DEFAULT_SIGINT_EXEC ARGS...`` becomes ``python ARGS...`` with SIGINT at its default
# (an exec keeps a default disposition, and the new interpreter then installs its own handler).
DEFAULT_SIGINT_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


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
    "CI_PROJECT_DIR",
)
SCRUBBED_PREFIXES = ("PYTEST_PAREX_", "GITHUB_", "RUNNER_")
"""A gate under test must not believe it runs on GitHub Actions (annotations, the step
summary, the job's annotation count in RUNNER_TEMP, a pull request's base branch)."""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    (pytester.path / "rec.py").write_text(REC)
    (pytester.path / "sync.py").write_text(SYNC)
    # The scratch project must not inherit a gate from the environment, nor believe it runs
    # nested (tox run-parallel, nox: fewer workers) or on GitHub Actions (annotations).
    for var in list(os.environ):
        if var.startswith(SCRUBBED_PREFIXES) or var in SCRUBBED_ENV:
            monkeypatch.delenv(var)
    token = f"parex-token-{uuid.uuid4().hex[:12]}"
    proj = Project(pytester.path, pytester, token)
    yield proj
    assert wait_gone(token, timeout=5.0) == [], "a check process outlived the test"


def check_of(name: str, agent: str = "code-reviewer", **kw: Any) -> Check:
    """A check for the pure scheduling tests (it is never run)."""
    return Check(name=name, agent=agent, argv=("true",), **kw)


def config_of(
    checks: Iterable[Check], agents: Mapping[str, int] | None = None, **kw: Any
) -> ParexConfig:
    """The default agents (plus ``agents``) around ``checks``."""
    instances = dict(DEFAULT_AGENTS)
    instances.update(agents or {})
    return ParexConfig(
        source="test", checks=tuple(checks), agents=tuple(sorted(instances.items())), **kw
    )
