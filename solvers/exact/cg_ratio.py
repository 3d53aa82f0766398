"""The exact pricing's upper bound by Dinkelbach's parametric test (`CgOptions.ratio_test`, on by default; issue 17,
session 16).  Called by solvers.exact.cg_pricing.Pricer.upper.

A tenant set S of one partition size, duty d = sum_t e_t, is worth value(S) = sum_t min(w_t / d, u_t) (w, u as in
Pricer._wu).  For any level lam >= 0 and every set whose duty lies in [D0, D1]:

    value(S) = lam + sum_t (min(w_t, u_t d) - lam e_t) / d  <=  lam + max(P, 0) / D0,

where P is the greatest total profit p_t = min(w_t, u_t D1) - lam e_t over sets of points eligible in the interval
(D0 + e_t <= budget_t up to the checker's tolerance, stsched.layouts.duty_room; at most one point per service) whose
times sum to at most D1: min(w, u d) <= min(w, u D1) for d <= D1, and dropping the points of profit <= 0 only raises
the maximum.  P is bounded by the multiple-choice
knapsack DP of cg_pricing's `_suffix_dp` over these profits (times rounded down: every set that fits, fits), and
found exactly by the branch and bound of cg_kernels' `branch_sets` over its tables (real times), which also yields
the sets of greatest profit: candidate columns, valued by the pricer as the master will credit them.

With lam the best value known (the best configuration found so far, at least the size's dual mu (1 + eps)), an
interval holding no set worth more than lam is closed by one DP, whatever its width: P <= 0.  The bound of the old
test (every tenant credited at D0) is loose by the ratio D1 / D0 on the whole value, so near the optimum every duty
interval had to be bisected to 0.2 % (`tight`) before it fell below the best set: at 1,024 MPS services (seed 4) the
exact pricing of size 20 spent 3-3.8 s of CPU per tail round on about 1,500 intervals, each with two DPs.  Here the
width only matters through eligibility (a tenant that fits at D0 but not at the set's duty) and clipping (u D1
against u d); an interval still above the best value after a test that found no better set is bisected as before.
When a test finds a set worth more than lam, lam rises to its value and the interval is tested again (Dinkelbach's
iteration, which converges to the interval's best ratio).

The duty floor.  The knapsack relaxes d >= D0: with tenants clipped at short duties (u D1 credited where a short set
has u d), sets far shorter than D0 can have a large profit P although no set of the interval does, and bisecting
never removes them.  For any nu >= 0 and every set of the interval, sum_t (min(w_t, u_t d) - lam e_t) <= sum_t
(min(w_t, u_t D1) - (lam - nu) e_t) - nu D0 (the added nu (d - D0) is >= 0), so P can be replaced by the knapsack of
these profits minus nu D0: short sets pay for the duty they lack, the interval's own sets at most nu (D1 - D0).
The test tries nu = 0 and 0.3 lam and keeps the least; the branch and bound runs at nu = 0 only (Dinkelbach's
subproblem), where the least was there.  Where the test leaves an interval open with no better set found, the old
test (every tenant credited at D0, its knapsack and branch and bound) is applied too, then the interval is bisected.

Not with rounding cuts (their duals add a per-tenant term that is not divided by the duty): the old test stays.
"""

from __future__ import annotations

import heapq
import math
import time

import numpy as np

from solvers.exact.cg_kernels import branch_sets
from solvers.exact.patterns import Config

TIGHT, OPEN = 3, 0  # an interval's stage in the heap: as tight as it gets / still to be tested
DUTY_FLOOR_SHARES = (0.0, 0.3)  # the prices nu / lam of the duty floor tried (0.1, 0.3, 1 tried; module docstring)


def ratio_upper(pricer, sd, pi: np.ndarray, mu: float, exact: bool) -> tuple[float, list[tuple[float, Config]]]:
    """A proven upper bound on pi . a over every configuration of size sd.size, and the configurations worth more
    than mu (1 + eps) met on the way, best first (at most `per_size`): Pricer.upper's contract (see the module
    docstring for the test; `exact` False: no branch and bound, so no sets are found and lam stays the dual or the
    best one-tenant value)."""
    from solvers.exact.cg_pricing import _suffix_dp

    opts = pricer.opts
    best, ctx, grid = pricer._duty_grid(sd, pi, exact)  # (also clears the old test's tables, of other duals)
    if ctx is None:
        return max(best, 0.0), []
    w, u, live, _ = ctx
    e, room = sd.e, sd.room
    thr = mu * (1 + opts.eps) + 1e-12  # below this a column is not worth proving absent
    floor = max(thr, best)  # lam: the best value known (every interval closed proves its sets worth at most it)
    closed = 0.0  # the greatest bound of a closed interval (at most `floor`)
    found: dict[tuple, tuple[float, Config]] = {}
    heap = [(-pricer._frac(sd, ctx, float(d0), float(d1)), float(d0), float(d1), OPEN)
            for d0, d1 in zip(grid[:-1], grid[1:])]
    heapq.heapify(heap)
    steps = 0
    while heap and -heap[0][0] > floor and heap[0][3] < TIGHT and steps < pricer.refine:
        if steps % 8 == 7 and pricer.clock() > pricer.deadline:
            break
        neg, d0, d1, _ = heapq.heappop(heap)
        ub, steps, lam, known = -neg, steps + 1, floor, len(found)
        elig = np.flatnonzero(live & (d0 <= room) & (e <= d1))
        gain = np.minimum(w[elig], u[elig] * d1)  # min(w, u d) <= this for every duty d <= d1
        excess, nu = math.inf, 0.0  # a bound on (value(S) - lam) d0 over the interval's sets, and its price
        for share in DUTY_FLOOR_SHARES:  # the duty floor d >= d0 priced at share * lam (module docstring)
            profit = gain - (1.0 - share) * lam * e[elig]
            pos = profit > 0
            top_p = float(_suffix_dp(sd.svc[elig[pos]], e[elig[pos]], profit[pos], elig[pos], d1, opts.units,
                                     pricer.core, full=False)[-1]) if pos.any() else 0.0
            if top_p - share * lam * d0 < excess:
                excess, nu = top_p - share * lam * d0, share * lam
            if excess <= 0:
                break
        bound = min(ub, lam + max(excess, 0.0) / d0)
        if bound <= floor:
            closed = max(closed, bound)
            pricer.floor_closes += int(nu > 0)
            continue
        profit = gain - lam * e[elig]  # Dinkelbach's subproblem: its best sets are the columns
        pos = profit > 0
        elig, profit = elig[pos], profit[pos]
        if exact and pricer._budget > 0 and len(elig) and nu == 0:  # (a proof at nu > 0: the old test below)
            z = _best_sets(pricer, sd, ctx, elig, profit, d0, d1, thr, found)
            floor = max([floor] + [v for v, _ in found.values()])
            bound = min(bound, lam + max(z / d0, _lone(w[elig], u[elig], e[elig], lam, d0, d1), 0.0))
            if bound <= floor:
                closed = max(closed, bound)
                continue
            if floor > lam:  # a better set: test the interval again at its value (Dinkelbach's step)
                heapq.heappush(heap, (-bound, d0, d1, OPEN))
                continue
        # no set found above lam, yet the test does not close the interval (tenants eligible at D0 that do not fit
        # at the sets' duty, clipped ones credited at D1, short sets): the old test too (every tenant credited at
        # D0, its branch and bound), then bisect
        if exact and pricer._budget > 0:
            bound = min(bound, pricer._branch(sd, ctx, d0, d1, thr, found))
            floor = max([floor] + [v for v, _ in found.values()])
        else:
            bound = min(bound, pricer._knapsack(sd, ctx, d0, d1))
        if bound <= floor:
            closed = max(closed, bound)
            continue
        if d1 / d0 > 1 + opts.tight or (exact and (len(found) == known or d1 / d0 > 1 + opts.proof_width)
                                          and d1 / d0 > 1 + 1e-9):
            # (exact: below `tight` too while a step finds nothing new, or down to `proof_width`: a tail round's
            # V_20 then equals the best set found, where `tight` left it 0.08 % above, docs/SOLVERS.md)
            mid = math.sqrt(d0 * d1)
            heapq.heappush(heap, (-bound, d0, mid, OPEN))
            heapq.heappush(heap, (-bound, mid, d1, OPEN))
        else:
            heapq.heappush(heap, (-bound, d0, d1, TIGHT))
    pricer.steps = steps
    top = -heap[0][0] if heap else 0.0
    if exact and steps >= pricer.refine and top > floor and heap[0][3] < TIGHT:
        pricer.short_refines += 1  # the steps ran out with an interval still loose: its bound stands
    ub = max(best, closed, top, max((v for v, _ in found.values()), default=0.0), 0.0)
    return ub, sorted(found.values(), key=lambda x: -x[0])[: opts.per_size]


def _lone(w: np.ndarray, u: np.ndarray, e: np.ndarray, lam: float, d0: float, d1: float) -> float:
    """A bound on value(S) - lam over the sets S of duty d in [d0, d1] whose only tenant of positive profit is one of
    these points (the others' terms are <= 0; dropping them leaves one point, which the branch and bound of sets of
    >= 2 points does not cover): its term (min(w, u d) - lam e) / d is greatest at d = w / u clamped to [d0, d1]."""
    if not len(w):
        return -math.inf
    d = np.clip(np.where(u > 0, w / np.where(u > 0, u, 1.0), d1), d0, d1)
    return float((np.minimum(w / d, u) - lam * e / d).max())


def _best_sets(pricer, sd, ctx, elig: np.ndarray, profit: np.ndarray, d0: float, d1: float, thr: float,
               found: dict) -> float:
    """The branch and bound of the interval over the points `elig` with their `profit` (cg_kernels.branch_sets on
    the DP's tables); its sets worth more than `thr` as the master credits them join `found`.  Returns the greatest
    profit of a set of >= 2 points of positive profit (exact when the search completed; else what it left open, at
    most the DP's); a set whose points of positive profit are fewer is bounded by `_lone`."""
    from solvers.exact.cg_pricing import _suffix_dp

    items, V, E, first, g, delta = _suffix_dp(sd.svc[elig], sd.e[elig], profit, elig, d1, pricer.opts.units,
                                              pricer.core)
    dp = float(g.core[0, -1])
    k_max = pricer.max_tenants or len(first) - 1
    tail = g.tail
    complete, z, sets, vals, left, open_bound = branch_sets(
        first, V, E, g.core, int(tail.start), np.asarray(tail.cw, float), np.asarray(tail.cv, float), float(delta),
        float(d1), 0.0, int(k_max), int(pricer._budget), pricer.opts.keep, float(pricer.deadline),
        bool(pricer.clock is time.process_time))
    pricer._budget = int(left)
    pricer.take_sets(sd, items, sets, vals, thr, ctx[3], found)
    if not complete:
        pricer.fallbacks += 1
        return min(dp, max(float(z), float(open_bound)))
    return float(z)


__all__ = ["ratio_upper"]
