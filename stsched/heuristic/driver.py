"""The min-gpus and max-scale drivers, and the final judgement of every plan by the checker.

min-gpus: construction (`construct`), then the local search (`search.improve`) down to the LP bound; `restarts`
extra constructions with seeded random tie-breaking; above the bound, constructions for slightly more load scaled
back down (`load_probes`); the plan with the fewest GPUs is kept.
max-scale: bisection on alpha from the LP upper bound, feasible when the plain or the balanced construction fits
`instance.gpus`; a few more bisection steps with the full packer (restarts and local search); then a local
improvement: more load absorbed by the best plan's slack and free GPUs; last, a few bisection steps where the
coordinate descent (`descent.descend`, with `scale_descent_budget` evaluations) re-chooses partition contents and
layouts of the best plan for more load.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from stsched.bounds import lp_bound_scale
from stsched.checker import Report, check, whole_gpus
from stsched.heuristic.construct import construct
from stsched.heuristic.descent import descend
from stsched.heuristic.ctp import cover_then_pack
from stsched.heuristic.model import Context, TimeUp
from stsched.heuristic.scale import FIRST_PROBE, Pilot, Probe, choose_construction, first_alpha, search_scale
from stsched.heuristic.search import absorb, improve, remove_gpu
from stsched.heuristic.state import WGpu, clone, refit_gpu, scale_down, to_plan
from stsched.plan import Plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """A driver's result: the plan (None when none was found), its checker report and a note."""

    plan: Plan | None
    report: Report | None
    value: float | None  # GPUs (min-gpus) or alpha (max-scale)
    note: str = ""


def rates(ctx: Context) -> np.ndarray:
    return np.array([ctx.instance.service(n).rate for n in ctx.names], dtype=float)


def _whole_applies(ctx: Context) -> bool:
    """Whether the `whole` construction is tried: only where neighbours can slow a tenant down (without that, a
    whole GPU per service gains nothing over the knee partitions)."""
    return ctx.interference and ctx.form_needs_features


def _build(ctx: Context, c: str, demand: np.ndarray, goal: int, limit: int | None = None,
           hopeless: bool = False):
    """One named construction (`HeuristicOptions.constructions`): its GPUs and the demand it left unplaced
    (`hopeless`: see `construct`; cover-then-pack ignores `limit`)."""
    if c in ("cover", "whole"):
        return cover_then_pack(ctx, demand, whole=c == "whole")
    target = max(goal, 1) if c == "balanced" else None
    return construct(ctx, demand, target=target, limit=limit, first_rank={"second": 1, "third": 2}.get(c, 0),
                     hopeless=hopeless)


def _constructions(ctx: Context, demand: np.ndarray, goal: int, seed: int, limit: int | None = None,
                   first: list[WGpu] | None = None):
    """The constructions of `HeuristicOptions.constructions`, then `restarts` seeded greedy runs, lazily; `first`:
    the first construction's GPUs, already built for this demand (a complete pilot's), not built again."""
    for i, c in enumerate(ctx.opts.construction_list()):
        if i == 0 and first is not None:
            yield first, np.zeros_like(demand, dtype=float)
        elif c != "whole" or _whole_applies(ctx):
            yield _build(ctx, c, demand, goal, limit)
    for r in range(1, ctx.opts.restarts + 1):
        yield construct(ctx, demand, np.random.default_rng([seed, r]), limit=limit)


def pack(ctx: Context, demand: np.ndarray, lower: int, deadline: float, seed: int,
         limit: int | None = None, descent: bool = True, first: list[WGpu] | None = None) -> list[WGpu] | None:
    """The fewest GPUs serving `demand` that construction + local search find (None when some demand cannot be
    placed at all).  Every construction (`HeuristicOptions.constructions`, then `restarts` seeded greedy runs) is
    built; the first to reach the bound (or `limit`) wins, else the `search_starts` best are improved by the local
    search; above the bound, the greedy construction for a little more load (`load_probes`) may save a GPU; those
    with the fewest GPUs, last, are improved by the coordinate descent.  `first`: the first construction's GPUs
    for `demand`, already built (`_constructions`)."""
    goal = limit if limit is not None else lower
    built: list[list[WGpu]] = []
    constructions = _constructions(ctx, demand, goal, seed, first=first)
    for n in itertools.count():
        if n > 0 and time.perf_counter() > deadline:
            break
        try:
            gpus, rem = next(constructions)
        except StopIteration:
            break
        except TimeUp:  # the time limit passed inside this construction: keep what the others built
            if built:
                break
            raise
        if np.any(rem > 0):
            continue
        if len(gpus) <= lower or (limit is not None and len(gpus) <= limit):
            return gpus
        built.append(gpus)
    if not built:
        return None
    # fewest GPUs first, then the lightest last GPU (the easiest to empty)
    built.sort(key=lambda g: (len(g), min(x.load(ctx) for x in g)))
    improved = []
    for gpus in built[:ctx.opts.search_starts]:  # stop at the first start that the search brings to the bound
        better = improve(ctx, gpus, max(lower, 1), deadline, descent=False)
        if len(better) <= lower or (limit is not None and len(better) <= limit):
            return better
        improved.append(better)
    improved.sort(key=len)
    best = improved[0]
    if len(best) <= lower or (limit is not None and len(best) <= limit):
        return best
    try:
        probed = _probe_larger_loads(ctx, demand, len(best), deadline)
    except TimeUp:
        probed = None
    if probed is not None:
        if len(probed) <= lower or (limit is not None and len(probed) <= limit):
            return probed
        best, improved = probed, [probed]
    if descent and ctx.opts.descent_budget > 0:  # the costly last resort, on each improved start
        for gpus in improved:
            if len(gpus) == len(best):
                gpus = improve(ctx, gpus, max(lower, 1), deadline, descent=True)
                if len(gpus) < len(best):
                    return gpus
    return best


def _probe_larger_loads(ctx: Context, demand: np.ndarray, gpus: int, deadline: float) -> list[WGpu] | None:
    """The greedy construction (and `whole`, where it is tried) for `HeuristicOptions.load_probes` x the demand:
    the first state on fewer than `gpus` GPUs, its tenants scaled back down to the demand and re-fitted (serving
    less never needs a larger duty cycle or batch, and the re-fit checks it); None when no probe saves a GPU."""
    whole = "whole" in ctx.opts.construction_list() and _whole_applies(ctx)
    for factor in ctx.opts.probe_factors():
        for kind in ("greedy", "whole") if whole else ("greedy",):
            if time.perf_counter() > deadline:
                return None
            built, rem = _build(ctx, kind, demand * factor, gpus - 1)
            if np.any(rem > 0) or len(built) >= gpus or scale_down(ctx, built, demand):
                continue
            built = [g for g in built if g.used]
            if all(refit_gpu(ctx, g) for g in built):
                log.debug("heuristic: the %s construction for %.2f x the demand saves a GPU", kind, factor)
                return built
    return None


def finalize(ctx: Context, gpus: list[WGpu], scale: float, note: str, keep_empty: bool = False) -> Outcome:
    """The plan of a state, judged by the checker; repaired by a full conservative re-fit, never emitted invalid."""
    plan = to_plan(ctx, gpus, scale, notes=note, keep_empty=keep_empty)
    report = check(ctx.instance, plan)
    if report.valid:
        return Outcome(plan, report, None, note)
    log.warning("heuristic: plan rejected (%s); re-fitting every GPU", "; ".join(map(str, report.violations[:3])))
    repaired = clone(gpus)
    for g in repaired:
        for p in g.parts:
            p.given = None
        if g.used and not refit_gpu(ctx, g):
            return Outcome(None, report, None, f"{note}; plan rejected by the checker and not repairable")
    plan = to_plan(ctx, repaired, scale, notes=note, keep_empty=keep_empty)
    report = check(ctx.instance, plan)
    if report.valid:
        return Outcome(plan, report, None, note)
    return Outcome(None, report, None, f"{note}; plan rejected by the checker: "
                                       + "; ".join(map(str, report.violations[:3])))


def where_lost(ctx: Context, gpus: list[WGpu]) -> str:
    """Where a state loses against the LP bound, which counts every request at its service's best efficiency on
    fully used GPUs: the share of the GPUs' capacity its partitions fill (packing), and the share of that filled
    capacity its tenants' work at best efficiency (requests / best efficiency) makes up (operating points: knee
    sizes, shared cycles, latency).  GPUs = LP work / (fill x efficiency) / capacity.  The operating points are
    split further by `operating_points`."""
    used = [g for g in gpus if g.used]
    sizes = sum(p.size for g in used for p in g.parts if p.tenants)
    work = sum(g.load(ctx) for g in used)
    fill = sizes / (len(used) * ctx.capacity) if used else 0.0
    sat_size, sat_work = operating_points(ctx, used)
    rest = sizes - sat_size
    split = (f" (saturated single tenants: {sat_size / sizes:.1%} of the partitions' capacity at "
             f"{sat_work / sat_size if sat_size else 0.0:.1%}, the rest at "
             f"{(work - sat_work) / rest if rest > 0 else 0.0:.1%})") if sizes else ""
    return (f"partitions fill {fill:.1%} of the GPUs, work at best efficiency {work / sizes if sizes else 0.0:.1%} "
            f"of that{split}")


def operating_points(ctx: Context, gpus: list[WGpu]) -> tuple[float, float]:
    """The capacity of the partitions that one tenant saturates (its rate at least its best single-tenant
    capacity at that size, `Context.cap1`, to 1e-6) and their work at best efficiency: what the knee partitions
    lose is 1 - work / capacity; the other partitions (shared, or one tenant below its best point: the residual
    loads) are the rest of `where_lost`'s efficiency."""
    size = work = 0.0
    for g in gpus:
        for p in g.parts:
            if len(p.tenants) != 1:
                continue
            i, r = p.tenants[0]
            cap = ctx.cap1[i, ctx.size_index(p.size)]
            if cap > 0 and r >= cap * (1 - 1e-6) and ctx.eff[i] > 0:
                size += p.size
                work += r / ctx.eff[i]
    return size, work


def lower_gpus(ctx: Context) -> int:
    """The LP lower bound over the heuristic's own operating points (those that fit in memory): where the
    search may stop (`stsched.bounds.lp_bound_gpus` is the bound reported)."""
    base = rates(ctx)
    units = float(np.sum(np.where(ctx.eff > 0, base / np.where(ctx.eff > 0, ctx.eff, 1.0), 0.0)))
    return whole_gpus(units / ctx.capacity)  # (the checker's rounding; no demand: 0, the empty plan)


def _at_scale(ctx: Context, demand: np.ndarray) -> tuple[Context, Pilot | None]:
    """On a large instance, the context with the one construction a pilot chooses (`scale.choose_construction`),
    and the pilot."""
    if not ctx.opts.at_scale(len(ctx.names)):
        return ctx, None
    return choose_construction(ctx, lambda c, d, most: _build(ctx, c, d, 0, limit=most, hopeless=True), demand)


def _pilot_built(ctx: Context, pilot: Pilot | None, demand: np.ndarray) -> list[WGpu] | None:
    """The chosen construction's GPUs from a pilot that was the whole `demand` (every service with demand is
    servable and in the pilot: at most `scale.PILOT` services), so that `pack` does not build them again (session
    20: at 256 services the pilot and `pack` built the same construction on the same demand, a third of a plan
    from scratch); None otherwise.  A complete build with the pilot's GPU limit is the build without it (the limit
    only stops a build, which is then incomplete and not chosen); not for "balanced", whose target the pilot set
    otherwise (0 GPUs, not the LP bound)."""
    if pilot is None or not pilot.complete or pilot.built is None or pilot.name == "balanced":
        return None
    outside = np.ones(len(demand), dtype=bool)
    outside[ctx.servable] = False
    return None if np.any(demand[outside] > 0) else pilot.built


def min_gpus(ctx: Context, deadline: float, seed: int) -> Outcome:
    inst = ctx.instance
    demand = rates(ctx)
    try:
        ctx, pilot = _at_scale(ctx, demand)
    except TimeUp:
        return Outcome(None, None, None, "stopped at the time limit before a plan was complete")
    lower = lower_gpus(ctx)
    try:
        gpus = pack(ctx, demand, int(lower), deadline, seed, first=_pilot_built(ctx, pilot, demand))
    except TimeUp:
        return Outcome(None, None, None, "stopped at the time limit before a plan was complete")
    if gpus is None:
        return Outcome(None, None, None, "some demand could not be placed on any layout")
    note = (f"min-gpus: {len(gpus)} GPUs (the search's floor, an LP over its own operating points: {lower}; not "
            f"the bound reported); {where_lost(ctx, gpus)}")
    if len(gpus) > inst.gpus:
        return Outcome(None, None, None, f"{note}; more than the instance's {inst.gpus} GPUs")
    out = finalize(ctx, gpus, 1.0, note)
    return Outcome(out.plan, out.report, None if out.plan is None else float(out.plan.gpus_used), out.note)


def _fits(ctx: Context, alpha: float, base: np.ndarray, deadline: float, seed: int,
          search: bool) -> list[WGpu] | None:
    """A state serving alpha x rates on the instance's GPUs: the plain and the balanced construction, and with
    `search` the full packer (restarts and local search)."""
    g = ctx.instance.gpus
    try:
        if search:
            gpus = pack(ctx, alpha * base, g, deadline, seed, limit=g, descent=ctx.opts.scale_full_search)
            return gpus if gpus is not None and len(gpus) <= g else None
        for gpus, rem in _constructions(ctx, alpha * base, g, seed, limit=g):
            if not np.any(rem > 0) and len(gpus) <= g:
                return gpus
    except TimeUp:  # the time limit passed inside a construction: this alpha is not shown to fit
        return None
    return None


REPAIR_TRIES = 3  # `repair`: the lightest GPUs tried per GPU to remove


def repair(ctx: Context, gpus: list[WGpu], deadline: float) -> list[WGpu] | None:
    """A max-scale construction a GPU or two over the instance's GPUs brought onto them by the local search's
    move (`search.remove_gpu`: a GPU's partitions relocated whole, its loads absorbed by the others' slack), on
    the REPAIR_TRIES lightest GPUs in turn per GPU to remove; None where that does not suffice."""
    state = [g for g in gpus if g.used]
    while len(state) > ctx.instance.gpus:
        if time.perf_counter() > deadline:
            return None
        loads = [g.load(ctx) for g in state]
        for g in sorted(range(len(state)), key=lambda k: (loads[k], k))[:REPAIR_TRIES]:
            new = remove_gpu(ctx, state, g)
            if new is not None:
                state = [x for x in new if x.used]
                break
        else:
            return None
    return state


def _raise(ctx: Context, gpus: list[WGpu], lo: float, alpha: float, base: np.ndarray) -> list[WGpu] | None:
    """Local improvement for max-scale: the extra (alpha - lo) x rates absorbed by `gpus` (served at lo) and by
    the instance's unused GPUs."""
    trial = clone(gpus)
    extra = {i: float((alpha - lo) * base[i]) for i in range(len(base)) if base[i] > 0}
    left = absorb(ctx, trial, extra)
    free = ctx.instance.gpus - len(trial)
    if left and free > 0:
        demand = np.zeros(len(base))
        for i, r in left.items():
            demand[i] = r
        more, rem = construct(ctx, demand, limit=free)
        if np.any(rem > 0):
            return None
        trial += more
        left = {}
    return None if left else trial


def max_scale(ctx: Context, deadline: float, seed: int, tol: float, upper: float | None = None) -> Outcome:
    """`upper`: the LP bound on alpha (`stsched.bounds.lp_bound_scale`) when the caller has it already."""
    base = rates(ctx)
    upper = lp_bound_scale(ctx.instance) if upper is None else upper
    if not np.isfinite(upper) or upper <= 0:
        return Outcome(None, None, None, f"max-scale: LP bound {upper}")
    if ctx.opts.at_scale(len(ctx.names)):  # a large instance: the root search on the construction's GPU count
        alpha_p = FIRST_PROBE * float(upper)
        try:
            ctx, pilot = _at_scale(ctx, alpha_p * base)
        except TimeUp:
            return Outcome(None, None, None, "max-scale: stopped at the time limit before a plan was complete")
        first = ctx.opts.construction_list()[0]
        start, known = None, None
        if pilot is not None and pilot.complete:  # the pilot was this construction for every service
            known = (Probe(alpha_p, pilot.gpus), pilot.built)
        elif pilot is not None:
            start = first_alpha(pilot, alpha_p, base, ctx)
        lo, best, spent = search_scale(ctx, lambda demand: _build(ctx, first, demand, ctx.instance.gpus), base,
                                       float(upper), deadline, tol, first=start, known=known,
                                       repair=lambda gpus: repair(ctx, gpus, deadline))
        if best is not None:
            note = (f"max-scale: alpha {lo:.4f} on {len(best)} of {ctx.instance.gpus} GPUs ({spent} constructions "
                    f"{first}, LP bound {upper:.4f}); {where_lost(ctx, best)}")
            out = finalize(ctx, best, lo, note)
            return Outcome(out.plan, out.report, lo if out.plan is not None else None, out.note)
    lo, hi, best = 0.0, float(upper), None
    for _ in range(ctx.opts.scale_iterations):
        if (hi - lo) <= tol * hi or time.perf_counter() > deadline:
            break
        mid = 0.5 * (lo + hi)
        gpus = _fits(ctx, mid, base, deadline, seed, search=False)
        if gpus is not None:
            lo, best = mid, gpus
        else:
            hi = mid
    if ctx.opts.scale_full_search:  # a construction that failed proves nothing: bisect up to the LP bound again
        hi = float(upper)
    for _ in range(ctx.opts.scale_search_steps):  # the local search may still fit what construction alone could not
        if (hi - lo) <= tol * hi or time.perf_counter() > deadline:
            break
        mid = 0.5 * (lo + hi)
        gpus = _fits(ctx, mid, base, deadline, seed, search=True)
        if gpus is not None:
            lo, best = mid, gpus
        else:
            hi = mid
    if best is None:
        if time.perf_counter() > deadline:  # the limit ended the bisection, not a proof: say so
            return Outcome(None, None, None, "max-scale: no alpha > 0 found before the time limit ran out (a "
                                             "construction at this size needs more time: raise --time-limit)")
        return Outcome(None, None, None, "max-scale: no alpha > 0 found")
    packed = lo
    step_hi = float(upper)
    for _ in range(ctx.opts.scale_iterations):  # local improvement on the best plan's structure
        if (step_hi - lo) <= tol * step_hi or time.perf_counter() > deadline:
            break
        mid = 0.5 * (lo + step_hi)
        try:
            trial = _raise(ctx, best, lo, mid, base)
        except TimeUp:
            break
        if trial is not None:
            lo, best = mid, trial
        else:
            step_hi = mid
    budget = ctx.opts.scale_descent_budget
    if budget > 0 and len(ctx.names) <= ctx.opts.descent_bank:
        sub = replace(ctx, opts=replace(ctx.opts, descent_budget=budget))
        step_hi = float(upper)
        empty = [WGpu() for _ in range(ctx.instance.gpus - len(best))]
        for _ in range(ctx.opts.scale_search_steps):  # the descent re-chooses contents and layouts for more load
            if (step_hi - lo) <= tol * step_hi or time.perf_counter() > deadline:
                break
            mid = 0.5 * (lo + step_hi)
            extra = {i: float((mid - lo) * base[i]) for i in range(len(base)) if base[i] > 0}
            trial = descend(sub, clone(best) + clone(empty), extra, deadline)
            if trial is not None:
                lo, best, empty = mid, trial, [WGpu() for _ in range(ctx.instance.gpus - len(trial))]
            else:
                step_hi = mid
    note = (f"max-scale: alpha {lo:.4f} on {len(best)} of {ctx.instance.gpus} GPUs (packer {packed:.4f}, "
            f"LP bound {upper:.4f})")
    # the plan serves lo x rates; the last bisection steps may leave a sliver above it: judge at lo exactly
    out = finalize(ctx, best, lo, note)
    return Outcome(out.plan, out.report, lo if out.plan is not None else None, out.note)
