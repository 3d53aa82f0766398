"""Compiled loops of the column generation's pricing (solvers.exact.cg_pricing), with numba.

The multiple-choice knapsack DP of `_suffix_dp` was a Python loop over services and their operating points with one
numpy call per point: at 256 services about 70 % of the column generation's CPU time, mostly numpy's per-call
overhead (a table of 512 units costs a few microseconds of arithmetic).  `mck_rows` is the same recurrence
compiled, with the same floating-point operations in the same order (an addition, then a maximum), so its tables
are bit for bit those of the numpy loop (its copy in tests/solvers/test_cg_kernels.py is the reference a test holds
the kernel to).

Compilation: `cache=True` keeps the machine code on disk beside this module (or in numba's user cache where that
is not writable); the first call in a fresh environment compiles (about a second), later processes load it.
The column generation's wall time counts that first call like any other work.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, objmode


@njit(cache=True, nogil=True)
def mck_rows(first: np.ndarray, q: np.ndarray, v: np.ndarray, last: np.ndarray, k_dp: int, full: bool
             ) -> np.ndarray:
    """The suffix rows of a multiple-choice knapsack: services 0..k_dp-1, service k's items first[k]..first[k+1]
    (integer sizes `q`, values `v`), `last` the row after service k_dp - 1 (columns 0..units).  Row k at column c
    is max(row k+1 at c, max over k's items i with q_i <= c of row k+1 at c - q_i + v_i).
    Returns every row k = 0..k_dp (`full`; shape (k_dp + 1, units + 1)) or row 0 alone (shape (1, units + 1))."""
    m = last.shape[0]
    units = m - 1
    g = np.empty((k_dp + 1 if full else 1, m))
    nxt = last.copy()
    row = np.empty(m)
    if full:
        g[k_dp, :] = nxt
    for k in range(k_dp - 1, -1, -1):
        for c in range(m):
            row[c] = nxt[c]
        for i in range(first[k], first[k + 1]):
            qi = q[i]
            if qi > units:
                continue
            vi = v[i]
            for c in range(qi, m):
                x = nxt[c - qi] + vi
                if x > row[c]:
                    row[c] = x
        if full:
            g[k, :] = row
        nxt, row = row, nxt
    if not full:
        g[0, :] = nxt
    return g


@njit(cache=True, nogil=True)
def mck_prepare(svc: np.ndarray, e: np.ndarray, v: np.ndarray, pts: np.ndarray):
    """The items of `_suffix_dp` grouped for `mck_rows`: per service its undominated points (value > 0 and above
    every shorter point's of the service), by time; services ordered by their best density v / e (stable, ties by
    service).  Returns (times, values, points, first item of each service (+ end), densities in that order)."""
    o1 = np.argsort(e, kind="mergesort")
    o = o1[np.argsort(svc[o1], kind="mergesort")]  # by service, then time (numpy's lexsort((e, svc)))
    n_all = len(o)
    keep = np.zeros(n_all, dtype=np.bool_)
    n = 0  # services with a point kept
    best = 0.0
    kept_any = False
    prev_s = -1
    for j in range(n_all):
        i = o[j]
        if svc[i] != prev_s:
            prev_s = svc[i]
            best = 0.0
            kept_any = False
        if v[i] > best:  # worth more than every shorter point of the service (and > 0)
            keep[j] = True
            best = v[i]
            if not kept_any:
                kept_any = True
                n += 1
    dens = np.zeros(n)
    lo = np.empty(n, dtype=np.int64)
    hi = np.empty(n, dtype=np.int64)
    k = -1
    prev_s = -1
    for j in range(n_all):
        if not keep[j]:
            continue
        i = o[j]
        if svc[i] != prev_s:
            prev_s = svc[i]
            k += 1
            lo[k] = j
        hi[k] = j + 1
        d = v[i] / e[i]
        if d > dens[k]:
            dens[k] = d
    rank = np.argsort(-dens, kind="mergesort")
    m = int(keep.sum())
    te = np.empty(m)
    tv = np.empty(m)
    tp = np.empty(m, dtype=pts.dtype)
    first = np.empty(n + 1, dtype=np.int64)
    t = 0
    for r in range(n):
        k = rank[r]
        first[r] = t
        for j in range(lo[k], hi[k]):
            if keep[j]:
                i = o[j]
                te[t] = e[i]
                tv[t] = v[i]
                tp[t] = pts[i]
                t += 1
    first[n] = t
    return te, tv, tp, first, dens[rank]


@njit(cache=True, nogil=True)
def greedy_sets(seeds: np.ndarray, pool: np.ndarray, svc: np.ndarray, e: np.ndarray, w: np.ndarray, u: np.ndarray,
                room: np.ndarray, mem: np.ndarray, cap_mem: float, k_max: int, n_services: int,
                disjoint: bool = False):
    """The pricing's greedy tenant sets (cg_pricing.Pricer._sets): from each seed point, add the pool's point that
    raises the set's value sum_t min(w_t / d, u_t) the most (d the sum of the times) while every tenant keeps
    d <= room_t (each point's longest duty by the checker's rule, `stsched.layouts.duty_room`: `_SizeData.room`),
    the memory fits `cap_mem`, no service twice and at most `k_max` tenants; stop when no point raises it.  `disjoint`: the sets share no service (a seed whose service an earlier set took is skipped:
    count 0), so that one call proposes a whole packing of the services rather than many variants of the best set.
    Returns the members of each seed's set (points, -1 padded; shape (seeds, k)), its size and its value."""
    k_cap = min(k_max, len(pool) + 1)
    out = np.full((len(seeds), k_cap), -1, dtype=np.int64)
    count = np.zeros(len(seeds), dtype=np.int64)
    value = np.zeros(len(seeds))
    taken = np.zeros(n_services, dtype=np.bool_)
    n_pool = len(pool)
    for r in range(len(seeds)):
        seed = seeds[r]
        if disjoint and taken[svc[seed]]:
            continue
        out[r, 0] = seed
        k = 1
        taken[svc[seed]] = True
        d = e[seed]
        lim = room[seed]
        m_used = mem[seed]
        val = min(w[seed] / d, u[seed])
        w_sum = w[seed]
        while k < k_cap:
            best_j = -1
            best_v = -np.inf
            for jj in range(n_pool):
                j = pool[jj]
                if taken[svc[j]]:
                    continue
                d2 = d + e[j]
                if d2 > lim or d2 > room[j] or m_used + mem[j] > cap_mem:
                    continue
                if (w_sum + w[j]) / d2 <= best_v:  # sum_t min(w_t / d2, u_t) <= sum_t w_t / d2: cannot beat the best
                    continue
                v2 = 0.0
                for t in range(k):
                    i = out[r, t]
                    v2 += min(w[i] / d2, u[i])
                v2 += min(w[j] / d2, u[j])
                if v2 > best_v:
                    best_v = v2
                    best_j = j
            if best_j < 0 or best_v <= val * (1 + 1e-9):
                break
            out[r, k] = best_j
            k += 1
            taken[svc[best_j]] = True
            d += e[best_j]
            val = best_v
            w_sum += w[best_j]
            m_used += mem[best_j]
            lim = min(lim, room[best_j])
        if not disjoint or k == 1:  # (a seed alone stays free to join a later set)
            for t in range(k):
                taken[svc[out[r, t]]] = False
        count[r] = k
        value[r] = val
    return out, count, value


@njit(cache=True, nogil=True)
def _g_at(core: np.ndarray, start: int, cw: np.ndarray, cv: np.ndarray, delta: float, k: int, c: int) -> float:
    """Row k, column c of the suffix tables (cg_pricing._Tables.at): the DP's rows up to `start`, the fractional
    tail's past it."""
    if k <= start:
        return core[k, c]
    j = k - start
    x = np.interp(cw[j] + (c + 1) * delta, cw, cv) - cv[j]
    return x if x > 0.0 else 0.0


@njit(cache=True)  # (it reads the clock in object mode: no nogil)
def branch_sets(first: np.ndarray, V: np.ndarray, E: np.ndarray, core: np.ndarray, start: int, cw: np.ndarray,
                cv: np.ndarray, delta: float, cap: float, thr: float, k_max: int, budget: int, keep: int,
                deadline: float, cpu_clock: bool):
    """The branch and bound of cg_pricing.Pricer._branch over one duty interval: services in the tables' order
    (service k's points first[k]..first[k+1], values V, times E), at most one point each, times summing to at most
    `cap`, at most `k_max` of them; the suffix tables (`core` rows, then the fractional tail) bound what the
    services k.. add within c units.  Depth first, children by their bound, best first; a child is skipped once its
    bound is at most max(thr, best so far).  Stops after `budget` nodes or past `deadline` (read every 512 nodes on
    the process's CPU clock or the wall clock).
    Returns (complete, best value of a set of >= 2 points, the `keep` best sets worth more than `thr` (points, -1
    padded), their values, nodes left, the open bound).  The open bound bounds every set the search did not rule
    out when it stopped early (inf when it stopped at the root; when complete, -inf): the node it was about to
    visit and the first untried child of every frame on its path (children are tried in the order of their bounds,
    greatest first, so that child bounds all its untried siblings); every other set was visited (counted in the
    best value) or pruned by a bound at most max(thr, best value)."""
    n_serv = len(first) - 1
    n_items = first[n_serv]
    top = core.shape[1] - 1
    pos = np.empty(n_items, dtype=np.int64)
    for k in range(n_serv):
        for i in range(first[k], first[k + 1]):
            pos[i] = k
    depth_cap = min(k_max, n_serv) + 1
    best_sets = np.full((keep, depth_cap), -1, dtype=np.int64)
    best_vals = np.full(keep, -np.inf)
    n_best = 0
    members = np.full(depth_cap, -1, dtype=np.int64)
    # frames: a node's children (items, bounds, sorted) in a shared buffer, the next child to try, its state
    buf_item = np.empty(depth_cap * (n_items + 1), dtype=np.int64)
    buf_bnd = np.empty(depth_cap * (n_items + 1))
    f_lo = np.empty(depth_cap + 1, dtype=np.int64)
    f_hi = np.empty(depth_cap + 1, dtype=np.int64)
    f_ptr = np.empty(depth_cap + 1, dtype=np.int64)
    f_cap = np.empty(depth_cap + 1)
    f_val = np.empty(depth_cap + 1)
    z = 0.0
    tmp_item = np.empty(n_items + 1, dtype=np.int64)
    tmp_bnd = np.empty(n_items + 1)
    depth = 0  # number of members of the node on top of the stack
    k0, ncap, val = 0, cap, 0.0
    buf_top = 0
    complete = True
    while True:
        # ---- visit the node (k0, ncap, val) at `depth`
        budget -= 1
        if budget < 0:
            complete = False
            break
        if budget % 512 == 0:
            with objmode(now="float64"):
                now = time.process_time() if cpu_clock else time.perf_counter()
            if now > deadline:
                complete = False
                budget = -1
                break
        if depth > 1 and val > z:  # one-point sets are priced exactly elsewhere
            z = val
        if depth > 1 and val > thr:
            if n_best < keep:
                slot = n_best
                n_best += 1
            else:
                slot = np.argmin(best_vals)
                if best_vals[slot] >= val:
                    slot = -1
            if slot >= 0:
                best_vals[slot] = val
                best_sets[slot, :] = -1
                best_sets[slot, :depth] = members[:depth]
        m = 0
        if depth < k_max and k0 < n_serv:
            bar = max(thr, z)
            c_idx = min(int(ncap / delta + 1e-9), top)
            end = k0
            while end < n_serv and _g_at(core, start, cw, cv, delta, end, c_idx) + val > bar:
                end += 1
            for i in range(first[k0], first[end]):
                if E[i] <= ncap + 1e-12:
                    rem = min(int((ncap - E[i]) / delta + 1e-9), top)
                    b = val + V[i] + _g_at(core, start, cw, cv, delta, pos[i] + 1, rem)
                    if b > bar:
                        tmp_item[m] = i
                        tmp_bnd[m] = b
                        m += 1
        order = np.argsort(-tmp_bnd[:m], kind="mergesort")
        f_lo[depth] = buf_top
        for t in range(m):
            buf_item[buf_top + t] = tmp_item[order[t]]
            buf_bnd[buf_top + t] = tmp_bnd[order[t]]
        buf_top += m
        f_hi[depth] = buf_top
        f_ptr[depth] = f_lo[depth]
        f_cap[depth] = ncap
        f_val[depth] = val
        # ---- the next node: the next worthwhile child of the deepest frame that has one
        found = False
        while depth >= 0:
            while f_ptr[depth] < f_hi[depth]:
                t = f_ptr[depth]
                f_ptr[depth] += 1
                if buf_bnd[t] <= max(thr, z):
                    continue
                j = buf_item[t]
                members[depth] = j
                k0 = pos[j] + 1
                ncap = f_cap[depth] - E[j]
                val = f_val[depth] + V[j]
                found = True
                break
            if found:
                break
            buf_top = f_lo[depth]
            depth -= 1
        if not found:
            break
        depth += 1
    open_bound = -np.inf
    if not complete:
        open_bound = np.inf if depth == 0 else buf_bnd[f_ptr[depth - 1] - 1]  # the node it was about to visit
        for d in range(depth):
            if f_ptr[d] < f_hi[d] and buf_bnd[f_ptr[d]] > open_bound:
                open_bound = buf_bnd[f_ptr[d]]
    return complete, z, best_sets[:n_best], best_vals[:n_best], budget, open_bound


__all__ = ["mck_prepare", "mck_rows", "greedy_sets", "branch_sets"]
