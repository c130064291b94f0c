"""The check graph (pure): dependencies, write conflicts and critical-path ranks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_parex.config import Check

_WILDCARD = re.compile(r"[*?\[]")


def _literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard, normalised to forward slashes."""
    pattern = pattern.replace("\\", "/")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    if pattern == ".":
        return ""  # the rootdir itself
    match = _WILDCARD.search(pattern)
    return pattern[: match.start()] if match else pattern


def globs_overlap(a: str, b: str) -> bool:
    """Whether two globs (relative to the rootdir) may name a common path.

    Conservative on purpose: two patterns overlap when one's literal prefix is a prefix of the
    other's. It may serialise two checks that could have run side by side; it never lets two
    checks that share a file run at the same time.
    """
    pa, pb = _literal_prefix(a), _literal_prefix(b)
    a_exact = not _WILDCARD.search(a)
    b_exact = not _WILDCARD.search(b)
    if a_exact and b_exact:
        return pa.rstrip("/") == pb.rstrip("/") or _is_dir_prefix(pa, pb) or _is_dir_prefix(pb, pa)
    return pa.startswith(pb) or pb.startswith(pa)


def _is_dir_prefix(directory: str, path: str) -> bool:
    directory = directory.rstrip("/")
    # An empty directory is the rootdir: it holds every path.
    return not directory or path.startswith(directory + "/")


@dataclass(frozen=True)
class Conflict:
    """Two checks that must not run at the same time, and why."""

    a: str
    b: str
    why: str
    exclusive: str = ""
    """The exclusive check that causes this conflict, if that is the reason."""

    def sentence(self) -> str:
        return f"{self.a} and {self.b} {self.why}: serialised"


def describe(found: Sequence[Conflict]) -> list[str]:
    """One sentence per conflict; an exclusive check's many pairs make one sentence."""
    out: list[str] = []
    exclusive: list[str] = []
    for conflict in found:
        if conflict.exclusive:
            if conflict.exclusive not in exclusive:
                exclusive.append(conflict.exclusive)
                out.append(f"{conflict.exclusive} is exclusive: runs with nothing beside it")
        else:
            out.append(conflict.sentence())
    return out


def conflicts(checks: Sequence[Check]) -> list[Conflict]:
    """Every pair of checks that must not overlap, in a stable order.

    A pair conflicts when one writes what the other reads or writes, or when either is
    ``exclusive``. Pairs ordered by ``needs`` are left out: they never overlap anyway.
    """
    # Only a pair with an exclusive check, or a writer and a check that reads or writes, can
    # conflict: look at those pairs alone (a 1000-check config has ~500,000 pairs).
    touching = [i for i, c in enumerate(checks) if c.exclusive or c.writes or c.reads]
    pairs: set[tuple[int, int]] = set()
    for i, c in enumerate(checks):
        if c.exclusive or c.writes:
            partners = range(len(checks)) if c.exclusive else touching
            pairs.update((min(i, j), max(i, j)) for j in partners if j != i)
    if not pairs:
        return []
    ordered = _ordered_pairs(checks)
    out: list[Conflict] = []
    for i, j in sorted(pairs):
        a, b = checks[i], checks[j]
        if (a.name, b.name) in ordered or (b.name, a.name) in ordered:
            continue
        why = _conflict_reason(a, b)
        if why:
            who = a.name if a.exclusive else b.name if b.exclusive else ""
            out.append(Conflict(a.name, b.name, why, exclusive=who))
    return out


def _conflict_reason(a: Check, b: Check) -> str:
    if a.exclusive or b.exclusive:
        who = a.name if a.exclusive else b.name
        return f"cannot overlap ({who} is exclusive)"
    for writer, other in ((a, b), (b, a)):
        for w in writer.writes:
            for p in (*other.reads, *other.writes):
                if globs_overlap(w, p):
                    shared = w if len(_literal_prefix(w)) >= len(_literal_prefix(p)) else p
                    return f"share {shared}"
    return ""


def _ordered_pairs(checks: Sequence[Check]) -> set[tuple[str, str]]:
    """(a, b) for every b that transitively needs a."""
    needs = {c.name: c.needs for c in checks}
    out: set[tuple[str, str]] = set()
    for c in checks:
        seen: set[str] = set()
        stack = list(c.needs)
        while stack:
            dep = stack.pop()
            if dep in seen:
                continue
            seen.add(dep)
            out.add((dep, c.name))
            stack.extend(needs.get(dep, ()))
    return out


def dependents(checks: Sequence[Check]) -> dict[str, list[str]]:
    """name -> the checks that need it directly (sorted)."""
    out: dict[str, list[str]] = {c.name: [] for c in checks}
    for c in checks:
        for dep in c.needs:
            if dep in out:
                out[dep].append(c.name)
    return {k: sorted(v) for k, v in out.items()}


def ranks(
    checks: Sequence[Check], expected: Mapping[str, float], default: float = 1.0
) -> dict[str, float]:
    """Critical-path rank: a check's expected duration plus the longest chain of its dependents.

    Among ready checks, the one with the highest rank is started first.
    """
    after = dependents(checks)
    memo: dict[str, float] = {}
    # Depth-first without recursion: a chain of 1000 needs would exceed Python's stack.
    for c in checks:
        stack = [c.name]
        while stack:
            name = stack[-1]
            if name in memo:
                stack.pop()
                continue
            todo = [d for d in after[name] if d not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            memo[name] = expected.get(name, default) + max(
                (memo[d] for d in after[name]), default=0.0
            )
    return {c.name: memo[c.name] for c in checks}


def critical_path(checks: Sequence[Check], durations: Mapping[str, float]) -> float:
    """The longest chain of ``durations`` through ``needs`` (0 for no checks)."""
    return max(ranks(checks, durations, default=0.0).values(), default=0.0)
