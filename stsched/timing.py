"""Execution times of a GPU's tenants under the instance's latency table, margin and interference form.

`e_s = L_s(b_s, p, procs) * latency_factor * I_s(q)`: the one definition the checker, the simulator and the
solvers share.  The interference slowdown is the worst case over the tenants of every other partition of the GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stsched.interference import Features, aggregate_slowdown, get_form
from stsched.plan import GpuLayout, Partition
from stsched.problem import Instance


@dataclass(frozen=True)
class TenantTiming:
    """Timing of one tenant: solo time (margin applied), slowdown and the resulting execution time (ms)."""

    service: str
    solo_ms: float | None  # None: the table has no entry at (batch, size, procs)
    slowdown: float
    exec_ms: float | None


def features(instance: Instance, service: str, batch: int, size: float, procs: int = 1) -> Features | None:
    """The interference features of a tenant, or None when the table lacks them (utilisation counts as lacking
    only for a form that reads it; a counter-free form gets NaN there)."""
    e = instance.entry(service, batch, size, procs)
    if e is None:
        return None
    l2, dram = e.l2_util, e.dram_util
    if l2 is None or dram is None:
        if get_form(instance.interference.form).reads_util:
            return None
        l2 = dram = math.nan  # in the features only: a profile entry holds None for what was not measured
    el = e.sm_elasticity if e.sm_elasticity is not None else table_elasticity(instance, service, batch, size, procs)
    return Features(l2, dram, instance.mechanism.fraction(size), e.latency_ms, batch, el)


def table_elasticity(instance: Instance, service: str, batch: int, size: float, procs: int = 1) -> float:
    """-d ln L / d ln size from the table's neighbouring sizes (mean of the adjacent segments; 1 when alone)."""
    sizes = instance.mechanism.sizes
    here = instance.entry(service, batch, size, procs)
    slopes = []
    i = min(range(len(sizes)), key=lambda j: abs(sizes[j] - size))
    for j in (i - 1, i + 1):
        if 0 <= j < len(sizes):
            other = instance.entry(service, batch, sizes[j], procs)
            if other is not None and here is not None and sizes[j] != size:
                slopes.append(-(math.log(other.latency_ms) - math.log(here.latency_ms))
                              / (math.log(sizes[j]) - math.log(size)))
    return sum(slopes) / len(slopes) if slopes else 1.0


def partition_features(instance: Instance, p: Partition) -> list[Features]:
    found = (features(instance, t.service, t.batch, p.size, p.procs) for t in p.tenants if instance.has_service(t.service))
    return [f for f in found if f is not None]


def slowdown(instance: Instance, victim: Features | None, neighbours: list[list[Features]]) -> float:
    form = get_form(instance.interference.form)
    if not form.needs_features:
        return form.pair(instance.interference.coef, victim, victim) if victim else 1.0
    if victim is None or not any(neighbours):
        return 1.0
    return aggregate_slowdown(form, instance.interference.coef, victim, neighbours)


def layout_shape(layout: GpuLayout) -> tuple:
    """What `gpu_timings` reads of a GPU: every partition's size and processes and its tenants' services and
    batches (not their rates, duty cycles or start slots)."""
    return tuple((p.size, p.procs, tuple((t.service, t.batch) for t in p.tenants)) for p in layout.partitions)


class TimingMemo:
    """`gpu_timings` of one instance, computed once per distinct `layout_shape`: a plan on many GPUs repeats a
    few layouts (gpulet m2 on 100,000 GPUs: 96,165 GPUs, a handful of shapes), and the checker, the safety
    warning and a solver's own check each evaluated every GPU again (18 s of a 10 s solve's 44 s more).  The
    lists returned are shared between GPUs of one shape: read them, do not change them."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self._memo: dict[tuple, list[list[TenantTiming]]] = {}

    def __call__(self, layout: GpuLayout) -> list[list[TenantTiming]]:
        key = layout_shape(layout)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = gpu_timings(self.instance, layout)
        return hit


def gpu_timings(instance: Instance, layout: GpuLayout) -> list[list[TenantTiming]]:
    """Timing of every tenant of every partition of one GPU."""
    feats = [partition_features(instance, p) for p in layout.partitions]
    out: list[list[TenantTiming]] = []
    for qi, p in enumerate(layout.partitions):
        neighbours = [f for qj, f in enumerate(feats) if qj != qi and f]
        row: list[TenantTiming] = []
        for t in p.tenants:
            if not instance.has_service(t.service):
                row.append(TenantTiming(t.service, None, 1.0, None))
                continue
            solo = instance.solo_ms(t.service, t.batch, p.size, p.procs)
            if solo is None:
                row.append(TenantTiming(t.service, None, 1.0, None))
                continue
            i = slowdown(instance, features(instance, t.service, t.batch, p.size, p.procs), neighbours)
            row.append(TenantTiming(t.service, solo, i, solo * i))
        out.append(row)
    return out


def cycle_ms(timings: list[TenantTiming]) -> float:
    """The shortest legal duty cycle of a partition: the sum of its tenants' execution times."""
    return sum(t.exec_ms for t in timings if t.exec_ms is not None)
