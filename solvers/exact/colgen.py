"""The configuration LP by column generation, with a pricing oracle instead of an enumeration.

Master (restricted to the columns generated so far; symbols as in solvers.exact.milp, slots formulation):

    min sum_L y_L  |  max alpha
    s.t. sum_{c: size p} x_c <= sum_L n_L(p) y_L        (mu_p)   every partition size p
         sum_c a_{c,s} x_c >= 1  |  >= alpha            (pi_s)   every service s
         sum_L y_L <= G  (max-scale)                              x, y >= 0 continuous

a_{c,s} = min(cap_{c,s}, clip * r_s) / r_s, clip = 1 (min-gpus) or an upper bound on alpha (max-scale).  Layouts L
are the inclusion-maximal legal layouts (few); configurations c (size, procs, tenant set, batches, duty = sum of the
tenants' execution times) are far too many to enumerate at scale, so they are priced:

* **pricing oracle** for size p and duals pi: the configuration of greatest value pi . a_c.  One-tenant
  configurations (every batch and process count) are priced exactly.  Tenant sets are priced twice: a greedy
  search (seeds by value, then the tenant that adds the most value while every tenant keeps d + e <= budget, memory
  fits and the tenant limit holds) proposes columns, and an exact search gives a proven upper bound V_p on every
  set: the duties are split into intervals [D0, D1] (a geometric grid); in one, a tenant is worth at most
  min(w_s / D0, u_s), may join only if e_s <= budget_s - D0, and the times sum to d <= D1.  Each interval's bound
  is tightened best first (the interval of the greatest bound next): a fractional knapsack (one item per service,
  the tenant limit), then a multiple-choice knapsack DP over the times rounded down to units of D1 / `units`
  (`_suffix_dp`: one operating point per service; its suffix tables bound a branch and bound that finds the
  interval's best sets, which become columns), then bisection, until the greatest bound is below the size's dual
  (a proof that no column improves the master) or its interval is narrow (`tight`) or the work limits stop it.
* **stabilisation** (Wentges smoothing): the pricing point is a * (the duals of the best Lagrangian bound so far)
  + (1 - a) * (the master's duals); when nothing found there improves the master (a mis-price) the master's own
  duals are priced.  The generation stops, converged, once the best bound is within `gap` of the master's value
  (or the exact pricing at the master's duals finds nothing worth more than (1 + eps) times its dual).
* **Lagrangian (Farley) bound** from any pi >= 0: every plan's partitions give sum_s pi_s * coverage_s <=
  sum_GPUs sum_p n_L(p) V_p <= GPUs * W with W = max_L sum_p n_L(p) V_p, so
      GPUs >= sum_s pi_s / W   (min-gpus)          alpha <= G * W / sum_s pi_s   (max-scale).
  It is valid whether or not the column generation converged; at convergence it equals the LP value.

What is bounded: every valid plan of the full problem (all tenant counts, batches, procs, legal layouts, duty
cycles at least the sum of the execution times).  Execution times are solo times with the instance's latency margin:
interference from neighbouring partitions only slows tenants down (less capacity, tighter latency), so under a
neighbour-dependent interference form this is the bound of the interference-free relaxation, still below every
plan's GPUs (above every plan's alpha).  GPU memory is kept per partition (each configuration alone must fit its
slice or its GPU) and relaxed across the partitions of a GPU.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from solvers.exact.patterns import Config, _memory_ok, _Timer, enumerate_layouts, shared_config, tenant_points
from stsched.bounds import point_capacity, unservable
from stsched.errors import InputError
from stsched.problem import Instance
from stsched.registry import Objective

log = logging.getLogger(__name__)

TOL = 1e-7  # reduced value a column must exceed (relative to its dual) to enter


@dataclass(frozen=True)
class CgOptions:
    """Column generation limits: `time_limit_s` on the `clock` (wall, or this process's CPU time), `max_rounds`
    master solves (a work limit: the rows of an experiment that stops on it do not depend on the machine),
    `per_size` columns added per size and round, `seeds`/`pool` of the greedy tenant-set search, `grid` the ratio
    of the starting duty grid of the upper bound, `tight` the narrowest interval it refines for the bound's sake,
    `refine` its refinement steps and `nodes` its branch-and-bound nodes per pricing call (both raised while an
    exact pricing cannot decide), `units` the knapsack DP's resolution, `bound_every` rounds between Lagrangian
    bounds while the greedy search finds columns (each also when it finds none and at the end), `smoothing` the
    Wentges weight, `eps`/`gap` the convergence tolerances."""

    time_limit_s: float = 60.0
    max_rounds: int = 500
    per_size: int = 0  # 0: max(30, services / 2)
    seeds: int = 0  # 0: max(12, services / 4)
    pool: int = 120
    grid: float = 1.1
    tight: float = 0.002  # duty intervals are bisected (best first) down to this relative width
    refine: int = 400  # interval refinement steps per pricing call (each a bound, a search or a bisection)
    bound_every: int = 10
    nodes: int = 20_000  # branch-and-bound nodes per exact pricing call (raised up to max_nodes when undecided)
    max_nodes: int = 320_000
    eps: float = 1e-4  # relative: the pricing proves no column worth more than (1 + eps) times its dual
    gap: float = 1e-4  # relative: converged once the bound is this close to the restricted master's value
    clock: str = "wall"  # what time_limit_s counts: "wall" clock or this process's "cpu" time (a loaded machine)
    units: int = 512  # knapsack units per duty interval of the exact pricing's bound (times rounded down)
    smoothing: float = 0.5  # Wentges dual smoothing: weight of the best bound's duals in the pricing point (0: off)


@dataclass(frozen=True)
class CgBound:
    """The outcome of a column generation: `bound` is valid for the full problem (fractional: a lower bound on
    GPUs, an upper bound on alpha); `lp_value` the restricted master's value (the LP value when `converged`)."""

    objective: Objective
    bound: float
    lp_value: float
    converged: bool
    columns: int
    pricing_calls: int
    rounds: int
    wall_s: float
    clip_alpha: float
    configs: tuple[Config, ...] = field(default=(), repr=False)
    layouts: tuple[tuple[float, ...], ...] = ()
    history: tuple[tuple[int, float, float | None], ...] = ()  # (round, lp value, Lagrangian bound or None)

    @property
    def integer_bound(self) -> float:
        """min-gpus: the bound rounded up (GPUs are whole); max-scale: the bound itself."""
        if self.objective is Objective.MIN_GPUS:
            return float(max(1, math.ceil(self.bound - 1e-6))) if math.isfinite(self.bound) else math.inf
        return self.bound


class Infeasible(Exception):
    """No plan serves these services (`services`: name -> reason)."""

    def __init__(self, services: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in services.items()))
        self.services = services


# ------------------------------------------------------------------------------------------------- pricing data
@dataclass
class _SizeData:
    """The operating points of one partition size: one-process points for tenant sets, every single config."""

    size: float
    svc: np.ndarray  # service index of each one-process point
    batch: np.ndarray
    e: np.ndarray  # execution time (ms)
    cred: np.ndarray  # 1000 * credit(batch): req/s * ms per cycle
    budget: np.ndarray  # the service's SLO budget
    mem: np.ndarray
    singles: list[Config]
    single_svc: np.ndarray
    single_cap: np.ndarray
    order: np.ndarray = field(default=None)  # points sorted by service (for per-service reductions)
    seg: np.ndarray = field(default=None)  # segment starts in `order`


def _size_data(instance: Instance, timer: _Timer) -> dict[float, _SizeData]:
    singles, layer, _ = tenant_points(instance, timer)
    names = instance.service_names
    budgets = [instance.slo_budget_ms(n) for n in names]
    out: dict[float, _SizeData] = {}
    for p in instance.mechanism.sizes:
        pts = [(ss[0], bs[0], d) for q, ss, bs, d, _ in layer if q == p]
        sing = [c for c in singles if c.size == p]
        svc = np.array([s for s, _, _ in pts], dtype=int)
        order = np.argsort(svc, kind="stable")
        sd = _SizeData(
            p, svc, np.array([b for _, b, _ in pts], dtype=int), np.array([d for _, _, d in pts], dtype=float),
            np.array([1000.0 * instance.margin.credit(b) for _, b, _ in pts], dtype=float),
            np.array([budgets[s] for s, _, _ in pts], dtype=float),
            np.array([instance.device.context_mb + instance.service(names[s]).memory_for(b) for s, b, _ in pts]),
            sing, np.array([c.tenants[0][0] for c in sing], dtype=int), np.array([c.cap[0] for c in sing]))
        sd.order = order
        sorted_svc = svc[order]
        sd.seg = np.flatnonzero(np.r_[True, sorted_svc[1:] != sorted_svc[:-1]]) if len(svc) else np.zeros(0, int)
        out[p] = sd
    return out


class _SoloTimer(_Timer):
    """Solo execution times (margin applied) without the interference machinery: for instances whose form is
    "none", where the slowdown is 1 by definition (the generic timer computes features it then ignores)."""

    def exec_ms(self, service: str, batch: int, size: float, procs: int) -> float | None:
        key = (service, batch, size, procs)
        if key not in self._cache:
            self._cache[key] = self.instance.solo_ms(service, batch, size, procs)
        return self._cache[key]


class Pricer:
    """Prices configurations of every size against coverage duals; counts its calls."""

    def __init__(self, instance: Instance, data: dict[float, _SizeData], rates: np.ndarray, clip: float,
                 opts: CgOptions):
        self.instance = instance
        self.data = data
        self.rates = rates
        self.clip = clip
        self.opts = opts
        self.calls = 0
        self.max_tenants = instance.mechanism.max_tenants
        self.names = instance.service_names
        self.nodes = opts.nodes  # raised while the pricing cannot decide
        self.refine = opts.refine  # (likewise)
        self.fallbacks = 0  # duty intervals whose exact pricing ran out of nodes (their fractional bound stood)
        self.deadline = math.inf  # the exact pricing stops here
        self.clock = time.perf_counter  # (past the deadline its bound falls back to the knapsack one)
        self._dp_key: tuple | None = None  # the last interval's knapsack tables (the branch and bound reuses them)
        self._dp: tuple = ()

    def _wu(self, sd: _SizeData, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = self.rates[sd.svc]
        w = pi[sd.svc] * sd.cred / np.where(r > 0, r, 1.0)
        u = pi[sd.svc] * self.clip
        return w, u

    def single_values(self, sd: _SizeData, pi: np.ndarray) -> np.ndarray:
        r = self.rates[sd.single_svc]
        return pi[sd.single_svc] * np.minimum(sd.single_cap, self.clip * r) / np.where(r > 0, r, 1.0)

    def columns(self, sd: _SizeData, pi: np.ndarray, mu: float) -> list[tuple[float, Config]]:
        """Columns of size sd.size whose value pi . a exceeds mu, best first (at most `per_size`)."""
        self.calls += 1
        out: list[tuple[float, Config]] = []
        if len(sd.singles):
            sv = self.single_values(sd, pi)
            for i in np.argsort(-sv)[: self.opts.per_size]:
                if sv[i] > mu * (1 + TOL) + 1e-12:
                    out.append((float(sv[i]), sd.singles[i]))
        if self.max_tenants is None or self.max_tenants >= 2:
            out += self._sets(sd, pi, mu)
        out.sort(key=lambda x: -x[0])
        return out[: self.opts.per_size]

    def _sets(self, sd: _SizeData, pi: np.ndarray, mu: float) -> list[tuple[float, Config]]:
        """Greedy tenant sets grown from the best seeds."""
        if not len(sd.svc):
            return []
        w, u = self._wu(sd, pi)
        live = np.flatnonzero(pi[sd.svc] > 0)
        if not len(live):
            return []
        v1 = np.minimum(w[live] / sd.e[live], u[live])
        pool = live[np.argsort(-(v1 / sd.e[live]), kind="stable")[: self.opts.pool]]
        seeds = live[np.argsort(-v1, kind="stable")[: self.opts.seeds]]
        pool = np.unique(np.r_[pool, seeds])
        pe, pw, pu, pb, ps, pm = sd.e[pool], w[pool], u[pool], sd.budget[pool], sd.svc[pool], sd.mem[pool]
        cap_mem = self._mem_cap(sd.size)
        k_max = self.max_tenants or len(pool)
        found: dict[tuple, tuple[float, Config]] = {}
        for seed in seeds:
            members = [int(seed)]
            d, lim = float(sd.e[seed]), float(sd.budget[seed] - sd.e[seed])
            mem = float(sd.mem[seed])
            val = float(min(w[seed] / d, u[seed]))
            while len(members) < k_max:
                d2 = d + pe
                ok = (d2 <= lim * (1 + 1e-9)) & (d2 + pe <= pb * (1 + 1e-9)) & (mem + pm <= cap_mem)
                ok &= ~np.isin(ps, sd.svc[members])
                if not ok.any():
                    break
                mw, mu_ = w[members][:, None], u[members][:, None]
                v2 = np.minimum(mw / d2[None, :], mu_).sum(axis=0) + np.minimum(pw / d2, pu)
                v2[~ok] = -np.inf
                j = int(np.argmax(v2))
                if v2[j] <= val * (1 + 1e-9):
                    break
                members.append(int(pool[j]))
                d, val, mem = float(d2[j]), float(v2[j]), mem + float(pm[j])
                lim = min(lim, float(pb[j] - pe[j]))
            if len(members) < 2 or val <= mu * (1 + TOL) + 1e-12:
                continue
            members.sort(key=lambda i: sd.svc[i])
            key = tuple((int(sd.svc[i]), int(sd.batch[i])) for i in members)
            if key in found:
                continue
            c = shared_config(self.instance, sd.size, tuple(int(sd.svc[i]) for i in members),
                              tuple(int(sd.batch[i]) for i in members), float(sum(sd.e[i] for i in members)))
            if c is not None and (true := self.value(c, pi)) > mu * (1 + TOL) + 1e-12:
                found[key] = (true, c)
        return list(found.values())

    def value(self, c: Config, pi: np.ndarray) -> float:
        """pi . a_c, with a_c as the master's coverage coefficients."""
        return float(sum(pi[s] * min(cap, self.clip * self.rates[s]) / self.rates[s]
                         for (s, _), cap in zip(c.tenants, c.cap) if self.rates[s] > 0))

    def _mem_cap(self, size: float) -> float:
        ok = _memory_ok  # the same rule as a configuration's
        lo, hi = 0.0, self.instance.device.memory_mb * 2 + 1.0
        if ok(self.instance, size, hi):
            return math.inf
        for _ in range(40):  # the largest memory that fits (bisection on the rule itself)
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if ok(self.instance, size, mid) else (lo, mid)
        return lo

    def upper(self, sd: _SizeData, pi: np.ndarray, mu: float = 0.0, exact: bool = True
              ) -> tuple[float, list[tuple[float, Config]]]:
        """A proven upper bound on pi . a over every configuration of size sd.size, and the configurations worth
        more than `mu` met on the way (see the module docstring).  The duties [lo, hi] are split into intervals
        (ratio `grid`), each with a bound on every set whose duty lies in it; best first, the interval of the
        greatest bound is tightened: its fractional bound, then the multiple-choice knapsack bound (`_suffix_dp`),
        then (`exact`) a branch and bound that finds its best sets, then bisected, until the greatest bound is at
        most `mu` (no column improves: a proof), or its interval is narrower than `tight`, or `refine` steps or
        `nodes` branch-and-bound nodes or the deadline are spent.  The greatest bound left is the answer: every
        interval keeps a valid bound at every step."""
        self.calls += 1
        best = float(self.single_values(sd, pi).max()) if len(sd.singles) else 0.0
        if not len(sd.svc) or (self.max_tenants is not None and self.max_tenants < 2):
            return max(best, 0.0), []
        w, u = self._wu(sd, pi)
        live = pi[sd.svc] > 0
        if not live.any():
            return max(best, 0.0), []
        e, b = sd.e, sd.budget
        lo = float(e[live].min())
        hi = float((b - e)[live].max())
        if hi < lo:
            return max(best, 0.0), []
        n = max(1, int(math.ceil(math.log(hi / lo) / math.log(self.opts.grid))))
        grid = lo * self.opts.grid ** np.arange(n + 1)
        grid[-1] = max(grid[-1], hi)
        self._budget = self.nodes if exact else 0
        thr = mu * (1 + self.opts.eps) + 1e-12  # below this a column is not worth proving absent
        found: dict[tuple, tuple[float, Config]] = {}
        ctx = (w, u, live, pi)
        heap = [(-self._frac(sd, ctx, float(d0), float(d1)), float(d0), float(d1), 0, False)
                for d0, d1 in zip(grid[:-1], grid[1:])]
        heapq.heapify(heap)
        steps = 0
        while heap and -heap[0][0] > max(thr, best) and heap[0][3] < 3 and steps < self.refine:
            if steps % 8 == 7 and self.clock() > self.deadline:
                break
            neg, d0, d1, stage, hit = heapq.heappop(heap)
            ub, steps = -neg, steps + 1
            if stage == 0:  # the knapsack bound
                heapq.heappush(heap, (-min(ub, self._knapsack(sd, ctx, d0, d1)[0]), d0, d1, 1, False))
            elif stage == 1 and exact and self._budget > 0:  # its best sets (columns), exactly
                before = len(found)
                z = self._branch(sd, ctx, d0, d1, thr, found)
                heapq.heappush(heap, (-min(ub, z), d0, d1, 2, len(found) > before))
            elif d1 / d0 > 1 + self.opts.tight or (exact and not hit and d1 / d0 > 1 + 1e-9):
                # the credit w / d0 is loose across a wide interval (and, for a proof, an interval whose best
                # set at d0 improves but none at its own duty does): bisect
                mid = math.sqrt(d0 * d1)
                for x0, x1 in ((d0, mid), (mid, d1)):
                    heapq.heappush(heap, (-min(ub, self._frac(sd, ctx, x0, x1)), x0, x1, 0, False))
            else:
                heapq.heappush(heap, (neg, d0, d1, 3, hit))  # as tight as it gets
        top = -heap[0][0] if heap else 0.0
        return max(best, top, 0.0), sorted(found.values(), key=lambda x: -x[0])[: self.opts.per_size]

    def _frac(self, sd: _SizeData, ctx, d0: float, d1: float) -> float:
        """The fractional bound of one duty interval (one item per service, the tenant limit)."""
        w, u, live = ctx[:3]
        order, seg = sd.order, sd.seg
        eo, wo, uo, bo, lv = sd.e[order], w[order], u[order], sd.budget[order], live[order]
        elig = lv & (eo <= bo - d0 + 1e-9) & (eo <= d1)
        if not elig.any():
            return 0.0
        v = np.where(elig, np.minimum(wo / d0, uo), 0.0)
        rho = np.maximum.reduceat(np.where(elig, v / eo, 0.0), seg)
        vmax = np.maximum.reduceat(v, seg)
        emax = np.maximum.reduceat(np.where(elig, eo, 0.0), seg)
        has = rho > 0
        if not has.any():
            return 0.0
        rho, vmax, emax = rho[has], vmax[has], emax[has]
        wt = np.minimum(emax, vmax / rho)
        idx = np.argsort(-rho)
        cw = np.cumsum(wt[idx])
        full = cw <= d1
        knap = float((rho[idx] * wt[idx])[full].sum())
        nf = int(full.sum())
        if nf < len(idx):
            knap += float(rho[idx[nf]] * (d1 - (cw[nf - 1] if nf else 0.0)))
        k = self.max_tenants
        if k is not None and len(vmax) > k:
            knap = min(knap, float(np.sort(vmax)[-k:].sum()))
        return knap

    def _knapsack(self, sd: _SizeData, ctx, d0: float, d1: float):
        """The knapsack bound of the interval [d0, d1] (every tenant credited at duty d0) and its tables."""
        key = (sd.size, d0, d1)
        if self._dp_key != key:
            w, u, live = ctx[:3]
            elig = np.flatnonzero(live & (sd.e <= sd.budget - d0 + 1e-9) & (sd.e <= d1))
            v = np.minimum(w[elig] / d0, u[elig])
            tables = _suffix_dp(sd.svc[elig], sd.e[elig], v, elig, d1, self.opts.units)
            self._dp_key, self._dp = key, (float(tables[4][0, -1]), tables)
        return self._dp

    def _branch(self, sd: _SizeData, ctx, d0: float, d1: float, thr: float, found: dict) -> float:
        """Branch and bound over the interval's sets (one point per service, times summing to at most d1, the
        knapsack tables as its bound); the sets worth more than `thr` at their own duty become columns in `found`.
        Returns a bound on the interval: its best value credited at d0, or at most `thr` when nothing exceeds it,
        or the knapsack bound when the nodes ran out."""
        db, (items, V, E, first, g, delta) = self._knapsack(sd, ctx, d0, d1)
        if db <= thr:
            return db
        n_serv = len(first) - 1
        pos = np.repeat(np.arange(n_serv), np.diff(first))  # the service position of each item
        k_max = self.max_tenants or n_serv
        top = g.shape[1] - 1
        z = [0.0]  # the interval's best objective
        sets: list[tuple[float, list[int]]] = []

        def dfs(k0: int, cap: float, val: float, members: list[int]) -> bool:
            self._budget -= 1
            if self._budget < 0 or (self._budget % 512 == 0 and self.clock() > self.deadline):
                self._budget = -1
                return False
            if len(members) > 1 and val > z[0]:  # one-tenant sets are priced exactly (the singles)
                z[0] = val
                if val > thr:
                    sets.append((val, list(members)))
            if len(members) >= k_max or k0 >= n_serv:
                return True
            bar = max(thr, z[0])
            col = g[k0:n_serv, min(int(cap / delta + 1e-9), top)] + val  # non-increasing: a prefix is worth trying
            stop = np.flatnonzero(col <= bar)
            end = k0 + (int(stop[0]) if len(stop) else n_serv - k0)
            if end <= k0:
                return True
            sub = np.arange(first[k0], first[end])
            sub = sub[E[sub] <= cap + 1e-12]
            if not len(sub):
                return True
            rem = np.minimum(((cap - E[sub]) / delta + 1e-9).astype(int), top)
            bnd = val + V[sub] + g[pos[sub] + 1, rem]
            keep = bnd > bar
            sub, bnd = sub[keep], bnd[keep]
            for i in np.argsort(-bnd, kind="stable").tolist():
                if bnd[i] <= max(thr, z[0]):
                    continue
                j = int(sub[i])
                if not dfs(int(pos[j]) + 1, cap - float(E[j]), val + float(V[j]), members + [j]):
                    return False
            return True

        complete = dfs(0, d1, 0.0, [])
        for val, members in sorted(sets, key=lambda x: -x[0])[:10]:
            pts = sorted((int(items[j]) for j in members), key=lambda i: sd.svc[i])
            d = float(sum(sd.e[i] for i in pts))
            if any(d + sd.e[i] > sd.budget[i] * (1 + 1e-9) for i in pts):
                continue
            key = tuple((int(sd.svc[i]), int(sd.batch[i])) for i in pts)
            if key in found:
                continue
            c = shared_config(self.instance, sd.size, tuple(int(sd.svc[i]) for i in pts),
                              tuple(int(sd.batch[i]) for i in pts), d)
            if c is not None and (true := self.value(c, ctx[3])) > thr:  # what the master will credit it with
                found[key] = (true, c)
        if not complete:
            self.fallbacks += 1
            return db  # out of nodes: the knapsack bound stands
        return max(z[0], thr) if z[0] <= thr else z[0]

def _suffix_dp(svc: np.ndarray, e: np.ndarray, v: np.ndarray, pts: np.ndarray, cap: float, units: int):
    """The multiple-choice knapsack bound of a duty interval: at most one item (operating point) per service,
    values `v`, times `e` rounded down to units of cap / units (so every set that fits in `cap` fits in `units`).
    Items are grouped by service (dominated ones dropped: no shorter point of the service is worth as much),
    services ordered by their best density; g[k, c] is the best value of services k.. within c units (g[n] = 0).
    Returns (points, values, times, first item of each service (+ end), g, unit)."""
    delta = cap / units
    o = np.lexsort((e, svc))
    svc, e, v, pts = svc[o], e[o], v[o], pts[o]
    start = np.r_[True, svc[1:] != svc[:-1]]
    seg = np.cumsum(start) - 1
    big = float(v.max()) + 1.0 if len(v) else 1.0
    vv = v + seg * big
    prev = np.r_[-np.inf, np.maximum.accumulate(vv)[:-1]]
    keep = (vv > prev) & (v > 0)
    svc, e, v, pts, seg = svc[keep], e[keep], v[keep], pts[keep], seg[keep]
    if not len(v):
        return pts, v, e, np.zeros(1, dtype=int), np.zeros((1, units + 1)), delta
    _, seg = np.unique(seg, return_inverse=True)
    n = int(seg.max()) + 1
    dens = np.zeros(n)
    np.maximum.at(dens, seg, v / e)
    rank = np.empty(n, dtype=int)
    rank[np.argsort(-dens, kind="stable")] = np.arange(n)
    o = np.lexsort((e, rank[seg]))
    e, v, pts, pos = e[o], v[o], pts[o], rank[seg][o]
    first = np.searchsorted(pos, np.arange(n + 1))
    q = np.floor(e / delta + 1e-9).astype(int)
    g = np.zeros((n + 1, units + 1))
    for k in range(n - 1, -1, -1):
        row = g[k + 1].copy()
        nxt = g[k + 1]
        for i in range(first[k], first[k + 1]):
            qi = q[i]
            if qi > units:
                continue
            if qi == 0:
                np.maximum(row, nxt + v[i], out=row)
            else:
                np.maximum(row[qi:], nxt[:units + 1 - qi] + v[i], out=row[qi:])
        g[k] = row
    return pts, v, e, first, g, delta


# ------------------------------------------------------------------------------------------------- master
class _Master:
    """The restricted master in HiGHS (columns added, re-solved warm)."""

    def __init__(self, sizes, layouts, active: list[int], objective: Objective, gpus: int):
        import highspy

        from solvers.exact.milp import _quiet_stdout

        with _quiet_stdout():
            self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("threads", 1)
        inf = highspy.kHighsInf
        self.inf = inf
        self.maxi = objective is Objective.MAX_SCALE
        self.sizes = list(sizes)
        self.row_size = {p: i for i, p in enumerate(self.sizes)}
        self.row_serv = {s: len(self.sizes) + i for i, s in enumerate(active)}
        n_rows = len(self.sizes) + len(active) + (1 if self.maxi else 0)
        lower = np.r_[np.full(len(self.sizes), -inf), np.full(len(active), 0.0 if self.maxi else 1.0),
                      [-inf] if self.maxi else []]
        upper = np.r_[np.zeros(len(self.sizes)), np.full(len(active), inf), [float(gpus)] if self.maxi else []]
        self.h.addRows(n_rows, lower, upper, 0, np.zeros(n_rows, dtype=np.int32), np.zeros(0, dtype=np.int32),
                       np.zeros(0))
        for L in layouts:
            idx = [self.row_size[p] for p in sorted(set(L))]
            val = [-float(L.count(p)) for p in sorted(set(L))]
            if self.maxi:
                idx.append(n_rows - 1)
                val.append(1.0)
            self._add(0.0 if self.maxi else 1.0, idx, val)
        if self.maxi:
            self._add(-1.0, [self.row_serv[s] for s in active], [-1.0] * len(active))
        self.n_rows = n_rows

    def _add(self, cost: float, idx: list[int], val: list[float]) -> None:
        self.h.addCol(cost, 0.0, self.inf, len(idx), np.array(idx, dtype=np.int32), np.array(val, dtype=float))

    def add_config(self, c: Config, cov: dict[int, float]) -> None:
        idx = [self.row_size[c.size]] + [self.row_serv[s] for s in cov]
        self._add(0.0, idx, [1.0] + list(cov.values()))

    def solve(self) -> tuple[float, np.ndarray, dict[float, float]] | None:
        self.h.run()
        if self.h.getModelStatus() != self.h.getModelStatus().__class__.kOptimal:
            return None
        dual = np.asarray(self.h.getSolution().row_dual)
        value = float(self.h.getInfo().objective_function_value)
        return (-value if self.maxi else value), dual, {p: abs(float(dual[i])) for p, i in self.row_size.items()}


# ------------------------------------------------------------------------------------------------- the loop
def _clock(name: str):
    if name not in ("wall", "cpu"):
        raise InputError(f"clock: expected wall or cpu, got {name!r}")
    return time.perf_counter if name == "wall" else time.process_time


def _coverage(c: Config, rates: np.ndarray, clip: float) -> dict[int, float]:
    out: dict[int, float] = {}
    for (s, _), cap in zip(c.tenants, c.cap):
        if rates[s] > 0:
            out[s] = out.get(s, 0.0) + min(cap, clip * rates[s]) / rates[s]
    return out


def _key(c: Config) -> tuple:
    return (c.size, c.procs, c.tenants)


def _lagrange(pi: np.ndarray, ub: dict[float, float], layouts, objective: Objective, gpus: int) -> float:
    """The Lagrangian bound of the module docstring from coverage weights pi >= 0 and per-size upper bounds."""
    total = float(pi.sum())
    w = max(sum(L.count(p) * max(ub[p], 0.0) for p in set(L)) for L in layouts)
    if objective is Objective.MIN_GPUS:
        return total / w if w > 0 else math.inf
    return gpus * w / total if total > 0 else math.inf


def layout_lp(instance: Instance, objective: Objective, layouts, active: list[int]) -> float:
    """The layout LP of `stsched.bounds.lp_relaxation` (one-tenant configurations at their optimistic capacity, no
    clipping: a valid bound, docs/RULES.md), built sparse so that it scales to thousands of services."""
    master = _Master(instance.mechanism.sizes, layouts, active, objective, instance.gpus)
    names = instance.service_names
    for s in active:
        rate = instance.services[s].rate
        for p in instance.mechanism.sizes:
            best = max((c for b in instance.batches for k in instance.procs_options()
                        if (c := point_capacity(instance, names[s], b, p, k, optimistic=True)) is not None),
                       default=0.0)
            if best > 0:
                master.add_config(Config(p, 1, ((s, 0),), (best,), 0.0), {s: best / rate})
    out = master.solve()
    if out is None:  # min-gpus: some service has no configuration at all (caught before by `unservable`)
        return math.inf if objective is Objective.MIN_GPUS else 0.0
    return out[0]


def column_generation(instance: Instance, objective: Objective, opts: CgOptions = CgOptions(),
                      timer: _Timer | None = None, progress: bool = False) -> CgBound:
    """Solve the configuration LP by column generation within `opts` (Infeasible when some service cannot be served
    at all).  `timer` gives the execution times (default: solo, which makes `bound` valid for the full problem; a
    conservative timer gives columns that hold under any neighbour, for integer plans, whose LP then bounds only
    that restricted model)."""
    t0 = time.perf_counter()
    clock = _clock(opts.clock)
    deadline = clock() + opts.time_limit_s
    bad = unservable(instance, objective)
    if bad:
        raise Infeasible(bad)
    layouts = tuple(enumerate_layouts(instance, maximal=True, limit=10 ** 6))
    if timer is None:
        timer = _SoloTimer(instance, False, layouts) if instance.interference.form == "none" else \
            _Timer(instance, False, layouts)
    data = _size_data(instance, timer)
    rates = np.array([s.rate for s in instance.services], dtype=float)
    active = [s for s, r in enumerate(rates) if r > 0]
    if not active:
        value = 0.0 if objective is Objective.MIN_GPUS else math.inf
        return CgBound(objective, value, value, True, 0, 0, 0, time.perf_counter() - t0, 1.0, (), layouts)
    maxi = objective is Objective.MAX_SCALE
    base = layout_lp(instance, objective, layouts, active)  # valid already: the one-tenant, unclipped LP
    clip = base * (1 + 1e-6) if maxi and math.isfinite(base) else (1e9 if maxi else 1.0)
    n = len(active)
    opts = replace(opts, per_size=opts.per_size or max(30, n // 2), seeds=opts.seeds or max(12, n // 4))
    pricer = Pricer(instance, data, rates, clip, opts)
    pricer.deadline, pricer.clock = deadline, clock
    master = _Master(instance.mechanism.sizes, layouts, active, objective, instance.gpus)
    columns: list[Config] = []
    keys: set[tuple] = set()

    def add(c: Config) -> None:
        k = _key(c)
        if k not in keys:
            keys.add(k)
            columns.append(c)
            master.add_config(c, _coverage(c, rates, clip))

    for sd in data.values():  # start: every service's best one-tenant configuration of each size
        if len(sd.singles):
            o = np.lexsort((-sd.single_cap, sd.single_svc))  # by service, the greatest capacity first
            for i in o[np.r_[True, sd.single_svc[o][1:] != sd.single_svc[o][:-1]]]:
                add(sd.singles[int(i)])
    bound = base
    history: list[tuple[int, float, float | None]] = []
    converged, value, rounds = False, math.nan, 0
    pi = np.zeros(len(rates))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(desc="column generation", unit="round", disable=None)
    center: tuple[np.ndarray, dict[float, float]] | None = None  # the duals of the best Lagrangian bound
    best_lag = math.inf if maxi else -math.inf  # (the bound reported is also floored by the layout LP)

    def better(lag: float, than: float) -> bool:
        return lag < than * (1 - 1e-12) if maxi else lag > than * (1 + 1e-12)

    def closed(value: float) -> bool:  # the bound meets the master: the LP value lies between them
        return (bound - value if maxi else value - bound) <= opts.gap * abs(value) + 1e-9

    def improves(c: Config, pi: np.ndarray, mu: dict[float, float]) -> bool:
        return pricer.value(c, pi) > mu[c.size] * (1 + TOL) + 1e-12

    if clock() >= deadline:  # the preparation spent the time: the layout LP stands, unconverged
        log.info("column generation: out of time before the first round; the layout LP bound %.6g stands", base)
        return CgBound(objective, base, math.nan, False, len(columns), pricer.calls, 0, time.perf_counter() - t0,
                       clip, tuple(columns), layouts, ())
    while rounds < opts.max_rounds:
        rounds += 1
        lp = master.solve()
        if lp is None:
            raise RuntimeError("the restricted master LP did not solve to optimality")
        value, dual, mu = lp
        pi = np.zeros(len(rates))
        for s, row in master.row_serv.items():
            pi[s] = max(0.0, float(dual[row]))
        if closed(value):
            converged = True
            history.append((rounds, value, None))
            break
        out_of_time = clock() >= deadline
        last = out_of_time or rounds == opts.max_rounds
        lag = None
        # Wentges smoothing: price at a point between the best bound's duals and the master's (a = 0: the master's)
        a = opts.smoothing if center is not None else 0.0
        new: list[Config] = []
        while True:
            if a > 0:
                pi_s = a * center[0] + (1 - a) * pi
                mu_s = {p: a * center[1][p] + (1 - a) * mu[p] for p in mu}
            else:
                pi_s, mu_s = pi, mu
            # a column the master has cannot improve it (one that seems to is within the LP's tolerances)
            cand = [c for sd in data.values() for _, c in pricer.columns(sd, pi_s, mu_s[sd.size])
                    if _key(c) not in keys]
            good = [c for c in cand if improves(c, pi, mu)]
            if good and not last and rounds % opts.bound_every != 0:
                new = cand
                break
            # the proven upper bounds at the pricing point: a Lagrangian bound there, and more columns
            exact = not good and not last
            ub: dict[float, float] = {}
            for p, sd in data.items():
                ub[p], more = pricer.upper(sd, pi_s, mu_s[p], exact=exact)
                cand += [c for _, c in more if _key(c) not in keys]
            lag = _lagrange(pi_s, ub, layouts, objective, instance.gpus)
            log.debug("round %d a=%.2f exact=%s lag %.6g (bound %.6g, master %.6g) fallbacks %d nodes %d", rounds,
                      a, exact, lag, bound, value, pricer.fallbacks, pricer.nodes)
            if better(lag, best_lag):
                best_lag, center = lag, (pi_s, mu_s)
            if better(lag, bound):
                bound = lag
            good = [c for c in cand if improves(c, pi, mu)]
            if a == 0 and all(ub[p] <= mu[p] * (1 + opts.eps) + 1e-9 for p in data):
                converged = True  # no column of any size can improve the master: its value is the LP's
                break
            if good or last or clock() >= deadline:
                new = cand
                break
            if a > 0:  # mis-priced: nothing improves the master at the smoothed point; price its own duals
                a = 0.0
                continue
            if not exact or pricer.nodes >= opts.max_nodes:
                break
            pricer.nodes *= 4  # undecided and nothing found: search deeper with the same duals
            pricer.refine *= 4
        history.append((rounds, value, lag))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(lp=f"{value:.5g}", bound=f"{bound:.5g}", columns=len(columns))
        converged = converged or closed(value)
        new = [c for c in new if _key(c) not in keys]  # a column the master has cannot improve it
        if converged or not new or out_of_time:
            break
        for c in new:
            add(c)
    if bar is not None:
        bar.close()
    log.info("column generation: %s after %d rounds, LP %.6g, bound %.6g, %d columns", 
             "converged" if converged else "stopped", rounds, value, bound, len(columns))
    return CgBound(objective, bound, value, converged, len(columns), pricer.calls, rounds,
                   time.perf_counter() - t0, clip, tuple(columns), layouts, tuple(history))


__all__ = ["CgBound", "CgOptions", "Infeasible", "Pricer", "column_generation"]
