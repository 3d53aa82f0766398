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

import bisect
import itertools
import logging
from dataclasses import dataclass

import numpy as np

from stsched.heuristic.fit import EPS, fit_partition, headroom
from stsched.heuristic.model import Context
from stsched.heuristic.shared import proportional
from stsched.heuristic.state import WGpu, WPart, clone, gpu_memory_ok, realize_gpu, refit_gpu

log = logging.getLogger(__name__)


def _single(ctx: Context, i: int, size: float, rate: float) -> WPart | None:
    """A partition for service i alone at `rate` (the fewest processes that serve it)."""
    for k in ctx.procs:
        f = fit_partition(ctx, size, k, [(i, rate)], [None])
        if f is not None:
            return WPart(size, k, [[i, rate]], fit=f)
    return None


Option = tuple  # ("A", service) one tenant; ("B", (services...)) a shared partition at proportional load


def _take(ctx: Context, j: int, opt: Option, left: dict[int, float], rem: np.ndarray) -> dict[int, float]:
    """The rates an option serves in a partition of size index j, given what is left of the demand."""
    if opt[0] == "A":
        s = opt[1]
        return {s: min(left.get(s, rem[s]), ctx.cap1[s, j])}
    tenants = opt[1]
    w = [left.get(s, rem[s]) for s in tenants]
    if min(w) <= 0:
        return {}
    lam = min(1.0, proportional(ctx, ctx.sizes[j], tenants, w))
    return {s: lam * x for s, x in zip(tenants, w)} if lam > 0 else {}


def _value(ctx: Context, taken: dict[int, float]) -> float:
    return sum(r / ctx.eff[s] for s, r in taken.items())


def _options(ctx: Context, j: int, rem: np.ndarray, cand: np.ndarray) -> list[tuple[float, float, Option]]:
    """Candidate contents of a partition of size index j: (value, upper bound on the filled value, option).

    Spatial: each of the best `fill_branching` services alone (the bound adds the time it leaves free).
    Temporal: tenant sets of the best `share_sets` services, served in proportion to their remaining demand.
    Sorted by value; the layout's joint choice considers the best `fill_branching` of them.  Only the services
    `cand` (ascending indices, all servable) are considered, so the cost grows with their number, not the
    instance's.  Memoised on the exact inputs (the same remaining demand recurs across layouts and
    constructions); the list is shared, read only."""
    cb = cand.tobytes()
    rc = rem[cand]
    key = ("options", j, cb, rc.tobytes())
    hit = ctx.memo.get(key)
    if hit is None:
        hit = ctx.remember(key, _options_of(ctx, j, rem, rc, _view(ctx, cand, cb)))
    return hit[0]


@dataclass(frozen=True)
class _View:
    """The per-size columns of the candidate services `cand` (a construction's pool changes only when one of its
    services is served, so these are sliced once per pool, not once per option list): best single-tenant
    capacity, best efficiency, one-process cycle capacity (with a safe divisor and its positivity)."""

    cand: np.ndarray
    cand_list: list[int]
    position: dict[int, int]  # service -> its position in cand
    cap1_list: list[list[float]]  # cap1 as lists, [size index][candidate]
    eff_list: list[float]
    capc_list: list[list[float]]  # capc as lists, [size index][candidate] (0: none)
    cap1: np.ndarray  # [size index, candidate]
    eff: np.ndarray  # [candidate]
    capc_pos: np.ndarray  # [size index, candidate]: capc > 0
    capc_div: np.ndarray  # [size index, candidate]: capc where > 0, else 1


def _view(ctx: Context, cand: np.ndarray, cb: bytes) -> _View:
    key = ("view", cb)
    hit = ctx.memo.get(key)
    if hit is None:
        capc = np.ascontiguousarray(ctx.capc[cand].T)
        cap1 = np.ascontiguousarray(ctx.cap1[cand].T)
        cl = cand.tolist()
        hit = ctx.remember(key, _View(cand, cl, {s: k for k, s in enumerate(cl)}, cap1.tolist(),
                                      ctx.eff[cand].tolist(), capc.tolist(), cap1, ctx.eff[cand], capc > 0,
                                      np.where(capc > 0, capc, 1.0)))
    return hit


@dataclass(frozen=True)
class _Base:
    """What `_options_after` needs of the option list of a remaining demand: the candidates' values (requests /
    best efficiency at this size) ranked as the options rank them, and the candidates whose whole remaining load
    fits one partition alone (time t = rem / capc < 1) sorted by t."""

    view: _View
    vals: list[float]
    rank: list[int]  # candidate positions by (-value, position)
    times: list[tuple[float, int]]  # (t, position) for t < 1, ascending


def _options_of(ctx: Context, j: int, rem: np.ndarray, rc: np.ndarray,
                view: _View) -> tuple[list[tuple[float, float, Option]], _Base]:
    """`_options` for the remaining demand `rem` (`rc`: its entries at the candidates of `view`), and the ranking
    that `_options_after` derives the options of a slightly smaller demand from."""
    arr = np.minimum(rc, view.cap1[j]) / view.eff
    t = np.where((rc > 0) & view.capc_pos[j], rc / view.capc_div[j], np.inf)
    sel = np.flatnonzero(t < 1.0)
    sel = sel[np.argsort(t[sel], kind="stable")].tolist()
    tl = t.tolist()
    base = _Base(view, arr.tolist(), np.argsort(-arr, kind="stable").tolist(), [(tl[k], k) for k in sel])
    return _assemble(ctx, j, rem, {}, base, {}), base


def _options_after(ctx: Context, j: int, rem: np.ndarray, cand: np.ndarray, left: dict[int, float], cb: bytes,
                   rcb: bytes) -> list[tuple[float, float, Option]]:
    """`_options` for `rem` with the services of `left` at the rates `left` gives (smaller: what the partitions
    before this one took), derived exactly from the ranking of `rem` (only those services' values change)."""
    key = ("after", j, cb, rcb, tuple(sorted(left.items())))
    hit = ctx.memo.get(key)
    if hit is not None:
        return hit
    base_hit = ctx.memo.get(("options", j, cb, rcb))
    if base_hit is None:  # the memo was emptied in between
        _options(ctx, j, rem, cand)
        base_hit = ctx.memo[("options", j, cb, rcb)]
    base = base_hit[1]
    pos = base.view.position
    changed = {pos[s]: r for s, r in left.items() if s in pos}
    return ctx.remember(key, _assemble(ctx, j, rem, left, base, changed))


def _assemble(ctx: Context, j: int, rem: np.ndarray, left: dict[int, float], base: _Base,
              changed: dict[int, float]) -> list[tuple[float, float, Option]]:
    """The options of `base`'s demand with the candidates at positions `changed` at their new (smaller)
    remaining rates (`left` by service)."""
    view = base.view
    size = ctx.sizes[j]
    capj, effl = view.cap1_list[j], view.eff_list
    branching, share_sets = ctx.opts.fill_branching, ctx.opts.share_sets
    want = max(branching, share_sets)
    vals = base.vals
    if changed:
        vals = list(vals)
        for k, r in changed.items():
            vals[k] = min(r, capj[k]) / effl[k]
        head = [k for k in _head(base.rank, changed, want)] + list(changed)
        first = sorted(head, key=lambda t: (-vals[t], t))[:want]
    else:
        first = base.rank[:want]
    top = [(t, vals[t]) for t in first if vals[t] > 0]
    order = [view.cand_list[t] for t, _ in top]
    out = []
    for (t, v), s in zip(top[:branching], order):
        cap = capj[t]
        take = min(left.get(s, float(rem[s])), cap)
        out.append((v, v + size * (1 - take / cap), ("A", s)))
    limit = ctx.instance.mechanism.max_tenants or len(order)
    chosen = order[:share_sets]
    sets = set()
    for k in range(2, min(limit, len(chosen)) + 1):
        sets.update(itertools.combinations(sorted(chosen), k))
    if limit >= 2:
        sets.update(_complete_pairs(ctx, j, base, changed))
    for tenants in sets:
        v = _value(ctx, _take(ctx, j, ("B", tenants), left, rem))
        if v > 0:
            out.append((v, v, ("B", tenants)))
    out.sort(key=lambda o: (-o[0], o[2]))
    return out


def _head(rank: list[int], skip: dict[int, float], want: int) -> list[int]:
    """The first `want` positions of `rank` not in `skip`."""
    out = []
    for k in rank:
        if k not in skip:
            out.append(k)
            if len(out) == want:
                break
    return out


def _complete_pairs(ctx: Context, j: int, base: _Base, changed: dict[int, float]) -> list[tuple[int, int]]:
    """Pairs of services (of the candidates of `base`, with those at `changed` at their new remaining rates)
    whose whole remaining loads may share one partition of size index j: by the time each needs at its best
    one-process rate (t = rem / capc), the pairs with t_a + t_b <= 1 closest to 1."""
    view = base.view
    times = base.times
    if changed:
        capc = view.capc_list[j]
        times = [x for x in times if x[1] not in changed]
        for k, r in changed.items():
            if r > 0 and capc[k] > 0 and r / capc[k] < 1.0:
                bisect.insort(times, (r / capc[k], k))
    if len(times) < 2:
        return []
    ts = [x[0] for x in times]
    idx = [view.cand_list[x[1]] for x in times]
    pairs = []
    for a in range(len(idx) - 1, 0, -1):  # the largest loads first
        b = min(bisect.bisect_right(ts, 1.0 - ts[a]) - 1, a - 1)  # the largest t_b <= 1 - t_a
        if b >= 0:
            pairs.append((ts[a] + ts[b], tuple(sorted((idx[a], idx[b])))))
        if len(pairs) >= 2 * ctx.opts.share_sets:
            break
    pairs.sort(key=lambda p: -p[0])
    return [p for _, p in pairs[:ctx.opts.share_sets]]


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
    return _dfs(ctx, layout_idx, cands, [max((o[0] for o in c), default=0.0) for c in cands], rem, cand)


def _dfs(ctx: Context, layout_idx: list[int], first: list[list], top: list[float], rem: np.ndarray,
         cand: np.ndarray) -> tuple:
    """Depth-first choice of every partition's content, pruned by the best value each remaining partition can
    add; the candidates of a partition are recomputed for what the partitions before it leave (options in
    decreasing value, so the first leaf is the greedy choice); at most `fill_combinations` option evaluations.
    `first` and `top` are the options of `rem` (`_options`), so the choice is memoised on the layout and `rem`."""
    key = ("dfs", tuple(layout_idx), cand.tobytes(), rem[cand].tobytes())
    hit = ctx.memo.get(key)
    if hit is None:
        hit = ctx.remember(key, _dfs_search(ctx, layout_idx, first, top, rem, cand))
    return hit


def _dfs_search(ctx: Context, layout_idx: list[int], first: list[list], top: list[float], rem: np.ndarray,
                cand: np.ndarray) -> tuple:
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
    return best[1]


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
        idx = [ctx.size_index(s) for s in layout]
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
        combo = _dfs(ctx, idx, cands, [max((o[0] for o in c), default=0.0) for c in cands], rem, cand)
        value = _sequence_value(ctx, idx, combo, rem)
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
              first_rank: int = 0) -> tuple[list[WGpu], np.ndarray]:
    """Greedy GPU-by-GPU construction; returns the GPUs and the demand left unplaced (zero when complete).

    With a `target` number of GPUs the construction is balanced: GPU k first tries to serve exactly its share
    rem / (target - k) of what is left (so that equal GPUs replicate a good mix instead of the first GPUs taking
    the most valuable services), and falls back to the plain greedy choice when it cannot.  `first_rank` > 0
    starts from the first GPU's rank-th best layout instead of its best (the greedy's first choice is the one
    that most often leaves an awkward remainder)."""
    rem = np.array(demand, dtype=float)
    tol = EPS * np.maximum(1.0, rem)
    rem[rem <= tol] = 0.0
    gpus: list[WGpu] = []
    pool = Pool(ctx, rem)
    while np.any(rem > 0):
        if limit is not None and len(gpus) >= limit:
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
