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
    result = project.pytester.runpytest_subprocess("--parex")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*2 xdist workers*"])
    for name in ("a", "b"):
        seen = json.loads((project.path / f"{name}.json").read_text())
        assert seen == {"PYTEST_ADDOPTS": addopts, "PYTEST_PAREX_WORKER_SAVED_ENV": None}
