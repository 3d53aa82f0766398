"""Is a plan safe under Poisson arrivals?  The partitions of a deterministic plan loaded above the unsafe level.

A plan made by the deterministic throughput rule may load a tenant to 100 % of its cycle capacity, where Poisson
arrivals queue without bound (docs/SIMULATOR.md).  `UNSAFE_LOAD` is the level the simulator shows to be unsafe:
plans whose tenants run at most 1 / 1.25 = 80 % of their capacity (`stsched solve --headroom 1.25`) keep 97.6-98.8 %
SLO attainment on 64-service instances under Poisson arrivals, where the same instances planned at 100 % fall to
70.3-94.1 % (`python -m experiments.sim_speed`, README "Head-room for Poisson arrivals").  An instance planned for
Poisson arrivals (`arrivals: poisson`, the margin `late_share`) is checked by its own rule and is not flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

from stsched.checker import capacities
from stsched.plan import Plan
from stsched.problem import POISSON_LATE_SHARE, Arrivals, Instance

UNSAFE_LOAD = 0.8


@dataclass(frozen=True)
class Overload:
    """A tenant loaded above `UNSAFE_LOAD` of its capacity (the instance's own rule) at the offered rates."""

    gpu: int
    partition: int
    service: str
    load: float  # rate / capacity


def overloads(instance: Instance, plan: Plan, level: float = UNSAFE_LOAD) -> list[Overload]:
    """Tenants of a plan for a deterministic instance whose load exceeds `level` (none for a Poisson instance)."""
    if instance.arrivals is Arrivals.POISSON:
        return []
    served = plan.served()
    # the offered rate reaches each tenant in proportion to its planned rate (the simulator's routing), so a plan
    # made for H x the rates (--headroom) runs its tenants at 1 / H of what they are planned to serve
    share = {s.name: min(1.0, s.rate * plan.scale / served[s.name]) if served.get(s.name) else 1.0
             for s in instance.services}
    out = []
    caps = capacities(instance, plan)  # the checker's own count of every tenant's capacity
    for gi, g in enumerate(plan.gpus):
        for qi, p in enumerate(g.partitions):
            for ti, t in enumerate(p.tenants):
                cap = caps[(gi, qi, ti)]
                if t.rate <= 0 or cap <= 0:
                    continue
                load = t.rate * share.get(t.service, 1.0) / cap
                if load > level * (1 + 1e-9):
                    out.append(Overload(gi, qi, t.service, load))
    return out


def warning(instance: Instance, plan: Plan) -> str | None:
    """One line naming the first overloaded partition and the fix, or None when the plan is safe."""
    found = overloads(instance, plan)
    if not found:
        return None
    parts = {(o.gpu, o.partition) for o in found}
    worst = max(found, key=lambda o: o.load)
    total = sum(len(g.partitions) for g in plan.gpus)
    return (f"warning: {len(parts)} of {total} partitions run a tenant above {UNSAFE_LOAD:.0%} of its capacity, "
            f"unsafe under Poisson arrivals (worst: gpu {worst.gpu} partition {worst.partition}, {worst.service} at "
            f"{worst.load:.0%}); instance {instance.name!r} is planned for deterministic arrivals: plan with "
            f"--late-share {POISSON_LATE_SHARE:g} or --attainment 0.99 (or --headroom 1.25), or build it with "
            f"--arrivals poisson")
