"""Re-use of layouts seen before: the plans the adaptive policy ran, kept as candidates for later decisions.

On a window whose load moves between a few levels (10 and 11 GPUs for hours, say), the layouts that served a level
once are likely to serve it again: going back to them switches GPUs on or off and changes tenants (free per
docs/RULES.md), not the layouts of the GPUs both plans share.  `LayoutCache` keeps the last `size` plans in force
with distinct layouts (as multisets of GPU layouts); `candidates` places each one onto the plan in force
(`stsched.reconfig.align`: identical layouts stay where they are) and re-fits it to the new rates by rebalancing the
rate shares or re-tenanting inside its layouts (`stsched.planning.adapt.rebalance`).  A cached plan is offered only
when it carries the rates and the checker accepts it (what `rebalance` returns); the layout changes it costs are
counted against the plan in force, as always (`stsched.plan.layout_changes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from stsched.plan import Plan, gpu_layout
from stsched.planning.adapt.rebalance import rebalance, retenant
from stsched.problem import Instance
from stsched.reconfig import align


def layout_key(plan: Plan) -> tuple:
    """The plan's layouts as a multiset (GPU order and tenants ignored)."""
    return tuple(sorted(gpu_layout(g) for g in plan.gpus if gpu_layout(g)))


@dataclass
class LayoutCache:
    size: int = 6
    plans: list[Plan] = field(default_factory=list)  # most recent first, distinct layout multisets

    def remember(self, plan: Plan) -> None:
        key = layout_key(plan)
        if not key:
            return
        self.plans = [plan] + [p for p in self.plans if layout_key(p) != key]
        del self.plans[self.size:]

    def candidates(self, instance: Instance, current: Plan, fewer: bool) -> Iterator[tuple[str, Plan]]:
        """Cached plans with fewer GPUs than `current` (`fewer`) or more, aligned onto `current` and re-fitted to
        `instance`'s rates (only those that carry them, checker-valid)."""
        here = layout_key(current)
        for cached in self.plans:
            n = cached.gpus_used
            if layout_key(cached) == here or (n < current.gpus_used) != fewer or n == current.gpus_used:
                continue
            placed = align(current, cached)
            fit = rebalance(instance, placed) or retenant(instance, placed)
            if fit is not None:
                yield f"layouts seen before ({n} GPUs)", fit
