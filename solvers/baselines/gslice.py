"""GSLICE-like spatial-only sharing (after Dhakal et al., "GSLICE: Controlled Spatial Sharing of GPUs for a
Scalable Inference Platform", SoCC'20, and the "greedy_part" self-tuning baseline of gpulet, USENIX ATC'22).

Every service runs in partitions of its own (no time sharing between services), each right-sized to its load:
1. Right-sizing (GSLICE's self-tuning, as gpulet's re-implementation does it): while a service has rate left, take
   the smallest partition size whose saturated throughput (best batch meeting 2 e <= SLO) exceeds the rate left,
   or the most productive size when none does; its batch is then the smallest one that still covers the rate
   it serves (adaptive batching: the lowest latency at that load).
2. Placement: partitions in decreasing size, each on the first GPU where it fits (first-fit decreasing), where
   "fits" is the mechanism's layout rule plus every per-GPU rule of the checker (memory, and the interference form:
   a partition that would push a neighbour past its SLO or capacity goes elsewhere); else a new GPU.

GSLICE itself tunes partitions online on one GPU; this static version keeps its one-service-per-partition rule and
its right-sizing, and packs with first-fit decreasing.  On MIG instances the sizes are MIG slices with one process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Instance
from stsched.registry import Objective, SolveOptions, SolveResult, register

from solvers.baselines.common import (TOL, best_point, finish, gpu_ok, make_plan, scale_result, sizes_legal,
                                      smallest_covering_batch, within_time_limit)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    service: str
    size: float
    batch: int
    rate: float

    def partition(self) -> Partition:
        return Partition(self.size, (Tenant(self.service, self.batch, self.rate),))


def right_size(instance: Instance, service: str, rate: float, max_segments: int = 10_000) -> list[Segment] | None:
    """GSLICE's right-sized partitions for one service (None when no partition meets its SLO)."""
    sizes = sorted(instance.mechanism.sizes)
    best = {s: best_point(instance, service, s) for s in sizes}
    usable = [s for s in sizes if best[s] is not None]
    if not usable:
        return None
    top = max(usable, key=lambda s: (best[s].capacity, -s))
    out, left = [], rate
    while left > rate * TOL and len(out) < max_segments:
        size = next((s for s in usable if best[s].capacity >= left * (1 - TOL)), top)
        serve = min(left, best[size].capacity)
        point = smallest_covering_batch(instance, service, size, serve) or best[size]
        out.append(Segment(service, size, point.batch, serve))
        left -= serve
    return out if left <= rate * TOL else None


def gslice_plan(instance: Instance) -> tuple[Plan | None, str]:
    segments: list[Segment] = []
    for s in instance.services:
        if s.rate <= 0:
            continue
        segs = right_size(instance, s.name, s.rate)
        if segs is None:
            return None, f"{s.name}: no partition meets its SLO"
        segments.extend(segs)
    segments.sort(key=lambda g: -g.size)  # stable: service order on ties
    gpus: list[list[Partition]] = []
    for seg in segments:
        part = seg.partition()
        for parts in gpus:
            if sizes_legal(instance, [p.size for p in parts] + [seg.size]) and \
                    gpu_ok(instance, GpuLayout(tuple(parts + [part]))):
                parts.append(part)
                break
        else:
            if not gpu_ok(instance, GpuLayout((part,))):
                return None, f"{seg.service}: a {seg.size:g} partition breaks a per-GPU rule on its own"
            gpus.append([part])
    return make_plan(gpus, "gslice"), ""


@register("gslice", "baseline", "GSLICE-like spatial-only sharing: one service per right-sized partition",
          (Objective.MIN_GPUS, Objective.MAX_SCALE), late_share=False)
class GSlice:
    @within_time_limit
    def solve(self, instance: Instance, options: SolveOptions) -> SolveResult:
        def pack(inst: Instance) -> Plan | None:
            plan, _ = gslice_plan(inst)
            return plan if plan is not None and plan.gpus_used <= inst.gpus else None

        if options.objective is Objective.MAX_SCALE:
            return scale_result("gslice", instance, pack, options)
        plan, msg = gslice_plan(instance)
        return finish("gslice", instance, plan, options, msg)
