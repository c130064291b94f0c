"""The key of a check's result (pure: no pytest): :class:`KeyParts`, everything that decides
its verdict, in parts (so a miss can say which part changed); :meth:`KeyParts.digest` is the
key. :class:`KeyBuilder` computes the parts of checks from the tree, the environment and the
machine as they are. Environment variables are kept as digests of their values
(:func:`env_values`).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import json
import os
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pytest_parex import kinds
from pytest_parex.cache.digests import FileIndex, stat_signature
from pytest_parex.cache.identity import (
    executable_identity,
    external_path_entries,
    installed_code,
    interpreter_of,
    interpreter_path,
    python_identity,
    resolve_executable,
    same_interpreter,
)
from pytest_parex.cache.listing import (
    Scanner,
    compile_pattern,
    normalise_relpath,
)
from pytest_parex.config import ConfigError, read_document
from pytest_parex.execute import environment
from pytest_parex.toolconfig import TOOL_FILES, USER_FILES

if TYPE_CHECKING:
    from pytest_parex.config import Check
    from pytest_parex.kinds.base import RunContext

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

ENV_IGNORED = (
    "PYTEST_CURRENT_TEST",
    "PYTEST_VERSION",
    "PYTEST_XDIST_*",
    "PYTEST_PAREX_*",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
)
"""Variables :func:`env_values` leaves out even when a wildcard names them: pytest and the gate
set them per process or per test, or they steer the gate, not the check; the last two change
where bytecode and output go, not what a check finds (containers and CI set them at will)."""


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
    """``{distribution: version}`` it imports (:attr:`InstalledCode.versions`; another
    interpreter's as ``NAME@INTERPRETER``)."""
    python: str = ""
    """:func:`python_identity` when it runs Python."""
    env: Mapping[str, str | None] = field(default_factory=dict)
    """``{NAME: value digest, or None when unset}`` (:func:`env_values`)."""
    installed: Mapping[str, str] = field(default_factory=dict)
    """``{distribution: digest of its RECORD}`` (:attr:`InstalledCode.content`), keyed as
    :attr:`versions`: a package rebuilt and reinstalled at the same version."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "definition", _frozen(json.loads(canonical_json(self.definition))))
        for name in ("files", "tools", "versions", "env", "installed"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "definition": _thawed(self.definition),
            "files": dict(self.files),
            "tools": dict(self.tools),
            "versions": dict(self.versions),
            "python": self.python,
            "env": dict(self.env),
            "installed": dict(self.installed),
        }

    @classmethod
    def from_dict(cls, data: object) -> KeyParts:
        """Parts read back from JSON; ValueError when they do not have the expected shape."""
        if not isinstance(data, dict) or set(data) != _PART_NAMES:
            raise ValueError("not key parts")
        if not isinstance(data["definition"], dict) or not isinstance(data["python"], str):
            raise ValueError("bad definition or python")
        for name in ("files", "tools", "versions", "installed"):
            if not _str_map(data[name]):
                raise ValueError(f"bad {name}")
        env = data["env"]
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in env.items()
        ):
            raise ValueError("bad env")
        return cls(**data)

    def digest(self) -> str:
        """sha256 of all parts in a canonical form: the cache key."""
        return self._digest

    def canonical(self) -> bytes:
        """The canonical JSON of all parts: the full key a stored entry carries (read back
        to say what changed since)."""
        return self._canonical

    @functools.cached_property
    def _canonical(self) -> bytes:
        # cached_property writes the instance __dict__ directly, which a frozen dataclass
        # allows: the parts cannot change.
        return canonical_json(self.to_dict()).encode()

    @functools.cached_property
    def _digest(self) -> str:
        # Not the digest of canonical(): the files, by far the largest part (50,000 paths),
        # are hashed as NUL-separated text in sorted order -- canonical without a JSON encoder
        # (paths and digests hold no NUL); the rest as canonical JSON. A warm lookup needs
        # the digest only.
        rest = {
            "definition": _thawed(self.definition),
            "files": None,
            "tools": dict(self.tools),
            "versions": dict(self.versions),
            "python": self.python,
            "env": dict(self.env),
            "installed": dict(self.installed),
        }
        h = hashlib.sha256(canonical_json(rest).encode())
        h.update(b"\0files\0")
        flat = "\0".join(itertools.chain.from_iterable(sorted(self.files.items())))
        h.update(flat.encode("utf-8", "surrogateescape"))
        return h.hexdigest()


_PART_NAMES = frozenset({"definition", "files", "tools", "versions", "python", "env", "installed"})


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


# ------------------------------------------------------------------------------ a check's parts

CONFTEST = "**/conftest.py"
"""An input of every check whose kind runs pytest, beside the tools' configuration files."""


def definition(check: Check) -> dict[str, Any]:
    """What a check does, as key data: kind, command, shell, cwd, env, timeout, retries,
    ``reads``, ``reads-env``, its kind's options and its shard -- not its agent, description,
    needs or blocking: they decide when and how it counts, not what it finds."""
    return {
        "kind": check.kind,
        "argv": list(check.argv),
        "shell": check.shell,
        "cwd": check.cwd,
        "env": [list(pair) for pair in check.env],
        "timeout": check.timeout,
        "retries": check.retries,
        "reads": list(check.reads),
        "reads-env": list(check.reads_env),
        "options": [[k, v] for k, v in check.options],
        "shard": list(check.shard) if check.shard else None,
    }


@dataclass(frozen=True)
class _Python:
    """An interpreter a check runs, as key data."""

    identity: str
    versions: dict[str, str]
    installed: dict[str, str]
    sources: tuple[str, ...] = ()
    """Directories outside the rootdir whose files it may import (editable projects, path
    entries); only the gate's own interpreter is searched for them."""


@dataclass(frozen=True)
class KeySettings:
    """What the keys of one gate are computed against -- the same on the gate's process and
    on every xdist worker that keys what it runs."""

    rootdir: Path
    context: RunContext
    config_path: Path
    """The gate's configuration file: its ``[tool.parex]`` table counts only through the
    definitions it makes."""
    exclude: tuple[str, ...] = ()
    """Paths relative to the rootdir that are never inputs: the gate's own outputs."""
    pythonpath: tuple[str, ...] = ()
    """pytest's ``pythonpath`` setting: import path entries of the kinds that run pytest."""


class KeyBuilder:
    """The key parts of checks against the tree, the environment and the machine as they are
    now. One builder per key computation; its :class:`FileIndex` outlives it.

    What each check's parts hold (README, "The key"):

    * ``files``: with ``reads``, the files its globs match (ignored files too), the tools'
      configuration files (:data:`pytest_parex.toolconfig.TOOL_FILES`) in the rootdir, in its
      ``cwd`` and every directory between, and in every directory that holds a matched file and
      its parents (a nested ``ruff.toml``), the per-user ones, and ``conftest.py`` files for
      the kinds that run pytest; without ``reads``, every file of the project
      (:func:`~pytest_parex.cache.listing.project_files`). Links to directories are followed
      into what they hold (a link leaving the rootdir hides nothing); for a check that runs
      Python, the files of projects installed in development mode and of import path entries
      outside the rootdir, by absolute path. The gate's own ``[tool.parex]`` table counts only
      through the definitions it makes.
    * ``tools``: the resolved executable and its content; ``python``, ``versions`` and
      ``installed``: the interpreter that runs it -- the gate's, or the one a script's ``#!``
      line names (pipx, ``uv tool``) -- and its distributions by version and content.
    * ``env``: :data:`DEFAULT_ENV` and the check's ``reads-env``, as digests.
    """

    def __init__(self, settings: KeySettings, index: FileIndex) -> None:
        self.settings = settings
        self.index = index
        self.rootdir = settings.rootdir
        self.context = settings.context
        self.config_path = settings.config_path
        self.exclude = settings.exclude
        self.pythonpath = settings.pythonpath
        self._pythons: dict[str, _Python] = {}
        self._listed: dict[str, list[str]] = {}

    # -------------------------------------------------------------------------- caching at all

    def uncacheable(self, check: Check) -> str:
        """Why ``check`` is never replayed, whatever its inputs ("" when it may be): a ``cwd``
        outside the rootdir without ``reads`` -- nothing above would see its files."""
        if check.reads:
            return ""
        cwd = os.path.normpath(os.path.join(self.rootdir, check.cwd))
        root = os.path.normpath(self.rootdir)
        if cwd != root and not cwd.startswith(root + os.sep):
            return f"cwd {check.cwd} is outside the rootdir (give reads naming its files)"
        return ""

    # -------------------------------------------------------------------------- the parts

    def parts(self, checks: Sequence[Check]) -> dict[str, KeyParts]:
        """The key parts of ``checks`` now: one scan of the tree, one pass over the index."""
        scanner = Scanner(self.rootdir, exclude=self.exclude)
        scanner.start_project_files()  # git looks at the tree while the rest is worked out
        # What each check runs, first (its environment, program, interpreter).
        runs: dict[str, _Runs] = {}
        for check in checks:
            env = environment(check, self.context)
            cwd = self.context.rootdir / check.cwd
            program = _program(check)
            python = self._python_of(check, program, env.get("PATH"), cwd)
            imports = self._import_dirs(check, python, env) if python is not None else []
            runs[check.name] = _Runs(env, cwd, program, python, imports)
        project: list[str] | None = None
        inputs: dict[str, list[str]] = {}
        patterns: dict[str, list[str]] = {}
        for check in checks:
            if check.reads:
                patterns[check.name] = self._declared(check)
                matched = scanner.matching(patterns[check.name])
                inputs[check.name] = sorted(
                    {*matched, *self._config_files(scanner, check, matched)}
                )
            else:
                if project is None:
                    project = scanner.project_files()
                inputs[check.name] = project
        every = sorted({path for paths in inputs.values() for path in paths})
        # Tracked files whose content is the index's are digested by git already (it compared
        # every stat field): no stat, no read here. The rest goes through the file index.
        clean = scanner.clean()
        digests = self.index.digests(self.rootdir, [p for p in every if p not in clean])
        digests.update({p: "git:" + clean[p] for p in every if p in clean})
        below = self._through_links(every, digests)
        own = _relative(self.config_path, self.rootdir)
        if own in digests:
            digests[own] = _without_gate_table(self.config_path, digests[own])
        user = self._user_files()
        out: dict[str, KeyParts] = {}
        for check in checks:
            run = runs[check.name]
            files = {p: digests[p] for p in inputs[check.name] if p in digests}
            files.update(self._linked(files, below, patterns.get(check.name)))
            files.update(user)
            tools: dict[str, str] = {}
            programs = _programs(check) if check.shell else [run.program]
            for program in filter(None, programs):
                tools[program] = executable_identity(
                    program, run.env.get("PATH"), run.cwd, index=self.index
                )
            versions: dict[str, str] = {}
            installed: dict[str, str] = {}
            identity = ""
            if run.python is not None:
                python = run.python
                identity, versions, installed = python.identity, python.versions, python.installed
                files.update(self._imported(run.imports))
            out[check.name] = KeyParts(
                definition=definition(check),
                files=files,
                tools=tools,
                versions=versions,
                python=identity,
                env=env_values([*DEFAULT_ENV, *check.reads_env], run.env),
                installed=installed,
            )
        return out

    def signatures(self, paths: Iterable[str]) -> dict[str, str]:
        """The stat signatures of ``paths``: as the last :meth:`parts` saw them, or -- for the
        files git vouched for, which it did not stat -- now (a path that does not exist has
        none). Taken after the key: a change in between shows in the key computed after the
        check ran."""
        seen = self.index.seen
        out: dict[str, str] = {}
        for path in paths:
            found = seen.get(path)
            if found is None:
                full = path if os.path.isabs(path) else os.path.join(self.rootdir, path)
                found = stat_signature(full)
            if found is not None:
                out[path] = found
        return out

    # -------------------------------------------------------------------------- files

    def _declared(self, check: Check) -> list[str]:
        found = list(check.reads)
        if kinds.get(check.kind).runs_pytest:
            found.append(CONFTEST)
        return found

    def _config_files(self, scanner: Scanner, check: Check, matched: Sequence[str]) -> list[str]:
        """The tools' configuration files in the rootdir, in the directories between it and
        the check's ``cwd``, and in those holding a matched file and their parents: ruff,
        mypy and pytest look for theirs there (a sub-project's ``pyproject.toml``, a nested
        ``ruff.toml``). ``matched`` is sorted."""
        cwd = normalise_relpath(check.cwd)
        chain = {""}
        while cwd and not cwd.startswith(".."):
            chain.add(cwd)
            cwd = cwd.rpartition("/")[0]
        found = scanner.config_files(TOOL_FILES)
        if found is None:  # no listing of the whole tree: look in each directory
            dirs = set(chain)
            for start in {p.rpartition("/")[0] for p in matched}:
                while start and start not in dirs:
                    dirs.add(start)
                    start = start.rpartition("/")[0]
            return scanner.named(sorted(dirs), TOOL_FILES)
        out: list[str] = []
        for folder, paths in found.items():
            if folder in chain:
                out.extend(paths)
                continue
            # A matched file below this directory (a bisection of the sorted list).
            below = folder + "/"
            i = bisect.bisect_left(matched, below)
            if i < len(matched) and matched[i].startswith(below):
                out.extend(paths)
        return out

    def _user_files(self) -> dict[str, str]:
        paths = [os.path.expanduser(p) for p in USER_FILES]
        paths = [p for p in paths if os.path.isabs(p)]
        return self.index.digests(Path("/"), paths)

    def _through_links(self, listed: Sequence[str], digests: dict[str, str]) -> dict[str, str]:
        """What the links to directories among ``listed`` hold, listed through them
        (``link/sub/file``) and digested: a link is followed once per real directory, so
        links in a cycle end."""
        out: dict[str, str] = {}
        visited: set[str] = set()
        links = {p: self.index.dir_links[p] for p in listed if p in self.index.dir_links}
        while links:
            found: list[str] = []
            for link, real in sorted(links.items()):
                if real in visited:
                    continue
                visited.add(real)
                found.extend(f"{link}/{p}" for p in Scanner(Path(real)).walk())
            if not found:
                break
            more = self.index.digests(self.rootdir, found)
            out.update(more)
            links = {p: self.index.dir_links[p] for p in more if p in self.index.dir_links}
        digests.update(out)
        return out

    def _linked(
        self, files: Mapping[str, str], below: Mapping[str, str], patterns: list[str] | None
    ) -> dict[str, str]:
        """The files reached through the links among ``files`` that the check reads: all of
        them without ``reads``, those its globs match otherwise."""
        if not below:
            return {}
        links = [p for p in files if p in self.index.dir_links]
        if not links:
            return {}
        prefixes = tuple(f"{link}/" for link in links)
        reached = {p: d for p, d in below.items() if p.startswith(prefixes)}
        if patterns is None:
            return reached
        regexes = [compile_pattern(text).regex.fullmatch for text in patterns]
        return {p: d for p, d in reached.items() if any(match(p) for match in regexes)}

    # -------------------------------------------------------------------------- Python

    def _python_of(
        self, check: Check, program: str, path_env: str | None, cwd: Path
    ) -> _Python | None:
        """The interpreter ``check`` runs, as key data, or None when it runs no Python.

        The kinds that run pytest, shell commands, the gate's own interpreter and the scripts
        of its environment run the gate's Python; a script whose ``#!`` line names another
        interpreter (pipx, ``uv tool``, another virtualenv) runs that one."""
        if kinds.get(check.kind).runs_pytest or check.shell:
            return self._python(sys.executable)
        resolved = resolve_executable(program, path_env, cwd) if program else None
        if resolved is None:
            return None
        interpreter = interpreter_of(resolved, path_env, cwd)
        if interpreter is not None:
            return self._python(sys.executable if same_interpreter(interpreter) else interpreter)
        inside = os.path.realpath(resolved).startswith(os.path.realpath(sys.prefix) + os.sep)
        beside = Path(resolved).parent == Path(sys.executable).parent
        return self._python(sys.executable) if inside or beside else None

    def _python(self, interpreter: str) -> _Python:
        known = self._pythons.get(interpreter)
        if known is not None:
            return known
        if interpreter == sys.executable:
            code = installed_code(sys.path, self.index)
            # Not sys.path[0]: how the gate itself was started (the pytest script's directory,
            # the current one), which a check's own Python does not share.
            external = external_path_entries(sys.path[1:], self.rootdir)
            found = _Python(
                python_identity(),
                code.versions,
                code.content,
                tuple(dict.fromkeys([*code.sources, *external])),
            )
        else:
            identity, path = interpreter_path(interpreter)
            code = installed_code(path, self.index)
            tag = f"@{interpreter}"
            found = _Python(
                identity,
                {name + tag: v for name, v in code.versions.items()},
                {name + tag: v for name, v in code.content.items()},
            )
        self._pythons[interpreter] = found
        return found

    def _import_dirs(self, check: Check, python: _Python, env: Mapping[str, str]) -> list[str]:
        """The directories outside the rootdir a check's Python may import from (real paths):
        projects installed in development mode, import path entries -- the gate's, the
        check's ``PYTHONPATH``, pytest's ``pythonpath`` for the kinds that run pytest."""
        dirs = list(python.sources)
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if kinds.get(check.kind).runs_pytest:
            extra += [os.path.join(self.rootdir, p) for p in self.pythonpath]
        dirs += external_path_entries(extra, self.rootdir)
        root = os.path.realpath(self.rootdir)
        out: list[str] = []
        for real in dict.fromkeys(os.path.realpath(folder) for folder in dirs):
            if real != root and not real.startswith(root + os.sep):  # not the project itself
                out.append(real)
        return out

    def _imported(self, folders: Sequence[str]) -> dict[str, str]:
        """The files of ``folders`` (:meth:`_import_dirs`), by absolute path, digested. Each
        folder is walked once per key computation (pruned like the project's own walk: no
        git process per folder; what a walk adds over git's listing can only rerun more)."""
        files: dict[str, None] = {}
        for folder in folders:
            if folder not in self._listed:
                listed = Scanner(Path(folder)).walk()
                self._listed[folder] = [os.path.join(folder, p) for p in listed]
            files.update(dict.fromkeys(self._listed[folder]))
        return self.index.digests(Path("/"), files) if files else {}


@dataclass(frozen=True)
class _Runs:
    """What one check runs, as the key builder works it out before listing files."""

    env: Mapping[str, str]
    cwd: Path
    program: str
    python: _Python | None
    imports: list[str]


_SHELL_WORDS = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "case", "esac",
     "!", "{", "}", "(", ")", "exec", "command", "time", "env", "nohup", "xargs"}
)  # fmt: skip
"""Words of a shell line that start no program of their own (or hand over to the next)."""


def _programs(check: Check) -> list[str]:
    """The programs a ``shell = true`` line starts: the first word of every command in it
    (after ``&&``, ``||``, ``;``, ``|``, ``(``), past variable assignments and keywords. A
    program a script starts by itself stays unseen (README, "what it cannot see")."""
    lexer = shlex.shlex(check.argv[0] if check.argv else "", posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return [_program(check)] if _program(check) else []
    out: list[str] = []
    first = True
    for word in words:
        if word and all(c in "&|;()<>" for c in word):
            first = word not in ("<", ">", ">>", "<<")
            continue
        if first and ("=" in word.split("/", 1)[0] or word in _SHELL_WORDS):
            continue  # VAR=value, a keyword: the program comes later
        if first and word not in out:
            out.append(word)
        first = False
    return out


def _program(check: Check) -> str:
    if kinds.get(check.kind).runs_pytest:
        return sys.executable
    if not check.argv:
        return ""
    if check.shell:
        try:
            words = shlex.split(check.argv[0])
        except ValueError:
            return ""
        return words[0] if words else ""
    return check.argv[0]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return ""


def _without_gate_table(path: Path, digest: str) -> str:
    """The digest of the gate's config file without its ``[tool.parex]`` table: the table
    counts through the definitions it makes, so adding a check reruns no other."""
    try:
        document = read_document(path)
    except ConfigError:
        return digest
    tool = document.get("tool")
    if isinstance(tool, dict):
        tool = {k: v for k, v in tool.items() if k != "parex"}
        document = {**document, "tool": tool}
    text = canonical_json(_jsonable(document))
    return "toml:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _jsonable(value: Any) -> Any:
    """TOML values as JSON data (dates and times as ISO text)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
