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

import bisect
import functools
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
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


# ``git ls-files -s`` prints a tracked path as "MODE OBJECT STAGE<TAB>PATH".
_BLOBS = re.compile(r"(?:^|(?<=\0))((?:100644|100755) [0-9a-f]{40,64} 0)\t([^\0]*)\0")
_STAGED = re.compile(r"([0-7]{6}) [0-9a-f]{40,64} ([0-3])\t")
_GITLINK = "160000"
_FS_ENCODING = sys.getfilesystemencoding()
# What git is told whatever its configuration says: compare every stat field (a file rewritten
# within a second must not look unchanged), and the executable bit.
_GIT_STRICT = ["-c", "core.checkStat=default", "-c", "core.trustctime=true"]
if os.name != "nt":
    _GIT_STRICT += ["-c", "core.fileMode=true"]


@dataclass(frozen=True)
class GitTree:
    """The tree under a rootdir as git sees it: one ``git ls-files -s`` (the index: every
    tracked file's blob) and one ``git status`` (which tracked files differ from it in the work
    tree, what is untracked, what is ignored), side by side. Paths relative to the rootdir."""

    clean: dict[str, str]
    """Tracked regular files whose work-tree content is the index's: path -> ``"MODE BLOB"``,
    a content digest git already holds (no file is read or stat'ed here for them)."""
    listed: list[str]
    """Every file of the project but the ignored ones: tracked (a deleted one too: digests
    leave it out), untracked and not ignored (not inside a pruned directory), and the files of
    submodules and nested repositories."""
    ignored: list[str]
    """What git ignores: files, and directories as ``"dir/"`` (git does not descend into them:
    a virtualenv costs one entry)."""


def _work_tree_top(root: str) -> str | None:
    """The top of the git work tree holding ``root`` (the nearest directory with a ``.git``),
    or None."""
    current = os.path.realpath(root)
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _git(root: str, *args: str) -> str | None:
    """The output of ``git ARGS`` run in ``root`` (without the variables that would point it at
    another repository, and without taking optional locks: the gate never writes the user's
    index), or None when git is missing or fails."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    try:
        proc = subprocess.run(
            ["git", *_GIT_STRICT, *args],
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
    return proc.stdout.decode(_FS_ENCODING, "surrogateescape")


def read_git_tree(root: Path) -> GitTree | None:
    """:class:`GitTree` of ``root``, or None outside a git work tree (or when git fails)."""
    base = str(root)
    top = _work_tree_top(base)
    if top is None:
        return None
    prefix = os.path.relpath(os.path.realpath(base), top).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix + "/"
    index: list[str | None] = [None]

    def list_index() -> None:
        index[0] = _git(base, "ls-files", "-z", "-s", "--cached")

    thread = threading.Thread(target=list_index, name="parex-git-index", daemon=True)
    thread.start()
    status = _git(
        base,
        "status",
        "--porcelain=v2",
        "-z",
        "--untracked-files=all",
        "--ignored=matching",
        "--no-renames",
        "--ignore-submodules=all",
        "--",
        ".",
    )
    thread.join()
    if status is None or index[0] is None:
        return None
    return _parse_tree(base, prefix, index[0], status)


def _parse_tree(base: str, prefix: str, index: str, status: str) -> GitTree:
    # The hot path of a warm run: thousands of tracked regular files at stage 0, found by one
    # C-level scan of the whole listing; the few other lines go through the loop below.
    pairs = _BLOBS.findall(index)
    clean = {path: head for head, path in pairs}
    listed = list(clean)
    unmerged: set[str] = set()
    if len(pairs) != index.count("\0"):
        for line in index.split("\0"):
            staged = _STAGED.match(line)
            if staged is None:
                continue
            rel = line[staged.end() :]
            if staged.group(2) != "0":  # an unmerged path, listed once per stage
                if rel not in unmerged:
                    unmerged.add(rel)
                    listed.append(rel)
            elif staged.group(1) == _GITLINK:
                listed.extend(_nested_files(base, rel))
            elif rel not in clean:  # a symlink (120000): digested from the work tree
                listed.append(rel)
    ignored: list[str] = []
    venvs: dict[str, bool] = {}
    cut = len(prefix)
    for entry in status.split("\0"):
        if not entry:
            continue
        kind = entry[0]
        if kind in "12u":
            fields = entry.split(" ", {"1": 8, "2": 9, "u": 10}[kind])
            path = fields[-1]
            if path.startswith(prefix) and (kind == "u" or fields[1][1] != "."):
                clean.pop(path[cut:], None)  # the work tree differs from the index
        elif kind in "?!" and entry[2:].startswith(prefix):
            rel = entry[2 + cut :]
            if kind == "!":
                ignored.append(rel)
                continue
            nested = rel.endswith("/")  # "nested/": a repository inside the tree
            rel = rel.rstrip("/")
            if _untracked_pruned(base, rel, venvs) or (nested and _pruned_dir(base, rel)):
                continue
            listed.extend(_nested_files(base, rel) if nested else [rel])
    for path in unmerged:
        clean.pop(path, None)
    return GitTree(clean, listed, ignored)


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
    return _within(base, rel, venvs, names=IGNORED_OUTPUT_DIRS, itself=True)


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
    return _within(base, rel, venvs, names=frozenset(), itself=False)


def _within(
    base: str, rel: str, venvs: dict[str, bool], *, names: frozenset[str], itself: bool
) -> bool:
    """Whether ``rel`` lies in a directory a walk prunes (by name, a virtualenv) or one named
    in ``names``; with ``itself``, ``rel`` counts as such a directory too. ``venvs`` caches
    which directories hold a ``pyvenv.cfg``."""
    parts = rel.split("/")
    for i in range(len(parts) if itself else len(parts) - 1):
        if _pruned_name(parts[i]) or parts[i] in names:
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
        self._git: threading.Thread | None = None
        # What read_git_tree returned, or what it raised (raised again by git_tree()).
        self._tree: GitTree | BaseException | None = None
        self._project: list[str] | None = None
        self._disk: tuple[list[str], set[str]] | None = None
        self._unwalked: list[str] = []
        self._configs: dict[str, list[str]] | None = None

    def start_project_files(self) -> None:
        """Start git's look at the tree (:func:`read_git_tree`: its own processes, which walk
        the tree for untracked and ignored files) in the background, so that it runs while
        this scanner does other work."""
        if self._git is not None:
            return
        root = Path(self.root)

        def read() -> None:
            try:
                self._tree = read_git_tree(root)
            except BaseException as exc:  # handed to the caller of git_tree
                self._tree = exc

        self._git = threading.Thread(target=read, name="parex-git", daemon=True)
        self._git.start()

    def git_tree(self) -> GitTree | None:
        """The tree as git sees it (None outside git): waits for :meth:`start_project_files`."""
        self.start_project_files()
        assert self._git is not None
        self._git.join()
        tree = self._tree
        if isinstance(tree, BaseException):
            raise tree
        return tree

    def clean(self) -> Mapping[str, str]:
        """Tracked files whose content is the index's: path -> ``"MODE BLOB"`` (empty outside
        git). Their digest needs no ``stat``: git has compared every stat field already."""
        tree = self.git_tree()
        return tree.clean if tree is not None else {}

    def project_files(self) -> list[str]:
        """:func:`project_files` of this scanner's root and excludes (a walk outside git
        fills the listings that ``reads`` matching then re-uses)."""
        if self._project is not None:
            return self._project
        tree = self.git_tree()
        if tree is None:
            self._project = sorted(self.walk())
            return self._project
        listed = list(tree.listed)
        if tree.ignored:
            listed.extend(self._ignored_inputs(listed, tree.ignored))
        if self.excluded.exact:
            exact, below = self.excluded.exact, self.excluded.prefixes
            listed = [p for p in listed if not p.startswith(below) and p not in exact]
        listed.sort()
        self._project = listed
        return listed

    def named(self, dirs: Iterable[str], names: Iterable[str]) -> list[str]:
        """The files called one of ``names`` in each of the directories ``dirs`` (relative;
        one directory listing each, shared by every caller of this scanner), excluded ones
        left out."""
        chosen = frozenset(names)
        out: list[str] = []
        for rel in dirs:
            if self.excluded(rel):
                continue
            listing = self._list(rel)
            if listing is None:
                out.append(rel)  # cannot be listed: an unreadable input
                continue
            prefix = rel + "/" if rel else ""
            out.extend(prefix + name for name in listing.files if name in chosen)
        return out

    def config_files(self, names: Sequence[str]) -> dict[str, list[str]] | None:
        """In a git work tree: every file on disk called one of ``names``, by directory
        (:meth:`_disk_files`); None elsewhere."""
        if self.git_tree() is None:
            return None
        if self._configs is None:
            files = self._disk_files(None)[0]
            ends = tuple("/" + name for name in names)
            top = frozenset(names)
            configs: dict[str, list[str]] = {}
            for path in [p for p in files if p.endswith(ends) or p in top]:
                configs.setdefault(path.rpartition("/")[0], []).append(path)
            self._configs = configs
        return self._configs

    def _disk_files(self, base: str | None) -> tuple[list[str], set[str]]:
        """In a git work tree: every file on disk a walk from ``base`` would find -- git's
        listing and what it ignores -- without what lies in pruned directories and
        virtualenvs or is excluded, sorted; and every directory holding one. What ``reads``
        globs are matched against, instead of walking the tree again. An ignored directory is
        walked only once a glob from ``base`` may reach into it (None: none is walked now)."""
        if self._disk is None:
            tree = self.git_tree()
            assert tree is not None
            venvs: dict[str, bool] = {}
            pruned: dict[str, bool] = {}  # directory -> whether a walk would prune it

            def kept(rel: str) -> bool:
                folder = rel.rpartition("/")[0]
                hidden = pruned.get(folder)
                if hidden is None:
                    hidden = pruned[folder] = bool(folder) and _untracked_pruned(
                        self.root, rel, venvs
                    )
                return not hidden

            excluded = self.excluded
            files: list[str] = [rel for rel in tree.listed if kept(rel) and not excluded(rel)]
            for entry in tree.ignored:
                rel = entry.rstrip("/")
                if excluded(rel) or not kept(rel):
                    continue
                if not entry.endswith("/"):
                    files.append(rel)
                elif not _pruned_dir(self.root, rel):
                    self._unwalked.append(rel)
            files.sort()
            self._disk = (files, set())
            self._add_dirs(files)
        reached = [
            d
            for d in self._unwalked
            if base is not None and (d.startswith(base) or base.startswith(d + "/"))
        ]
        if reached:
            self._unwalked = [d for d in self._unwalked if d not in reached]
            files, _ = self._disk
            found = [p for d in reached for p in self.walk(d)]
            files.extend(found)
            files.sort()
            self._add_dirs(found)
            self._configs = None  # found files may hold configuration files
        return self._disk

    def _add_dirs(self, files: Iterable[str]) -> None:
        assert self._disk is not None
        dirs = self._disk[1]
        for folder in {p.rpartition("/")[0] for p in files}:
            while folder and folder not in dirs:
                dirs.add(folder)
                folder = folder.rpartition("/")[0]

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
        """The files the globs name (see :func:`compile_pattern`), sorted, without duplicates.

        In a git work tree a wildcard glob is matched against :meth:`_disk_files` (what git
        lists and ignores), elsewhere against a walk from the glob's literal directory: the
        same files either way."""
        found: set[str] = set()
        for text in patterns:
            found.update(self._match(compile_pattern(text)))
        return sorted(found)

    def _through_link(self, base: str) -> bool:
        """Whether a glob's literal directory is, or lies below, a symlink: a walk from it
        follows the link, git's listing does not look behind it."""
        path = base
        while path:
            if os.path.islink(os.path.join(self.root, path)):
                return True
            path = path.rpartition("/")[0]
        return False

    def _match_listed(self, pat: Pattern) -> list[str]:
        files, dirs = self._disk_files(pat.base)
        full = pat.regex.fullmatch
        base = pat.base
        if base:
            below = base + "/"
            start = bisect.bisect_left(files, below)
            end = bisect.bisect_left(files, base + "0")  # "0" sorts right after "/"
            candidates = files[start:end]
            named_dirs = sorted(d for d in dirs if d.startswith(below) and full(d))
        else:
            candidates = files
            named_dirs = sorted(d for d in dirs if full(d))
        out = list(filter(full, candidates))
        # A pattern naming a directory names all it holds (like a literal path).
        for folder in named_dirs:
            lo = bisect.bisect_left(files, folder + "/")
            hi = bisect.bisect_left(files, folder + "0")
            out.extend(files[lo:hi])
        return out

    def _match(self, pat: Pattern) -> list[str]:
        if self.excluded(pat.base):
            return []
        if (
            not pat.literal
            and not pat.base.startswith("..")
            and not any(_pruned_name(part) for part in pat.base.split("/"))
            and not self._through_link(pat.base)
            and self.git_tree() is not None
        ):
            return self._match_listed(pat)
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


@functools.lru_cache(maxsize=1 << 16)
def compile_pattern(text: str) -> Pattern:
    """Compile a glob relative to the rootdir (memoised: a pre-commit hook's ``reads`` are its
    files, one literal pattern each, and most files are read by several hooks).

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
