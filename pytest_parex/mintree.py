"""A minimum tree (pure): values at fixed places, and the first place from any point on whose
value passes a test, in log time -- where a scan would look at every place before it.

The dispatcher keeps its ready checks in one (the next check to start, the next one short
enough to backfill); :mod:`pytest_parex.cpubound` finds the runs that overlap a moment with
one. Both scanned lists of thousands of entries on every step before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator


class MinTree:
    """``size`` places holding floats (infinity until set)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._leaves = 1
        while self._leaves < size:
            self._leaves *= 2
        self._tree = [math.inf] * (2 * self._leaves)

    def __getitem__(self, index: int) -> float:
        return self._tree[index + self._leaves]

    def __setitem__(self, index: int, value: float) -> None:
        tree = self._tree
        i = index + self._leaves
        tree[i] = value
        i //= 2
        while i:
            tree[i] = min(tree[2 * i], tree[2 * i + 1])
            i //= 2

    def first(self, start: int, fits: Callable[[float], bool] | None = None) -> int | None:
        """The first place from ``start`` on whose value ``fits`` (None: any value below
        infinity, i.e. set), or None.

        ``fits`` must hold for every value below one it holds for: then a subtree whose
        minimum does not fit holds no place that does, and is passed over whole.
        """
        if start >= self.size:
            return None
        if fits is None:
            return self._first_set(start)
        tree, leaves = self._tree, self._leaves
        i = start + leaves
        while not fits(tree[i]):
            while i % 2:  # a right child: what comes next starts right of its parent
                i //= 2
            if not i:
                return None
            i += 1
        while i < leaves:
            i = 2 * i if fits(tree[2 * i]) else 2 * i + 1
        return i - leaves if i - leaves < self.size else None

    def _first_set(self, start: int) -> int | None:
        # first() with the test inlined: the dispatcher asks this on every step.
        tree, leaves, inf = self._tree, self._leaves, math.inf
        i = start + leaves
        while tree[i] == inf:
            while i % 2:
                i //= 2
            if not i:
                return None
            i += 1
        while i < leaves:
            i = 2 * i if tree[2 * i] < inf else 2 * i + 1
        return i - leaves

    def each(
        self, start: int, stop: int, fits: Callable[[float], bool] | None = None
    ) -> Iterator[int]:
        """Every place from ``start`` up to ``stop`` (excluded) whose value ``fits``, in order."""
        index = self.first(start, fits)
        while index is not None and index < stop:
            yield index
            index = self.first(index + 1, fits)
