"""The bounded local search: moves that remove GPUs (min-gpus) and make room for a larger alpha (max-scale).

- move: empty the least loaded GPU: its partitions move whole into free space elsewhere (`relocate`), what is
  left goes into the others' slack (`absorb`), first by raising the rates of tenants that already serve the
  service (temporal only), then by adding it as a tenant of partitions with spare time, then by opening a
  partition in free space or resizing a partition into it;
- merge: rebuild the k least loaded GPUs (k = 2 .. merge_group) on k - 1 GPUs with the constructive fill, the
  leftover absorbed elsewhere;
- swap: exchange the services of two partitions on different GPUs when that lets the move above succeed
  (tried on the least loaded GPU's partitions only);
- descent: the least loaded GPU removed, the others' partition contents re-chosen by a coordinate descent until
  they cover its load too (`descent.descend`, bounded by `descent_budget` evaluations per partition).
Every accepted step re-fits the GPUs it touched with the conservative interference evaluation, so the state stays
valid; the search stops at the LP bound, when no step succeeds, or at the deadline.
"""

from __future__ import annotations

import itertools
import logging
import time

import numpy as np

from stsched.checker import find_mig_starts
from stsched.heuristic.construct import construct
from stsched.heuristic.fit import EPS, headroom
from stsched.heuristic.model import Context
from stsched.plan import Partition
from stsched.heuristic.descent import descend
from stsched.heuristic.state import (WGpu, WPart, clone, clone_part, gpu_memory_ok, refit_gpu, refit_part,
                                     tenant_headroom)

log = logging.getLogger(__name__)


def _tol(r: float) -> float:
    return EPS * max(1.0, r)


def can_add(ctx: Context, gpu: WGpu, size: float, drop: int | None = None) -> bool:
    """Whether a partition of `size` fits next to the GPU's partitions (partition `drop` left out)."""
    parts = [p for q, p in enumerate(gpu.parts) if q != drop]
    mech = ctx.instance.mechanism
    if mech.max_partitions is not None and len(parts) + 1 > mech.max_partitions:
        return False
    if ctx.mig:
        key = ("mig-legal", tuple(sorted((p.size, p.start if p.start is not None else -1) for p in parts)), size)
        hit = ctx.suffix_cache.get(key)
        if hit is None:
            hit = ctx.suffix_cache[key] = find_mig_starts(
                mech.placements, tuple(Partition(p.size, (), start=p.start) for p in parts)
                + (Partition(size, ()),)) is not None
        return hit
    return sum(p.size for p in parts) + size <= ctx.capacity * (1 + 1e-9)


def _raise_existing(ctx: Context, gpus: list[WGpu], i: int, need: float) -> float:
    """Serve up to `need` more of service i through its existing tenants; returns what is left."""
    for g in gpus:
        for q, p in enumerate(g.parts):
            if need <= _tol(need):
                return 0.0
            pos = p.has(i)
            if pos < 0:
                continue
            cur = p.tenants[pos][1]
            h = tenant_headroom(ctx, g, q, pos)
            if h <= cur * (1 + 1e-9):
                continue
            add = min(need, h - cur)
            p.tenants[pos][1] = cur + add
            if refit_part(ctx, g, q):
                need -= add
            else:
                p.tenants[pos][1] = cur
                refit_part(ctx, g, q)
    return max(0.0, need)


def _join(ctx: Context, gpus: list[WGpu], i: int, need: float) -> float:
    """Add service i as a new tenant of partitions with spare time (with interference the tenant sets of the
    GPU's other partitions see a new neighbour: the whole GPU is re-fitted)."""
    limit = ctx.instance.mechanism.max_tenants
    e0 = {}
    for gi in range(len(gpus)):
        for q in range(len(gpus[gi].parts)):
            if need <= _tol(need):
                return 0.0
            p = gpus[gi].parts[q]
            if (not p.tenants or p.procs > 1 or p.has(i) >= 0 or (limit is not None and len(p.tenants) >= limit)
                    or (i, p.size, 1) not in ctx.exec_ms):
                continue
            if p.size not in e0:
                e0[p.size] = ctx.suffix_min(i, p.size, 1)
            e = e0[p.size]
            if p.fit is not None and (p.fit.duty + 2 * e > ctx.limit[i] or any(
                    p.fit.duty + e + et > ctx.limit[t[0]] for t, et in zip(p.tenants, p.fit.exec_ms))):
                continue
            if not ctx.interference:
                pairs = p.pairs() + [(i, 0.0)]
                h = headroom(ctx, p.size, 1, pairs, [None] * len(pairs), len(pairs) - 1)
                if h <= 0:
                    continue
                p.tenants.append([i, min(need, h)])
                p.given = None
                if refit_part(ctx, gpus[gi], q) and gpu_memory_ok(ctx, gpus[gi]):
                    need -= p.tenants[-1][1]
                else:
                    p.tenants.pop()
                    refit_part(ctx, gpus[gi], q)
                continue
            trial = clone([gpus[gi]])[0]
            trial.parts[q].tenants.append([i, 0.0])
            if not refit_gpu(ctx, trial):
                continue
            h = tenant_headroom(ctx, trial, q, len(trial.parts[q].tenants) - 1)
            if h <= 0:
                continue
            trial.parts[q].tenants[-1][1] = min(need, h)
            if refit_part(ctx, trial, q):
                need -= trial.parts[q].tenants[-1][1]
                gpus[gi] = trial
    return max(0.0, need)


def _open(ctx: Context, gpus: list[WGpu], i: int, need: float) -> float:
    """Open a partition for service i in free space (smallest size that takes all of `need`, else the largest),
    or resize one of its partitions into free space."""
    order = sorted(range(len(gpus)), key=lambda g: -sum(p.size for p in gpus[g].parts))  # fullest first
    for gi in order:
        if need <= _tol(need):
            return 0.0
        best = None  # (extra rate it can serve, trial GPU, partition index)
        for size in ctx.sizes:
            if not can_add(ctx, gpus[gi], size):
                continue
            for k in ctx.procs:
                if (i, size, k) not in ctx.exec_ms:
                    continue
                trial = clone([gpus[gi]])[0]
                trial.parts.append(WPart(size, k, [[i, 0.0]]))
                if not refit_gpu(ctx, trial):
                    continue
                h = tenant_headroom(ctx, trial, len(trial.parts) - 1, 0)
                if h > 0 and (best is None or (best[0] < need and h > best[0])):
                    best = (h, trial, len(trial.parts) - 1)
                if h >= need:
                    break
            if best is not None and best[0] >= need:
                break
        if best is None or best[0] < need:
            best = _resize(ctx, gpus[gi], i, need, best)
        if best is None:
            continue
        gain, trial, q = best
        pos = trial.parts[q].has(i)
        cur = trial.parts[q].tenants[pos][1]
        add = min(need, gain)
        trial.parts[q].tenants[pos][1] = cur + add
        if refit_part(ctx, trial, q) and refit_gpu(ctx, trial):
            need -= add
            gpus[gi] = trial
    return max(0.0, need)


def _resize(ctx: Context, gpu: WGpu, i: int, need: float, best):
    """Grow a single-tenant partition of service i into the GPU's free space if that serves more than `best`."""
    for q, p in enumerate(gpu.parts):
        if p.has(i) < 0 or len(p.tenants) != 1:
            continue
        cur = p.tenants[0][1]
        for size in ctx.sizes:
            if size <= p.size or not can_add(ctx, gpu, size, drop=q) or (i, size, p.procs) not in ctx.exec_ms:
                continue
            trial = clone([gpu])[0]
            trial.parts[q].size = size
            trial.parts[q].start = None
            trial.parts[q].given = None
            if not refit_gpu(ctx, trial):
                continue
            h = tenant_headroom(ctx, trial, q, 0)
            gain = h - cur
            if gain > 0 and (best is None or (best[0] < need and gain > best[0])):
                best = (gain, trial, q)
    return best


def absorb(ctx: Context, gpus: list[WGpu], loads: dict[int, float], allow_layout: bool = True) -> dict[int, float]:
    """Serve extra `loads` {service: rate} in `gpus` (modified in place); returns what could not be served."""
    rem = {i: r for i, r in loads.items() if r > _tol(r)}
    order = sorted(rem, key=lambda i: -rem[i] / max(ctx.eff[i], 1e-12))
    for step in (_raise_existing, _join) + ((_open,) if allow_layout else ()):
        for i in order:
            if rem.get(i, 0.0) > 0:
                rem[i] = step(ctx, gpus, i, rem[i])
        rem = {i: r for i, r in rem.items() if r > _tol(loads[i])}
        if not rem:
            break
    if rem and allow_layout:
        for i in order:  # a partition opened for one service may take others as tenants
            if rem.get(i, 0.0) > 0:
                rem[i] = _join(ctx, gpus, i, rem[i])
        rem = {i: r for i, r in rem.items() if r > _tol(loads[i])}
    return rem


def shrink(ctx: Context, gpus: list[WGpu]) -> None:
    """Resize down: every partition to the smallest size that still serves its tenants (frees room for moves)."""
    for gpu in gpus:
        for q, p in enumerate(gpu.parts):
            if not p.tenants or p.given is not None:
                continue
            for size in ctx.sizes:
                if size >= p.size:
                    break
                if any((i, size, p.procs) not in ctx.exec_ms for i, _ in p.tenants):
                    continue
                if not can_add(ctx, gpu, size, drop=q):
                    continue
                old = (p.size, p.start, p.fit, p.slows)
                p.size, p.start = size, None
                if refit_gpu(ctx, gpu):
                    break
                p.size, p.start, p.fit, p.slows = old
                refit_gpu(ctx, gpu)


def remove_gpu(ctx: Context, gpus: list[WGpu], g: int) -> list[WGpu] | None:
    """Move: the state without GPU g, its load absorbed by the others, or None."""
    free = sum(ctx.capacity - x.load(ctx) for k, x in enumerate(gpus) if k != g)
    if free < gpus[g].load(ctx) * (1 - 1e-9):
        return None  # no GPU serves more work than its capacity
    rest = clone([x for k, x in enumerate(gpus) if k != g])
    services = {i for p in gpus[g].parts for i, _ in p.tenants}
    near = nearby(ctx, rest, services)
    sub = [rest[k] for k in near]
    loads: dict[int, float] = {}
    for p in relocate(ctx, sub, [clone_part(p) for p in gpus[g].parts if p.tenants]):
        for i, r in p.tenants:
            loads[i] = loads.get(i, 0.0) + r
    left = absorb(ctx, sub, loads)
    for k, x in zip(near, sub):
        rest[k] = x
    return None if left else rest


NEARBY_LIGHT = 32  # large instances: the lightest GPUs (besides those serving the services) a move may use


def nearby(ctx: Context, gpus: list[WGpu], services: set[int]) -> list[int]:
    """The GPUs (indices) that a move of `services`' loads may change: every GPU, or on large instances
    (`HeuristicOptions.at_scale`) the GPUs already serving one of them and the NEARBY_LIGHT least loaded ones,
    so that a move costs the same at any instance size (the scan to find them is linear and cheap)."""
    if not ctx.opts.at_scale(len(ctx.names)) or len(gpus) <= NEARBY_LIGHT:
        return list(range(len(gpus)))
    hosts = {k for k, x in enumerate(gpus) if any(i in services for p in x.parts for i, _ in p.tenants)}
    loads = [x.load(ctx) for x in gpus]
    light = sorted(range(len(gpus)), key=lambda k: loads[k])[:NEARBY_LIGHT]
    return sorted(hosts.union(light))


def relocate(ctx: Context, gpus: list[WGpu], parts: list[WPart]) -> list[WPart]:
    """Move whole partitions (tenants and rates kept) into free space on `gpus`, fullest GPU first; returns the
    partitions that found no place."""
    left = []
    for part in sorted(parts, key=lambda p: -p.size):
        part.start, part.given = None, None
        order = sorted(range(len(gpus)), key=lambda k: -sum(p.size for p in gpus[k].parts))
        for k in order:
            g = gpus[k]
            if not can_add(ctx, g, part.size):
                continue
            g.parts.append(part)
            if refit_gpu(ctx, g):
                break
            g.parts.pop()
            refit_gpu(ctx, g)
        else:
            left.append(part)
    return left


def merge(ctx: Context, gpus: list[WGpu], k: int, deadline: float) -> list[WGpu] | None:
    """Merge: rebuild k lightly loaded GPUs on k - 1."""
    if len(gpus) < k:
        return None
    loads = [g.load(ctx) for g in gpus]
    pool = sorted(range(len(gpus)), key=lambda g: loads[g])[:k + 2]
    for tries, group in enumerate(itertools.combinations(pool, k)):
        if tries >= ctx.opts.merge_tries or time.perf_counter() > deadline:
            break
        if sum(loads[g] for g in group) > (k - 1) * ctx.capacity * (1 + 1e-9):
            continue
        demand = np.zeros(len(ctx.names))
        for g in group:
            for i, r in gpus[g].served().items():
                demand[i] += r
        new, rem = construct(ctx, demand, limit=k - 1)
        rest = clone([x for j, x in enumerate(gpus) if j not in group])
        if np.any(rem > 0):
            left = {int(i): float(rem[i]) for i in np.nonzero(rem)[0]}
            near = nearby(ctx, rest, set(left))
            sub = [rest[j] for j in near]
            if absorb(ctx, sub, left):
                continue  # something could not be placed
            for j, x in zip(near, sub):
                rest[j] = x
        return rest + new
    return None


def swap(ctx: Context, gpus: list[WGpu], g: int, deadline: float) -> list[WGpu] | None:
    """Swap: exchange a partition's tenants on GPU g with those of an equal-size partition elsewhere, then try
    to empty g.  Only useful where interference or memory depend on who sits next to whom."""
    if not ctx.interference:
        return None
    for q, p in enumerate(gpus[g].parts):
        for h in range(len(gpus)):
            if h == g or time.perf_counter() > deadline:
                continue
            for r, other in enumerate(gpus[h].parts):
                if other.size != p.size or other.procs != p.procs:
                    continue
                trial = clone(gpus)
                trial[g].parts[q].tenants, trial[h].parts[r].tenants = (trial[h].parts[r].tenants,
                                                                      trial[g].parts[q].tenants)
                if not (refit_gpu(ctx, trial[g]) and refit_gpu(ctx, trial[h])):
                    continue
                moved = remove_gpu(ctx, trial, g)
                if moved is not None:
                    return moved
    return None


def improve(ctx: Context, gpus: list[WGpu], lower: int, deadline: float, descent: bool = True) -> list[WGpu]:
    """Local search for fewer GPUs (stops at `lower`, the LP bound, or the deadline).  The coordinate descent
    (`descent.descend`) is the last resort, for instances of at most `descent_bank` services."""
    if len(gpus) > lower:
        shrink(ctx, gpus)
    for _ in range(max(1, ctx.opts.search_rounds) * max(1, len(gpus))):
        if len(gpus) <= lower or time.perf_counter() > deadline:
            break
        loads = [g.load(ctx) for g in gpus]
        order = sorted(range(len(gpus)), key=lambda g: loads[g])
        new = None
        for g in order[:max(1, ctx.opts.search_rounds)]:
            new = remove_gpu(ctx, gpus, g)
            if new is not None or time.perf_counter() > deadline:
                break
        if new is None:
            for k in range(2, ctx.opts.merge_group + 1):
                new = merge(ctx, gpus, k, deadline)
                if new is not None:
                    break
        if new is None and order:
            new = swap(ctx, gpus, order[0], deadline)
        if new is None and order and descent and len(ctx.names) <= ctx.opts.descent_bank:
            new = descend(ctx, [x for k, x in enumerate(gpus) if k != order[0]], gpus[order[0]].served(), deadline)
        if new is None:
            break
        gpus = [g for g in new if g.used]
        shrink(ctx, gpus)
    return gpus
