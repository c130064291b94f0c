"""pytest-parex: a quality gate that runs every configured check concurrently on pytest-xdist
workers grouped by agent type, with one summary and one honest exit code."""

from __future__ import annotations

from pytest_parex.config import Check, ConfigError, ParexConfig
from pytest_parex.results import CheckResult, GateResult

__version__ = "0.1.0"

__all__ = ["Check", "CheckResult", "ConfigError", "GateResult", "ParexConfig", "__version__"]
