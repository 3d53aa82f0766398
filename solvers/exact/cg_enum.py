"""Exact pricing by enumeration for the branch-and-price on configurations (solvers.exact.cg_ryan).

At the sizes branching on configurations is built for (8-16 services) every feasible configuration can be listed
once (solvers.exact.patterns.enumerate_configs: tenant sets grown one service at a time under d + e <= budget, the
memory rule, the tenant limit; a few hundred to a few tens of thousands), and Pareto-pruned per (size, tenant set)
on the master's clipped coverage (a feature of a configuration depends only on its size and tenant set, and every
coverage dual is >= 0, so a dominated configuration is never worth more than the one that dominates it).  A node's
pricing is then a matrix product: the value pi . a_c + sigma . h_c of every configuration of a size, those a row
forbids (a feature capped at 0) left out; its maximum is the exact V_p of the node's Lagrangian bound (no MILP, no
tolerance beyond floating point), and the best ones above the size's dual are the new columns.  Where the listing
passes `limit` configurations the branching falls back to cg_ryan's MILP pricing (`build` returns None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from solvers.exact.patterns import Config, _Timer, coverage, enumerate_configs
from stsched.problem import Instance

LIMIT = 200_000  # configurations listed at most (raw, before pruning); past it: the MILP pricing


@dataclass(frozen=True)
class SizeTable:
    """Every (Pareto-kept) configuration of one size: its coverage coefficients as the master's (`cover`, one column
    per service) and which services it holds (`member`)."""

    size: float
    configs: tuple[Config, ...]
    cover: np.ndarray
    member: np.ndarray


class EnumPricer:
    """Prices every listed configuration of a size against a node's duals and rows."""

    def __init__(self, tables: dict[float, SizeTable]):
        self.tables = tables
        self.calls = 0

    @classmethod
    def build(cls, instance: Instance, timer: _Timer, rates: np.ndarray, clip: float,
              limit: int = LIMIT) -> "EnumPricer | None":
        """The tables of every size, or None when the configurations are more than `limit` (or a level was cut)."""
        n = len(rates)
        caps = [clip * float(r) for r in rates]
        levels, cut = enumerate_configs(instance, timer, max(n, 1), caps, True, False, limit)
        if cut:
            return None
        by_size: dict[float, list[Config]] = {p: [] for p in instance.mechanism.sizes}
        for level in levels:
            for c in level:
                by_size.setdefault(c.size, []).append(c)
        tables = {}
        for p, cs in by_size.items():
            cover = np.zeros((len(cs), n))
            member = np.zeros((len(cs), n), dtype=bool)
            for i, c in enumerate(cs):
                for s, _ in c.tenants:
                    member[i, s] = True
                for s, a in coverage(c, rates, clip).items():
                    cover[i, s] = a
            tables[p] = SizeTable(p, tuple(cs), cover, member)
        return cls(tables)

    @staticmethod
    def count(t: SizeTable, f) -> np.ndarray:
        """A feature's count (0 or 1) in every configuration of the table (cg_ryan.Feature, vectorised)."""
        if f.kind == "pair":
            return t.member[:, f.s] & t.member[:, f.t]
        if f.kind == "usage":
            return t.member[:, f.s] if t.size == f.size else np.zeros(len(t.configs), dtype=bool)
        return t.member[:, f.s]

    def values(self, size: float, pi: np.ndarray, sig: dict, rows: tuple) -> np.ndarray:
        """pi . a_c + sigma . h_c of every configuration of `size`; -inf where a row caps one of its features at 0."""
        self.calls += 1
        t = self.tables[size]
        v = t.cover @ pi
        for f, x in sig.items():
            if x:
                v = v + x * self.count(t, f)
        for f, _, hi in rows:
            if hi <= 0:
                v = np.where(self.count(t, f), -math.inf, v)
        return v

    def price(self, size: float, pi: np.ndarray, sig: dict, rows: tuple, thr: float, keep: int
              ) -> tuple[float, list[tuple[float, Config]]]:
        """(V_p: the greatest value of an allowed configuration of the size, -inf when none is allowed; the `keep`
        best worth more than `thr`, best first)."""
        t = self.tables[size]
        if not len(t.configs):
            return -math.inf, []
        v = self.values(size, pi, sig, rows)
        top = float(v.max())
        good = np.flatnonzero(v > thr)
        if len(good) > keep:
            good = good[np.argpartition(-v[good], keep - 1)[:keep]]
        return top, sorted(((float(v[i]), t.configs[i]) for i in good), key=lambda x: -x[0])


__all__ = ["EnumPricer", "LIMIT", "SizeTable"]
