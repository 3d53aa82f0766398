"""Local re-planning for large plans: solve only the GPUs a change touches.

A scale-up or a compaction of the adaptive policy changes a few GPUs; the rest of the plan is kept as it is.  At
hundreds of services, asking a solver's adapt objective for the whole instance costs seconds per call (the exact
adapt model enumerates configurations of every service), although the answer rebuilds one or two layouts.  Here
the question is cut down to its neighbourhood:

* the GPUs hosting a service that must move (the services left short by the plan in force, or those of a GPU being
  switched off), and every service on those GPUs;
* each of those services at the rate its tenants outside the neighbourhood cannot carry (its deficit there, at
  least 0), on the neighbourhood's GPUs plus `extra` GPUs that may be switched on;
* the solver's adapt objective on that sub-instance, from the neighbourhood's part of the plan in force.

Its answer replaces the neighbourhood's GPUs (GPU i of the answer is the neighbourhood's i-th GPU, GPUs beyond
go to unused indices), and the whole plan is rebalanced and judged by the checker (`rebalance`): a merged plan the
checker rejects is not used.  Interference stays inside a GPU, so GPUs outside the neighbourhood keep their
capacities.  The layout changes counted (`stsched.plan.layout_changes`) are those of the whole plan, as always.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

from stsched.plan import Plan
from stsched.planning.adapt.rebalance import gpu_service_caps, rebalance
from stsched.problem import Instance

log = logging.getLogger(__name__)

EXACT_SERVICES = 16  # the exact adapt solver is asked only for neighbourhoods of at most this many services
MARGIN = 1e-6  # deficits are asked with this relative margin, so that the merged plan carries the rates

Solve = Callable[[Instance, Plan], "Plan | None"]


def neighbourhood(plan: Plan, movers: set[str]) -> list[int]:
    """Indices of the GPUs that host a tenant of one of `movers`."""
    return [k for k, g in enumerate(plan.gpus)
            if any(t.service in movers for p in g.partitions for t in p.tenants)]


def local_adapt(instance: Instance, plan: Plan, movers: set[str], extra: int, solve: Solve,
                max_services: int | None = None) -> Plan | None:
    """`solve(sub_instance, sub_plan)` on the neighbourhood of `movers` in `plan` (module docstring) with up to
    `extra` more GPUs (at most one per mover), merged back into `plan` and rebalanced for `instance`; None when the
    neighbourhood has more than `max_services` services (not asked), the solve fails, the merged plan uses more
    GPUs than the instance has, or the checker rejects it."""
    near = neighbourhood(plan, movers)
    inside = set(near)
    names = {t.service for k in near for p in plan.gpus[k].partitions for t in p.tenants} | set(movers)
    if max_services is not None and len(names) > max_services:
        log.debug("local adapt not asked: %d services in the neighbourhood of %d", len(names), len(movers))
        return None
    extra = min(max(0, extra), len(movers))
    outside: dict[str, float] = {}
    for k, g in enumerate(plan.gpus):
        if k in inside or not g.used:
            continue
        for n, c in gpu_service_caps(instance, g).items():
            if n in names:
                outside[n] = outside.get(n, 0.0) + c
    rates = {s.name: s.rate for s in instance.services if s.name in names}
    deficit = {n: max(0.0, r - outside.get(n, 0.0)) * (1 + MARGIN) for n, r in rates.items()}
    sub = instance.subset(names).with_rates(deficit).with_gpus(len(near) + extra)
    sub_plan = replace(plan, gpus=tuple(plan.gpus[k] for k in near))
    log.debug("local adapt: %d movers, %d GPUs, %d services, %d extra GPUs", len(movers), len(near), len(names),
              extra)
    got = solve(sub, sub_plan)
    if got is None:
        return None
    gpus = list(plan.gpus)
    free = [k for k, g in enumerate(gpus) if k not in inside and not g.used]
    for i, g in enumerate(got.gpus):
        if i < len(near):
            gpus[near[i]] = g
        elif g.used:
            if free:
                gpus[free.pop(0)] = g
            else:
                gpus.append(g)
    merged = replace(plan, gpus=tuple(gpus))
    if merged.gpus_used > instance.gpus:
        return None
    out = rebalance(instance, merged)
    if out is None:
        log.info("local adapt on %d GPUs (%d services): merged plan not valid", len(near), len(names))
    return out

