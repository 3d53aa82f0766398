"""Baseline re-planning policies with one knob each, for frontiers of reconfigurations against GPU-hours.

* `periodic` (full re-partitioning every k decisions, `PolicyOptions.period` = k): a min-gpus plan from scratch
  (aligned onto the old GPU indices, as `full-repartition`) at every k-th decision; in between the plan in force is
  kept with its rate shares rebalanced (no layout change), and re-planned from scratch only when it cannot carry
  the estimated rates (an emergency: a plan that cannot serve is never kept).  k = 1 is `full-repartition`.
* `practitioner` (what an operator scripts: re-plan only when it saves at least k GPUs for m decisions, with
  hysteresis; `PolicyOptions.save_gpus` = k, `save_for` = m): scale up at once (from scratch, aligned) when the plan
  in force cannot carry the estimate even with rebalanced shares; scale down (from scratch, aligned) only once a
  plan from scratch has needed at least k GPUs fewer at m consecutive decisions.  The band between the two rules is
  the hysteresis: a plan in force that carries the rates and holds fewer than k spare GPUs, or held them for fewer
  than m decisions, is kept.

Both ask the registered solver for min-gpus plans only.  Plans for the same rates are memoised within a process
(`min_gpus_memo`: the same instance, rates, solver, time limit, seed and parameters give the plan found the first
time), so that sweeping k over one window does not solve the same rates again; with a solver that stops at its time
limit this also makes the sweep's points agree on the plan they take for the same rates.  A memoised plan keeps the
`clock_watch` entries of the call that found it and adds them to the watch of every decision that re-uses it, so a
decision's `clock_cut` does not depend on which decisions (or runs) solved the same rates before.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from stsched.plan import Plan
from stsched.planning.adapt.calls import _CLOCK, clock_watch, min_gpus
from stsched.planning.adapt.rebalance import rebalance, retenant
from stsched.problem import Instance
from stsched.reconfig import align

log = logging.getLogger(__name__)

MEMO_SIZE = 4096
_MEMO: OrderedDict[tuple, tuple[Plan, tuple[str, ...]]] = OrderedDict()  # key -> (plan, its clock_watch entries)


def _key(instance: Instance, opts) -> tuple:
    return (instance.name, instance.device, instance.mechanism, instance.margin, instance.batches, instance.gpus,
            tuple(t.model for t in instance.tables), tuple((s.name, s.rate) for s in instance.services),
            opts.solver, opts.time_limit_s, opts.seed, opts.params)


def min_gpus_memo(instance: Instance, opts) -> Plan:
    """`stsched.planning.adapt.calls.min_gpus`, memoised per process (module docstring); raises as it does."""
    key = _key(instance, opts)
    outer = _CLOCK.get()
    hit = _MEMO.get(key)
    if hit is not None:
        _MEMO.move_to_end(key)
        plan, entries = hit
    else:
        with clock_watch() as entries:  # the call's own entries, kept with its plan
            try:
                plan = min_gpus(instance, opts)
            finally:
                if outer is not None:
                    outer.extend(entries)
        _MEMO[key] = plan, tuple(entries)
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
        return plan
    if outer is not None:  # a re-used plan reports the clock of the call that found it
        outer.extend(entries)
    return plan


def _carry(instance: Instance, current: Plan) -> Plan | None:
    """The plan in force carrying the new rates with its layouts kept (rate shares, then tenants), or None."""
    return rebalance(instance, current) or retenant(instance, current)


@dataclass
class Periodic:
    opts: object
    name: str = "periodic"
    _decision: int = 0

    def initial(self, instance: Instance) -> Plan:
        return min_gpus_memo(instance, self.opts)

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]:
        self._decision += 1
        if self._decision % self.opts.period != 0:
            kept = _carry(instance, current)
            if kept is not None:
                return kept, f"kept until the next full re-partitioning ({kept.gpus_used} GPUs)"
        fresh = align(current, min_gpus_memo(instance, self.opts))
        why = "every" if self._decision % self.opts.period == 0 else "emergency,"
        return fresh, f"min-gpus from scratch ({why} {self.opts.period} decisions): {fresh.gpus_used} GPUs"


@dataclass
class Practitioner:
    opts: object
    name: str = "practitioner"
    _saving_since: int | None = None  # first of the consecutive decisions at which a fresh plan saved >= k GPUs
    _decision: int = 0

    def initial(self, instance: Instance) -> Plan:
        return min_gpus_memo(instance, self.opts)

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]:
        self._decision += 1
        kept = _carry(instance, current)
        fresh = min_gpus_memo(instance, self.opts)
        if kept is None:
            self._saving_since = None
            plan = align(current, fresh)
            return plan, f"scale-up from scratch: {plan.gpus_used} GPUs"
        if current.gpus_used - fresh.gpus_used < self.opts.save_gpus:
            self._saving_since = None
            return kept, f"kept ({kept.gpus_used} GPUs, a fresh plan needs {fresh.gpus_used})"
        if self._saving_since is None:
            self._saving_since = self._decision
        held = self._decision - self._saving_since + 1
        if held < self.opts.save_for:
            return kept, f"kept: saving {current.gpus_used - fresh.gpus_used} GPU(s) seen {held}/{self.opts.save_for}"
        self._saving_since = None
        plan = align(current, fresh)
        return plan, f"scale-down from scratch after {held} decisions: {plan.gpus_used} GPUs"
