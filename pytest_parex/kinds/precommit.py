"""``kind = "pre-commit"``: one hook of the project's ``.pre-commit-config.yaml``
(:mod:`pytest_parex.precommit.build` makes the checks; this module runs one).

The verdict is pre-commit's: the hook fails when its command exits non-zero **or when it
modified any file** ("files were modified by this hook", listed with a diff stat). The files it
is passed are digested before it starts and compared when it ends; every other tracked file is
watched by its stat, and a hook that changed one it was not passed is an ``error`` naming it
(the gate ran it beside others on the promise that it does not) -- unless a hook that may write
that file ran at the same time.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_parex.files import write_atomic
from pytest_parex.kinds import review, reviewparse
from pytest_parex.kinds.base import (
    Invocation,
    Key,
    Kind,
    RunContext,
    Verdict,
    exit_phrase,
    read_head,
)
from pytest_parex.results import Status

if TYPE_CHECKING:
    from pytest_parex.config import Check, Validator

SHOWN_FILES = 5
"""Modified files named in the detail (all are listed in the report)."""
CLAIMS = "pre-commit-claims"
"""Under the state directory: which files each running hook that may modify files claims."""
_DIFF_BYTES = 4 * 1024 * 1024
"""A file larger than this is not diffed for the stat (only named)."""


def _hook(v: Validator, where: str, key: str, value: object) -> str:
    return v.string(where, key, value)


def _modifies(v: Validator, where: str, key: str, value: object) -> bool:
    return v.boolean(where, key, value)


@dataclass
class Snapshot:
    """The tree as the hook found it."""

    started: int
    """``time.time_ns()`` before the process started."""
    digests: dict[str, str | None] = field(default_factory=dict)
    """Its files' content digests (None: absent)."""
    contents: dict[str, bytes] = field(default_factory=dict)
    """Its files' contents, for the diff stat (hooks that may modify files)."""
    others: dict[str, tuple[int, int, int, int] | None] = field(default_factory=dict)
    """Every other tracked file's stat (size, mtime_ns, ctime_ns, inode)."""
    claim: Path | None = None


def _digest(path: Path) -> tuple[str | None, bytes | None]:
    try:
        if path.is_symlink():
            data = os.readlink(path).encode("utf-8", "surrogateescape")
            return "link:" + hashlib.blake2b(data, digest_size=20).hexdigest(), data
        data = path.read_bytes()
    except OSError:
        return None, None
    return hashlib.blake2b(data, digest_size=20).hexdigest(), data


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def tracked_files(root: Path) -> tuple[str, ...]:
    """git's tracked files (what pre-commit's ``git diff`` watches); () outside git."""
    try:
        index = os.stat(root / ".git" / "index")
        stamp = (index.st_mtime_ns, index.st_size, index.st_ino)
    except OSError:
        stamp = None
    if stamp is None:
        return _tracked(root)
    return _tracked_while(root, stamp)


@functools.lru_cache(maxsize=8)
def _tracked_while(root: Path, stamp: tuple[int, int, int]) -> tuple[str, ...]:
    # One git call per process while git's index is the same file (hooks do not stage):
    # every hook of a gate asks, often at the same moment.
    return _tracked(root)


def _tracked(root: Path) -> tuple[str, ...]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--deduplicate"],
            cwd=root,
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return ()
    text = proc.stdout.decode("utf-8", "surrogateescape").strip("\0")
    return tuple(text.split("\0")) if proc.returncode == 0 and text else ()


class PreCommitKind(Kind):
    name = "pre-commit"
    agent = "pre-commit"
    keys = (Key("hook", _hook), Key("modifies", _modifies))

    def resolve(
        self,
        v: Validator,
        where: str,
        argv: tuple[str, ...] | None,
        options: dict[str, Any],
        *,
        shell: bool,
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        if argv is not None:
            raise v.error(
                where,
                'kind = "pre-commit" runs a hook of .pre-commit-config.yaml: give its id as '
                'hook = "ID", not run',
            )
        if "hook" not in options:
            options = {**options, "hook": where.rsplit(".", 1)[-1]}
        # The command comes from the hook's definition (pytest_parex.precommit.build).
        return (), options

    # ------------------------------------------------------------------ running

    def prepare(self, check: Check, ctx: RunContext, env: dict[str, str]) -> Invocation:
        if check.option("how") == "pre-commit's environment":
            env.pop("PYTHONHOME", None)
        root = ctx.rootdir
        mine = tuple(check.option("files", ()))
        modifies = bool(check.option("modifies", True))
        snap = Snapshot(started=time.time_ns())
        for name in mine:
            digest, data = _digest(root / name)
            snap.digests[name] = digest
            if modifies and data is not None and len(data) <= _DIFF_BYTES:
                snap.contents[name] = data
        own = set(mine)
        for name in tracked_files(root):
            if name not in own:
                snap.others[name] = _stat(root / name)
        if modifies:
            snap.claim = ctx.state_dir / CLAIMS / f"{check.file_name}.json"
            _write_claim(snap.claim, mine, snap.started, None)
        return Invocation(check.argv, env, state=snap)

    def interpret(
        self, check: Check, code: int | None, inv: Invocation, log: Path, ctx: RunContext
    ) -> Verdict:
        snap = inv.state
        assert isinstance(snap, Snapshot)
        ended = time.time_ns()
        root = ctx.rootdir
        if snap.claim is not None:
            _write_claim(snap.claim, tuple(snap.digests), snap.started, ended)
        modified = [
            name for name, before in snap.digests.items() if _digest(root / name)[0] != before
        ]
        changed = [name for name, before in snap.others.items() if _stat(root / name) != before]
        if changed:
            exempt = _claimed(ctx.state_dir / CLAIMS, snap.claim, snap.started, ended)
            changed = [name for name in changed if name not in exempt]
        text = read_head(log, review.PARSE_BYTES)
        figures: dict[str, Any] = {"files": len(snap.digests)}
        if check.option("changed"):
            figures["changed_files"] = len(snap.digests)
        issues = _issues(check, text, root)
        if issues:
            # Every finding, as the review kind keeps them: annotations, SARIF and Code
            # Quality report them (pytest_parex.findings), also when the pass is replayed.
            tool = reviewparse.detect_tool(list(check.argv)) or "generic"
            figures["tool"] = tool
            figures["program"] = review.PROGRAMS.get(tool) or reviewparse.program_name(
                list(check.argv)
            )
            figures["issue_count"] = len(issues)
            figures["issues"] = [review.issue_dict(i) for i in issues]
        if changed:
            figures["changed_not_passed"] = changed
            shown = ", ".join(changed[:SHOWN_FILES]) + (
                f" and {len(changed) - SHOWN_FILES} more" if len(changed) > SHOWN_FILES else ""
            )
            return Verdict(
                Status.ERROR,
                f"changed files it was not passed: {shown}",
                figures,
                "changed files it was not passed (the gate ran it beside other checks on the "
                "promise that it only writes its own):\n" + "\n".join(changed),
            )
        if modified:
            figures["modified"] = modified
            stat = [_diffstat(name, snap.contents.get(name), root / name) for name in modified]
            shown = ", ".join(modified[:SHOWN_FILES]) + (
                f" and {len(modified) - SHOWN_FILES} more" if len(modified) > SHOWN_FILES else ""
            )
            detail = f"files were modified by this hook: {shown}"
            if code:
                detail = f"{exit_phrase(code)}; {detail}"
            return Verdict(
                Status.FAILED,
                detail,
                figures,
                "files were modified by this hook:\n" + "\n".join(stat),
            )
        count = len(snap.digests)
        suffix = (
            f" ({count} changed file{'s' if count != 1 else ''})" if check.option("changed") else ""
        )
        if code == 0:
            return Verdict(
                Status.PASSED,
                reviewparse.summarize(issues) + suffix if issues else suffix.strip(" ()"),
                figures,
            )
        detail = reviewparse.summarize(issues) if issues else exit_phrase(code)
        summary = "\n".join(i.format() for i in issues[: review.SHOWN_ISSUES])
        return Verdict(Status.FAILED, detail + suffix, figures, summary)


def _issues(check: Check, text: str, root: Path) -> list[reviewparse.Issue]:
    """The output read as a known linter's (ruff, mypy), else as ``file:line: message``."""
    argv = list(check.argv)
    tool = reviewparse.detect_tool(argv) or ""
    parser = review.PARSERS.get(tool, reviewparse.parse_generic)
    try:
        found = parser(text, root)
    except Exception:  # the output is data: a parser must not break the verdict
        return []
    return [i for i in found if i.severity != "note"]


def _diffstat(name: str, before: bytes | None, path: Path) -> str:
    try:
        after = path.read_bytes() if not path.is_symlink() else None
    except OSError:
        return f"{name}: removed"
    if before is None or after is None:
        return f"{name}: changed"
    old = before.decode("utf-8", "replace").splitlines()
    new = after.decode("utf-8", "replace").splitlines()
    added = removed = 0
    for line in difflib.unified_diff(old, new, lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    if not added and not removed:
        return f"{name}: changed (line endings or whitespace at the end)"
    return f"{name}: +{added} -{removed}"


def _write_claim(path: Path, names: Sequence[str], start: int, end: int | None) -> None:
    data = {"pid": os.getpid(), "start": start, "end": end, "files": list(names)}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data).encode(), durable=False)


def _claimed(directory: Path, own: Path | None, start: int, end: int) -> set[str]:
    """Files that hooks which may modify them claimed while this one ran."""
    out: set[str] = set()
    try:
        entries = list(directory.iterdir())
    except OSError:
        return out
    for entry in entries:
        if own is not None and entry.name == own.name:
            continue
        try:
            data: Mapping[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
            began, ended = int(data["start"]), data.get("end")
            names = [str(n) for n in data["files"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if began > end or (ended is not None and int(ended) < start):
            continue
        if ended is None and not _alive(int(data.get("pid", 0))):
            continue
        out.update(names)
    return out


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


KIND = PreCommitKind()
