"""Cheap bounds and feasibility facts every solver can be held against.

The LP relaxation of FORMULATION.md: capacity is divisible and every service is served at its best throughput per
unit of GPU capacity (over all batch sizes, partition sizes and process counts whose solo execution meets the
latency rule).  Time sharing never beats that efficiency (a tenant's cycle is at least its own execution time, and
interference only slows it down), so

    GPUs >= sum_s rate_s / (eff_s * capacity)          (min-gpus lower bound)
    alpha <= G * capacity / sum_s (rate_s / eff_s)      (max-scale upper bound)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stsched.problem import Instance, MechanismKind, ThroughputRule


@dataclass(frozen=True)
class Efficiency:
    """The best single-tenant operating point of a service: requests/s per unit of capacity."""

    service: str
    per_unit: float  # req/s per capacity unit (0: no point meets the SLO)
    batch: int | None = None
    size: float | None = None
    procs: int | None = None
    min_latency_ms: float | None = None  # the smallest 2*e over the whole table (what the SLO is compared to)


def point_capacity(instance: Instance, service: str, batch: int, size: float, procs: int, *,
                   optimistic: bool = False) -> float | None:
    """Req/s one saturated single-tenant partition serves at this point, or None when the SLO is missed.
    `optimistic` (the layout LP bound, `solvers.bounds`): a looser SLO tolerance and, under the measured rule, the
    better of the measured and the cycle rule at any process count."""
    e = instance.entry(service, batch, size, procs)
    if e is None:
        return None
    exec_ms = e.latency_ms * instance.margin.latency_factor
    slack = (1e-6, 1e-9) if optimistic else (1e-9, 0.0)
    if 2 * exec_ms > instance.slo_budget_ms(service) * (1 + slack[0]) + slack[1]:
        return None
    cycle = procs * 1000.0 * instance.margin.credit(batch) / exec_ms
    if instance.throughput_rule is ThroughputRule.MEASURED and e.throughput_rps is not None:
        measured = procs * e.throughput_rps / instance.margin.latency_factor * instance.margin.credit(batch) / batch
        # a tenant sharing a partition (one process) is credited by the cycle rule, which may exceed the
        # measured throughput: the bound takes the better of the two so it stays a bound
        return max(measured, cycle) if procs == 1 or optimistic else measured
    return cycle


def efficiency(instance: Instance, service: str) -> Efficiency:
    best = Efficiency(service, 0.0)
    min_lat = math.inf
    for e in instance.table(instance.service(service).model).entries:
        if e.batch not in instance.batches or e.procs > instance.mechanism.max_procs:
            continue
        if not any(abs(e.size - s) < 1e-9 for s in instance.mechanism.sizes):
            continue
        min_lat = min(min_lat, 2 * e.latency_ms * instance.margin.latency_factor)
        cap = point_capacity(instance, service, e.batch, e.size, e.procs)
        if cap is not None and cap / e.size > best.per_unit:
            best = Efficiency(service, cap / e.size, e.batch, e.size, e.procs)
    return Efficiency(best.service, best.per_unit, best.batch, best.size, best.procs,
                      None if math.isinf(min_lat) else min_lat)


def max_count(instance: Instance, size: float) -> int:
    """How many partitions of `size` fit on one GPU."""
    mech = instance.mechanism
    if mech.kind is MechanismKind.MIG:
        used: set[int] = set()
        n = 0
        for p in sorted((p for p in mech.placements if p.size == size), key=lambda p: p.start):
            if used.isdisjoint(p.slots):
                used |= set(p.slots)
                n += 1
        return n
    n = int(mech.capacity // size + 1e-9)
    return min(n, mech.max_partitions) if mech.max_partitions else n


def gpu_throughput(instance: Instance, service: str) -> float:
    """The most req/s one GPU can give a service on its own (every partition saturated by it)."""
    best = 0.0
    for e in instance.table(instance.service(service).model).entries:
        if e.batch not in instance.batches or e.procs > instance.mechanism.max_procs:
            continue
        if not any(abs(e.size - s) < 1e-9 for s in instance.mechanism.sizes):
            continue
        cap = point_capacity(instance, service, e.batch, e.size, e.procs)
        if cap is not None:
            best = max(best, cap * max_count(instance, e.size))
    return best


def infeasible_services(instance: Instance) -> dict[str, str]:
    """Services that no plan can serve on the instance's GPUs, each with the reason."""
    out: dict[str, str] = {}
    for s in instance.services:
        eff = efficiency(instance, s.name)
        if eff.per_unit == 0.0:
            best = "no profiled point" if eff.min_latency_ms is None else f"best 2 x exec {eff.min_latency_ms:.2f} ms"
            out[s.name] = f"SLO budget {instance.slo_budget_ms(s.name):.2f} ms is below its smallest latency ({best})"
            continue
        reach = gpu_throughput(instance, s.name) * instance.gpus
        if s.rate > reach * (1 + 1e-9):
            out[s.name] = f"rate {s.rate:.1f} req/s exceeds {reach:.1f} req/s, all {instance.gpus} GPUs serving it alone"
    return out


def lp_gpus(instance: Instance) -> float:
    """Fractional GPUs of the LP relaxation (inf when some service cannot be served at all)."""
    total = 0.0
    for s in instance.services:
        if s.rate <= 0:
            continue
        eff = efficiency(instance, s.name).per_unit
        if eff == 0.0:
            return math.inf
        total += s.rate / eff
    return total / instance.mechanism.capacity


def lp_bound_gpus(instance: Instance) -> float:
    """A lower bound on the GPUs of any valid plan (min-gpus)."""
    x = lp_gpus(instance)
    return math.inf if math.isinf(x) else max(1, math.ceil(x - 1e-9))


def lp_bound_scale(instance: Instance) -> float:
    """An upper bound on alpha for max-scale on instance.gpus GPUs."""
    x = lp_gpus(instance)
    if x == 0:
        return math.inf
    return instance.gpus / x
