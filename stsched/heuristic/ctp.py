"""Cover-then-pack: the spatial and temporal steps as partitions first, GPU layouts second.

1. spatial: every service fills whole partitions at its knee size (`Context.knee`, the largest size whose
   throughput per unit of capacity is within `knee_tolerance` of its best) while its load saturates them;
2. temporal: the residual loads (what is left of each service) go to shared partitions, largest first, each into
   the open partition that takes it whole with the least room left (best fit, `fit.headroom`), else into a new
   partition of the smallest size that serves it alone (so later residuals can still share it);
3. layout: the partitions are packed onto GPUs, largest first, each onto the first GPU where the layout stays
   legal (first-fit decreasing; MIG legality by the checker's `find_mig_starts`), and every GPU is re-fitted
   with the interference form; a partition that no longer fits next to its neighbours moves on.  At scale on MIG
   without interference, the single-tenant partitions are first re-cut together with the layouts (`mix.py`,
   option `size_mix`), so that few slices stay idle.
This complements the GPU-by-GPU greedy (`construct`), which maximises the work of each GPU and can leave awkward
remainders when the load is a little above a whole number of GPUs.  The `whole` variant fills whole GPUs in step 1:
a GPU with one partition has no neighbours, so with a neighbour-dependent interference form it meets no slowdown.
"""

from __future__ import annotations

import numpy as np

from stsched.bounds import max_count
from stsched.heuristic.construct import _single
from stsched.heuristic.fit import EPS, fit_partition, headroom
from stsched.heuristic.index import FirstFit
from stsched.heuristic.mix import applies as mix_applies, mix_and_place
from stsched.heuristic.model import Context
from stsched.heuristic.parallel import map_pieces, worker_count
from stsched.heuristic.residual import repack
from stsched.heuristic.search import can_add
from stsched.heuristic.slots import place_mig
from stsched.heuristic.state import WGpu, WPart, clone_part, refit_gpu

_MISS = object()  # a memo entry that is absent (None is a remembered failed block)


def _saturated(ctx: Context, rem: np.ndarray, knees: list[float], whole_groups: bool = False) -> list[WPart]:
    """Step 1: every service's saturated partitions at its size of `knees` while its load fills them (`rem`
    keeps what is left).  `whole_groups` (`_idle_groups`): a service whose knee partitions leave slices of a
    GPU idle among themselves takes whole GPUs first where one serves at least as much as they do."""
    parts = []
    groups = _idle_groups(ctx) if whole_groups else {}
    for i in range(len(rem)):
        if rem[i] <= 0 or ctx.eff[i] <= 0:
            continue
        j = ctx.size_index(knees[i])
        cap = ctx.cap1[i, j]
        if cap <= 0:
            continue
        n = int(rem[i] / cap * (1 + 1e-12))
        if n <= 0:
            continue
        m = groups.get(j, 0)
        if m and n >= m and ctx.cap1[i, -1] >= m * cap:
            parts += _fill(ctx, i, len(ctx.sizes) - 1, ctx.cap1[i, -1], rem)
        parts += _fill(ctx, i, j, cap, rem)
    return parts


def _idle_groups(ctx: Context) -> dict[int, int]:
    """Per size index (MIG only): m = how many partitions of that size one GPU holds, where m >= 2 and those m
    leave slices idle that only other sizes can use (an A100's two 3g slices leave its seventh slice idle:
    `stsched.bounds.max_count`).  Cover-then-pack's knee partitions of such a size pair up on GPUs of their
    own wherever the residual partitions do not complete them (256 MIG services, development seeds 4-6: 13-14 of
    about 90 GPUs were (3g, 3g)); a whole GPU that serves at least what m of them serve is never worse
    (`_saturated`)."""
    if not ctx.mig or len(ctx.sizes) < 2:
        return {}
    whole = ctx.sizes[-1]
    out = {}
    for j, size in enumerate(ctx.sizes[:-1]):
        m = max_count(ctx.instance, size)
        if m >= 2 and m * size < whole - 1e-9:
            out[j] = m
    return out


def _fill(ctx: Context, i: int, j: int, cap: float, rem: np.ndarray) -> list[WPart]:
    """Service i's saturated partitions of size index j (capacity `cap` each) while rem[i] fills them (rem[i] keeps
    what is left)."""
    n = int(rem[i] / cap * (1 + 1e-12))
    part = _single(ctx, i, ctx.sizes[j], cap) if n > 0 else None
    if part is None:
        return []
    parts = []
    for k in range(n):
        if k % 1024 == 0:
            ctx.tick()
        parts.append(WPart(part.size, part.procs, [[i, cap]], fit=part.fit))
    rem[i] = max(0.0, rem[i] - n * cap)
    return parts


def _smallest_alone(ctx: Context, i: int, rate: float) -> WPart | None:
    for size in ctx.sizes:
        part = _single(ctx, i, size, rate)
        if part is not None:
            return part
    return None


def _residuals(ctx: Context, rem: np.ndarray) -> list[WPart] | None:
    """Temporal step: best-fit of the residual loads into shared partitions, then (at scale) their repacking
    (`residual.repack`).  On large instances (`HeuristicOptions.at_scale`) of more than 2 x `residual_block`
    services, the services are cut into blocks of `residual_block` (index order) whose residuals share
    partitions among themselves only: the best fit scans a block's partitions, not every one, so the step grows
    linearly with the services instead of quadratically."""
    order = sorted((i for i in range(len(rem)) if rem[i] > EPS * max(1.0, rem[i])),
                   key=lambda i: -rem[i] / ctx.eff[i])
    block = ctx.opts.residual_block
    if block and len(ctx.names) <= 2 * block:  # one block still costs little (256 services: about 1 s)
        block = 0
    if not ctx.opts.at_scale(len(ctx.names)):
        return _best_fit(ctx, rem, order, utilisation=False)
    blocks: dict[int, list[int]] = {}
    for i in order:
        blocks.setdefault(i // block if block else 0, []).append(i)
    orders = [blocks[b] for b in sorted(blocks)]
    keys = [("residual-block", tuple(order), rem[order].tobytes()) for order in orders]
    found = [ctx.memo.get(key, _MISS) for key in keys]
    fresh = [k for k, hit in enumerate(found) if hit is _MISS]
    got = map_pieces(lambda k: _block(ctx, rem, orders[k]), fresh, worker_count(ctx.opts.workers))
    for k, parts in zip(fresh, got):
        found[k] = ctx.remember(keys[k], parts)  # a failed block is remembered too (None)
    if any(hit is None for hit in found):
        return None
    return [clone_part(p) for hit in found for p in hit]


def _block(ctx: Context, rem: np.ndarray, order: list[int]) -> list[WPart] | None:
    """One block's residual partitions (best fit, then `residual.repack`; None where a load fits no partition),
    a pure function of the context and the block's services and loads.  `_residuals` memoises it on those: the
    pilot at scale (`scale.choose_construction`) builds the first blocks of cover-then-pack with the same loads
    as the construction on every service that follows it, so those are not built twice; the blocks not yet
    built are computed by `HeuristicOptions.workers` processes (`parallel.map_pieces`).  The memo keeps the
    originals, the construction fresh copies: the layout step changes the partitions it places."""
    got = _best_fit(ctx, rem, order, utilisation=True)
    return None if got is None else repack(ctx, got)


def _best_fit(ctx: Context, rem: np.ndarray, order: list[int], utilisation: bool) -> list[WPart] | None:
    """Each residual load of `order` in turn into the shared partition that takes it whole with the least room
    left, else into a new partition of the smallest size that serves it alone.  `utilisation`: also skip the
    partitions whose utilisation (sum of rate / best one-process cycle rate, `Context.capc`) leaves less than
    the load needs, a necessary condition, before the exact head-room.  The cheap tests run as numpy masks over
    the open partitions (`_Open`); the partitions that pass are tried in index order, as a plain scan would."""
    limit = ctx.instance.mechanism.max_tenants
    shared = _Open(ctx, len(order))
    for i in order:
        ctx.tick()  # (once per load placed: 256 services' loads took 2.45 s of wall past a limit, niced at load 8)
        need = float(rem[i])
        best = None
        e0 = ctx.solo_row(i)
        for k in shared.candidates(i, need, e0, limit, utilisation):
            p = shared.parts[k]
            e = e0[shared.jidx[k]]
            if any(p.fit.duty + e + et > ctx.limit[t[0]] for t, et in zip(p.tenants, p.fit.exec_ms)):
                continue
            pairs = p.pairs() + [(i, 0.0)]
            h = headroom(ctx, p.size, 1, pairs, [None] * len(pairs), len(pairs) - 1, floor=need)
            if h >= need:
                room = (h - need) / ctx.eff[i]
                if best is None or room < best[0]:
                    best = (room, k)
        if best is not None:
            k = best[1]
            p = shared.parts[k]
            p.tenants.append([i, need])
            p.fit = fit_partition(ctx, p.size, 1, p.pairs(), [None] * len(p.tenants))
            if p.fit is not None:
                shared.changed(k, i, need)
                continue
            p.tenants.pop()
            p.fit = fit_partition(ctx, p.size, 1, p.pairs(), [None] * len(p.tenants))
        part = _smallest_alone(ctx, i, need)
        if part is None:  # larger than any single partition: split over knee partitions
            return None
        shared.open(part, i, need)
    return shared.parts


class _Open:
    """The open shared partitions of `_best_fit` and what its cheap tests read, one entry per partition: size
    index, duty, tenant count, whether it runs one process, and its utilisation (the sum of its tenants' rate /
    best one-process cycle rate at its size, `Context.capc`, inf where it has none, as each joined)."""

    def __init__(self, ctx: Context, most: int) -> None:
        self.ctx = ctx
        self.parts: list[WPart] = []
        self.jidx = np.zeros(most, dtype=int)
        self.duty = np.zeros(most)
        self.nten = np.zeros(most)
        self.one = np.zeros(most, dtype=bool)
        self.used = np.zeros(most)
        self._capc = np.where(ctx.capc > 0, ctx.capc, np.inf)

    def candidates(self, i: int, need: float, e0: np.ndarray, limit: int | None, utilisation: bool) -> np.ndarray:
        """The partitions (ascending) that i may join by the cheap tests: one process, room for a tenant, a
        point of i at their size, the utilisation (with `utilisation`), and the cycle grown by i's shortest time
        within i's budget."""
        n = len(self.parts)
        j = self.jidx[:n]
        ej = e0[j]
        ok = self.one[:n] & np.isfinite(ej) & ~(self.duty[:n] + 2 * ej > self.ctx.limit[i])
        if limit is not None:
            ok &= self.nten[:n] < limit
        if utilisation:
            ok &= ~(self.used[:n] + need / self._capc[i][j] > 1.0 + 1e-9)
        return np.nonzero(ok)[0]

    def open(self, part: WPart, i: int, need: float) -> None:
        k = len(self.parts)
        self.parts.append(part)
        self.jidx[k] = self.ctx.size_index(part.size)
        self.one[k] = part.procs == 1
        self.used[k] = need / self._capc[i][self.jidx[k]]
        self._refresh(k)

    def changed(self, k: int, i: int, need: float) -> None:
        self.used[k] += need / self._capc[i][self.jidx[k]]
        self._refresh(k)

    def _refresh(self, k: int) -> None:
        p = self.parts[k]
        self.duty[k] = p.fit.duty
        self.nten[k] = len(p.tenants)


def _place(ctx: Context, parts: list[WPart]) -> list[WGpu]:
    """First-fit decreasing of partitions onto GPUs (legal layouts, re-fitted with interference); on MIG without
    leaving slices that no legal layout can use where another partition can still complete the GPU
    (`slots.place_mig`), and at scale, without interference, the single-tenant loads re-cut with the layouts
    first (`mix.mix_and_place`, option `size_mix`; where it fails, `place_mig`)."""
    if ctx.mig and all(p.start is None for p in parts):
        if ctx.opts.at_scale(len(ctx.names)) and mix_applies(ctx):
            gpus = mix_and_place(ctx, parts)
            if gpus is not None:
                return gpus
        return place_mig(ctx, parts)
    gpus: list[WGpu] = []
    free = FirstFit(tol=1e-6 * ctx.capacity)  # skips only GPUs whose sizes leave no room (can_add's first test)
    for part in sorted(parts, key=lambda p: (-p.size, -sum(r for _, r in p.tenants))):
        ctx.tick()
        placed = False
        k = free.first(0, part.size)
        while k is not None:
            g = gpus[k]
            if can_add(ctx, g, part.size):
                g.parts.append(part)
                if refit_gpu(ctx, g):
                    placed = True
                    free.set(k, free.free(k) - part.size)
                    break
                g.parts.pop()
                refit_gpu(ctx, g)
            k = free.first(k + 1, part.size)
        if not placed:
            g = WGpu([part])
            if not refit_gpu(ctx, g):
                raise RuntimeError("a partition that was fitted alone does not fit alone")
            gpus.append(g)
            free.append(ctx.capacity - part.size)
    return gpus


def cover_then_pack(ctx: Context, demand: np.ndarray, whole: bool = False) -> tuple[list[WGpu], np.ndarray]:
    """GPUs serving `demand` built partitions first; returns them and the demand left unplaced.  `whole`: every
    service fills whole GPUs (the largest size) instead of knee partitions while its load saturates them."""
    rem = np.array(demand, dtype=float)
    rem[rem <= EPS * np.maximum(1.0, rem)] = 0.0
    parts = _saturated(ctx, rem, [ctx.sizes[-1]] * len(ctx.names) if whole else ctx.knee,
                       whole_groups=ctx.opts.whole_groups and ctx.opts.at_scale(len(ctx.names)))
    shared = _residuals(ctx, rem)
    if shared is None:
        return [], np.array(demand, dtype=float)
    for p in shared:
        for i, r in p.tenants:
            rem[i] = max(0.0, rem[i] - r)
    rem[rem <= EPS * np.maximum(1.0, np.asarray(demand))] = 0.0
    try:
        gpus = _place(ctx, parts + shared)
    except RuntimeError:
        return [], np.array(demand, dtype=float)
    return gpus, rem
