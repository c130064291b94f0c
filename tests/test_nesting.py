"""A gate nested in tox run-parallel, nox or an xdist worker caps its workers (pure part)."""

from __future__ import annotations

from pytest_parex import nesting


def test_nothing_detected_outside_other_runners() -> None:
    assert nesting.detect({}, 8) is None
    assert nesting.apply({"TOX_ENV_NAME": "py311"}, 8, 4, explicit=False) is None


def test_xdist_worker_caps_at_one() -> None:
    found = nesting.detect({"PYTEST_XDIST_WORKER": "gw3", "TOX_PARALLEL_ENV": "py"}, 8)
    assert found == nesting.Nesting("xdist worker gw3", 1)


def test_tox_and_nox_cap_at_half_the_cores() -> None:
    assert nesting.detect({"TOX_PARALLEL_ENV": "py311"}, 8) == nesting.Nesting(
        "tox run-parallel (TOX_PARALLEL_ENV=py311)", 4
    )
    assert nesting.detect({"NOX_CURRENT_SESSION": "tests"}, 3) == nesting.Nesting(
        "nox (NOX_CURRENT_SESSION=tests)", 1
    )
    assert nesting.detect({"NOX_CURRENT_SESSION": "x"}, None) is not None


def test_apply_caps_and_explains() -> None:
    capped = nesting.apply({"TOX_PARALLEL_ENV": "py311"}, 4, 5, explicit=False)
    assert capped is not None and capped.allowed == 2
    assert capped.note() == (
        "inside tox run-parallel (TOX_PARALLEL_ENV=py311): capped at 2 workers (of 5)"
    )
    under = nesting.apply({"TOX_PARALLEL_ENV": "py311"}, 16, 3, explicit=False)
    assert under is not None and under.allowed == 3
    one = nesting.apply({"PYTEST_XDIST_WORKER": "gw0"}, 16, 5, explicit=False)
    assert one is not None and one.note().endswith("capped at 1 worker (of 5)")


def test_an_explicit_worker_count_is_not_capped() -> None:
    capped = nesting.apply({"PYTEST_XDIST_WORKER": "gw0"}, 16, 5, explicit=True)
    assert capped is not None and capped.allowed == 5
    assert capped.note() == "inside xdist worker gw0; worker count set explicitly, not capped"
