"""A gate nested in tox run-parallel, nox or an xdist worker caps its workers (pure part)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_parex import workers


def test_nothing_detected_outside_other_runners() -> None:
    assert workers.detect({}, 8) is None
    assert workers.apply({"TOX_ENV_NAME": "py311"}, 8, 4, explicit=False) is None


def test_xdist_worker_caps_at_one() -> None:
    found = workers.detect({"PYTEST_XDIST_WORKER": "gw3", "TOX_PARALLEL_ENV": "py"}, 8)
    assert found == workers.Nesting("xdist worker gw3", 1)


def test_tox_and_nox_cap_at_half_the_cores() -> None:
    assert workers.detect({"TOX_PARALLEL_ENV": "py311"}, 8) == workers.Nesting(
        "tox run-parallel (TOX_PARALLEL_ENV=py311)", 4
    )
    assert workers.detect({"NOX_CURRENT_SESSION": "tests"}, 3) == workers.Nesting(
        "nox (NOX_CURRENT_SESSION=tests)", 1
    )
    assert workers.detect({"NOX_CURRENT_SESSION": "x"}, None) is not None


def test_apply_caps_and_explains() -> None:
    capped = workers.apply({"TOX_PARALLEL_ENV": "py311"}, 4, 5, explicit=False)
    assert capped is not None and capped.allowed == 2
    assert capped.note() == (
        "inside tox run-parallel (TOX_PARALLEL_ENV=py311): capped at 2 workers (of 5)"
    )
    under = workers.apply({"TOX_PARALLEL_ENV": "py311"}, 16, 3, explicit=False)
    assert under is not None and under.allowed == 3
    one = workers.apply({"PYTEST_XDIST_WORKER": "gw0"}, 16, 5, explicit=False)
    assert one is not None and one.note().endswith("capped at 1 worker (of 5)")


def test_an_explicit_worker_count_is_not_capped() -> None:
    capped = workers.apply({"PYTEST_XDIST_WORKER": "gw0"}, 16, 5, explicit=True)
    assert capped is not None and capped.allowed == 5
    assert capped.note() == "inside xdist worker gw0; worker count set explicitly, not capped"


@pytest.mark.parametrize(
    ("argv", "parallel"),
    [
        (["/usr/bin/python3", "/venv/bin/tox", "p", "-e", "py311,gate"], True),
        (["/venv/bin/tox", "run-parallel"], True),
        (["python", "-m", "tox", "-e", "gate", "-p", "auto"], True),
        (["/venv/bin/tox", "--parallel=4"], True),
        (["/venv/bin/tox", "-e", "gate"], False),
        (["/venv/bin/tox", "run", "-e", "gate", "--", "-p", "no:cacheprovider"], False),
        (["/venv/bin/tox", "-e", "gate", "--", "p"], False),
        (["/usr/bin/bash", "-c", "tox p"], False),
        (["/venv/bin/pytest", "-p", "xdist"], False),
        ([], False),
    ],
)
def test_tox_run_parallel_from_its_command_line(argv: list[str], parallel: bool) -> None:
    assert workers.tox_parallel(argv) is parallel


def test_tox_4_is_found_through_the_parent_processes() -> None:
    # tox 4 sets TOX_ENV_NAME but no longer TOX_PARALLEL_ENV.
    env = {"TOX_ENV_NAME": "gate"}
    parents = [["/bin/sh"], ["/usr/bin/python3", "/venv/bin/tox", "p"]]
    assert workers.detect(env, 4, iter(parents)) == workers.Nesting(
        "tox run-parallel (env gate)", 2
    )
    assert workers.detect(env, 4, iter([["/venv/bin/tox", "-e", "gate"]])) is None
    assert workers.detect({}, 4, iter(parents)) is None  # not inside a tox environment


def test_ancestors_reads_this_process_tree() -> None:
    me = Path("/proc/self/cmdline")
    if not me.exists():
        pytest.skip("no /proc: parent processes are not read on this system")
    code = "from pytest_parex import workers; print(repr(next(workers.ancestors(1))))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    mine = [a for a in me.read_bytes().decode().split("\0") if a]
    assert out.strip() == repr(mine)
