"""Content digests of files behind a racy-safe stat shortcut (pure: no pytest).

:class:`FileIndex` works like git's index: a stored digest is re-used only when size, mtime,
ctime, inode and mode all match *and* the file was already old when it was hashed (see
:meth:`FileIndex.digests`); otherwise the content is hashed again. Persisted as JSON under
pytest's cache directory; one rootdir per index.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pytest_parex.files import try_write_atomic

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


def is_unreadable(digest: str) -> bool:
    """Whether a digest from :meth:`FileIndex.digests` stands for a path that could not be read."""
    return digest.startswith(_UNREADABLE)


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
        # Every path asked for since loading: save() keeps their entries. A set, not the lists
        # asked for: a watch loop asks again every round.
        self._asked: set[str] = set()
        self._root = "."
        self.changed = False
        """Whether an entry was added, refreshed or dropped since loading."""
        self.hashed = 0
        """How many paths :meth:`digests` read since loading (for figures and tests)."""
        self.seen: dict[str, str] = {}
        """The stat signature of every path :meth:`digests` looked at, as it last looked (a
        symlink's: its own and its target's): a file rewritten while checks ran shows here
        even when its content was changed back."""
        self.dir_links: dict[str, str] = {}
        """Symlinks :meth:`digests` met that point to a directory: path -> the directory's
        real path. The key builder lists what they hold (the link's digest covers only its
        text)."""

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
        used = self._asked
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
        holds and what it points to: the content of a file (wherever it is), or the real path of
        a directory (recorded in :attr:`dir_links`; its files are the caller's to list). A
        symlink's digest is never stored: its own stat says nothing of its target's. Every
        path's stat signature lands in :attr:`seen`. A path that vanished, or is
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
        seen = self.seen
        lstat = os.lstat
        self._asked.update(paths)
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
            seen[rel] = stat_prefix
            known = get(rel)
            if (
                known is not None
                and known.startswith(stat_prefix)
                and ((st.st_ctime_ns < limit and st.st_mtime_ns < limit) or rel in fresh)
            ):
                out[rel] = known[len(stat_prefix) :]
                continue
            if stat.S_ISLNK(st.st_mode):
                # Never stored: the link's own stat does not change when its target does.
                linked = self._link(full, rel, st)
                if linked is not None:
                    out[rel] = linked
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

    def _link(self, full: str, rel: str, st: os.stat_result) -> str | None:
        """The digest of a symlink: the text it holds and what it points to -- a file's
        content (through this index, under the file's real path), a directory's real path
        (its files are listed by the key builder, :attr:`dir_links`), or nothing. None when
        the link vanished."""
        self.hashed += 1
        try:
            text = os.readlink(os.fsencode(full))
        except FileNotFoundError:
            return None
        except OSError:
            return _unreadable()
        h = hashlib.blake2b(b"l\0", digest_size=_DIGEST_SIZE)
        h.update(text)
        real = os.path.realpath(full)
        try:
            target = os.stat(real)
        except FileNotFoundError:
            h.update(b"\0dangling")
            self.seen[rel] = _stat_prefix(st)
            return h.hexdigest()
        except OSError:  # a loop of links, a directory it may not enter
            return _unreadable()
        self.seen[rel] = _stat_prefix(st) + "-> " + _stat_prefix(target)
        if stat.S_ISDIR(target.st_mode):
            self.dir_links[rel] = real
            h.update(b"\0dir\0" + os.fsencode(real))
        elif stat.S_ISREG(target.st_mode):
            content = self.digests(Path(real).parent, [real]).get(real)
            if content is None or is_unreadable(content):
                return _unreadable()
            h.update(b"\0file\0" + content.encode())
        return h.hexdigest()


def stat_signature(full: str) -> str | None:
    """The stat signature of a path as :attr:`FileIndex.seen` records it (a symlink's: its own
    and its target's), or None when it does not exist."""
    try:
        st = os.lstat(full)
    except OSError:
        return None
    if not stat.S_ISLNK(st.st_mode):
        return _stat_prefix(st)
    try:
        target = os.stat(full)
    except OSError:
        return _stat_prefix(st)
    return _stat_prefix(st) + "-> " + _stat_prefix(target)


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
            # Swapped for a symlink since digests() looked (it digests links itself): this
            # run cannot say what was read.
            return _unreadable(), None
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
