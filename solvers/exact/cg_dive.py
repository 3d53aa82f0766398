"""Integer plans (min-gpus) by diving WITH re-pricing over the configuration LP (solvers.exact.colgen).

One step: the configuration LP over the pool of columns (every column generated so far), with each service's
coverage row asking for what is still unserved, is solved in HiGHS; every column's whole part is fixed (floor(x_c)
partitions: they never serve more than the LP does) and the `share` of its fractional columns with the largest
values is rounded up to whole partitions; what they serve is taken off the services' rates.  The services left
with demand form a residual instance, on which the column generation runs again for `rounds` master solves (warm:
the pool's columns whose tenants all remain start it), so that the next step's LP has columns priced for what is
left rather than for the whole.  When the time is out, every remaining LP column is rounded up at once (rounding up
only adds coverage, so the partitions always serve every rate).  The fixed partitions are finally packed into the
fewest GPUs by a small integer program over the layouts (solvers.exact.diving._layouts).

The residual column generation does not see the slots the fixed partitions take (the final packing does, jointly
for all partitions), and its columns are timed like the first generation's (solo, or conservatively under
neighbour-dependent interference: `timer`), so the partitions are valid next to any neighbour; the caller checks
the plan like every plan.  Symbols as in solvers.exact.colgen: x_c partitions of configuration c, y_L GPUs of
layout L, a_{c,s} = min(cap_{c,s}, rest_s) / rest_s the coverage of what is left.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np

from solvers.exact.cg_pricing import CgOptions
from solvers.exact.colgen import Infeasible, _key, column_generation
from solvers.exact.diving import INT_TOL, _layouts, slots_lp
from solvers.exact.patterns import Config, ModelData
from solvers.exact.plans import Counts
from stsched.problem import Instance
from stsched.registry import Objective

log = logging.getLogger(__name__)

REST_TOL = 1e-6  # a service whose unserved rate is below this share of its rate is served


@dataclass(frozen=True)
class RepriceOptions:
    """`share`: fractional columns rounded up per step (the largest LP values first, at least one); `rounds`: master
    solves of each residual column generation (a work limit); `step_s`: its time limit on the caller's clock."""

    share: float = 0.25
    rounds: int = 12
    step_s: float = 10.0


@dataclass(frozen=True)
class DiveResult:
    """The plan's counts over `data` (whose configurations are the pool), or None; `steps` LPs fixed, a note."""

    data: ModelData
    counts: Counts | None
    steps: int
    note: str


def lp_over(data: ModelData, configs: list[Config], rest: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The slots LP over `configs` with coverage rows for the unserved rates `rest` (req/s; 0: served): x and the
    LP value (GPUs), or None when it has no solution."""
    import highspy

    h = slots_lp(data, configs, rest)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    x = np.asarray(h.getSolution().col_value[:len(configs)])
    return np.maximum(x, 0.0), float(h.getInfo().objective_function_value)


def _served(c: Config) -> dict[int, float]:
    out: dict[int, float] = {}
    for (s, _), cap in zip(c.tenants, c.cap):
        out[s] = out.get(s, 0.0) + cap
    return out


def pick(x: np.ndarray, share: float, everything: bool = False) -> dict[int, int]:
    """Partitions to fix from LP values x: every column's whole part, and the `share` of the fractional columns with
    the largest values rounded up (at least one; all of them with `everything`)."""
    whole = np.floor(x + INT_TOL)
    frac = np.flatnonzero(x - whole > INT_TOL)
    out = {int(i): int(n) for i, n in enumerate(whole) if n > 0}
    if len(frac):
        k = len(frac) if everything else max(1, math.ceil(share * len(frac)))
        for i in frac[np.argsort(-x[frac], kind="stable")[:k]]:
            out[int(i)] = out.get(int(i), 0) + 1
    return out


def _residual(instance: Instance, rest: np.ndarray) -> tuple[Instance, list[int]]:
    """The instance of the services with unserved demand, at that demand, and their indices in `instance`."""
    keep = [s for s in range(len(rest)) if rest[s] > 0]
    services = tuple(replace(instance.services[s], rate=float(rest[s])) for s in keep)
    return replace(instance, services=services), keep


def reprice_dive(data: ModelData, deadline: float, clock, opts: RepriceOptions = RepriceOptions(),
                 cg: CgOptions = CgOptions(), timer_of=None, accept=None) -> DiveResult:
    """Counts of a min-gpus plan over `data`'s configurations and the columns priced on the way (see the module
    docstring).  `timer_of(instance)`: the residual column generation's timer (None: its default, solo times);
    `accept(configs)`: the columns of a residual generation the caller's model admits (e.g. memory per partition)."""
    instance = data.instance
    pool: list[Config] = list(data.configs)
    keys = {_key(c) for c in pool}
    rates = np.array(data.rates, dtype=float)
    rest = rates.copy()
    fixed: dict[int, int] = {}
    steps, priced = 0, 0
    stalled = False
    reason = "every service served"
    while True:
        out = lp_over(data, pool, rest)
        if out is None:
            return DiveResult(data, None, steps, f"re-priced diving: the LP over {len(pool)} columns has no "
                                                 f"solution after {steps} steps")
        x, value = out
        late = clock() >= deadline or stalled
        take = pick(x, opts.share, everything=late)
        if late:
            reason = "out of time: the last LP rounded up whole" if not stalled else "stalled: the last LP rounded up"
        steps += 1
        before = rest.copy()
        for i, n in take.items():
            fixed[i] = fixed.get(i, 0) + n
            for s, cap in _served(pool[i]).items():
                rest[s] = max(0.0, rest[s] - n * cap)
        rest[rest <= REST_TOL * rates] = 0.0
        stalled = not (rest < before).any()  # (a degenerate LP on columns that serve nothing left: round up next)
        log.debug("re-priced diving step %d: LP %.4f, %d partitions fixed (%d in all, capacity %.4g GPUs), "
                  "%d services left", steps, value, sum(take.values()), sum(fixed.values()),
                  sum(n * pool[i].size for i, n in fixed.items()) / instance.mechanism.capacity, int((rest > 0).sum()))
        if late or not (rest > 0).any():
            break
        sub, keep = _residual(instance, rest)
        local = {s: i for i, s in enumerate(keep)}
        start = tuple(Config(c.size, c.procs, tuple((local[s], b) for s, b in c.tenants), c.cap, c.memory_mb)
                      for c in pool if all(s in local for s, _ in c.tenants))
        left = min(opts.step_s, deadline - clock())
        if left <= 0:
            continue  # the next LP is rounded up whole
        try:
            r = column_generation(sub, Objective.MIN_GPUS, replace(cg, time_limit_s=left, max_rounds=opts.rounds),
                                  timer=timer_of(sub) if timer_of else None, start=start)
        except Infeasible:  # cannot happen (every service of the instance was servable); round up what is there
            continue
        new = [Config(c.size, c.procs, tuple((keep[s], b) for s, b in c.tenants), c.cap, c.memory_mb)
               for c in r.configs]
        new = accept(new) if accept else new
        for c in new:
            if _key(c) not in keys:
                keys.add(_key(c))
                pool.append(c)
                priced += 1
    full = replace(data, configs=tuple(pool))
    need = {p: sum(n for i, n in fixed.items() if pool[i].size == p) for p in data.sizes}
    lay = _layouts(full, need)
    if lay is None:
        return DiveResult(full, None, steps, "re-priced diving: no whole number of GPUs holds the partitions")
    note = (f"re-priced diving: {steps} steps ({reason}), {priced} columns priced on residuals, "
            f"{sum(fixed.values())} partitions on {sum(lay.values())} GPUs")
    return DiveResult(full, Counts(layouts=lay, configs=fixed), steps, note)


__all__ = ["DiveResult", "RepriceOptions", "lp_over", "pick", "reprice_dive"]
