"""Per-batch interference slowdowns drawn from a latency model's predictive distribution (`stsched simulate
--interference-noise MODEL`).

The checker and the simulator charge every batch the instance's interference slowdown I_inst (the carried form's
worst case over the neighbours).  With a predictive distribution of the same form (`stsched.latency.uncertainty`,
saved by `stsched fit`), each batch of a partition that has a neighbouring partition with tenants is instead
charged a draw D = max(1, I_point x exp(f(u))), u uniform, f the calibrated log-quantile function, I_point the
form's point prediction (for an instance carrying a `@quantile` twin: the twin's base form): the execution time
is scaled by D / I_inst.  A partition alone on its GPU has no neighbour and keeps I = 1.  Draws are per batch, in
dispatch order, shared by the partition's tenants: a partition time-sharing several tenants uses the one with
the smallest I_inst (the least slowed) for the ratio -- an approximation the module names.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from stsched.errors import InputError
from stsched.interference import QUANTILE_SUFFIX
from stsched.plan import Plan
from stsched.problem import Instance, Interference
from stsched.simulation.simulator import BatchFactors, PartitionTiming
from stsched.timing import gpu_timings


def base_interference(instance: Instance) -> Interference:
    """The point form behind the instance's interference (a `@quantile` twin without its factor)."""
    inter = instance.interference
    if inter.form.endswith(QUANTILE_SUFFIX):
        return Interference(inter.form[: -len(QUANTILE_SUFFIX)], tuple(inter.coef[:-1]))
    return inter


def predictive_factors(instance: Instance, plan: Plan, predictive: Any) -> BatchFactors:
    """The `batch_factors` of `stsched.simulation.run_plan` drawing each batch's slowdown from `predictive` (a
    `stsched.latency.uncertainty.Predictive` of the instance's base form)."""
    base = base_interference(instance)
    if base.form == "none":
        raise InputError(f"instance {instance.name!r} carries no interference form: no slowdown to draw")
    if predictive.form != base.form:
        raise InputError(f"the predictive distribution is of form {predictive.form!r}, the instance carries "
                         f"{base.form!r}")
    point_inst = replace(instance, interference=base)
    ratio: dict[tuple[int, int], tuple[float, float]] = {}  # (gpu, partition) -> (I_point, I_inst)
    for gi, gpu in enumerate(plan.gpus):
        busy = [qi for qi, p in enumerate(gpu.partitions) if p.tenants]
        if len(busy) < 2:
            continue
        t_inst, t_point = gpu_timings(instance, gpu), gpu_timings(point_inst, gpu)
        for qi in busy:
            j = int(np.argmin([t.slowdown for t in t_inst[qi]]))
            ratio[(gi, qi)] = (t_point[qi][j].slowdown, t_inst[qi][j].slowdown)

    def draw(pt: PartitionTiming, n: int, rng: np.random.Generator) -> np.ndarray | None:
        if (pt.gpu, pt.partition) not in ratio:
            return None
        point, inst = ratio[(pt.gpu, pt.partition)]
        return predictive.sample(np.full(n, point), rng) / inst

    return draw
