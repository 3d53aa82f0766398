"""Index structures that keep the heuristic's constructions near-linear on large instances.

`FirstFit`: a max segment tree over the free capacity of the GPUs opened so far, answering "the first GPU at or
after position k whose free capacity is at least x" in O(log G) instead of a scan of every GPU; first-fit
decreasing with it visits the GPUs in the same order as the plain scan (it only skips GPUs that cannot hold the
partition by capacity alone), so it places every partition where the scan would.
"""

from __future__ import annotations

import math


class FirstFit:
    """Free capacity per GPU (appended in order), with `first(k, x)`: the smallest index >= k whose free capacity
    is >= x (within `tol`), or None."""

    def __init__(self, tol: float = 1e-9) -> None:
        self.tol = tol
        self.n = 0
        self.cap = 1
        self.tree = [-math.inf] * 2

    def __len__(self) -> int:
        return self.n

    def append(self, free: float) -> int:
        """A new GPU with `free` capacity; returns its index."""
        if self.n == self.cap:
            self._grow()
        self.n += 1
        self.set(self.n - 1, free)
        return self.n - 1

    def _grow(self) -> None:
        old = [self.tree[self.cap + i] for i in range(self.n)]
        self.cap *= 2
        self.tree = [-math.inf] * (2 * self.cap)
        for i, v in enumerate(old):
            self.tree[self.cap + i] = v
        for node in range(self.cap - 1, 0, -1):
            self.tree[node] = max(self.tree[2 * node], self.tree[2 * node + 1])

    def set(self, i: int, free: float) -> None:
        """Update GPU i's free capacity."""
        node = self.cap + i
        self.tree[node] = free
        node //= 2
        while node:
            v = max(self.tree[2 * node], self.tree[2 * node + 1])
            if self.tree[node] == v:
                break
            self.tree[node] = v
            node //= 2

    def free(self, i: int) -> float:
        return self.tree[self.cap + i]

    def first(self, k: int, x: float) -> int | None:
        """The smallest index >= k with free capacity >= x (less `tol`), or None."""
        if k >= self.n:
            return None
        need = x - self.tol
        return self._first(1, 0, self.cap, k, need)

    def _first(self, node: int, lo: int, hi: int, k: int, need: float) -> int | None:
        if hi <= k or self.tree[node] < need:
            return None
        if hi - lo == 1:
            return lo if lo < self.n else None
        mid = (lo + hi) // 2
        out = self._first(2 * node, lo, mid, k, need)
        return out if out is not None else self._first(2 * node + 1, mid, hi, k, need)

