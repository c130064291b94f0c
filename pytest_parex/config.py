"""``[tool.parex]`` -> frozen dataclasses.

All validation of the user's configuration lives here and in the kinds' key tables
(:mod:`pytest_parex.kinds`), and nothing here needs a pytest session: errors are
:class:`ConfigError` (a ``ValueError``) with one line naming the file, the key path, the bad
value and what was expected; the plugin turns them into ``pytest.UsageError``.

The keys of a check are a table (:data:`COMMON_KEYS` here, ``Kind.keys`` for the keys only one
kind accepts): each names its validator and the :class:`Check` field it sets.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_parex import graph, kinds
from pytest_parex.cache.listing import compile_pattern
from pytest_parex.kinds.base import Key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

DEFAULT_AGENTS: Mapping[str, int] = {
    "code-reviewer": 1,
    "test-runner": 1,
    "feature-implementer": 1,
    "refactorer": 1,
    "debugger": 1,
}
DEFAULT_AGENT = "code-reviewer"
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_PARALLEL = 5
DEFAULT_LOG_DIR = ".parex/logs"
DEFAULT_CACHE_SIZE = 512 * 1024**2
"""Bytes the result cache's store may hold (``cache-size``): a few hundred states of a
mid-sized project, small beside a laptop's disk."""
DEFAULT_CACHE_MAX_AGE = 30 * 86400.0
"""Seconds an entry of the store is kept unused (``cache-max-age``)."""
ON_FAILURE = ("best-effort", "fail-fast")

# A check name ends up in a pytest node id, a log file name and a terminal line: keep it tame.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_AGENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

GLOBAL_KEYS = (
    "timeout",
    "max-parallel",
    "agents",
    "gate",
    "on-failure",
    "retries",
    "log-dir",
    "annotations",
    "cache-dir",
    "cache-size",
    "cache-max-age",
    "checks",
    "pre-commit",
    "pre-commit-skip",
)
COMMAND_KEYS = ("agent", "run", "pytest", "shell", "kind")
"""Keys that decide what a check is; validated together, not through the table."""


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class ConfigError(ValueError):
    """A mistake in the user's configuration; ``str()`` is the one-line message."""


@dataclass(frozen=True)
class AnnotationLimits:
    """How many GitHub Actions annotations the gate emits at most: per step and level, and in
    the whole job (every step's together). The defaults are GitHub's own limits: it shows no
    more, and which ones it drops is an accident of order."""

    errors: int = 10
    warnings: int = 10
    notices: int = 10
    job: int = 50


ANNOTATION_KEYS = ("errors", "warnings", "notices", "job")


def annotation_spec(text: str) -> dict[str, int]:
    """``errors=5,warnings=5,job=20`` (any of :data:`ANNOTATION_KEYS`) or ``off`` -> the
    limits it sets; ``ValueError`` with what was expected."""
    text = text.strip()
    if text.lower() in ("off", "none", "0"):
        return dict.fromkeys(ANNOTATION_KEYS, 0)
    out: dict[str, int] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        key = key.strip()
        if not sep or key not in ANNOTATION_KEYS or not value.strip().isdigit():
            raise ValueError(
                f"expected KEY=N pairs ({', '.join(ANNOTATION_KEYS)}) or off, got {text!r}"
            )
        out[key] = int(value)
    return out


@dataclass(frozen=True)
class Check:
    """One configured check: what to run, where, and how it relates to the others."""

    name: str
    agent: str
    argv: tuple[str, ...]
    """The command; for ``pytest`` checks, the arguments after ``python -m pytest``."""
    kind: str = "command"
    shell: bool = False
    timeout: float = DEFAULT_TIMEOUT
    cwd: str = "."
    env: tuple[tuple[str, str], ...] = ()
    description: str = ""
    needs: tuple[str, ...] = ()
    """Checks this one starts after; it runs only if they passed -- except those in ``after``."""
    after: tuple[str, ...] = ()
    """The names in ``needs`` that only order: this check starts once they have finished,
    whatever their verdict (a pre-commit hook after a fixer of its files)."""
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    exclusive: bool = False
    blocking: bool = True
    retries: int = 0
    expected: float | None = None
    shard: tuple[int, int] | None = None
    """A check split into shards (``shards = N`` on a tests check): (this shard, N), from 1."""
    options: tuple[tuple[str, Any], ...] = ()
    """The keys only its kind accepts, validated (sorted by key): see ``Kind.keys``."""
    reads_env: tuple[str, ...] = ()
    """Environment variables (``NAME`` or ``PREFIX*``) its verdict depends on, beyond the
    ones every check's cache key holds."""
    cache: bool = True
    """Whether a pass may be replayed when nothing it depends on changed."""

    def option(self, key: str, default: Any = None) -> Any:
        for name, value in self.options:
            if name == key:
                return value
        return default

    @property
    def runs_pytest(self) -> bool:
        """Whether the command is a child ``python -m pytest`` (argv holds its arguments)."""
        return kinds.get(self.kind).runs_pytest

    @property
    def base_name(self) -> str:
        """The configured name: ``tests`` for the shard ``tests[2/3]``."""
        return self.name.split("[", 1)[0]

    @property
    def file_name(self) -> str:
        """A name safe in a file name (shards have a '/' in theirs)."""
        if self.shard is None:
            return self.name
        return f"{self.base_name}.shard-{self.shard[0]}-of-{self.shard[1]}"


@dataclass(frozen=True)
class ParexConfig:
    """The whole ``[tool.parex]`` table, validated."""

    source: str
    """Where it came from (a path, or a short phrase for the default)."""
    checks: tuple[Check, ...]
    agents: tuple[tuple[str, int], ...] = tuple(DEFAULT_AGENTS.items())
    timeout: float = DEFAULT_TIMEOUT
    max_parallel: int = DEFAULT_MAX_PARALLEL
    gate: str | int = "all"
    on_failure: str = "best-effort"
    retries: int = 0
    log_dir: str = DEFAULT_LOG_DIR
    annotations: AnnotationLimits = AnnotationLimits()
    cache_dir: str = ""
    """Where the result cache's store is (``cache-dir``, relative to the rootdir); "" for
    pytest's cache directory."""
    cache_size: int = DEFAULT_CACHE_SIZE
    """Bytes the store may hold; least recently used entries go first."""
    cache_max_age: float = DEFAULT_CACHE_MAX_AGE
    """Seconds an entry may stay unused before it goes."""
    notes: tuple[str, ...] = field(default=())
    """Things said about how the config was built (shown in the header)."""
    pre_commit: str = ""
    """``pre-commit = true`` (or a path): the pre-commit config whose hooks are checks too;
    empty: none (see :mod:`pytest_parex.precommit`)."""
    pre_commit_skip: tuple[str, ...] = ()
    """Hook ids (or aliases) left out."""

    @property
    def agent_instances(self) -> dict[str, int]:
        return dict(self.agents)

    @functools.cached_property
    def _by_name(self) -> dict[str, Check]:
        return {c.name: c for c in self.checks}

    def check(self, name: str) -> Check:
        """The check called ``name`` (KeyError when there is none)."""
        return self._by_name[name]


# --------------------------------------------------------------------------------------------
# loading


def read_document(path: Path) -> dict[str, Any]:
    """The whole TOML document at ``path``; :class:`ConfigError` when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not valid UTF-8") from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return data


def load_pyproject(path: Path) -> dict[str, Any] | None:
    """Return the ``[tool.parex]`` table of ``path`` (None when the file has none)."""
    data = read_document(path)
    tool = data.get("tool")
    if not isinstance(tool, dict):
        return None
    table = tool.get("parex")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.parex] must be a table, got {show(table)}")
    return table


def load(path: Path) -> ParexConfig | None:
    """Read and validate ``[tool.parex]`` from ``path``; None when the file has no such table."""
    table = load_pyproject(path)
    if table is None:
        return None
    return parse(table, str(path))


# --------------------------------------------------------------------------------------------
# validation


def show(value: object) -> str:
    """A value as the user wrote it, kept short and on one line."""
    if isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, list):
        text = (
            "[" + ", ".join(show(v) for v in value[:5]) + (", ..." if len(value) > 5 else "") + "]"
        )
    else:
        text = repr(value)
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= 80 else text[:77] + "..."


class Validator:
    """Checks values of one config source; every mistake becomes a :class:`ConfigError` that
    names the source, the table (``where``), the key, the value and what was expected."""

    show = staticmethod(show)

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: [{where}] {message}")

    def unknown_keys(self, where: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                hint = ", ".join(allowed)
                raise self.error(where, f"unknown key {show(key)}; expected one of: {hint}")

    def number(self, where: str, key: str, value: object, *, positive: bool = True) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(where, f"{key} must be a positive number, got {show(value)}")
        # not value > 0 also refuses nan; inf would break every sum and display of seconds.
        if (positive and not value > 0) or value == float("inf"):
            raise self.error(where, f"{key} must be a positive number, got {show(value)}")
        return float(value)

    def integer(self, where: str, key: str, value: object, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.error(where, f"{key} must be {what}, got {show(value)}")
        return value

    def boolean(self, where: str, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.error(where, f"{key} must be true or false, got {show(value)}")
        return value

    def string(self, where: str, key: str, value: object, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value.strip()):
            what = "a string" if empty else "a non-empty string"
            raise self.error(where, f"{key} must be {what}, got {show(value)}")
        if "\x00" in value:
            raise self.error(where, f"{key} must not contain NUL characters, got {show(value)}")
        return value

    def string_list(self, where: str, key: str, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(
            isinstance(v, str) and v and "\x00" not in v for v in value
        ):
            raise self.error(where, f"{key} must be a list of non-empty strings, got {show(value)}")
        return tuple(value)

    def env_table(self, where: str, key: str, value: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            raise self.error(where, f'{key} must be a table of NAME = "value", got {show(value)}')
        pairs = []
        for name in sorted(value):
            text = value[name]
            if not name or "=" in name or "\x00" in name:
                raise self.error(f"{where}.{key}", f"{show(name)} is not a valid variable name")
            if not isinstance(text, str) or "\x00" in text:
                raise self.error(
                    f"{where}.{key}", f"{show(name)} must be a string, got {show(text)}"
                )
            pairs.append((name, text))
        return tuple(pairs)


def _number(v: Validator, where: str, key: str, value: object) -> float:
    return v.number(where, key, value)


def _retries(v: Validator, where: str, key: str, value: object) -> int:
    return v.integer(where, key, value, minimum=0)


def _string(v: Validator, where: str, key: str, value: object) -> str:
    return v.string(where, key, value)


def _text(v: Validator, where: str, key: str, value: object) -> str:
    return v.string(where, key, value, empty=True)


def _unique_list(v: Validator, where: str, key: str, value: object) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.string_list(where, key, value)))


def _globs(v: Validator, where: str, key: str, value: object) -> tuple[str, ...]:
    patterns = v.string_list(where, key, value)
    for pattern in patterns:
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            raise v.error(where, f"{key}: {exc}") from None
    return patterns


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\*?$")


def _env_names(v: Validator, where: str, key: str, value: object) -> tuple[str, ...]:
    names = v.string_list(where, key, value)
    for name in names:
        if not _ENV_NAME.fullmatch(name):
            raise v.error(
                where,
                f"{key} must list variable names (NAME or PREFIX*), got {show(name)}",
            )
    return tuple(dict.fromkeys(names))


COMMON_KEYS: tuple[Key, ...] = (
    Key("timeout", _number, "timeout"),
    Key("cwd", _string, "cwd"),
    Key("env", Validator.env_table, "env"),
    Key("description", _text, "description"),
    Key("needs", _unique_list, "needs"),
    Key("after", _unique_list, "after"),
    Key("reads", _globs, "reads"),
    Key("writes", Validator.string_list, "writes"),
    Key("exclusive", Validator.boolean, "exclusive"),
    Key("blocking", Validator.boolean, "blocking"),
    Key("retries", _retries, "retries"),
    Key("expected", _number, "expected"),
    Key("reads-env", _env_names, "reads_env"),
    Key("cache", Validator.boolean, "cache"),
)
"""The keys every kind accepts, in the order they are validated."""


def check_keys() -> tuple[str, ...]:
    """Every key a check table may have (the kinds' own keys last)."""
    own = tuple(key.name for kind in kinds.all_kinds() for key in kind.keys)
    return (*COMMAND_KEYS, *(key.name for key in COMMON_KEYS), *dict.fromkeys(own))


def parse(table: Mapping[str, Any], source: str) -> ParexConfig:
    """Validate a ``[tool.parex]`` table (already decoded from TOML)."""
    v = Validator(source)
    where = "tool.parex"
    v.unknown_keys(where, table, GLOBAL_KEYS)

    timeout = DEFAULT_TIMEOUT
    if "timeout" in table:
        timeout = v.number(where, "timeout", table["timeout"])
    max_parallel = DEFAULT_MAX_PARALLEL
    if "max-parallel" in table:
        max_parallel = v.integer(where, "max-parallel", table["max-parallel"], minimum=1)
    retries = 0
    if "retries" in table:
        retries = v.integer(where, "retries", table["retries"], minimum=0)
    on_failure = "best-effort"
    if "on-failure" in table:
        on_failure = v.string(where, "on-failure", table["on-failure"])
        if on_failure not in ON_FAILURE:
            raise v.error(
                where, f'on-failure must be "best-effort" or "fail-fast", got {show(on_failure)}'
            )
    log_dir = DEFAULT_LOG_DIR
    if "log-dir" in table:
        log_dir = v.string(where, "log-dir", table["log-dir"])
    annotations = AnnotationLimits()
    if "annotations" in table:
        annotations = _annotation_limits(v, where, table["annotations"])
    cache_dir = ""
    if "cache-dir" in table:
        cache_dir = v.string(where, "cache-dir", table["cache-dir"])
    cache_size = DEFAULT_CACHE_SIZE
    if "cache-size" in table:
        cache_size = _cache_size(v, where, table["cache-size"])
    cache_max_age = DEFAULT_CACHE_MAX_AGE
    if "cache-max-age" in table:
        cache_max_age = _cache_max_age(v, where, table["cache-max-age"])

    pre_commit = ""
    if "pre-commit" in table:
        raw_pc = table["pre-commit"]
        if isinstance(raw_pc, bool):
            pre_commit = ".pre-commit-config.yaml" if raw_pc else ""
        elif isinstance(raw_pc, str) and raw_pc.strip() and "\x00" not in raw_pc:
            pre_commit = raw_pc
        else:
            raise v.error(
                where,
                "pre-commit must be true, false or the path of a pre-commit config, "
                f"got {show(raw_pc)}",
            )
    pre_commit_skip: tuple[str, ...] = ()
    if "pre-commit-skip" in table:
        pre_commit_skip = v.string_list(where, "pre-commit-skip", table["pre-commit-skip"])

    agents = dict(DEFAULT_AGENTS)
    if "agents" in table:
        raw_agents = table["agents"]
        if not isinstance(raw_agents, dict):
            raise v.error(
                where, f"agents must be a table of agent type = instances, got {show(raw_agents)}"
            )
        for agent, count in raw_agents.items():
            if not _AGENT_RE.fullmatch(agent):
                raise v.error(
                    f"{where}.agents",
                    f"agent type {show(agent)} must be letters, digits, '-', '_' or '.'",
                )
            agents[agent] = v.integer(f"{where}.agents", agent, count, minimum=1)

    raw_checks = table.get("checks", {})
    if not isinstance(raw_checks, dict):
        raise v.error(where, f"checks must be a table of named checks, got {show(raw_checks)}")
    hooks = bool(pre_commit) or any(
        isinstance(t, dict) and t.get("kind") == "pre-commit" for t in raw_checks.values()
    )
    if hooks and "pre-commit" not in agents:
        # Hooks run side by side where proven independent: as many at once as cores.
        agents["pre-commit"] = max(1, min(max_parallel, available_cores()))
    checks: list[Check] = []
    expanded: dict[str, list[str]] = {}
    lowered: dict[str, str] = {}
    allowed = check_keys()
    for name in sorted(raw_checks):
        # TOML already refuses a key defined twice; names that differ only in case would still
        # collide in log file names on case-insensitive file systems and confuse `-k`.
        if name.lower() in lowered:
            raise v.error(
                f"{where}.checks",
                f"duplicate check name {show(name)} (same as {show(lowered[name.lower()])} "
                "ignoring case)",
            )
        lowered[name.lower()] = name
        made = _parse_check(
            v, name, raw_checks[name], agents, allowed, timeout=timeout, retries=retries
        )
        if [c.name for c in made] != [name]:
            expanded[name] = [c.name for c in made]
        checks.extend(made)
    checks = _expand_needs(checks, expanded)

    gate: str | int = "all"
    if "gate" in table:
        raw_gate = table["gate"]
        if isinstance(raw_gate, bool) or not isinstance(raw_gate, (str, int)):
            raise v.error(
                where, f'gate must be "all", "any" or a number of checks, got {show(raw_gate)}'
            )
        if isinstance(raw_gate, str):
            if raw_gate not in ("all", "any"):
                raise v.error(
                    where, f'gate must be "all", "any" or a number of checks, got {show(raw_gate)}'
                )
            gate = raw_gate
        else:
            if not 1 <= raw_gate <= max(len(checks), 1):
                raise v.error(
                    where,
                    f"gate must be between 1 and the number of checks ({len(checks)}), "
                    f"got {raw_gate}",
                )
            gate = raw_gate

    config = ParexConfig(
        source=source,
        checks=tuple(checks),
        agents=tuple(sorted(agents.items())),
        timeout=timeout,
        max_parallel=max_parallel,
        gate=gate,
        on_failure=on_failure,
        retries=retries,
        log_dir=log_dir,
        annotations=annotations,
        pre_commit=pre_commit,
        pre_commit_skip=pre_commit_skip,
        cache_dir=cache_dir,
        cache_size=cache_size,
        cache_max_age=cache_max_age,
    )
    _validate_needs(v, config)
    return config


def _cache_size(v: Validator, where: str, raw: object) -> int:
    """``cache-size``: bytes (an integer) or a size with a unit ("512 MiB", "2 GB")."""
    from argparse import ArgumentTypeError

    from pytest_parex.child.leaks import parse_size

    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    if isinstance(raw, str):
        try:
            size = parse_size(raw)
        except ArgumentTypeError:
            size = 0
        if size > 0:
            return size
    raise v.error(
        where, f'cache-size must be a size like "512 MiB" or a number of bytes, got {show(raw)}'
    )


_AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_AGE = re.compile(r"^\s*(?P<number>[0-9]*\.?[0-9]+)\s*(?P<unit>[smhdw])\s*$")


def parse_age(text: str) -> float:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"3600s"``, ``"2w"`` in seconds; ValueError otherwise."""
    match = _AGE.match(text)
    if match is None:
        raise ValueError(text)
    seconds = float(match["number"]) * _AGE_UNITS[match["unit"]]
    if not seconds > 0:
        raise ValueError(text)
    return seconds


def _cache_max_age(v: Validator, where: str, raw: object) -> float:
    """``cache-max-age``: a duration with a unit ("30d", "12h"), or seconds (a number)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 < raw < float("inf"):
        return float(raw)
    if isinstance(raw, str):
        try:
            return parse_age(raw)
        except ValueError:
            pass
    raise v.error(
        where,
        f'cache-max-age must be a duration like "30d" (s, m, h, d, w) or a number of seconds, '
        f"got {show(raw)}",
    )


def _annotation_limits(v: Validator, where: str, raw: object) -> AnnotationLimits:
    if not isinstance(raw, dict):
        raise v.error(
            where, f"annotations must be a table of {', '.join(ANNOTATION_KEYS)}, got {show(raw)}"
        )
    inner = f"{where}.annotations"
    v.unknown_keys(inner, raw, ANNOTATION_KEYS)
    limits = {key: v.integer(inner, key, value, minimum=0) for key, value in raw.items()}
    return replace(AnnotationLimits(), **limits)


def _parse_check(
    v: Validator,
    name: object,
    raw: object,
    agents: Mapping[str, int],
    allowed: Sequence[str],
    *,
    timeout: float,
    retries: int,
) -> list[Check]:
    """One check, or the checks its kind expands it into (the shards of a tests check)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise v.error(
            "tool.parex.checks",
            f"check name {show(name)} must start with a letter or digit and hold only "
            "letters, digits, '-', '_' or '.'",
        )
    where = f"tool.parex.checks.{name}"
    if not isinstance(raw, dict):
        raise v.error("tool.parex.checks", f"{name} must be a table, got {show(raw)}")
    v.unknown_keys(where, raw, allowed)

    shell = v.boolean(where, "shell", raw["shell"]) if "shell" in raw else False
    kind_name = kinds.default_name("pytest" in raw)
    if "kind" in raw:
        kind_name = v.string(where, "kind", raw["kind"])
        if kind_name not in kinds.names():
            raise v.error(
                where, f"kind must be one of {', '.join(kinds.names())}, got {show(kind_name)}"
            )
    kind = kinds.get(kind_name)
    own = {key.name for key in kind.keys}
    for key, owner in kinds.key_owners().items():
        if key in raw and key not in own:
            raise v.error(where, f'{key} only applies to kind = "{owner}", not to "{kind_name}"')

    agent = kind.agent
    if "agent" in raw:
        agent = v.string(where, "agent", raw["agent"])
    if agent not in agents:
        known = ", ".join(sorted(agents))
        raise v.error(
            where,
            f"agent {show(agent)} is not a known agent type; expected one of: {known} "
            "(define new types in [tool.parex.agents])",
        )

    if "run" in raw and "pytest" in raw:
        raise v.error(where, "has both run and pytest; expected exactly one of them")
    given: tuple[str, ...] | None = None
    if kind.runs_pytest:
        if "run" in raw:
            raise v.error(
                where,
                f'kind "{kind_name}" runs pytest: give its arguments as pytest = [...], not run',
            )
        if shell:
            raise v.error(where, "shell = true only applies to run, not to pytest")
        if "pytest" in raw:
            given = _argv(v, where, "pytest", raw["pytest"], shell=False, allow_empty=True)
    elif "pytest" in raw:
        pytest_kinds = ", ".join(f'"{k}"' for k in kinds.names() if kinds.get(k).runs_pytest)
        raise v.error(
            where,
            f'pytest = [...] runs a child pytest, which kind "{kind_name}" does not; '
            f"use kind = {_or(pytest_kinds)}",
        )
    elif "run" in raw:
        given = _argv(v, where, "run", raw["run"], shell=shell, allow_empty=False)

    options = {
        key.name: key.parse(v, where, key.name, raw[key.name])
        for key in kind.keys
        if key.name in raw
    }
    argv, options = kind.resolve(v, where, given, options, shell=shell)

    fields: dict[str, Any] = {"timeout": timeout, "retries": retries, "exclusive": kind.exclusive}
    for common in COMMON_KEYS:
        if common.name in raw:
            fields[common.field] = common.parse(v, where, common.name, raw[common.name])
    if fields.get("after"):
        # ``after`` orders like ``needs`` (graph, cache, plan) without asking for a pass.
        fields["needs"] = tuple(dict.fromkeys([*fields.get("needs", ()), *fields["after"]]))
    check = Check(
        name=name,
        agent=agent,
        argv=argv,
        kind=kind_name,
        shell=shell,
        options=tuple(sorted(options.items())),
        **fields,
    )
    return kind.expand(check)


def _or(quoted: str) -> str:
    """``"a", "b", "c"`` -> ``"a", "b" or "c"``."""
    head, _, last = quoted.rpartition(", ")
    return f"{head} or {last}" if head else last


def _expand_needs(checks: list[Check], expanded: Mapping[str, Sequence[str]]) -> list[Check]:
    """``needs = ["tests"]`` on a check expanded into several (the shards of ``tests``) means
    every one of them."""
    if not expanded:
        return checks
    out = []
    for c in checks:
        needs: list[str] = []
        after: list[str] = []
        for dep in c.needs:
            needs.extend(expanded.get(dep, [dep]))
        for dep in c.after:
            after.extend(expanded.get(dep, [dep]))
        out.append(replace(c, needs=tuple(needs), after=tuple(after)))
    return out


def _argv(
    v: Validator, where: str, key: str, value: object, *, shell: bool, allow_empty: bool
) -> tuple[str, ...]:
    what = "a command string or a list of strings" if key == "run" else "a string or a list"
    if isinstance(value, str):
        if "\x00" in value:
            raise v.error(where, f"{key} must not contain NUL characters")
        if shell:
            argv: list[str] = [value] if value.strip() else []
        else:
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                raise v.error(where, f"{key} {show(value)} cannot be split: {exc}") from None
    elif isinstance(value, list) and all(isinstance(x, str) and "\x00" not in x for x in value):
        argv = list(value)
        if shell:
            argv = [shlex.join(argv)] if argv else []
    else:
        raise v.error(where, f"{key} must be {what}, got {show(value)}")
    if not allow_empty and (not argv or not argv[0].strip()):
        raise v.error(where, f"{key} must be a non-empty command, got {show(value)}")
    return tuple(argv)


def _validate_needs(v: Validator, config: ParexConfig) -> None:
    names = {c.name for c in config.checks}
    for c in config.checks:
        for dep in c.needs:
            if dep == c.name:
                raise v.error(
                    f"tool.parex.checks.{c.base_name}", f"needs itself: {c.name} -> {c.name}"
                )
            if dep not in names:
                known = ", ".join(sorted(names))
                raise v.error(
                    f"tool.parex.checks.{c.base_name}",
                    f"needs {show(dep)}, which is not a check; expected one of: {known}",
                )
    cycle = graph.find_cycle({c.name: c.needs for c in config.checks})
    if cycle:
        raise v.error("tool.parex.checks", "needs form a cycle: " + " -> ".join(cycle))


def select(config: ParexConfig, only: Sequence[str], skip: Sequence[str]) -> ParexConfig:
    """Keep the checks named in ``only`` (all when empty) minus those in ``skip``.

    Dependencies on a removed check are dropped: a check deselected by the user does not block
    its dependents.
    """
    names = [c.name for c in config.checks]
    # A split check (tests[1/2], a pre-commit hook's parts) is named whole by its base name.
    known = set(names) | {c.base_name for c in config.checks}
    for option, wanted in (("--parex-only", only), ("--parex-skip", skip)):
        for name in wanted:
            if name not in known:
                raise ConfigError(
                    f"{option}: unknown check {show(name)}; known checks: {', '.join(names)}"
                )

    def named(c: Check, given: Sequence[str]) -> bool:
        return c.name in given or c.base_name in given

    kept = [c for c in config.checks if (not only or named(c, only)) and not named(c, skip)]
    return drop_missing_needs(config, [c.name for c in kept])


def drop_missing_needs(config: ParexConfig, kept: Sequence[str]) -> ParexConfig:
    """The config restricted to ``kept``, with ``needs`` on removed checks dropped."""
    keep = set(kept)
    checks = tuple(
        replace(
            c,
            needs=tuple(n for n in c.needs if n in keep),
            after=tuple(n for n in c.after if n in keep),
        )
        for c in config.checks
        if c.name in keep
    )
    gate = config.gate
    if isinstance(gate, int):
        gate = min(gate, max(len(checks), 1))
    return replace(config, checks=checks, gate=gate)


# --------------------------------------------------------------------------------------------
# writing (--parex-show-config, and tests and benchmarks that write gates)


def toml_value(value: Any) -> str:
    """``value`` as an inline TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_key(key: str) -> str:
    bare = key and all(ch.isalnum() or ch in "-_" for ch in key) and key.isascii()
    return key if bare else json.dumps(key)


def to_toml(table: Mapping[str, Any]) -> str:
    """``table`` as a ``[tool.parex]`` section (checks and agents as sub-tables)."""
    lines = ["[tool.parex]"]
    for key, value in table.items():
        if key not in ("checks", "agents"):
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    if table.get("agents"):
        lines += ["", "[tool.parex.agents]"]
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table["agents"].items()]
    for name, check in table.get("checks", {}).items():
        lines += ["", f"[tool.parex.checks.{toml_key(name)}]"]
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in check.items()]
    return "\n".join(lines) + "\n"
