"""pytest-parex: a quality gate that runs every configured check concurrently on pytest-xdist
workers grouped by agent type, with one summary and one honest exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_parex.config import Check, ConfigError, ParexConfig
    from pytest_parex.results import CheckResult, GateResult

__version__ = "0.1.0"

__all__ = ["Check", "CheckResult", "ConfigError", "GateResult", "ParexConfig", "__version__"]

# Every pytest run where the package is installed imports it through the pytest11 entry
# point (plugin.py), the tests checks' child pytest included: the public names load on first
# use, not with the package.
_LAZY = {
    "Check": "pytest_parex.config",
    "ConfigError": "pytest_parex.config",
    "ParexConfig": "pytest_parex.config",
    "CheckResult": "pytest_parex.results",
    "GateResult": "pytest_parex.results",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_parex' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
