"""Coordinate descent on partition contents: close the deficit that a removed GPU leaves.

The state is every partition's *content*: a tenant set with the capacity it gives each tenant (a single service
at its best operating point, or a time-shared pair or triple at one of its Pareto-optimal batch vectors,
`shared.share_configs`).  Coverage is the sum of capacities; the deficit is what the demand still misses, weighted
by 1 / best efficiency (the LP's measure of work).  One step gives one partition its best response: the content
that covers most of what the other partitions leave missing (every single service, and the pairs and triples of
the `descent_pool` services missing most).  A round visits every partition; when a round gains nothing, each GPU's
layout is re-chosen with best responses for its new partitions.  On success the demand is split over the
partitions in proportion to their capacities and every partition is fitted (`fit_partition`), the GPUs re-fitted
with the interference form; any failure abandons the move.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from stsched.heuristic.construct import _single
from stsched.heuristic.fit import fit_partition
from stsched.heuristic.model import Context
from stsched.heuristic.respond import Responder, Slot, best_response, responses  # noqa: F401 (re-exported)
from stsched.heuristic.state import WGpu, WPart, refit_gpu

log = logging.getLogger(__name__)

TOL = 1e-7


def _value(w: np.ndarray, tenants, caps, need: np.ndarray) -> float:
    return sum(min(c, need[i]) * w[i] for i, c in zip(tenants, caps))


def _br(st: "_State", j: int, need: np.ndarray) -> tuple[float, Slot]:
    st.budget -= 1
    return st.respond(j, need)[0]


class _State:
    def __init__(self, ctx: Context, gpus: list[list[Slot]], demand: np.ndarray):
        self.ctx, self.gpus, self.demand = ctx, gpus, demand
        self.w = np.where(ctx.eff > 0, 1.0 / np.where(ctx.eff > 0, ctx.eff, 1.0), 0.0)
        self.respond = Responder(ctx, self.w)
        slots = sum(len(g) for g in gpus) + sum(1 for g in gpus if not g)
        self.budget = ctx.opts.descent_budget * max(1, slots)  # best-response evaluations left
        self.cover = np.zeros(len(demand))
        for g in gpus:
            for sl in g:
                self.add(sl, 1.0)

    def add(self, sl: Slot, sign: float) -> None:
        for i, c in zip(sl.tenants, sl.caps):
            self.cover[i] += sign * c

    def need_without(self, slots: list[Slot]) -> np.ndarray:
        cover = self.cover.copy()
        for sl in slots:
            for i, c in zip(sl.tenants, sl.caps):
                cover[i] -= c
        return np.maximum(self.demand - cover, 0.0)

    def deficit(self) -> float:
        miss = np.maximum(self.demand - self.cover, 0.0)
        miss[miss <= TOL * np.maximum(1.0, self.demand)] = 0.0
        return float(np.sum(np.where(self.ctx.eff > 0, miss / np.where(self.ctx.eff > 0, self.ctx.eff, 1.0), 0.0)))


def _round(st: _State) -> bool:
    improved = False
    for g in st.gpus:
        for q, sl in enumerate(g):
            need = st.need_without([sl])
            cur = _value(st.w, sl.tenants, sl.caps, need)
            v, new = _br(st, sl.j, need)
            if v > cur * (1 + 1e-9) + 1e-12:
                st.add(sl, -1.0)
                st.add(new, 1.0)
                g[q] = new
                improved = True
    return improved


def _pairs(st: _State) -> bool:
    """Two partitions at once: the best few contents of one, each with the best response of the other; only
    pairs with a partition serving a service still missing load."""
    ctx = st.ctx
    miss = st.demand - st.cover > TOL * np.maximum(1.0, st.demand)
    flat = [(g, q) for g in range(len(st.gpus)) for q in range(len(st.gpus[g]))]
    hot = [(g, q) for g, q in flat if any(miss[i] for i in st.gpus[g][q].tenants)] or flat[:0]
    improved = False
    for a in hot:
        sa = st.gpus[a[0]][a[1]]
        related = set(sa.tenants) | {int(i) for i in np.nonzero(miss)[0]}
        for b in flat:
            if a == b or not (b[0] == a[0] or related.intersection(st.gpus[b[0]][b[1]].tenants)):
                continue
            sb = st.gpus[b[0]][b[1]]
            need = st.need_without([sa, sb])
            cur = _value(st.w, sa.tenants, sa.caps, need)
            rest = need.copy()
            for i, c in zip(sa.tenants, sa.caps):
                rest[i] = max(0.0, rest[i] - c)
            cur += _value(st.w, sb.tenants, sb.caps, rest)
            if st.budget <= 0:
                return False
            st.budget -= 1
            for va, na in st.respond(sa.j, need, ctx.opts.descent_branching):
                rest = need.copy()
                for i, c in zip(na.tenants, na.caps):
                    rest[i] = max(0.0, rest[i] - c)
                vb, nb = _br(st, sb.j, rest)
                if va + vb > cur * (1 + 1e-9) + 1e-12:
                    st.add(sa, -1.0)
                    st.add(sb, -1.0)
                    st.add(na, 1.0)
                    st.add(nb, 1.0)
                    st.gpus[a[0]][a[1]], st.gpus[b[0]][b[1]] = na, nb
                    return True
    return improved


def _layout_options(st: _State, g: int) -> list[tuple[float, list[Slot]]]:
    """Every layout for GPU g, each filled by best responses (largest partition first), best first."""
    ctx = st.ctx
    need0 = st.need_without(st.gpus[g])
    out = []
    for layout in ctx.layouts:
        need = need0.copy()
        slots, total = [], 0.0
        for size in sorted(layout, reverse=True):
            v, sl = _br(st, ctx.size_index(size), need)
            if not sl.tenants:
                continue
            for i, c in zip(sl.tenants, sl.caps):
                need[i] = max(0.0, need[i] - c)
            slots.append(sl)
            total += v
        out.append((total, slots))
    out.sort(key=lambda o: -o[0])
    return out


def _set_gpu(st: _State, g: int, slots: list[Slot]) -> None:
    for sl in st.gpus[g]:
        st.add(sl, -1.0)
    st.gpus[g] = slots
    for sl in slots:
        st.add(sl, 1.0)


def _relayout(st: _State) -> bool:
    """Each GPU's layout re-chosen, its partitions given best responses."""
    improved = False
    for g in range(len(st.gpus)):
        need0 = st.need_without(st.gpus[g])
        cur = sum(_value(st.w, sl.tenants, sl.caps, need0) for sl in st.gpus[g])
        options = _layout_options(st, g)
        if options and options[0][0] > cur * (1 + 1e-9) + 1e-12:
            _set_gpu(st, g, options[0][1])
            improved = True
    return improved


def _slots(ctx: Context, gpus: list[WGpu]) -> list[list[Slot]]:
    return [[Slot(ctx.size_index(p.size), tuple(i for i, _ in p.tenants), tuple(r for _, r in p.tenants))
             for p in g.parts if p.tenants] for g in gpus]


def _realise(ctx: Context, st: _State) -> list[WGpu] | None:
    share = np.where(st.cover > 0, np.minimum(1.0, st.demand / np.where(st.cover > 0, st.cover, 1.0)), 0.0)
    out = []
    for g in st.gpus:
        parts = []
        for sl in g:
            pairs = [(i, c * share[i]) for i, c in zip(sl.tenants, sl.caps) if c * share[i] > 0]
            if not pairs:
                continue
            size = ctx.sizes[sl.j]
            if len(pairs) == 1:
                part = _single(ctx, pairs[0][0], size, pairs[0][1])
            else:
                f = fit_partition(ctx, size, 1, pairs, [None] * len(pairs))
                part = None if f is None else WPart(size, 1, [[i, r] for i, r in pairs], fit=f)
            if part is None:
                return None
            parts.append(part)
        gpu = WGpu(parts)
        if parts and not refit_gpu(ctx, gpu):
            return None
        if parts:
            out.append(gpu)
    return out


def descend(ctx: Context, gpus: list[WGpu], extra: dict[int, float],
            deadline: float = float("inf")) -> list[WGpu] | None:
    """GPUs `gpus` re-contented to serve their own load plus `extra` {service: rate}, or None."""
    if ctx.opts.descent_rounds <= 0 or ctx.opts.descent_budget <= 0 or ctx.capc is None:
        return None
    demand = np.zeros(len(ctx.names))
    for g in gpus:
        for i, r in g.served().items():
            demand[i] += r
    for i, r in extra.items():
        demand[i] += r
    st = _State(ctx, _slots(ctx, gpus), demand)
    best = (st.deficit(), [list(g) for g in st.gpus])
    stale = 0
    for _ in range(ctx.opts.descent_kicks + 1):
        for _ in range(ctx.opts.descent_rounds):
            if st.deficit() <= 0 or st.budget <= 0 or time.perf_counter() > deadline:
                break
            if not _round(st) and not (ctx.opts.descent_branching and _pairs(st)) and not _relayout(st):
                break
        stale += 1
        if st.deficit() < best[0] * (1 - 1e-6):
            best, stale = (st.deficit(), [list(g) for g in st.gpus]), 0
        if best[0] <= 0 or st.budget <= 0 or stale > ctx.opts.descent_patience:
            break
        miss = st.demand - st.cover > TOL * np.maximum(1.0, st.demand)
        st.w = np.where(miss, st.w * (1.0 + ctx.opts.descent_reweight), st.w)  # breakout: weigh what stays missing
        st.respond.reweigh(st.w)
    log.debug("descent: deficit %.4g, %d evaluations left", best[0], st.budget)
    if best[0] > 0:
        return None
    return _realise(ctx, _State(ctx, best[1], demand))
