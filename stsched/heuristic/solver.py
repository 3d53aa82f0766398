"""The registered solver "heuristic": stsched's own spatial-temporal scheme (docs/HEURISTIC.md)."""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import time

from stsched.bounds import beyond_gpus, gpu_reach, lp_bound_gpus, lp_bound_scale, unservable
from stsched.heuristic.adapt import run_adapt
from stsched.heuristic.driver import max_scale, min_gpus
from stsched.heuristic.model import Context, TimeUp, build_context
from stsched.heuristic.options import HeuristicOptions
from stsched.heuristic.parallel import Background, worker_count
from stsched.problem import Instance
from stsched.registry import Objective, SolveOptions, SolveResult, Status, register

log = logging.getLogger(__name__)


@contextlib.contextmanager
def gc_paused():
    """Python's cyclic garbage collector off for the solve (restored after it): the search allocates millions of
    small tuples and keeps a large memo (`Context.memo`), so the collector's passes over the surviving objects
    cost 5-25 % of a construction's CPU time at 1,024 MIG services in development runs; the solve itself creates
    few reference cycles (reference counting frees the rest), and those are collected once the collector is back
    on."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@register("heuristic", "heuristic",
          "stsched's spatial-temporal heuristic: knee-sized partitions, shared residual partitions, local search",
          objectives=(Objective.MIN_GPUS, Objective.MAX_SCALE, Objective.ADAPT), options=HeuristicOptions,
          tenant_credit=True)
class HeuristicSolver:
    """Spatial step (knee sizes, saturated partitions), temporal step (residual loads sharing partitions with
    batches and duty cycles under the latency rule), conservative interference, bounded local search; options
    are `HeuristicOptions` given as `--param key=value`."""

    name = "heuristic"

    def solve(self, instance: Instance, options: SolveOptions) -> SolveResult:
        t0 = time.perf_counter()
        try:
            with gc_paused():
                return self._solve(instance, options, t0)
        except TimeUp:
            return SolveResult(self.name, Status.UNKNOWN, wall_s=time.perf_counter() - t0, discretisation=_disc(),
                               message=f"stopped at the time limit ({options.time_limit_s:g} s) before a plan was "
                                       "complete")

    def _solve(self, instance: Instance, options: SolveOptions, t0: float) -> SolveResult:
        opts = HeuristicOptions.from_params(options.params)
        obj = options.objective
        # the LP bound (min-gpus: GPUs, max-scale: alpha) in a forked worker while the context is built, at scale
        # (`parallel.Background`; the same value, computed here where no worker runs)
        lp = Background(lp_bound_scale if obj is Objective.MAX_SCALE else lp_bound_gpus, instance,
                        enabled=obj is not Objective.ADAPT and opts.at_scale(len(instance.services))
                        and worker_count(opts.workers) > 1)
        try:
            # min-gpus plans at scale 1: a tenant's share of its service is its rate over the service's rate
            ctx = build_context(instance, opts,
                                [s.rate for s in instance.services] if obj is Objective.MIN_GPUS else None)
            bad = _unservable(ctx, rates_matter=obj is not Objective.MAX_SCALE)
            if bad:
                return SolveResult(self.name, Status.INFEASIBLE, message="cannot be served: " + "; ".join(
                    f"{k}: {v}" for k, v in bad.items()), infeasible_services=tuple(bad), discretisation=_disc())
            lp_value = lp.result()
        finally:
            lp.close()
        # the plan is realised and checked after the search: time for that is kept back from the search so that
        # the whole solve ends within the limit (large instances: thousands of GPUs take seconds to check)
        lp_gpus = None if obj is Objective.MAX_SCALE else lp_value
        gpus = instance.gpus if lp_gpus is None else min(instance.gpus, _finite(lp_gpus))
        reserve = min(0.5 * options.time_limit_s, FINALIZE_S_PER_GPU * gpus)
        deadline = t0 + options.time_limit_s - reserve
        ctx.deadline = deadline
        if obj is Objective.MIN_GPUS:
            bound = lp_gpus
            if bound > instance.gpus:
                return SolveResult(self.name, Status.INFEASIBLE, bound=bound, discretisation=_disc(),
                                   message=f"the LP bound needs {bound} GPUs, the instance has {instance.gpus}")
            out = min_gpus(ctx, deadline, options.seed)
            status = Status.UNKNOWN if out.plan is None else (
                Status.OPTIMAL if out.value is not None and out.value <= bound else Status.FEASIBLE)
        elif obj is Objective.MAX_SCALE:
            bound = lp_value  # once: the search's upper end and the bound reported
            out = max_scale(ctx, deadline, options.seed, options.max_scale_tol, upper=bound)
            status = Status.UNKNOWN if out.plan is None else Status.FEASIBLE
        else:
            if options.current_plan is None:
                return SolveResult(self.name, Status.UNKNOWN, message="adapt needs options.current_plan",
                                   discretisation=_disc())
            out = run_adapt(ctx, options.current_plan, options)
            bound = 0.0
            status = Status.UNKNOWN if out.plan is None else (
                Status.OPTIMAL if out.value == 0 else Status.FEASIBLE)
        if bound is not None and not math.isfinite(bound):
            bound = None
        method = "" if bound is None else "none (adapt)" if obj is Objective.ADAPT else "lp-efficiency"
        return SolveResult(self.name, status, out.value, bound, time.perf_counter() - t0, out.plan,
                           discretisation=_disc(), message=out.note, bound_method=method)


# wall seconds per GPU to realise and check a plan, kept back from the search: 63 us of CPU per GPU measured for
# the checker on a 9,617-GPU plan (gpulet m2 on 10,000 GPUs), times about 3 for realising it and for a loaded machine
FINALIZE_S_PER_GPU = 2e-4


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def _unservable(ctx: Context, rates_matter: bool) -> dict[str, str]:
    """Services no plan can serve (`stsched.bounds.unservable`, which is consulted only when the heuristic's own
    operating points, a subset of the bound's, already show a service it cannot serve: no point at all, or a rate
    beyond all GPUs by the screen's own reach, `gpu_reach`, on them).  A rate is unservable only by the screen's
    word: the heuristic's points are no upper bound (before session 19's review a twin of the screen's per-GPU figure,
    the best single size repeated, marked ParvaGPU densenet121 at 2450 req/s on one GPU unservable though a valid
    2g + 2g + 3g plan serves it)."""
    inst = ctx.instance
    no_point = [n for i, n in enumerate(ctx.names) if ctx.eff[i] <= 0]
    suspect = bool(no_point)
    if rates_matter and not suspect:
        reach = gpu_reach(inst, ctx.cap1)
        suspect = any(beyond_gpus(inst.service(n).rate, float(reach[i]), inst.gpus) for i, n in enumerate(ctx.names))
    if not suspect:
        return {}
    official = unservable(inst, Objective.MIN_GPUS if rates_matter else Objective.MAX_SCALE)
    rule = f" with late_share {inst.margin.late_share:g}" if inst.margin.late_share else ""
    for n in no_point:  # points the bound counts but no plan may use (memory, late_share) leave it unservable too
        official.setdefault(n, f"no profiled point meets its SLO within the memory of one partition or GPU{rule}")
    return official


def _disc() -> str:
    return ("instance grid (batches, sizes, procs); conservative interference over every batch a neighbour may "
            "run; duty cycle = least fixed point of the batch requirements")
