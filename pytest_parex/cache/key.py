"""The key of a check's result (pure: no pytest): :class:`KeyParts`, everything that decides
its verdict, in parts (so a miss can say which part changed); :meth:`KeyParts.digest` is the
key. Environment variables are kept as digests of their values (:func:`env_values`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

DEFAULT_ENV = (
    "PATH",
    "VIRTUAL_ENV",
    "PYTHON*",
    "PYTEST_*",
    "LANG",
    "LC_*",
    "TZ",
    "CI",
    "RUFF_*",
    "MYPY*",
)
"""A suggested list of environment variables a check's verdict may depend on (``NAME`` or
``PREFIX*``), for :func:`env_values`."""

ENV_IGNORED = ("PYTEST_CURRENT_TEST", "PYTEST_VERSION", "PYTEST_XDIST_*", "PYTEST_PAREX_*")
"""Variables :func:`env_values` leaves out even when a wildcard names them: pytest and the gate
set them per process or per test, or they steer the gate, not the check."""


# ------------------------------------------------------------------------------ key parts


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data, equal text."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


@dataclass(frozen=True)
class KeyParts:
    """Everything that decides a check's verdict, in parts.

    The mappings are copied on construction and read-only afterwards; ``definition`` must be
    JSON data (it is normalised through JSON, so a tuple and a list are the same definition).
    """

    definition: Mapping[str, Any]
    """What the check does: kind, command, cwd, env, kind options... (the gate decides)."""
    files: Mapping[str, str] = field(default_factory=dict)
    """Its inputs: ``{relative posix path: digest}`` from :meth:`FileIndex.digests`."""
    tools: Mapping[str, str] = field(default_factory=dict)
    """``{label: identity}`` of the programs it starts (:func:`executable_identity`)."""
    versions: Mapping[str, str] = field(default_factory=dict)
    """``{distribution: version}`` it imports (:func:`installed_distributions`)."""
    python: str = ""
    """:func:`python_identity` when it runs Python."""
    env: Mapping[str, str | None] = field(default_factory=dict)
    """``{NAME: value digest, or None when unset}`` (:func:`env_values`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "definition", _frozen(json.loads(canonical_json(self.definition))))
        for name in ("files", "tools", "versions", "env"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "definition": _thawed(self.definition),
            "files": dict(self.files),
            "tools": dict(self.tools),
            "versions": dict(self.versions),
            "python": self.python,
            "env": dict(self.env),
        }

    @classmethod
    def from_dict(cls, data: object) -> KeyParts:
        """Parts read back from JSON; ValueError when they do not have the expected shape."""
        if not isinstance(data, dict) or set(data) != _PART_NAMES:
            raise ValueError("not key parts")
        if not isinstance(data["definition"], dict) or not isinstance(data["python"], str):
            raise ValueError("bad definition or python")
        for name in ("files", "tools", "versions"):
            if not _str_map(data[name]):
                raise ValueError(f"bad {name}")
        env = data["env"]
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in env.items()
        ):
            raise ValueError("bad env")
        return cls(**data)

    def digest(self) -> str:
        """sha256 of the canonical JSON of all parts: the cache key."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        # cached_property writes the instance __dict__ directly, which a frozen dataclass
        # allows: the parts cannot change, and 5,000 files take milliseconds to encode.
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()


_PART_NAMES = frozenset({"definition", "files", "tools", "versions", "python", "env"})


def _str_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


def env_values(
    names: Iterable[str],
    environ: Mapping[str, str],
    *,
    ignored: Iterable[str] = ENV_IGNORED,
) -> dict[str, str | None]:
    """``{NAME: digest of its value, or None when unset}`` for each name; ``PREFIX*`` takes
    every set variable that starts with ``PREFIX``. Values are stored as digests, not text: a
    token a check reads must not end up in a cache that CI uploads."""
    skip = list(ignored)

    def wanted(name: str) -> bool:
        return not any(_name_matches(p, name) for p in skip)

    out: dict[str, str | None] = {}
    for pattern in names:
        if pattern.endswith("*"):
            for name, value in environ.items():
                if name.startswith(pattern[:-1]) and wanted(name):
                    out[name] = _value_digest(value)
        elif wanted(pattern):
            found = environ.get(pattern)
            out[pattern] = None if found is None else _value_digest(found)
    return dict(sorted(out.items()))


def _name_matches(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def _value_digest(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:32]
