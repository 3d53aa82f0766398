"""Re-planning policies: what plan to run in the next epoch, given the estimated rates and the plan in force.

* `static-peak`: one plan for every service's peak rate over the whole trace (hindsight), times the same
  headroom as the others, never changed.
* `full-repartition` (gpulet-style): every epoch a min-gpus plan from scratch for the estimated rates.  Its GPUs
  are aligned onto the old indices so that identical layouts stay in place (`stsched.adapt.cost.align`): the
  most favourable count of its reconfigurations.
* `adaptive` (stsched): first rebalance the rate shares of the plan in force (`stsched.adapt.rebalance`: no
  layout change at all).  Only if that cannot carry the new rates, two candidates, the one changing fewer layouts
  (then using fewer GPUs) wins: scale-out (keep every layout, add GPUs from a min-gpus plan for each service's
  deficit) and the solver's adapt objective (`Objective.ADAPT` with the plan in force as `current_plan`); a
  min-gpus plan from scratch (aligned) if both fail.  Then, while it holds `release_slack` or more GPUs above
  what a min-gpus plan for the same rates needs, it switches off the least-loaded GPU whose load the others
  absorb by rebalancing alone (one reconfiguration each, no downtime for anyone); if it still holds
  `compact_slack` or more GPUs above that, it re-plans from scratch (aligned), like full re-partitioning.
All plans come from the solver registry and are judged by the checker (`run_solver`); a plan the checker rejects
is never used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Protocol

from stsched.adapt.cost import align, gpu_layout, layout_changes
from stsched.adapt.rebalance import gpu_load, rebalance, tenant_capacities, without_gpu
from stsched.errors import InfeasibleError, InputError
from stsched.plan import Plan
from stsched.problem import Instance
from stsched.solve import Objective, SolveOptions, run_solver

log = logging.getLogger(__name__)

POLICIES = ("static-peak", "full-repartition", "adaptive")


@dataclass(frozen=True)
class PolicyOptions:
    """`solver`: registered solver name; `time_limit_s` per call; `release_slack`: GPUs above the min-gpus plan
    before the adaptive policy tries to switch some off; `release_tries`: least-loaded GPUs tried per release;
    `compact_slack`: GPUs above the min-gpus plan that make the adaptive policy re-plan from scratch."""

    solver: str = "heuristic"
    time_limit_s: float = 30.0
    seed: int = 0
    release_slack: int = 1
    release_tries: int = 3
    compact_slack: int = 3


class Policy(Protocol):
    name: str

    def initial(self, instance: Instance) -> Plan: ...

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]: ...


def _solve(instance: Instance, opts: PolicyOptions, objective: Objective, current: Plan | None = None) -> Plan:
    options = SolveOptions(objective=objective, time_limit_s=opts.time_limit_s, seed=opts.seed,
                           current_plan=current)
    judged = run_solver(opts.solver, instance, options)
    plan = judged.result.plan
    if plan is None or not judged.valid:
        why = judged.result.message or judged.result.status.value
        if judged.report is not None and not judged.report.valid:
            why += "; " + "; ".join(str(v) for v in judged.report.violations[:2])
        raise InfeasibleError(f"{opts.solver} ({objective.value}) found no valid plan: {why}")
    return plan


def min_gpus(instance: Instance, opts: PolicyOptions) -> Plan:
    return _solve(instance, opts, Objective.MIN_GPUS).compact()


@dataclass
class StaticPeak:
    peak: Instance
    opts: PolicyOptions = PolicyOptions()
    name: str = "static-peak"

    def initial(self, instance: Instance) -> Plan:
        return min_gpus(self.peak, self.opts)

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]:
        return current, "static: plan for the peak kept"


@dataclass
class FullRepartition:
    opts: PolicyOptions = PolicyOptions()
    name: str = "full-repartition"

    def initial(self, instance: Instance) -> Plan:
        return min_gpus(instance, self.opts)

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]:
        fresh = align(current, min_gpus(instance, self.opts))
        return fresh, f"min-gpus from scratch: {fresh.gpus_used} GPUs"


@dataclass
class Adaptive:
    opts: PolicyOptions = PolicyOptions()
    name: str = "adaptive"

    def initial(self, instance: Instance) -> Plan:
        return min_gpus(instance, self.opts)

    def _adapt(self, instance: Instance, current: Plan) -> Plan | None:
        try:
            return _solve(instance, self.opts, Objective.ADAPT, current)
        except InfeasibleError as e:
            log.info("adapt failed: %s", e)
            return None

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]:
        fresh = min_gpus(instance, self.opts)
        target = fresh.gpus_used
        plan = rebalance(instance, current)
        if plan is not None:
            note = "rebalanced inside the layouts"
        else:
            candidates = []
            for how, cand in (("scale-out", self._scale_out(instance, current)),
                              (f"{self.opts.solver} adapt", self._adapt(instance, current))):
                if cand is not None:
                    candidates.append(((layout_changes(current, cand), cand.gpus_used), how, cand))
            if candidates:
                (changes, _), how, plan = min(candidates, key=lambda c: c[0])
                note = f"{how}: {changes} change(s)"
            else:
                plan, note = align(current, fresh), "min-gpus from scratch"
        released = 0
        while plan.gpus_used - target >= self.opts.release_slack:
            better = self._release(instance, plan)
            if better is None:
                break
            plan, released = better, released + 1
        if released:
            note += f", {released} GPU(s) switched off"
        if plan.gpus_used - target >= self.opts.compact_slack:
            plan, note = align(current, fresh), note + f"; compacted from scratch ({plan.gpus_used} GPUs held)"
        return plan, note + f" ({plan.gpus_used} GPUs, min-gpus {target})"

    def _scale_out(self, instance: Instance, current: Plan) -> Plan | None:
        """Keep every layout and add GPUs for what the plan in force cannot carry: a min-gpus plan for each
        service's deficit (its rate minus its tenants' capacity), on free GPU indices, then rebalance."""
        caps: dict[str, float] = {}
        for (gi, qi, ti), c in tenant_capacities(instance, current).items():
            name = current.gpus[gi].partitions[qi].tenants[ti].service
            caps[name] = caps.get(name, 0.0) + c
        deficit = {s.name: s.rate - caps.get(s.name, 0.0) for s in instance.services}
        deficit = {n: d * (1 + 1e-6) for n, d in deficit.items() if d > 1e-9 * max(1.0, instance.service(n).rate)}
        if not deficit:
            return None
        try:
            extra = min_gpus(instance.subset(deficit).with_rates(deficit), self.opts)
        except (InfeasibleError, InputError) as e:
            log.info("scale-out failed: %s", e)
            return None
        gpus = list(current.gpus)
        free = [k for k, g in enumerate(gpus) if not gpu_layout(g)]
        for g in extra.gpus:
            if not gpu_layout(g):
                continue
            if free:
                gpus[free.pop(0)] = g
            else:
                gpus.append(g)
        return rebalance(instance, replace(current, gpus=tuple(gpus)))

    def _release(self, instance: Instance, plan: Plan) -> Plan | None:
        """Switch off the least-loaded GPU whose load the other GPUs absorb by rebalancing alone."""
        used = [k for k, g in enumerate(plan.gpus) if gpu_layout(g)]
        for k in sorted(used, key=lambda k: gpu_load(instance, plan, k))[:self.opts.release_tries]:
            trial = rebalance(instance, without_gpu(plan, k))
            if trial is not None:
                return trial
        return None


def make_policy(name: str, peak: Instance, opts: PolicyOptions = PolicyOptions()) -> Policy:
    if name == "static-peak":
        return StaticPeak(peak, opts)
    if name == "full-repartition":
        return FullRepartition(opts)
    if name == "adaptive":
        return Adaptive(opts)
    raise InputError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")

