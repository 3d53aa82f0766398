"""Construction: the spatial step (saturated partitions at the services' efficient sizes), the temporal step
(residual loads sharing partitions) and the GPU-by-GPU greedy that combines them.

Every GPU is built by trying the candidate layouts (`Context.layouts`, from few sizes) and filling them:
1. each partition's content is chosen among options: a service alone (spatial: at its best single-tenant point
   while its load saturates the partition, the knee's measure), or a tenant set time-sharing it in proportion to
   the services' remaining loads (`shared.proportional`; the sets of the best few services, and the pairs whose
   whole loads fit together); the contents of a layout are chosen jointly by a bounded depth-first search;
2. temporal: a partition not saturated by its content takes further tenants, the residual loads of other
   services, each at the largest rate the latency rule still allows (`fit.headroom`), so no partition runs half
   empty while residual load waits.
Layouts are explored by branch and bound on an upper bound of their work; the layout serving the most work
(requests weighted by 1 / the service's best efficiency, the LP's measure of capacity) is kept; with an
interference form the filled layouts are re-evaluated with the checker's slowdowns first.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from stsched.heuristic.contents import _options, _options_after, _take, _value
from stsched.heuristic.fit import EPS, fit_partition, headroom
from stsched.heuristic.model import Context
from stsched.heuristic.state import WGpu, WPart, clone, gpu_memory_ok, realize_gpu, refit_gpu

log = logging.getLogger(__name__)


def _single(ctx: Context, i: int, size: float, rate: float) -> WPart | None:
    """A partition for service i alone at `rate` (the fewest processes that serve it)."""
    for k in ctx.procs:
        f = fit_partition(ctx, size, k, [(i, rate)], [None])
        if f is not None:
            return WPart(size, k, [[i, rate]], fit=f)
    return None


def _sequence_value(ctx: Context, layout_idx: list[int], combo: tuple, rem: np.ndarray) -> float:
    left: dict[int, float] = {}
    value = 0.0
    for j, opt in zip(layout_idx, combo):
        if opt is None:
            continue
        taken = _take(ctx, j, opt, left, rem)
        for s, r in taken.items():
            left[s] = left.get(s, rem[s]) - r
        value += _value(ctx, taken)
    return value


def _choose(ctx: Context, layout_idx: list[int], rem: np.ndarray, cand: np.ndarray) -> tuple:
    """The contents of a layout's partitions chosen together (`_dfs`)."""
    cands = [_options(ctx, j, rem, cand) for j in layout_idx]
    return _dfs(ctx, layout_idx, cands, [max((o[0] for o in c), default=0.0) for c in cands], rem, cand)[0]


def _dfs(ctx: Context, layout_idx: list[int], first: list[list], top: list[float], rem: np.ndarray,
         cand: np.ndarray) -> tuple[tuple, float]:
    """Depth-first choice of every partition's content, pruned by the best value each remaining partition can
    add; the candidates of a partition are recomputed for what the partitions before it leave (options in
    decreasing value, so the first leaf is the greedy choice); at most `fill_combinations` option evaluations.
    `first` and `top` are the options of `rem` (`_options`), so the choice is memoised on the layout and `rem`.
    Returns the contents and their value (`_sequence_value` of them, summed in the same order)."""
    key = ("dfs", tuple(layout_idx), cand.tobytes(), rem[cand].tobytes())
    hit = ctx.memo.get(key)
    if hit is None:
        hit = ctx.remember(key, _dfs_search(ctx, layout_idx, first, top, rem, cand))
    return hit


def _dfs_search(ctx: Context, layout_idx: list[int], first: list[list], top: list[float], rem: np.ndarray,
                cand: np.ndarray) -> tuple[tuple, float]:
    n = len(layout_idx)
    suffix = [0.0] * (n + 1)
    for k in range(n - 1, -1, -1):
        suffix[k] = suffix[k + 1] + top[k]
    best: list = [-1.0, tuple([None] * n)]
    budget = [ctx.opts.fill_combinations]
    cb, rcb = cand.tobytes(), rem[cand].tobytes()

    def visit(k: int, left: dict[int, float], value: float, combo: list) -> None:
        if k == n:
            if value > best[0] + 1e-12:
                best[0], best[1] = value, tuple(combo)
            return
        if value + suffix[k] <= best[0] + 1e-12:
            return
        j = layout_idx[k]
        if left:
            options = _options_after(ctx, j, rem, cand, left, cb, rcb)
        else:
            options = first[k]
        tried = False
        for _, _, opt in options:
            if budget[0] <= 0 and best[0] >= 0:
                return
            budget[0] -= 1
            taken = _take(ctx, j, opt, left, rem)
            if not taken:
                continue
            tried = True
            nxt = dict(left)
            for s, r in taken.items():
                nxt[s] = nxt.get(s, rem[s]) - r
            visit(k + 1, nxt, value + _value(ctx, taken), combo + [opt])
        if not tried:
            visit(k + 1, left, value, combo + [None])

    visit(0, {}, 0.0, [])
    del visit  # the closure refers to itself: without this, a reference cycle that keeps the context alive
    return best[1], max(best[0], 0.0)


def _share(ctx: Context, part: WPart, j: int, rem: np.ndarray, cand: np.ndarray) -> None:
    """Temporal step: add residual loads of other services (of `cand`) to a partition its primary leaves
    unsaturated."""
    limit = ctx.instance.mechanism.max_tenants
    if part.procs > 1 or (limit is not None and len(part.tenants) >= limit):
        return
    rel = np.where(rem[cand] > 0, ctx.cap1[cand, j] / (part.size * ctx.eff[cand]), -1.0)
    order = [int(cand[t]) for t in np.argsort(-rel, kind="stable")[:ctx.opts.share_candidates + len(part.tenants)]
             if rel[t] > 0]
    tried = 0
    for s in order:
        if part.has(s) >= 0:
            continue
        if tried >= ctx.opts.share_candidates or (limit is not None and len(part.tenants) >= limit):
            break
        tried += 1
        # necessary condition: the cycle grows by at least s's shortest time, every latency must still hold
        e0 = ctx.suffix_min(s, part.size, 1)
        d0 = part.fit.duty if part.fit is not None else 0.0
        if (d0 + 2 * e0 > ctx.limit[s] or part.fit is not None and any(
                d0 + e0 + e > ctx.limit[t[0]] for t, e in zip(part.tenants, part.fit.exec_ms))):
            continue
        pairs = part.pairs() + [(s, 0.0)]
        h = headroom(ctx, part.size, 1, pairs, [None] * len(pairs), len(pairs) - 1)
        if h <= 0:
            continue
        take = min(rem[s], h)
        part.tenants.append([s, take])
        part.fit = fit_partition(ctx, part.size, 1, part.pairs(), [None] * len(part.tenants))
        if part.fit is None:  # cannot happen (headroom is exact); stay safe
            part.tenants.pop()
            part.fit = fit_partition(ctx, part.size, 1, part.pairs(), [None] * len(part.tenants))
            continue
        rem[s] -= take


def _build_shared(ctx: Context, size: float, taken: dict[int, float]) -> WPart | None:
    pairs = sorted(taken.items())
    for shrink in (1.0, 1 - 1e-7, 1 - 1e-5):
        rates = [(s, r * shrink) for s, r in pairs]
        f = fit_partition(ctx, size, 1, rates, [None] * len(rates))
        if f is not None:
            return WPart(size, 1, [[s, r] for s, r in rates], fit=f)
    return None


def fill_layout(ctx: Context, layout: tuple[float, ...], rem: np.ndarray,
                combo: tuple | None = None, cand: np.ndarray | None = None) -> tuple[WGpu, float]:
    """One GPU with `layout`, filled from the remaining demand `rem` (not modified) of the services `cand` (all
    servable ones by default); returns it and its work."""
    left = rem.copy()
    cand = ctx.servable if cand is None else cand
    layout_idx = [ctx.size_index(s) for s in layout]
    if combo is None:
        combo = _choose(ctx, layout_idx, left, cand)
    parts: list[WPart] = []
    for j, opt in zip(layout_idx, combo):
        size = ctx.sizes[j]
        if opt is None:
            continue
        taken = _take(ctx, j, opt, {}, left)
        if not taken:
            continue
        part = _single(ctx, opt[1], size, taken[opt[1]]) if opt[0] == "A" else _build_shared(ctx, size, taken)
        if part is None:
            continue
        for i, r in part.tenants:
            left[i] -= r
        parts.append(part)
    for part in parts:
        j = ctx.size_index(part.size)
        if any(r < ctx.cap1[i, j] * (1 - 1e-6) for i, r in part.tenants):
            _share(ctx, part, j, left, cand)
    # empty partitions of the layout may still take residual loads together
    used = [p.size for p in parts]
    for size in layout:  # partitions the options left empty
        if size in used:
            used.remove(size)
            continue
        if not np.any(left > 0):
            break
        j = ctx.size_index(size)
        part = WPart(size, 1, [])
        _share(ctx, part, j, left, cand)
        if part.tenants:
            parts.append(part)
    gpu = WGpu(parts)
    if ctx.interference:
        if not refit_gpu(ctx, gpu):
            realize_gpu(ctx, gpu)
    elif not gpu_memory_ok(ctx, gpu):
        realize_gpu(ctx, gpu)
    return gpu, gpu.load(ctx)


def build_gpu(ctx: Context, rem: np.ndarray, rng: np.random.Generator | None = None,
              layouts: list[tuple[float, ...]] | None = None, rank: int = 0,
              cand: np.ndarray | None = None) -> tuple[WGpu | None, float]:
    """`best_gpu`, memoised without `rng` (the constructions start from the same demand): a fresh copy."""
    cand = ctx.servable if cand is None else cand
    if rng is not None:
        return best_gpu(ctx, rem, rng, layouts, rank, cand)
    key = ("gpu", cand.tobytes(), rem[cand].tobytes(), None if layouts is None else tuple(layouts), rank)
    hit = ctx.memo.get(key)
    if hit is None:
        hit = ctx.remember(key, best_gpu(ctx, rem, None, layouts, rank, cand))
    gpu, value = hit
    return (None if gpu is None else clone([gpu])[0]), value


def _layout_index(ctx: Context, layout: tuple[float, ...]) -> list[int]:
    """The size indices of a layout's partitions (cached; read only)."""
    key = ("layout-index", layout)
    hit = ctx.suffix_cache.get(key)
    if hit is None:
        hit = ctx.suffix_cache[key] = [ctx.size_index(s) for s in layout]
    return hit


def best_gpu(ctx: Context, rem: np.ndarray, rng: np.random.Generator | None = None,
             layouts: list[tuple[float, ...]] | None = None, rank: int = 0,
             cand: np.ndarray | None = None) -> tuple[WGpu | None, float]:
    """The best filled layout for the next GPU (None when nothing of `rem` can be placed).

    Each layout gets an upper bound from its partitions' best options (on large instances only the
    `layout_shortlist` layouts with the largest sum of their partitions' best option values compete); in
    decreasing order of that bound the
    layouts' contents are chosen (`_dfs`) until no bound beats the best choice (branch and bound); the best
    `fill_layouts` choices are then filled completely (the temporal step) and the one serving the most work is
    kept (`rank` > 0: the rank-th best instead, a construction variant).  With interference the filled layouts
    are realised with the checker's slowdowns first.  Only the services `cand` are placed (default: all)."""
    cand = ctx.servable if cand is None else cand
    cache: dict[int, list] = {}
    heads = []
    for k, layout in enumerate(layouts if layouts is not None else ctx.layouts):
        idx = _layout_index(ctx, layout)
        for j in idx:
            if j not in cache:
                cache[j] = _options(ctx, j, rem, cand)
        cands = [cache[j] for j in idx]
        bound = sum(max((o[1] for o in c), default=0.0) for c in cands)
        if bound > 0:
            heads.append((bound, -len(layout), -k, layout, idx, cands))
    short = ctx.opts.shortlist_for(len(ctx.names))
    if short and len(heads) > short:  # large instances: only the layouts whose best contents look best
        heads.sort(key=lambda h: (sum(max((o[0] for o in c), default=0.0) for c in h[5]),) + h[:3], reverse=True)
        heads = heads[:short]
    heads.sort(key=lambda h: h[:3], reverse=True)
    scored, top = [], -1.0
    for bound, nlen, negk, layout, idx, cands in heads:
        if scored and bound <= top * (1 + 1e-9):
            break
        combo, value = _dfs(ctx, idx, cands, [max((o[0] for o in c), default=0.0) for c in cands], rem, cand)
        top = max(top, value)
        noise = 1.0 + (rng.uniform(0, 1e-3) if rng is not None else 0.0)
        scored.append((value * noise, nlen, negk, bound, layout, combo))
    scored.sort(key=lambda h: h[:3], reverse=True)
    filled: list[tuple[WGpu, float]] = []
    for n, (_, _, _, bound, layout, combo) in enumerate(scored):
        if filled and (n >= max(ctx.opts.fill_layouts, rank + 1)
                       or (rank == 0 and bound <= filled[0][1] * (1 + 1e-9))):
            break
        gpu, served = fill_layout(ctx, layout, rem, combo, cand)
        if served <= 0:
            continue
        if ctx.interference:
            realize_gpu(ctx, gpu)
            served = gpu.load(ctx)
        filled.append((gpu, served))
        filled.sort(key=lambda f: -f[1])
    if not filled:
        return None, 0.0
    return filled[min(rank, len(filled) - 1)]


def construct(ctx: Context, demand: np.ndarray, rng: np.random.Generator | None = None,
              limit: int | None = None, target: int | None = None,
              first_rank: int = 0, hopeless: bool = False) -> tuple[list[WGpu], np.ndarray]:
    """Greedy GPU-by-GPU construction; returns the GPUs and the demand left unplaced (zero when complete).

    With a `target` number of GPUs the construction is balanced: GPU k first tries to serve exactly its share
    rem / (target - k) of what is left (so that equal GPUs replicate a good mix instead of the first GPUs taking
    the most valuable services), and falls back to the plain greedy choice when it cannot.  `first_rank` > 0
    starts from the first GPU's rank-th best layout instead of its best (the greedy's first choice is the one
    that most often leaves an awkward remainder).  `hopeless` (with a `limit`): stop as soon as the GPUs built
    plus the fewest that the demand left needs (its work at best efficiency over a GPU's capacity, the LP's
    measure) exceed `limit`: the construction cannot end within it (the demand left is then not zero)."""
    rem = np.array(demand, dtype=float)
    tol = EPS * np.maximum(1.0, rem)
    rem[rem <= tol] = 0.0
    gpus: list[WGpu] = []
    pool = Pool(ctx, rem)
    inv = np.where(ctx.eff > 0, 1.0 / np.where(ctx.eff > 0, ctx.eff, 1.0), 0.0) if hopeless else None
    while np.any(rem > 0):
        if limit is not None and len(gpus) >= limit:
            break
        if inv is not None and limit is not None and (
                len(gpus) + math.ceil(float(rem @ inv) / ctx.capacity - 1e-6) > limit):
            break
        ctx.tick()
        cand = pool.members(rem)
        gpu = None
        if target is not None and target - len(gpus) > 1:
            share = rem / (target - len(gpus))
            trial, _ = build_gpu(ctx, share, rng, cand=cand)
            if trial is not None:
                got = trial.served()
                if all(got.get(i, 0.0) >= share[i] * (1 - 1e-7) for i in np.nonzero(share > 0)[0]):
                    gpu = trial
        if gpu is None:
            gpu, value = build_gpu(ctx, rem, rng, rank=first_rank if not gpus else 0, cand=cand)
            if (gpu is None or value <= 0) and pool.size:  # nothing of the pool fits: every service may
                gpu, value = build_gpu(ctx, rem, rng, rank=first_rank if not gpus else 0)
            if gpu is None or value <= 0:
                break
        served = gpu.served()
        for i, r in served.items():
            rem[i] = max(0.0, rem[i] - r)
        rem[rem <= tol] = 0.0
        gpus.append(gpu)
        # the same GPU again while the load left still fills it (the bulk of large services): no new search
        while (target is None and (first_rank == 0 or len(gpus) > 1) and (limit is None or len(gpus) < limit)
               and all(rem[i] >= r * (1 + 1e-9) for i, r in served.items())):
            ctx.tick()
            gpus.append(clone([gpu])[0])
            for i, r in served.items():
                rem[i] = max(0.0, rem[i] - r)
            rem[rem <= tol] = 0.0
    return gpus, rem


class Pool:
    """The services a construction's next GPU may take (`HeuristicOptions.pool`): every servable service, or on
    large instances the first `pool` of them (index order) with demand left, refilled in that order as they are
    served.  `members` costs O(pool) per GPU, so a construction's work grows linearly with the services."""

    def __init__(self, ctx: Context, rem: np.ndarray) -> None:
        self.size = ctx.opts.pool_for(len(ctx.names))
        self.all = ctx.servable
        self.queue = [int(i) for i in ctx.servable if rem[i] > 0] if self.size else []
        self.next = 0
        self.current: list[int] = []
        self._arr: np.ndarray | None = None

    def members(self, rem: np.ndarray) -> np.ndarray:
        """Ascending indices of the pool's services (refilled for the demand `rem` left)."""
        if not self.size:
            return self.all
        keep = [i for i in self.current if rem[i] > 0]
        changed = len(keep) != len(self.current)
        while len(keep) < self.size and self.next < len(self.queue):
            i = self.queue[self.next]
            self.next += 1
            if rem[i] > 0:
                keep.append(i)
                changed = True
        if changed or self._arr is None:
            self.current = keep
            self._arr = np.array(sorted(keep), dtype=np.int64)
        return self._arr
