"""The check graph (pure): dependencies, cycles, write conflicts and the critical path.

Every algorithm here is iterative and near-linear in checks + needs: generated configs have
thousands of checks and needs chains as long, which recursion (Python's stack) cannot take.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    order = _Reachability(checks)
    out: list[Conflict] = []
    for i, j in sorted(pairs):
        a, b = checks[i], checks[j]
        if order.ordered(a.name, b.name):
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


class _Reachability:
    """Whether one check transitively needs another; the ancestors of a check are walked once,
    when a pair involving it is first asked about."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self._needs = {c.name: c.needs for c in checks}
        self._ancestors: dict[str, set[str]] = {}

    def ancestors(self, name: str) -> set[str]:
        found = self._ancestors.get(name)
        if found is None:
            found = set()
            stack = list(self._needs.get(name, ()))
            while stack:
                dep = stack.pop()
                if dep not in found:
                    found.add(dep)
                    stack.extend(self._needs.get(dep, ()))
            self._ancestors[name] = found
        return found

    def ordered(self, a: str, b: str) -> bool:
        return a in self.ancestors(b) or b in self.ancestors(a)


def dependents(checks: Sequence[Check]) -> dict[str, list[str]]:
    """name -> the checks that need it directly (sorted)."""
    out: dict[str, list[str]] = {c.name: [] for c in checks}
    for c in checks:
        for dep in c.needs:
            if dep in out:
                out[dep].append(c.name)
    return {k: sorted(v) for k, v in out.items()}


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle of ``edges`` (name -> names it needs) as ``[a, b, c, a]``, or None.

    Depth-first from each name in sorted order, edges in their given order: the same graph
    always names the same cycle.
    """
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    for start in sorted(edges):
        if color[start] != white:
            continue
        path = [start]
        color[start] = grey
        pending = [iter(edges.get(start, ()))]
        while pending:
            for nxt in pending[-1]:
                state = color.get(nxt, black)
                if state == grey:
                    return [*path[path.index(nxt) :], nxt]
                if state == white:
                    color[nxt] = grey
                    path.append(nxt)
                    pending.append(iter(edges.get(nxt, ())))
                    break
            else:
                color[path.pop()] = black
                pending.pop()
    return None


def _chain_ranks(
    order: Sequence[str], needs: Mapping[str, Iterable[str]], weight: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """For every name: its weight plus the heaviest chain of the names that need it, and the
    names that need it directly. Kahn's order from the last dependents back: linear, no
    recursion. Names in a cycle (never in a validated config) count their own weight only."""
    known = set(order)
    after: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for dep in dict.fromkeys(needs.get(name, ())):
            if dep in known and dep != name:
                after[dep].append(name)
    waiting = {name: len(after[name]) for name in order}
    rank: dict[str, float] = {}
    ready = deque(name for name in order if waiting[name] == 0)
    while ready:
        name = ready.popleft()
        rank[name] = weight[name] + max((rank[d] for d in after[name]), default=0.0)
        for dep in dict.fromkeys(needs.get(name, ())):
            if dep in known and dep != name:
                waiting[dep] -= 1
                if waiting[dep] == 0:
                    ready.append(dep)
    for name in order:
        rank.setdefault(name, weight[name])
    return rank, after


def ranks(
    checks: Sequence[Check], expected: Mapping[str, float], default: float = 1.0
) -> dict[str, float]:
    """Critical-path rank: a check's expected duration plus the longest chain of its dependents.

    Among ready checks, the one with the highest rank is started first.
    """
    names = [c.name for c in checks]
    rank, _ = _chain_ranks(
        names, {c.name: c.needs for c in checks}, {n: expected.get(n, default) for n in names}
    )
    return rank


def critical_chain(
    order: Sequence[str], needs: Mapping[str, Sequence[str]], weight: Mapping[str, float]
) -> tuple[tuple[str, ...], float]:
    """The heaviest chain through ``needs`` among ``order``, first check first, and its weight.
    Ties go to the name listed first."""
    if not order:
        return (), 0.0
    rank, after = _chain_ranks(order, needs, weight)
    position = {name: i for i, name in enumerate(order)}

    def best(names: Iterable[str]) -> str:
        return max(names, key=lambda n: (rank[n], -position[n]))

    chain = [best(order)]
    seen = {chain[0]}
    while True:
        nxt = [n for n in after[chain[-1]] if n not in seen]
        if not nxt:
            break
        chain.append(best(nxt))
        seen.add(chain[-1])
    return tuple(chain), rank[chain[0]]


def critical_path(checks: Sequence[Check], durations: Mapping[str, float]) -> float:
    """The longest chain of ``durations`` through ``needs`` (0 for no checks)."""
    if not checks:
        return 0.0
    return max(ranks(checks, durations, default=0.0).values())
