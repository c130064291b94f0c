"""The configuration files of the tools checks run, in one place: the zero-config gate reads
pytest's in pytest's own order (:mod:`pytest_parex.discovery`), and the result cache counts all
of them as inputs of every check that gives ``reads`` (:mod:`pytest_parex.cache.key`)."""

from __future__ import annotations

PYTEST_FILES = (
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
)
"""Where pytest looks for its settings, in its order (pytest 9: ``pytest.toml`` first)."""

TOOL_FILES = (
    *PYTEST_FILES,
    "ruff.toml",
    ".ruff.toml",
    "mypy.ini",
    ".mypy.ini",
    ".coveragerc",
    ".flake8",
    ".pylintrc",
    "pylintrc",
    ".isort.cfg",
    ".editorconfig",
    ".pre-commit-config.yaml",
    "noxfile.py",
    "setup.py",
    "requirements.txt",
    ".python-version",
)
"""Files that configure the tools checks run (or say which Python and packages they get): a
change to one may change any check's verdict."""

USER_FILES = (
    "~/.config/ruff/ruff.toml",
    "~/.config/ruff/pyproject.toml",
    "~/.config/mypy/config",
    "~/.mypy.ini",
    "~/.config/flake8",
    "~/.pylintrc",
    "~/.config/pylintrc",
)
"""Per-user configuration the tools fall back to when a project has none of its own."""
