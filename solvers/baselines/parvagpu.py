"""ParvaGPU (Lee et al., SC'24: "ParvaGPU: Efficient Spatial GPU Sharing for Large-Scale DNN Inference in Cloud
Environments"), re-implemented from the paper and the public description of its scheduler.

Two stages, both deterministic:

1. Configurator ("optimal triplet decision", then "demand matching").  For every service, every profiled triplet
   (MIG instance size, batch, MPS processes <= max_procs) whose batch latency is below half the SLO budget
   (ParvaGPU: latency < 0.9 * SLO / 2, i.e. the instance margin slo_factor 0.9 and the one-cycle rule, strict) is a
   candidate; the *optimal* triplet has the highest throughput per GPC (first found in size, batch, process order),
   and the best triplet of every instance size is kept as well.  The service gets n = floor(rate / T_opt) optimal
   segments (one fewer when the rate is an exact multiple), and the rest of its rate goes to one *last* segment: the
   best triplet of the smallest size (1, 2, 3, 4, 7 GPCs in that order) that covers it.
2. Allocator ("segment relocation").  Segments wait in one FIFO queue per size and are placed largest size first,
   each on the GPU with the fewest GPCs left after it (best fit, lowest index on ties; ParvaGPU allows at most one
   3g slice per GPU and uses its own slot order 0 / 4 / 0,4,2 / 0,6,4,1,2,3,5 for 7-4 / 3 / 2 / 1 GPC slices).  Then
   the optimisation pass walks the GPUs from the last to the first; on every GPU with at most 4 GPCs used it removes
   each segment and re-enqueues its throughput as size-2 and size-1 segments (2s first when a 2g point is more than
   twice as productive as a 1g point), carrying any over-provisioned rate of a service to its next re-split, and
   places them best fit again.  The GPU count is the number of GPUs with a slice.

Every segment of size s of a service runs that service's best triplet at size s (as ParvaGPU's output stage does).
Rates are split over a service's segments in proportion to their measured capacity.

Deviations (each keeps the plan valid; none changes the shipped scenarios' GPU counts, see docs/BASELINES.md):
- ParvaGPU's optimisation removes a segment of a service that has neither a 1g nor a 2g triplet and never puts it
  back (the service then under-serves); here such a segment is left in place.
- ParvaGPU writes out of bounds when its slot order finds no free slot (undefined behaviour in C); here a GPU is
  only chosen when the resulting MIG layout is legal (NVIDIA placement rules, `find_mig_starts`), and the slot is
  then the lowest free one.
- On a non-MIG instance the sizes are the mechanism's sizes ("1g"/"2g" are its two smallest) and the fit test is
  the mechanism's layout rule; every placement is also vetted by the checker's per-GPU rules (memory,
  interference), which ParvaGPU does not model.

Options (`--param key=value`): `max_gpus` (default 2000, ParvaGPU's TOTAL_GPU), `optimize` (1: run the
optimisation pass, ParvaGPU's default; 0: its NO_OPTIM build).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

from stsched.plan import Partition, Plan, Tenant
from stsched.problem import Instance, MechanismKind
from stsched.registry import Objective, SolveOptions, SolveResult, register

from solvers.baselines.common import (TOL, alone_capacity, budget, finish, gpu_ok, make_plan,
                                      scale_result, sizes_legal, solo_exec, split_rate, within_time_limit)

log = logging.getLogger(__name__)

# ParvaGPU's slot order per MIG slice size (its internal index, not an NVIDIA start slot; PROVENANCE).
_SLOT_ORDER = {7: (0,), 4: (0,), 3: (4,), 2: (0, 4, 2), 1: (0, 6, 4, 1, 2, 3, 5)}
_OPT_MAX_USED = 4  # GPUs with at most this many GPCs used are re-packed by the optimisation pass


@dataclass(frozen=True)
class Triplet:
    size: float
    batch: int
    procs: int
    throughput: float  # req/s of the segment (procs x measured per-process throughput)
    latency_ms: float


@dataclass
class Config:
    """The configurator's output for one service."""

    service: str
    rate: float
    optimal: Triplet
    n_optimal: int
    per_size: dict[float, Triplet]
    last: Triplet | None


@dataclass
class Gpu:
    index: int
    slots: dict[int, tuple[str, float]] = field(default_factory=dict)  # slot -> (service, size)

    @property
    def used(self) -> float:
        return sum(size for _, size in self.slots.values())


class Configurator:
    """ParvaGPU's optimal-triplet decision and demand matching."""

    def __init__(self, instance: Instance):
        self.instance = instance

    def triplets(self, service: str) -> list[Triplet]:
        inst = self.instance
        limit = budget(inst, service)
        out = []
        for size in sorted(inst.mechanism.sizes):
            for b in sorted(inst.batches):
                for k in inst.procs_options():
                    e = solo_exec(inst, service, b, size, k)
                    if e is None or not 2 * e < limit:  # strict, as ParvaGPU's `latency < 0.9 * SLO / 2`
                        continue
                    out.append(Triplet(size, b, k, alone_capacity(inst, service, b, size, k, e), e))
        return out

    def configure(self, service: str, rate: float) -> Config | None:
        optimal, per_size = None, {}
        for t in self.triplets(service):
            per_gpc = t.throughput / t.size
            if optimal is None or per_gpc > optimal.throughput / optimal.size:
                optimal = t
            best = per_size.get(t.size)
            if best is None or per_gpc > best.throughput / best.size:
                per_size[t.size] = t
        if optimal is None:
            return None
        n = math.floor(rate / optimal.throughput)
        if math.fmod(rate, optimal.throughput) == 0:
            n -= 1
        rest = rate - n * optimal.throughput
        last = next((per_size[s] for s in sorted(per_size) if rest <= per_size[s].throughput), None)
        return Config(service, rate, optimal, n, per_size, last)


class Allocator:
    """ParvaGPU's segment relocation on up to `max_gpus` GPUs."""

    def __init__(self, instance: Instance, configs: dict[str, Config], max_gpus: int):
        self.instance = instance
        self.configs = configs
        self.max_gpus = max_gpus
        self.gpus: list[Gpu] = []  # grown on demand; ParvaGPU pre-allocates max_gpus empty GPUs
        self.sizes_desc = sorted(instance.mechanism.sizes, reverse=True)
        self.queues: dict[float, deque[str]] = {s: deque() for s in self.sizes_desc}
        small = sorted(instance.mechanism.sizes)
        self.size1 = small[0]
        self.size2 = small[1] if len(small) > 1 else None
        self.mig = instance.mechanism.kind is MechanismKind.MIG
        self.failed = False

    # -- placement ---------------------------------------------------------------------------------------------
    def _segments(self, gpu: Gpu) -> list[tuple[str, float]]:
        return [gpu.slots[k] for k in sorted(gpu.slots)]

    def _layout(self, segments: list[tuple[str, float]]):
        from stsched.plan import GpuLayout
        parts = []
        for svc, size in segments:
            t = self.configs[svc].per_size[size]
            parts.append(Partition(size, (Tenant(svc, t.batch, t.throughput),), procs=t.procs))
        return GpuLayout(tuple(parts))

    def _fits(self, gpu: Gpu, service: str, size: float) -> bool:
        cap = self.instance.mechanism.capacity
        if cap - gpu.used < size - TOL:
            return False
        sizes = [s for _, s in gpu.slots.values()]
        if self.mig and size == 3:  # ParvaGPU: a 3g slice only at its slot 4, so at most one per GPU
            if gpu.slots.get(4, ("", 0))[1] == 3:
                return False
        if self.mig and size == 1 and gpu.slots.get(0, ("", 0))[1] == 3 and gpu.slots.get(4, ("", 0))[1] == 3:
            return False
        if not sizes_legal(self.instance, sizes + [size]):
            return False
        return gpu_ok(self.instance, self._layout(self._segments(gpu) + [(service, size)]))

    def _slot(self, gpu: Gpu, size: float) -> int:
        for k in _SLOT_ORDER.get(int(size), ()) if self.mig else ():
            if k not in gpu.slots:
                return k
        k = 0
        while k in gpu.slots:
            k += 1
        return k

    def _place(self, service: str, size: float) -> bool:
        best, best_left = None, math.inf
        cap = self.instance.mechanism.capacity
        seen_empty = False
        for gpu in self._candidates():
            if not gpu.slots:  # empty GPUs tie; the lowest index wins, so only the first one matters
                if seen_empty:
                    continue
                seen_empty = True
            left = cap - gpu.used - size
            if left < best_left - TOL and self._fits(gpu, service, size):
                best, best_left = gpu, left
        if best is None:
            return False
        best.slots[self._slot(best, size)] = (service, size)
        return True

    def _candidates(self) -> list[Gpu]:
        if (not self.gpus or self.gpus[-1].slots) and len(self.gpus) < self.max_gpus:
            self.gpus.append(Gpu(len(self.gpus)))
        return self.gpus

    def dequeue(self, count: int) -> None:
        for _ in range(count):
            size = next((s for s in self.sizes_desc if self.queues[s]), None)
            if size is None:
                return
            service = self.queues[size].popleft()
            if not self._place(service, size):
                self.failed = True
                return

    # -- the two passes ----------------------------------------------------------------------------------------
    def relocate(self, order: list[str]) -> None:
        count = 0
        for svc in order:
            cfg = self.configs[svc]
            for _ in range(max(cfg.n_optimal, 0)):
                self.queues[cfg.optimal.size].append(svc)
                count += 1
            if cfg.last is not None:
                self.queues[cfg.last.size].append(svc)
                count += 1
        self.dequeue(count)

    def optimize(self) -> None:
        carry: dict[str, float] = {svc: 0.0 for svc in self.configs}
        for gpu in reversed(self.gpus):
            if not gpu.slots or gpu.used > _OPT_MAX_USED:
                continue
            for k in range(int(self.instance.mechanism.capacity)):
                if k not in gpu.slots:
                    continue
                svc, size = gpu.slots[k]
                cfg = self.configs[svc]
                one = cfg.per_size.get(self.size1)
                two = cfg.per_size.get(self.size2) if self.size2 is not None else None
                if one is None and two is None:
                    log.debug("parvagpu: %s has no 1g/2g triplet; its segment stays (ParvaGPU drops it)", svc)
                    continue
                carry[svc] += cfg.per_size[size].throughput
                del gpu.slots[k]
                count = 0
                if two is not None and (one is None or two.throughput / 2 > one.throughput):
                    n2 = (math.ceil if one is None else math.floor)(carry[svc] / two.throughput)
                    for _ in range(max(n2, 0)):
                        self.queues[self.size2].append(svc)
                        carry[svc] -= two.throughput
                        count += 1
                if one is not None:
                    n1 = math.ceil(carry[svc] / one.throughput)
                    for _ in range(max(n1, 0)):
                        self.queues[self.size1].append(svc)
                        carry[svc] -= one.throughput
                        count += 1
                self.dequeue(count)
                if self.failed:
                    return

    def plan(self, solver: str) -> Plan:
        segments: dict[str, list[tuple[int, int, float]]] = {}
        for gpu in self.gpus:
            for k, (svc, size) in gpu.slots.items():
                segments.setdefault(svc, []).append((gpu.index, k, size))
        shares: dict[tuple[int, int], float] = {}
        for svc, segs in segments.items():
            caps = [self.configs[svc].per_size[size].throughput for _, _, size in segs]
            for (gi, k, _), share in zip(segs, split_rate(self.configs[svc].rate, caps)):
                shares[(gi, k)] = share
        layouts = []
        for gpu in self.gpus:
            parts = []
            for k in sorted(gpu.slots):
                svc, size = gpu.slots[k]
                t = self.configs[svc].per_size[size]
                parts.append(Partition(size, (Tenant(svc, t.batch, shares[(gpu.index, k)]),), procs=t.procs))
            layouts.append(sorted(parts, key=lambda p: -p.size))
        return make_plan(layouts, solver)


def parvagpu_pack(instance: Instance, max_gpus: int = 2000, optimize: bool = True,
                  solver: str = "parvagpu") -> tuple[Plan | None, str]:
    """ParvaGPU's plan for `instance` (no GPU limit but `max_gpus`), with a message."""
    conf = Configurator(instance)
    configs: dict[str, Config] = {}
    order = sorted(s.name for s in instance.services if s.rate > 0)  # ParvaGPU's model index: file-name order
    for name in order:
        cfg = conf.configure(name, instance.service(name).rate)
        if cfg is None:
            return None, f"{name}: no triplet below half the SLO budget"
        configs[name] = cfg
    alloc = Allocator(instance, configs, max_gpus)
    alloc.relocate(order)
    if not alloc.failed and optimize:
        alloc.optimize()
    if alloc.failed:
        return None, f"ran out of GPUs ({max_gpus})"
    return alloc.plan(solver), ""


@dataclass(frozen=True)
class ParvaOptions:
    """Options of the parvagpu baseline (`--param key=value`).

    max_gpus: GPUs the allocator may open (ParvaGPU's TOTAL_GPU).
    optimize: run the optimisation pass (ParvaGPU's default; 0: its NO_OPTIM build).
    """

    max_gpus: int = 2000
    optimize: bool = True

    def __post_init__(self) -> None:
        if self.max_gpus < 1:
            raise ValueError(f"max_gpus must be >= 1, got {self.max_gpus}")


@register("parvagpu", "baseline", "ParvaGPU (SC'24): MIG x MPS segments, configurator + allocator",
          (Objective.MIN_GPUS, Objective.MAX_SCALE), late_share=False, options=ParvaOptions)
class ParvaGPU:
    @within_time_limit
    def solve(self, instance: Instance, options: SolveOptions) -> SolveResult:
        opts = options.typed(ParvaOptions, "parvagpu")
        max_gpus, optimize = opts.max_gpus, opts.optimize

        def pack(inst: Instance) -> Plan | None:
            plan, _ = parvagpu_pack(inst, max_gpus, optimize)
            return plan if plan is not None and plan.gpus_used <= inst.gpus else None

        if options.objective is Objective.MAX_SCALE:
            return scale_result("parvagpu", instance, pack, options)
        plan, msg = parvagpu_pack(instance, max_gpus, optimize)
        return finish("parvagpu", instance, plan, options, msg)
