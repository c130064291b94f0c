"""Which files a check reads, and their content digests (pure: no pytest).

Three pieces, used by the result cache to build a check's key:

- :func:`project_files`: every file of the project, the safe default for a check that declares
  no ``reads``: what git tracks plus untracked files git does not ignore; outside git (or when
  git fails), a walk of the rootdir that leaves out VCS metadata, caches and virtualenvs.
- :func:`matching_files` / :class:`Scanner`: the files a check's ``reads`` globs name, matched
  against the file system (not the git listing: a check may well read ignored files such as
  ``data/*.csv`` or a generated ``build/schema.json``, and leaving them out of the key would
  replay a verdict on content that changed).
- :class:`FileIndex`: content digests behind a stat shortcut that is as safe as git's index: a
  stored digest is re-used only when size, mtime, ctime, inode and mode all match *and* the
  file was already old when it was hashed (see :meth:`FileIndex.digests`).

Every path handed out is relative to the rootdir, in posix form, so a cache restored on another
checkout or machine stays meaningful (its stat fields simply do not match, and content is
hashed again).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_parex.files import try_write_atomic

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

RACY_WINDOW_NS = 2_000_000_000
"""A digest is trusted through the stat shortcut only for a file whose mtime and ctime lie at
least this long before the moment it was hashed. Two seconds covers the coarsest timestamps in
use (FAT, and ext4/tmpfs whose kernel clock ticks in milliseconds): an edit made after the hash
then necessarily gets a different mtime or ctime."""

INDEX_FORMAT = 2
_CHUNK = 1 << 20
_DIGEST_SIZE = 20
# The digest of a path that could not be read: unique on every call, so a key that contains it
# never equals a stored one (an unreadable input must mean "run it", never "replay").
_UNREADABLE = "!unreadable:"
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


def is_unreadable(digest: str) -> bool:
    """Whether a digest from :meth:`FileIndex.digests` stands for a path that could not be read."""
    return digest.startswith(_UNREADABLE)


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
    at another repository). Untracked files inside the always-pruned
    directories (:data:`PRUNED_DIRS`, virtualenvs, ``*.egg-info``) are left out even when no
    ``.gitignore`` names them; a tracked file is always in. A submodule or a nested repository
    is listed through its own git (its files are part of the tree a check sees). Outside git,
    or when git is missing or fails: a walk of ``root`` that prunes the same directories and
    never follows a symlinked directory.

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
        self._git: threading.Thread | None = None
        # What _git_files returned, or what it raised (raised again by project_files).
        self._git_outcome: list[str] | BaseException | None = None

    def start_project_files(self) -> None:
        """Start git's listing for :meth:`project_files` in the background, so that ``git
        ls-files`` (its own process: a walk of the tree for untracked files) runs while this
        scanner matches ``reads`` patterns."""
        if self._git is not None:
            return
        root = Path(self.root)

        def list_with_git() -> None:
            try:
                self._git_outcome = _git_files(root)
            except BaseException as exc:  # handed to the caller of project_files
                self._git_outcome = exc

        self._git = threading.Thread(target=list_with_git, name="parex-git-ls-files", daemon=True)
        self._git.start()

    def project_files(self) -> list[str]:
        """:func:`project_files` of this scanner's root and excludes (a walk outside git
        fills the listings that ``reads`` matching then re-uses)."""
        self.start_project_files()
        assert self._git is not None
        self._git.join()
        listed = self._git_outcome
        if isinstance(listed, BaseException):
            raise listed
        if listed is None:
            return sorted(self.walk())
        if self.excluded.exact:
            exact, below = self.excluded.exact, self.excluded.prefixes
            listed = [p for p in listed if not p.startswith(below) and p not in exact]
        listed.sort()
        return listed

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
                    except OSError:
                        pass  # vanished while listed
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


# ------------------------------------------------------------------------------ digests


class FileIndex:
    """Content digests of files behind a stat shortcut (like git's index), persisted as JSON.

    An entry maps a path (relative to the rootdir given to :meth:`digests`; an absolute path,
    such as a tool's executable, is stored as such) to ``"size mtime_ns ctime_ns inode mode
    digest"``: one string, because JSON parses 5,000 strings several times faster than 5,000
    lists of large integers, and the shortcut only needs to compare the stat part with the
    file's current one. Only entries that were not racy when hashed are kept (a racy entry
    can never be re-used, see :meth:`digests`). One rootdir per index; not thread-safe.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], int] = time.time_ns,
        racy_window_ns: int = RACY_WINDOW_NS,
    ) -> None:
        self._entries: dict[str, str] = {}
        self._clock = clock
        self._window = racy_window_ns
        # Loaded entries are trusted only for files whose mtime and ctime lie a racy window
        # before the index file's own mtime (see load()); entries hashed in this process were
        # checked against our clock when they were stored.
        self._loaded_limit = -1
        self._fresh: set[str] = set()
        self._asked: list[list[str]] = []
        self._root = "."
        self.changed = False
        """Whether an entry was added, refreshed or dropped since loading."""
        self.hashed = 0
        """How many paths :meth:`digests` read since loading (for figures and tests)."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    # -------------------------------------------------------------------------- persistence

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        clock: Callable[[], int] = time.time_ns,
        racy_window_ns: int = RACY_WINDOW_NS,
    ) -> tuple[FileIndex, str | None]:
        """The index saved at ``path``: missing means empty (no warning); unreadable, corrupt or
        of another format means empty and a one-line warning. Never raises."""
        index = cls(clock=clock, racy_window_ns=racy_window_ns)
        try:
            with open(path, "rb") as fh:
                file_mtime = os.fstat(fh.fileno()).st_mtime_ns
                raw = fh.read()
        except FileNotFoundError:
            return index, None
        except OSError as exc:
            return index, f"parex: file index {path} unreadable ({exc.strerror}): hashing again"
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
                raise ValueError("another format")
            entries = data["entries"]
            # set(map(type, ...)): the check of 5,000 values in C, not a Python loop.
            if not isinstance(entries, dict) or not set(map(type, entries.values())) <= {str}:
                raise ValueError("bad entries")
        except (ValueError, TypeError, KeyError, RecursionError):
            return index, f"parex: file index {path} is corrupt: hashing again"
        index._entries = entries
        # The index file's mtime comes from the clock of the file system that stamps the files
        # too. When that clock lags ours by more than the window (a network or VM-shared file
        # system), our clock would call a file modified just before hashing old: git's rule,
        # comparing with the index file's own mtime, still holds then.
        index._loaded_limit = file_mtime - racy_window_ns
        return index, None

    def save(self, path: Path) -> str | None:
        """Write the index atomically (temp file + ``os.replace``) if anything changed. Entries
        not used since loading are kept while they still describe their file (a check that was
        deselected this time) and dropped once it is gone or changed, so deleted files do not
        pile up. Returns a one-line warning when it could not be written, None otherwise."""
        if not self.changed:
            return None
        used = set().union(*self._asked)
        for key in [k for k in self._entries if k not in used]:
            try:
                st = os.lstat(os.path.join(self._root, key))
            except OSError:
                st = None
            if st is None or not self._entries[key].startswith(_stat_prefix(st)):
                del self._entries[key]
        data = {"format": INDEX_FORMAT, "entries": dict(sorted(self._entries.items()))}
        warning = try_write_atomic(path, json.dumps(data, separators=(",", ":")).encode())
        if warning is None:
            self.changed = False
        return warning

    # -------------------------------------------------------------------------- digests

    def digests(self, root: Path, paths: Iterable[str]) -> dict[str, str]:
        """``{path: digest}`` of the given paths (relative to ``root``, or absolute).

        A stored digest is re-used only when the path's size, mtime_ns, ctime_ns, inode and
        mode all equal the stored ones and the entry is not *racy*: both timestamps lay at least
        :data:`RACY_WINDOW_NS` before the moment the content was read (for a loaded entry, also
        before the index file was written). Otherwise the content is hashed (blake2b, streamed)
        and the entry refreshed. Why each field: size and mtime catch ordinary edits; ctime
        catches an edit whose mtime was restored (a CI cache restore, ``touch -d``), since no
        user can set it; the inode catches a file replaced by a rename; the mode catches a
        ``chmod +x``. The racy rule is git's: an edit right after hashing, within one tick of
        the file system's clock, would keep all the stat fields.

        A regular file's digest covers its content and executable bit; a symlink's, the text it
        points to (like git; a symlinked directory is not followed). A path that vanished, or is
        a fifo, socket or device, is absent from the result. A path that cannot be read
        (permissions, a directory that could not be listed) gets a digest unique to this call
        (:func:`is_unreadable`), so no key holding it ever equals a stored one.
        """
        base = str(root)
        paths = list(paths)
        if paths and not os.path.isabs(paths[0]):
            # The rootdir of the relative keys, for save(); a call with absolute paths only
            # (a tool's executable, digested from a check's cwd) must not change it.
            self._root = base
        prefix = os.path.join(base, "")
        now = self._clock()
        trusted_before = now - self._window
        limit = self._loaded_limit
        buf: bytearray | None = None
        out: dict[str, str] = {}
        entries = self._entries
        get = entries.get
        fresh = self._fresh
        lstat = os.lstat
        self._asked.append(paths)
        for rel in paths:
            # The hot loop of a warm run: one lstat, one formatted string and one comparison
            # per file; everything else only for files that changed.
            if _WINDOWS:
                full = os.path.join(base, rel)
            else:
                full = rel if rel.startswith("/") else prefix + rel
            try:
                st = lstat(full)
            except (FileNotFoundError, NotADirectoryError):
                if entries.pop(rel, None) is not None:
                    self.changed = True
                continue
            except OSError:
                out[rel] = _unreadable()
                continue
            stat_prefix = (
                f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {st.st_mode} "
            )
            known = get(rel)
            if (
                known is not None
                and known.startswith(stat_prefix)
                and ((st.st_ctime_ns < limit and st.st_mtime_ns < limit) or rel in fresh)
            ):
                out[rel] = known[len(stat_prefix) :]
                continue
            if buf is None:
                buf = bytearray(_CHUNK)
            digest, hashed = _hash_path(full, st, buf)
            self.hashed += 1
            if digest is None:
                if entries.pop(rel, None) is not None:
                    self.changed = True
                continue
            out[rel] = digest
            if hashed is None:
                continue  # unreadable: nothing worth remembering
            if max(hashed.st_mtime_ns, hashed.st_ctime_ns) < trusted_before:
                value = _stat_prefix(hashed) + digest
                fresh.add(rel)
                if known != value:
                    entries[rel] = value
                    self.changed = True
            elif entries.pop(rel, None) is not None:
                # Racy: this entry can never be re-used; whatever was stored is stale.
                self.changed = True
        return out


def _stat_prefix(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {st.st_mode} "


def _unreadable() -> str:
    return _UNREADABLE + os.urandom(8).hex()


_WINDOWS = os.name == "nt"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def _hash_path(
    full: str, st: os.stat_result, buf: bytearray
) -> tuple[str | None, os.stat_result | None]:
    """(digest, stat to store) of one path; (None, None) when it vanished.

    When the path is swapped between ``lstat`` and ``open`` (a file replaced by a rename, a
    symlink or a fifo), starts over from a fresh ``lstat``, a few times at most before calling
    it unreadable: the stored stat must always describe the content that was hashed.
    """
    view = memoryview(buf)
    for _ in range(3):
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            try:
                target = os.readlink(os.fsencode(full))
            except FileNotFoundError:
                return None, None
            except OSError:
                return _unreadable(), None
            h = hashlib.blake2b(b"l\0", digest_size=_DIGEST_SIZE)
            h.update(target)
            return h.hexdigest(), st
        if stat.S_ISDIR(mode):
            # A directory here is one that could not be listed, or a file that became one.
            return _unreadable(), None
        if not stat.S_ISREG(mode):
            return None, None  # a fifo, a socket, a device: no content to read
        try:
            # O_NOFOLLOW and O_NONBLOCK: a path swapped for a symlink or a fifo since the lstat
            # must neither be followed nor block the gate.
            fd = os.open(full, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _BINARY)
        except FileNotFoundError:
            return None, None
        except OSError:
            try:
                again = os.lstat(full)
            except FileNotFoundError:
                return None, None
            except OSError:
                return _unreadable(), None
            if again.st_mode == mode and again.st_ino == st.st_ino:
                return _unreadable(), None  # permissions, not a swap
            st = again
            continue
        try:
            opened = os.fstat(fd)
            if opened.st_ino != st.st_ino or not stat.S_ISREG(opened.st_mode):
                st = os.lstat(full)
                continue
            h = hashlib.blake2b(b"x\0" if mode & 0o111 else b"f\0", digest_size=_DIGEST_SIZE)
            with open(fd, "rb", buffering=0, closefd=False) as fh:
                while n := fh.readinto(buf):
                    h.update(view[:n])
            return h.hexdigest(), st
        except FileNotFoundError:
            return None, None
        except OSError:
            return _unreadable(), None
        finally:
            os.close(fd)
    return _unreadable(), None
