"""The registered solver "heuristic": stsched's own spatial-temporal scheme (docs/HEURISTIC.md)."""

from __future__ import annotations

import logging
import math
import time

from stsched.bounds import efficiency, infeasible_services, lp_bound_gpus, lp_bound_scale
from stsched.heuristic.adapt import run_adapt
from stsched.heuristic.driver import max_scale, min_gpus
from stsched.heuristic.model import build_context
from stsched.heuristic.options import HeuristicOptions
from stsched.problem import Instance
from stsched.solve import Objective, SolveOptions, SolveResult, Status, register

log = logging.getLogger(__name__)


@register("heuristic", "heuristic",
          "stsched's spatial-temporal heuristic: knee-sized partitions, shared residual partitions, local search",
          objectives=(Objective.MIN_GPUS, Objective.MAX_SCALE, Objective.ADAPT))
class HeuristicSolver:
    """Spatial step (knee sizes, saturated partitions), temporal step (residual loads sharing partitions with
    batches and duty cycles under the latency rule), conservative interference, bounded local search; options
    are `HeuristicOptions` given as `--param key=value`."""

    name = "heuristic"

    def solve(self, instance: Instance, options: SolveOptions) -> SolveResult:
        t0 = time.perf_counter()
        opts = HeuristicOptions.from_params(options.params)
        deadline = t0 + options.time_limit_s
        obj = options.objective
        if obj is Objective.MAX_SCALE:
            bad = tuple(s.name for s in instance.services if efficiency(instance, s.name).per_unit == 0.0)
        else:
            bad = tuple(infeasible_services(instance))
        if bad:
            return SolveResult(self.name, Status.INFEASIBLE, message="cannot be served: " + ", ".join(bad),
                               infeasible_services=bad, discretisation=_disc())
        ctx = build_context(instance, opts)
        if obj is Objective.MIN_GPUS:
            out = min_gpus(ctx, deadline, options.seed)
            bound = lp_bound_gpus(instance)
            status = Status.UNKNOWN if out.plan is None else (
                Status.OPTIMAL if out.value is not None and out.value <= bound else Status.FEASIBLE)
        elif obj is Objective.MAX_SCALE:
            out = max_scale(ctx, deadline, options.seed, options.max_scale_tol)
            bound = lp_bound_scale(instance)
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
        return SolveResult(self.name, status, out.value, bound, time.perf_counter() - t0, out.plan,
                           discretisation=_disc(), message=out.note)


def _disc() -> str:
    return ("instance grid (batches, sizes, procs); conservative interference over every batch a neighbour may "
            "run; duty cycle = least fixed point of the batch requirements")
