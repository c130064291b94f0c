"""Check kinds: each module holds one kind's keys, defaults, command and verdict
(:class:`~pytest_parex.kinds.base.Kind`); this registry is how the rest of the gate finds them.
A new kind is one new module here and one line in :data:`_KINDS`.

* ``command`` -- any command; exit code 0 passes.
* ``review`` -- a linter or type checker; its issues are parsed into a count and a list.
* ``tests`` -- a child ``python -m pytest``, optionally split into shards.
* ``benchmarks`` -- pytest-benchmark in a child pytest, compared with a baseline.
* ``leaks`` -- the child pytest re-runs every test under tracemalloc.
* ``pre-commit`` -- one hook of ``.pre-commit-config.yaml`` (:mod:`pytest_parex.precommit`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pytest_parex.kinds import benchmarks, command, leaks, precommit, review, tests
from pytest_parex.kinds.base import Kind

_KINDS: Mapping[str, Kind] = {
    kind.name: kind
    for kind in (
        command.KIND,
        tests.KIND,
        review.KIND,
        benchmarks.KIND,
        leaks.KIND,
        precommit.KIND,
    )
}


def get(name: str) -> Kind:
    """The kind called ``name`` (a validated config only names known kinds)."""
    return _KINDS[name]


def names() -> tuple[str, ...]:
    return tuple(_KINDS)


def all_kinds() -> tuple[Kind, ...]:
    return tuple(_KINDS.values())


def key_owners() -> dict[str, str]:
    """Every kind-specific key -> the kind that accepts it."""
    return {key.name: kind.name for kind in _KINDS.values() for key in kind.keys}


def default_name(has_pytest: bool) -> str:
    """The kind of a check that names none: a ``pytest = [...]`` table runs tests."""
    return tests.KIND.name if has_pytest else command.KIND.name
