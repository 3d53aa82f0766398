"""The Poisson margin is never more conservative than the per-batch rule: a plan that keeps every tenant within
`procs x 1000 x batch_credit(b, x) / d` (the rule before the per-tenant model) is valid for the checker."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.checker import check, cycle_rate
from stsched.plan import GpuLayout, Plan
from stsched.problem import ThroughputRule
from stsched.queueing import batch_credit
from stsched.registry import SolveOptions, run_solver
from stsched.scenarios import random_instance
from stsched.timing import cycle_ms, gpu_timings


def per_batch_plan(inst, plan: Plan, x: float) -> tuple[Plan, dict[str, float]]:
    """`plan` with every tenant's rate cut to its per-batch capacity (recomputed here, apart from the checker) and
    the rates it then serves per service."""
    gpus, served = [], {}
    for layout in plan.gpus:
        parts = []
        for p, times in zip(layout.partitions, gpu_timings(inst, layout)):
            d = p.duty_ms if p.duty_ms is not None else cycle_ms(times)
            tenants = []
            for t, tt in zip(p.tenants, times):
                entry = inst.entry(t.service, t.batch, p.size, p.procs)
                if (inst.throughput_rule is ThroughputRule.MEASURED and len(p.tenants) == 1
                        and entry.throughput_rps is not None):  # ParvaGPU's measured per-process throughput
                    cap = p.procs * entry.throughput_rps * entry.latency_ms / tt.exec_ms * batch_credit(t.batch, x) / t.batch
                else:
                    cap = cycle_rate(batch_credit(t.batch, x), d, p.procs)
                rate = min(t.rate, cap)
                served[t.service] = served.get(t.service, 0.0) + rate
                tenants.append(replace(t, rate=rate))
            parts.append(replace(p, tenants=tuple(tenants)))
        gpus.append(GpuLayout(tuple(parts)))
    return replace(plan, gpus=tuple(gpus)), served


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), services=st.integers(2, 10), x=st.sampled_from([0.01, 0.05, 0.1]),
       device=st.sampled_from(["a100-mps", "a100-mig", "v100-mps"]))
def test_a_plan_valid_under_the_per_batch_rule_stays_valid(seed, services, x, device):
    inst = random_instance(services, 2, seed, device=device, arrivals="deterministic").with_gpus(2 * services)
    plan = run_solver("heuristic", inst, SolveOptions(time_limit_s=5.0)).result.plan
    if plan is None:
        return
    cut, served = per_batch_plan(inst, plan, x)
    offered = inst.with_rates(served).with_late_share(x)  # the rates the cut plan serves exactly
    report = check(offered, cut)
    assert report.valid, report.violations
