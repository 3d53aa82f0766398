"""iGniter (Xu et al., "iGniter: Interference-Aware GPU Resource Provisioning for Predictable DNN Inference in the
Cloud", IEEE TPDS 2023), re-implemented from the paper and the public description of its provisioning algorithm.

iGniter gives every workload its own MPS share (no time sharing) and provisions greedily:
1. Every SLO is halved (a request may wait one batch, then runs: the one-cycle rule).  The batch is the number of
   requests that arrive within that half (net of the PCIe input transfer in the analytical model), and the lower
   bound r_lower is the smallest share (in 2.5 % units) that meets the halved SLO alone.
2. Workloads are placed in decreasing r_lower (first-fit-decreasing order).  For every open GPU, the workload is
   added at r_lower and the shares of every workload on that GPU whose *predicted* co-located latency misses its
   halved SLO are raised one unit at a time until all meet it or the shares exceed the GPU; the GPU that needs the
   smallest extra share wins (the first on ties), else a new GPU is opened.

The latency predictor is iGniter's own analytical model (`igniter_model.IgniterModel`: L2 contention, scheduling
idle time, power capping, PCIe) when the instance's models are in its V100 profile ("analytic" mode), else the
instance's own latency table and interference form through `stsched.timing` ("table" mode: the unit is the step to
the next allowed partition size).  Either way every placement is vetted by the checker's per-GPU rules.

Deviations (docs/BASELINES.md): a workload whose rate no single GPU can serve is split into k equal parts (iGniter
stops with "workload is too large"); a workload opening a new GPU goes through the same share-raising loop (iGniter
places it at r_lower unchecked); in table mode the batch is the smallest allowed batch >= iGniter's batch and the
partition must also be credited with the rate under the instance's throughput rule.

Options (`--param key=value`): `model` = auto | analytic | table (auto: analytic when every model is in iGniter's
profile, the device is a V100 and the instance's sizes include iGniter's 2.5 % grid, as `analytic_instance` builds), `config` = path of iGniter's profile, `max_split` (default 64).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Instance
from stsched.registry import Objective, SolveOptions, SolveResult, register
from stsched.timing import gpu_timings

from solvers.baselines.common import (TOL, budget, finish, gpu_ok, make_plan, scale_result, sizes_legal,
                                      solo_exec, tenant_capacity, within_time_limit)
from solvers.baselines.igniter_model import IgniterModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workload:
    service: str
    model: str
    rate: float
    target_ms: float  # the halved SLO budget
    batch: int
    lower: float  # r_lower


@lru_cache(maxsize=4)
def _analytic_model(path: str | None) -> IgniterModel:
    return IgniterModel.from_config(path)


class Predictor:
    """Latency of every workload of one GPU given their shares, and the share grid."""

    def __init__(self, instance: Instance):
        self.instance = instance

    def sizes(self) -> list[float]:
        return sorted(self.instance.mechanism.sizes)

    def next_size(self, size: float) -> float | None:
        return next((s for s in self.sizes() if s > size + TOL), None)

    def layout(self, items: list[tuple[Workload, float]]) -> GpuLayout:
        return GpuLayout(tuple(Partition(r, (Tenant(w.service, w.batch, w.rate),)) for w, r in items))

    def limit(self, w: Workload) -> float:
        return w.target_ms

    def latencies(self, items: list[tuple[Workload, float]]) -> list[float]:
        raise NotImplementedError

    def batch(self, service: str, model: str, rate: float, target: float) -> int | None:
        raise NotImplementedError

    def lower(self, w: Workload) -> float | None:
        raise NotImplementedError

    def meets(self, w: Workload, size: float, latency: float) -> bool:
        return latency <= self.limit(w) * (1 + TOL)


class TablePredictor(Predictor):
    """The instance's own latency table, margin and interference form (stsched.timing)."""

    def latencies(self, items):
        timings = gpu_timings(self.instance, self.layout(items))
        return [row[0].exec_ms if row[0].exec_ms is not None else math.inf for row in timings]

    def batch(self, service, model, rate, target):
        want = max(1, math.ceil(target * rate / 1000.0 - TOL))
        allowed = sorted(self.instance.batches)
        return next((b for b in allowed if b >= want), allowed[-1])

    def meets(self, w, size, latency):
        if not latency <= w.target_ms * (1 + TOL):
            return False
        cap = tenant_capacity(self.instance, w.service, w.batch, size, 1, latency, latency, 1)
        return cap >= w.rate * (1 - TOL)

    def lower(self, w):
        for r in self.sizes():
            e = solo_exec(self.instance, w.service, w.batch, r)
            if e is not None and self.meets(w, r, e):
                return r
        return None


class AnalyticPredictor(Predictor):
    """iGniter's analytical model on its 2.5 % grid."""

    def __init__(self, instance: Instance, model: IgniterModel):
        super().__init__(instance)
        self.model = model

    def next_size(self, size):
        nxt = size + self.model.hardware.unit
        return nxt if nxt <= 100.0 + TOL else None

    def latencies(self, items):
        return self.model.predict([w.model for w, _ in items], [w.batch for w, _ in items], [r for _, r in items])

    def batch(self, service, model, rate, target):
        return self.model.batch_for(model, rate, target)

    def lower(self, w):
        r = self.model.lower_share(w.model, w.batch, w.target_ms)
        if r is None or r > 100.0 + TOL:
            return None
        return max(r, self.model.hardware.unit)


def make_predictor(instance: Instance, mode: str, config: str | None) -> Predictor:
    if mode == "table":
        return TablePredictor(instance)
    model = _analytic_model(config)
    unit = model.hardware.unit
    grid = {round(unit * k, 6) for k in range(1, int(round(100.0 / unit)) + 1)}
    usable = (all(model.has(s.model) for s in instance.services) and instance.device.name.startswith("v100")
              and grid <= {round(s, 6) for s in instance.mechanism.sizes})
    if mode == "analytic" or (mode == "auto" and usable):
        if not all(model.has(s.model) for s in instance.services):
            raise ValueError("analytic mode needs every model in iGniter's profile")
        return AnalyticPredictor(instance, model)
    return TablePredictor(instance)


def workloads(instance: Instance, pred: Predictor, max_split: int) -> list[Workload] | None:
    """Step 1: halved SLOs, batches and r_lower (splitting a workload no GPU can serve alone into k parts)."""
    out = []
    for s in instance.services:
        if s.rate <= 0:
            continue
        target = budget(instance, s.name) / 2.0
        for k in range(1, max_split + 1):
            rate = s.rate / k
            b = pred.batch(s.name, s.model, rate, target)
            if b is None:
                continue
            w = Workload(s.name, s.model, rate, target, b, 0.0)
            lower = pred.lower(w)
            if lower is not None:
                out.extend(Workload(s.name, s.model, rate, target, b, lower) for _ in range(k))
                break
        else:
            log.info("igniter: %s cannot be served even split into %d parts", s.name, max_split)
            return None
    return out


def raise_shares(pred: Predictor, items: list[tuple[Workload, float]]) -> list[tuple[Workload, float]] | None:
    """iGniter's alloc_gpus loop: raise each violating workload by one unit until all meet their halved SLO."""
    items = list(items)
    cap = pred.instance.mechanism.capacity
    while True:
        lat = pred.latencies(items)
        bad = [i for i, ((w, r), l) in enumerate(zip(items, lat)) if not pred.meets(w, r, l)]
        if not bad:
            break
        for i in bad:
            nxt = pred.next_size(items[i][1])
            if nxt is None:
                return None
            items[i] = (items[i][0], nxt)
        if sum(r for _, r in items) > cap * (1 + TOL):
            return None
    if sum(r for _, r in items) > cap * (1 + TOL) or not sizes_legal(pred.instance, [r for _, r in items]):
        return None
    if not gpu_ok(pred.instance, pred.layout(items)):
        return None
    return items


def igniter_pack(instance: Instance, pred: Predictor, max_split: int = 64) -> tuple[list | None, str]:
    """Step 2: greedy placement in decreasing r_lower; returns the GPUs' (workload, share) lists."""
    work = workloads(instance, pred, max_split)
    if work is None:
        return None, "a workload cannot meet its halved SLO on a whole GPU"
    order = sorted(range(len(work)), key=lambda i: -work[i].lower)  # stable: input order on ties
    gpus: list[list[tuple[Workload, float]]] = []
    for i in order:
        w = work[i]
        best, best_extra = None, math.inf
        for j, items in enumerate(gpus):
            trial = raise_shares(pred, items + [(w, w.lower)])
            if trial is None:
                continue
            extra = sum(r for _, r in trial) - sum(r for _, r in items)
            if extra < best_extra:
                best, best_extra = (j, trial), extra
        if best is not None:
            gpus[best[0]] = best[1]
            continue
        alone = raise_shares(pred, [(w, w.lower)])
        if alone is None:
            return None, f"{w.service} cannot be placed on an empty GPU"
        gpus.append(alone)
    return gpus, ""


def to_plan(gpus: list[list[tuple[Workload, float]]]) -> Plan:
    return make_plan(([Partition(r, (Tenant(w.service, w.batch, w.rate),)) for w, r in items] for items in gpus),
                     "igniter")


@dataclass(frozen=True)
class IgniterOptions:
    """Options of the igniter baseline (`--param key=value`).

    model: auto | analytic | table (auto: analytic when every model is in iGniter's profile, the device is a V100
      and the instance's sizes include iGniter's 2.5 % grid, as `analytic_instance` builds).
    config: path of iGniter's profile (empty: the shipped one).
    max_split: a workload no single GPU can serve is split into at most this many equal parts.
    """

    model: str = "auto"
    config: str = ""
    max_split: int = 64

    def __post_init__(self) -> None:
        if self.model not in ("auto", "analytic", "table"):
            raise ValueError(f"model must be auto, analytic or table, got {self.model!r}")
        if self.max_split < 1:
            raise ValueError(f"max_split must be >= 1, got {self.max_split}")


@register("igniter", "baseline", "iGniter (TPDS'23): interference-aware greedy MPS provisioning, one workload per share",
          (Objective.MIN_GPUS, Objective.MAX_SCALE), late_share=False, options=IgniterOptions)
class IGniter:
    @within_time_limit
    def solve(self, instance: Instance, options: SolveOptions) -> SolveResult:
        opts = options.typed(IgniterOptions, "igniter")
        mode, config, max_split = opts.model, opts.config or None, opts.max_split
        pred_mode = make_predictor(instance, mode, config)
        label = "analytic" if isinstance(pred_mode, AnalyticPredictor) else "table"

        def pack(inst: Instance) -> Plan | None:
            gpus, _ = igniter_pack(inst, make_predictor(inst, label, config), max_split)
            if gpus is None or len(gpus) > inst.gpus:
                return None
            return to_plan(gpus)

        if options.objective is Objective.MAX_SCALE:
            res = scale_result("igniter", instance, pack, options)
            return res
        gpus, msg = igniter_pack(instance, pred_mode, max_split)
        plan = to_plan(gpus) if gpus is not None else None
        return finish("igniter", instance, plan, options, f"latency model: {label}" + (f"; {msg}" if msg else ""))
