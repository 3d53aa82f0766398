"""Shared partitions at full load: the capacity vectors of a tenant set over all its batch vectors.

A partition time-shared by the services T at batches b (one per tenant) runs the cycle d = sum_s e_s(b_s) and
serves service s at most 1000 b_s / d req/s, legal when d + e_s(b_s) <= budget_s for all s (docs/RULES.md, one
process).  Serving the tenants in given proportions w (the remaining demands), the largest load is
lambda * w with lambda = max over batch vectors of min_s cap_s / w_s.  The batch vectors of a (size, tenant set)
are enumerated once (numpy broadcasting over the instance's batch grid) and cached; solo times are used, the
interference of neighbours is applied when the GPU is realised (`state.realize_gpu`).
"""

from __future__ import annotations

import numpy as np

from stsched.checker import tolerant_limit
from stsched.heuristic.model import Context


def _points(ctx: Context, i: int, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Execution times, credited batches (`Context.credit`) and memory of service i's one-process points at `size`
    with 2 e <= budget."""
    key = ("points", i, size)
    if key in ctx.suffix_cache:
        return ctx.suffix_cache[key]
    ex = ctx.exec_ms.get((i, size, 1)) or ()
    idx = [bi for bi, e in enumerate(ex) if e is not None and 2 * e <= ctx.limit[i]]
    out = None
    if idx:
        out = (np.array([ex[bi] for bi in idx]), np.array([ctx.credit[bi] for bi in idx], dtype=float),
               np.array([ctx.mem[(i, size, 1)][bi] for bi in idx]))
    ctx.suffix_cache[key] = out
    return out


def share_configs(ctx: Context, size: float, tenants: tuple[int, ...]):
    """The capacity (req/s) of each tenant, one row per legal batch vector (none when no vector is legal); for
    pairs only the Pareto front, as a list of tuples (pure Python is faster on a handful of rows)."""
    key = ("share", size, tenants)
    hit = ctx.suffix_cache.get(key)
    if hit is not None:
        return hit
    k = len(tenants)
    pts = [_points(ctx, i, size) for i in tenants]
    if any(p is None for p in pts):
        ctx.suffix_cache[key] = [] if k == 2 else np.zeros((0, k))
        return ctx.suffix_cache[key]
    cap = ctx.slice_memory(size)
    if k == 2:
        (ea, ba, ma), (eb, bb, mb) = pts
        d = ea[:, None] + eb[None, :]
        ok = (d + ea[:, None] <= ctx.limit[tenants[0]]) & \
             (d + eb[None, :] <= ctx.limit[tenants[1]])
        if cap is not None:
            ok &= ctx.instance.device.context_mb + ma[:, None] + mb[None, :] <= tolerant_limit(cap)  # (`stsched.layouts.fits`, vectorised)
        ia, ib = np.nonzero(ok)
        dd = d[ia, ib]
        rows = np.stack([1000.0 * ba[ia] / dd, 1000.0 * bb[ib] / dd], axis=1)
        if rows.shape[0] > 1:  # Pareto front of a pair: a dominated vector never gives a larger lambda
            rows = rows[np.lexsort((-rows[:, 1], -rows[:, 0]))]
            prev = np.maximum.accumulate(np.concatenate(([-np.inf], rows[:-1, 1])))
            rows = rows[rows[:, 1] > prev]
        ctx.suffix_cache[key] = [tuple(r) for r in rows.tolist()]
        return ctx.suffix_cache[key]
    shape = tuple(len(p[0]) for p in pts)
    grids_e = [p[0].reshape([-1 if a == s else 1 for a in range(k)]) for s, p in enumerate(pts)]
    d = np.zeros(shape)
    for g in grids_e:
        d = d + g
    ok = np.ones(shape, dtype=bool)
    for s, i in enumerate(tenants):
        ok &= d + grids_e[s] <= ctx.limit[i]
    if cap is not None:
        mem = np.full(shape, ctx.instance.device.context_mb)
        for s, p in enumerate(pts):
            mem = mem + p[2].reshape([-1 if a == s else 1 for a in range(k)])
        ok &= mem <= cap
    if not ok.any():
        rows = np.zeros((0, k))
    else:
        dd = d[ok]
        rows = np.stack([1000.0 * np.broadcast_to(p[1].reshape([-1 if a == s else 1 for a in range(k)]), shape)[ok]
                         / dd for s, p in enumerate(pts)], axis=1)
    ctx.suffix_cache[key] = rows
    return rows


def share_array(ctx: Context, size: float, tenants: tuple[int, ...]) -> np.ndarray:
    """`share_configs` as a numpy array (rows: batch vectors, columns: tenants)."""
    key = ("share-array", size, tenants)
    hit = ctx.suffix_cache.get(key)
    if hit is None:
        rows = share_configs(ctx, size, tenants)
        hit = ctx.suffix_cache[key] = np.asarray(rows, dtype=float).reshape(-1, len(tenants))
    return hit


def proportional(ctx: Context, size: float, tenants: tuple[int, ...], w) -> float:
    """The largest lambda such that lambda * w (req/s per tenant) fits one shared partition (0 when none)."""
    key = ("proportional", size, tenants, tuple(w))
    hit = ctx.memo.get(key)
    if hit is None:
        hit = ctx.remember(key, _proportional(ctx, size, tenants, w))
    return hit


def _proportional(ctx: Context, size: float, tenants: tuple[int, ...], w) -> float:
    rows = share_configs(ctx, size, tenants)
    if len(tenants) == 2:
        w0, w1 = w
        best = 0.0
        for c0, c1 in rows:
            lam = min(c0 / w0, c1 / w1)
            if lam > best:
                best = lam
        return best
    if rows.shape[0] == 0:
        return 0.0
    return float((rows / np.asarray(w, dtype=float)[None, :]).min(axis=1).max())
