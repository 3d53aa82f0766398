"""The efficiency LP bound (`stsched.bounds.entry_capacity`) credits a multi-process point with at least what the
checker credits any checker-valid partition at that point (session 17's review: a finding that the checker credits
such a partition by the cycle rule at the least Poisson credit, above the measured throughput the bound counts,
which would put `lp_bound_gpus` above an optimum).  It does not: a multi-process partition holds exactly one
tenant (the layout rule), and the checker (`tenant_capacity`) credits a lone tenant under the measured rule with the
measured throughput, slowed down by interference (>= 1); the cycle rule (no throughput or the cycle rule) at the
least credit `credit(b)` per duty cycle d >= e, which the bound's `tenant_credit(.., e, e, share 0)` at d = e
covers.  Tested through `check` itself: a one-partition plan serving exactly the checker's capacity is valid, and
its rate is never above `entry_capacity` (so the service's efficiency covers it)."""

from __future__ import annotations

import functools
from dataclasses import replace

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stsched.bounds import efficiency, entry_capacity, usable_entries
from stsched.checker import capacities, check, exceeds_memory, partition_memory_mb
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import ThroughputRule
from stsched.scenarios import random_instance


@functools.lru_cache(maxsize=None)
def _instance(seed: int, device: str, rule: ThroughputRule, late_share: float):
    inst = random_instance(6, 2, seed, device, arrivals="deterministic")
    return replace(inst, throughput_rule=rule).with_late_share(late_share)


def _points(inst):
    """(service, entry) for every usable multi-process point that meets the SLO and fits the memory rule alone."""
    out = []
    for s in inst.services:
        budget = inst.slo_budget_ms(s.name)
        for e in usable_entries(inst, s.model):
            if e.procs > 1 and entry_capacity(inst, e, budget) is not None and not exceeds_memory(
                    inst, e.size, partition_memory_mb(inst, e.procs, [(s.name, e.batch)])):
                out.append((s.name, e))
    return out


@settings(max_examples=16, deadline=None)
@given(seed=st.integers(0, 3), rule=st.sampled_from(list(ThroughputRule)),
       late_share=st.sampled_from([0.0, 0.01, 0.05, 0.2]), stretch=st.floats(0.0, 1.0))
def test_the_checker_never_credits_a_multi_process_partition_above_the_bound(seed, rule, late_share, stretch):
    inst = _instance(seed, "a100-mig", rule, late_share)  # (MIG: up to 3 processes per partition)
    points = _points(inst)
    assert points
    for name, e in points:  # every multi-process point of the instance, at one legal duty cycle each
        budget = inst.slo_budget_ms(name)
        exec_ms = e.latency_ms * inst.margin.latency_factor  # (alone on its GPU: no interference)
        duty = exec_ms + stretch * max(0.0, budget - 2 * exec_ms)  # e <= d <= budget - e
        part = Partition(e.size, (Tenant(name, e.batch, 0.0),), duty_ms=duty, procs=e.procs)
        cap = capacities(inst, Plan((GpuLayout((part,)),)))[(0, 0, 0)]
        served = Plan((GpuLayout((replace(part, tenants=(Tenant(name, e.batch, cap),)),)),))
        offered = inst.with_rates({s.name: (cap if s.name == name else 0.0) for s in inst.services})
        report = check(offered, served)
        assert report.valid, report.violations  # a checker-valid plan serving the checker's full credit
        bound = entry_capacity(inst, e, budget)
        assert cap <= bound * (1 + 1e-12), (name, e, duty, cap, bound)
        assert cap / e.size <= efficiency(offered, name).per_unit * (1 + 1e-12)
