"""The on-disk store of the result cache (pure: no pytest): one JSON file per check holding
its last pass (key parts, result, output) or a tombstone saying its last run did not pass.

A damaged, foreign or concurrently written entry is a miss with a one-line warning, never an
exception and never a false replay: a lookup replays only when the digest of the caller's
freshly computed parts equals the stored one, and the entry names its own check. Nothing here
depends on wall-clock time or absolute paths for validity, so a cache directory restored on
another checkout or machine (``actions/cache`` on ``.pytest_cache``) works.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_parex.cache.key import KeyParts, canonical_json
from pytest_parex.cache.reasons import NOT_PASSED, explain, printable
from pytest_parex.files import try_write_atomic

FORMAT = 2
"""Version of an entry file's layout (2: key parts with installed contents). An entry of an
older version is a plain miss ("earlier pass from an older pytest-parex"); of any other, a
miss with a warning."""

DEFAULT_MAX_OUTPUT = 256 * 1024
"""Bytes of a check's output kept in its entry (the last ones: the end of a log says most)."""


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
    older: bool = False
    """The entry was written by an older pytest-parex, whose key held less: a plain miss."""

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
        if self.older:
            return "earlier pass from an older pytest-parex"
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
        if isinstance(header.get("format"), int) and 0 < header["format"] < FORMAT:
            return Lookup(older=True)
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
