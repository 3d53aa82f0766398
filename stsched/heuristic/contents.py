"""The contents a partition may take in the greedy's joint choice of a layout (`construct._dfs`): a service alone
at its best single-tenant point (spatial) or a tenant set served in proportion to its services' remaining demand
(temporal), each with its value (requests / best efficiency, the LP's measure) and an upper bound on what the
partition can serve once filled.

`_options` lists them for a remaining demand (memoised on the exact inputs); `_options_after` derives the list for
the same demand with a few services' rates lowered (what the partitions before this one took) exactly from the
parent's ranking, without recomputing it with numpy: in the depth-first choice almost every option list is such a
child of the list of the GPU's demand.  Only the candidate services `cand` (a construction's pool) are considered,
through per-pool slices of the capacities (`_View`), so the cost grows with the pool, not the instance.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

import numpy as np

from stsched.heuristic.model import Context
from stsched.heuristic.shared import proportional


Option = tuple  # ("A", service) one tenant; ("B", (services...)) a shared partition at proportional load


def _take(ctx: Context, j: int, opt: Option, left: dict[int, float], rem: np.ndarray) -> dict[int, float]:
    """The rates an option serves in a partition of size index j, given what is left of the demand."""
    if opt[0] == "A":
        s = opt[1]
        r = left.get(s)
        return {s: min(rem[s] if r is None else r, ctx.cap1[s, j])}
    tenants = opt[1]
    w = [left[s] if s in left else rem[s] for s in tenants]
    if min(w) <= 0:
        return {}
    lam = min(1.0, proportional(ctx, ctx.sizes[j], tenants, w))
    return {s: lam * x for s, x in zip(tenants, w)} if lam > 0 else {}


def _eff(ctx: Context) -> list[float]:
    """The services' best efficiencies as a list (indexing a list is several times cheaper than numpy's)."""
    hit = ctx.suffix_cache.get("eff-list")
    if hit is None:
        hit = ctx.suffix_cache["eff-list"] = ctx.eff.tolist()
    return hit


def _value(ctx: Context, taken: dict[int, float]) -> float:
    eff = _eff(ctx)
    return sum(r / eff[s] for s, r in taken.items())


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
    ts: list[float]  # the t of `times`
    t: list[float]  # t of every candidate position (inf: none, or no demand)
    idx: list[int]  # the services of `times`


def _options_of(ctx: Context, j: int, rem: np.ndarray, rc: np.ndarray,
                view: _View) -> tuple[list[tuple[float, float, Option]], _Base]:
    """`_options` for the remaining demand `rem` (`rc`: its entries at the candidates of `view`), and the ranking
    that `_options_after` derives the options of a slightly smaller demand from."""
    arr = np.minimum(rc, view.cap1[j]) / view.eff
    t = np.where((rc > 0) & view.capc_pos[j], rc / view.capc_div[j], np.inf)
    sel = np.flatnonzero(t < 1.0)
    sel = sel[np.argsort(t[sel], kind="stable")].tolist()
    tl = t.tolist()
    times = [(tl[k], k) for k in sel]
    base = _Base(view, arr.tolist(), np.argsort(-arr, kind="stable").tolist(), times, [x[0] for x in times], tl,
                 [view.cand_list[x[1]] for x in times])
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
    eff = _eff(ctx)
    for tenants in sets:  # _value(_take(("B", tenants))) without the intermediate dict: the same sum
        w = [left[s] if s in left else rem[s] for s in tenants]
        if min(w) <= 0:
            continue
        lam = min(1.0, proportional(ctx, size, tenants, w))
        if lam <= 0:
            continue
        v = sum(lam * x / eff[s] for s, x in zip(tenants, w))
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
    ts, idx = base.ts, base.idx
    if changed:  # the few changed candidates leave their place in the sorted lists and enter at their new t
        capc = view.capc_list[j]
        times, ts, idx = list(base.times), list(ts), list(idx)
        for k in changed:
            t = base.t[k]
            if t < 1.0:
                at = bisect.bisect_left(times, (t, k))
                del times[at], ts[at], idx[at]
        for k, r in changed.items():
            if r > 0 and capc[k] > 0 and r / capc[k] < 1.0:
                at = bisect.bisect_left(times, (r / capc[k], k))
                times.insert(at, (r / capc[k], k))
                ts.insert(at, r / capc[k])
                idx.insert(at, view.cand_list[k])
    if len(ts) < 2:
        return []
    pairs = []
    for a in range(len(idx) - 1, 0, -1):  # the largest loads first
        b = min(bisect.bisect_right(ts, 1.0 - ts[a]) - 1, a - 1)  # the largest t_b <= 1 - t_a
        if b >= 0:
            pairs.append((ts[a] + ts[b], tuple(sorted((idx[a], idx[b])))))
        if len(pairs) >= 2 * ctx.opts.share_sets:
            break
    pairs.sort(key=lambda p: -p[0])
    return [p for _, p in pairs[:ctx.opts.share_sets]]
