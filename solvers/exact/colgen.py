"""The configuration LP by column generation, with a pricing oracle instead of an enumeration.

Master (restricted to the columns generated so far; symbols as in solvers.exact.milp, slots formulation):

    min sum_L y_L  |  max alpha
    s.t. sum_{c: size p} x_c <= sum_L n_L(p) y_L        (mu_p)   every partition size p
         sum_c a_{c,s} x_c >= 1  |  >= alpha            (pi_s)   every service s
         sum_L y_L <= G  (max-scale)                              x, y >= 0 continuous

a_{c,s} = min(cap_{c,s}, clip * r_s) / r_s, clip = 1 (min-gpus) or an upper bound on alpha (max-scale).  Layouts L
are the inclusion-maximal legal layouts (few); configurations c (size, procs, tenant set, batches, duty = sum of the
tenants' execution times) are far too many to enumerate at scale, so they are priced:

* **pricing oracle** (solvers.exact.cg_pricing) for size p and duals pi: the configuration of greatest value
  pi . a_c.  One-tenant configurations (every batch and process count) are priced exactly.  Tenant sets are priced
  twice: a greedy search (seeds by value, then the tenant that adds the most value while every tenant keeps
  d + e <= budget (the checker's comparison: d <= its `duty_room`), memory fits and the tenant limit holds) proposes columns, and an exact search gives a proven
  upper bound V_p on every set: the duties are split into intervals [D0, D1] (a geometric grid); in one, a tenant is
  worth at most min(w_s / D0, u_s), may join only if e_s <= budget_s - D0, and the times sum to d <= D1.  Each
  interval's bound is tightened best first (the interval of the greatest bound next): a fractional knapsack (one
  item per service, the tenant limit), then a multiple-choice knapsack DP over the times rounded down to units of
  D1 / `units` (`_suffix_dp`: one operating point per service; its suffix tables bound a branch and bound that finds
  the interval's best sets, which become columns), then bisection, until the greatest bound is below the size's dual
  (a proof that no column improves the master) or its interval is narrow (`tight`) or the work limits stop it.
  By default (`ratio_test`) each interval is first tested by Dinkelbach's parametric bound at the best value known,
  exact whatever the interval's width for tenants that are not clipped (solvers.exact.cg_ratio).
  The greedy also grows a packing (sets of distinct services over every live point), and the exact search runs
  whenever the greedy finds fewer improving columns than services / `few_per` (the master tails otherwise at 1,024
  services: docs/RESULTS.md, "Cluster scale").
* **stabilisation** (Wentges smoothing): the pricing point is a * (the duals of the best Lagrangian bound so far)
  + (1 - a) * (the master's duals); when nothing found there improves the master (a mis-price) the master's own
  duals are priced.  With `auto_smoothing` the weight a is adapted each round (solvers.exact.cg_stabilise; off by
  default).  The generation stops, converged, once the best bound is within `gap` of the master's value
  (or the exact pricing at the master's duals finds nothing worth more than (1 + eps) times its dual).
* **branches** (solvers.exact.cg_branch): rows on the GPUs per layout y restrict the master; the bound below then
  becomes the best y of a small LP over the layouts under those rows (`_lagrange_rows`), valid for the branch.
* **Lagrangian (Farley) bound** from any pi >= 0: every plan's partitions give sum_s pi_s * coverage_s <=
  sum_GPUs sum_p n_L(p) V_p <= GPUs * W with W = max_L sum_p n_L(p) V_p, so
      GPUs >= sum_s pi_s / W   (min-gpus)          alpha <= G * W / sum_s pi_s   (max-scale).
  It is valid whether or not the column generation converged; at convergence it equals the LP value.  Each V_p is a
  maximum of functions linear in pi, so the bound also holds at any nonnegative combination of the points priced
  so far with the combined V_p (`combine`: the best combination by a small LP each round, `_combined`).
* **settled** (min-gpus, `integer_stop`, on in `stsched bound`): once ceil(bound) = ceil(master value) no round can
  raise the whole-GPU bound (bound <= LP value <= master value); the generation stops and says so (not converged).
* **round-aware** (min-gpus, `round_aware`, on by default; solvers.exact.cg_round): converged within `gap` but the
  bound rounded up below the master's, the generation goes on with the pricing's tolerance narrowed to the rounding's
  until they meet, the pricing proves it, or the limits stop it (`CgBound.rounding` says which).

What is bounded: every valid plan of the full problem (all tenant counts, batches, procs, legal layouts, duty
cycles at least the sum of the execution times).  Execution times are solo times with the instance's latency margin:
interference from neighbouring partitions only slows tenants down (less capacity, tighter latency), so under a
neighbour-dependent interference form this is the bound of the interference-free relaxation, still below every
plan's GPUs (above every plan's alpha).  GPU memory is kept per partition (each configuration alone must fit its
slice or its GPU) and relaxed across the partitions of a GPU.

Modules: this one runs the generation (`column_generation`: set-up, rounds, stop rules; its result `CgBound`); the
restricted master LP and the layout LP are solvers.exact.cg_master's, the Lagrangian bound solvers.exact.cg_lagrange's,
the pricing oracle and `CgOptions` solvers.exact.cg_pricing's.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from solvers.exact.cg_box import BoxStep
from solvers.exact.cg_common import beyond_memory, layout_weights, pricing_setup
from solvers.exact.cg_cuts import CutOptions, CutPool
from solvers.exact.cg_lagrange import _combined, _lagrange
from solvers.exact.cg_master import _Master, layout_lp_duals
from solvers.exact.cg_parallel import PARALLEL_FROM, PricingPool
from solvers.exact.cg_pricing import TOL, CgOptions, Pricer
from solvers.exact.cg_round import MIN_ROOM, chase_end, room, rounding_eps, straddles
from solvers.exact.cg_stabilise import AutoSmoothing, ascent_towards_master
from solvers.exact.patterns import POLL_EVERY, Config, OutOfTime, _Timer, coverage, enumerate_layouts, poll
from stsched.bounds import TINY_SCALE, screen
from stsched.checker import tolerant_scale, whole_gpus
from stsched.errors import InputError
from stsched.forking import clock_named
from stsched.problem import Instance
from stsched.registry import Objective

log = logging.getLogger(__name__)


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
    y: tuple[float, ...] = ()  # the restricted master's GPUs per layout (the branching of cg_branch reads them)
    cuts: int = 0  # rounding cuts in the master (solvers.exact.cg_cuts; the bound then holds for whole plans only)
    settled: bool = False  # min-gpus, `integer_stop`: not converged, but the bound rounded up equals the master's
    # value rounded up, so no further round could raise `integer_bound` (what a converged LP gives, rounded up)
    rounding: str = ""  # min-gpus, `round_aware`: what ended the chase past a converged bound whose rounding straddled
    # the master's (solvers.exact.cg_round: REACHED, PROVEN, NARROW, STOPPED); "" when it never straddled
    source: str = ""  # set when the time limit passed in the set-up: which bound `bound` is (else the generation's)
    lp_gpus: float | None = None  # the efficiency LP's fractional GPUs (`stsched.bounds.screen`, from the set-up's scan)
    unchecked: str = ""  # set when the time limit passed in the feasibility scan: how far it got (not fully checked)

    @property
    def integer_bound(self) -> float:
        """The bound on valid plans: min-gpus, the bound rounded up (GPUs are whole); max-scale, the bound widened;
        both by the checker's tolerance (stsched.checker.whole_gpus, tolerant_scale)."""
        if self.objective is Objective.MIN_GPUS:
            return float(whole_gpus(self.bound))
        return tolerant_scale(self.bound)


class Infeasible(Exception):
    """No plan serves these services (`services`: name -> reason); `unchecked` (as `CgBound.unchecked`): set when the
    time limit cut the feasibility scan that found them, so other services may be unservable too."""

    def __init__(self, services: dict[str, str], unchecked: str = ""):
        super().__init__("; ".join(f"{k}: {v}" for k, v in services.items()) + (f" ({unchecked})" if unchecked else ""))
        self.services = services
        self.unchecked = unchecked


# ------------------------------------------------------------------------------------------------- the loop
_clock = clock_named  # (the rule on clock names lives in stsched.forking: `stsched bound` reads it too)


def _key(c: Config) -> tuple:
    return (c.size, c.procs, c.tenants)
def column_generation(instance: Instance, objective: Objective, opts: CgOptions = CgOptions(),
                      timer: _Timer | None = None, progress: bool = False, y_rows: tuple = (),
                      start: tuple[Config, ...] = (), cuts: CutOptions = CutOptions()) -> CgBound:
    """Solve the configuration LP by column generation within `opts` (Infeasible when some service cannot be served
    at all).  `timer` gives the execution times (default: solo, which makes `bound` valid for the full problem; a
    conservative timer gives columns that hold under any neighbour, for integer plans, whose LP then bounds only
    that restricted model).  `y_rows` restrict the GPUs per layout (a branch: (layout index -> coefficient, lower,
    upper) each; the bound is then valid for the plans of the branch), `start` columns join the first master.
    `cuts` (min-gpus, no branching rows, no box): once the master converges, rounding cuts separated from its solution
    join it and the generation goes on (solvers.exact.cg_cuts), `cuts.rounds` times at most; the bound then holds for
    every plan (whole partitions), not for the LP."""
    t0 = time.perf_counter()
    clock = _clock(opts.clock)
    deadline = clock() + opts.time_limit_s
    if cuts.rounds and (objective is not Objective.MIN_GPUS or y_rows or opts.box > 0):
        raise InputError("cuts: only for min-gpus without branching rows or box-step")
    stop = lambda: clock() >= deadline  # noqa: E731  (the set-up polls it: it ran 130 s of a 10 s limit at 100,000)
    sc = screen(instance, objective, stop)  # (unservable services, and the efficiency LP bound from the same scan)
    unchecked = "" if sc.complete else (f"the time limit passed in the set-up's feasibility scan: feasibility not "
                                        f"fully checked, {sc.scanned} of {sc.services} services scanned")
    if sc.unservable:  # (those found: each is unservable whether or not the scan was cut)
        raise Infeasible(sc.unservable, unchecked)
    maxi = objective is Objective.MAX_SCALE
    layouts = tuple(enumerate_layouts(instance, maximal=True, limit=10 ** 6))  # (milliseconds: the mechanism's)
    # the efficiency LP (stsched.bounds, capacity divisible) bounds the whole problem, not a branch (y_rows): the
    # bound that stands when the time limit comes in the set-up (max-scale: above every plan's alpha, so it clips)
    eff = sc.efficiency_bound(objective, instance.gpus)
    fallback = eff if not y_rows else (math.inf if maxi else 0.0)

    def out_of_time(bound: float, what: str, why: str, unchecked: str = "", columns: tuple[Config, ...] = (),
                    clip: float = 1.0, calls: int = 0) -> CgBound:
        """`bound` (`what` it is) stands, unconverged: the time limit passed in the set-up (`why`: where), or in its
        feasibility scan (`unchecked` its words, `why` how far it got)."""
        if unchecked:
            log.info("column generation: out of time in the feasibility scan (%s)", why)
        else:
            log.info("column generation: out of time in the set-up (%s); %s %.6g stands", why, what, bound)
        source = f"{what} ({unchecked})" if unchecked else f"{what} (the time limit passed in the set-up: {why})"
        return CgBound(objective, bound, math.nan, False, len(columns), calls, 0, time.perf_counter() - t0, clip,
                       columns, layouts, source=source, lp_gpus=sc.lp_gpus, unchecked=unchecked)

    if not sc.complete:  # the limit came within the scan (12 s of CPU at 100,000 services): its partial sum bounds
        what = (f"the efficiency LP bound of the {sc.scanned} of {sc.services} services scanned" if not y_rows
                else "no bound of the branch")
        # (with the layouts, as after a set-up cut later: solver cg's plans from its warm plan need them; without
        # them its slots model failed on an empty max())
        return out_of_time(fallback, what, f"{sc.scanned} of {sc.services} services", unchecked)
    if maxi and not y_rows and eff < TINY_SCALE:  # the LP engines read an alpha under their tolerances as 0
        log.warning("column generation: max-scale bound %.3g is below %g: the efficiency LP bound stands (the "
                    "configuration LP's alpha would be under the LP engine's tolerances)", eff, TINY_SCALE)
        return CgBound(objective, eff, math.nan, False, 0, 0, 0, time.perf_counter() - t0, eff * (1 + 1e-6), (),
                       layouts, source=f"the efficiency LP bound (stsched.bounds.lp_gpus; alpha {eff:.3g} is below "
                       f"{TINY_SCALE:g}, under the LP engine's tolerances: the configuration LP is not solved)",
                       lp_gpus=sc.lp_gpus)

    try:
        setup = pricing_setup(instance, layouts, opts, timer, stop)
        if bad := beyond_memory(instance, setup):
            raise Infeasible(bad)
        data, rates, active = setup.data, setup.rates, setup.active
        if not active:
            value = 0.0 if objective is Objective.MIN_GPUS else math.inf
            return CgBound(objective, value, value, True, 0, 0, 0, time.perf_counter() - t0, 1.0, (), layouts,
                           lp_gpus=sc.lp_gpus)
        base, pi_lp, mu_lp = layout_lp_duals(instance, objective, layouts, active, stop, deadline, clock,
                                             opts.clock == "wall")
        # valid already: the one-tenant, unclipped LP; its duals are the first stability centre (`anchor`)
    except OutOfTime as e:
        return out_of_time(fallback, "the efficiency LP bound (stsched.bounds.lp_gpus)" if not y_rows else
                           "no bound of the branch", str(e),
                           clip=(eff * (1 + 1e-6) if math.isfinite(eff) else 1e9) if maxi else 1.0)
    clip = base * (1 + 1e-6) if maxi and math.isfinite(base) else (1e9 if maxi else 1.0)
    base_what = "the layout LP bound"  # what `base` is, in the method when the time limit passes before a round
    if y_rows:  # the layout LP bounds the whole problem, not a branch of it (its alpha still clips: it is above
        base, base_what = (math.inf if maxi else 0.0), "no bound of the branch"  # every plan's)
    n = len(active)
    opts = setup.opts
    few = max(1, n // opts.few_per) if opts.few_per else 1  # fewer greedy columns than this: price exactly
    pricer = Pricer(instance, data, rates, clip, opts)
    # the pricer's own clock is this process's alone (its kernels read it; cg_parallel sets its deadline per call)
    pricer.clock = time.perf_counter if opts.clock == "wall" else time.process_time
    pricer.deadline = pricer.clock() + (deadline - clock())
    procs = opts.workers if opts.workers or n >= PARALLEL_FROM else 1  # (cuts: sent to the workers, more_cuts)
    pool = PricingPool(pricer, procs, split=opts.clock == "cpu")
    if opts.clock == "cpu":  # the CPU time of this process and its pricing workers together: their reported CPU
        # while they run; once the pool is closed (at a failure mid-run too) they are joined and `own` counts them
        own = clock
        clock = lambda: own() + (pool.worker_cpu if pool.workers > 1 else 0.0)  # noqa: E731
    try:
        master = _Master(instance.mechanism.sizes, layouts, active, objective, instance.gpus)
        for coefs, lo, hi in y_rows:
            master.add_y_row(coefs, lo, hi)
        if y_rows and not maxi:
            master.add_artificials(active, 10.0 * max(instance.gpus, len(active)))
        columns: list[Config] = []
        covs: list[dict[int, float]] = []  # each column's coverage (the cuts' separation reads it)
        keys: set[tuple] = set()
        cut_pool = CutPool(len(rates), cuts) if cuts.rounds else None
        pricer.cuts = cut_pool
        cut_rounds = 0

        def add(c: Config) -> None:
            k = _key(c)
            if k not in keys:
                keys.add(k)
                columns.append(c)
                covs.append(coverage(c, rates, clip))
                master.add_config(c, covs[-1], cut_pool.coefs(covs[-1]) if cut_pool is not None else None)

        def more_cuts() -> bool:
            """At convergence: separate cuts from the master's solution into it (the smoothing's centre gets a dual 0
            for each); whether any was added."""
            nonlocal cut_rounds, center
            if cut_pool is None or cut_rounds >= cuts.rounds or clock() >= deadline:
                return False
            cut_rounds += 1
            new = cut_pool.separate(covs, master.config_x())
            pool.send_cuts(cut_pool)  # (the workers price with them from the next round on)
            for cut in new:
                master.add_cut_row({i: cut.coef(cv[cut.service]) for i, cv in enumerate(covs)
                                    if cv.get(cut.service, 0.0) > 0})
            if center is not None:
                center = (np.r_[center[0], np.zeros(len(cut_pool) - len(center[0]) + len(rates))], center[1])
            log.info("cuts round %d: %d new rounding cuts (%d in all) at master %.6g", cut_rounds, len(new), len(cut_pool),
                     value)
            return bool(new)

        try:
            for sd in data.values():  # start: every service's best one-tenant configuration of each size
                if len(sd.singles):
                    o = np.lexsort((-sd.single_cap, sd.single_svc))  # by service, the greatest capacity first
                    for i in o[np.r_[True, sd.single_svc[o][1:] != sd.single_svc[o][:-1]]]:
                        if len(columns) % (16 * POLL_EVERY) == 0:
                            poll(stop, "the first master's columns")
                        add(sd.singles[int(i)])
            for c in start:
                add(c)
        except OutOfTime as e:
            return out_of_time(base, base_what, str(e), columns=tuple(columns), clip=clip, calls=pricer.calls)
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
        anchored = opts.anchor == "all" or (opts.anchor == "max-scale" and maxi)
        if anchored and pi_lp is not None and not y_rows and math.isfinite(base):
            # the layout LP's duals price every configuration at most at their size's dual in that LP (a shared tenant
            # runs a share of the cycle at no more than its solo rate): a centre whose Lagrangian bound is about the
            # layout LP's, where the master's first duals give one far below it (237 against 307 GPUs at 1,024 services)
            center, best_lag = (pi_lp, dict(mu_lp)), base

        def better(lag: float, than: float) -> bool:
            return lag < than * (1 - 1e-12) if maxi else lag > than * (1 + 1e-12)

        def closed(value: float) -> bool:  # the bound meets the master: the LP value lies between them
            return (bound - value if maxi else value - bound) <= opts.gap * abs(value) + 1e-9

        def settled_at(value: float) -> bool:  # min-gpus: the bound rounded up meets the master's rounded up
            return not straddles(bound, value)  # (the one rounding, stsched.checker.whole_gpus: cg_round)

        def chase(value: float) -> bool:  # round-aware: converged, but the rounded bound is below the master's
            return rounding and closed(value) and straddles(bound, value) and room(value) >= MIN_ROOM

        def improves(c: Config, pi: np.ndarray, mu: dict[float, float]) -> bool:
            return pricer.value(c, pi) > mu[c.size] * (1 + TOL) + 1e-12

        if clock() >= deadline:  # the preparation spent the time: `base` stands, unconverged
            return out_of_time(base, base_what, "before the first round", columns=tuple(columns), clip=clip,
                               calls=pricer.calls)
        prev_value, degenerate, fallbacks, short = math.nan, 0, 0, 0
        # min-gpus (no branching rows, no cuts): stop once the bound rounded up equals the master's value rounded up
        settle, settled = opts.integer_stop and not maxi and not y_rows and cut_pool is None, False
        rounding, chased, proven = opts.round_aware and not maxi and not y_rows, False, False  # (cg_round)
        combine = opts.combine and not y_rows and cut_pool is None  # (_combined)
        totals: list[float] = []
        weights: list[np.ndarray] = []
        weight = opts.smoothing  # the Wentges weight (adapted each round when `auto_smoothing`)
        auto = AutoSmoothing() if opts.auto_smoothing and opts.smoothing > 0 else None
        box = BoxStep(opts.box) if opts.box > 0 and not y_rows else None  # box-step (cg_box)
        boxed, priced = 0.0, False  # priced: a Lagrangian bound was computed (smoothing starts then)
        while rounds < opts.max_rounds:
            rounds += 1
            c_master = c_round = clock()
            if rounds == 1:  # (the first master holds every service's one-tenant columns: long at 100,000)
                master.limit(deadline, clock, opts.clock == "wall")
            lp = master.solve()
            if rounds == 1:
                c_round = clock()  # (the round rule below times the rounds after: the first master is the long one)
                if lp is None and master.timed_out():
                    return out_of_time(base, base_what, "the first master LP", columns=tuple(columns), clip=clip,
                                       calls=pricer.calls)
                master.unlimit()
            c_master = clock() - c_master
            if lp is None and y_rows and maxi:  # the branch's rows on y admit no GPUs at all: it holds no plan
                return CgBound(objective, 0.0, 0.0, True, len(columns), pricer.calls, rounds, time.perf_counter() - t0,
                               clip, tuple(columns), layouts, tuple(history), lp_gpus=sc.lp_gpus)
            if lp is None:
                raise RuntimeError("the restricted master LP did not solve to optimality")
            value, dual, mu = lp
            pi = master.service_duals(dual, len(rates))
            proven, cut_asked = False, False  # proven: the exact pricing proved no column improves the master
            if closed(value):  # (at `eps_c`); cut_asked: this round's master was separated (once a round at most)
                converged, cut_asked = True, cut_pool is not None
                if more_cuts():
                    history.append((rounds, value, None))
                    converged = False
                    continue
                if not chase(value) or clock() >= deadline:  # (a chase past the deadline prices no more)
                    history.append((rounds, value, None))
                    break
            if chase(value) and not chased:
                chased = True
                log.info("round %d: converged within the gap, but the bound %.8g rounds to %g below the master %.8g: "
                         "round-aware, the generation goes on", rounds, bound, whole_gpus(bound), value)
            eps_c = rounding_eps(value, opts.eps) if chase(value) else opts.eps  # the pricing proof's tolerance
            if cut_pool is not None and cuts.early and settled_at(value) and more_cuts():
                history.append((rounds, value, None))  # (the rounded bound of these cuts is settled: the next round)
                continue
            no_time = clock() >= deadline  # (not `out_of_time`: the set-up's return above)
            last = no_time or rounds == opts.max_rounds
            lag = None
            c_price = clock()
            # Wentges smoothing: price at a point between the best bound's duals and the master's (a = 0: the master's)
            a = weight if center is not None and priced else 0.0  # (no smoothing before the first bound)
            pi_b, mu_b = pi, mu  # the duals stabilised by the box around the centre (the master's without a box)
            if box is not None and center is not None and priced:
                box.on(master, center[0])
                st = master.solve()
                boxed = box.used(master)
                box.off(master)
                if st is not None:
                    pi_b = master.service_duals(st[1], len(rates))
                    mu_b = st[2]
            stab = center is not None and priced and (a > 0 or box is not None)  # price a stabilised point
            new: list[Config] = []
            while True:
                if stab:
                    pi_s = a * center[0] + (1 - a) * pi_b
                    mu_s = {p: a * center[1][p] + (1 - a) * mu_b[p] for p in mu}
                else:
                    pi_s, mu_s = pi, mu
                top: dict[float, tuple[float, Config]] = {}  # the best configuration found per size at pi_s
                cand = []
                greedy = pool.map("columns", [(p, pi_s, mu_s[p], False) for p in data], deadline - clock())
                for p in data:
                    got = greedy[p].result
                    if auto is not None and got:  # read only by the automatic smoothing
                        top[p] = max(got, key=lambda x: x[0])
                    # a column the master has cannot improve it (one that seems to is within the LP's tolerances)
                    cand += [c for _, c in got if _key(c) not in keys]
                good = [c for c in cand if improves(c, pi, mu)]
                if len(good) >= few and not last and rounds % opts.bound_every != 0:
                    new = cand
                    break
                # the proven upper bounds at the pricing point: a Lagrangian bound there, and more columns
                exact = len(good) < few and not last
                ub: dict[float, float] = {}
                # (below mu (1 + eps) its search stops refining: asked for eps_c, it is told a dual that much lower)
                scale = (1 + eps_c) / (1 + opts.eps)
                proofs = pool.map("upper", [(p, pi_s, mu_s[p] * scale, exact) for p in data], deadline - clock())
                for p in data:
                    got = proofs[p]
                    ub[p], more = got.result
                    cand += [c for _, c in more if _key(c) not in keys]
                    if auto is not None and more and more[0][0] > top.get(p, (-math.inf,))[0]:
                        top[p] = more[0]
                    log.debug("round %d size %g: bound / dual %.5f, best set found / dual %.5f, %d fallbacks, "
                              "%d steps, %.3f s of CPU", rounds, p, ub[p] / mu_s[p] if mu_s[p] > 0 else math.inf,
                              (more[0][0] / mu_s[p]) if more and mu_s[p] > 0 else 0.0, got.fallbacks, got.steps,
                              got.cpu_s)
                if exact and pricer.fallbacks > fallbacks and pricer.nodes < opts.max_nodes:
                    pricer.nodes *= 2  # intervals ran out of nodes (their loose knapsack bound stood): search deeper
                if exact and pricer.short_refines > short and pricer.refine < opts.max_refine:
                    pricer.refine *= 2  # the refinement stopped on a loose interval (its bound stood): refine further
                fallbacks, short = pricer.fallbacks, pricer.short_refines
                total, wl = float(pi_s.sum()), layout_weights(layouts, ub)
                lag, priced = _lagrange(total, wl, objective, instance.gpus, y_rows), True
                if combine:  # the best combination of every point priced so far (at least this point's bound)
                    totals.append(total)
                    weights.append(wl)
                    mixed = _combined(totals, weights, objective, instance.gpus)
                    if better(mixed, bound):
                        log.debug("round %d: combined bound %.6g (this point's %.6g)", rounds, mixed, lag)
                        bound = mixed
                log.debug("round %d a=%.2f exact=%s lag %.6g (bound %.6g, master %.6g) fallbacks %d nodes %d", rounds,
                          a, exact, lag, bound, value, pricer.fallbacks, pricer.nodes)
                if box is not None and stab and box.stalled(better(lag, best_lag)):
                    log.debug("round %d: the Lagrangian bound stalled; box width %.3g", rounds, box.width)
                if auto is not None and stab and a > 0 and not y_rows:  # the next round's weight (cg_stabilise)
                    up = ascent_towards_master(pi, pi_s, {p: c for p, (_, c) in top.items()}, ub, layouts, pricer.value,
                                               not maxi, value)
                    weight = auto.update(a, up)
                if better(lag, best_lag):
                    best_lag, center = lag, (pi_s, mu_s)
                if better(lag, bound):
                    bound = lag
                good = [c for c in cand if improves(c, pi, mu)]
                if not stab and all(ub[p] <= mu[p] * (1 + eps_c) + 1e-9 for p in data):
                    converged = True  # no column of any size can improve the master: its value is the LP's
                    if chase(value) and rounding_eps(value, opts.eps) < eps_c:  # (round-aware: now within the gap)
                        if not chased:
                            log.info("round %d: proven within the gap, but the bound %.8g rounds below the master "
                                     "%.8g: round-aware, priced again", rounds, bound, value)
                        chased, eps_c = True, rounding_eps(value, opts.eps)
                        continue  # the same duals again, proven at the rounding's tolerance
                    proven = True
                    break
                if good or last or clock() >= deadline:
                    new = cand
                    break
                if stab:  # mis-priced: nothing improves the master at the stabilised point; price its own duals
                    stab, a = False, 0.0
                    continue
                if not exact or pricer.nodes >= opts.max_nodes:
                    break
                pricer.nodes *= 4  # undecided and nothing found: search deeper with the same duals
                pricer.refine *= 4
            history.append((rounds, value, lag))
            if math.isfinite(prev_value) and abs(value - prev_value) <= 1e-9 * max(1.0, abs(value)):
                degenerate += 1
            prev_value = value
            log.info("round %d: master %.6g (%.3f s) lagrange %s best %.6g, pricing %.3f s, %d new columns, "
                     "%d degenerate so far, nodes %d, refine %d, weight %.2f, box %s, %.1f s spent", rounds, value,
                     c_master,
                     "-" if lag is None else f"{lag:.6g}", bound, clock() - c_price, len(new), degenerate, pricer.nodes,
                     pricer.refine, a if stab else 0.0,
                     "-" if box is None or not stab else f"{box.width:.3g} ({boxed:.3g} used)",
                     clock() - deadline + opts.time_limit_s)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(lp=f"{value:.5g}", bound=f"{bound:.5g}", columns=len(columns))
            converged = converged or closed(value)
            if not converged and settle and settled_at(value):
                settled = True  # no round can raise the bound rounded up: it is what a converged LP would give
                log.info("column generation: the integer bound %g is settled (bound %.6g, master %.6g)",
                         whole_gpus(bound), bound, value)
                break
            new = [c for c in new if _key(c) not in keys]  # a column the master has cannot improve it
            if converged and not no_time and not cut_asked and more_cuts():
                converged = False
            elif ((converged and (proven or not chase(value))) or not new or no_time
                  or clock() + (clock() - c_round) > deadline):
                break  # (no round starts unless the time left covers what this one took: at 4,096 services a round
                # started after, or just before, the deadline ran its master solve and pricing 5-12 s past a 20- or
                # 40-s limit; the bound so far is valid)
            for c in new:
                add(c)
        if bar is not None:
            bar.close()
        end = chase_end(rounding, chased, converged, proven, bound, value)
        if end:
            log.info("column generation, round-aware: %s (bound %.6g, master %.6g)", end, bound, value)
        log.info("column generation: %s after %d rounds, LP %.6g, bound %.6g, %d columns; pricing on %d "
                 "process(es): %.1f s of CPU on the busiest process per call, summed", "converged" if converged else
                 "settled" if settled else "stopped", rounds, value, bound, len(columns), pool.workers, pool.span_cpu)
        return CgBound(objective, bound, value, converged, len(columns), pricer.calls, rounds,
                       time.perf_counter() - t0, clip, tuple(columns), layouts, tuple(history),
                       master.y(len(layouts)) if math.isfinite(value) else (),
                       len(cut_pool) if cut_pool is not None else 0, settled, rounding=end, lp_gpus=sc.lp_gpus)
    finally:
        pool.close()


__all__ = ["CgBound", "CgOptions", "Infeasible", "Pricer", "column_generation"]
