"""The flow both exact solvers share: prepare the model data, hand it to an engine, turn counts into a checked Plan.

An engine (solvers.milp with CBC or HiGHS, solvers.cpsat) only builds and solves; it gets `ModelData` and returns an
`EngineOutcome` (status, proven bound, and the counts of its incumbent).  Everything else is here, once:
infeasibility facts before any model is built, the choice of formulation, the warm start, the extraction of a
Plan with its rate split, the checker's verdict on that plan, and the honest status of the result.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from solvers.bounds import lp_relaxation, unservable
from solvers.patterns import (Config, ExactOptions, GpuPattern, ModelData, TooLarge, _Timer, enumerate_configs,
                              enumerate_layouts, enumerate_patterns, fits, mig_starts, neighbour_interference,
                              single_capacity)
from stsched.check import check
from stsched.plan import GpuLayout, Partition, Plan
from stsched.problem import Instance, MechanismKind
from stsched.solve import Objective, SolveOptions, SolveResult, Status
from stsched.timing import gpu_timings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Counts:
    """An incumbent in model terms (which fields are set depends on the formulation)."""

    layouts: dict[int, int] = field(default_factory=dict)  # slots: GPUs per layout
    configs: dict[int, int] = field(default_factory=dict)  # slots: partitions per configuration
    patterns: dict[int, int] = field(default_factory=dict)  # patterns: GPUs per pattern
    per_gpu: tuple[tuple[int | None, dict[int, int]], ...] = ()  # indexed: (layout, configuration counts) per GPU
    alpha: float | None = None  # max-scale


@dataclass(frozen=True)
class EngineOutcome:
    status: str  # "optimal", "feasible" (time limit with an incumbent), "infeasible" or "none"
    bound: float | None  # proven bound of the model (lower for min-gpus, upper for max-scale)
    counts: Counts | None
    message: str = ""


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
    return not fits(need, instance.device.memory_mb * instance.device.memory_cap)


def _larger_sets_exist(instance: Instance, timer: _Timer, t: int) -> bool:
    """Whether some tenant set of t+1 services meets the latency rule in some partition (else a limit t is vacuous)."""
    lim = instance.mechanism.max_tenants
    if lim is not None and lim <= t:
        return False
    names = instance.service_names
    budgets = [instance.slo_budget_ms(n) for n in names]
    active = [i for i, s in enumerate(instance.services) if s.rate > 0]
    for p in instance.mechanism.sizes:
        pairs = []  # (slack B - e, e) at each service's fastest batch: the easiest way to join a set
        for s in active:
            es = [e for b in instance.batches if (e := timer.exec_ms(names[s], b, p, 1)) is not None]
            if es:
                pairs.append((budgets[s] - min(es), min(es)))
        pairs.sort(key=lambda x: -x[0])
        for i, (slack_i, e_i) in enumerate(pairs):  # i: the member with the smallest slack
            others = sorted(e for _, e in pairs[:i])  # members with at least that slack, fastest first
            if len(others) >= t and fits(e_i + sum(others[:t]), slack_i):
                return True
    return False


def prepare(instance: Instance, options: SolveOptions) -> ModelData:
    """Enumerate configurations, layouts and (when chosen) GPU patterns; choose the formulation."""
    xo = ExactOptions.from_solve_options(options)
    names = instance.service_names
    rates = tuple(s.rate for s in instance.services)
    clip_alpha = _clip_alpha(instance, options.objective)
    clip = [clip_alpha * r for r in rates]
    notes: list[str] = []
    ni = neighbour_interference(instance)
    formulation = xo.formulation
    all_layouts = enumerate_layouts(instance, maximal=False, limit=xo.max_layouts)
    max_layouts = enumerate_layouts(instance, maximal=True, limit=xo.max_layouts)
    conservative = ni and (xo.interference == "conservative" or formulation in ("slots", "indexed"))

    def configs_for(cons: bool, prune: bool) -> tuple[list[Config], int, _Timer]:
        timer = _Timer(instance, cons, all_layouts)
        t = xo.max_tenants
        while True:
            try:
                return enumerate_configs(instance, timer, t, clip, prune, False, xo.max_configs), t, timer
            except TooLarge:
                if t == 1:
                    raise
                notes.append(f"tenant sets of {t} gave more than {xo.max_configs} configurations: limit lowered")
                t -= 1

    patterns: list[GpuPattern] = []
    configs, tenants, timer = configs_for(conservative, prune=not (ni and not conservative))
    binding = _memory_binding(instance, max_layouts, configs)
    if formulation == "auto":
        formulation = "patterns" if (ni and not conservative) or binding else "slots"
    if formulation == "patterns":
        try:
            patterns = enumerate_patterns(instance, configs, all_layouts if (ni or binding) else max_layouts,
                                          clip, xo.max_patterns)
        except TooLarge as e:
            notes.append(f"GPU patterns not enumerated ({e}): slots formulation instead")
            formulation = "slots"
            if ni and not conservative:
                conservative = True
                configs, tenants, timer = configs_for(True, prune=True)
    mem_rule = "GPU memory never binds (largest fill of any layout fits)"
    exact = True
    if binding and formulation == "slots":
        cap = instance.device.memory_mb * instance.device.memory_cap / instance.mechanism.capacity
        configs = [c for c in configs if fits(c.memory_mb, cap * c.size)]
        mem_rule, exact = "GPU memory can bind: each partition limited to its size's share of memory (sound)", False
    elif binding:
        mem_rule = ("GPU memory exact per GPU pattern" if formulation == "patterns"
                    else "GPU memory exact per GPU (indexed)")
    if conservative:
        exact = False
    vacuous = not _larger_sets_exist(instance, timer, tenants)
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
            f"({'no larger set meets the latency rule' if vacuous else 'a restriction of the problem'}; instance limit "
            f"{lim if lim is not None else 'none'}); interference {inter}; {mem_rule}; "
            f"{len(configs)} configurations, {len(layouts)} layouts"
            + (f", {len(patterns)} GPU patterns" if formulation == "patterns" else "")
            + ("" if exact else "; optimal only for this restricted model"))
    return ModelData(instance, names, rates, clip_alpha, formulation, tuple(instance.mechanism.sizes),
                     tuple(layouts), tuple(configs), tuple(patterns),
                     instance.device.memory_mb * instance.device.memory_cap if binding else None, exact, disc,
                     tuple(notes))


# ------------------------------------------------------------------------------------------------- warm start
def _gpu_caps(instance: Instance, gpu: GpuLayout) -> list[list[float]] | None:
    """Capacity of every tenant of a GPU of a plan, with the checker's timing."""
    out = []
    for p, times in zip(gpu.partitions, gpu_timings(instance, gpu)):
        if any(t.exec_ms is None for t in times):
            return None
        d = sum(t.exec_ms for t in times)
        out.append([single_capacity(instance, t.service, tn.batch, p.size, p.procs, t.exec_ms) if len(times) == 1
                    else p.procs * 1000.0 * tn.batch / d for tn, t in zip(p.tenants, times)])
    return out


def _match_config(data: ModelData, p: Partition, caps: list[float]) -> int | None:
    index = {n: i for i, n in enumerate(data.names)}
    want = {index[t.service]: min(c, data.clip_alpha * data.rates[index[t.service]]) for t, c in zip(p.tenants, caps)}
    best = None
    for ci, c in enumerate(data.configs):
        if c.size != p.size or {s for s, _ in c.tenants} != set(want):
            continue
        cov = {s: min(cap, data.clip_alpha * data.rates[s]) for (s, _), cap in zip(c.tenants, c.cap)}
        if all(cov[s] >= want[s] * (1 - 1e-9) for s in want):
            best = ci
            break
    return best


def warm_counts(data: ModelData, plan: Plan) -> Counts | None:
    """The warm plan in model terms (a configuration at least as good for every partition), or None."""
    inst = data.instance
    gpus = [g for g in plan.gpus if g.used]
    if data.formulation == "patterns":
        pats = np.array([[min(t, data.clip_alpha * r) for t, r in zip(p.total, data.rates)] for p in data.patterns])
        counts: dict[int, int] = {}
        for g in gpus:
            caps = _gpu_caps(inst, g)
            if caps is None:
                return None
            vec = np.zeros(len(data.names))
            for p, cs in zip(g.partitions, caps):
                for t, c in zip(p.tenants, cs):
                    vec[data.names.index(t.service)] += c
            vec = np.minimum(vec, data.clip_alpha * np.array(data.rates))
            ok = np.where(np.all(pats >= vec * (1 - 1e-9), axis=1))[0]
            if len(ok) == 0:
                return None
            counts[int(ok[0])] = counts.get(int(ok[0]), 0) + 1
        return Counts(patterns=counts, alpha=_alpha_of(data, [data.patterns[i].configs for i, n in counts.items()
                                                               for _ in range(n)]))
    per_gpu = []
    for g in gpus:
        # the checker's timing: no slowdown is larger than the model's (solo exact, or worst case)
        caps = [[c for c in row] for row in (_solo_caps(data, g) or [])]
        if not caps and g.partitions:
            return None
        cfgs: dict[int, int] = {}
        for p, cs in zip(g.partitions, caps):
            if not p.tenants:
                continue
            ci = _match_config(data, p, cs)
            if ci is None:
                return None
            cfgs[ci] = cfgs.get(ci, 0) + 1
        sizes = sorted((data.configs[ci].size for ci, n in cfgs.items() for _ in range(n)), reverse=True)
        li = next((i for i, L in enumerate(data.layouts) if _contains(L, sizes)), None)
        if li is None:
            return None
        per_gpu.append((li, cfgs))
    lay: dict[int, int] = {}
    cfg: dict[int, int] = {}
    for li, cs in per_gpu:
        lay[li] = lay.get(li, 0) + 1
        for ci, n in cs.items():
            cfg[ci] = cfg.get(ci, 0) + n
    alpha = _alpha_of(data, [[data.configs[ci] for ci, n in cs.items() for _ in range(n)] for _, cs in per_gpu])
    return Counts(layouts=lay, configs=cfg, per_gpu=tuple(per_gpu), alpha=alpha)


def _solo_caps(data: ModelData, g: GpuLayout) -> list[list[float]] | None:
    """Capacities of a plan's GPU as the model would time it (solo or conservative, no company)."""
    inst = data.instance
    timer = _Timer(inst, conservative=not data.exact and data.instance.interference.form != "none"
                   and neighbour_interference(inst), layouts=enumerate_layouts(inst, False, 10 ** 6))
    out = []
    for p in g.partitions:
        es = [timer.exec_ms(t.service, t.batch, p.size, p.procs) for t in p.tenants]
        if any(e is None for e in es):
            return None
        d = sum(es)
        out.append([single_capacity(inst, t.service, t.batch, p.size, p.procs, e) if len(es) == 1
                    else p.procs * 1000.0 * t.batch / d for t, e in zip(p.tenants, es)])
    return out


def _contains(big: tuple[float, ...], small: list[float]) -> bool:
    rest = list(big)
    for s in small:
        if s not in rest:
            return False
        rest.remove(s)
    return True


def _alpha_of(data: ModelData, gpus: list) -> float:
    cov = [0.0] * len(data.names)
    for cfgs in gpus:
        for c in cfgs:
            for s, v in data.config_coverage(c).items():
                cov[s] += v
    vals = [min(cov[s], data.clip_alpha) for s, r in enumerate(data.rates) if r > 0]
    return min(vals) if vals else data.clip_alpha


def greedy_counts(data: ModelData, objective: Objective) -> Counts:
    """A cheap start in model terms, so that no engine ends empty-handed: max-scale serves nothing (alpha = 0, always
    feasible); min-gpus covers each service with copies of its most capacity-efficient configuration and packs them
    into layouts first-fit (or takes the most useful GPU pattern repeatedly).  May use more than G GPUs (then the
    engines just ignore it)."""
    if objective is Objective.MAX_SCALE:
        return Counts(alpha=0.0, per_gpu=())
    active = [s for s, r in enumerate(data.rates) if r > 0]
    if data.formulation == "patterns":
        rem = {s: 1.0 for s in active}
        counts: dict[int, int] = {}
        covs = [data.pattern_coverage(p) for p in data.patterns]
        while any(v > 1e-9 for v in rem.values()):
            gains = [sum(min(rem[s], c) for s, c in cov.items() if s in rem) for cov in covs]
            best = int(np.argmax(gains)) if gains else -1
            if best < 0 or gains[best] <= 1e-12:
                return Counts(alpha=None)
            counts[best] = counts.get(best, 0) + 1
            for s, c in covs[best].items():
                rem[s] = rem.get(s, 0.0) - c
        return Counts(patterns=counts)
    pending: list[int] = []
    for s in active:
        own = [(cov[s] / c.size, cov[s], ci) for ci, c in enumerate(data.configs)
               if len(c.tenants) == 1 and (cov := data.config_coverage(c)).get(s, 0.0) > 0]
        if not own:
            return Counts()
        _, cov, ci = max(own)
        pending += [ci] * math.ceil(1.0 / cov - 1e-9)
    per_gpu = []
    while pending:
        best, best_fill = None, 0.0
        for li, L in enumerate(data.layouts):
            free, taken = list(L), []
            for ci in sorted(pending, key=lambda i: -data.configs[i].size):
                if data.configs[ci].size in free:
                    free.remove(data.configs[ci].size)
                    taken.append(ci)
            fill = sum(data.configs[ci].size for ci in taken)
            if fill > best_fill:
                best, best_fill = (li, taken), fill
        if best is None:
            return Counts()
        li, taken = best
        cs: dict[int, int] = {}
        for ci in taken:
            pending.remove(ci)
            cs[ci] = cs.get(ci, 0) + 1
        per_gpu.append((li, cs))
    lay: dict[int, int] = {}
    cfg: dict[int, int] = {}
    for li, cs in per_gpu:
        lay[li] = lay.get(li, 0) + 1
        for ci, n in cs.items():
            cfg[ci] = cfg.get(ci, 0) + n
    return Counts(layouts=lay, configs=cfg, per_gpu=tuple(per_gpu))


def _gpus_in(data: ModelData, c: Counts) -> int:
    if data.formulation == "patterns":
        return sum(c.patterns.values())
    return len(c.per_gpu) if data.formulation == "indexed" else sum(c.layouts.values())


# ------------------------------------------------------------------------------------------------- extraction
def gpus_of(data: ModelData, counts: Counts) -> list[list[Config]]:
    """The configurations on each GPU of an incumbent."""
    if data.formulation == "patterns":
        return [list(data.patterns[i].configs) for i, n in sorted(counts.patterns.items()) for _ in range(n)]
    if data.formulation == "indexed":
        return [[data.configs[ci] for ci, n in sorted(cs.items()) for _ in range(n)] for _, cs in counts.per_gpu]
    free: list[tuple[int, float]] = []
    gpus: list[list[Config]] = []
    for li, n in sorted(counts.layouts.items()):
        for _ in range(n):
            gpus.append([])
            free += [(len(gpus) - 1, s) for s in data.layouts[li]]
    for ci, n in sorted(counts.configs.items()):
        c = data.configs[ci]
        for _ in range(n):
            slot = next((k for k, (_, s) in enumerate(free) if s == c.size), None)
            if slot is None:
                raise RuntimeError(f"model inconsistency: no free slot of size {c.size:g}")
            gpus[free.pop(slot)[0]].append(c)
    return gpus


def to_plan(data: ModelData, gpus: list[list[Config]], objective: Objective, solver: str) -> Plan:
    """A Plan from configurations per GPU: every service's demand split over its partitions in proportion to their
    capacity (so no partition exceeds its own); max-scale alpha is what the capacities actually cover."""
    gpus = [g for g in gpus if g]
    total = [0.0] * len(data.names)
    for g in gpus:
        for c in g:
            for (s, _), cap in zip(c.tenants, c.cap):
                total[s] += cap
    if objective is Objective.MAX_SCALE:
        alpha = min((total[s] / r for s, r in enumerate(data.rates) if r > 0), default=1.0)
    else:
        alpha = 1.0
    layouts = []
    for g in gpus:
        starts = mig_starts(data.instance, [c.size for c in g]) if data.instance.mechanism.kind is MechanismKind.MIG \
            else [None] * len(g)
        parts = []
        for c, st in zip(g, starts):
            rates = [alpha * data.rates[s] * cap / total[s] if total[s] > 0 else 0.0
                     for (s, _), cap in zip(c.tenants, c.cap)]
            parts.append(c.partition(data.names, rates, st))
        layouts.append(GpuLayout(tuple(parts)))
    return Plan(tuple(layouts), scale=alpha, solver=solver)


# ------------------------------------------------------------------------------------------------- the flow
def solve_exact(solver: str, instance: Instance, options: SolveOptions, engine: Engine, engine_name: str) -> SolveResult:
    """Prepare, solve with `engine`, extract, check; never raise for an infeasible instance."""
    t0 = time.perf_counter()
    bad = unservable(instance, options.objective)
    if bad:
        return SolveResult(solver, Status.INFEASIBLE, message="; ".join(f"{k}: {v}" for k, v in bad.items()),
                           infeasible_services=tuple(bad))
    try:
        data = prepare(instance, options)
    except TooLarge as e:
        return SolveResult(solver, Status.UNKNOWN, message=f"model too large to enumerate: {e}")
    warm_plan = options.warm_start
    warm = None
    if warm_plan is not None:
        report = check(instance, warm_plan)
        if not report.valid:
            log.warning("%s: warm start rejected by the checker, ignored", solver)
            warm_plan = None
        else:
            warm = warm_counts(data, warm_plan)
            if warm is None:
                log.info("%s: warm start has partitions outside the model; kept only as a fallback", solver)
    if warm is None and options.param("greedy_start", "1") != "0":
        start = greedy_counts(data, options.objective)
        empty = options.objective is Objective.MIN_GPUS and not (start.patterns or start.per_gpu)
        warm = None if empty or _gpus_in(data, start) > instance.gpus else start
    left = max(1.0, options.time_limit_s - (time.perf_counter() - t0))
    out = engine(data, options, warm, left)
    lp = lp_relaxation(instance, options.objective).value
    msg = [out.message] if out.message else []
    msg += list(data.notes)
    plan = None
    if out.counts is not None:
        plan = to_plan(data, gpus_of(data, out.counts), options.objective, solver)
        report = check(instance, plan)
        if not report.valid:
            msg.append("extracted plan rejected by the checker: " + "; ".join(str(v) for v in report.violations[:3]))
            log.error("%s: %s", solver, msg[-1])
            plan = None
    if warm_plan is not None and (plan is None or _better(warm_plan, plan, options.objective)):
        plan = replace(warm_plan, solver=solver, notes="warm start (no better incumbent found)")
    nothing = options.objective is Objective.MAX_SCALE and plan is not None and plan.scale <= 1e-9
    if out.status == "infeasible" or (nothing and out.status == "optimal"):
        status = Status.INFEASIBLE if data.exact else Status.UNKNOWN
        why = ((f"no plan on {instance.gpus} GPUs serves all rates together" if options.objective is Objective.MIN_GPUS
                else f"no plan on {instance.gpus} GPUs serves every service at any positive scale") if data.exact
               else "the restricted model has no plan (the problem itself may have one)")
        return SolveResult(solver, status, message="; ".join([why] + msg), discretisation=data.discretisation,
                           infeasible_services=instance.service_names if data.exact else ())
    bound = _bound(out.bound, lp, options.objective)
    if plan is None or nothing:
        return SolveResult(solver, Status.UNKNOWN, bound=bound, discretisation=data.discretisation,
                           message="; ".join(["no incumbent within the time limit"] + msg))
    obj = float(plan.gpus_used) if options.objective is Objective.MIN_GPUS else plan.scale
    if options.objective is Objective.MIN_GPUS:
        optimal = bound is not None and obj <= bound + 1e-9
        full = obj <= math.ceil(lp - 1e-6) + 1e-9
    else:
        optimal = bound is not None and bound - obj <= options.max_scale_tol * max(obj, 1e-12)
        full = lp - obj <= options.max_scale_tol * obj
        if out.status == "optimal" and bound is not None and not optimal:
            msg.append(f"engine reports optimal; bound gap above {options.max_scale_tol:g} is its tolerance")
    if not data.exact:
        msg.append("optimal for the full problem too: the objective meets its layout LP bound" if full else
                   f"layout LP bound of the full problem: {lp:.6g}")
    return SolveResult(solver, Status.OPTIMAL if optimal else Status.FEASIBLE, obj, bound, plan=plan,
                       discretisation=data.discretisation + f"; engine {engine_name}", message="; ".join(msg))


def _bound(engine_bound: float | None, lp: float, objective: Objective) -> float | None:
    if objective is Objective.MIN_GPUS:
        vals = [v for v in (engine_bound, lp) if v is not None and math.isfinite(v)]
        return float(max(math.ceil(v - 1e-6) for v in vals)) if vals else None
    vals = [v for v in (engine_bound, lp) if v is not None and math.isfinite(v)]
    return min(vals) if vals else None


def _better(a: Plan, b: Plan, objective: Objective) -> bool:
    if objective is Objective.MIN_GPUS:
        return a.gpus_used < b.gpus_used
    return a.scale > b.scale * (1 + 1e-9)
