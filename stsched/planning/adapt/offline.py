"""What any re-planning policy must pay: a clairvoyant lower bound on layout reconfigurations for a GPU-hour budget.

Why a bound from GPU counts alone is valid.  `stsched.plan.layout_changes` matches GPUs by index and counts every
index whose layout (`GpuLayout.layout`: sorted sizes of the partitions with tenants; () for a GPU off) differs.  An
index that is on in one plan and off in the other is such an index, and at least |u' - u| indices switch between
on and off when the GPUs in use go from u to u'; a standby GPU switched back on with its old layout therefore
counts too (() -> layout).  The measure is a sum of per-index discrete metrics, so it obeys the triangle
inequality: the changes of any sequence of decisions are at least those between the plans in force at any
subsequence of moments.  Hence every policy pays at least the total variation sum_t |u_t - u_(t-1)| of its GPU
count over the moments it is looked at (the initial deployment is not counted, as in the controller).

The need.  At step t a plan in force must carry the estimate it was made for, so it uses at least n_t GPUs, with
n_t a lower bound on the GPUs of any plan for that estimate.  Two needs are computed by
`experiments.adapt_frontier` (`window_needs`):

* certified: n_m = the LP bound (`stsched.bounds.lp_bound_gpus`) per minute, minimised over every estimate the
  plan in force at minute m can have been made for (the epoch's boundary decision or an emergency decision at any
  minute since, the detector's `detect_s` into a minute included; each the lower of the readings up to the standby
  lead and at the decision itself, as `emergency_fresh` reads), with the estimator of `options` (window, statistic, head-room, `burst_s`/`burst_q`) and
  without the declared rates' floor: valid for any policy with that estimator whose plans carry the estimate of
  their decision (the controller checks this), with or without the declared rates' floor (it only raises an
  estimate); with the observed start of `options` (`cold_count_s`) the initial deployment's reading is the lower
  of the estimate and the start's own rates (its count's upper bound, below the first minute's rate with
  probability 0.135 % per service), so the need holds for that start too, not for another observed start;
* from scratch: n_e = the GPUs of the policies' own min-gpus plan from scratch for the estimate at each epoch
  boundary (what full re-partitioning runs), floored by the cold start of `options` as the controller floors it:
  valid for policies run with that cold start whose plans never use fewer GPUs than the plan
  from scratch for the same rates over an epoch (not guaranteed: a plan kept or adapted could beat the heuristic's
  count; `experiments.adapt_frontier` reports any point with fewer changes than this bound at its own GPU-hours).

`frontier(need, hours)` is the DP over steps and GPU counts: best[c] = the fewest GPU-hours sum_t u_t h_t of any
sequence u_t >= n_t with total variation <= c (counts above max n never help: clipping a sequence to it loses
neither hours nor changes).  The first count is free for the certified need (a policy may deploy more GPUs than
the first estimate needs); for the need from scratch it is n_0, the initial deployment of every policy compared
here but static peak (the first minute's plan from scratch: on a window whose load climbs within minutes, the
climb is paid by every one of them).  `min_changes(need, hours, budget)` is the least c with best[c] <= budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from stsched.bounds import lp_bound_gpus
from stsched.errors import InfeasibleError, InputError
from stsched.planning.adapt.calls import patience
from stsched.problem import Instance


@dataclass(frozen=True)
class Frontier:
    """best[c]: the fewest GPU-hours with at most c layout reconfigurations (c = 0 .. len - 1; the last is the
    floor sum n_t h_t, reached with the need's own total variation)."""

    best: tuple[float, ...]

    def min_changes(self, budget: float, tol: float = 1e-9) -> int | None:
        """The fewest reconfigurations with at most `budget` GPU-hours; None when even the floor exceeds it."""
        for c, h in enumerate(self.best):
            if h <= budget + tol:
                return c
        return None

    def hours(self, changes: int) -> float:
        """The fewest GPU-hours with at most `changes` reconfigurations."""
        if changes < 0:
            raise InputError(f"changes must be >= 0, got {changes}")
        return self.best[min(changes, len(self.best) - 1)]


def total_variation(counts: Sequence[int]) -> int:
    """sum_t |u_t - u_(t-1)| (the first count is free: the initial deployment)."""
    return int(sum(abs(int(b) - int(a)) for a, b in zip(counts, counts[1:])))


def _check(need: Sequence[int], hours: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(need, dtype=int)
    h = np.asarray(hours, dtype=float)
    if n.ndim != 1 or h.shape != n.shape or len(n) == 0:
        raise InputError(f"need and hours must be non-empty sequences of one length, got {len(n)} and {len(h)}")
    if (n < 0).any() or not (np.isfinite(h).all() and (h >= 0).all()):
        raise InputError("need must be counts >= 0 and hours finite numbers >= 0")
    return n, h


def frontier(need: Sequence[int], hours: Sequence[float], free_start: bool = True) -> Frontier:
    """The DP of the module docstring: O(steps x counts x changes).  `free_start`: the first count is any count
    >= need[0] (the initial deployment is not counted); False: exactly need[0] (policies whose initial deployment
    is the plan from scratch for the first estimate, as every policy of the study but static peak)."""
    n, h = _check(need, hours)
    top = int(n.max())
    cmax = total_variation(n.tolist())
    counts = np.arange(top + 1, dtype=float)[:, None]
    first = counts >= n[0] if free_start else counts == n[0]
    f = np.where(first, counts * h[0], np.inf) * np.ones((1, cmax + 1))  # f[u, c]: at most c changes
    for t in range(1, len(n)):
        g = f.copy()
        for u in range(1, top + 1):  # one step up costs one change; chained, |u' - u|
            np.minimum(g[u, 1:], g[u - 1, :-1], out=g[u, 1:])
        for u in range(top - 1, -1, -1):
            np.minimum(g[u, 1:], g[u + 1, :-1], out=g[u, 1:])
        f = np.where(counts >= n[t], g + counts * h[t], np.inf)
    best = f.min(axis=0)
    return Frontier(tuple(float(x) for x in best))


def min_changes(need: Sequence[int], hours: Sequence[float], budget: float) -> int | None:
    """The fewest layout reconfigurations of any GPU-count sequence above `need` within `budget` GPU-hours."""
    return frontier(need, hours).min_changes(budget)


def window_minimum(values: Sequence[int], boundaries: Sequence[int]) -> list[int]:
    """Per step m: the least of values[j] for j from the last boundary at or before m up to m (the plan in force at
    m was decided at the boundary or at any step since).  `boundaries`: sorted step indices, the first 0."""
    if not boundaries or boundaries[0] != 0:
        raise InputError("boundaries must start at step 0")
    out: list[int] = []
    marks = set(boundaries)
    low = math.inf
    for m, v in enumerate(values):
        low = v if m in marks else min(low, v)
        out.append(int(low))
    return out


def _patient(solve):
    """`solve()`, again with 5 x then 25 x the solver's time limit when it found no plan (a need is not a decision:
    on a loaded machine a wall-clock limit can run out before the heuristic completes a plan)."""
    for factor in (1.0, 5.0, 25.0):
        try:
            with patience(factor):
                return solve()
        except InfeasibleError:
            if factor == 25.0:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Needs:
    """A window's per-step GPU needs (module docstring): `certified` per minute (LP bound, minimised over the
    estimates the plan in force can have been made for), `scratch` per epoch (the plan from scratch at the
    boundary); `minute_h`, `epoch_h`: the steps' lengths in hours."""

    certified: tuple[int, ...]
    minute_h: tuple[float, ...]
    scratch: tuple[int, ...]
    epoch_h: tuple[float, ...]

    def frontiers(self) -> tuple[Frontier, Frontier]:
        """(certified: any first count; from scratch: the first count the plan from scratch's)."""
        return frontier(self.certified, self.minute_h), frontier(self.scratch, self.epoch_h, free_start=False)


def window_needs(instance: Instance, options) -> Needs:
    """The needs of one run of `run_adapt(instance, options)` (its trace, window, epochs, estimator, cold start,
    lead time and solver), without running a policy: one LP bound per minute and one min-gpus plan from scratch per epoch
    (`min_gpus_memo`, the plans full re-partitioning takes at the boundaries)."""
    from stsched.planning.adapt.baselines import min_gpus_memo
    from stsched.planning.adapt.controller import service_schedule
    from stsched.simulation.traces import load_count_trace

    bin_s = load_count_trace(options.trace).bin_s
    schedule, span, minutes = service_schedule(instance, options)
    per_epoch = int(round(options.epoch_s / bin_s))
    estimator = options.estimator()
    lead = options.lead(instance)
    names = instance.service_names
    cold = options.cold(instance, schedule)
    popts = options.policy_options()
    lp, minute_h, scratch, epoch_h = [], [], [], []
    for m in range(minutes):
        t0, t1 = m * bin_s, min((m + 1) * bin_s, span)
        est = estimator.estimate(schedule, bin_s, max(0.0, t0 - lead))
        # certified: the lowest of the readings a decision in the minute can make (up to the standby lead, or at t0
        # itself: `emergency_fresh`; the detector's at t0 + detect_s, up to the lead before it, which for a lead
        # that is not a whole number of minutes can read other minutes than both), never floored by the declared
        # rates (the unfloored need holds with or without that floor); without a lead the readings are one
        low = est if lead == 0 else np.minimum(est, estimator.estimate(schedule, bin_s, t0))
        if options.detect_s is not None and lead > 0:
            low = np.minimum(low, estimator.estimate(schedule, bin_s, max(0.0, t0 + options.detect_s - lead)))
        if m == 0 and cold is not None and cold.observed:  # the observed start replaces the initial estimate with
            low = np.minimum(low, cold.declared)  # its count's upper bound, which can fall below it (0.135 %)
        lp.append(int(lp_bound_gpus(instance.with_rates({n: float(r) for n, r in zip(names, low)}))))
        minute_h.append((t1 - t0) / 3600.0)
        if m % per_epoch == 0:
            if cold is not None:  # the controller's cold start: the declared rates floor the first plans' estimates
                est = cold.rates(est, t0, m == 0)
            inst = instance.with_rates({n: float(r) for n, r in zip(names, est)})
            scratch.append(_patient(lambda: min_gpus_memo(inst, popts).gpus_used))
            epoch_h.append(0.0)
        epoch_h[-1] += (t1 - t0) / 3600.0
    certified = window_minimum(lp, list(range(0, minutes, per_epoch)))
    return Needs(tuple(certified), tuple(minute_h), tuple(scratch), tuple(epoch_h))
