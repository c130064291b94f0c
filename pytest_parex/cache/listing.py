"""Which files a check reads (pure: no pytest).

- :func:`project_files`: every file of the project, the safe default for a check that declares
  no ``reads``: what git tracks plus untracked files git does not ignore; outside git (or when
  git fails), a walk of the rootdir that leaves out VCS metadata, caches and virtualenvs.
- :func:`matching_files` / :class:`Scanner`: the files a check's ``reads`` globs name, matched
  against the file system (not the git listing: a check may well read ignored files such as
  ``data/*.csv`` or a generated ``build/schema.json``, and leaving them out of the key would
  replay a verdict on content that changed).
- :func:`compile_pattern`: the ``reads``/``writes`` glob language.

Every path handed out is relative to the rootdir, in posix form, so a cache restored on another
checkout or machine stays meaningful.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PRUNED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        ".parex",
        "node_modules",
    }
)
"""Directory names a walk never enters: VCS metadata, caches and virtualenvs. Their content is
either not the project's, or rewritten by the checks themselves (``__pycache__``,
``.hypothesis``), which would make every key differ on every run. A directory holding a
``pyvenv.cfg`` and any ``*.egg-info`` directory are pruned as well."""

IGNORED_OUTPUT_DIRS = frozenset(
    {"build", "dist", "htmlcov", ".eggs", "site-packages", "wheelhouse", ".cache", ".coverage"}
)
"""Directories git ignores that hold what builds and checks *write* (build output, coverage
reports, caches): never searched for ignored inputs (a check that reads them names them in
``reads``)."""

LOADABLE_SUFFIXES = (".py", ".pyi", ".pyx", ".pxd", ".so", ".pyd", ".pth")
"""Files Python imports or loads: an ignored one is still an input (a generated
``_version.py``, an extension module built in place, a ``local_settings.py``)."""


def loadable(rel: str) -> bool:
    """Whether an ignored file is one a check may load: Python source, stubs, extension
    modules and ``.pth`` files, and environment files (``.env``, ``.env.local``, ``prod.env``)
    that tools such as python-dotenv and pytest-dotenv read."""
    name = rel.rsplit("/", 1)[-1]
    if name.endswith(LOADABLE_SUFFIXES) or ".so." in name:  # libfoo.so.1
        return True
    return name == ".env" or name.startswith(".env.") or name.endswith(".env")


# Variables that point git at another repository than the one holding the rootdir (a git hook
# sets some of them): the listing must be the one of the tree under the rootdir.
_GIT_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)


# ------------------------------------------------------------------------------ paths


def normalise_relpath(path: str) -> str:
    """A relative path in posix form without ``./`` parts or a trailing slash ("" = the root)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


@dataclass(frozen=True)
class _Excludes:
    """Paths (relative to the rootdir) left out with everything below them."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, exclude: Sequence[str]) -> _Excludes:
        # An empty entry would be the rootdir itself: excluding everything is never meant.
        norm = [e for e in (normalise_relpath(x) for x in exclude) if e]
        return cls(frozenset(norm), tuple(e + "/" for e in norm))

    def __call__(self, rel: str) -> bool:
        return rel in self.exact or rel.startswith(self.prefixes)


def _pruned_name(name: str) -> bool:
    return name in PRUNED_DIRS or name.endswith(".egg-info")


# ------------------------------------------------------------------------------ listing


def project_files(root: Path, *, exclude: Sequence[str] = ()) -> list[str]:
    """Every file of the project under ``root``: sorted posix paths relative to it.

    Inside a git work tree: the files git tracks plus the untracked files it does not ignore
    (``git ls-files --cached --others --exclude-standard``, run in ``root``, so a rootdir below
    the repository's top lists its own subtree, and without the variables that would point git
    at another repository), plus the ignored files a check may load all the same: every file
    inside the project's packages (directories with an ``__init__.py``: extension modules
    built in place, generated data) and, anywhere else, Python files, extension modules,
    ``.pth`` and ``.env`` files (:func:`loadable`) -- never inside virtualenvs, caches or
    build output (:data:`PRUNED_DIRS`, :data:`IGNORED_OUTPUT_DIRS`). Untracked files inside
    the always-pruned directories (:data:`PRUNED_DIRS`, virtualenvs, ``*.egg-info``) are left
    out even when no ``.gitignore`` names them; a tracked file is always in. A submodule or a
    nested repository is listed through its own git (its files are part of the tree a check
    sees). Outside git, or when git is missing or fails: a walk of ``root`` that prunes the
    same directories and never follows a symlinked directory (the key builder follows links
    to directories outside the rootdir, :mod:`pytest_parex.cache.key`).

    ``exclude`` (directories relative to ``root``: the gate's logs, its state, pytest's cache)
    is left out in both modes. A directory that cannot be listed appears as an entry itself:
    :meth:`FileIndex.digests` then reports it unreadable, so nothing is replayed on a listing
    that missed files. In git mode a tracked path deleted from the work tree is still listed
    (no ``lstat`` here): :meth:`FileIndex.digests` leaves it out of its result, which is the
    set of files that exist.

    Use :meth:`Scanner.project_files` to share directory listings with ``reads`` matching.
    """
    return Scanner(root, exclude=exclude).project_files()


# ``git ls-files -s`` prints a tracked path as "MODE OBJECT STAGE<TAB>PATH"; an untracked one
# (``--others``) as the bare path.
_STAGED = re.compile(r"([0-7]{6}) [0-9a-f]{40,64} ([0-3])\t")
_PLAIN = re.compile(r"(?:100644|100755|120000) [0-9a-f]{40,64} 0\t")
_GITLINK = "160000"
_FS_ENCODING = sys.getfilesystemencoding()


def _git_files(root: Path) -> list[str] | None:
    """The git listing of ``root``, or None when ``root`` is not in a work tree (or git fails).

    Nothing is stat'ed here: a path deleted from the work tree but still in git's index stays
    in the listing, and :meth:`FileIndex.digests` (which must ``lstat`` every path anyway)
    leaves it out. One ``lstat`` per file instead of two is a third of a warm key computation.
    """
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "-s", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    text = proc.stdout.decode(_FS_ENCODING, "surrogateescape")
    lines = text.split("\0")
    # The hot path of a warm run: thousands of tracked files, stage 0, not a gitlink. One
    # C-level match and one slice each; every other line goes through the loop below.
    matches = list(map(_PLAIN.match, lines))
    out = [line[m.end() :] for line, m in zip(lines, matches, strict=True) if m]
    venvs: dict[str, bool] = {}
    unmerged: set[str] = set()
    base = str(root)
    for line in [line for line, m in zip(lines, matches, strict=True) if m is None and line]:
        staged = _STAGED.match(line)
        if staged is None:  # untracked (--others)
            nested = line.endswith("/")  # "nested/": a repository inside the tree
            rel = line.rstrip("/")
            if _untracked_pruned(base, rel, venvs) or (nested and _pruned_dir(base, rel)):
                continue
            if nested:
                out.extend(_nested_files(base, rel))
            else:
                out.append(rel)
        elif staged.group(2) != "0":
            rel = line[staged.end() :]  # an unmerged path, listed once per stage
            if rel not in unmerged:
                unmerged.add(rel)
                out.append(rel)
        elif staged.group(1) == _GITLINK:
            out.extend(_nested_files(base, line[staged.end() :]))
    return out


def _git_ignored(root: Path) -> list[str] | None:
    """What git ignores under ``root``: files, and directories as a whole (``"dir/"``: git does
    not descend into an ignored directory, so a virtualenv costs one line). None when git
    fails."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    text = proc.stdout.decode(_FS_ENCODING, "surrogateescape")
    return [line for line in text.split("\0") if line]


def _in_package(rel: str, packages: set[str]) -> bool:
    """Whether ``rel`` lies below one of the ``packages`` directories."""
    cut = rel.rfind("/")
    while cut > 0:
        if rel[:cut] in packages:
            return True
        cut = rel.rfind("/", 0, cut)
    return False


def _output_dir(base: str, rel: str, venvs: dict[str, bool]) -> bool:
    """Whether an ignored path is, or lies in, a directory of what checks and builds write."""
    parts = rel.split("/")
    for i, part in enumerate(parts):
        if _pruned_name(part) or part in IGNORED_OUTPUT_DIRS:
            return True
        d = "/".join(parts[: i + 1])
        if d not in venvs:
            venvs[d] = os.path.isfile(os.path.join(base, d, "pyvenv.cfg"))
        if venvs[d]:
            return True
    return False


def _nested_files(base: str, rel: str) -> list[str]:
    """The files of a submodule or a nested repository: part of the tree a check sees, listed
    through its own git (an uninitialised submodule has none)."""
    full = os.path.join(base, rel)
    if not os.path.exists(os.path.join(full, ".git")):
        return []
    return [f"{rel}/{p}" for p in project_files(Path(full))]


def _pruned_dir(base: str, rel: str) -> bool:
    return _pruned_name(rel.rsplit("/", 1)[-1]) or os.path.isfile(
        os.path.join(base, rel, "pyvenv.cfg")
    )


def _untracked_pruned(base: str, rel: str, venvs: dict[str, bool]) -> bool:
    """Whether an untracked path lies in a directory a walk would prune."""
    parts = rel.split("/")
    for i in range(len(parts) - 1):
        if _pruned_name(parts[i]):
            return True
        d = "/".join(parts[: i + 1])
        if d not in venvs:
            venvs[d] = os.path.isfile(os.path.join(base, d, "pyvenv.cfg"))
        if venvs[d]:
            return True
    return False


@dataclass(frozen=True)
class _Listing:
    """A directory as the walk sees it."""

    files: list[str]
    """Names of regular files and symlinks (a symlinked directory included: never followed)."""
    dirs: list[str]
    """Names of real directories. Anything else (a fifo, a socket) is not an input."""
    venv: bool
    """Whether it holds a ``pyvenv.cfg``: a virtualenv, pruned like ``.venv``."""


class Scanner:
    """One look at the file system for one key computation.

    Directory listings are read once and shared by every pattern and every check matched
    through the same scanner; a walk prunes :data:`PRUNED_DIRS` and virtualenvs below the
    directories a pattern names literally, leaves ``exclude`` out always, and never follows a
    symlinked directory it discovers (the link itself is an input: its target text).
    """

    def __init__(self, root: Path, *, exclude: Sequence[str] = ()) -> None:
        self.root = str(root)
        self.excluded = _Excludes.of(exclude)
        self._listings: dict[str, _Listing | None] = {}
        self._git: list[threading.Thread] = []
        # What _git_files and _git_ignored returned, or what they raised (raised again by
        # project_files).
        self._git_outcome: list[str] | BaseException | None = None
        self._ignored_outcome: list[str] | BaseException | None = None

    def start_project_files(self) -> None:
        """Start git's listing for :meth:`project_files` in the background, so that ``git
        ls-files`` (its own process: a walk of the tree for untracked files) runs while this
        scanner matches ``reads`` patterns."""
        if self._git:
            return
        root = Path(self.root)

        def list_with_git() -> None:
            try:
                self._git_outcome = _git_files(root)
            except BaseException as exc:  # handed to the caller of project_files
                self._git_outcome = exc

        def list_ignored() -> None:
            try:
                self._ignored_outcome = _git_ignored(root)
            except BaseException as exc:
                self._ignored_outcome = exc

        # Two git processes side by side: the tracked and unignored files, and the ignored.
        self._git = [
            threading.Thread(target=list_with_git, name="parex-git-ls-files", daemon=True),
            threading.Thread(target=list_ignored, name="parex-git-ignored", daemon=True),
        ]
        for thread in self._git:
            thread.start()

    def project_files(self) -> list[str]:
        """:func:`project_files` of this scanner's root and excludes (a walk outside git
        fills the listings that ``reads`` matching then re-uses)."""
        self.start_project_files()
        for thread in self._git:
            thread.join()
        listed = self._git_outcome
        if isinstance(listed, BaseException):
            raise listed
        if listed is None:
            return sorted(self.walk())
        ignored = self._ignored_outcome
        if isinstance(ignored, BaseException):
            raise ignored
        if ignored:
            listed.extend(self._ignored_inputs(listed, ignored))
        if self.excluded.exact:
            exact, below = self.excluded.exact, self.excluded.prefixes
            listed = [p for p in listed if not p.startswith(below) and p not in exact]
        listed.sort()
        return listed

    def named(self, dirs: Iterable[str], names: Iterable[str]) -> list[str]:
        """The files called one of ``names`` in each of the directories ``dirs`` (relative;
        listed once per scanner), excluded ones left out."""
        wanted = frozenset(names)
        out: list[str] = []
        for rel in dirs:
            if self.excluded(rel):
                continue
            listing = self._list(rel)
            if listing is None:
                out.append(rel)  # cannot be listed: an unreadable input
                continue
            prefix = rel + "/" if rel else ""
            out.extend(prefix + name for name in listing.files if name in wanted)
        return out

    def _ignored_inputs(self, listed: list[str], ignored: list[str]) -> list[str]:
        """The ignored files that are inputs all the same (see :func:`project_files`).

        git lists an ignored directory as ``dir/``, and sometimes its files after it too (a
        directory whose files are ignored one by one): a directory is walked only when git
        did not list what it holds."""
        packages = {p[: -len("/__init__.py")] for p in listed if p.endswith("/__init__.py")}
        venvs: dict[str, bool] = {}
        entries = sorted(set(ignored))
        packages.update(e[: -len("/__init__.py")] for e in entries if e.endswith("/__init__.py"))
        found: set[str] = set()
        for i, entry in enumerate(entries):
            rel = entry.rstrip("/")
            if self.excluded(rel) or _output_dir(self.root, rel, venvs):
                continue
            if not entry.endswith("/"):
                if loadable(rel) or _in_package(rel, packages):
                    found.add(rel)
                continue
            if i + 1 < len(entries) and entries[i + 1].startswith(entry):
                continue  # its files are listed one by one
            below = self.walk(rel)
            packages.update(p[: -len("/__init__.py")] for p in below if p.endswith("/__init__.py"))
            found.update(p for p in below if loadable(p) or _in_package(p, packages))
        return sorted(found)

    def _list(self, rel: str) -> _Listing | None:
        """The entries of a directory, or None when it cannot be listed."""
        if rel in self._listings:
            return self._listings[rel]
        files: list[str] = []
        dirs: list[str] = []
        try:
            with os.scandir(os.path.join(self.root, rel)) as it:
                for e in it:
                    try:
                        # Files first: they are most entries, and one call decides them.
                        if e.is_file(follow_symlinks=False) or e.is_symlink():
                            files.append(e.name)
                        elif e.is_dir(follow_symlinks=False):
                            dirs.append(e.name)
                    except FileNotFoundError:
                        pass  # vanished while listed
                    except OSError:
                        # Cannot tell what it is: an input all the same, which digests()
                        # then reports unreadable (never silently left out of the key).
                        files.append(e.name)
        except (FileNotFoundError, NotADirectoryError):
            pass  # gone, or never there (a pattern's literal prefix): nothing to read
        except OSError:
            self._listings[rel] = None
            return None
        listing = _Listing(files, dirs, "pyvenv.cfg" in files)
        self._listings[rel] = listing
        return listing

    def _files(self, prefix: str, listing: _Listing) -> list[str]:
        paths = [prefix + name for name in listing.files]
        exact = self.excluded.exact
        return [p for p in paths if p not in exact] if exact else paths

    def _subdirs(self, prefix: str, listing: _Listing) -> list[str]:
        """The directories below to look into: not pruned by name, not excluded."""
        excluded = self.excluded
        return [
            prefix + name
            for name in listing.dirs
            if name not in PRUNED_DIRS
            and not name.endswith(".egg-info")
            and not excluded(prefix + name)
        ]

    def _is_venv(self, rel: str) -> bool:
        listing = self._list(rel)
        return listing is not None and listing.venv

    def walk(self, rel: str = "") -> list[str]:
        """Every file below the directory ``rel`` (pruned, excluded, symlinks not followed);
        a directory that cannot be listed is itself in the list (see :func:`project_files`)."""
        out: list[str] = []
        stack = [rel]
        while stack:
            current = stack.pop()
            listing = self._list(current)
            if listing is None:
                out.append(current)
                continue
            prefix = current + "/" if current else ""
            out.extend(self._files(prefix, listing))
            stack.extend(d for d in self._subdirs(prefix, listing) if not self._is_venv(d))
        return out

    def matching(self, patterns: Iterable[str]) -> list[str]:
        """The files the globs name (see :func:`compile_pattern`), sorted, without duplicates."""
        found: set[str] = set()
        for text in patterns:
            found.update(self._match(compile_pattern(text)))
        return sorted(found)

    def _match(self, pat: Pattern) -> list[str]:
        if self.excluded(pat.base):
            return []
        if pat.literal:
            try:
                st = os.lstat(os.path.join(self.root, pat.base))
            except OSError:
                return []  # absent: nothing to read (when it appears, the key changes)
            if stat.S_ISDIR(st.st_mode):
                return self.walk(pat.base)
            if stat.S_ISLNK(st.st_mode):
                # A link named literally is followed (the check reads through it); the link
                # itself is an input too. Links found below are not followed: no cycles.
                if os.path.isdir(os.path.join(self.root, pat.base)):
                    return [pat.base, *self.walk(pat.base)]
                return [pat.base]
            if stat.S_ISREG(st.st_mode):
                return [pat.base]
            return []
        full = pat.regex.fullmatch
        out: list[str] = []
        stack = [(pat.base, pat.base.count("/") + 1 if pat.base else 0)]
        while stack:
            current, depth = stack.pop()
            listing = self._list(current)
            if listing is None:
                out.append(current)
                continue
            prefix = current + "/" if current else ""
            out.extend(filter(full, self._files(prefix, listing)))
            deeper = pat.depth is None or depth + 1 < pat.depth
            for child in self._subdirs(prefix, listing):
                if full(child):
                    # A pattern naming a directory names all it holds (like a literal path).
                    if not self._is_venv(child):
                        out.extend(self.walk(child))
                elif deeper and not self._is_venv(child):
                    stack.append((child, depth + 1))
        return out


def walk_files(root: Path, *, exclude: Sequence[str] = ()) -> list[str]:
    """Every file under ``root`` by walking (the non-git listing of :func:`project_files`)."""
    return sorted(Scanner(root, exclude=exclude).walk())


def matching_files(
    root: Path, patterns: Sequence[str], *, exclude: Sequence[str] = ()
) -> list[str]:
    """The files under ``root`` that a check's ``reads`` globs name, sorted.

    Matched against the file system, from each pattern's literal prefix, not against the git
    listing: a check may read ignored files (``data/*.csv``), and an input left out of the key
    is a false replay waiting to happen. Below the literal prefix the walk prunes the same
    directories as :func:`project_files` (name them literally to read inside them, e.g.
    ``.venv/lib/**``); ``exclude`` is left out always. Use one :class:`Scanner` for several
    checks to list each directory once.
    """
    return Scanner(root, exclude=exclude).matching(patterns)


# ------------------------------------------------------------------------------ globs


@dataclass(frozen=True)
class Pattern:
    """A compiled ``reads`` glob."""

    text: str
    base: str
    """The literal directory (or, for a literal pattern, the path) the match starts from."""
    regex: re.Pattern[str]
    """Matches a whole relative posix path (a file, or a directory that then counts whole)."""
    depth: int | None
    """Number of path segments a match has, when the pattern has no ``**``."""
    literal: bool


_WILD = re.compile(r"[*?\[]")
_WINDOWS = os.name == "nt"


def compile_pattern(text: str) -> Pattern:
    """Compile a glob relative to the rootdir.

    ``**`` as a whole segment: any number of directories (none included); ``*``, ``?`` and
    ``[...]`` (``[!...]`` negates) within one segment, dot-files included; a pattern (literal or
    not) that names a directory names everything below it; ``./`` and backslashes are
    normalised; ``..`` is allowed at the start only (an input beside the project). Matching is
    case-sensitive. Raises ValueError for an absolute pattern or a ``..`` after a name.
    """
    raw = text.replace("\\", "/")
    if raw.startswith("/") or (_WINDOWS and os.path.isabs(text)):
        raise ValueError(f"{text!r}: a reads pattern must be relative to the rootdir")
    segs = [s for s in raw.split("/") if s not in ("", ".")]
    up = 0
    while up < len(segs) and segs[up] == "..":
        up += 1
    if ".." in segs[up:]:
        raise ValueError(f"{text!r}: '..' is allowed only at the start of a reads pattern")
    literal_count = 0
    for s in segs:
        if _WILD.search(s):
            break
        literal_count += 1
    literal = literal_count == len(segs)
    base = "/".join(segs if literal else segs[:literal_count])
    rx = []
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg == "**":
            rx.append(".*" if last else "(?:[^/]*/)*")
            continue
        rx.append(_translate_segment(seg))
        if not last:
            rx.append("/")
    depth = None if "**" in segs else len(segs)
    return Pattern(
        text=text,
        base=base,
        regex=re.compile("".join(rx), re.DOTALL),
        depth=depth,
        literal=literal,
    )


def _translate_segment(seg: str) -> str:
    out: list[str] = []
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        i += 1
        if c == "*":
            while i < n and seg[i] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and seg[j] in "!^":
                j += 1
            if j < n and seg[j] == "]":
                j += 1
            while j < n and seg[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))  # no closing bracket: a literal "["
                continue
            body = seg[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            # Escape what a regex class treats specially, except the range dash (and "&~|",
            # which Python warns may become set operators).
            body = re.sub(r"([\\\[\]^&~|])", r"\\\1", body)
            out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
        else:
            out.append(re.escape(c))
    return "".join(out)
