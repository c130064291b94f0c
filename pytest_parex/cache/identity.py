"""Which programs, interpreters and installed code a check runs (pure: no pytest): the
identities the result cache keys a check's tools by."""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from collections.abc import Sequence
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
