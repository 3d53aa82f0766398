"""Cheap bounds for reports: `stsched.bounds` (capacity divisible) and a stronger LP that keeps the GPU layouts.

`lp_relaxation(instance, objective)` solves the LP relaxation of the slots model (solvers/patterns.py) restricted
to one-tenant configurations timed solo, with every layout's slots:

    min  sum_L y_L                      (min-gpus)        max alpha  s.t. sum_L y_L <= G   (max-scale)
    s.t. sum_{c of size p} x_c <= sum_L n_L(p) y_L        for every partition size p
         sum_c cap_{c,s} x_c >= alpha * rate_s           for every service s (alpha = 1 for min-gpus)
         x, y >= 0 (continuous)

Why it bounds every valid plan: a partition time-shared by tenants i with cycle d = sum e_i credits tenant i with
1000 b_i / d = (e_i / d) * (1000 b_i / e_i), a convex combination (weights e_i / d summing to 1) of one-tenant
configurations of the same size that each meet 2 e_i <= d + e_i <= budget; so one-tenant configurations credited with
max(measured, 1000 b / e) cover it.  Interference only slows tenants down, memory is dropped, and every legal layout
is contained in an inclusion-maximal one.  It is at least as strong as `stsched.bounds.lp_gpus` on MPS (same
efficiency, plus slot granularity) and adds MIG's placement losses (e.g. 3g+3g leaves one compute slice unused).

Note: `stsched.bounds.lp_gpus` credits one-tenant points with the measured throughput only under the measured rule,
while the checker credits time-shared partitions with the cycle rule, which can exceed it; where the instance allows
several tenants per partition this LP is the one to hold solvers against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from stsched.bounds import efficiency, infeasible_services, point_capacity
from stsched.problem import Instance
from stsched.solve import Objective


@dataclass(frozen=True)
class LpBound:
    """`value`: fractional GPUs (min-gpus, a lower bound; round up for an integer one) or alpha (max-scale, an upper
    bound); inf / 0 when some service has no configuration meeting its SLO."""

    value: float
    objective: Objective
    configs: int
    layouts: int

    @property
    def gpus(self) -> float:
        return math.inf if math.isinf(self.value) else max(1, math.ceil(self.value - 1e-6))


def unservable(instance: Instance, objective: Objective) -> dict[str, str]:
    """Services no plan can serve, with the reason: `stsched.bounds.infeasible_services` for min-gpus; for max-scale
    only the SLO reason counts (any rate can be scaled down)."""
    bad = infeasible_services(instance)
    if objective is Objective.MAX_SCALE:
        bad = {k: v for k, v in bad.items() if efficiency(instance, k).per_unit == 0.0}
    return bad


def lp_relaxation(instance: Instance, objective: Objective = Objective.MIN_GPUS) -> LpBound:
    """The layout-aware LP bound (see module docstring)."""
    from solvers.patterns import enumerate_layouts  # local: patterns imports nothing from here

    sizes = list(instance.mechanism.sizes)
    layouts = enumerate_layouts(instance, maximal=True, limit=10 ** 6)
    active = [s for s in instance.services if s.rate > 0]
    cols: list[tuple[int, int, float]] = []  # (service row, size index, capacity)
    for si, s in enumerate(active):
        best: dict[int, float] = {}
        for pi, p in enumerate(sizes):
            for b in instance.batches:
                for k in instance.procs_options():
                    c = point_capacity(instance, s.name, b, p, k, optimistic=True)
                    if c is not None and c > best.get(pi, 0.0):
                        best[pi] = c
        if not best:
            return LpBound(math.inf if objective is Objective.MIN_GPUS else 0.0, objective, 0, len(layouts))
        cols += [(si, pi, c) for pi, c in best.items()]
    if not active:
        return LpBound(0.0 if objective is Objective.MIN_GPUS else math.inf, objective, 0, len(layouts))
    n_x, n_y = len(cols), len(layouts)
    n = n_x + n_y + 1  # x, y, alpha
    a_ub, b_ub = [], []
    for pi, p in enumerate(sizes):  # slots of size p
        row = np.zeros(n)
        for j, (_, cpi, _) in enumerate(cols):
            if cpi == pi:
                row[j] = 1.0
        for li, L in enumerate(layouts):
            row[n_x + li] = -sum(1 for x in L if x == p)
        a_ub.append(row)
        b_ub.append(0.0)
    for si, s in enumerate(active):  # coverage: alpha * rate - sum cap x <= 0
        row = np.zeros(n)
        for j, (csi, _, c) in enumerate(cols):
            if csi == si:
                row[j] = -c / s.rate
        row[-1] = 1.0
        a_ub.append(row)
        b_ub.append(0.0)
    cost = np.zeros(n)
    bounds = [(0, None)] * (n_x + n_y)
    if objective is Objective.MIN_GPUS:
        cost[n_x:n_x + n_y] = 1.0
        bounds.append((1.0, 1.0))
    else:
        row = np.zeros(n)
        row[n_x:n_x + n_y] = 1.0
        a_ub.append(row)
        b_ub.append(float(instance.gpus))
        cost[-1] = -1.0
        bounds.append((0, None))
    res = linprog(cost, A_ub=np.array(a_ub), b_ub=np.array(b_ub), bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"LP relaxation failed: {res.message}")
    value = float(res.fun) if objective is Objective.MIN_GPUS else float(-res.fun)
    return LpBound(value, objective, n_x, n_y)


__all__ = ["LpBound", "lp_relaxation", "unservable"]
