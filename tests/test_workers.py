"""The gate's lean workers: their xdist specs, and that checks never see what made them lean."""

from __future__ import annotations

import json
import sys

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
    (project.path / "conftest.py").write_text(RECORD_HYPOTHESIS)
    project.write({"a": {"run": project.rec("a", 0)}})
    result = project.pytester.runpytest_subprocess("--parex", "-p", "no:xdist")
    assert result.ret == 0, result.stdout.str()
    assert (project.path / "hypothesis-imported").read_text() == "False"
