"""Which programs, interpreters and installed code a check runs (pure: no pytest): the
identities the result cache keys a check's tools by."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_parex.cache.digests import FileIndex


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


@dataclass(frozen=True)
class InstalledCode:
    """What the distributions importable from a path are, by content."""

    versions: dict[str, str] = field(default_factory=dict)
    """``{normalised name: version}``, the first one on the path winning, as for imports."""
    content: dict[str, str] = field(default_factory=dict)
    """``{normalised name: digest}`` of each one's record of its files (``RECORD``: the hash
    of every file pip installed): a package rebuilt and reinstalled at the same version has
    another."""
    sources: tuple[str, ...] = ()
    """Directories of projects installed in development mode (PEP 610 ``direct_url.json``
    with ``editable``, ``.egg-link`` files): their files are the code that runs."""


def installed_code(
    path: Sequence[str] | None = None, index: FileIndex | None = None
) -> InstalledCode:
    """The distributions importable from ``path`` (default ``sys.path``), by name, version and
    content (:class:`InstalledCode`).

    Names and versions come from the metadata directory names (``name-version.dist-info``, as
    the packaging spec for installed projects writes them): asking ``importlib.metadata`` for
    each parses every METADATA file, about 2.5 ms per distribution, while a directory listing
    per path entry takes under 1 ms. Contents are the digests of each record file through
    ``index`` (one ``lstat`` each on a warm run). Nothing is cached across runs: an install
    between two runs must show.
    """
    from importlib import metadata

    versions: dict[str, str] = {}
    records: dict[str, str] = {}
    sources: list[str] = []
    for entry in sys.path if path is None else path:
        base = entry or "."
        try:
            with os.scandir(base) as it:
                names = sorted(
                    e.name for e in it if e.name.endswith((".dist-info", ".egg-info", ".egg-link"))
                )
        except OSError:
            continue  # a zip file or a missing directory: nothing installed there
        for dirname in names:
            full = os.path.join(base, dirname)
            if dirname.endswith(".egg-link"):
                sources.extend(_egg_link(full))
                continue
            m = _DIST_DIR.match(dirname)
            if m:
                name, version = normalise_distribution(m.group(1)), m.group(2)
            else:
                try:
                    dist = metadata.Distribution.at(full)
                    name, version = (
                        normalise_distribution(dist.metadata["Name"] or ""),
                        dist.version,
                    )
                except (OSError, KeyError, TypeError, ValueError):
                    continue
            if not name or name in versions:
                continue
            versions[name] = version
            records[name] = _record_file(full)
            if dirname.endswith(".dist-info"):
                sources.extend(_editable_source(full))
    found = (FileIndex() if index is None else index).digests(Path("/"), list(records.values()))
    content = {name: found.get(record, "none") for name, record in records.items()}
    return InstalledCode(
        dict(sorted(versions.items())), dict(sorted(content.items())), tuple(sources)
    )


def installed_distributions(path: Sequence[str] | None = None) -> dict[str, str]:
    """``{normalised name: version}`` of the distributions importable from ``path`` (default
    ``sys.path``): :attr:`InstalledCode.versions`."""
    return installed_code(path).versions


def _record_file(dist: str) -> str:
    """The file that lists what a distribution installed: ``RECORD`` in a ``.dist-info`` (the
    hash of every file), ``installed-files.txt``, ``SOURCES.txt`` or ``PKG-INFO`` in an
    ``.egg-info``, or the ``.egg-info`` file itself."""
    if dist.endswith(".dist-info"):
        return os.path.join(dist, "RECORD")
    for name in ("installed-files.txt", "SOURCES.txt", "PKG-INFO"):
        candidate = os.path.join(dist, name)
        if os.path.isfile(candidate):
            return candidate
    return os.path.abspath(dist)


def _editable_source(dist: str) -> list[str]:
    """The project directory of a distribution installed in development mode (PEP 610's
    ``direct_url.json`` with ``dir_info.editable``), or nothing."""
    try:
        with open(os.path.join(dist, "direct_url.json"), "rb") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(data, dict):
        return []
    info, url = data.get("dir_info"), data.get("url")
    if not (isinstance(info, dict) and info.get("editable") is True and isinstance(url, str)):
        return []
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "file":
        return []
    folder = urllib.request.url2pathname(parsed.path)
    return [folder] if os.path.isdir(folder) else []


def _egg_link(link: str) -> list[str]:
    """The project directory an ``.egg-link`` (``setup.py develop``) points to."""
    try:
        with open(link, encoding="utf-8", errors="surrogateescape") as fh:
            first = fh.readline().strip()
    except OSError:
        return []
    folder = os.path.join(os.path.dirname(link), first)
    return [os.path.normpath(folder)] if first and os.path.isdir(folder) else []


def external_path_entries(path: Sequence[str], rootdir: Path) -> list[str]:
    """The directories on an import path that hold neither the standard library nor installed
    distributions and lie outside ``rootdir``: ``PYTHONPATH`` entries, ``.pth`` path lines,
    pytest's ``pythonpath``, a sibling project on the path. What they hold is code a check may
    import, so their files are inputs (the standard library is the Python's version; the
    installed distributions are :func:`installed_code`)."""
    known = {os.path.realpath(p) for p in _interpreter_dirs()}
    root = os.path.realpath(rootdir)
    out: list[str] = []
    for entry in path:
        if not entry:
            continue
        real = os.path.realpath(entry)
        if real in known or real in out or not os.path.isdir(real):
            continue
        if real == root or real.startswith(root + os.sep) or real.endswith("lib-dynload"):
            continue
        try:
            with os.scandir(real) as it:
                if any(e.name.endswith(".dist-info") for e in it):
                    continue  # a site directory of its own (pip install --target)
        except OSError:
            continue
        out.append(real)
    return out


def _interpreter_dirs() -> list[str]:
    """This interpreter's standard library and site directories."""
    import site
    import sysconfig

    dirs = [v for k, v in sysconfig.get_paths().items() if k in _SYSCONFIG_KEYS]
    dirs += getattr(site, "getsitepackages", list)()  # not in some embedded interpreters
    user = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    return [*dirs, *([user] if isinstance(user, str) else [])]


_SYSCONFIG_KEYS = ("stdlib", "platstdlib", "purelib", "platlib")


def interpreter_of(executable: str, path_env: str | None, cwd: Path) -> str | None:
    """The Python that runs ``executable``: itself when it is one (``python3.12``), the
    interpreter its ``#!`` line names when it is a Python script (``#!/usr/bin/env python3``
    resolved through ``PATH``), else None (a binary such as ruff's, a shell script)."""
    name = os.path.basename(executable).lower()
    if re.fullmatch(r"python[0-9.]*(?:\.exe)?|pypy[0-9.]*(?:\.exe)?", name):
        return executable
    try:
        with open(executable, "rb") as fh:
            first = fh.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    if not words or not re.fullmatch(r"(?:python|pypy)[0-9.]*", os.path.basename(words[0])):
        return None
    if os.sep in words[0]:
        return words[0] if os.path.isfile(words[0]) else None
    return resolve_executable(words[0], path_env, cwd)


def same_interpreter(interpreter: str) -> bool:
    """Whether ``interpreter`` is the gate's own Python (its path, or the same virtualenv:
    ``.venv/bin/python3`` and ``.venv/bin/python``)."""
    mine = os.path.realpath(os.path.dirname(sys.executable))
    theirs = os.path.realpath(os.path.dirname(interpreter))
    if mine == theirs:
        return True
    return os.path.realpath(interpreter) == os.path.realpath(sys.executable) and not (
        _venv_root(interpreter) or _venv_root(sys.executable)
    )


def _venv_root(interpreter: str) -> str | None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(interpreter)))
    return root if os.path.isfile(os.path.join(root, "pyvenv.cfg")) else None


def interpreter_path(interpreter: str) -> tuple[str, list[str]]:
    """Another Python's identity line and the directories its distributions are installed in.

    A virtualenv's (pipx, ``uv tool``, a project's ``.venv``) are read off its files: its
    ``pyvenv.cfg`` and ``lib/python*/site-packages``; any other interpreter is asked once
    (``-I -c 'import sys...'``, about 20 ms). A Python that cannot be asked is identified by
    its path alone."""
    root = _venv_root(interpreter)
    if root is not None:
        try:
            with open(os.path.join(root, "pyvenv.cfg"), encoding="utf-8", errors="replace") as fh:
                cfg = fh.read()
        except OSError:
            cfg = ""
        found = re.search(r"^\s*version(?:_info)?\s*=\s*(\S+)", cfg, re.MULTILINE)
        sites = sorted(
            str(p)
            for pattern in (
                "lib/python*/site-packages",
                "lib64/python*/site-packages",
                "Lib/site-packages",
            )
            for p in Path(root).glob(pattern)
        )
        label = f"python {found.group(1) if found else '?'} {interpreter}"
        return label, sites
    try:
        done = subprocess.run(
            [interpreter, "-I", "-c", _ASK_PATH],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
        data = json.loads(done.stdout)
        version, entries = str(data["version"]), [str(e) for e in data["path"]]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return f"python ? {interpreter}", []
    return f"python {version} {interpreter}", entries


_ASK_PATH = (
    "import json, platform, sys; "
    "print(json.dumps({'version': platform.python_version(), 'path': sys.path}))"
)


def python_identity() -> str:
    """``"cpython 3.11.7 /path/to/python"``: the implementation, its version and the executable
    (a venv's path, so another venv of the same Python is another identity)."""
    return f"{sys.implementation.name} {platform.python_version()} {sys.executable}"
