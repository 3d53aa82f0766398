"""Solver `cg`: the configuration LP by column generation (solvers.exact.colgen) as a certified bound, and integer
plans from its columns (price-and-branch: the slots MILP of solvers.exact.milp over the generated columns, HiGHS
(default: its MIP start is the warm plan; on the 256-service MPS instance it found 89 GPUs where CBC kept the warm
start's 92, docs/RESULTS.md "Cluster scale") or CBC (`--engine cbc`) as its engine, warm-started with
`options.warm_start` or a greedy start).

Min-gpus plans are then improved by a neighbourhood search (solvers.exact.cg_lns: GPUs freed, their sub-instance
re-solved by column generation and the integer master, merged back; `lns_free`, `lns_moves`, `master_share`), and
optionally started from a diving with re-pricing (solvers.exact.cg_dive, `reprice`).

`bound(instance, options)` is the bound provider behind `stsched bound` and `stsched solve --bound cg`.  The plan's
certified gap is measured against that bound (min-gpus: rounded up to whole GPUs), never against the MILP's own
bound, which speaks only of the generated columns.

Solver options (`--param key=value`): `cg_share` (share of the time limit for the column generation, default 0.5),
`max_rounds` (master solves, a work limit), `per_size`, `seeds`, `pool`, `grid` (see `CgOptions`), `warm` (the
registered solver whose plan starts the integer master when no `warm_start` is given, default `heuristic`, `none`
for none; asked through the registry with `warm_share` of the time limit, default 0.2): its partitions join the
columns, so the integer master can only improve on that plan.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

from solvers.exact.cg_branch import branch_and_price
from solvers.exact.cg_cuts import CutOptions
from solvers.exact.cg_ryan import RULES, ryan_foster
from solvers.exact.colgen import CgBound, CgOptions, Infeasible, _clock, column_generation
from solvers.exact.cg_dive import RepriceOptions, reprice_dive
from solvers.exact.cg_lns import LnsOptions, improve, pool_columns
from solvers.exact.diving import dive
from solvers.exact.milp import _engine
from solvers.exact.patterns import ModelData, _Timer, enumerate_layouts, fits, neighbour_interference
from solvers.exact.plans import _gpus_in, gpus_of, greedy_counts, to_plan, warm_counts
from stsched.checker import check, gpu_memory_limit_mb
from stsched.errors import InputError
from stsched.problem import Instance, MechanismKind
from stsched.registry import BoundResult, Objective, SolveOptions, SolveResult, Status, register

log = logging.getLogger(__name__)

BP_RULES = ("slots",) + tuple(RULES)  # --param bp_rule: slot/layout counts, or the configurations (cg_ryan)


@dataclass(frozen=True)
class CgSolverOptions:
    """Options of the cg solver (`--param key=value`; the column generation's own defaults in `CgOptions`).

    cg_share: share of the time limit for the column generation (0 < share <= 1).
    max_rounds: master solves at most (a work limit: rows that stop on it do not depend on the machine).
    per_size: columns added per size and round (0: max(30, services / 2)).
    seeds: seeds of the greedy tenant-set search (0: max(12, services / 4)).
    pool: pool of the greedy tenant-set search.
    grid: ratio of the duty grid of the upper bound (> 1).
    bound_every: rounds between Lagrangian bounds.
    smoothing: Wentges dual smoothing weight in [0, 1) (0: the master's duals are priced as they are).
    clock: what the time limit counts: wall (default) or cpu (the CPU time of this process and its pricing workers).
    anchor: for which objectives the smoothing's first centre is the layout LP's duals: all, max-scale (default) or
    none (the first Lagrangian round's duals, as before issue 17 part 1's session 13).
    workers: processes that price the partition sizes of a round side by side: 1 this process alone, 0 (default)
    automatic (two where two CPUs are free, from 512 services up; solvers.exact.cg_parallel).
    ratio_test: 1 (default) to close the exact pricing's duty intervals by the parametric test
    (solvers.exact.cg_ratio), 0 for the interval test before session 16 alone (the same LP at convergence).
    round_aware: (min-gpus) 1 (default) to go on generating where the bound is within the convergence gap of the
    master but rounds up below it (solvers.exact.cg_round; it changes only such runs), 0 to stop there as before
    session 19.
    warm: the registered solver whose plan starts the integer master when no warm start is given (none: none).
    warm_share: share of the time limit for that solver.
    dive: 1 to round the LP over the columns into a plan by diving (min-gpus) before the integer master (its plan,
    if better than the warm start, starts the master), 0 (default) to skip it: measured worse than the heuristic.
    bp_nodes: node LPs of a branch-and-price after the column generation, 0 or 1 (default): none.
    (The bound of its open leaves, never weaker than the LP's.)
    bp_rule: what it branches on: slots (slot/layout counts), or configurations: pairs, usage or service.
    slots (default): solvers.exact.cg_branch; the others solvers.exact.cg_ryan (exact MILP pricing under the
    branching rows): pairs (Ryan-Foster: the partitions holding two services together first, then a service's
    partitions of one size, then all its partitions), usage (a service's partitions of one size first), service
    (all of a service's partitions first).
    bp_strong: (configurations) strong branching: both children of this many candidates (the most fractional counts)
    are solved at every split and the one whose children's bounds improve most is chosen; 0 or 1 (default): the most
    fractional count (solvers.exact.cg_ryan).
    master_share: (min-gpus with the neighbourhood search) share of the time left after the column generation for
    the integer master over the columns; the neighbourhood search gets the rest.
    lns_free: (min-gpus) GPUs freed per move of the neighbourhood search around the integer master's plan
    (solvers.exact.cg_lns; 20 is what was measured), 0 (default): no search, the integer master gets all the time
    (at 256 services the search improved one plan of six by one GPU, docs/RESULTS.md "Cluster scale").
    lns_moves: moves of that search at most (a work limit; 0, default: until the time limit).
    lns_singles: 1 (default) to give each sub-problem's integer master every service's best one-tenant
    configuration of every size besides the generated columns, 0 for the columns alone.
    lns_pool: 1 to give each sub-problem's integer master also the whole instance's columns that hold its services
    (solvers.exact.cg_lns.pool_columns: the columns priced under the rounding cuts among them; under
    neighbour-dependent interference the conservative columns only, not the warm plan's partitions), 0 (default): its
    own column generation's, the freed partitions and the singles only (docs/RESULTS.md, issue 17 session 18).
    reprice: 1 to run the diving with re-pricing (solvers.exact.cg_dive) before the integer master (its plan, if
    better than the warm start, starts the master), 0 (default): measured worse than the heuristic at 256 services.
    reprice_share: share of the time left for it.
    cuts: (min-gpus) rounds of per-service rounding cuts on the coverage rows after the column generation converges
    (solvers.exact.cg_cuts: sum of ceil(t a_{c,s}) x_c >= ceil(t), valid for whole plans; the generation goes on
    with them in the master and their duals in the pricing), 0 (default): none.
    cut_violation: least violation of a new cut, relative to its right-hand side, in (0, 1).
    cut_per_round: new cuts per round at most (0: one per service).
    cut_early: 1 to separate the next round as soon as the rounded bound meets the rounded master value (before the
    LP converges; the last round still converges), 0 (default): at convergence only.
    master_nodes: a work limit on every integer master's branch and bound (the neighbourhood search's too): milp's
    `max_nodes` (HiGHS's mip_max_nodes, CBC's maxNodes), so that a master stopped by it is the same at any machine
    load; 0 (default): none, the time limit alone.
    """

    cg_share: float = 0.5
    max_rounds: int = CgOptions.max_rounds
    per_size: int = CgOptions.per_size
    seeds: int = CgOptions.seeds
    pool: int = CgOptions.pool
    grid: float = CgOptions.grid
    bound_every: int = CgOptions.bound_every
    smoothing: float = CgOptions.smoothing
    clock: str = CgOptions.clock
    anchor: str = CgOptions.anchor
    workers: int = CgOptions.workers
    ratio_test: int = 1
    round_aware: int = 1
    warm: str = "heuristic"
    warm_share: float = 0.2
    dive: int = 0
    bp_nodes: int = 0
    bp_rule: str = "slots"
    bp_strong: int = 0
    master_share: float = 0.5
    lns_free: int = 0
    lns_moves: int = 0
    lns_singles: int = 1
    lns_pool: int = 0
    reprice: int = 0
    reprice_share: float = 0.3
    cuts: int = 0
    cut_violation: float = CutOptions.min_violation
    cut_per_round: int = 0
    cut_early: int = 0
    master_nodes: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.cg_share <= 1 or not 0 < self.warm_share <= 1:
            raise InputError(f"cg_share and warm_share must lie in (0, 1], got {self.cg_share}, {self.warm_share}")
        if not 0 < self.master_share <= 1 or not 0 < self.reprice_share <= 1:
            raise InputError(f"master_share and reprice_share must lie in (0, 1], got {self.master_share}, "
                             f"{self.reprice_share}")
        if self.bp_rule not in BP_RULES:
            raise InputError(f"bp_rule: expected one of {', '.join(BP_RULES)}, got {self.bp_rule!r}")
        for name in ("ratio_test", "round_aware", "lns_pool"):
            if getattr(self, name) not in (0, 1):
                raise InputError(f"{name}: expected 0 or 1, got {getattr(self, name)}")
        # the column generation's and the cuts' options are checked where they are defined, once (CgOptions,
        # CutOptions: max_rounds, per_size, seeds, pool, grid, bound_every, smoothing, clock, anchor, workers; cuts,
        # cut_per_round, cut_violation), here before any work
        self.column_generation_options(1.0)
        self.cut_options()
        if not self.cuts:  # the cuts' settings without cuts would be ignored
            given = [name for name, default in (("cut_violation", CutOptions.min_violation), ("cut_per_round", 0),
                                                ("cut_early", 0)) if getattr(self, name) != default]
            if given:
                raise InputError(f"{', '.join(given)}: option{'s' * (len(given) > 1)} of the rounding cuts; without "
                                 f"cuts=K {'they' if len(given) > 1 else 'it'} would be ignored")
        if self.lns_pool and not self.lns_free:  # (the pool feeds the neighbourhood search alone)
            raise InputError("lns_pool: an option of the neighbourhood search; without lns_free=K it would be ignored")
        for name in ("bp_nodes", "bp_strong", "lns_free", "lns_moves", "master_nodes"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.warm != "none":
            from stsched.registry import get_solver

            try:  # an unknown name is refused here, not after the column generation
                get_solver(self.warm)
            except InputError as e:
                raise InputError(f"warm={self.warm!r}: {e}") from None

    def column_generation_options(self, time_limit_s: float) -> CgOptions:
        """The column generation's options within `time_limit_s` (on `clock`)."""
        return CgOptions(time_limit_s=time_limit_s, max_rounds=self.max_rounds, per_size=self.per_size,
                         seeds=self.seeds, pool=self.pool, grid=self.grid, bound_every=self.bound_every,
                         smoothing=self.smoothing, clock=self.clock, anchor=self.anchor, workers=self.workers,
                         ratio_test=self.ratio_test == 1, round_aware=self.round_aware == 1)

    def cut_options(self) -> CutOptions:
        """The rounding cuts asked for (`cuts`; min-gpus only: column_generation refuses them otherwise, before any
        work; solvers.exact.cg_cuts)."""
        return CutOptions(self.cuts, self.cut_per_round, self.cut_violation, early=self.cut_early != 0)

    def check_objective(self, objective: Objective) -> None:
        """InputError when a min-gpus option (dive, reprice, lns_free, cuts) is set for another objective, which would
        ignore it (--objective max-scale --param lns_free=20 ran without a word)."""
        if objective is not Objective.MIN_GPUS:
            given = [name for name in ("dive", "reprice", "lns_free", "cuts") if getattr(self, name) != 0]
            if given:
                raise InputError(f"{', '.join(given)}: option{'s' * (len(given) > 1)} of objective min-gpus; "
                                 f"{objective.value} would ignore {'them' if len(given) > 1 else 'it'}")

    def check_warm(self, instance: Instance, objective: Objective) -> None:
        """InputError unless the `warm` solver plans for `instance` and `objective` (checked before any work)."""
        if self.warm != "none":
            from stsched.registry import REGISTRY

            reason = REGISTRY[self.warm].supports(instance, objective)
            if reason:
                raise InputError(f"warm={self.warm!r}: {reason}")


def typed_options(options: SolveOptions) -> CgSolverOptions:
    """The cg solver's `--param` options, parsed and checked as the registry parses them (every key is read from
    these, never from the raw text: " 0", "00" and 0 are all off)."""
    return options.typed(CgSolverOptions, "cg")


def cg_options(options: SolveOptions, time_limit: float) -> CgOptions:
    """The column generation's options of `options`' `--param`s within `time_limit`."""
    return typed_options(options).column_generation_options(time_limit)


def cut_options(options: SolveOptions) -> CutOptions:
    """The rounding cuts of `options`' `--param`s (`CgSolverOptions.cut_options`)."""
    return typed_options(options).cut_options()


def method_of(r: CgBound) -> str:
    if r.source:  # the time limit passed in the set-up: the bound it had then
        return f"cg: not converged: {r.source}" + (", rounded up to whole GPUs" if r.objective is Objective.MIN_GPUS
                                                    else "")
    what = "configuration LP" + (f" with {r.cuts} rounding cuts (valid for whole plans)" if r.cuts else "")
    how = (f"{what} by column generation, converged (Lagrangian bound within eps of the LP value)"
           if r.converged else
           f"{what} by column generation, not converged but settled: the Lagrangian bound rounded up equals the "
           f"restricted master's value rounded up (what a converged LP gives)" if r.settled else
           f"{what} by column generation, not converged: Lagrangian bound from the best duals")
    chase = f"; round-aware convergence {r.rounding}" if r.rounding else ""  # (solvers.exact.cg_round)
    return f"cg: {how}{chase}" + (", rounded up to whole GPUs" if r.objective is Objective.MIN_GPUS else "")


def _too_few_gpus(instance: Instance, r: CgBound) -> bool:
    return r.objective is Objective.MIN_GPUS and r.integer_bound > instance.gpus


@register("cg", "exact", "column generation: certified configuration-LP bound, integer plans from its columns",
          options=CgSolverOptions, engines=("highs", "cbc"))
class CgSolver:
    """Configuration LP by column generation (pricing oracle, Lagrangian bound when stopped early) and
    price-and-branch integer plans; its gap is certified against the column generation's bound."""

    #: the `--param` keys `bound` reads (`stsched bound` refuses the others: they drive the plans only)
    bound_params = ("max_rounds", "per_size", "seeds", "pool", "grid", "bound_every", "workers", "smoothing", "clock",
                    "anchor", "ratio_test", "round_aware", "bp_nodes", "bp_rule", "bp_strong", "cuts", "cut_per_round",
                    "cut_violation", "cut_early")

    def bound(self, instance: Instance, options: SolveOptions) -> BoundResult:
        t0 = time.perf_counter()
        typed = typed_options(options)
        clock = _clock(typed.clock)
        c0 = clock()
        try:
            # (the whole-GPU bound reported stops rising once settled; branch-and-price needs the LP converged)
            settle = options.objective is Objective.MIN_GPUS and typed.bp_nodes <= 1
            r = column_generation(instance, options.objective,
                                  replace(typed.column_generation_options(options.time_limit_s), integer_stop=settle),
                                  cuts=typed.cut_options())
        except Infeasible as e:
            return BoundResult(options.objective, None, None, False, 0, 0, time.perf_counter() - t0, "cg",
                               message=f"cannot be served: {e}", infeasible_services=tuple(e.services),
                               feasibility_checked=not e.unchecked)
        msg = f"{r.rounds} master solves, fractional bound {r.bound:.6g}" + (f"; {r.unchecked}" if r.unchecked else "")
        r, note = _branched(instance, options.objective, typed, r, options.time_limit_s - (clock() - c0))
        bad: tuple[str, ...] = ()
        if _too_few_gpus(instance, r):
            msg += f"; all rates together need at least {r.integer_bound:g} GPUs, the instance has {instance.gpus}"
            bad = instance.service_names
        lp = r.lp_value if math.isfinite(r.lp_value) else None  # none: out of time before the first master solve
        return BoundResult(options.objective, r.integer_bound, lp, r.converged, r.columns, r.pricing_calls,
                           time.perf_counter() - t0, method_of(r) + note, message=msg + note,
                           infeasible_services=bad, settled=r.settled, feasibility_checked=not r.unchecked,
                           lp_gpus=r.lp_gpus)  # (run_bound's loosening)

    def solve(self, instance: Instance, options: SolveOptions) -> SolveResult:
        if options.objective not in (Objective.MIN_GPUS, Objective.MAX_SCALE):
            raise InputError(f"solver cg: objective {options.objective.value!r} (expected min-gpus or max-scale)")
        typed = options.typed(CgSolverOptions, self.name)
        try:
            typed.check_objective(options.objective)
            if options.warm_start is None:
                typed.check_warm(instance, options.objective)
        except InputError as e:
            raise InputError(f"solver {self.name!r}: {e}") from None
        t0 = time.perf_counter()
        deadline = t0 + options.time_limit_s
        clock = _clock(typed.clock)
        c_start = clock()
        c_deadline = c_start + options.time_limit_s  # the same limit on the chosen clock (the diving's)
        share = typed.cg_share
        try:
            r = column_generation(instance, options.objective,
                                  typed.column_generation_options(options.time_limit_s * share),
                                  cuts=typed.cut_options())
        except Infeasible as e:
            return SolveResult(self.name, Status.INFEASIBLE, message=f"cannot be served: {e}",
                               infeasible_services=tuple(e.services), bound_method="cg")
        r, bp_note = _branched(instance, options.objective, typed, r,
                               options.time_limit_s * share - (clock() - c_start))
        bound, method = r.integer_bound, method_of(r) + bp_note
        warm_plan, warm_note = _warm_plan(instance, options, typed)
        if _too_few_gpus(instance, r):
            return SolveResult(self.name, Status.INFEASIBLE, bound=bound, bound_method=method,
                               message=f"the column generation bound needs {bound:g} GPUs to serve all rates "
                                       f"together, the instance has {instance.gpus}",
                               infeasible_services=instance.service_names)
        notes = [f"bound: {r.rounds} master solves, {r.columns} columns, restricted master {r.lp_value:.6g}"
                 + (f" ({r.unchecked})" if r.unchecked else "")]
        columns = r
        conservative = neighbour_interference(instance)
        if conservative:  # columns that hold next to any neighbour, for the plans only
            left = max(1.0, (deadline - time.perf_counter()) * share)
            try:
                columns = column_generation(instance, options.objective, typed.column_generation_options(left),
                                            timer=conservative_timer(instance))
                notes.append(f"plans from {columns.columns} columns timed with the worst neighbour (conservative)")
            except Infeasible as e:  # a service with no point that holds next to every neighbour (and fits)
                what = f"no columns timed with the worst neighbour (conservative) for {e}"
                if warm_plan is None:  # (the solo columns' plans could break an SLO next to a neighbour)
                    return SolveResult(self.name, Status.UNKNOWN, bound=bound, bound_method=method,
                                       message="; ".join([f"no plan: {what}"] + notes))
                notes.append(f"{what}: plans from the warm plan's partitions only")
                columns = replace(r, configs=())
        if warm_plan is not None:
            notes.append(warm_note)
        data = _model(instance, columns if warm_plan is None else
                      replace(columns, configs=columns.configs + _plan_configs(instance, warm_plan)))
        if options.objective is Objective.MIN_GPUS and typed.dive != 0:
            dived, note = _dived_plan(self.name, data, clock, c_deadline)
            notes.append(note)
            if dived is not None and (warm_plan is None or _better(dived, warm_plan, options.objective)):
                warm_plan = dived
        lns = options.objective is Objective.MIN_GPUS and typed.lns_free > 0
        if options.objective is Objective.MIN_GPUS and typed.reprice != 0:
            dived, note = _repriced_plan(self.name, data, options, clock,
                                         clock() + typed.reprice_share * (c_deadline - clock()))
            notes.append(note)
            if dived is not None and (warm_plan is None or _better(dived, warm_plan, options.objective)):
                warm_plan = dived
        # with the search, the time left on the chosen clock is split (clock=cpu: CPU seconds, given to HiGHS as its
        # wall-clock limit); without it the integer master has the wall clock's time left, as before
        left = c_deadline - clock() if lns else deadline - time.perf_counter()
        share_master = typed.master_share if lns else 1.0
        plan, note = _integer_plan(self.name, data, replace(options, warm_start=warm_plan),
                                   max(1.0, left * share_master))
        notes.append(note)
        if plan is not None and lns and plan.gpus_used > bound + 1e-9:
            # the search's pool (`lns_pool`): under neighbour-dependent interference the columns timed with the
            # worst neighbour only, not the warm plan's partitions, timed with the neighbours they had there
            pool = (columns.configs if conservative else data.configs) if typed.lns_pool else ()
            found = improve(instance, plan, c_deadline, clock, sub_solver(self.name, options, clock, instance, pool),
                            LnsOptions(free=typed.lns_free, seed=options.seed or 0, moves=typed.lns_moves),
                            stop_at=bound)
            notes.append(found.note)
            plan = found.plan if found.plan.gpus_used < plan.gpus_used else plan
        if plan is None:
            return SolveResult(self.name, Status.UNKNOWN, bound=bound, bound_method=method,
                               message="; ".join(["no integer plan from the columns"] + notes),
                               discretisation=data.discretisation)
        obj = float(plan.gpus_used) if options.objective is Objective.MIN_GPUS else plan.scale
        optimal = (obj <= bound + 1e-9 if options.objective is Objective.MIN_GPUS
                   else bound - obj <= options.max_scale_tol * max(obj, 1e-12))
        return SolveResult(self.name, Status.OPTIMAL if optimal else Status.FEASIBLE, obj, bound, plan=plan,
                           discretisation=data.discretisation, message="; ".join(notes), bound_method=method)


def _branched(instance: Instance, objective: Objective, typed: CgSolverOptions, r: CgBound,
              left: float) -> tuple[CgBound, str]:
    """With `bp_nodes` > 1: the column generation's result with the branch-and-price bound (solvers.exact.cg_branch)
    in `left` seconds more, and a note; else `r` as it is."""
    nodes = typed.bp_nodes
    if nodes <= 1 or not r.converged:
        return r, "" if nodes <= 1 else "; branch-and-price skipped: the root LP did not converge"
    rule = typed.bp_rule
    opts = typed.column_generation_options(max(left, 1e-3))
    if rule == "slots":
        b = branch_and_price(instance, objective, opts, nodes, root=r)
        what = "slot and layout counts"
    else:
        strong = typed.bp_strong
        b = ryan_foster(instance, objective, opts, nodes, rule, root=r, strong=strong)
        what = f"configurations ({rule}{f', strong branching on {strong}' if strong > 1 else ''}, exact pricing)"
    better = b.bound > r.integer_bound + 1e-9 if objective is Objective.MIN_GPUS else b.bound < r.bound - 1e-12
    note = (f"; branch-and-price on {what}: {b.nodes} node LPs, {b.open_leaves} open leaves, "
            f"bound {b.bound:.6g} ({'complete' if b.complete else 'the weakest open leaf'})")
    return (replace(r, bound=b.bound) if better else r), note


def _warm_plan(instance: Instance, options: SolveOptions, typed: CgSolverOptions):
    """The plan that starts the integer master: `options.warm_start`, else the registered `warm` solver's."""
    if options.warm_start is not None:
        return options.warm_start, "warm start given"
    name = typed.warm
    if name == "none":
        return None, ""
    from stsched.registry import run_solver

    limit = options.time_limit_s * typed.warm_share
    j = run_solver(name, instance, SolveOptions(objective=options.objective, time_limit_s=limit, seed=options.seed))
    if j.plan is None or not j.valid:
        return None, f"warm start from {name}: none ({j.status.value})"
    return j.plan, f"warm start from {name}: {j.objective:.6g} in {j.result.wall_s:.2f} s"


def _plan_configs(instance: Instance, plan) -> tuple:
    """The partitions of a plan as configurations (timed as the checker times them), so the master can reuse them."""
    from solvers.exact.patterns import Config, _memory
    from solvers.exact.plans import _gpu_caps

    index = {n: i for i, n in enumerate(instance.service_names)}
    out = []
    for g in plan.gpus:
        caps = _gpu_caps(instance, g)
        if caps is None:
            continue
        for p, cs in zip(g.partitions, caps):
            if p.tenants:
                out.append(Config(p.size, p.procs, tuple((index[t.service], t.batch) for t in p.tenants), tuple(cs),
                                  _memory(instance, p.procs, [(t.service, t.batch) for t in p.tenants])))
    return tuple(out)


def _memory_filter(instance: Instance, configs: list, layouts) -> tuple[list, str]:
    """The configurations the slots model admits: all, unless GPU memory can bind (MPS/SM: the most memory-hungry
    configuration of every slot of some layout together exceed the GPU's), then those within their size's share."""
    if instance.mechanism.kind is MechanismKind.MIG:
        return configs, ""
    worst: dict[float, float] = {}
    for c in configs:
        worst[c.size] = max(worst.get(c.size, 0.0), c.memory_mb)
    mem = gpu_memory_limit_mb(instance)
    if fits(max(sum(worst.get(p, 0.0) for p in L) for L in layouts), mem):
        return configs, ""
    share = mem / instance.mechanism.capacity
    return ([c for c in configs if fits(c.memory_mb, share * c.size)],
            "; GPU memory can bind: each partition limited to its size's share of memory")


def _model(instance: Instance, r: CgBound) -> ModelData:
    """The slots model over the generated columns (memory per partition as the exact solvers restrict it)."""
    configs, note = _memory_filter(instance, list(r.configs), r.layouts)
    tenants = max((len(c.tenants) for c in configs), default=1)
    disc = (f"price-and-branch over {len(configs)} generated columns (tenant sets up to {tenants}), "
            f"{len(r.layouts)} maximal layouts{note}")
    return ModelData(instance, instance.service_names, tuple(s.rate for s in instance.services), r.clip_alpha,
                     "slots", tuple(instance.mechanism.sizes), tuple(r.layouts), tuple(configs), (), None, False,
                     disc, tenants=tenants)


def _integer_plan(name: str, data: ModelData, options: SolveOptions, limit: float):
    """The MILP over the columns, warm-started; the plan the checker accepts (or the warm plan), with a note."""
    instance, obj = data.instance, options.objective
    warm_plan = options.warm_start if options.warm_start is not None and check(instance, options.warm_start).valid \
        else None
    warm = warm_counts(data, warm_plan) if warm_plan is not None else None
    greedy = None
    if warm is None:
        start = greedy_counts(data, obj)
        empty = not (start.layouts or start.configs)
        warm = greedy = None if empty or _gpus_in(data, start) > instance.gpus else start
    backend = options.engine or CgSolver.solver_info.engines[0]  # (the registered engines: the first the default)
    nodes = typed_options(options).master_nodes  # (milp's max_nodes reads it)
    engine_options = replace(options, time_limit_s=limit,
                             params=options.params + ((("max_nodes", str(nodes)),) if nodes else ()))
    out = _engine(backend)(data, engine_options, warm, limit)
    plan = None
    if out.counts is not None:
        plan = to_plan(data, gpus_of(data, out.counts), obj, name)
        rep = check(instance, plan)
        if not rep.valid:
            log.error("cg: extracted plan rejected by the checker: %s", rep.violations[0])
            plan = None
    engine = f"{backend}, at most {nodes} nodes" if nodes else backend
    note = f"integer master ({engine}) {out.status}"
    if plan is None and greedy is not None:  # no plan in the engine's time (a longer limit could leave it less
        start = to_plan(data, gpus_of(data, greedy), obj, name)  # than a shorter one): the start it was given,
        if check(instance, start).valid:  # unless the caller's warm plan (below) is better
            plan = replace(start, notes="greedy start (the integer master found no plan in its time)")
            note += ": its greedy start kept"
    if warm_plan is not None and (plan is None or _better(warm_plan, plan, obj)):
        return replace(warm_plan, solver=name, notes="warm start (no better plan from the columns)"), \
            f"integer master ({engine}) {out.status}: the warm start kept"
    return plan, note


def _dived_plan(name: str, data: ModelData, clock, deadline: float):
    """The diving's plan over the columns (solvers.exact.diving), if the checker accepts it, and a note."""
    counts, note = dive(data, deadline, clock)
    if counts is None:
        return None, note
    plan = to_plan(data, gpus_of(data, counts), Objective.MIN_GPUS, name)
    rep = check(data.instance, plan)
    if not rep.valid:
        log.error("cg: dived plan rejected by the checker: %s", rep.violations[0])
        return None, note + " (rejected by the checker)"
    return plan, note


def conservative_timer(instance: Instance) -> _Timer | None:
    """Under neighbour-dependent interference, the timer of columns that hold next to any neighbour (each
    tenant timed with its worst neighbour over the legal layouts); None where neighbours change nothing."""
    if not neighbour_interference(instance):
        return None
    return _Timer(instance, True, enumerate_layouts(instance, maximal=False, limit=20_000))


def _repriced_plan(name: str, data: ModelData, options: SolveOptions, clock, deadline: float):
    """The re-priced diving's plan (solvers.exact.cg_dive), if the checker accepts it, and a note."""
    def accept(configs: list) -> list:  # the slots model's memory rule, judged with the columns it has
        kept = set(_memory_filter(data.instance, configs + list(data.configs), data.layouts)[0])
        return [c for c in configs if c in kept]

    cg = replace(typed_options(options).column_generation_options(1.0), clock=_clock_name(clock))
    res = reprice_dive(data, deadline, clock, RepriceOptions(), cg, timer_of=conservative_timer, accept=accept)
    if res.counts is None:
        return None, res.note
    plan = to_plan(res.data, gpus_of(res.data, res.counts), Objective.MIN_GPUS, name)
    rep = check(data.instance, plan)
    if not rep.valid:
        log.error("cg: re-priced dive's plan rejected by the checker: %s", rep.violations[0])
        return None, res.note + " (rejected by the checker)"
    return plan, res.note


def sub_solver(name: str, options: SolveOptions, clock, whole: Instance | None = None, pool: tuple = ()):
    """The neighbourhood search's sub-problem solver (solvers.exact.cg_lns): the configuration LP of the sub-instance
    by column generation (timed conservatively under neighbour-dependent interference, like the plans' columns),
    then, unless its bound rounded up already needs the warm plan's GPUs, the integer master over its columns and the
    warm plan's partitions (and `pool`'s columns, those of the instance `whole`, that hold its services:
    `lns_pool`); a plan with fewer GPUs than the warm one, or None."""

    typed = typed_options(options)

    def solve(sub: Instance, warm, limit: float):
        c0 = clock()
        timer = conservative_timer(sub)
        try:
            r = column_generation(sub, Objective.MIN_GPUS, replace(typed.column_generation_options(limit / 2),
                                  clock=_clock_name(clock)), timer=timer, start=_plan_configs(sub, warm))
        except Infeasible:
            return None
        log.debug("lns sub-problem: %d services on %d GPUs, LP %.4f (bound %.4f, %s)", len(sub.services),
                  warm.gpus_used, r.lp_value, r.bound, "converged" if r.converged else "not converged")
        if timer is None and r.integer_bound >= warm.gpus_used:
            return None  # proven: no plan of the sub-instance needs fewer GPUs
        extra = _plan_configs(sub, warm) + (_best_singles(sub, timer) if typed.lns_singles != 0 else ())
        if pool:
            extra += pool_columns(whole, sub, pool)
        data = _model(sub, replace(r, configs=r.configs + extra))
        left = max(0.5, limit - (clock() - c0))
        plan, note = _integer_plan(name, data, replace(options, objective=Objective.MIN_GPUS, warm_start=warm), left)
        log.debug("lns sub-problem: %s, %s GPUs", note, plan.gpus_used if plan is not None else None)
        return plan if plan is not None and plan.gpus_used < warm.gpus_used else None

    return solve


def _best_singles(instance: Instance, timer) -> tuple:
    """Every service's one-tenant configurations, the one of greatest capacity (clipped at its rate) per size and
    process count: whole partitions of every size for the integer master to round with."""
    from solvers.exact.patterns import tenant_points

    if timer is None:
        timer = _Timer(instance, False, enumerate_layouts(instance, maximal=True, limit=10 ** 6))
    singles, _, _ = tenant_points(instance, timer)
    best: dict[tuple, tuple[float, object]] = {}
    for c in singles:
        s = c.tenants[0][0]
        key, v = (s, c.size, c.procs), min(c.cap[0], instance.services[s].rate)
        if key not in best or v > best[key][0]:
            best[key] = (v, c)
    return tuple(c for _, c in best.values())


def _clock_name(clock) -> str:
    return "wall" if clock is time.perf_counter else "cpu"


def _better(a, b, obj: Objective) -> bool:
    return a.gpus_used < b.gpus_used if obj is Objective.MIN_GPUS else a.scale > b.scale * (1 + 1e-9)


__all__ = ["CgSolver", "cg_options", "method_of"]
