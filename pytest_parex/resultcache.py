"""The result cache (pure: no pytest): what a check's verdict depends on, why it must run, and
the on-disk store of its last pass.

- :class:`KeyParts`: everything that decides a check's verdict, in parts (so a miss can say
  which part changed); :meth:`KeyParts.digest` is the key.
- :func:`explain`: one short reason why a check runs ("src/a.py changed", "ruff 0.8.1 → 0.8.2").
- Helpers for the parts: :func:`executable_identity`, :func:`installed_distributions`,
  :func:`python_identity`, :func:`env_values`.
- :class:`ResultCache`: one JSON file per check holding its last pass (parts, result, output)
  or a tombstone saying its last run did not pass. A damaged, foreign or concurrently written
  entry is a miss with a one-line warning, never an exception and never a false replay: a
  lookup replays only when the digest of the caller's freshly computed parts equals the stored
  one, and the entry names its own check.

Nothing here depends on wall-clock time or absolute paths for validity, so a cache directory
restored on another checkout or machine (``actions/cache`` on ``.pytest_cache``) works.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_parex.files import try_write_atomic
from pytest_parex.inputs import FileIndex, is_unreadable

FORMAT = 1
"""Version of an entry file's layout; an entry of another version is a miss (with a warning)."""

DEFAULT_MAX_OUTPUT = 256 * 1024
"""Bytes of a check's output kept in its entry (the last ones: the end of a log says most)."""

NOT_PASSED = MappingProxyType(
    {
        "failed": "last run failed",
        "flaky": "last run was flaky",
        "timeout": "last run timed out",
        "error": "last run had an error",
    }
)
"""Statuses that remove a check's replayable pass, with the reason the next run gives."""

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


# ------------------------------------------------------------------------------ part helpers


def resolve_executable(program: str, path_env: str | None, cwd: Path) -> str | None:
    """The file the OS would start for ``program`` in ``cwd`` with ``PATH=path_env``: a path
    with a separator as given (relative to ``cwd``), a bare name searched in ``PATH`` (its
    relative entries, "" included, taken relative to ``cwd``, as the child process resolves
    them after changing into it). None when there is none."""
    seps = os.sep + (os.altsep or "")
    if any(s in program for s in seps):
        candidate = Path(program) if os.path.isabs(program) else cwd / program
        return str(candidate) if candidate.is_file() else None
    entries = (os.defpath if path_env is None else path_env).split(os.pathsep)
    search = os.pathsep.join(d if os.path.isabs(d) else str(cwd / d) for d in entries)
    return shutil.which(program, path=search)


def executable_identity(
    program: str, path_env: str | None, cwd: Path, *, index: FileIndex | None = None
) -> str:
    """Which program runs for ``program``: ``"RESOLVED -> REALPATH DIGEST"`` (the arrow part only
    when a symlink was followed), or ``"not found: PROGRAM"``.

    The content digest rather than (size, mtime, ctime) makes a fresh CI runner that installs
    the same tool again hit the cache; with ``index`` (the run's :class:`FileIndex`) the stat
    shortcut keeps it to one ``lstat`` per run. The resolved path stays in the identity because
    the same binary behaves differently elsewhere (a venv's ``python`` symlink, a
    ``python``'s stdlib found next to it). A console script's launcher changes when its package
    is reinstalled; the package's own code is covered by :func:`installed_distributions`.
    """
    resolved = resolve_executable(program, path_env, cwd)
    if resolved is None:
        return f"not found: {program}"
    real = os.path.realpath(resolved)
    # Not ``index or ...``: an empty index is falsy (it has a length).
    digest = (FileIndex() if index is None else index).digests(cwd, [real]).get(real)
    if digest is None:
        return f"not found: {program}"
    return f"{resolved} -> {real} {digest}" if real != resolved else f"{real} {digest}"


_DIST_DIR = re.compile(r"^([^-]+)-([^-]+?)(?:-[^-]*)?\.(?:dist|egg)-info$", re.IGNORECASE)


def normalise_distribution(name: str) -> str:
    """A distribution name normalised per PEP 503 (``Typing_Extensions``: ``typing-extensions``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions(path: Sequence[str] | None = None) -> dict[str, str]:
    """``{normalised name: version}`` of the distributions importable from ``path`` (default
    ``sys.path``), the first one on the path winning, as for imports.

    Read from the metadata directory names (``name-version.dist-info``, as the packaging spec
    for installed projects writes them): asking ``importlib.metadata`` for each name and
    version parses every METADATA file, about 2.5 ms per distribution on the machine this was
    measured on (100 ms for 41), while a directory listing per path entry takes under 1 ms.
    An ``.egg-info`` without a version in its name falls back to ``importlib.metadata``.
    Nothing is cached: an install between two runs must show.
    """
    from importlib import metadata

    out: dict[str, str] = {}
    for entry in sys.path if path is None else path:
        try:
            with os.scandir(entry or ".") as it:
                names = sorted(e.name for e in it if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue  # a zip file or a missing directory: nothing installed there
        for dirname in names:
            m = _DIST_DIR.match(dirname)
            if m:
                name, version = normalise_distribution(m.group(1)), m.group(2)
            else:
                try:
                    dist = metadata.Distribution.at(os.path.join(entry or ".", dirname))
                    name, version = (
                        normalise_distribution(dist.metadata["Name"] or ""),
                        dist.version,
                    )
                except (OSError, KeyError, TypeError, ValueError):
                    continue
            if name:
                out.setdefault(name, version)
    return dict(sorted(out.items()))


def python_identity() -> str:
    """``"cpython 3.11.7 /path/to/python"``: the implementation, its version and the executable
    (a venv's path, so another venv of the same Python is another identity)."""
    return f"{sys.implementation.name} {platform.python_version()} {sys.executable}"


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


# ------------------------------------------------------------------------------ reasons


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
    check's definition, the Python, installed distributions, tools, environment variables,
    then files. Deterministic; names and paths are escaped (:func:`printable`).
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


# ------------------------------------------------------------------------------ the store


@dataclass(frozen=True)
class Entry:
    """The last pass of a check, as stored."""

    name: str
    digest: str
    """The digest of the parts it passed with."""
    result: Mapping[str, Any]
    """What the gate stored about the result (builtins)."""
    output: bytes
    """The end of the check's output."""
    output_dropped: int
    """Bytes cut from the start of the output to keep the entry small (0: it is whole)."""
    created: float
    """``time.time()`` when it was recorded (for display only)."""
    used: float
    """When it was recorded or last replayed (the entry file's mtime; eviction order)."""
    raw_parts: str = field(repr=False, default="")

    def parts(self) -> KeyParts | None:
        """The parts it passed with, or None when that part of the entry is damaged (their
        digest must equal :attr:`digest`): only needed to explain a miss."""
        try:
            parts = KeyParts.from_dict(json.loads(self.raw_parts))
        except (ValueError, TypeError, RecursionError):
            return None
        return parts if parts.digest() == self.digest else None


@dataclass(frozen=True)
class Lookup:
    """What the cache knows about one check."""

    entry: Entry | None = None
    """Its last pass, when that was its last run."""
    last_status: str | None = None
    """The status of its last run when that did not pass (a key of :data:`NOT_PASSED`)."""
    warning: str | None = None
    """One line when the entry was there but could not be used."""

    def replayable(self, current: KeyParts) -> bool:
        """Whether the stored pass may stand in for running the check with ``current``."""
        return self.entry is not None and self.entry.digest == current.digest()

    def reason(self, current: KeyParts) -> str:
        """Why the check runs (:func:`explain`), or "cached" when it need not."""
        if self.replayable(current):
            return "cached"
        if self.entry is not None:
            previous = self.entry.parts()
            if previous is None:
                return "earlier pass unreadable"
            return explain(previous, current, last_status=None)
        if self.warning is not None and self.last_status is None:
            return "earlier entry unreadable"
        return explain(None, current, last_status=self.last_status)


class ResultCache:
    """The last pass of each check, one JSON file per check in ``directory``.

    An entry file holds three lines, so a lookup parses only what it needs: a header (format,
    check name, status, digest of the parts, the stored result, output size), the parts (read
    only to explain a miss) and the output. Writes go through a temp file in the same
    directory and ``os.replace``: a reader sees a whole old entry or a whole new one, never a
    mix, whatever other processes do at the same time. Every operation reports trouble as a
    one-line warning string; none raises for a damaged file or a failed write.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_entries: int,
        max_bytes: int,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        self.directory = directory
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_output = max_output

    def path(self, name: str) -> Path:
        """The entry file of a check: a readable slug of its name (names may hold ``[``, ``/``
        and any character) and a hash of the exact name, so two names never share a file."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:48] or "check"
        tag = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return self.directory / f"{slug}-{tag}.json"

    # -------------------------------------------------------------------------- reading

    def lookup(self, name: str) -> Lookup:
        """What is stored for ``name``. Never raises; a missing entry is a plain miss."""
        path = self.path(name)
        try:
            with open(path, "rb") as fh:
                used = os.fstat(fh.fileno()).st_mtime
                raw = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            return Lookup()
        except OSError as exc:
            return Lookup(warning=self._warn(name, f"is unreadable ({exc.strerror or exc})"))
        try:
            return self._parse(name, raw, used)
        except _Damaged as exc:
            return Lookup(warning=self._warn(name, str(exc)))

    def _warn(self, name: str, what: str) -> str:
        return f"parex cache: the entry of {printable(name)!r} {what}: it runs"

    def _parse(self, name: str, raw: bytes, used: float) -> Lookup:
        head, sep, rest = raw.partition(b"\n")
        try:
            header = json.loads(head)
        except (ValueError, RecursionError):
            raise _Damaged("is corrupt") from None
        if not isinstance(header, dict):
            raise _Damaged("is corrupt")
        if header.get("format") != FORMAT:
            raise _Damaged(f"has format {printable(str(header.get('format')))}, not {FORMAT}")
        if header.get("name") != name:
            raise _Damaged("belongs to another check")
        status = header.get("status")
        if status in NOT_PASSED:
            return Lookup(last_status=status)
        if status != "passed":
            raise _Damaged("is corrupt")
        digest, result, lengths = header.get("digest"), header.get("result"), header.get("lengths")
        created, dropped = header.get("created"), header.get("output_dropped")
        if not (
            isinstance(digest, str)
            and isinstance(result, dict)
            and isinstance(lengths, list)
            and len(lengths) == 2
            and all(type(n) is int and n >= 0 for n in lengths)
            and type(dropped) is int
            and isinstance(created, (int, float))
        ):
            raise _Damaged("is corrupt")
        # The lengths catch a truncated or padded file without parsing the parts.
        if not sep or len(rest) != lengths[0] + lengths[1] + 2:
            raise _Damaged("has the wrong size")
        raw_parts = rest[: lengths[0]].decode("ascii", "replace")
        try:
            text = json.loads(rest[lengths[0] + 1 : lengths[0] + 1 + lengths[1]])
        except (ValueError, RecursionError):
            raise _Damaged("is corrupt") from None
        try:
            output = text.encode("utf-8", "surrogateescape")
        except (AttributeError, UnicodeEncodeError):  # not a string, or not one we wrote
            raise _Damaged("is corrupt") from None
        entry = Entry(
            name=name,
            digest=digest,
            result=result,
            output=output,
            output_dropped=dropped,
            created=float(created),
            used=used,
            raw_parts=raw_parts,
        )
        return Lookup(entry=entry)

    # -------------------------------------------------------------------------- writing

    def record_pass(
        self, name: str, parts: KeyParts, result: Mapping[str, Any], output: bytes
    ) -> str | None:
        """Store a pass of ``name`` with the parts it ran with (computed *before* it started),
        the result to replay (JSON data) and its output (the last :attr:`max_output` bytes are
        kept). Returns a one-line warning when the entry could not be written (a result that is
        not JSON data included: the gate goes on, the check simply is not cached)."""
        kept = output[-self.max_output :] if self.max_output > 0 else b""
        parts_line = canonical_json(parts.to_dict()).encode()
        output_line = json.dumps(kept.decode("utf-8", "surrogateescape")).encode()
        header = {
            "format": FORMAT,
            "name": name,
            "status": "passed",
            "digest": parts.digest(),
            "created": time.time(),
            "result": dict(result),
            "output_dropped": len(output) - len(kept),
            "lengths": [len(parts_line), len(output_line)],
        }
        try:
            # NaN is allowed: json reads it back, and a figure may be one.
            head = json.dumps(header, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            return f"parex cache: the result of {printable(name)!r} is not JSON data ({exc})"
        return try_write_atomic(
            self.path(name), b"\n".join([head.encode(), parts_line, output_line, b""])
        )

    def record_not_passed(self, name: str, status: str) -> str | None:
        """Replace whatever is stored for ``name`` by a tombstone: its last run ended
        ``status`` (failed, flaky, timeout or error), so the next run must run it, saying
        why. A skipped or cancelled check reached no verdict: record nothing for it."""
        if status not in NOT_PASSED:
            raise ValueError(f"{status!r} is not one of {', '.join(NOT_PASSED)}")
        header = {"format": FORMAT, "name": name, "status": status, "created": time.time()}
        return try_write_atomic(self.path(name), canonical_json(header).encode() + b"\n")

    def mark_used(self, name: str) -> None:
        """Note that the stored pass was replayed (eviction drops the least recently used)."""
        with contextlib.suppress(OSError):
            os.utime(self.path(name))

    def evict(self) -> int:
        """Delete entries, least recently used first, until at most ``max_entries`` remain and
        they hold at most ``max_bytes``; remove temp files that writers left behind (a killed
        process) once they are an hour old. Returns how many entries were deleted."""
        files: list[tuple[float, str, int]] = []
        stale = time.time() - 3600
        try:
            with os.scandir(self.directory) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if e.name.startswith(".") and e.name.endswith(".tmp"):
                        if st.st_mtime < stale:
                            with contextlib.suppress(OSError):
                                os.unlink(e.path)
                    elif e.name.endswith(".json"):
                        files.append((st.st_mtime, e.name, st.st_size))
        except OSError:
            return 0
        files.sort()
        count, total = len(files), sum(f[2] for f in files)
        removed = 0
        for _, fname, size in files:
            if count <= self.max_entries and total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                os.unlink(self.directory / fname)
                removed += 1
            count -= 1
            total -= size
        return removed

    def clear(self) -> None:
        """Delete every entry (and leftover temp file)."""
        try:
            with os.scandir(self.directory) as it:
                names = [e.name for e in it if e.name.endswith((".json", ".tmp"))]
        except OSError:
            return
        for fname in names:
            with contextlib.suppress(OSError):
                os.unlink(self.directory / fname)


class _Damaged(Exception):
    """An entry file that cannot be used; ``str()`` says how, for the warning."""
