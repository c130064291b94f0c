"""The check graph (pure): dependencies, cycles, write conflicts and the critical path.

Every algorithm here is iterative and near-linear in checks + needs: generated configs have
thousands of checks and needs chains as long, which recursion (Python's stack) cannot take.
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


def conflicts(checks: Sequence[Check], *, exclusive: bool = True) -> list[Conflict]:
    """Every pair of checks that must not overlap, in a stable order.

    A pair conflicts when one writes what the other reads or writes, or when either is
    ``exclusive``. Pairs ordered by ``needs`` are left out: they never overlap anyway.
    ``exclusive=False`` leaves out the pairs with an exclusive check too: the dispatcher keeps
    an exclusive check alone by a rule of its own, and one exclusive check among thousands
    pairs with every one of them.
    """
    if not any(c.writes or (exclusive and c.exclusive) for c in checks):
        return []
    pairs = _Pairs(checks)
    found = set(pairs.sharing())
    if exclusive:
        for x in pairs.exclusive:
            found.update((min(x, j), max(x, j)) for j in _bits(pairs.unordered(x)))
    out: list[Conflict] = []
    for i, j in sorted(found):
        a, b = checks[i], checks[j]
        why = _conflict_reason(a, b)
        if why:
            who = a.name if a.exclusive else b.name if b.exclusive else ""
            out.append(Conflict(a.name, b.name, why, exclusive=who))
    return out


def serialised(checks: Sequence[Check]) -> list[str]:
    """``describe(conflicts(checks))``, without making the pairs of each exclusive check: its
    sentence stands where its first pair would."""
    if not any(c.exclusive or c.writes for c in checks):
        return []
    pairs = _Pairs(checks)
    keyed: list[tuple[tuple[int, int], str]] = []
    for i, j in pairs.sharing():
        why = _conflict_reason(checks[i], checks[j])
        if why:
            keyed.append(((i, j), Conflict(checks[i].name, checks[j].name, why).sentence()))
    for x in pairs.exclusive:
        # conflicts() gives a pair (i, x), i before x, to i when i is exclusive too.
        free = pairs.unordered(x)
        before = free & pairs.plain & ((1 << x) - 1)
        after = free >> (x + 1)
        if before:
            key = (_lowest(before), x)
        elif after:
            key = (x, x + 1 + _lowest(after))
        else:
            continue
        keyed.append((key, f"{checks[x].name} is exclusive: runs with nothing beside it"))
    keyed.sort()
    return [sentence for _, sentence in keyed]


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


def _lowest(mask: int) -> int:
    """The position of the lowest set bit of ``mask`` (not 0)."""
    return (mask & -mask).bit_length() - 1


def _bits(mask: int) -> Iterator[int]:
    """The positions of the set bits of ``mask``, lowest first."""
    digits = bin(mask)[:1:-1]  # least significant first
    at = digits.find("1")
    while at >= 0:
        yield at
        at = digits.find("1", at + 1)


def _closure(edges: Sequence[Sequence[int]]) -> list[int]:
    """For every node, the nodes it reaches through ``edges``, as a bit set.

    In Kahn's order each node unions the sets of its direct successors once: linear in nodes
    and edges, times one machine-level pass over nodes / 64 per union. A node on or behind a
    cycle (never in a validated config) is walked on its own.
    """
    n = len(edges)
    before: list[list[int]] = [[] for _ in range(n)]
    for i, targets in enumerate(edges):
        for j in targets:
            before[j].append(i)
    waiting = [len(targets) for targets in edges]
    ready = deque(i for i in range(n) if not waiting[i])
    reach: list[int | None] = [None] * n
    while ready:
        i = ready.popleft()
        mask = 0
        for j in edges[i]:
            mask |= (reach[j] or 0) | (1 << j)
        reach[i] = mask
        for k in before[i]:
            waiting[k] -= 1
            if not waiting[k]:
                ready.append(k)
    out = [0] * n
    for i in range(n):
        known = reach[i]
        if known is not None:
            out[i] = known
            continue
        mask, seen, stack = 0, {i}, list(edges[i])
        while stack:
            j = stack.pop()
            mask |= 1 << j
            done = reach[j]
            if done is not None:
                mask |= done
            elif j not in seen:
                seen.add(j)
                stack.extend(edges[j])
        out[i] = mask
    return out


class _Pairs:
    """What :func:`conflicts` needs without looking at every pair of checks (by position):
    which checks ``needs`` order (bit sets of each one's ancestors and descendants), and
    which globs may name a common path (literal prefixes, one starting the other)."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = checks
        index = {c.name: i for i, c in enumerate(checks)}
        needs = [
            [index[d] for d in dict.fromkeys(c.needs) if d in index and d != c.name] for c in checks
        ]
        after: list[list[int]] = [[] for _ in checks]
        for i, deps in enumerate(needs):
            for d in deps:
                after[d].append(i)
        self.ancestors = _closure(needs)
        self.descendants = _closure(after)
        self.all = (1 << len(checks)) - 1
        self.exclusive = [i for i, c in enumerate(checks) if c.exclusive]
        self.plain = self.all
        for x in self.exclusive:
            self.plain &= ~(1 << x)

    def unordered(self, i: int) -> int:
        """The checks that are neither before nor after check ``i`` (``i`` left out)."""
        return self.all & ~(self.ancestors[i] | self.descendants[i] | (1 << i))

    def sharing(self) -> list[tuple[int, int]]:
        """The pairs (i < j) of checks, neither exclusive nor ordered, where one writes a glob
        that may name a path the other reads or writes: the pairs :func:`globs_overlap` may
        say yes to, found through the literal prefixes of the globs -- one must start the
        other (cut at a '/' when both globs are exact paths)."""
        globs: list[tuple[int, str, bool]] = []  # (check, literal prefix, exact)
        written: list[tuple[int, str, bool]] = []
        for i, c in enumerate(self.checks):
            if not c.exclusive:
                for pattern in (*c.reads, *c.writes):
                    globs.append((i, _literal_prefix(pattern), not _WILDCARD.search(pattern)))
                for pattern in c.writes:
                    written.append((i, _literal_prefix(pattern), not _WILDCARD.search(pattern)))
        # A written glob with a wildcard may share a path with any glob whose prefix starts its
        # own or is started by it; an exact one likewise with globs that have a wildcard, and
        # with exact paths that are it, or a directory above or below it.
        every = _Prefixes(((i, p) for i, p, _ in globs), (p for _, p, ex in written if not ex))
        wild = _Prefixes(
            ((i, p) for i, p, ex in globs if not ex), (p for _, p, ex in written if ex)
        )
        paths = _Prefixes(
            ((i, _as_dir(p)) for i, p, ex in globs if ex),
            (_as_dir(p) for _, p, ex in written if ex),
        )
        found: set[tuple[int, int]] = set()
        mask: dict[int, int] = {}
        for i, prefix, exact in written:
            if exact:
                mask[i] = mask.get(i, 0) | wild.related(prefix) | paths.related(_as_dir(prefix))
            else:
                mask[i] = mask.get(i, 0) | every.related(prefix)
        for i, partners in mask.items():
            found.update((min(i, j), max(i, j)) for j in _bits(partners & self.unordered(i)))
        return sorted(found)


def _as_dir(path: str) -> str:
    """An exact path as a directory: ``build/`` for ``build`` (the rootdir: empty), so that
    prefixes start only at a '/'."""
    path = path.rstrip("/")
    return path + "/" if path else ""


class _Prefixes:
    """Checks (bit sets) by a string key, and for any key asked about: the checks whose key
    starts it or is started by it. ``asked`` are the keys that will be asked about."""

    def __init__(self, keyed: Iterable[tuple[int, str]], asked: Iterable[str]) -> None:
        self.owners: dict[str, int] = {}
        for i, key in keyed:
            self.owners[key] = self.owners.get(key, 0) | (1 << i)
        self.longer = dict.fromkeys(asked, 0)
        for key, mask in self.owners.items():
            for end in range(len(key) + 1):
                if key[:end] in self.longer:
                    self.longer[key[:end]] |= mask

    def related(self, key: str) -> int:
        mask = self.longer[key]
        for end in range(len(key) + 1):
            mask |= self.owners.get(key[:end], 0)
        return mask


def dependents(checks: Sequence[Check]) -> dict[str, list[str]]:
    """name -> the checks that need it directly (sorted)."""
    out: dict[str, list[str]] = {c.name: [] for c in checks}
    for c in checks:
        for dep in c.needs:
            if dep in out:
                out[dep].append(c.name)
    return {k: sorted(v) for k, v in out.items()}


def in_passes(
    position: Mapping[str, int],
    seeds: Iterable[str],
    followers: Callable[[str], Iterable[str]],
    settle: Callable[[str], bool],
) -> None:
    """Settle names in the order that passes over them would, in n log n.

    The same as ``while changed: changed = any([settle(n) for n in order])`` with ``order``
    the names sorted by ``position``, when ``settle(name)`` does something (and says True)
    at most once per name, and can only do so for a name in ``seeds`` or a name that
    ``followers`` gives for one that settled before it. Such passes take one pass per link
    of a chain listed against their order (a failure spreading down 3,000 needs: 3,000
    passes over 3,000 checks); here each name is tried once per settled one it follows, at
    the point of the passes where it would be tried first.
    """
    heap = [(0, position[name], name) for name in dict.fromkeys(seeds)]
    heapq.heapify(heap)
    while heap:
        round_, at, name = heapq.heappop(heap)
        if not settle(name):
            continue
        for follower in followers(name):
            where = position.get(follower)
            if where is not None:
                # Later in this pass, or in the next one.
                heapq.heappush(heap, (round_ if where > at else round_ + 1, where, follower))


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
