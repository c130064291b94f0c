"""End to end: remote agents. Real execnet socket servers, bound to 127.0.0.1 only, run the
gate's xdist workers (``--tx socket=127.0.0.1:PORT``) -- in the project, or elsewhere and
told where the project is (``//chdir=``) -- and a worker that cannot run the gate fails it
with one line.

Each server is started in its own working directory and binds port 0 itself (it prints the
port the system gave it): no port is guessed. A socket server runs one worker at a time, in
its own process: the checks that worker starts are the server's children. The fixture stops
every server it started, and the project fixture then proves that no process carrying the
test's token (every server does, in its argv) is left.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import Project, processes_with, wait_gone

from pytest_parex import __version__

LISTENING = re.compile(r"Entering Accept loop \('127\.0\.0\.1', (\d+)\)")
GATE = ("--parex", "-p", "no:cacheprovider", "-p", "no:randomly")
SERVER = (sys.executable, "-u", "-m", "execnet.script.socketserver")

# Records which process started the check (its parent: the worker, i.e. the socket server),
# then, when told to, waits for another check to have started (a file): two such checks must
# run at the same time, so on two workers.
WHERE = """\
import os, sys, time
name, wait_for = sys.argv[1], sys.argv[2]
with open(name + ".started", "w") as fh:
    fh.write(str(os.getppid()))
deadline = time.monotonic() + 60
while wait_for != "-" and not os.path.exists(wait_for + ".started"):
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.02)
sys.exit(int(sys.argv[3]))
"""

# A check with a tree: itself and a child, both carrying the token in their argv.
LONG = """\
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", sys.argv[1]])
with open("long.started", "w") as fh:
    fh.write(str(child.pid))
child.wait()
"""


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    cwd: Path
    log: Path

    def spec(self, chdir: Path | None = None) -> str:
        return f"socket=127.0.0.1:{self.port}" + (f"//chdir={chdir}" if chdir else "")


@dataclass
class Servers:
    token: str
    logs: Path
    started: list[Server] = field(default_factory=list)

    def start(self, cwd: Path, env: Mapping[str, str] | None = None) -> Server:
        """execnet's own socket server (``execnet/script/socketserver.py``), in ``cwd``."""
        log = self.logs / f"server-{len(self.started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                # The server reads only its first argument; the token marks its process.
                [*SERVER, "127.0.0.1:0", self.token],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        deadline = time.monotonic() + 60
        while not (found := LISTENING.search(log.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"the socket server did not start:\n{log.read_text()}")
            time.sleep(0.02)
        server = Server(process, int(found.group(1)), cwd, log)
        self.started.append(server)
        return server

    def stop(self) -> None:
        for server in self.started:
            server.process.send_signal(signal.SIGTERM)
        for server in self.started:
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
            assert server.process.returncode is not None


@pytest.fixture
def servers(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    (project.path / "where.py").write_text(WHERE)
    (project.path / "long.py").write_text(LONG)
    started = Servers(project.token, tmp_path_factory.mktemp("server-logs"))
    try:
        yield started
    finally:
        started.stop()
    assert wait_gone(project.token) == [], "a socket server or a check outlived the test"


def where(name: str, wait_for: str = "-", code: int = 0) -> list[str]:
    return [sys.executable, "where.py", name, wait_for, str(code)]


def ran_in(project: Project, name: str) -> int:
    """The pid of the process that started check ``name``."""
    return int((project.path / f"{name}.started").read_text())


def checks_left(token: str) -> list[str]:
    """The processes of checks still alive (the servers carry the token too), after a
    moment for a tree being killed to be gone."""
    deadline = time.monotonic() + 5
    while True:
        left = [p for p in processes_with(token) if "execnet.script.socketserver" not in p]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _logs(servers: Servers) -> str:
    return "\n".join(f"--- {s.log}\n{s.log.read_text(errors='replace')}" for s in servers.started)


def test_remote_agents_run_the_gate_only_where_the_project_is(
    project: Project, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    home = servers.start(project.path)  # a server started in the project
    away = servers.start(elsewhere)  # and one started somewhere else
    project.write(
        {
            # Each waits for the other to start: they run at once, on two workers.
            "a": {"agent": "code-reviewer", "run": where("a", wait_for="b")},
            "b": {"agent": "test-runner", "run": where("b", wait_for="a")},
        },
        **{"max-parallel": 2},
    )
    pytester = project.pytester

    # The worker elsewhere reads no [tool.parex] there: the gate fails and says what to do.
    lost = pytester.runpytest_subprocess(
        *GATE, "--tx", home.spec(), "--tx", away.spec(), "--parex-json=r.json", timeout=180
    )
    assert lost.ret == 1, lost.stdout.str() + _logs(servers)
    lost.stdout.fnmatch_lines(
        [
            f"parex: failed: worker gw1 (socket=127.0.0.1:{away.port}) could not start: "
            f"no [tool.parex] in {elsewhere}/pyexecnetcache/pyproject.toml "
            f"(rootdir {elsewhere}/pyexecnetcache): not the project; add "
            "//chdir=/path/to/the/project to its --tx spec "
            f"(the project here: {project.path}; see README, Remote agents)"
        ]
    )
    lost.stdout.no_fnmatch_line("*Traceback*")
    report = project.json_report("r.json")
    assert report["totals"]["verdict"] == "failed"
    assert (
        f"worker gw1 (socket=127.0.0.1:{away.port}) could not start"
        in (report["totals"]["headline"])
    )

    # Told where the project is, the same worker runs its share of the gate.
    for started in project.path.glob("*.started"):
        started.unlink()
    found = pytester.runpytest_subprocess(
        *GATE, "--tx", home.spec(), "--tx", away.spec(chdir=project.path), timeout=180
    )
    assert found.ret == 0, found.stdout.str() + _logs(servers)
    found.assert_outcomes(passed=2)
    found.stdout.fnmatch_lines(["parex: passed"])
    # Each check was started by a worker inside one of the two servers, one on each.
    assert {ran_in(project, "a"), ran_in(project, "b")} == {home.process.pid, away.process.pid}

    # Pointed at another project (other checks): refused, not run under this gate's names.
    other = tmp_path_factory.mktemp("other")
    (other / "pyproject.toml").write_text(
        '[tool.parex.checks.x]\nrun = ["true"]\n[tool.parex.checks.a]\nrun = ["true"]\n'
    )
    foreign = pytester.runpytest_subprocess(
        *GATE, "--tx", away.spec(chdir=other), "--tx", home.spec(), timeout=180
    )
    assert foreign.ret == 1, foreign.stdout.str() + _logs(servers)
    foreign.stdout.fnmatch_lines(
        [
            f"parex: failed: worker gw0 (socket=127.0.0.1:{away.port}//chdir={other}) could "
            f"not start: the [tool.parex] in {other}/pyproject.toml (rootdir {other}) is not "
            f"the controller's; point chdir={other} at the project's directory there "
            f"(here: {project.path})"
        ]
    )


def test_remote_sides_that_cannot_run_the_gate(project: Project, servers: Servers) -> None:
    """No pytest-parex there, no server there, a server that dies: one line each, exit 1."""
    project.write({"a": {"run": where("a")}})
    # The same Python, but its pytest loads no plugin: as if pytest-parex were not installed.
    bare = servers.start(project.path, env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    result = project.pytester.runpytest_subprocess(
        *GATE, "--tx", bare.spec(chdir=project.path), timeout=180
    )
    assert result.ret == 1, result.stdout.str() + _logs(servers)
    result.stdout.fnmatch_lines(
        [
            "a*error*did not run",
            f"parex: failed: worker gw0 (socket=127.0.0.1:{bare.port}//chdir={project.path}) "
            "could not start: its pytest does not know --parex; install pytest-parex "
            f"{__version__} in the Python that runs it",
        ]
    )
    assert not (project.path / "a.started").exists()

    # Nobody listens on the port (bound here, never listening: refused, and no one else's).
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        nobody = project.pytester.runpytest_subprocess(
            *GATE, "--tx", f"socket=127.0.0.1:{port}", "--parex-json=r.json", timeout=180
        )
    assert nobody.ret == 1, nobody.stdout.str()
    nobody.stdout.fnmatch_lines(
        [
            f"parex: failed: worker gw0 (socket=127.0.0.1:{port}) could not be started: "
            "ConnectionRefusedError: *; start execnet's socket server there "
            "(see README, Remote agents)"
        ]
    )
    nobody.stdout.no_fnmatch_line("*INTERNALERROR*")
    assert project.json_report("r.json")["totals"]["verdict"] == "failed"

    # The check kills its worker -- the server's process: xdist cannot start it again.
    doomed = servers.start(project.path)
    kill = [sys.executable, "-c", "import os, signal; os.kill(os.getppid(), signal.SIGKILL)"]
    project.write({"a": {"run": kill}})
    died = project.pytester.runpytest_subprocess(
        *GATE, "--tx", doomed.spec(chdir=project.path), timeout=180
    )
    assert died.ret == 1, died.stdout.str() + _logs(servers)
    died.stdout.fnmatch_lines(
        [
            "a*error*agent crashed (worker gw0)*",
            f"parex: failed: worker gw0 (socket=127.0.0.1:{doomed.port}//chdir={project.path}) "
            "crashed and could not be started again: Connection*Error: *; start execnet's "
            "socket server there (see README, Remote agents)",
        ]
    )
    died.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_fail_fast_and_gate_any_across_remote_agents(
    project: Project, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = servers.start(project.path)
    second = servers.start(tmp_path_factory.mktemp("elsewhere"))
    tx = ("--tx", first.spec(chdir=project.path), "--tx", second.spec(chdir=project.path))
    long = [sys.executable, "long.py", project.token]
    project.write(
        {
            "fails": {"agent": "code-reviewer", "run": where("fails", "long", code=1)},
            "long": {"agent": "test-runner", "run": long},
        },
        **{"max-parallel": 2, "on-failure": "fail-fast"},
    )
    result = project.pytester.runpytest_subprocess(*GATE, *tx, timeout=180)
    assert result.ret == 1, result.stdout.str() + _logs(servers)
    result.stdout.fnmatch_lines_random(
        [
            "fails*code-reviewer*failed*exit code 1*",
            "long*test-runner*cancelled*cancelled: fail-fast after fails failed",
            "parex: failed: fails failed",
        ]
    )
    # The remote worker killed the cancelled check's tree: its child is gone too.
    assert checks_left(project.token) == []

    for started in project.path.glob("*.started"):
        started.unlink()
    project.write(
        {
            "quick": {"agent": "code-reviewer", "run": where("quick", "long")},
            "long": {"agent": "test-runner", "run": long},
        },
        **{"max-parallel": 2, "gate": "any"},
    )
    result = project.pytester.runpytest_subprocess(*GATE, *tx, timeout=180)
    assert result.ret == 0, result.stdout.str() + _logs(servers)
    result.stdout.fnmatch_lines_random(
        [
            "quick*code-reviewer*passed*",
            "long*test-runner*cancelled*",
            "parex: passed: quick passed (gate any)",
        ]
    )
    assert checks_left(project.token) == []
