"""Repacking of cover-then-pack's residual partitions: empty the least efficient ones into the others' slack.

Cover-then-pack (`ctp`) serves what is left of each service after its saturated knee partitions (its residual
load) whole, in one shared partition chosen by best fit, else alone in a new partition of the smallest size that
serves it.  Those partitions run far below their tenants' best efficiency (at 256 A100 MPS services about 75 % of
it, against 99.4 % for the knee partitions: docs/RESULTS.md, "Where the heuristic's own loss lies"), and a load
that no single partition takes whole is never split.  `repack` improves a block's residual partitions in two
passes, least efficient first (work at best efficiency per unit of size):

1. empty: every tenant's rate of the partition is served instead by raising the rate of the service's tenants in
   the other residual partitions, then by joining one with spare time that takes it whole (best fit by an upper
   bound on its room, `WHOLE_TRIES` fixed points), else by splitting it over the `JOIN_TRIES` partitions with the
   most room (each taking its exact head-room).  A partition that cannot be emptied but whose remaining tenants
   fit a smaller size is shrunk to it; otherwise every change of the attempt is undone;
2. merge: the partition and another one become one partition of a size below their sum (a larger partition runs
   its tenants faster, which leaves the cycle room for both sets): the partner and size that free the most
   capacity, among those whose utilisations there sum to at most 1, at most `MERGE_TRIES` fixed points.

Every change is confirmed by the exact fixed point (`fit.fit_partition`), so the partitions stay valid alone
(interference is the layout step's, as for the best fit).  The work is bounded by a count of fixed points
(`HeuristicOptions.repack_budget` per residual partition), not by time, so the plans do not depend on the
machine.  The scans that choose where to try are numpy masks over the block's partitions (`_Repacker`).
"""

from __future__ import annotations

import numpy as np

from stsched.heuristic.fit import EPS, fit_partition, headroom
from stsched.heuristic.model import Context
from stsched.heuristic.state import WPart

WHOLE_TRIES = 8  # fixed points per tenant: partitions that may take its whole rate (least room first)
JOIN_TRIES = 3  # head-room evaluations per tenant that no partition took whole (most room first)
MERGE_TRIES = 32  # fixed points per partition in the merge pass (most capacity freed first)


def efficiency(ctx: Context, p: WPart) -> float:
    """The partition's work at its tenants' best efficiency per unit of its size (1: the LP's measure)."""
    return sum(r / ctx.eff[i] for i, r in p.tenants if ctx.eff[i] > 0) / p.size


def _refit(ctx: Context, p: WPart) -> bool:
    p.fit = fit_partition(ctx, p.size, p.procs, p.pairs(), [None] * len(p.tenants))
    return p.fit is not None


class _Journal:
    """The changes of one attempt (partition: its size, tenants and fit before), undone together."""

    def __init__(self) -> None:
        self.saved: dict[int, tuple[float, list[list], object]] = {}
        self.joined: list[tuple[int, int]] = []  # (service, partition) holders added

    def keep(self, k: int, p: WPart) -> None:
        if k not in self.saved:
            self.saved[k] = (p.size, [list(t) for t in p.tenants], p.fit)


class _Repacker:
    """The block's residual partitions and, per partition, what the scans read: alive, size index, duty, the
    least slack its tenants leave a newcomer (min over tenants of budget - exec time), tenant count, whether it
    runs one process, and its utilisation at every size (rates over `Context.capc`, inf where a tenant has no
    point)."""

    def __init__(self, ctx: Context, parts: list[WPart], budget: int) -> None:
        self.ctx = ctx
        self.parts: list[WPart | None] = list(parts)
        self.left = budget  # fixed points left
        limit = ctx.instance.mechanism.max_tenants
        self.limit = np.inf if limit is None else limit
        self.sizes = np.asarray(ctx.sizes, dtype=float)
        n, m = len(parts), len(ctx.sizes)
        self.alive = np.ones(n, dtype=bool)
        self.jidx = np.zeros(n, dtype=int)
        self.duty = np.zeros(n)
        self.slack = np.zeros(n)
        self.nten = np.zeros(n)
        self.one = np.zeros(n, dtype=bool)
        self.util = np.zeros((n, m))
        self.holders: dict[int, set[int]] = {}
        for k, p in enumerate(parts):
            for i, _ in p.tenants:
                self.holders.setdefault(i, set()).add(k)
            self.update(k)

    def update(self, k: int) -> None:
        ctx, p = self.ctx, self.parts[k]
        if p is None:
            self.alive[k] = False
            self.util[k] = np.inf
            return
        self.jidx[k] = ctx.size_index(p.size)
        self.duty[k] = p.fit.duty
        self.slack[k] = min((ctx.limit[t[0]] - e for t, e in zip(p.tenants, p.fit.exec_ms)),
                            default=np.inf)
        self.nten[k] = len(p.tenants)
        self.one[k] = p.procs == 1
        row = np.zeros(len(ctx.sizes))
        for i, r in p.tenants:
            ci = ctx.capc[i]
            row += np.where(ci > 0, r / np.where(ci > 0, ci, 1.0), np.inf)
        self.util[k] = row if p.procs == 1 else np.inf

    def _raise(self, c: int, i: int, need: float, log: _Journal) -> float:
        """Serve up to `need` of service i by raising its tenants in the other partitions."""
        ctx = self.ctx
        for k in sorted(self.holders.get(i, ())):
            if need <= EPS * max(1.0, need) or self.left <= 0:
                break
            p = self.parts[k]
            if k == c or p is None:
                continue
            pos = p.has(i)
            cur = p.tenants[pos][1]
            self.left -= 1
            h = headroom(ctx, p.size, p.procs, p.pairs(), [None] * len(p.tenants), pos)
            if h <= cur * (1 + 1e-9):
                continue
            log.keep(k, p)
            add = min(need, h - cur)
            p.tenants[pos][1] = cur + add
            if _refit(ctx, p):
                need -= add
            else:
                p.tenants[pos][1] = cur
                _refit(ctx, p)
            self.update(k)
        return need

    def _rooms(self, c: int, i: int) -> np.ndarray:
        """Per partition, an upper bound on the rate service i can take there as a new tenant (0 where it
        cannot join: several processes, full, holding i already, or the cycle, grown by i's shortest time,
        breaks a latency budget): the share of the cycle the tenants leave (1 - utilisation) times i's best
        one-process cycle rate at that size."""
        ctx = self.ctx
        ej = self.ctx.solo_row(i)[self.jidx]
        ok = (self.alive & self.one & (self.nten < self.limit) & np.isfinite(ej)
              & (self.duty + 2 * ej <= ctx.limit[i]) & (self.duty + ej <= self.slack))
        ok[c] = False
        for k in self.holders.get(i, ()):
            ok[k] = False
        used = self.util[np.arange(len(self.parts)), self.jidx]
        room = np.maximum(0.0, 1.0 - used) * ctx.capc[i][self.jidx]
        return np.where(ok, room, 0.0)

    def _add(self, k: int, i: int, rate: float, log: _Journal, fit=None) -> bool:
        p = self.parts[k]
        log.keep(k, p)
        p.tenants.append([i, rate])
        p.fit = fit if fit is not None else fit_partition(self.ctx, p.size, 1, p.pairs(), [None] * len(p.tenants))
        if p.fit is None:
            p.tenants.pop()
            _refit(self.ctx, p)
            return False
        self.holders.setdefault(i, set()).add(k)
        log.joined.append((i, k))
        self.update(k)
        return True

    def _join(self, c: int, i: int, need: float, log: _Journal) -> float:
        """Serve up to `need` of service i as a new tenant of partitions with spare time: the first of the
        WHOLE_TRIES with the least room that may take it whole, else split over the JOIN_TRIES with the most
        room, each taking its exact head-room."""
        ctx = self.ctx
        room = self._rooms(c, i)
        whole = np.nonzero(room >= need)[0]
        for k in whole[np.argsort(room[whole], kind="stable")][:WHOLE_TRIES]:
            if self.left <= 0:
                return need
            self.left -= 1
            p = self.parts[k]
            fit = fit_partition(ctx, p.size, 1, p.pairs() + [(i, need)], [None] * (len(p.tenants) + 1))
            if fit is not None and self._add(int(k), i, need, log, fit):
                return 0.0
        some = np.nonzero(room > EPS * max(1.0, need))[0]
        got: list[tuple[float, int]] = []
        for k in some[np.argsort(-room[some], kind="stable")][:JOIN_TRIES]:
            if self.left <= 0:
                break
            self.left -= 1
            p = self.parts[k]
            pairs = p.pairs() + [(i, 0.0)]
            h = headroom(ctx, p.size, 1, pairs, [None] * len(pairs), len(pairs) - 1)
            if h > EPS * max(1.0, need):
                got.append((h, int(k)))
        for h, k in sorted(got, key=lambda x: (-x[0], x[1])):
            if need <= EPS * max(1.0, need):
                break
            add = min(need, h)
            if self._add(k, i, add, log):
                need -= add
        return need

    def _smaller(self, p: WPart) -> float | None:
        """The smallest size below p's that serves its tenants (None: none)."""
        for size in self.ctx.sizes:
            if size >= p.size:
                return None
            if fit_partition(self.ctx, size, p.procs, p.pairs(), [None] * len(p.tenants)) is not None:
                return size
        return None

    def empty(self, c: int) -> bool:
        """Try to empty partition c (else shrink it); True when the state changed."""
        ctx = self.ctx
        p = self.parts[c]
        log = _Journal()
        log.keep(c, p)
        left: list[list] = []
        for i, r in [list(t) for t in p.tenants]:
            need = self._raise(c, i, r, log)
            if need > EPS * max(1.0, r):
                need = self._join(c, i, need, log)
            if need > EPS * max(1.0, r):
                left.append([i, need])
        if not left:
            for i, _ in p.tenants:
                self.holders[i].discard(c)
            self.parts[c] = None
            self.update(c)
            return True
        p.tenants = left
        if _refit(ctx, p):
            size = self._smaller(p)
            if size is not None:
                p.size = size
                _refit(ctx, p)
                for i, _ in log.saved[c][1]:
                    if p.has(i) < 0:
                        self.holders[i].discard(c)
                self.update(c)
                return True
        for k, (size, tenants, fit) in log.saved.items():
            q = self.parts[k]
            q.size, q.tenants, q.fit = size, tenants, fit
            self.update(k)
        for i, k in log.joined:  # the joins undone: their holders go too
            self.holders[i].discard(k)
        return False

    def _may_share(self, tenants: list[tuple[int, float]], j: int) -> bool:
        """Pre-tests before a fixed point: the shortest cycle (the sum of the tenants' shortest times at size
        index j) leaves each its own shortest time within its budget."""
        e0 = [self.ctx.solo_row(i)[j] for i, _ in tenants]
        d = sum(e0)
        return all(d + e <= self.ctx.limit[i] for (i, _), e in zip(tenants, e0))

    def merge(self, c: int) -> bool:
        """Merge partition c with another into one partition of a size below their sum (module docstring);
        True when merged."""
        ctx = self.ctx
        p = self.parts[c]
        if p.procs > 1:
            return False
        size_of = np.where(self.alive & self.one, self.sizes[self.jidx], np.inf)
        freed, joint, sidx, partner = [], [], [], []  # per option: capacity freed, utilisation together, size, k
        for j, s in enumerate(ctx.sizes):
            if s < p.size:
                continue
            together = self.util[:, j] + self.util[c, j]
            ok = (together <= 1.0 + 1e-9) & (size_of <= s) & (size_of > s - p.size + 1e-9)
            ok[c] = False
            ks = np.nonzero(ok)[0]
            freed.append(p.size + size_of[ks] - s)
            joint.append(together[ks])
            sidx.append(np.full(len(ks), j))
            partner.append(ks)
        if not freed:
            return False
        freed_a, joint_a, sidx_a, partner_a = (np.concatenate(x) for x in (freed, joint, sidx, partner))
        # most capacity freed first, then the least utilisation together, the smaller size, the lower index
        top = np.lexsort((partner_a, sidx_a, joint_a, -freed_a))[:MERGE_TRIES]
        for j, k in zip(sidx_a[top].tolist(), partner_a[top].tolist()):
            if self.left <= 0:
                break
            q = self.parts[k]
            rates: dict[int, float] = {}
            for i, r in p.tenants + q.tenants:
                rates[i] = rates.get(i, 0.0) + r
            tenants = sorted(rates.items())
            if len(tenants) > self.limit or not self._may_share(tenants, j):
                continue
            self.left -= 1
            size = ctx.sizes[j]
            fit = fit_partition(ctx, size, 1, tenants, [None] * len(tenants))
            if fit is None:
                continue
            for i, _ in q.tenants:
                self.holders[i].discard(k)
            self.parts[k] = None
            self.update(k)
            p.size, p.tenants, p.fit = size, [[i, r] for i, r in tenants], fit
            for i, _ in p.tenants:
                self.holders.setdefault(i, set()).add(c)
            self.update(c)
            return True
        return False


def repack(ctx: Context, parts: list[WPart]) -> list[WPart]:
    """The residual partitions `parts` (fitted alone, no interference) after the two passes of the module
    docstring; the same loads are served."""
    budget = ctx.opts.repack_budget * len(parts)
    if budget <= 0 or len(parts) < 2:
        return parts
    r = _Repacker(ctx, parts, budget)
    for c in sorted(range(len(parts)), key=lambda k: (efficiency(ctx, parts[k]), k)):
        if r.left <= 0:
            break
        if r.parts[c] is not None:
            ctx.tick()
            r.empty(c)
    r.left = budget
    for c in sorted((k for k, p in enumerate(r.parts) if p is not None),
                    key=lambda k: (efficiency(ctx, r.parts[k]), k)):
        if r.left <= 0:
            break
        if r.parts[c] is not None:
            ctx.tick()
            r.merge(c)
    return [p for p in r.parts if p is not None]
