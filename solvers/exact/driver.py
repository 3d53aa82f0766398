"""The flow both exact solvers share: prepare the model data, hand it to an engine, turn counts into a checked Plan.

An engine (solvers.exact.milp with CBC or HiGHS, solvers.exact.cpsat) only builds and solves; it gets `ModelData` and returns an
`EngineOutcome` (status, proven bound, and the counts of its incumbent).  Everything else is here, once:
infeasibility facts before any model is built, the choice of formulation, the tenant ladder, the checker's verdict
on the extracted plan, and the honest status of the result (solvers.exact.plans maps between counts and Plans).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Callable

from stsched.bounds import TINY_SCALE, lp_bound_scale, lp_relaxation, unservable
from stsched.layouts import duty_room
from solvers.exact.patterns import (Config, ExactOptions, GpuPattern, ModelData, OutOfTime, Stop, TooLarge, _Timer,
                                   enumerate_configs, enumerate_layouts, enumerate_patterns, fits, grow,
                                   neighbour_interference, poll, tenant_points)
from solvers.exact.pricing import priced_configs
from solvers.exact.plans import Counts, _gpus_in, gpus_of, greedy_counts, to_plan, warm_counts
from stsched.checker import Rule, check, gpu_memory_limit_mb, needs_serving, served_rates, tolerant_scale, whole_gpus
from stsched.plan import Plan
from stsched.problem import Instance, MechanismKind
from stsched.registry import Objective, SolveOptions, SolveResult, Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOutcome:
    status: str  # "optimal", "feasible" (time limit with an incumbent), "infeasible" or "none"
    bound: float | None  # proven bound of the model (lower for min-gpus, upper for max-scale)
    counts: Counts | None
    message: str = ""


# an engine: model, options, warm start, limit in seconds (its model's build counted in it: `engine_limit`)
Engine = Callable[[ModelData, SolveOptions, "Counts | None", float], EngineOutcome]


# ------------------------------------------------------------------------------------------------- preparation
def _clip_alpha(instance: Instance, objective: Objective) -> float:
    if objective is Objective.MIN_GPUS:
        return 1.0
    ub = lp_relaxation(instance, Objective.MAX_SCALE).value
    return ub * (1 + 1e-6) if math.isfinite(ub) else 1e9


def _memory_binding(instance: Instance, layouts, configs) -> bool:
    if instance.mechanism.kind is MechanismKind.MIG:
        return False
    worst: dict[float, float] = {}
    for c in configs:
        worst[c.size] = max(worst.get(c.size, 0.0), c.memory_mb)
    need = max((sum(worst.get(p, 0.0) for p in L) for L in layouts), default=0.0)
    return not fits(need, gpu_memory_limit_mb(instance))


def _larger_sets_exist(instance: Instance, timer: _Timer, t: int, stop: Stop = None) -> bool:
    """Whether some tenant set of t+1 services meets the latency rule in some partition (else a limit t is vacuous)."""
    lim = instance.mechanism.max_tenants
    if lim is not None and lim <= t:
        return False
    names = instance.service_names
    budgets = [instance.slo_budget_ms(n) for n in names]
    active = [i for i, s in enumerate(instance.services) if needs_serving(s.rate)]
    for p in instance.mechanism.sizes:
        poll(stop, "the test for larger tenant sets")
        pairs = []  # (duty room, e) at each service's fastest batch: the easiest way to join a set
        for s in active:
            es = [e for b in instance.batches if (e := timer.exec_ms(names[s], b, p, 1)) is not None]
            if es:
                pairs.append((duty_room(min(es), budgets[s]), min(es)))
        pairs.sort(key=lambda x: -x[0])
        for i, (room_i, e_i) in enumerate(pairs):  # i: the member with the least room (the checker's rule)
            others = sorted(e for _, e in pairs[:i])  # members with at least that room, fastest first
            if len(others) >= t and e_i + sum(others[:t]) <= room_i:
                return True
    return False


def prepare(instance: Instance, options: SolveOptions, deadline: float = math.inf) -> ModelData:
    """Enumerate configurations, layouts and (when chosen) GPU patterns; choose the formulation.  The enumeration
    polls the clock (`time.perf_counter`) and raises OutOfTime once `deadline` has passed (it ran 12.7 s of a 10 s
    limit before: docs/RESULTS.md, "Limits and faults")."""
    stop = None if math.isinf(deadline) else (lambda: time.perf_counter() > deadline)
    xo = ExactOptions.from_solve_options(options)
    names = instance.service_names
    rates = served_rates(instance)  # (0: covered by no tenant)
    active = sum(r > 0 for r in rates)
    if active > xo.max_configs:  # each needs a configuration: refused before enumerating (84 s at 100,000 services)
        raise TooLarge(f"{active} services with a rate, more than the {xo.max_configs} configurations of the model")
    clip_alpha = _clip_alpha(instance, options.objective)
    clip = [clip_alpha * r for r in rates]
    notes: list[str] = []
    ni = neighbour_interference(instance)
    formulation = xo.formulation
    all_layouts = enumerate_layouts(instance, maximal=False, limit=xo.max_layouts)
    max_layouts = enumerate_layouts(instance, maximal=True, limit=xo.max_layouts)
    conservative = ni and (xo.interference == "conservative" or formulation in ("slots", "indexed"))

    def configs_for(cons: bool, prune: bool) -> tuple[list[Config], int, _Timer, bool]:
        timer = _Timer(instance, cons, all_layouts)
        levels, stopped = enumerate_configs(instance, timer, xo.max_tenants, clip, prune, False, xo.max_enumerated,
                                            stop)
        if stopped:
            notes.append(stopped)
        t, total, cut = 0, 0, False
        for level in levels:
            if total + len(level) > xo.max_configs and t >= 1:
                notes.append(f"tenant sets of {t + 1}: {total + len(level)} configurations after dominance > "
                             f"{xo.max_configs}; limit {t}")
                cut = True
                break
            total += len(level)
            t += 1
        if total > xo.max_configs:
            raise TooLarge(f"{total} one-tenant configurations > {xo.max_configs}")
        t = max(t, 1)
        return [c for level in levels[:t] for c in level], t, timer, bool(stopped) or cut

    patterns: list[GpuPattern] = []
    configs, tenants, timer, more = configs_for(conservative, prune=not (ni and not conservative))
    binding = _memory_binding(instance, max_layouts, configs)
    if formulation == "auto":
        formulation = "patterns" if (ni and not conservative) or binding else "slots"
    if formulation == "patterns":
        try:
            patterns = enumerate_patterns(instance, configs, all_layouts if (ni or binding) else max_layouts,
                                          clip, xo.max_patterns, stop)
        except TooLarge as e:
            notes.append(f"GPU patterns not enumerated ({e}): slots formulation instead")
            formulation = "slots"
            if ni and not conservative:
                conservative = True
                configs, tenants, timer, more = configs_for(True, prune=True)
    priced = ""
    cap = min(xo.max_tenants, instance.mechanism.max_tenants or xo.max_tenants)
    if formulation != "patterns" and more and tenants < cap and ExactOptions.from_solve_options(options).pricing:
        _, layer, pts = tenant_points(instance, timer, stop)
        for _ in range(2, tenants + 1):
            layer = grow(instance, layer, pts, 10 ** 9, stop)
        configs, reached, priced = priced_configs(instance, layer, pts, tenants + 1, cap, configs, max_layouts,
                                                  clip_alpha, options.objective, stop=stop)
        notes.append(priced)
        tenants = max(tenants, reached)
    mem_rule = "GPU memory never binds (largest fill of any layout fits)"
    exact = True
    if binding and formulation == "slots":
        cap = gpu_memory_limit_mb(instance) / instance.mechanism.capacity
        configs = [c for c in configs if fits(c.memory_mb, cap * c.size)]
        mem_rule, exact = "GPU memory can bind: each partition limited to its size's share of memory (sound)", False
    elif binding:
        mem_rule = ("GPU memory exact per GPU pattern" if formulation == "patterns"
                    else "GPU memory exact per GPU (indexed)")
    if conservative or priced:
        exact = False
    vacuous = not _larger_sets_exist(instance, timer, tenants, stop)
    if not vacuous:
        exact = False
    layouts = max_layouts if formulation != "patterns" else tuple(sorted({tuple(c.size for c in p.configs)
                                                                          for p in patterns}))
    inter = ("none" if instance.interference.form == "none" else
             "exact per GPU pattern (checker timing)" if ni and not conservative and formulation == "patterns" else
             "conservative: worst slowdown over every legal neighbour" if conservative else
             f"{instance.interference.form} (neighbour-independent, exact)")
    lim = instance.mechanism.max_tenants
    disc = (f"formulation {formulation}; batches {list(instance.batches)}; partition sizes "
            f"{[f'{s:g}' for s in instance.mechanism.sizes]}; procs 1..{instance.mechanism.max_procs}; "
            f"duty cycle = sum of the tenants' execution times (exact, no grid); tenant sets <= {tenants} services "
            f"({'no larger set meets the latency rule' if vacuous else 'a restriction of the problem'}"
            f"{'; the largest sets as LP-priced columns only' if priced else ''}; instance limit "
            f"{lim if lim is not None else 'none'}); interference {inter}; {mem_rule}; "
            f"{len(configs)} configurations, {len(layouts)} layouts"
            + (f", {len(patterns)} GPU patterns" if formulation == "patterns" else "")
            + ("" if exact else "; optimal only for this restricted model"))
    return ModelData(instance, names, rates, clip_alpha, formulation, tuple(instance.mechanism.sizes),
                     tuple(layouts), tuple(configs), tuple(patterns),
                     gpu_memory_limit_mb(instance) if binding else None, exact, disc,
                     notes=tuple(notes), tenants=tenants, conservative=conservative, tenant_limited=not vacuous,
                     tolerant=True)


# ------------------------------------------------------------------------------------------------- the flow
LADDER_SHARE = 0.4  # share of the remaining time a smaller tenant limit may use before the next one


# wall seconds per GPU to extract and check a plan (the checker's 63 us of CPU per GPU on a 9,617-GPU plan, times
# about 3 for extraction and a loaded machine)
FINALIZE_S_PER_GPU = 2e-4

# the fewest seconds left of an attempt's limit for the model at exact capacities after the relaxation's incumbent
# was rejected (`_attempt`): with less, that fallback is skipped and the result says so (it got max(1 s, the rest)
# before, and so could run past the time limit, once per tenant-ladder step)
FALLBACK_MIN_S = 1.0
# max-scale: an engine's alpha at most this is its zero (no service served: `_attempt`'s `nothing`).  Not TINY_SCALE:
# a model reaches an engine only when the efficiency bound is at least TINY_SCALE (`_tiny_scale`), and its alpha is
# scaled to about 1 there (solvers.exact.milp.alpha_unit), so a plan between NO_SCALE and TINY_SCALE is a plan
NO_SCALE = 1e-9
ENGINE_MIN_S = 0.1  # the least an engine is given after its model's build (to report its warm start or greedy start)


def fallback_note(rejected: str, then: str) -> str:
    """What a result says when the checker rejected the incumbent of the model with its tolerance (`rejected`: why)
    and what came `then` (the model at exact capacities, or no time left for it); the driver's and adapt-milp's."""
    return f"the incumbent of the model with the checker's tolerance was rejected by it ({rejected}); {then}"


def engine_limit(limit: float, started: float) -> float:
    """The seconds an engine's solve gets of its `limit` once its model is built (the build, since `started`
    (time.perf_counter), counts against the limit; at least ENGINE_MIN_S)."""
    return max(ENGINE_MIN_S, limit - (time.perf_counter() - started))


def solve_exact(solver: str, instance: Instance, options: SolveOptions, engine: Engine, engine_name: str) -> SolveResult:
    """Prepare, solve with `engine`, extract, check; never raise for an infeasible instance.

    Tenant ladder (`--param ladder=0` turns it off): when the model allows tenant sets of T > 1 services, the models
    with limits 1, 2, ..., T-1 are solved first (each with at most 40 % of the remaining time), every incumbent
    warm-starting the next; a plan that already meets the layout LP bound of the full problem ends the search there,
    proven optimal.  Small models find good plans fast; the big one then only has to close the gap."""
    t0 = time.perf_counter()
    bad = unservable(instance, options.objective)  # first: the layout LP of a rate no GPU count serves (1e308 req/s
    if bad:  # on 10^4 GPUs) failed numerically, a RuntimeError traceback instead of naming the service
        return SolveResult(solver, Status.INFEASIBLE, message="; ".join(f"{k}: {v}" for k, v in bad.items()),
                           infeasible_services=tuple(bad))
    if options.objective is Objective.MAX_SCALE and (eff := lp_bound_scale(instance)) < TINY_SCALE:
        return _tiny_scale(solver, instance, options, eff)
    try:  # first: a model too large is said before the LP bound below is paid for
        top = prepare(instance, options, t0 + options.time_limit_s)
    except TooLarge as e:
        return SolveResult(solver, Status.UNKNOWN, message=f"model too large to enumerate: {e}")
    except OutOfTime as e:  # what a time limit returns: no plan (no model to start one from), said
        return SolveResult(solver, Status.UNKNOWN, message=f"stopped at the time limit ({options.time_limit_s:g} s) "
                                                           f"while preparing the model ({e}); no plan")
    # time to extract and check the plan is kept back from the engines (thousands of GPUs take seconds to check)
    gpus = instance.gpus if options.objective is Objective.MAX_SCALE else min(
        instance.gpus, lp_relaxation(instance, options.objective).value if instance.gpus > 1000 else 0)
    deadline = t0 + options.time_limit_s - min(0.5 * options.time_limit_s, FINALIZE_S_PER_GPU * gpus)
    warm_plan = options.warm_start
    if warm_plan is not None and not check(instance, warm_plan).valid:
        log.warning("%s: warm start rejected by the checker, ignored", solver)
        warm_plan = None
    lp = lp_relaxation(instance, options.objective).value
    if options.objective is Objective.MIN_GPUS and whole_gpus(lp) > instance.gpus:  # proven before any model (the
        # checker's rounding, `whole_gpus`: an LP of 2.0000018 is served on 2 GPUs by a valid plan)
        return SolveResult(solver, Status.INFEASIBLE, bound=_bound(None, lp, options.objective),
                           message=f"the layout LP bound needs {lp:.4g} GPUs to serve all rates together, the "
                                   f"instance has {instance.gpus}", infeasible_services=instance.service_names)
    steps = []
    if ExactOptions.from_solve_options(options).ladder and top.formulation != "patterns":
        for t in range(1, top.tenants):
            left = deadline - time.perf_counter()
            if left < 2.0:
                break
            try:
                data = prepare(instance, replace(options, params=options.params + (("max_tenants", str(t)),)),
                               deadline)
            except OutOfTime:
                break  # (the full model is prepared: it gets the time left)
            res = _attempt(solver, instance, options, data, warm_plan, left * LADDER_SHARE, engine, engine_name, lp)
            steps.append(f"tenants <= {t}: {res.status.value} {res.objective if res.objective is None else f'{res.objective:.6g}'}")
            options.report(f"{solver}: {steps[-1]} ({time.perf_counter() - t0:.1f} s)")
            if res.plan is not None and (warm_plan is None or _better(res.plan, warm_plan, options.objective)):
                warm_plan = res.plan
            if res.plan is not None and _meets_lp(res.objective, lp, options):
                msg = "; ".join([res.message, "tenant ladder: " + ", ".join(steps) + " (stopped: meets the LP bound)"])
                return replace(res, status=Status.OPTIMAL, message=msg.strip("; "))
    left = max(1.0, deadline - time.perf_counter())
    res = _attempt(solver, instance, options, top, warm_plan, left, engine, engine_name, lp)
    res = _ladder_up(solver, instance, options, top, res, deadline, engine, engine_name, lp, steps)
    if steps:
        res = replace(res, message="; ".join(m for m in (res.message, "tenant ladder: " + ", ".join(steps)) if m))
    return res


def _tiny_scale(solver: str, instance: Instance, options: SolveOptions, eff: float) -> SolveResult:
    """Max-scale whose efficiency LP bound `eff` is below TINY_SCALE: no model is built (the engines read such an
    alpha as 0 and called a servable instance infeasible: one rate of 1e30 req/s); that bound stands, and the warm
    start, when the checker accepts it, is the plan."""
    why = (f"the efficiency LP bound on alpha {eff:.3g} is below {TINY_SCALE:g} (stsched.bounds.TINY_SCALE), under "
           f"the engines' tolerances: no model is solved")
    warm = options.warm_start
    if warm is not None and check(instance, warm).valid:
        plan = replace(warm, solver=solver, notes="warm start (no model solved: alpha below TINY_SCALE)")
        return SolveResult(solver, Status.FEASIBLE, plan.scale, eff, plan=plan, message=why,
                           bound_method="lp-efficiency")
    return SolveResult(solver, Status.UNKNOWN, bound=eff, message=why, bound_method="lp-efficiency")


def _ladder_up(solver: str, instance: Instance, options: SolveOptions, data: ModelData, res: SolveResult,
               deadline: float, engine: Engine, engine_name: str, lp: float, steps: list[str]) -> SolveResult:
    """Above the default tenant limit: while the model is not proven for the problem only because larger tenant
    sets are left out (no `max_tenants` asked for), the limit is raised one set size at a time within the
    enumeration limits and the remaining time, each model warm-started with the best plan so far."""
    if "max_tenants" in dict(options.params) or not ExactOptions.from_solve_options(options).ladder:
        return res
    while (res.status is Status.FEASIBLE and data.tenant_limited and not data.conservative
           and deadline - time.perf_counter() >= 2.0):
        steps.append(f"tenants <= {data.tenants}: {res.status.value} {res.objective:.6g}")
        options.report(f"{solver}: {steps[-1]}")
        try:
            up = prepare(instance, replace(options, params=options.params + (("max_tenants", str(data.tenants + 1)),)),
                         deadline)
        except (TooLarge, OutOfTime):
            break
        if up.tenants <= data.tenants:  # the enumeration limits stop the sets there
            break
        left = deadline - time.perf_counter()  # (after its preparation: `_attempt` gives the engine at least 1 s,
        if left < FALLBACK_MIN_S:  # so a rung prepared up to the deadline ran past it by that; now not started)
            steps.append(f"tenants <= {up.tenants}: not solved, {max(left, 0.0):.2g} s left after its preparation")
            break
        nxt = _attempt(solver, instance, options, up, res.plan, left, engine, engine_name, lp)
        if nxt.plan is None:
            break
        data, res = up, nxt
    return res


def _meets_lp(obj: float | None, lp: float, options: SolveOptions) -> bool:
    return obj is not None and math.isfinite(lp) and _proven(obj, _bound(None, lp, options.objective), options)


def _attempt(solver: str, instance: Instance, options: SolveOptions, data: ModelData, warm_plan: Plan | None,
             limit: float, engine: Engine, engine_name: str, lp: float) -> SolveResult:
    """One model, one engine run: the warm start (or a greedy start), extraction, the checker, the status."""
    warm = None if warm_plan is None else warm_counts(data, warm_plan)
    if warm_plan is not None and warm is None:
        log.info("%s: warm start has partitions outside the model; kept only as a fallback", solver)
    if warm is None and ExactOptions.from_solve_options(options).greedy_start:
        start = greedy_counts(data, options.objective)
        empty = not (start.patterns or start.per_gpu)
        warm = None if empty or _gpus_in(data, start) > instance.gpus else start
    started = time.perf_counter()
    out = engine(data, options, warm, max(1.0, limit))
    msg = [out.message] if out.message else []
    msg += list(data.notes)
    plan, rejected, rules = _extract(solver, data, out, options)
    if rejected and data.relaxed(options.objective):
        # the relaxation's incumbent leans on the checker's tolerance beyond what a plan may (only within it of an
        # edge): the plan from the model at exact capacities, the relaxation's bound kept (it bounds the problem)
        left = limit - (time.perf_counter() - started)  # (the engines count their model's build in it too)
        if left < FALLBACK_MIN_S:
            msg.append(fallback_note(rejected, f"no time left ({max(left, 0.0):.2g} s) for the model at exact "
                                               f"capacities"))
            out, rejected = replace(out, status="feasible" if out.status == "optimal" else out.status), ""
        else:
            # (WARNING: a relaxed incumbent leaning on the tolerance is expected but rare; ERROR when a rule the
            # tolerance's relaxation does not touch is broken: a fault of the model, not of the tolerance)
            log.log(logging.WARNING if rules <= TOLERANT_RULES else logging.ERROR,
                    "%s: %s; the model at exact capacities for a plan", solver, rejected)
            exact = engine(replace(data, tolerant=False), options, warm, left)
            msg.append(fallback_note(rejected, f"the plan from the model at exact capacities ({exact.status})"))
            out = replace(out, status="feasible" if exact.counts is not None else "none", counts=exact.counts)
            plan, rejected, _ = _extract(solver, data, out, options)
    if rejected:
        msg.append(f"extracted plan rejected by the checker: {rejected}")
        log.error("%s: %s", solver, msg[-1])
    if warm_plan is not None and (plan is None or _better(warm_plan, plan, options.objective)):
        plan = replace(warm_plan, solver=solver, notes="warm start (no better incumbent found)")
    nothing = options.objective is Objective.MAX_SCALE and plan is not None and plan.scale <= NO_SCALE
    if out.status == "infeasible" or (nothing and out.status == "optimal"):
        status = Status.INFEASIBLE if data.exact else Status.UNKNOWN
        why = ((f"no plan on {instance.gpus} GPUs serves all rates together" if options.objective is Objective.MIN_GPUS
                else f"no plan on {instance.gpus} GPUs serves every service at any positive scale") if data.exact
               else "the restricted model has no plan (the problem itself may have one)")
        return SolveResult(solver, status, message="; ".join([why] + msg), discretisation=data.discretisation,
                           infeasible_services=instance.service_names if data.exact else ())
    engine_bound = out.bound
    if engine_bound is not None and plan is not None and out.counts is not None and not nothing:
        model_obj = _gpus_in(data, out.counts) if options.objective is Objective.MIN_GPUS else out.counts.alpha
        wrong = (engine_bound > model_obj + 1e-6 if options.objective is Objective.MIN_GPUS
                 else model_obj is not None and engine_bound < model_obj * (1 - 1e-6))
        if wrong:
            log.warning("%s: engine bound %s contradicts its own incumbent %s: bound dropped", solver, engine_bound,
                        model_obj)
            msg.append(f"engine bound {engine_bound:.6g} contradicted its incumbent and was dropped")
            engine_bound = None
    restricted_bound = None
    if not data.exact and engine_bound is not None:  # bounds the restricted model only, not the problem
        restricted_bound, engine_bound = engine_bound, None
    bound = _bound(engine_bound, lp, options.objective)
    if plan is None or nothing:
        return SolveResult(solver, Status.UNKNOWN, bound=bound, discretisation=data.discretisation,
                           message="; ".join(["no incumbent within the time limit"] + msg))
    obj = float(plan.gpus_used) if options.objective is Objective.MIN_GPUS else plan.scale
    optimal = _proven(obj, bound, options)
    if data.exact and out.status == "optimal" and bound is not None and not optimal:
        msg.append(f"engine reports optimal; bound gap above {options.max_scale_tol:g} is its tolerance")
    if not data.exact:  # `optimal` and `bound` speak of the problem itself; the restricted model's in the message
        if restricted_bound is None:
            inner = "no bound of the restricted model"
        elif _better_than_bound(obj, restricted_bound, options):  # a warm start from another model, e.g. a smaller
            # tenant limit, whose conservative timing saw fewer neighbours (such models are not nested)
            inner = f"above the restricted model's bound {restricted_bound:.6g} (a warm start from another model)"
        else:
            solved = _proven(obj, _bound(restricted_bound, lp, options.objective), options)
            inner = f"{'optimal' if solved else 'feasible'} for the restricted model (its bound {restricted_bound:.6g})"
        msg.append(f"{inner}; optimal for the full problem too: the objective meets its layout LP bound" if optimal
                   else f"{inner}; layout LP bound of the full problem: {lp:.6g}")
    method = "layout-lp" if engine_bound is None else f"{engine_name} dual bound and layout-lp (the better)"
    return SolveResult(solver, Status.OPTIMAL if optimal else Status.FEASIBLE, obj, bound, plan=plan,
                       discretisation=data.discretisation + f"; engine {engine_name}", message="; ".join(msg),
                       bound_method=method)


# the rules the models' relaxation by the checker's tolerance touches (`ModelData.tolerant`: coverage, the
# throughput each tenant is credited with, memory): a relaxed incumbent may break these only
TOLERANT_RULES = frozenset({Rule.COVERAGE, Rule.THROUGHPUT, Rule.MEMORY})


def _extract(solver: str, data: ModelData, out: EngineOutcome, options: SolveOptions
             ) -> tuple[Plan | None, str, frozenset]:
    """The plan of an engine's incumbent if the checker accepts it, what the checker rejected it for ("" when
    accepted or no incumbent) and the rules it broke."""
    if out.counts is None:
        return None, "", frozenset()
    plan = to_plan(data, gpus_of(data, out.counts), options.objective, solver)
    report = check(data.instance, plan)
    if report.valid:
        return plan, "", frozenset()
    return None, "; ".join(str(v) for v in report.violations[:3]), frozenset(v.rule for v in report.violations)


def _better_than_bound(obj: float, bound: float, options: SolveOptions) -> bool:
    if options.objective is Objective.MIN_GPUS:
        return obj < whole_gpus(bound) - 1e-9  # (the one rounding, stsched.checker.whole_gpus)
    return obj > bound * (1 + options.max_scale_tol)


def _proven(obj: float, bound: float | None, options: SolveOptions) -> bool:
    """Whether `bound` proves `obj` optimal (min-gpus: equal; max-scale: relative gap within max_scale_tol)."""
    if bound is None:
        return False
    if options.objective is Objective.MIN_GPUS:
        return obj <= bound + 1e-9
    return bound - obj <= options.max_scale_tol * max(obj, 1e-12)


def _bound(engine_bound: float | None, lp: float, objective: Objective) -> float | None:
    if objective is Objective.MIN_GPUS:
        vals = [v for v in (engine_bound, lp) if v is not None and math.isfinite(v)]
        return float(max(whole_gpus(v) for v in vals)) if vals else None  # (the checker's rounding)
    vals = [v for v in (engine_bound, lp) if v is not None and math.isfinite(v)]
    return tolerant_scale(min(vals)) if vals else None  # (the checker's tolerance, as whole_gpus for GPUs)


def _better(a: Plan, b: Plan, objective: Objective) -> bool:
    if objective is Objective.MIN_GPUS:
        return a.gpus_used < b.gpus_used
    return a.scale > b.scale * (1 + 1e-9)
