"""Construction: the spatial step (saturated partitions at the services' efficient sizes), the temporal step
(residual loads sharing partitions) and the GPU-by-GPU greedy that combines them.

Every GPU is built by trying each candidate layout (`Context.layouts`, from few sizes) and filling it:
1. spatial: each partition gets a primary service.  A primary whose remaining load saturates the partition runs at
   its best single-tenant point (throughput per unit of capacity is what the knee measures); the primaries of a
   layout are chosen together (all combinations of each partition's best few candidates, greedy beyond a cap).
2. temporal: a partition whose primary is not saturated takes further tenants, the residual loads of other
   services, each at the largest rate the latency rule still allows (`fit.headroom`), so no partition runs half
   empty while residual load waits.
The layout serving the most work (requests weighted by 1 / the service's best efficiency, the LP's measure of
capacity) is kept; with an interference form the best few are re-evaluated with the checker's slowdowns first.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

from stsched.heuristic.fit import EPS, fit_partition, headroom
from stsched.heuristic.model import Context
from stsched.heuristic.state import WGpu, WPart, gpu_memory_ok, realize_gpu, refit_gpu

log = logging.getLogger(__name__)


def _single(ctx: Context, i: int, size: float, rate: float) -> WPart | None:
    """A partition for service i alone at `rate` (the fewest processes that serve it)."""
    for k in ctx.procs:
        f = fit_partition(ctx, size, k, [(i, rate)], [None])
        if f is not None:
            return WPart(size, k, [[i, rate]], fit=f)
    return None


def _primary_value(ctx: Context, layout_idx: list[int], combo: tuple, rem: np.ndarray) -> float:
    left: dict[int, float] = {}
    value = 0.0
    for j, s in zip(layout_idx, combo):
        if s < 0:
            continue
        r = left.get(s, rem[s])
        take = min(r, ctx.cap1[s, j])
        left[s] = r - take
        value += take / ctx.eff[s]
    return value


def _choose_primaries(ctx: Context, layout_idx: list[int], rem: np.ndarray, valid: np.ndarray) -> tuple:
    m = ctx.opts.fill_branching
    cands = []
    for j in layout_idx:
        vals = np.where(valid, np.minimum(rem, ctx.cap1[:, j]) / np.where(valid, ctx.eff, 1.0), 0.0)
        order = np.argsort(-vals, kind="stable")[:m]
        top = [int(s) for s in order if vals[s] > 0]
        cands.append(top or [-1])
    total = 1
    for c in cands:
        total *= len(c)
    if total <= ctx.opts.fill_combinations:
        best, best_v = None, -1.0
        for combo in itertools.product(*cands):
            v = _primary_value(ctx, layout_idx, combo, rem)
            if v > best_v + 1e-12:
                best, best_v = combo, v
        return best
    combo = []  # greedy: each partition (largest first) takes the best service of what is left
    left = rem.copy()
    for j in layout_idx:
        vals = np.where(valid, np.minimum(left, ctx.cap1[:, j]) / np.where(valid, ctx.eff, 1.0), 0.0)
        s = int(np.argmax(vals))
        if vals[s] <= 0:
            combo.append(-1)
            continue
        combo.append(s)
        left[s] -= min(left[s], ctx.cap1[s, j])
    return tuple(combo)


def _share(ctx: Context, part: WPart, j: int, rem: np.ndarray, valid: np.ndarray) -> None:
    """Temporal step: add residual loads of other services to a partition its primary leaves unsaturated."""
    limit = ctx.instance.mechanism.max_tenants
    if part.procs > 1 or (limit is not None and len(part.tenants) >= limit):
        return
    rel = np.where(valid & (rem > 0), ctx.cap1[:, j] / (part.size * np.where(valid, ctx.eff, 1.0)), -1.0)
    order = [int(s) for s in np.argsort(-rel, kind="stable")[:ctx.opts.share_candidates + len(part.tenants)]
             if rel[s] > 0]
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
        if (d0 + 2 * e0 > ctx.budget[s] * (1 + EPS) or part.fit is not None and any(
                d0 + e0 + e > ctx.budget[t[0]] * (1 + EPS) for t, e in zip(part.tenants, part.fit.exec_ms))):
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


def primaries(ctx: Context, layout: tuple[float, ...], rem: np.ndarray) -> tuple[tuple, float]:
    """The primary services of a layout and an upper bound on the work a filled layout can serve.

    A partition never serves more work than its size (time sharing cannot beat a service's best efficiency),
    and its primary holds at least the share take / cap1 of its time, so the rest of it serves at most
    size x (1 - take / cap1) more."""
    valid = ctx.eff > 0
    layout_idx = [ctx.size_index(s) for s in layout]
    combo = _choose_primaries(ctx, layout_idx, rem, valid)
    left: dict[int, float] = {}
    bound = 0.0
    for j, s in zip(layout_idx, combo):
        size = ctx.sizes[j]
        if s < 0:
            bound += size
            continue
        r = left.get(s, rem[s])
        take = min(r, ctx.cap1[s, j])
        left[s] = r - take
        bound += take / ctx.eff[s] + size * (1 - take / ctx.cap1[s, j])
    return combo, bound


def fill_layout(ctx: Context, layout: tuple[float, ...], rem: np.ndarray,
                combo: tuple | None = None) -> tuple[WGpu, float]:
    """One GPU with `layout`, filled from the remaining demand `rem` (not modified); returns it and its work."""
    left = rem.copy()
    valid = ctx.eff > 0
    layout_idx = [ctx.size_index(s) for s in layout]
    if combo is None:
        combo = _choose_primaries(ctx, layout_idx, left, valid)
    parts: list[WPart] = []
    for j, s in zip(layout_idx, combo):
        size = ctx.sizes[j]
        if s < 0 or left[s] <= 0:
            continue
        take = min(left[s], ctx.cap1[s, j])
        part = _single(ctx, s, size, take)
        if part is None:
            continue
        left[s] -= take
        parts.append(part)
    for part in parts:
        i, r = part.tenants[0]
        j = ctx.size_index(part.size)
        if r < ctx.cap1[i, j] * (1 - 1e-6):
            _share(ctx, part, j, left, valid)
    # empty partitions of the layout may still take residual loads together
    used = [p.size for p in parts]
    for size in layout:
        if size in used:
            used.remove(size)
            continue
        if not np.any(left > 0):
            break
        j = ctx.size_index(size)
        part = WPart(size, 1, [])
        _share(ctx, part, j, left, valid)
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
              layouts: list[tuple[float, ...]] | None = None) -> tuple[WGpu | None, float]:
    """The best filled layout for the next GPU (None when nothing of `rem` can be placed).

    Layouts are filled in decreasing order of their upper bound (`primaries`) until no unfilled layout can beat
    the best filled ones (branch and bound: the same choice as filling every layout)."""
    heads = []
    for k, layout in enumerate(layouts if layouts is not None else ctx.layouts):
        combo, bound = primaries(ctx, layout, rem)
        if bound > 0:
            heads.append((bound, k, layout, combo))
    heads.sort(key=lambda h: (-h[0], h[1]))
    keep = ctx.opts.interference_topk if ctx.interference else 1
    scored = []
    for bound, k, layout, combo in heads:
        if len(scored) >= keep and bound * (1 + 2e-3) < sorted(x[0] for x in scored)[-keep]:
            break
        gpu, value = fill_layout(ctx, layout, rem, combo)
        if value <= 0:
            continue
        noise = 1.0 + (rng.uniform(0, 1e-3) if rng is not None else 0.0)
        scored.append((value * noise, -len(gpu.parts), -k, gpu, value))
    if not scored:
        return None, 0.0
    scored.sort(key=lambda x: x[:3], reverse=True)
    if ctx.interference:
        best = None
        for _, _, _, gpu, _ in scored[:ctx.opts.interference_topk]:
            realize_gpu(ctx, gpu)
            v = gpu.load(ctx)
            if best is None or v > best[1] + 1e-9:
                best = (gpu, v)
        return best
    return scored[0][3], scored[0][4]


def construct(ctx: Context, demand: np.ndarray, rng: np.random.Generator | None = None,
              limit: int | None = None) -> tuple[list[WGpu], np.ndarray]:
    """Greedy GPU-by-GPU construction; returns the GPUs and the demand left unplaced (zero when complete)."""
    rem = np.array(demand, dtype=float)
    tol = EPS * np.maximum(1.0, rem)
    rem[rem <= tol] = 0.0
    gpus: list[WGpu] = []
    while np.any(rem > 0):
        if limit is not None and len(gpus) >= limit:
            break
        gpu, value = build_gpu(ctx, rem, rng)
        if gpu is None or value <= 0:
            break
        for i, r in gpu.served().items():
            rem[i] = max(0.0, rem[i] - r)
        rem[rem <= tol] = 0.0
        gpus.append(gpu)
    return gpus, rem
