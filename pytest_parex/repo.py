"""The repository around the rootdir (git, read only): where CI systems start paths, and the
lines a pull request changed -- so the findings a reviewer can act on in the diff are shown
first.

Every question is answered "unknown" (None) rather than with an error: no git, no repository,
a shallow clone without the base branch. The gate's verdict never depends on it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

GIT_TIMEOUT = 30.0
ROOT_VARIABLES = ("GITHUB_WORKSPACE", "CI_PROJECT_DIR")
"""Where GitHub Actions and GitLab CI checked the repository out."""


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=false", *args],
            cwd=cwd,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "surrogateescape")


def _contains(outer: Path, inner: Path) -> bool:
    try:
        inner.resolve().relative_to(outer.resolve())
    except (ValueError, OSError):
        return False
    return True


def root(rootdir: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """The directory report paths are relative to: the CI checkout (``GITHUB_WORKSPACE``,
    ``CI_PROJECT_DIR``) when it holds the rootdir, else git's top level, else the rootdir."""
    for name in ROOT_VARIABLES:
        value = environ.get(name)
        if value and _contains(Path(value), rootdir):
            return Path(value).resolve()
    top = _git(rootdir, "rev-parse", "--show-toplevel")
    if top and top.strip():
        return Path(top.strip()).resolve()
    return rootdir.resolve()


def merge_base(repository: Path, base_ref: str) -> tuple[str | None, str]:
    """The merge base of HEAD with the pull request's base branch (``GITHUB_BASE_REF``), and
    the ref it was found on -- or None and why not."""
    if not base_ref:
        return None, "no base branch"
    for ref in (f"origin/{base_ref}", base_ref):
        found = _git(repository, "merge-base", "HEAD", ref)
        if found and found.strip():
            return found.strip(), ref
    return None, (
        f"no merge base of HEAD with origin/{base_ref} or {base_ref} "
        "(fetch the base branch: actions/checkout with fetch-depth: 0)"
    )


_FILE = re.compile(r"^\+\+\+ (?:\"b/(?P<quoted>.*)\"|b/(?P<path>.*?))\t?$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(?P<start>\d+)(?:,(?P<count>\d+))? @@")


def _unquote(text: str) -> str:
    """A path git quoted (C-style escapes, octal bytes) back to text."""
    raw = bytearray()
    i = 0
    simple = {"n": b"\n", "t": b"\t", '"': b'"', "\\": b"\\", "a": b"\a", "b": b"\b"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in "01234567" and re.match(r"[0-7]{3}", text[i + 1 : i + 4]):
                raw.append(int(text[i + 1 : i + 4], 8))
                i += 4
                continue
            raw += simple.get(nxt, nxt.encode())
            i += 2
            continue
        raw += ch.encode("utf-8", "surrogateescape")
        i += 1
    return raw.decode("utf-8", "replace")


def parse_diff(text: str) -> dict[str, list[tuple[int, int]]]:
    """``git diff --unified=0`` -> {path: [(first, last) line of the new side, ...]}: the
    lines added or changed. A file whose hunks only delete lines is listed without ranges."""
    changed: dict[str, list[tuple[int, int]]] = {}
    current: list[tuple[int, int]] | None = None
    for line in text.splitlines():
        if line.startswith("+++ "):
            match = _FILE.match(line)
            if match is None:  # +++ /dev/null: a deleted file
                current = None
                continue
            path = _unquote(match["quoted"]) if match["quoted"] is not None else match["path"]
            current = changed.setdefault(path, [])
            continue
        if current is None:
            continue
        hunk = _HUNK.match(line)
        if hunk:
            start = int(hunk["start"])
            count = int(hunk["count"]) if hunk["count"] is not None else 1
            if count > 0:
                current.append((start, start + count - 1))
    return changed


@dataclass(frozen=True)
class Changes:
    """The lines a pull request changed, by path relative to the repository."""

    lines: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    base: str = ""
    """What they were compared with (``origin/main``)."""

    def touches(self, path: str, line: int | None, end_line: int | None = None) -> bool:
        """Whether the span ``line``..``end_line`` of ``path`` overlaps a changed line (any
        change of the file, for a finding on the whole file)."""
        ranges = self.lines.get(path)
        if ranges is None:
            return False
        if line is None:
            return True
        last = end_line if end_line is not None and end_line >= line else line
        return any(first <= last and line <= end for first, end in ranges)


def changes(repository: Path, base_ref: str) -> tuple[Changes | None, str]:
    """What HEAD (and the work tree) changed since the merge base with ``base_ref``; None and
    why when that cannot be known."""
    base, where = merge_base(repository, base_ref)
    if base is None:
        return None, where
    text = _git(
        repository,
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--unified=0",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        base,
    )
    if text is None:
        return None, f"git diff {where} failed"
    found = parse_diff(text)
    return Changes({path: tuple(r) for path, r in found.items()}, where), ""
