"""Watching the project for changes (pure: no pytest), for ``--parex-watch``.

:class:`Watcher` runs a thread around watchfiles (inotify, FSEvents, ReadDirectoryChangesW:
the Rust ``notify`` crate) and collects the paths that changed, relative to the rootdir,
debounced: a burst of writes (an editor's save, a ``git checkout``) arrives as one batch once
the tree has been quiet for :data:`STEP_MS`. What no check can read is never watched: VCS
metadata, caches, virtualenvs, ``.parex`` and the gate's own outputs (the directories a key's
walk prunes, :data:`pytest_parex.cache.listing.PRUNED_DIRS`). Everything else that changes is
handed over, and the result cache decides which checks it concerns -- a git-ignored file is
an input of a check only when the check may read it.

Each directory is watched on its own (not recursively): a recursive watch would put a watch
on every directory of a virtualenv or ``node_modules`` inside the project. A directory that
appears is watched from then on (the watch is rebuilt; its files were seen by the round its
creation triggered).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pytest_parex.cache.listing import PRUNED_DIRS, normalise_relpath

STEP_MS = 30
"""Milliseconds without a change that end a batch (an editor's save is one batch)."""
DEBOUNCE_MS = 1600
"""At most this many milliseconds of continuous changes are gathered into one batch."""
READY_MS = 200
"""The watching thread looks up from the OS's events at least this often (milliseconds)."""
INSTALL_HINT = "pip install 'pytest-parex[watch]'"


class WatchUnavailable(Exception):
    """watchfiles is not installed; ``str()`` is the one-line message."""


def load_watchfiles() -> Any:
    """watchfiles' Rust backend, ``RustNotify`` (documented as its backend API: a watcher
    whose watches are in place once it is built, and whose buffered events can be taken
    before it is closed), or :class:`WatchUnavailable` saying how to get it."""
    try:
        from watchfiles._rust_notify import RustNotify
    except ImportError:
        raise WatchUnavailable(
            f"--parex-watch needs watchfiles, which is not installed: {INSTALL_HINT}"
        ) from None
    return RustNotify


def _force_polling() -> bool:
    """watchfiles' own rule: ``WATCHFILES_FORCE_POLLING`` set (and not "false") polls, for
    file systems without events (some network mounts, containers' bind mounts)."""
    value = os.environ.get("WATCHFILES_FORCE_POLLING", "")
    return bool(value) and value.lower() not in ("false", "disable", "disabled")


def pruned(name: str) -> bool:
    """Whether a directory of this name is never watched (nothing in it is an input)."""
    return name in PRUNED_DIRS or name.endswith(".egg-info")


class Ignored:
    """Which paths (relative to the rootdir, posix) never concern a check: inside a pruned
    directory, or inside one of ``exclude`` (the gate's logs, reports, pytest's cache, the
    result cache's store)."""

    def __init__(self, exclude: Iterable[str] = ()) -> None:
        norm = [e for e in (normalise_relpath(x) for x in exclude) if e]
        self.exact = frozenset(norm)
        self.prefixes = tuple(e + "/" for e in norm)

    def __call__(self, rel: str) -> bool:
        if not rel or rel.startswith("../"):
            return True
        if rel in self.exact or rel.startswith(self.prefixes):
            return True
        return any(pruned(part) for part in rel.split("/")[:-1]) or pruned(rel.rsplit("/")[-1])


def directories(root: Path, ignored: Callable[[str], bool]) -> list[str]:
    """The directories to watch (relative to ``root``, "" for itself): every directory of the
    tree but the ignored ones and virtualenvs (a ``pyvenv.cfg``), symlinks not followed."""
    out: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else str(root)
        if rel and os.path.isfile(os.path.join(full, "pyvenv.cfg")):
            continue
        out.append(rel)
        try:
            with os.scandir(full) as it:
                subdirs = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for name in subdirs:
            child = f"{rel}/{name}" if rel else name
            if not pruned(name) and not ignored(child):
                stack.append(child)
    return sorted(out)


class Watcher:
    """A thread that watches ``root`` and gathers what changed (relative paths).

    :meth:`wait` blocks until a batch is there (or ``timeout``); :meth:`take` returns and
    clears everything gathered so far. ``on_change`` is called from the watching thread after
    each batch (the gate wakes its loop with it)."""

    def __init__(
        self,
        root: Path,
        ignored: Callable[[str], bool],
        *,
        on_change: Callable[[], None] = lambda: None,
        step_ms: int = STEP_MS,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        self.root = root
        self.ignored = ignored
        self.on_change = on_change
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.watched: list[str] = []
        self.batches = 0
        """How many batches of changes were gathered (a loop notices new ones by it)."""
        self.error: str | None = None
        """Why the watching thread stopped (None while it runs or after :meth:`stop`)."""
        self._notify = load_watchfiles()
        self._changed: dict[str, None] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._rebuild = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        """Start watching (in the background: :meth:`ready` says when the watches are in
        place)."""
        self._thread = threading.Thread(target=self._run, name="parex-watch", daemon=True)
        self._thread.start()

    def ready(self, timeout: float = 30.0) -> bool:
        """Wait until the watches are in place: changes from then on are seen."""
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._rebuild.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        with self._cond:
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until changes are gathered (or the watcher stopped, or ``timeout``); whether
        there are any."""
        with self._cond:
            if not self._changed and self.error is None:
                self._cond.wait(timeout)
            return bool(self._changed)

    def pending(self) -> bool:
        with self._cond:
            return bool(self._changed)

    def take(self) -> list[str]:
        """The paths that changed since the last call, in the order they were first seen."""
        with self._cond:
            taken = list(self._changed)
            self._changed.clear()
        return taken

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        notify: Any = None
        try:
            notify = self._open()
            self._ready.set()
            while not self._stop.is_set():
                raw = notify.watch(self.debounce_ms, self.step_ms, READY_MS, self._stop)
                if isinstance(raw, set):
                    self._gather(raw)
                if self._rebuild.is_set() and not self._stop.is_set():
                    # The new watches are in place before the old ones go, and what the old
                    # ones saw meanwhile is taken: no change falls between the two. What was
                    # written in a new directory before its watch existed is handed over as
                    # changed: a file created right after its directory is not lost.
                    self._rebuild.clear()
                    before = set(self.watched)
                    fresh = self._open()
                    left = notify.watch(self.debounce_ms, self.step_ms, 1, None)
                    notify.close()
                    notify = fresh
                    if isinstance(left, set):
                        self._gather(left)
                    self._gather((0, path) for path in self._files_in(set(self.watched) - before))
        except Exception as exc:  # the loop shows it; a watcher that died must not hang it
            with self._cond:
                self.error = f"{type(exc).__name__}: {exc}"
                self._cond.notify_all()
        finally:
            self._ready.set()
            if notify is not None:
                notify.close()

    def _open(self) -> Any:
        """Watches on every directory of the tree now (listed again when one vanishes
        between the listing and its watch)."""
        for _ in range(10):
            self.watched = directories(self.root, self.ignored)
            paths = [str(self.root / d) if d else str(self.root) for d in self.watched]
            try:
                return self._notify(paths, False, _force_polling(), 300, False, True)
            except FileNotFoundError:
                continue
        raise OSError(f"{self.root} keeps changing too fast to be watched")

    def _files_in(self, folders: Iterable[str]) -> list[str]:
        """The entries of ``folders`` (relative), as absolute paths."""
        found: list[str] = []
        for rel in sorted(folders):
            full = str(self.root / rel) if rel else str(self.root)
            try:
                with os.scandir(full) as it:
                    found.extend(e.path for e in it if not e.is_dir(follow_symlinks=False))
            except OSError:
                continue
        return found

    def _gather(self, batch: Iterable[tuple[Any, str]]) -> None:
        base = str(self.root)
        found: list[str] = []
        watched = set(self.watched)
        new_dir = False
        for _, path in sorted(batch, key=lambda change: change[1]):
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            if self.ignored(rel):
                continue
            if rel not in watched and os.path.isdir(path) and not os.path.islink(path):
                new_dir = True
            found.append(rel)
        if new_dir:
            self._rebuild.set()
        if not found:
            return
        with self._cond:
            self._changed.update(dict.fromkeys(found))
            self.batches += 1
            self._cond.notify_all()
        self.on_change()
