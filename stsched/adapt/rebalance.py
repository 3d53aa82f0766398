"""Re-planning without touching layouts: rebalance the rate shares of the plan in force, or switch a GPU off.

Changing tenants' rate shares inside kept layouts is free (FORMULATION.md): batches, duty cycles and therefore
every tenant's capacity stay as they are, so a service can be given any rate up to the sum of its tenants'
capacities.  `rebalance` spreads each service's new rate over its tenants in proportion to their capacities (every
tenant of a service then runs at the same utilisation) and returns the plan only if the checker accepts it.
Capacities are the checker's own (`stsched.check` throughput rule).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from stsched.check import _capacity, check
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Instance
from stsched.timing import cycle_ms, gpu_timings


def tenant_capacities(instance: Instance, plan: Plan) -> dict[tuple[int, int, int], float]:
    """(gpu, partition, tenant) -> req/s the tenant can be served at (0 where the table has no latency)."""
    out: dict[tuple[int, int, int], float] = {}
    for gi, g in enumerate(plan.gpus):
        for qi, (p, times) in enumerate(zip(g.partitions, gpu_timings(instance, g))):
            duty = p.duty_ms if p.duty_ms is not None else cycle_ms(times)
            for ti, (t, tt) in enumerate(zip(p.tenants, times)):
                out[(gi, qi, ti)] = 0.0 if tt.exec_ms is None or duty <= 0 else \
                    _capacity(instance, p, tt, duty, t.batch)
    return out


def rebalance(instance: Instance, plan: Plan, rates: Mapping[str, float] | None = None) -> Plan | None:
    """The plan in force with each service's rate (default: the instance's) spread over its tenants in proportion
    to their capacities; None when some service's tenants cannot carry its rate or the checker objects."""
    rates = dict(rates) if rates is not None else {s.name: s.rate for s in instance.services}
    caps = tenant_capacities(instance, plan)
    total: dict[str, float] = {}
    for (gi, qi, ti), c in caps.items():
        name = plan.gpus[gi].partitions[qi].tenants[ti].service
        total[name] = total.get(name, 0.0) + c
    for name, r in rates.items():
        if r > 0 and total.get(name, 0.0) < r * (1 - 1e-9):
            return None
    gpus = []
    for gi, g in enumerate(plan.gpus):
        parts = []
        for qi, p in enumerate(g.partitions):
            tenants = tuple(Tenant(t.service, t.batch,
                                   rates.get(t.service, 0.0) * caps[(gi, qi, ti)] / total[t.service]
                                   if total.get(t.service, 0.0) > 0 else 0.0)
                            for ti, t in enumerate(p.tenants))
            parts.append(Partition(p.size, tenants, p.duty_ms, p.procs, p.start))
        gpus.append(GpuLayout(tuple(parts)))
    new = replace(plan, gpus=tuple(gpus))
    return new if check(instance, new).valid else None


def without_gpu(plan: Plan, k: int) -> Plan:
    """The plan with GPU k switched off (its index kept, empty)."""
    return replace(plan, gpus=tuple(GpuLayout() if j == k else g for j, g in enumerate(plan.gpus)))


def gpu_load(instance: Instance, plan: Plan, k: int) -> float:
    """How much of GPU k's capacity its tenants use (sum over partitions of size x utilisation)."""
    caps = tenant_capacities(instance, plan)
    load = 0.0
    for qi, p in enumerate(plan.gpus[k].partitions):
        util = sum(t.rate / caps[(k, qi, ti)] for ti, t in enumerate(p.tenants) if caps[(k, qi, ti)] > 0)
        load += p.size * min(1.0, util)
    return load
