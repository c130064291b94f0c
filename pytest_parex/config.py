"""``[tool.parex]`` -> frozen dataclasses.

All validation of the user's configuration lives here, and nothing here needs a pytest session:
errors are :class:`ConfigError` (a ``ValueError``) with one line naming the file, the key path,
the bad value and what was expected; the plugin turns them into ``pytest.UsageError``.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
ON_FAILURE = ("best-effort", "fail-fast")
KINDS = ("command", "tests", "review", "benchmarks", "leaks")
KIND_AGENTS: Mapping[str, str] = {
    "command": "code-reviewer",
    "review": "code-reviewer",
    "tests": "test-runner",
    "benchmarks": "test-runner",
    "leaks": "debugger",
}
"""The agent a check of each kind gets when it names none."""
REVIEW_TOOLS: Mapping[str, tuple[str, ...]] = {
    "ruff": ("ruff", "check", "."),
    "ruff-format": ("ruff", "format", "--check", "."),
    "mypy": ("mypy", "."),
}
"""``tool = NAME`` on a review check: the command it stands for."""
DEFAULT_BENCH_ARGS = ("--benchmark-only",)
DEFAULT_LEAK_ITERATIONS = 5
DEFAULT_LEAK_THRESHOLD = "64 KiB"
# Keys that only mean something for one kind of check.
KIND_KEYS: Mapping[str, str] = {
    "tool": "review",
    "shards": "tests",
    "fail-if-slower": "benchmarks",
    "baseline": "benchmarks",
    "save-baseline": "benchmarks",
    "iterations": "leaks",
    "threshold": "leaks",
}

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
    "checks",
)
CHECK_KEYS = (
    "agent",
    "run",
    "pytest",
    "shell",
    "kind",
    "timeout",
    "cwd",
    "env",
    "description",
    "needs",
    "reads",
    "writes",
    "exclusive",
    "blocking",
    "retries",
    "expected",
    *KIND_KEYS,
)


class ConfigError(ValueError):
    """A mistake in the user's configuration; ``str()`` is the one-line message."""


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
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    exclusive: bool = False
    blocking: bool = True
    retries: int = 0
    expected: float | None = None
    tool: str = ""
    """Review checks: "ruff-check", "ruff-format", "mypy" or "" (output parsed generically)."""
    shard: tuple[int, int] | None = None
    """Tests checks split with ``shards = N``: (this shard, N), counted from 1."""
    fail_if_slower: str = ""
    baseline: str = ""
    save_baseline: bool = False
    iterations: int = DEFAULT_LEAK_ITERATIONS
    threshold: str = DEFAULT_LEAK_THRESHOLD

    @property
    def runs_pytest(self) -> bool:
        """Whether the command is a child ``python -m pytest`` (argv holds its arguments)."""
        return self.kind in ("tests", "benchmarks", "leaks")

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
    notes: tuple[str, ...] = field(default=())
    """Things said about how the config was built (shown in the header)."""

    @property
    def agent_instances(self) -> dict[str, int]:
        return dict(self.agents)

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


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
        raise ConfigError(f"{path}: [tool.parex] must be a table, got {_show(table)}")
    return table


def load(path: Path) -> ParexConfig | None:
    """Read and validate ``[tool.parex]`` from ``path``; None when the file has no such table."""
    table = load_pyproject(path)
    if table is None:
        return None
    return parse(table, str(path))


# --------------------------------------------------------------------------------------------
# validation


def _show(value: object) -> str:
    """A value as the user wrote it, kept short and on one line."""
    if isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, list):
        text = (
            "[" + ", ".join(_show(v) for v in value[:5]) + (", ..." if len(value) > 5 else "") + "]"
        )
    else:
        text = repr(value)
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= 80 else text[:77] + "..."


class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: [{where}] {message}")

    def unknown_keys(self, where: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                hint = ", ".join(allowed)
                raise self.error(where, f"unknown key {_show(key)}; expected one of: {hint}")

    def number(self, where: str, key: str, value: object, *, positive: bool = True) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(where, f"{key} must be a positive number, got {_show(value)}")
        if positive and not value > 0:
            raise self.error(where, f"{key} must be a positive number, got {_show(value)}")
        return float(value)

    def integer(self, where: str, key: str, value: object, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.error(where, f"{key} must be {what}, got {_show(value)}")
        return value

    def boolean(self, where: str, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.error(where, f"{key} must be true or false, got {_show(value)}")
        return value

    def string(self, where: str, key: str, value: object, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value.strip()):
            what = "a string" if empty else "a non-empty string"
            raise self.error(where, f"{key} must be {what}, got {_show(value)}")
        if "\x00" in value:
            raise self.error(where, f"{key} must not contain NUL characters, got {_show(value)}")
        return value

    def string_list(self, where: str, key: str, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(
            isinstance(v, str) and v and "\x00" not in v for v in value
        ):
            raise self.error(
                where, f"{key} must be a list of non-empty strings, got {_show(value)}"
            )
        return tuple(value)


def parse(table: Mapping[str, Any], source: str) -> ParexConfig:
    """Validate a ``[tool.parex]`` table (already decoded from TOML)."""
    ctx = _Ctx(source)
    where = "tool.parex"
    ctx.unknown_keys(where, table, GLOBAL_KEYS)

    timeout = DEFAULT_TIMEOUT
    if "timeout" in table:
        timeout = ctx.number(where, "timeout", table["timeout"])
    max_parallel = DEFAULT_MAX_PARALLEL
    if "max-parallel" in table:
        max_parallel = ctx.integer(where, "max-parallel", table["max-parallel"], minimum=1)
    retries = 0
    if "retries" in table:
        retries = ctx.integer(where, "retries", table["retries"], minimum=0)
    on_failure = "best-effort"
    if "on-failure" in table:
        on_failure = ctx.string(where, "on-failure", table["on-failure"])
        if on_failure not in ON_FAILURE:
            raise ctx.error(
                where, f'on-failure must be "best-effort" or "fail-fast", got {_show(on_failure)}'
            )
    log_dir = DEFAULT_LOG_DIR
    if "log-dir" in table:
        log_dir = ctx.string(where, "log-dir", table["log-dir"])

    agents = dict(DEFAULT_AGENTS)
    if "agents" in table:
        raw_agents = table["agents"]
        if not isinstance(raw_agents, dict):
            raise ctx.error(
                where, f"agents must be a table of agent type = instances, got {_show(raw_agents)}"
            )
        for agent, count in raw_agents.items():
            if not _AGENT_RE.fullmatch(agent):
                raise ctx.error(
                    f"{where}.agents",
                    f"agent type {_show(agent)} must be letters, digits, '-', '_' or '.'",
                )
            agents[agent] = ctx.integer(f"{where}.agents", agent, count, minimum=1)

    raw_checks = table.get("checks", {})
    if not isinstance(raw_checks, dict):
        raise ctx.error(where, f"checks must be a table of named checks, got {_show(raw_checks)}")
    checks: list[Check] = []
    lowered: dict[str, str] = {}
    for name in sorted(raw_checks):
        # TOML already refuses a key defined twice; names that differ only in case would still
        # collide in log file names on case-insensitive file systems and confuse `-k`.
        if name.lower() in lowered:
            raise ctx.error(
                f"{where}.checks",
                f"duplicate check name {_show(name)} (same as {_show(lowered[name.lower()])} "
                "ignoring case)",
            )
        lowered[name.lower()] = name
        checks.extend(
            _parse_check(ctx, name, raw_checks[name], agents, timeout=timeout, retries=retries)
        )
    checks = _expand_shard_needs(checks)

    gate: str | int = "all"
    if "gate" in table:
        raw_gate = table["gate"]
        if isinstance(raw_gate, bool) or not isinstance(raw_gate, (str, int)):
            raise ctx.error(
                where, f'gate must be "all", "any" or a number of checks, got {_show(raw_gate)}'
            )
        if isinstance(raw_gate, str):
            if raw_gate not in ("all", "any"):
                raise ctx.error(
                    where, f'gate must be "all", "any" or a number of checks, got {_show(raw_gate)}'
                )
            gate = raw_gate
        else:
            if not 1 <= raw_gate <= max(len(checks), 1):
                raise ctx.error(
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
    )
    _validate_needs(ctx, config)
    return config


def _parse_check(
    ctx: _Ctx,
    name: object,
    raw: object,
    agents: Mapping[str, int],
    *,
    timeout: float,
    retries: int,
) -> list[Check]:
    """One check, or its shards (``shards = N`` on a tests check)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ctx.error(
            "tool.parex.checks",
            f"check name {_show(name)} must start with a letter or digit and hold only "
            "letters, digits, '-', '_' or '.'",
        )
    where = f"tool.parex.checks.{name}"
    if not isinstance(raw, dict):
        raise ctx.error("tool.parex.checks", f"{name} must be a table, got {_show(raw)}")
    ctx.unknown_keys(where, raw, CHECK_KEYS)

    shell = ctx.boolean(where, "shell", raw["shell"]) if "shell" in raw else False
    kind = "tests" if "pytest" in raw else "command"
    if "kind" in raw:
        kind = ctx.string(where, "kind", raw["kind"])
        if kind not in KINDS:
            raise ctx.error(where, f"kind must be one of {', '.join(KINDS)}, got {_show(kind)}")
    for key, owner in KIND_KEYS.items():
        if key in raw and kind != owner:
            raise ctx.error(where, f'{key} only applies to kind = "{owner}", not to "{kind}"')

    agent = KIND_AGENTS[kind]
    if "agent" in raw:
        agent = ctx.string(where, "agent", raw["agent"])
    if agent not in agents:
        known = ", ".join(sorted(agents))
        raise ctx.error(
            where,
            f"agent {_show(agent)} is not a known agent type; expected one of: {known} "
            "(define new types in [tool.parex.agents])",
        )

    if "run" in raw and "pytest" in raw:
        raise ctx.error(where, "has both run and pytest; expected exactly one of them")
    runs_pytest = kind in ("tests", "benchmarks", "leaks")
    tool = ""
    argv: tuple[str, ...]
    if runs_pytest:
        if "run" in raw:
            raise ctx.error(
                where, f'kind "{kind}" runs pytest: give its arguments as pytest = [...], not run'
            )
        if shell:
            raise ctx.error(where, "shell = true only applies to run, not to pytest")
        default = DEFAULT_BENCH_ARGS if kind == "benchmarks" else ()
        argv = default
        if "pytest" in raw:
            argv = _argv(ctx, where, "pytest", raw["pytest"], shell=False, allow_empty=True)
    elif "pytest" in raw:
        raise ctx.error(
            where,
            f'pytest = [...] runs a child pytest, which kind "{kind}" does not; '
            'use kind = "tests", "benchmarks" or "leaks"',
        )
    elif "run" in raw:
        argv = _argv(ctx, where, "run", raw["run"], shell=shell, allow_empty=False)
    elif kind == "review" and "tool" in raw:
        argv = ()
    else:
        raise ctx.error(where, 'needs a command: run = "..." or pytest = [...]')
    if kind == "review":
        if "tool" in raw:
            name_of_tool = ctx.string(where, "tool", raw["tool"])
            if name_of_tool not in REVIEW_TOOLS:
                known_tools = ", ".join(f'"{t}"' for t in REVIEW_TOOLS)
                raise ctx.error(
                    where, f"tool must be one of {known_tools}, got {_show(name_of_tool)}"
                )
            if not argv:
                argv = REVIEW_TOOLS[name_of_tool]
            tool = "ruff-check" if name_of_tool == "ruff" else name_of_tool
        elif not shell:
            from pytest_parex.kinds.review import detect_tool

            tool = detect_tool(argv) or ""

    shards = 1
    if "shards" in raw:
        shards = ctx.integer(where, "shards", raw["shards"], minimum=1)
    fail_if_slower = ""
    if "fail-if-slower" in raw:
        fail_if_slower = ctx.string(where, "fail-if-slower", raw["fail-if-slower"])
        from pytest_parex.kinds.benchcmp import parse_threshold

        try:
            parse_threshold(fail_if_slower)
        except ValueError as exc:
            raise ctx.error(
                where,
                f'fail-if-slower must look like "mean:10%", got {_show(fail_if_slower)} ({exc})',
            ) from None
    baseline = ctx.string(where, "baseline", raw["baseline"]) if "baseline" in raw else ""
    save_baseline = (
        ctx.boolean(where, "save-baseline", raw["save-baseline"])
        if "save-baseline" in raw
        else False
    )
    iterations = DEFAULT_LEAK_ITERATIONS
    if "iterations" in raw:
        iterations = ctx.integer(where, "iterations", raw["iterations"], minimum=1)
    threshold = DEFAULT_LEAK_THRESHOLD
    if "threshold" in raw:
        threshold = ctx.string(where, "threshold", raw["threshold"])
        from argparse import ArgumentTypeError

        from pytest_parex.child.leaks import parse_size

        try:
            parse_size(threshold)
        except ArgumentTypeError as exc:
            raise ctx.error(
                where, f'threshold must be a size like "64 KiB", got {_show(threshold)} ({exc})'
            ) from None

    check_timeout = timeout
    if "timeout" in raw:
        check_timeout = ctx.number(where, "timeout", raw["timeout"])
    cwd = "."
    if "cwd" in raw:
        cwd = ctx.string(where, "cwd", raw["cwd"])
    env: tuple[tuple[str, str], ...] = ()
    if "env" in raw:
        raw_env = raw["env"]
        if not isinstance(raw_env, dict):
            raise ctx.error(where, f'env must be a table of NAME = "value", got {_show(raw_env)}')
        pairs = []
        for key in sorted(raw_env):
            value = raw_env[key]
            if not key or "=" in key or "\x00" in key:
                raise ctx.error(f"{where}.env", f"{_show(key)} is not a valid variable name")
            if not isinstance(value, str) or "\x00" in value:
                raise ctx.error(
                    f"{where}.env", f"{_show(key)} must be a string, got {_show(value)}"
                )
            pairs.append((key, value))
        env = tuple(pairs)
    description = ""
    if "description" in raw:
        description = ctx.string(where, "description", raw["description"], empty=True)
    needs = ctx.string_list(where, "needs", raw["needs"]) if "needs" in raw else ()
    reads = ctx.string_list(where, "reads", raw["reads"]) if "reads" in raw else ()
    writes = ctx.string_list(where, "writes", raw["writes"]) if "writes" in raw else ()
    # Benchmarks run alone unless told otherwise: parallel load turns their figures into noise.
    exclusive = kind == "benchmarks"
    if "exclusive" in raw:
        exclusive = ctx.boolean(where, "exclusive", raw["exclusive"])
    blocking = ctx.boolean(where, "blocking", raw["blocking"]) if "blocking" in raw else True
    check_retries = retries
    if "retries" in raw:
        check_retries = ctx.integer(where, "retries", raw["retries"], minimum=0)
    expected = None
    if "expected" in raw:
        expected = ctx.number(where, "expected", raw["expected"])
    check = Check(
        name=name,
        agent=agent,
        argv=argv,
        kind=kind,
        shell=shell,
        timeout=check_timeout,
        cwd=cwd,
        env=env,
        description=description,
        needs=tuple(dict.fromkeys(needs)),
        reads=reads,
        writes=writes,
        exclusive=exclusive,
        blocking=blocking,
        retries=check_retries,
        expected=expected,
        tool=tool,
        fail_if_slower=fail_if_slower,
        baseline=baseline,
        save_baseline=save_baseline,
        iterations=iterations,
        threshold=threshold,
    )
    if shards == 1:
        return [check]
    return [
        replace(check, name=f"{name}[{i}/{shards}]", shard=(i, shards))
        for i in range(1, shards + 1)
    ]


def _expand_shard_needs(checks: list[Check]) -> list[Check]:
    """``needs = ["tests"]`` on a sharded ``tests`` means every one of its shards."""
    shards: dict[str, list[str]] = {}
    for c in checks:
        if c.shard is not None:
            shards.setdefault(c.base_name, []).append(c.name)
    if not shards:
        return checks
    out = []
    for c in checks:
        needs: list[str] = []
        for dep in c.needs:
            needs.extend(shards.get(dep, [dep]))
        out.append(replace(c, needs=tuple(needs)))
    return out


def _argv(
    ctx: _Ctx, where: str, key: str, value: object, *, shell: bool, allow_empty: bool
) -> tuple[str, ...]:
    what = "a command string or a list of strings" if key == "run" else "a string or a list"
    if isinstance(value, str):
        if "\x00" in value:
            raise ctx.error(where, f"{key} must not contain NUL characters")
        if shell:
            argv: list[str] = [value] if value.strip() else []
        else:
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                raise ctx.error(where, f"{key} {_show(value)} cannot be split: {exc}") from None
    elif isinstance(value, list) and all(isinstance(v, str) and "\x00" not in v for v in value):
        argv = list(value)
        if shell:
            argv = [shlex.join(argv)] if argv else []
    else:
        raise ctx.error(where, f"{key} must be {what}, got {_show(value)}")
    if not allow_empty and (not argv or not argv[0].strip()):
        raise ctx.error(where, f"{key} must be a non-empty command, got {_show(value)}")
    return tuple(argv)


def _validate_needs(ctx: _Ctx, config: ParexConfig) -> None:
    names = {c.name for c in config.checks}
    for c in config.checks:
        for dep in c.needs:
            if dep == c.name:
                raise ctx.error(
                    f"tool.parex.checks.{c.base_name}", f"needs itself: {c.name} -> {c.name}"
                )
            if dep not in names:
                known = ", ".join(sorted(names))
                raise ctx.error(
                    f"tool.parex.checks.{c.base_name}",
                    f"needs {_show(dep)}, which is not a check; expected one of: {known}",
                )
    cycle = find_cycle({c.name: c.needs for c in config.checks})
    if cycle:
        raise ctx.error("tool.parex.checks", "needs form a cycle: " + " -> ".join(cycle))


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle of ``edges`` as ``[a, b, c, a]`` (deterministic), or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for nxt in edges.get(node, ()):
            if color.get(nxt, black) == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if color.get(nxt) == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for start in sorted(edges):
        if color[start] == white:
            found = visit(start)
            if found:
                return found
    return None


def select(config: ParexConfig, only: Sequence[str], skip: Sequence[str]) -> ParexConfig:
    """Keep the checks named in ``only`` (all when empty) minus those in ``skip``.

    Dependencies on a removed check are dropped: a check deselected by the user does not block
    its dependents.
    """
    names = [c.name for c in config.checks]
    for option, wanted in (("--parex-only", only), ("--parex-skip", skip)):
        for name in wanted:
            if name not in names:
                raise ConfigError(
                    f"{option}: unknown check {_show(name)}; known checks: {', '.join(names)}"
                )
    kept = [c for c in config.checks if (not only or c.name in only) and c.name not in skip]
    return drop_missing_needs(config, [c.name for c in kept])


def drop_missing_needs(config: ParexConfig, kept: Sequence[str]) -> ParexConfig:
    """The config restricted to ``kept``, with ``needs`` on removed checks dropped."""
    keep = set(kept)
    checks = tuple(
        Check(**{**c.__dict__, "needs": tuple(n for n in c.needs if n in keep)})
        for c in config.checks
        if c.name in keep
    )
    gate = config.gate
    if isinstance(gate, int):
        gate = min(gate, max(len(checks), 1))
    return ParexConfig(**{**config.__dict__, "checks": checks, "gate": gate})
