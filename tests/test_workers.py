"""The gate's lean workers: their xdist specs, and that checks never see what made them lean."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import execnet
import pytest
from conftest import Project

from pytest_parex import workers

SHOW_ENV = """\
import json, os, sys
keys = ["PYTEST_ADDOPTS", "PYTEST_PAREX_WORKER_SAVED_ENV"]
with open(sys.argv[1], "w") as fh:
    json.dump({k: os.environ.get(k) for k in keys}, fh)
"""


@pytest.mark.parametrize("original", [None, "", "-x --tb=short", "-k 'a and b'"])
def test_specs_carry_lean_options_and_restore_the_original(original: str | None) -> None:
    env = {} if original is None else {"PYTEST_ADDOPTS": original}
    specs = workers.local_specs(3, env)
    assert len(specs) == 3 and len(set(specs)) == 1
    spec = execnet.XSpec(specs[0])
    assert spec.popen
    spec_env = {k: str(v) for k, v in spec.env.items()}
    assert spec_env["PYTEST_ADDOPTS"].endswith("--assert=plain -p no:unraisableexception")
    if original:
        assert spec_env["PYTEST_ADDOPTS"].startswith(original + " ")
    # What the worker finds in its environment, and what it leaves for the checks:
    worker_env = {**env, **spec_env}
    assert workers.restore_environ(worker_env)
    assert worker_env == env


def test_restore_is_a_no_op_outside_lean_workers() -> None:
    env = {"PYTEST_ADDOPTS": "-q"}
    assert not workers.restore_environ(env)
    assert env == {"PYTEST_ADDOPTS": "-q"}


def test_options_that_a_spec_cannot_carry_fall_back_to_plain_popen() -> None:
    assert workers.local_specs(2, {"PYTEST_ADDOPTS": "--rootdir=//srv/x"}) == ["popen"] * 2


@pytest.mark.parametrize("addopts", [None, "-p no:randomly"], ids=["unset", "set"])
def test_checks_inherit_the_users_pytest_addopts_not_the_workers(
    project: Project, monkeypatch: pytest.MonkeyPatch, addopts: str | None
) -> None:
    (project.path / "show_env.py").write_text(SHOW_ENV)
    project.write(
        {
            name: {"agent": agent, "run": [sys.executable, "show_env.py", f"{name}.json"]}
            for name, agent in (("a", "code-reviewer"), ("b", "test-runner"))
        }
    )
    if addopts is not None:
        monkeypatch.setenv("PYTEST_ADDOPTS", addopts)
    # -n 2: lean xdist workers; the checks must not see what made them lean.
    result = project.pytester.runpytest_subprocess("--parex", "-n", "2")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*2 xdist workers*"])
    for name in ("a", "b"):
        seen = json.loads((project.path / f"{name}.json").read_text())
        assert seen == {"PYTEST_ADDOPTS": addopts, "PYTEST_PAREX_WORKER_SAVED_ENV": None}


AGENTS = ["code-reviewer", "test-runner", "feature-implementer", "refactorer", "debugger"]


def test_local_agents_by_default_xdist_workers_when_asked(project: Project) -> None:
    """Short checks cost no worker start-up: the gate runs them on local agent slots; -n N
    asks for that many xdist workers, -n 0 for one check after another."""
    project.write(
        {f"c{i}": {"agent": AGENTS[i % 3], "run": project.rec(f"c{i}", 0)} for i in range(6)}
    )
    local = project.pytester.runpytest_subprocess("--parex")
    assert local.ret == 0, local.stdout.str()
    local.stdout.fnmatch_lines(["*; 3 local agents*"])
    local.assert_outcomes(passed=6)
    workers_run = project.pytester.runpytest_subprocess("--parex", "-n", "2")
    assert workers_run.ret == 0, workers_run.stdout.str()
    workers_run.stdout.fnmatch_lines(["*; 2 xdist workers*"])
    workers_run.assert_outcomes(passed=6)
    sequential = project.pytester.runpytest_subprocess("--parex", "-n", "0")
    sequential.stdout.fnmatch_lines(["*; one after another (-n 0)*"])
    planned = project.pytester.runpytest_subprocess("--parex", "--parex-plan")
    planned.stdout.fnmatch_lines(["workers: 3 (max-parallel 5)"])


RECORD_HYPOTHESIS = """\
import sys

def pytest_unconfigure(config):
    with open("hypothesis-imported", "w") as fh:
        fh.write(str("hypothesis" in sys.modules))
"""


def test_the_gate_does_not_import_hypothesis_for_its_summary(project: Project) -> None:
    pytest.importorskip("_hypothesis_pytestplugin")
    (project.path / "record_hypothesis.py").write_text(RECORD_HYPOTHESIS)
    project.write({"a": {"run": project.rec("a", 0)}})
    result = project.pytester.runpytest_subprocess(
        "-p", "record_hypothesis", "--parex", "-p", "no:xdist"
    )
    assert result.ret == 0, result.stdout.str()
    assert (project.path / "hypothesis-imported").read_text() == "False"


# ---------------------------------------------------------------------------- agents' health

REMOTE_USAGE_ERROR = """\
Traceback (most recent call last):
  File "<socket server>", line 1291, in executetask
  File "/venv/lib/python3.11/site-packages/_pytest/config/__init__.py", line 1370, in parse
pytest.UsageError: usage: pytest [options] [file_or_dir] [file_or_dir] [...]
pytest: error: unrecognized arguments: --parex --tx socket=127.0.0.1:4242
  inifile: None
  rootdir: /srv/elsewhere/pyexecnetcache
"""


def test_the_fingerprint_is_the_tables_not_its_order() -> None:
    one = {"checks": {"a": {"run": ["true"]}, "b": {"run": ["false"]}}, "gate": "any"}
    same = {"gate": "any", "checks": {"b": {"run": ["false"]}, "a": {"run": ["true"]}}}
    other = {"gate": "any", "checks": {"a": {"run": ["true"]}, "b": {"run": ["true"]}}}
    assert workers.fingerprint(one) == workers.fingerprint(same)
    assert workers.fingerprint(one) != workers.fingerprint(other)


def test_a_worker_refuses_another_gate_or_version() -> None:
    sent = {workers.GATE_KEY: "abc", workers.VERSION_KEY: "1.0"}
    assert workers.agent_mismatch(sent, "abc", "1.0", where="w", default=False) is None
    # From a controller that sends nothing to compare with: nothing to refuse.
    assert workers.agent_mismatch({}, "xyz", "0.9", where="w", default=True) is None
    assert workers.agent_mismatch(sent, "abc", "0.9", where="w", default=False) == (
        "parex agent: pytest-parex 0.9 there, 1.0 on the controller"
    )
    assert workers.agent_mismatch(sent, "xyz", "1.0", where="/x/pyproject.toml", default=True) == (
        "parex agent: no [tool.parex] in /x/pyproject.toml: not the project"
    )
    assert workers.agent_mismatch(sent, "xyz", "1.0", where="/y/p.toml", default=False) == (
        "parex agent: the [tool.parex] in /y/p.toml is not the controller's"
    )


def test_specs_are_shown_as_written() -> None:
    lean = workers.local_specs(1, {})[0]
    assert workers.spec_text(execnet.XSpec(f"execmodel=main_thread_only//{lean}")) == "popen"
    remote = execnet.XSpec("execmodel=main_thread_only//socket=10.0.0.7:8888//chdir=/srv/p")
    remote.chdir = "pyexecnetcache"  # what xdist sets on specs without one: not the user's
    assert workers.spec_text(remote) == "socket=10.0.0.7:8888//chdir=/srv/p"
    assert workers.spec_keys(remote) == {"socket": "10.0.0.7:8888", "chdir": "/srv/p"}
    assert workers.expand_specs(["3*popen", "socket=h:1", "x*y"]) == [
        "popen",
        "popen",
        "popen",
        "socket=h:1",
        "x*y",
    ]


@pytest.mark.parametrize(
    ("spec", "error", "line"),
    [
        (
            "socket=10.0.0.7:8888",
            "pytest.UsageError: parex agent: no [tool.parex] in /srv/x/pyproject.toml "
            "(rootdir /srv/x): not the project",
            "worker gw1 (socket=10.0.0.7:8888) could not start: no [tool.parex] in "
            "/srv/x/pyproject.toml (rootdir /srv/x): not the project; add "
            "//chdir=/path/to/the/project to its --tx spec (the project here: /proj; see "
            "README, Remote agents)",
        ),
        (
            "ssh=me@host//chdir=/srv/old",
            "Traceback ...\n_pytest.config.exceptions.UsageError: parex agent: the "
            "[tool.parex] in /srv/old/pyproject.toml (rootdir /srv/old) is not the "
            "controller's\n",
            "worker gw1 (ssh=me@host//chdir=/srv/old) could not start: the [tool.parex] in "
            "/srv/old/pyproject.toml (rootdir /srv/old) is not the controller's; point "
            "chdir=/srv/old at the project's directory there (here: /proj)",
        ),
        (
            "socket=h:1",
            "UsageError: parex agent: pytest-parex 0.0.1 there, 9.9 on the controller",
            "worker gw1 (socket=h:1) could not start: pytest-parex 0.0.1 there, 9.9 on the "
            "controller; install pytest-parex 9.9 there",
        ),
        (
            "socket=h:1",
            REMOTE_USAGE_ERROR,
            "worker gw1 (socket=h:1) could not start: its pytest does not know --parex; "
            "install pytest-parex 9.9 in the Python that runs it",
        ),
        (
            "popen//python=/opt/py/bin/python",
            "Traceback ...\nModuleNotFoundError: No module named 'pytest'\n",
            "worker gw1 (popen//python=/opt/py/bin/python) could not start: No module named "
            "'pytest'; install pytest-xdist and pytest-parex 9.9 in the Python that runs it",
        ),
        (
            "socket=h:1",
            "Not properly terminated\x1b[2J",
            "worker gw1 (socket=h:1) could not start: Not properly terminated\\x1b[2J; the "
            "project and pytest-parex must be there (see README, Remote agents)",
        ),
    ],
    ids=["no-project", "other-project", "version", "no-parex", "no-pytest", "unknown"],
)
def test_a_worker_that_could_not_start_gets_one_line(spec: str, error: str, line: str) -> None:
    xspec = execnet.XSpec(f"execmodel=main_thread_only//{spec}")
    got = workers.startup_problem("gw1", xspec, error, rootdir=Path("/proj"), version="9.9")
    assert got == line
    assert "\n" not in got


def test_a_worker_that_could_not_be_reached_gets_one_line() -> None:
    spec = execnet.XSpec("socket=10.0.0.7:8888")
    refused = ConnectionRefusedError(111, "Connection refused")
    assert workers.unreachable_problem("gw0", spec, refused) == (
        "worker gw0 (socket=10.0.0.7:8888) could not be started: ConnectionRefusedError: "
        "[Errno 111] Connection refused; start execnet's socket server there (see README, "
        "Remote agents)"
    )
    ssh = execnet.XSpec("ssh=me@host")
    assert workers.unreachable_problem("gw2", ssh, EOFError(), replacing=True) == (
        "worker gw2 (ssh=me@host) crashed and could not be started again: EOFError; check "
        "that the host is reachable and runs Python"
    )


def test_one_socket_server_per_worker() -> None:
    workers.check_specs(["socket=h:1", "socket=h:2//chdir=/p", "popen", "popen"])
    with pytest.raises(pytest.UsageError, match=r"^--tx: socket=h:1 is given for two workers;"):
        workers.check_specs(["socket=h:1//chdir=/a", "popen", "socket=h:1//chdir=/b"])
    with pytest.raises(pytest.UsageError, match="start one server"):
        workers.check_specs(workers.expand_specs(["2*socket=h:1"]))
