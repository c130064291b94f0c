"""Why a check runs (pure: no pytest): one short reason from two sets of key parts --
"src/a.py changed", "ruff 0.8.1 → 0.8.2", "last run failed"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from pytest_parex.cache.digests import is_unreadable
from pytest_parex.cache.key import KeyParts

NOT_PASSED = MappingProxyType(
    {
        "failed": "last run failed",
        "flaky": "last run was flaky",
        "timeout": "last run timed out",
        "error": "last run had an error",
    }
)
"""Statuses that remove a check's replayable pass, with the reason the next run gives."""


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\n``, ``\\x1b``...): a path or
    a value is data, and must not move the cursor or colour a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _some(names: Sequence[str], shown: int = 2) -> str:
    """``a, b, +3 more``."""
    head = ", ".join(printable(n) for n in names[:shown])
    return head if len(names) <= shown else f"{head}, +{len(names) - shown} more"


def _changed_keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k, _MISSING) != b.get(k, _MISSING))


_MISSING = object()


def explain(previous: KeyParts | None, current: KeyParts, *, last_status: str | None) -> str:
    """One short reason why a check runs, or "unchanged" when nothing differs.

    The most decisive difference first: a last run that did not pass, no pass on record, the
    check's definition, the Python, installed distributions (versions, then contents), tools,
    environment variables, then files. Deterministic; names and paths are escaped
    (:func:`printable`).
    """
    if last_status is not None:
        return NOT_PASSED.get(last_status, f"last run was {printable(last_status)}")
    if previous is None:
        return "no earlier pass"
    keys = _changed_keys(previous.definition, current.definition)
    if keys:
        return f"{_some(keys, 3)} changed"
    if previous.python != current.python:
        old, new = _python_version(previous.python), _python_version(current.python)
        return f"python {old} → {new}" if old != new else "python executable changed"
    versions = _changed_keys(previous.versions, current.versions)
    if versions:
        first = versions[0]
        old_v, new_v = previous.versions.get(first), current.versions.get(first)
        if old_v is None:
            what = f"{printable(first)} {printable(str(new_v))} installed"
        elif new_v is None:
            what = f"{printable(first)} {printable(old_v)} uninstalled"
        else:
            what = f"{printable(first)} {printable(old_v)} → {printable(new_v)}"
        return what if len(versions) == 1 else f"{what}, +{len(versions) - 1} more"
    installed = _changed_keys(previous.installed, current.installed)
    if installed:
        what = f"{printable(installed[0])} reinstalled with other files"
        return what if len(installed) == 1 else f"{what}, +{len(installed) - 1} more"
    tools = _changed_keys(previous.tools, current.tools)
    if tools:
        noun = "executable" if len(tools) == 1 else "executables"
        return f"{_some(tools, 3)} {noun} changed"
    env = _changed_keys(previous.env, current.env)
    if env:
        if len(env) <= 2:
            return f"{_some(env)} changed"
        return f"{len(env)} environment variables changed: {_some(env)}"
    files = _changed_keys(previous.files, current.files)
    if len(files) == 1:
        path = files[0]
        if path not in previous.files:
            return f"{printable(path)} added"
        if path not in current.files:
            return f"{printable(path)} removed"
        if is_unreadable(current.files[path]):
            return f"{printable(path)} unreadable"
        return f"{printable(path)} changed"
    if files:
        return f"{len(files)} files changed: {_some(files)}"
    return "unchanged"


def _python_version(identity: str) -> str:
    parts = identity.split(" ", 2)
    return printable(parts[1] if len(parts) > 1 else identity)
