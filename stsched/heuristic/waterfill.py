"""Water-filling of a layout: the temporal step as next-fit with splitting.

The partitions of a layout (largest first) are filled in turn from the services in decreasing order of their
remaining work: a partition opens with the next service (alone, at its best operating point when its load
saturates the partition, else at its remaining rate), then takes further services at the largest rates the
latency rule allows (`fit.headroom`) until none fits; a service that does not fit whole continues in the next
partition.  Every service is split over at most a few consecutive partitions, and every partition runs full while
load remains: the packing the LP relaxation suggests, corrected by the latency rule.  `construct` compares it
with the option-based fill of every layout.
"""

from __future__ import annotations

import numpy as np

from stsched.heuristic.fit import EPS, fit_partition, headroom
from stsched.heuristic.model import Context
from stsched.heuristic.state import WGpu, WPart


def _open(ctx: Context, i: int, size: float, rate: float) -> WPart | None:
    for k in ctx.procs:
        f = fit_partition(ctx, size, k, [(i, rate)], [None])
        if f is not None:
            return WPart(size, k, [[i, rate]], fit=f)
    return None


def _add(ctx: Context, part: WPart, i: int, need: float) -> float:
    """Add service i to a shared partition at up to `need` req/s; returns the rate it took (0: none)."""
    limit = ctx.instance.mechanism.max_tenants
    if part.procs > 1 or (limit is not None and len(part.tenants) >= limit) or (i, part.size, 1) not in ctx.exec_ms:
        return 0.0
    e0 = ctx.suffix_min(i, part.size, 1)
    d0 = part.fit.duty
    if d0 + 2 * e0 > ctx.budget[i] * (1 + EPS) or any(
            d0 + e0 + e > ctx.budget[t[0]] * (1 + EPS) for t, e in zip(part.tenants, part.fit.exec_ms)):
        return 0.0
    pairs = part.pairs() + [(i, 0.0)]
    h = headroom(ctx, part.size, 1, pairs, [None] * len(pairs), len(pairs) - 1)
    if h <= 0:
        return 0.0
    take = min(need, h)
    part.tenants.append([i, take])
    f = fit_partition(ctx, part.size, 1, part.pairs(), [None] * len(part.tenants))
    if f is None:
        part.tenants.pop()
        return 0.0
    part.fit = f
    return take


def waterfill(ctx: Context, layout: tuple[float, ...], rem: np.ndarray) -> WGpu:
    """One GPU with `layout` filled by next-fit with splitting from `rem` (not modified)."""
    left = rem.copy()
    tol = EPS * np.maximum(1.0, rem)
    order = [int(i) for i in np.argsort(-(left / np.where(ctx.eff > 0, ctx.eff, np.inf)), kind="stable")
             if left[i] > tol[i] and ctx.eff[i] > 0]
    parts: list[WPart] = []
    for size in sorted(layout, reverse=True):
        j = ctx.size_index(size)
        part = None
        misses = 0
        for i in order:
            if left[i] <= tol[i]:
                continue
            if part is None:
                cap = ctx.cap1[i, j]
                if cap <= 0:
                    continue
                take = min(left[i], cap)
                part = _open(ctx, i, size, take)
                if part is None:
                    continue
                left[i] -= take
                if take >= cap * (1 - 1e-6):
                    break  # saturated by one service
                continue
            took = _add(ctx, part, i, float(left[i]))
            if took > 0:
                left[i] -= took
                if left[i] > tol[i]:
                    break  # the partition is full: the service continues in the next one
            else:
                misses += 1
                if misses >= ctx.opts.share_candidates:
                    break
        if part is not None:
            parts.append(part)
    return WGpu(parts)
