"""Re-planning without touching layouts: rebalance the rate shares of the plan in force, hand partitions over to
other services (tenant changes), or switch a GPU off.

Changing tenants' rate shares inside kept layouts is free (docs/RULES.md): batches, duty cycles and therefore
every tenant's capacity stay as they are, so a service can be given any rate up to the sum of its tenants'
capacities.  `rebalance` spreads each service's new rate over its tenants in proportion to their capacities (every
tenant of a service then runs at the same utilisation) and returns the plan only if the checker accepts it.
Capacities are the checker's own: `stsched.checker.share_one_capacities` per GPU (the count `check` makes, at
share 1), memoised per layout here.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Mapping

from stsched.checker import capacities, check, cycle_rate, share_one_capacities
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Instance


_CAPS_SIZE = 65536
_CAPS: OrderedDict[tuple, tuple[object, dict[tuple[int, int], float]]] = OrderedDict()


def _caps_key(instance: Instance, g: GpuLayout) -> tuple:
    """What one GPU's capacities depend on: its partitions (size, procs, duty, tenants' services, models and batches,
    whether the instance has each service) and the instance's timing rules; never the rates."""
    parts = tuple((p.size, p.procs, p.duty_ms, tuple(
        (t.service, t.batch, instance.service(t.service).model if instance.has_service(t.service) else None)
        for t in p.tenants)) for p in g.partitions)
    return (id(instance.tables), instance.margin, instance.interference, instance.throughput_rule,
            instance.mechanism, parts)


def gpu_capacities(instance: Instance, g: GpuLayout) -> dict[tuple[int, int], float]:
    """(partition, tenant) -> req/s the tenant of one GPU can be served at (0 where the table has no latency).
    Memoised per process by `_caps_key` (capacities do not depend on the rates, so the plan in force's GPUs are
    not timed again at every decision and every trial of `retenant`); a copy is returned."""
    key = _caps_key(instance, g)
    hit = _CAPS.get(key)
    if hit is not None and hit[0] is instance.tables:  # the tables object is held, so its id is not re-used
        _CAPS.move_to_end(key)
        return dict(hit[1])
    out = share_one_capacities(instance, g)  # the checker's own count, at share 1
    _CAPS[key] = (instance.tables, out)
    while len(_CAPS) > _CAPS_SIZE:
        _CAPS.popitem(last=False)
    return dict(out)


def tenant_capacities(instance: Instance, plan: Plan) -> dict[tuple[int, int, int], float]:
    """(gpu, partition, tenant) -> req/s the tenant can be served at (0 where the table has no latency)."""
    return {(gi, qi, ti): c for gi, g in enumerate(plan.gpus) for (qi, ti), c in gpu_capacities(instance, g).items()}


def gpu_service_caps(instance: Instance, g: GpuLayout) -> dict[str, float]:
    """service -> req/s its tenants on one GPU can carry together."""
    return _by_service(g, gpu_capacities(instance, g))


def _by_service(g: GpuLayout, caps: Mapping[tuple[int, int], float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for (qi, ti), c in caps.items():
        name = g.partitions[qi].tenants[ti].service
        out[name] = out.get(name, 0.0) + c
    return out


def rebalance(instance: Instance, plan: Plan, rates: Mapping[str, float] | None = None) -> Plan | None:
    """The plan in force with each service's rate (default: the instance's) spread over its tenants in proportion
    to their capacities; None when some service's tenants cannot carry its rate or the checker objects."""
    rates = dict(rates) if rates is not None else {s.name: s.rate for s in instance.services}
    # the checker's count: under a Poisson margin at each tenant's share; without one it is the share-1 count, which
    # the per-process memo already holds (capacities times every GPU again, and rebalance runs in loops)
    caps = capacities(instance, plan) if instance.margin.late_share else tenant_capacities(instance, plan)
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
    caps = gpu_capacities(instance, plan.gpus[k])  # this GPU's tenants only: the others do not change them
    load = 0.0
    for qi, p in enumerate(plan.gpus[k].partitions):
        util = sum(t.rate / caps[(qi, ti)] for ti, t in enumerate(p.tenants) if caps[(qi, ti)] > 0)
        load += p.size * min(1.0, util)
    return load


def _best_single(instance: Instance, service: str, size: float, procs: int) -> int | None:
    """The batch with the largest capacity at which `service` alone meets its SLO budget (2e <= SLO) in a
    partition of `size` with `procs` processes (solo times, margin included), or None."""
    best, best_cap = None, 0.0
    budget = instance.slo_budget_ms(service)
    for b in instance.batches:
        e = instance.solo_ms(service, b, size, procs)
        if e is None or 2 * e > budget:
            continue
        cap = cycle_rate(instance.margin.credit(b), e)
        if cap > best_cap:
            best, best_cap = b, cap
    return best


def service_capacities(instance: Instance, plan: Plan) -> dict[str, float]:
    """service -> req/s its tenants in `plan` can carry together (the sum of `tenant_capacities`)."""
    out: dict[str, float] = {}
    for (gi, qi, ti), c in tenant_capacities(instance, plan).items():
        name = plan.gpus[gi].partitions[qi].tenants[ti].service
        out[name] = out.get(name, 0.0) + c
    return out


def retenant(instance: Instance, plan: Plan, max_moves: int = 8, max_short: int = 8) -> Plan | None:
    """Cover services the plan in force cannot carry by changing tenants inside the kept layouts (free per
    docs/RULES.md): a partition is handed over to an uncovered service (alone, at its best batch for that size)
    when the services it served stay covered by their other partitions.  Greedy, largest gain first; returns the
    rebalanced, checker-valid plan, or None.  Incremental: a trial changes one GPU, so only that GPU's capacities
    are computed again (interference stays inside a GPU); each move tries the `max_short` services with the largest
    deficits (the trials grow with partitions x short services), and a partition is tried only when each service it
    serves keeps its rate on its other tenants' capacities as they are (at hundreds of services most partitions of
    a tight plan fail this, and are not timed)."""
    rates = {s.name: s.rate for s in instance.services}
    per_tenant = [gpu_capacities(instance, g) for g in plan.gpus]
    per_gpu = [_by_service(g, c) for g, c in zip(plan.gpus, per_tenant)]
    singles: dict[tuple[str, float, int], int | None] = {}
    for _ in range(max_moves):
        caps: dict[str, float] = {}
        for gc in per_gpu:
            for n, c in gc.items():
                caps[n] = caps.get(n, 0.0) + c
        short = {n: r - caps.get(n, 0.0) for n, r in rates.items() if r > caps.get(n, 0.0) * (1 + 1e-9)}
        if not short:
            return rebalance(instance, plan)
        best = None
        top = set(sorted(short, key=lambda n: -short[n])[:max_short])
        tried = [n for n in short if n in top]  # in the instance's order, as without the bound
        for gi, g in enumerate(plan.gpus):
            for qi, p in enumerate(g.partitions):
                if not p.tenants or any(t.service in short for t in p.tenants):
                    continue
                if any(caps.get(t.service, 0.0) - per_tenant[gi].get((qi, ti), 0.0)
                       < rates.get(t.service, 0.0) * (1 - 1e-9) for ti, t in enumerate(p.tenants)):
                    continue  # without this partition a displaced service falls short (before interference moves)
                for name in tried:
                    key = (name, p.size, p.procs)
                    if key not in singles:
                        singles[key] = _best_single(instance, name, p.size, p.procs)
                    b = singles[key]
                    if b is None:
                        continue
                    parts = list(g.partitions)
                    parts[qi] = Partition(p.size, (Tenant(name, b, 0.0),), None, p.procs, p.start)
                    layout = GpuLayout(tuple(parts))
                    mine = gpu_service_caps(instance, layout)

                    def after(n: str) -> float:
                        return caps.get(n, 0.0) - per_gpu[gi].get(n, 0.0) + mine.get(n, 0.0)

                    if any(after(t.service) < rates.get(t.service, 0.0) * (1 - 1e-9) for t in p.tenants):
                        continue  # a displaced service would be left short
                    if any(after(n) < caps.get(n, 0.0) * (1 - 1e-9) for n in short if n != name):
                        continue  # interference could shrink another short service further
                    gain = min(short[name], after(name) - caps.get(name, 0.0))
                    if gain > 1e-9 and (best is None or gain > best[0]):
                        best = (gain, gi, layout, mine)
        if best is None:
            return None
        _, gi, layout, mine = best
        plan = replace(plan, gpus=tuple(layout if k == gi else h for k, h in enumerate(plan.gpus)))
        per_tenant[gi] = gpu_capacities(instance, layout)
        per_gpu[gi] = mine
    return None
