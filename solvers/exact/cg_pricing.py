"""The pricing oracle of the column generation (solvers.exact.colgen): per partition size and coverage duals, the
configurations worth most (a greedy search over tenant sets) and a proven upper bound on every configuration's value
(duty intervals refined best first: fractional knapsack, multiple-choice knapsack DP, branch and bound, bisection;
on instances of more than `core_above` services the DP runs over a core of the densest services, the rest bounded
by a fractional knapsack; by default each interval is first tested by Dinkelbach's parametric bound,
solvers.exact.cg_ratio).
See solvers.exact.colgen's docstring for the model and the bound it feeds."""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from solvers.exact.cg_kernels import branch_sets, greedy_sets, mck_prepare, mck_rows
from solvers.exact.patterns import Config, Stop, _memory_ok, _Timer, coverage, shared_config, tenant_points
from stsched.forking import clock_named
from stsched.layouts import duty_room
from stsched.problem import Instance
from stsched.errors import InputError
from stsched.validate import MAX_THREADS, check_int

TOL = 1e-7  # reduced value a column must exceed (relative to its dual) to enter
ANCHORS = ("all", "max-scale", "none")  # the values of `CgOptions.anchor`


@dataclass(frozen=True)
class CgOptions:
    """Column generation limits: `time_limit_s` on the `clock` (wall, or the CPU time of this process and its pricing workers), `max_rounds`
    master solves (a work limit: the rows of an experiment that stops on it do not depend on the machine),
    `per_size` columns added per size and round, `seeds`/`pool` of the greedy tenant-set search, `grid` the ratio
    of the starting duty grid of the upper bound, `tight` the narrowest interval it refines for the bound's sake,
    `refine` its refinement steps and `nodes` its branch-and-bound nodes per pricing call (both raised while an
    exact pricing cannot decide; `refine` also doubled, up to `max_refine`, after an exact pricing whose steps ran
    out with a loose interval on top, `nodes` up to `max_nodes` after one in which an interval ran out of nodes),
    `units` the knapsack DP's resolution, `bound_every` rounds between Lagrangian bounds while the greedy search
    finds columns (each also when it finds none and at the end), `smoothing` the Wentges weight (`auto_smoothing`:
    adapted each round, solvers.exact.cg_stabilise), `eps`/`gap` the convergence tolerances, `workers` the
    processes that price the sizes of a round side by side (solvers.exact.cg_parallel)."""

    time_limit_s: float = 60.0
    max_rounds: int = 500
    per_size: int = 0  # 0: max(30, services / 2)
    seeds: int = 0  # 0: max(12, services / 4)
    pool: int = 120
    grid: float = 1.1
    tight: float = 0.002  # duty intervals are bisected (best first) down to this relative width
    refine: int = 1600  # interval refinement steps per pricing call (each a bound, a search or a bisection) ...
    max_refine: int = 6_400  # ... doubled up to this after an exact pricing whose steps ran out on a loose interval
    bound_every: int = 10
    nodes: int = 20_000  # branch-and-bound nodes per exact pricing call (raised up to max_nodes when undecided)
    max_nodes: int = 1_280_000  # (320,000 before session 14: it bound in the tail at 1,024 services, docs/SOLVERS.md)
    eps: float = 1e-4  # relative: the pricing proves no column worth more than (1 + eps) times its dual
    gap: float = 1e-4  # relative: converged once the bound is this close to the restricted master's value
    clock: str = "wall"  # what time_limit_s counts: "wall" clock or "cpu" time (this process's and its workers')
    units: int = 512  # knapsack units per duty interval of the exact pricing's bound (times rounded down)
    core: int = 48  # the knapsack DP's densest services (the others: a fractional bound; 0: every service) ...
    core_above: int = 2048  # ... on instances of more services than this (below, the DP over all bounds tighter)
    smoothing: float = 0.5  # Wentges dual smoothing: weight of the best bound's duals in the pricing point (0: off)
    keep: int = 30  # the best sets the exact pricing's branch and bound keeps per duty interval (columns)
    few_per: int = 50  # the greedy's improving columns below services / few_per: price exactly (0: only when none)
    disjoint: bool = True  # the greedy also proposes a packing of sets with distinct services (several per service)
    box: float = 0.0  # box-step: the priced duals kept within this relative half-width of the centre (0: off)
    anchor: str = "max-scale"  # the smoothing's first centre is the layout LP's duals for "all" objectives, for
    # "max-scale" only, or for "none" (the first Lagrangian bound's duals); chosen on development runs (docs/SOLVERS.md)
    auto_smoothing: bool = False  # adapt the Wentges weight each round (solvers.exact.cg_stabilise; off: it did
    # not help at 1,024 services, docs/SOLVERS.md)
    combine: bool = True  # the bound also from the best nonnegative combination of the duals priced so far
    integer_stop: bool = False  # min-gpus: stop, `settled`, once ceil(bound) = ceil(master value) (stsched bound's
    # whole-GPU bound can rise no further; off where the columns or the fractional bound matter: solver cg's plans)
    round_aware: bool = True  # min-gpus, no branching rows: where the bound is within `gap` of the master but rounds
    # up below it, go on with the tolerances narrowed to the rounding's (solvers.exact.cg_round; issue 17)
    workers: int = 0  # processes that price the sizes of a round (solvers.exact.cg_parallel): 1 this one alone, 0
    # automatic (two where this process may use two CPUs, on instances of cg_parallel.PARALLEL_FROM services or more)
    ratio_test: bool = True  # the exact pricing's interval bound by Dinkelbach's parametric test at the best value
    # known (exact whatever the interval's width; solvers.exact.cg_ratio) instead of crediting every tenant at the
    # interval's shortest duty (which needs intervals 0.2 % wide near the optimum); not with rounding cuts
    proof_width: float = 2e-4  # (ratio_test, exact pricing) the relative width down to which an interval still above
    # the best value found is bisected even when its last step found a new set (`tight` otherwise)

    def __post_init__(self) -> None:
        # the one check of each option the cg solver's `--param` shares (CgSolverOptions builds a CgOptions to run
        # them; column_generation relies on them): the names are the `--param` keys
        for name in ("max_rounds", "per_size", "seeds", "pool"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.bound_every < 1:  # (0 was a ZeroDivisionError inside the column generation)
            raise InputError(f"bound_every must be >= 1, got {self.bound_every}")
        if not self.grid > 1.0:
            raise InputError(f"grid: expected a ratio above 1, got {self.grid}")
        if not 0.0 <= self.smoothing < 1.0:
            raise InputError(f"smoothing: expected a weight in [0, 1), got {self.smoothing}")
        if self.anchor not in ANCHORS:
            raise InputError(f"anchor: expected all, max-scale or none, got {self.anchor!r}")
        clock_named(self.clock)  # (the rule on clock names lives in stsched.forking: `stsched bound` reads it too)
        check_int(self.workers, "workers", minimum=0, maximum=MAX_THREADS)  # the pool forks workers - 1
        for name in ("ratio_test", "round_aware", "integer_stop", "combine"):  # (a string "0" would be true)
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        if not isinstance(self.proof_width, (int, float)) or not 0 < self.proof_width <= self.tight:
            raise InputError(f"proof_width: expected a relative width in (0, tight = {self.tight:g}], got "
                             f"{self.proof_width!r}")


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
    room: np.ndarray = field(init=False)  # each point's longest duty (`stsched.layouts.duty_room`), once per size

    def __post_init__(self) -> None:
        self.room = duty_room(self.e, self.budget)


def _size_data(instance: Instance, timer: _Timer, stop: Stop = None) -> dict[float, _SizeData]:
    singles, layer, _ = tenant_points(instance, timer, stop)
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


def mem_cap(instance: Instance, size: float) -> float:
    """The largest memory (MB) of a tenant set that the memory rule accepts on a partition of `size` (inf: any),
    from below."""
    ok = _memory_ok  # the same rule as a configuration's
    lo, hi = 0.0, instance.device.memory_mb * 2 + 1.0
    if ok(instance, size, hi):
        return math.inf
    for _ in range(40):  # the largest memory that fits (bisection on the rule itself)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(instance, size, mid) else (lo, mid)
    return lo


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
        active = int((rates > 0).sum())
        self.core = opts.core if active > opts.core_above else 0  # the knapsack DP's core (0: every service)
        self.fallbacks = 0  # duty intervals whose exact pricing ran out of nodes (their fractional bound stood)
        self.short_refines = 0  # exact pricings whose refinement steps ran out above the threshold
        self.floor_closes = 0  # duty intervals the parametric test closed with the duty floor priced (cg_ratio; tests)
        self.steps = 0  # the refinement steps of the last upper bound
        self.deadline = math.inf  # the exact pricing stops here
        self.clock = time.perf_counter  # (past the deadline its bound falls back to the knapsack one)
        self._dp: dict[tuple, tuple] = {}  # the last intervals' knapsack tables (the branch and bound reuses them)
        self._pack_skip: dict[float, int] = {}  # per size: calls left before the greedy's packing runs again
        self._rows: dict[tuple, tuple] = {}  # each interval's knapsack row g[0] and unit (its lower halves reuse it)
        self.cuts = None  # a solvers.exact.cg_cuts.CutPool: the duals priced then end with the cuts' (its `bonus`)

    def _wu(self, sd: _SizeData, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = self.rates[sd.svc]
        w = pi[sd.svc] * sd.cred / np.where(r > 0, r, 1.0)
        u = pi[sd.svc] * self.clip
        return w, u

    def single_values(self, sd: _SizeData, pi: np.ndarray) -> np.ndarray:
        r = self.rates[sd.single_svc]
        a = np.minimum(sd.single_cap, self.clip * r) / np.where(r > 0, r, 1.0)
        return pi[sd.single_svc] * a + self._bonus(sd.single_svc, a, pi)

    def _bonus(self, svc: np.ndarray, a: np.ndarray, pi: np.ndarray) -> np.ndarray | float:
        """What the cuts' duals (the end of `pi`) add to tenants of services `svc` covering `a` (0 without cuts)."""
        return 0.0 if self.cuts is None or not len(self.cuts) else self.cuts.bonus(svc, a, pi)

    def _point_values(self, sd: _SizeData, ctx, d0: float, sel=slice(None)) -> np.ndarray:
        """The value of the points `sel` as tenants credited at duty d0: min(w / d0, u), plus the cuts' bonus."""
        w, u, _, pi = ctx
        v = np.minimum(w[sel] / d0, u[sel])
        if self.cuts is None or not len(self.cuts):
            return v
        r = self.rates[sd.svc[sel]]
        a = np.minimum(sd.cred[sel] / (d0 * np.where(r > 0, r, 1.0)), self.clip)  # the coverage at duty d0
        return v + self.cuts.bonus(sd.svc[sel], a, pi)

    def columns(self, sd: _SizeData, pi: np.ndarray, mu: float) -> list[tuple[float, Config]]:
        """Columns of size sd.size whose value pi . a exceeds mu, best first (at most `per_size`)."""
        self.calls += 1
        out: list[tuple[float, Config]] = []
        if len(sd.singles):
            sv = self.single_values(sd, pi)
            for i in np.argsort(-sv)[: self.opts.per_size]:
                if sv[i] > mu * (1 + TOL) + 1e-12:
                    out.append((float(sv[i]), sd.singles[i]))
        packing: list[tuple[float, Config]] = []
        if self.max_tenants is None or self.max_tenants >= 2:
            sets, packing = self._sets(sd, pi, mu)
            out += sets
        out.sort(key=lambda x: -x[0])
        out = out[: self.opts.per_size]
        have = {(c.size, c.procs, c.tenants) for _, c in out}  # the packing's sets join whatever their rank
        return out + sorted((x for x in packing if (x[1].size, x[1].procs, x[1].tenants) not in have),
                            key=lambda x: -x[0])

    def _sets(self, sd: _SizeData, pi: np.ndarray, mu: float
              ) -> tuple[list[tuple[float, Config]], list[tuple[float, Config]]]:
        """Greedy tenant sets grown from the best seeds, and (`disjoint`) a packing of sets of distinct services."""
        if not len(sd.svc):
            return [], []
        w, u = self._wu(sd, pi)
        live = np.flatnonzero(pi[sd.svc] > 0)  # (a service of dual 0 adds nothing to a set's reduced value)
        if not len(live):
            return [], []
        v1 = np.minimum(w[live] / sd.e[live], u[live])
        pool = live[np.argsort(-(v1 / sd.e[live]), kind="stable")[: self.opts.pool]]
        seeds = live[np.argsort(-v1, kind="stable")[: self.opts.seeds]]
        pool = np.unique(np.r_[pool, seeds])
        cap_mem = self._mem_cap(sd.size)
        # no set has more tenants than the shortest times that fit in the longest latency budget (d + e <= budget):
        # a bound that keeps the kernel's (seeds x tenants) table small when thousands of points are live
        k_fit = max(2, int(np.searchsorted(np.cumsum(np.sort(sd.e[live])), float(sd.budget[live].max()),
                                           side="right")))
        k_max = min(self.max_tenants or len(pool) + 1, k_fit)
        mem = sd.mem.astype(float)
        found: dict[tuple, tuple[float, Config]] = {}
        self._collect(sd, pi, mu, seeds, *greedy_sets(seeds.astype(np.int64), pool.astype(np.int64), sd.svc, sd.e,
                                                     w, u, sd.room, mem, float(min(cap_mem, 1e300)), int(k_max),
                                                     len(self.rates)), found)
        packing: dict[tuple, tuple[float, Config]] = {}
        if self.opts.disjoint and self._pack_skip.get(sd.size, 0) > 0:
            self._pack_skip[sd.size] -= 1
        elif self.opts.disjoint:  # a packing: sets of distinct services over every live point, the best seeds first
            order = live[np.argsort(-v1, kind="stable")]
            dense = live[np.argsort(-(v1 / sd.e[live]), kind="stable")]  # (densest first: the kernel prunes more)
            self._collect(sd, pi, mu, order, *greedy_sets(
                order.astype(np.int64), dense.astype(np.int64), sd.svc, sd.e, w, u, sd.room, mem,
                float(min(cap_mem, 1e300)), int(min(self.max_tenants or len(live) + 1, k_fit)), len(self.rates), True),
                packing)
        extra = [x for k, x in packing.items() if k not in found]
        if self.opts.disjoint and len(extra) * 100 < len(live):  # the packing adds little now: rest a few calls
            self._pack_skip[sd.size] = 4
        return list(found.values()), extra

    def _collect(self, sd: _SizeData, pi: np.ndarray, mu: float, seeds: np.ndarray, sets: np.ndarray,
                 count: np.ndarray, value: np.ndarray, found: dict) -> None:
        """The greedy's sets of at least two tenants worth more than `mu` (checked as configurations) into `found`."""
        for r in range(len(seeds)):
            members, val = sets[r, :count[r]].tolist(), float(value[r])
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

    def value(self, c: Config, pi: np.ndarray) -> float:
        """pi . a_c, with a_c as the master's coverage coefficients (and the cuts' terms, when there are cuts)."""
        if self.cuts is not None and len(self.cuts):
            cov = coverage(c, self.rates, self.clip)
            return float(sum(pi[s] * a for s, a in cov.items())) + self.cuts.value(cov, pi)
        return float(sum(pi[s] * min(cap, self.clip * self.rates[s]) / self.rates[s]
                         for (s, _), cap in zip(c.tenants, c.cap) if self.rates[s] > 0))

    def _mem_cap(self, size: float) -> float:
        return mem_cap(self.instance, size)

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
        self.steps = 0
        if self.opts.ratio_test and (self.cuts is None or not len(self.cuts)):
            from solvers.exact.cg_ratio import ratio_upper  # (it reads this module's DP)

            return ratio_upper(self, sd, pi, mu, exact)
        best, ctx, grid = self._duty_grid(sd, pi, exact)
        if ctx is None:
            return max(best, 0.0), []
        thr = mu * (1 + self.opts.eps) + 1e-12  # below this a column is not worth proving absent
        found: dict[tuple, tuple[float, Config]] = {}
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
                heapq.heappush(heap, (-min(ub, self._knapsack(sd, ctx, d0, d1)), d0, d1, 1, False))
            elif stage == 1 and exact and self._budget > 0:  # its best sets (columns), exactly
                before = len(found)
                z = self._branch(sd, ctx, d0, d1, thr, found)
                heapq.heappush(heap, (-min(ub, z), d0, d1, 2, len(found) > before))
            elif d1 / d0 > 1 + self.opts.tight or (exact and not hit and d1 / d0 > 1 + 1e-9):
                # the credit w / d0 is loose across a wide interval (and, for a proof, an interval whose best
                # set at d0 improves but none at its own duty does): bisect
                mid = math.sqrt(d0 * d1)
                heapq.heappush(heap, (-min(ub, self._frac(sd, ctx, mid, d1)), mid, d1, 0, False))
                row = self._rows.get((sd.size, d0, d1))
                if row is not None:  # the lower half credits at d0 too: its knapsack bound is the row at mid
                    lower = float(row[0][min(int(mid / row[1] + 1e-9), len(row[0]) - 1)])
                    self._rows[(sd.size, d0, mid)] = row
                    heapq.heappush(heap, (-min(ub, lower), d0, mid, 1, False))
                else:
                    heapq.heappush(heap, (-min(ub, self._frac(sd, ctx, d0, mid)), d0, mid, 0, False))
            else:
                heapq.heappush(heap, (neg, d0, d1, 3, hit))  # as tight as it gets
        self.steps = steps  # (the round log reads it)
        top = -heap[0][0] if heap else 0.0
        if exact and steps >= self.refine and top > max(thr, best) and heap[0][3] < 3:
            self.short_refines += 1  # the steps ran out with an interval still loose: its bound stands
        return max(best, top, 0.0), sorted(found.values(), key=lambda x: -x[0])[: self.opts.per_size]

    def _duty_grid(self, sd: _SizeData, pi: np.ndarray, exact: bool) -> tuple[float, tuple | None, np.ndarray]:
        """What both exact upper bounds (`upper`, cg_ratio's `ratio_upper`) start from: the best one-tenant value,
        the context (w, u, live, pi) of the interval bounds and the starting duty grid (ratio `grid`) from the
        shortest live point to the longest duty room; the context is None when no tenant set can be worth anything
        (no point, a tenant limit below 2, no live point, no duty).  Clears the knapsack tables of other duals and
        sets the call's node budget (`nodes` when `exact`, else none)."""
        self._dp.clear()
        self._rows.clear()
        best = float(self.single_values(sd, pi).max()) if len(sd.singles) else 0.0
        none = np.zeros(0)
        if not len(sd.svc) or (self.max_tenants is not None and self.max_tenants < 2):
            return best, None, none
        w, u = self._wu(sd, pi)
        live = pi[sd.svc] > 0
        if self.cuts is not None and len(self.cuts):
            live |= self.cuts.live(sd.svc, pi)
        if not live.any():
            return best, None, none
        lo, hi = float(sd.e[live].min()), float(sd.room[live].max())
        if hi < lo:
            return best, None, none
        n = max(1, int(math.ceil(math.log(hi / lo) / math.log(self.opts.grid))))
        grid = lo * self.opts.grid ** np.arange(n + 1)
        grid[-1] = max(grid[-1], hi)
        self._budget = self.nodes if exact else 0
        return best, (w, u, live, pi), grid

    def take_sets(self, sd: _SizeData, items: np.ndarray, sets: np.ndarray, vals: np.ndarray, thr: float,
                  pi: np.ndarray, found: dict) -> None:
        """The sets a branch and bound (cg_kernels.branch_sets) returned, best first, as configurations into `found`
        (keyed by their (service, batch) points) when worth more than `thr` as the master credits them: each set's
        points (rows of `sets`, indices into `items`, -1 padded), at its own duty, which every tenant's room must
        allow (a point eligible at the interval's d0 may not be at the set's duty)."""
        for r in np.argsort(-vals, kind="stable"):
            pts = sorted((int(items[j]) for j in sets[r] if j >= 0), key=lambda i: sd.svc[i])
            d = float(sum(sd.e[i] for i in pts))
            if any(d > sd.room[i] for i in pts):
                continue
            key = tuple((int(sd.svc[i]), int(sd.batch[i])) for i in pts)
            if key in found:
                continue
            c = shared_config(self.instance, sd.size, tuple(int(sd.svc[i]) for i in pts),
                              tuple(int(sd.batch[i]) for i in pts), d)
            if c is not None and (true := self.value(c, pi)) > thr:  # what the master will credit it with
                found[key] = (true, c)

    def _frac(self, sd: _SizeData, ctx, d0: float, d1: float) -> float:
        """The fractional bound of one duty interval (one item per service, the tenant limit)."""
        live = ctx[2]
        order, seg = sd.order, sd.seg
        eo, lv = sd.e[order], live[order]
        elig = lv & (d0 <= sd.room[order]) & (eo <= d1)
        if not elig.any():
            return 0.0
        v = np.where(elig, self._point_values(sd, ctx, d0, order), 0.0)
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

    def _knapsack(self, sd: _SizeData, ctx, d0: float, d1: float, full: bool = False):
        """The knapsack bound of the interval [d0, d1] (every tenant credited at duty d0); with `full`, also its
        tables (for the branch and bound; the last few are kept)."""
        key = (sd.size, d0, d1)
        if key in self._dp:
            return self._dp[key] if full else self._dp[key][0]
        live = ctx[2]
        elig = np.flatnonzero(live & (d0 <= sd.room) & (sd.e <= d1))
        v = self._point_values(sd, ctx, d0, elig)
        if not full:
            row = _suffix_dp(sd.svc[elig], sd.e[elig], v, elig, d1, self.opts.units, self.core, full=False)
            self._rows[key] = (row, d1 / self.opts.units)
            return float(row[-1])
        tables = _suffix_dp(sd.svc[elig], sd.e[elig], v, elig, d1, self.opts.units, self.core)
        if len(self._dp) >= 4:
            self._dp.pop(next(iter(self._dp)))
        self._dp[key] = (float(tables[4].core[0, -1]), tables)
        return self._dp[key]

    def _branch(self, sd: _SizeData, ctx, d0: float, d1: float, thr: float, found: dict) -> float:
        """Branch and bound over the interval's sets (one point per service, times summing to at most d1, the
        knapsack tables as its bound); the sets worth more than `thr` at their own duty become columns in `found`.
        Returns a bound on the interval: its best value credited at d0, or at most `thr` when nothing exceeds it,
        or the knapsack bound when the nodes ran out."""
        db, (items, V, E, first, g, delta) = self._knapsack(sd, ctx, d0, d1, full=True)
        if db <= thr:
            return db
        k_max = self.max_tenants or len(first) - 1
        tail = g.tail
        complete, z, best, vals, left, open_bound = branch_sets(
            first, V, E, g.core, int(tail.start), np.asarray(tail.cw, float), np.asarray(tail.cv, float),
            float(delta), float(d1), float(thr), int(k_max), int(self._budget), self.opts.keep, float(self.deadline),
            bool(self.clock is time.process_time))
        self._budget = int(left)
        self.take_sets(sd, items, best, vals, thr, ctx[3], found)
        if not complete:  # out of nodes: what the search left open bounds the rest (the knapsack bound at worst)
            self.fallbacks += 1
            return min(db, max(z, thr, float(open_bound)))
        return max(z, thr)

def _suffix_dp(svc: np.ndarray, e: np.ndarray, v: np.ndarray, pts: np.ndarray, cap: float, units: int,
               core: int = 0, full: bool = True):
    """The multiple-choice knapsack bound of a duty interval: at most one item (operating point) per service,
    values `v`, times `e` rounded down to units of cap / units (so every set that fits in `cap` fits in `units`).
    Items are grouped by service (dominated ones dropped: no shorter point of the service is worth as much),
    services ordered by their best density; g[k, c] bounds the value of every set of services k.. whose times
    (rounded down) sum to at most c units (g[n] = 0).

    `core` > 0 limits the DP to the `core` densest services: the others are bounded by a fractional knapsack of
    pseudo-items (a service of best density rho and best value vmax is worth at most min(vmax, rho * t) in time t),
    whose rows g[k, c] bound every set of those services within (c + 1) units of real time: still a bound on every
    set, at a fraction of the DP's work when services are many.  `full` False: only the row g[0].
    Returns (points, values, times, first item of each service (+ end), g, unit), or the bound when not `full`."""
    delta = cap / units
    e, v, pts, first, dens = mck_prepare(np.ascontiguousarray(svc, dtype=np.int64), np.ascontiguousarray(e, float),
                                         np.ascontiguousarray(v, float), np.ascontiguousarray(pts, dtype=np.int64))
    n = len(first) - 1
    if not len(v):
        return (pts, v, e, np.zeros(1, dtype=int), _Tables(np.zeros((1, units + 1)), _Tail(
            0, np.zeros(1), np.zeros(1), delta)), delta) if full else np.zeros(units + 1)
    q = np.floor(e / delta + 1e-9).astype(np.int64)
    k_dp = n if core <= 0 or n <= core else core
    cols = np.arange(units + 1)
    if k_dp < n:  # the fractional rows of the services past the core (in density order)
        vmax = v[first[k_dp + 1:] - 1]  # undominated: a service's last point is its most valuable
        rho = np.maximum(dens[k_dp:], 1e-300)
        tail = _Tail(k_dp, np.r_[0.0, np.cumsum(vmax / rho)], np.r_[0.0, np.cumsum(vmax)], delta)
    else:
        tail = _Tail(k_dp, np.zeros(1), np.zeros(1), delta)
    last = tail.at(np.full(units + 1, k_dp), cols)
    g = mck_rows(first, q, v, last, int(k_dp), bool(full))
    if not full:
        return g[0]
    return pts, v, e, first, _Tables(g, tail), delta


@dataclass(frozen=True)
class _Tail:
    """The fractional rows of `_suffix_dp` past its core: row k >= `start` at column c bounds every set of the
    services at positions k.. within (c + 1) units of real time (pseudo-items in density order, cumulative times
    `cw` and values `cv`)."""

    start: int
    cw: np.ndarray
    cv: np.ndarray
    delta: float

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        j = rows - self.start
        return np.maximum(np.interp(self.cw[j] + (cols + 1) * self.delta, self.cw, self.cv) - self.cv[j], 0.0)


@dataclass(frozen=True)
class _Tables:
    """The suffix tables g[k, c] of `_suffix_dp`: the DP's rows of the core, the fractional rows past it (computed
    where they are read)."""

    core: np.ndarray  # rows 0..tail.start
    tail: _Tail

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.tail.cw) + self.tail.start, self.core.shape[1]

    def at(self, rows: np.ndarray, cols: np.ndarray | int) -> np.ndarray:
        """g[rows, cols] (`rows` an array, `cols` an array of the same shape or one column)."""
        k = self.tail.start
        if rows.max(initial=0) <= k:
            return self.core[rows, cols]
        out = np.empty(rows.shape)
        inside = rows <= k
        c_in, c_out = (cols[inside], cols[~inside]) if isinstance(cols, np.ndarray) else (cols, cols)
        out[inside] = self.core[rows[inside], c_in]
        out[~inside] = self.tail.at(rows[~inside], c_out)
        return out

    def dense(self) -> np.ndarray:
        n, m = self.shape
        rows, cols = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
        return self.at(rows.ravel(), cols.ravel()).reshape(n, m)


__all__ = ["CgOptions", "Pricer", "TOL"]
