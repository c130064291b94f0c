"""Adopting a project's ``.pre-commit-config.yaml``: every hook becomes one check of the gate,
with pre-commit's semantics (which files each hook gets, how it runs, when it fails) and
the gate's proof of independence instead of pre-commit's one-after-another.

* :mod:`~pytest_parex.precommit.config` -- the YAML file, validated as pre-commit does, and
  the hooks it defines (merged with their manifests);
* :mod:`~pytest_parex.precommit.manifests` -- where a remote hook's manifest comes from
  (pre-commit's or prek's store, a built-in table of the most used repositories) and what
  runs it here;
* :mod:`~pytest_parex.precommit.files` -- the files of the work tree, classified as
  pre-commit classifies them (``identify``), and the changed files of ``--parex-changed``;
* :mod:`~pytest_parex.precommit.build` -- hooks -> checks: command, ``reads``/``writes``,
  the order that keeps pre-commit's verdicts and final tree, parts, the header's notes;
* :mod:`~pytest_parex.precommit.native` -- a standalone script: pygrep, ``language: fail``
  and the meta hooks, run natively.

PyYAML and identify (pre-commit's own dependencies) are the ``pytest-parex[pre-commit]``
extra: :func:`require` says so in one line when they are missing.
"""

from __future__ import annotations

from pytest_parex.config import ConfigError

CONFIG_FILE = ".pre-commit-config.yaml"
MISSING = (
    "reading {path} needs PyYAML and identify (pre-commit's own libraries): "
    "pip install 'pytest-parex[pre-commit]'"
)


def require(path: str) -> None:
    """Raise a one-line :class:`ConfigError` when the extra is not installed."""
    try:
        import identify.identify  # noqa: F401
        import yaml  # noqa: F401
    except ImportError:
        raise ConfigError(MISSING.format(path=path)) from None
