"""The gate's lean workers: their xdist specs, and that checks never see what made them lean."""

from __future__ import annotations

import json
import sys

import execnet
import pytest
from conftest import Project

from pytest_parex import workers
from pytest_parex.config import ParexConfig, parse

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


def _config(checks: dict[str, dict[str, object]], **top: object) -> ParexConfig:
    return parse({"checks": checks, **top}, "pyproject.toml")


AGENTS = ["code-reviewer", "test-runner", "feature-implementer", "refactorer", "debugger"]


def test_short_checks_run_in_process_long_ones_get_a_worker_each() -> None:
    short = _config({f"c{i}": {"agent": AGENTS[i % 5], "run": "true"} for i in range(200)})
    fast = {f"c{i}": 0.005 for i in range(200)}
    assert workers.worker_count(short, fast, 5, start_cost=0.5, cores=2) == 1
    long = _config({f"c{i}": {"agent": a, "run": "true"} for i, a in enumerate(AGENTS)})
    slow = {f"c{i}": 2.0 for i in range(5)}
    assert workers.worker_count(long, slow, 5, start_cost=0.5, cores=2) == 5


def test_worker_count_needs_data_for_every_check() -> None:
    config = _config(
        {
            "a": {"agent": "code-reviewer", "run": "true"},
            "b": {"agent": "test-runner", "run": "true", "expected": 0.01},
        }
    )
    # b's expected key counts as data; a has none: one worker per instance, as before.
    assert workers.worker_count(config, {}, 2, start_cost=0.5, cores=2) == 2
    assert workers.worker_count(config, {"a": 0.01}, 2, start_cost=0.5, cores=2) == 1


def test_fewer_workers_only_when_clearly_faster() -> None:
    config = _config({f"c{i}": {"agent": a, "run": "true"} for i, a in enumerate(AGENTS[:2])})
    # One after another 2.0 s; two workers 1.0 s + 2 x 0.45 / 2: within 80%, keep both.
    assert workers.worker_count(config, {"c0": 1.0, "c1": 1.0}, 2, start_cost=0.45, cores=2) == 2
    assert workers.worker_count(config, {"c0": 0.2, "c1": 0.2}, 2, start_cost=0.45, cores=2) == 1


def test_a_second_run_of_short_checks_starts_no_worker(project: Project) -> None:
    project.write(
        {f"c{i}": {"agent": AGENTS[i % 3], "run": project.rec(f"c{i}", 0)} for i in range(6)}
    )
    first = project.pytester.runpytest_subprocess("--parex")
    assert first.ret == 0, first.stdout.str()
    first.stdout.fnmatch_lines(["*; 3 xdist workers"])
    second = project.pytester.runpytest_subprocess("--parex")
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines(
        [
            "*; one after another (no xdist workers: "
            "the checks are shorter than starting workers would take)"
        ]
    )
    second.assert_outcomes(passed=6)
    # The plan says what a run does.
    planned = project.pytester.runpytest_subprocess("--parex", "--parex-plan")
    planned.stdout.fnmatch_lines(["workers: 1 (max-parallel 5)"])
    # Without the cache there is no data: a worker per instance again.
    third = project.pytester.runpytest_subprocess("--parex", "-p", "no:cacheprovider")
    third.stdout.fnmatch_lines(["*; 3 xdist workers"])


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
