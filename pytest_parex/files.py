"""Files the gate writes and paths it shows (pure)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, *, durable: bool = True) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the whole new one,
    never a half-written one: a temporary file in the same directory, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:  # a report must survive a crash; a cache entry may just be lost
                fh.flush()
                os.fsync(fh.fileno())
        # mkstemp makes the file private (0600); a report is as readable as any other output.
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def publish(source: Path, path: Path) -> None:
    """Move ``source`` (a finished log) to ``path`` in one step: a reader of ``path`` sees the
    old file or the whole new one. Across file systems, a copy beside ``path`` is renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, path)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        os.unlink(source)


def try_write_atomic(path: Path, data: str | bytes) -> str | None:
    """:func:`write_atomic` for what the gate can do without (its caches): a one-line
    warning instead of an exception."""
    try:
        write_atomic(path, data, durable=False)
    except OSError as exc:
        return f"parex: cannot write {path} ({exc.strerror or exc})"
    return None


def relative_posix(path: str | Path, base: Path) -> str | None:
    """``path`` relative to ``base`` with forward slashes, or None when it lies outside.

    The literal paths first (cheap, no symlink surprises), then the resolved ones: tools
    report resolved paths while ``base`` may go through a link.
    """
    target = Path(path)
    for root, candidate in (
        (base.absolute(), target.absolute()),
        (base.resolve(), target.resolve()),
    ):
        try:
            return candidate.relative_to(root).as_posix()
        except ValueError:
            continue
    return None
