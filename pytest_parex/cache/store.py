"""The on-disk store of the result cache (pure: no pytest): passes, content-addressed.

An entry is one pass of one check: filed under the digest of the check's name and its key
(:meth:`KeyParts.digest`), so a check has as many entries as the states it passed on -- a
branch switched away and back finds its passes again. Each entry carries the full key it
answers (the canonical JSON of the parts, read back to explain a miss; the key's digest is
checked against the one asked for) and a digest of its own content (checked on every read):
a damaged, truncated or misfiled entry is a miss with a one-line warning, never an exception
and never a false replay. A small *head* per check says how its last run ended (a pass, or
the status that removed it) and where its last pass is, to explain a miss ("src/a.py
changed").

The store is bounded by size and age: entries unused for longer than ``max_age`` go, then the
least recently used ones until the rest fit in ``max_bytes`` (an entry's mtime is when it was
written or last replayed). Writes go through a temp file and ``os.replace``, so gates sharing
a store (concurrent runs, a CI cache, a team's path) see whole entries or none. Entries hold
paths relative to the rootdir and nothing that depends on wall-clock time for validity, so a
store restored on another checkout works. A read-only store (untrusted builds) writes nothing:
no entry, no head, no recency.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_parex.cache.key import KeyParts, canonical_json
from pytest_parex.cache.reasons import NOT_PASSED, explain, printable
from pytest_parex.files import try_write_atomic

FORMAT = 3
"""Version of the store's layout (3: content-addressed entries and heads)."""

ENTRIES = "entries"
HEADS = "heads"
SUFFIX = ".entry"

DEFAULT_MAX_OUTPUT = 256 * 1024
"""Bytes of a check's output kept in its entry (the last ones: the end of a log says most)."""
MAX_PLAIN = 512 * 1024 * 1024
"""An entry never expands to more than this (a crafted one cannot exhaust memory)."""
STALE_TEMP = 3600.0
"""Seconds after which a temp file a killed writer left behind is removed."""


@dataclass(frozen=True)
class Entry:
    """One stored pass."""

    name: str
    digest: str
    """The digest of the parts it passed with (its key)."""
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
    address: str = ""
    """Where it is filed (:meth:`Store.address`)."""
    raw_parts: bytes = field(repr=False, default=b"")

    def parts(self) -> KeyParts | None:
        """The parts it passed with, or None when they do not read back as its key."""
        try:
            parts = KeyParts.from_dict(json.loads(self.raw_parts))
        except (ValueError, TypeError, RecursionError):
            return None
        return parts if parts.digest() == self.digest else None


@dataclass(frozen=True)
class Lookup:
    """What the store answers for one check and its current key."""

    entry: Entry | None = None
    """The pass filed under this key: replay it."""
    reason: str = "no earlier pass"
    """"cached", or why the check runs ("src/a.py changed", "last run failed")."""
    warnings: tuple[str, ...] = ()
    """One line for each entry that was there but could not be used."""

    @property
    def replayable(self) -> bool:
        return self.entry is not None


@dataclass(frozen=True)
class Head:
    """How a check's last recorded run ended, and where its last pass is."""

    status: str
    key: str
    address: str | None


class Store:
    """Passes of every check, content-addressed, in ``directory`` (see the module's doc)."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        max_age: float,
        read_only: bool = False,
        max_output: int = DEFAULT_MAX_OUTPUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.read_only = read_only
        self.max_output = max_output
        self._clock = clock

    # -------------------------------------------------------------------------- names

    @staticmethod
    def address(name: str, digest: str) -> str:
        """Where the pass of ``name`` with key ``digest`` is filed: two checks with equal
        definitions and inputs keep entries of their own (their results name them)."""
        text = f"parex-entry\0{name}\0{digest}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(text).hexdigest()

    def entry_path(self, address: str) -> Path:
        return self.directory / ENTRIES / address[:2] / f"{address[2:]}{SUFFIX}"

    def head_path(self, name: str) -> Path:
        """The head of a check: a readable slug of its name (names may hold ``[``, ``/`` and
        any character) and a hash of the exact name, so two names never share a file."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:48] or "check"
        tag = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return self.directory / HEADS / f"{slug}-{tag}.json"

    # -------------------------------------------------------------------------- reading

    def lookup(self, name: str, current: KeyParts) -> Lookup:
        """The pass of ``name`` filed under ``current``'s digest, or why there is none.
        Never raises."""
        warnings: list[str] = []
        address = self.address(name, current.digest())
        entry = self._read(address, name, current, warnings)
        if entry is not None:
            return Lookup(entry, "cached", tuple(warnings))
        return Lookup(None, self._why(name, current, warnings), tuple(warnings))

    def _why(self, name: str, current: KeyParts, warnings: list[str]) -> str:
        head = self._head(name, warnings)
        if head is None:
            return "earlier entry unreadable" if warnings else "no earlier pass"
        if head.status in NOT_PASSED:
            return explain(None, current, last_status=head.status)
        if head.address is None:
            return "no earlier pass"
        previous = self._read(head.address, name, None, warnings)
        if previous is None:
            return "earlier pass unreadable" if warnings else "no earlier pass"
        parts = previous.parts()
        if parts is None:
            return "earlier pass unreadable"
        why = explain(parts, current, last_status=None)
        return "earlier entry unreadable" if why == "unchanged" else why

    def _head(self, name: str, warnings: list[str]) -> Head | None:
        path = self.head_path(name)
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            warnings.append(self._warn(name, f"is unreadable ({exc.strerror or exc})"))
            return None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            data = None
        if (
            not isinstance(data, dict)
            or data.get("format") != FORMAT
            or data.get("name") != name
            or not isinstance(data.get("status"), str)
            or not isinstance(data.get("key"), str)
            or not isinstance(data.get("address"), (str, type(None)))
        ):
            warnings.append(self._warn(name, "has a damaged head"))
            return None
        return Head(data["status"], data["key"], data["address"])

    def _read(
        self, address: str, name: str, current: KeyParts | None, warnings: list[str]
    ) -> Entry | None:
        """The entry at ``address`` if it is whole and, with ``current``, answers that key."""
        path = self.entry_path(address)
        try:
            with open(path, "rb") as fh:
                used = os.fstat(fh.fileno()).st_mtime
                raw = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            warnings.append(self._warn(name, f"is unreadable ({exc.strerror or exc})"))
            return None
        try:
            return self._parse(raw, name, current, address, used)
        except _Damaged as exc:
            warnings.append(self._warn(name, str(exc)))
            return None

    def _warn(self, name: str, what: str) -> str:
        return f"parex cache: the entry of {printable(name)!r} {what}: it runs"

    def _parse(
        self, raw: bytes, name: str, current: KeyParts | None, address: str, used: float
    ) -> Entry:
        line, sep, body = raw.partition(b"\n")
        try:
            header = json.loads(line)
        except (ValueError, RecursionError):
            raise _Damaged("is corrupt") from None
        if not isinstance(header, dict):
            raise _Damaged("is corrupt")
        if header.get("format") != FORMAT:
            raise _Damaged(f"has format {printable(str(header.get('format')))}, not {FORMAT}")
        if not sep or header.get("size") != len(body):
            raise _Damaged("has the wrong size")
        if header.get("sha256") != hashlib.sha256(body).hexdigest():
            raise _Damaged("does not match its own digest (damaged or altered)")
        try:
            inflate = zlib.decompressobj()
            plain = inflate.decompress(body, MAX_PLAIN)
            if inflate.unconsumed_tail or not inflate.eof:
                raise _Damaged("is corrupt")
        except zlib.error:
            raise _Damaged("is corrupt") from None
        pieces = plain.split(b"\n", 2)
        if len(pieces) != 3:
            raise _Damaged("is corrupt")
        meta_line, raw_parts, output_line = pieces
        try:
            meta = json.loads(meta_line)
            text = json.loads(output_line)
        except (ValueError, RecursionError):
            raise _Damaged("is corrupt") from None
        if not isinstance(meta, dict) or meta.get("name") != name:
            raise _Damaged("belongs to another check")
        digest, result = meta.get("key"), meta.get("result")
        created, dropped = meta.get("created"), meta.get("output_dropped")
        if not (
            isinstance(digest, str)
            and isinstance(result, dict)
            and type(dropped) is int
            and dropped >= 0
            and isinstance(created, (int, float))
            and isinstance(text, str)
        ):
            raise _Damaged("is corrupt")
        if self.address(name, digest) != address:
            raise _Damaged("is filed under another key")
        # The digest is the key (sha256 of every part); the entry's own digest above vouches
        # that the key it carries is the one it was written with. Comparing the carried key
        # byte for byte as well would encode 50,000 paths as JSON on every warm lookup.
        if current is not None and digest != current.digest():
            raise _Damaged("does not hold the key it is filed under")
        try:
            output = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # not a string we wrote
            raise _Damaged("is corrupt") from None
        return Entry(
            name=name,
            digest=digest,
            result=result,
            output=output,
            output_dropped=dropped,
            created=float(created),
            used=used,
            address=address,
            raw_parts=raw_parts,
        )

    # -------------------------------------------------------------------------- writing

    def record_pass(
        self, name: str, parts: KeyParts, result: Mapping[str, Any], output: bytes
    ) -> str | None:
        """File a pass of ``name`` with the parts it ran with (computed *before* it started),
        the result to replay (JSON data) and its output (the last :attr:`max_output` bytes are
        kept); its head then points at it. Returns a one-line warning when it could not be
        written (a full disk, a result that is not JSON data): the gate goes on, the check
        simply is not cached."""
        if self.read_only:
            return None
        kept = output[-self.max_output :] if self.max_output > 0 else b""
        meta = {
            "name": name,
            "key": parts.digest(),
            "created": self._clock(),
            "result": dict(result),
            "output_dropped": len(output) - len(kept),
        }
        try:
            # NaN is allowed: json reads it back, and a figure may be one.
            meta_line = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            return f"parex cache: the result of {printable(name)!r} is not JSON data ({exc})"
        output_line = json.dumps(kept.decode("utf-8", "surrogateescape")).encode()
        body = zlib.compress(b"\n".join([meta_line, parts.canonical(), output_line]), 1)
        header = {"format": FORMAT, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
        address = self.address(name, parts.digest())
        warning = try_write_atomic(
            self.entry_path(address), canonical_json(header).encode() + b"\n" + body
        )
        if warning is not None:
            return _cache_warning(warning)
        return self._write_head(name, "passed", parts.digest(), address)

    def record_not_passed(self, name: str, status: str, parts: KeyParts) -> str | None:
        """Its last run at ``parts`` ended ``status`` (failed, flaky, timeout or error): a pass
        filed under that key is no longer trusted and goes; the head says why the next run
        runs it. A skipped or cancelled check reached no verdict: record nothing for it."""
        if status not in NOT_PASSED:
            raise ValueError(f"{status!r} is not one of {', '.join(NOT_PASSED)}")
        if self.read_only:
            return None
        with contextlib.suppress(OSError):
            os.unlink(self.entry_path(self.address(name, parts.digest())))
        previous = self._head(name, [])
        return self._write_head(
            name, status, parts.digest(), previous.address if previous is not None else None
        )

    def _write_head(self, name: str, status: str, key: str, address: str | None) -> str | None:
        head = {
            "format": FORMAT,
            "name": name,
            "status": status,
            "key": key,
            "address": address,
            "time": self._clock(),
        }
        warning = try_write_atomic(self.head_path(name), canonical_json(head).encode() + b"\n")
        return _cache_warning(warning) if warning else None

    def mark_used(self, entry: Entry) -> None:
        """Note that ``entry`` was replayed (eviction drops the least recently used)."""
        if self.read_only or not entry.address:
            return
        with contextlib.suppress(OSError):
            os.utime(self.entry_path(entry.address))

    # -------------------------------------------------------------------------- bounds

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last used, size, path) of every entry; removes temp files a killed writer left
        behind once they are :data:`STALE_TEMP` seconds old."""
        found: list[tuple[float, int, Path]] = []
        stale = self._clock() - STALE_TEMP
        try:
            subdirs = [e.path for e in os.scandir(self.directory / ENTRIES) if e.is_dir()]
        except OSError:
            return found
        for sub in subdirs:
            try:
                with os.scandir(sub) as it:
                    listed = list(it)
            except OSError:
                continue
            for e in listed:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if e.name.endswith(SUFFIX):
                    found.append((st.st_mtime, st.st_size, Path(e.path)))
                elif e.name.endswith(".tmp") and st.st_mtime < stale:
                    with contextlib.suppress(OSError):
                        os.unlink(e.path)
        return found

    def evict(self) -> int:
        """Delete entries unused for longer than :attr:`max_age`, then the least recently
        used ones until the rest hold at most :attr:`max_bytes`; heads unused for as long go
        too. Returns how many entries were deleted. Nothing in a read-only store."""
        if self.read_only:
            return 0
        now = self._clock()
        oldest = now - self.max_age
        files = sorted(self.entries())
        total = sum(size for _, size, _ in files)
        removed = 0
        for used, size, path in files:
            if used >= oldest and total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed += 1
            total -= size
        try:
            heads = list(os.scandir(self.directory / HEADS))
        except OSError:
            heads = []
        for e in heads:
            with contextlib.suppress(OSError):
                if e.stat(follow_symlinks=False).st_mtime < oldest:
                    os.unlink(e.path)
        return removed

    def clear(self) -> None:
        """Delete every entry and head."""
        for sub in (ENTRIES, HEADS):
            shutil.rmtree(self.directory / sub, ignore_errors=True)


def _cache_warning(warning: str) -> str:
    """``parex: cannot write PATH (No space left on device)``, said of the cache."""
    return warning.replace("parex: cannot write", "parex cache: cannot write", 1) + (
        ": not cached this time"
    )


class _Damaged(Exception):
    """An entry file that cannot be used; ``str()`` says how, for the warning."""
