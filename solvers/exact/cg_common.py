"""What the column generation (solvers.exact.colgen) and its branchings (solvers.exact.cg_branch, cg_ryan) share:
the pricing's set-up (timer, operating points per size, rates, the options' defaults) and the layout weight W_L of
the Lagrangian bound (one function, read by colgen, cg_stabilise and cg_ryan)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from solvers.exact.cg_pricing import CgOptions, _size_data, _SizeData, _SoloTimer, mem_cap
from solvers.exact.patterns import Stop, _Timer
from stsched.checker import served_rates
from stsched.problem import Instance


@dataclass(frozen=True)
class PricingSetup:
    """The pricing's data: `timer` (solo times unless one is given), the one-process operating points of every size
    (`data`), the `rates`, the `active` services (those that need serving, `stsched.checker.needs_serving`; the
    `rates` of the others are 0) and `opts` with their per-instance defaults filled in."""

    timer: _Timer
    data: dict[float, _SizeData]
    rates: np.ndarray
    active: list[int]
    opts: CgOptions


def pricing_setup(instance: Instance, layouts, opts: CgOptions, timer: _Timer | None = None,
                  stop: Stop = None) -> PricingSetup:
    """The set-up of colgen's column generation, for it and for every branching that prices the same points
    (`stop` polled while the operating points are built: patterns.OutOfTime)."""
    if timer is None:
        timer = _SoloTimer(instance, False, layouts) if instance.interference.form == "none" else \
            _Timer(instance, False, layouts)
    data = _size_data(instance, timer, stop)
    rates = np.array(served_rates(instance), dtype=float)
    active = [s for s, r in enumerate(rates) if r > 0]
    n = len(active)
    opts = replace(opts, per_size=opts.per_size or max(30, n // 2), seeds=opts.seeds or max(12, n // 4))
    return PricingSetup(timer, data, rates, active, opts)


def beyond_memory(instance: Instance, setup: PricingSetup) -> dict[str, str]:
    """Active services none of whose operating points meets its SLO, as `setup`'s timer times it (solo, or next to
    the worst neighbour for the plans' columns: solvers.exact.cg.conservative_timer), within the memory of any
    partition (cg_pricing's `mem_cap`, the memory rule itself): no column can cover them, and the first master LP
    had no solution (a RuntimeError, 'a fault of the solver', where the heuristic names the service infeasible)."""
    fit = {int(s) for p, sd in setup.data.items() for s in sd.svc[sd.mem <= mem_cap(instance, p)]}
    fit |= {int(s) for sd in setup.data.values() for s in sd.single_svc}
    why = "no profiled point meets its SLO (as timed here) within the memory of one partition or GPU"
    return {instance.services[s].name: why for s in setup.active if s not in fit}


def layout_weights(layouts, ub: dict[float, float]) -> np.ndarray:
    """W_L = sum_p n_L(p) max(V_p, 0) for every layout L: what one GPU of layout L can be worth at most when no
    configuration of size p is worth more than V_p (a size missing from `ub` is worth 0)."""
    return np.array([sum(L.count(p) * max(ub.get(p, 0.0), 0.0) for p in set(L)) for L in layouts], dtype=float)


__all__ = ["PricingSetup", "beyond_memory", "layout_weights", "pricing_setup"]
