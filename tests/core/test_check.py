"""Each rule of the checker: one hand-made plan that breaks exactly that rule is rejected with that reason."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stsched.checker import Rule, check
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Interference, LatencyTable, Margin
from tests.conftest import make_mps_instance


def plan_of(*gpus) -> Plan:
    return Plan(tuple(GpuLayout(tuple(g)) for g in gpus))


def shared(b0=4, b1=2, r0=100.0, r1=50.0, duty=None, size=50.0) -> Partition:
    # s0: (2 + b) * 100 / p ms; s1: (3 + 1.5 b) * 100 / p ms.  At p=50, b0=4, b1=2: 12 ms + 12 ms = 24 ms cycle.
    return Partition(size, (Tenant("s0", b0, r0), Tenant("s1", b1, r1)), duty)


def rules(report) -> set[Rule]:
    return {v.rule for v in report.violations}


def test_valid_plan_passes_with_hand_computed_metrics(mps_instance):
    report = check(mps_instance, plan_of([shared()]))
    assert report.valid, report.violations
    assert report.stats.gpus_used == 1
    assert report.stats.worst_latency_ms["s0"] == pytest.approx(36.0)  # cycle 24 + own exec 12
    assert report.stats.worst_latency_ms["s1"] == pytest.approx(36.0)
    assert report.stats.served == {"s0": 100.0, "s1": 50.0}
    # busy: s0 25 batches/s * 12 ms + s1 25 batches/s * 12 ms = 0.6 of the time, on half the GPU
    assert report.stats.partition_busy[0][2] == pytest.approx(0.6)
    assert report.stats.capacity_used == pytest.approx(0.5)


@pytest.mark.parametrize("plan, rule", [
    (plan_of([replace(shared(), size=30.0)]), Rule.LAYOUT),  # size not allowed
    (plan_of([shared(size=60.0), Partition(50.0, ())]), Rule.LAYOUT),  # 110 % > capacity
    (plan_of([shared(), Partition(20.0, ()), Partition(20.0, ())]), Rule.LAYOUT),  # 3 > 2 partitions
    (plan_of([shared(duty=20.0)]), Rule.DUTY),  # duty below 24 ms
    (plan_of([shared(r0=100.0), Partition(50.0, (Tenant("s0", 1, 1.0),))]), None),  # control: valid
])
def test_layout_and_duty_rules(mps_instance, plan, rule):
    report = check(mps_instance, plan)
    if rule is None:
        assert report.valid, report.violations
    else:
        assert rule in rules(report), report.violations
        assert rules(report) <= {rule, Rule.PROFILE, Rule.COVERAGE}  # an unprofiled size has no latency either


def test_throughput_rule(mps_instance):
    # s0 is credited 1000 * 4 / 24 = 166.7 req/s; claim 200 (coverage itself is met)
    report = check(mps_instance, plan_of([shared(r0=200.0)]))
    assert rules(report) == {Rule.THROUGHPUT}
    (v,) = report.violations
    assert v.service == "s0" and v.gpu == 0 and v.partition == 0


def test_latency_rule(mps_instance):
    # s0 batch 8: exec 20 ms, cycle 32 ms, latency 52 ms > SLO 50
    report = check(mps_instance, plan_of([shared(b0=8)]))
    assert rules(report) == {Rule.LATENCY}
    assert report.violations[0].service == "s0"


def test_coverage_rule(mps_instance):
    report = check(mps_instance, plan_of([shared(r1=40.0)]))
    assert rules(report) == {Rule.COVERAGE}
    assert report.violations[0].service == "s1"


def test_coverage_uses_plan_scale(mps_instance):
    plan = replace(plan_of([shared(r0=150.0, r1=75.0)]), scale=1.5)
    assert check(mps_instance, plan).valid
    assert rules(check(mps_instance, replace(plan, scale=1.6))) == {Rule.COVERAGE}


def test_memory_rule():
    inst = make_mps_instance(memory=(80_000.0, 2000.0))
    report = check(inst, plan_of([shared()]))
    assert rules(report) == {Rule.MEMORY}


def test_gpu_count_rule():
    inst = make_mps_instance(gpus=1)
    plan = plan_of([Partition(50.0, (Tenant("s0", 4, 100.0),))], [Partition(50.0, (Tenant("s1", 2, 50.0),))])
    assert rules(check(inst, plan)) == {Rule.GPUS}


def test_tenant_limit_rule(mps_instance):
    inst = replace(mps_instance, mechanism=replace(mps_instance.mechanism, max_tenants=1))
    assert rules(check(inst, plan_of([shared()]))) == {Rule.LAYOUT}


def test_batch_and_profile_rules(mps_instance):
    report = check(mps_instance, plan_of([shared(b0=3)]))
    assert Rule.BATCH in rules(report) and Rule.PROFILE in rules(report)
    # a table without the (batch 4, size 50) entry: only the profile rule (and coverage of what is not served)
    t0 = mps_instance.table("m0")
    holed = LatencyTable("m0", tuple(e for e in t0.entries if not (e.batch == 4 and e.size == 50.0)))
    inst = replace(mps_instance, tables=(holed, mps_instance.table("m1")))
    assert rules(check(inst, plan_of([shared()]))) == {Rule.PROFILE, Rule.COVERAGE}


def test_unknown_service_is_reported(mps_instance):
    plan = plan_of([shared(), Partition(20.0, (Tenant("ghost", 1, 1.0),))])
    report = check(mps_instance, plan)
    assert Rule.SERVICE in rules(report)
    assert any(v.service == "ghost" for v in report.violations)


def test_interference_slows_neighbours_down():
    # gpulet-linear with only a constant 1.5: every tenant with a neighbour runs 1.5x slower
    inst = make_mps_instance(interference=Interference("gpulet-linear", (0.0, 0.0, 0.0, 0.0, 1.5)))
    alone = plan_of([shared()])
    assert check(inst, alone).valid  # no neighbour partition: no slowdown
    crowded = plan_of([shared(), Partition(50.0, (Tenant("s0", 1, 1.0),))])
    report = check(inst, crowded)
    assert Rule.LATENCY in rules(report) or Rule.THROUGHPUT in rules(report)
    # 36 ms * 1.5 = 54 ms > 50 ms SLO of s0
    assert report.stats.worst_latency_ms["s0"] == pytest.approx(54.0)


def test_margin_applies_to_latency_and_slo():
    inst = make_mps_instance(margin=Margin(latency_factor=1.1))
    report = check(inst, plan_of([shared()]))  # exec 13.2 + 13.2 -> cycle 26.4, s0 latency 39.6
    assert report.valid
    assert report.stats.worst_latency_ms["s0"] == pytest.approx(1.1 * 36.0)
    tight = make_mps_instance(margin=Margin(slo_factor=0.5))  # s0 budget 25 ms < 36 ms
    assert rules(check(tight, plan_of([shared()]))) == {Rule.LATENCY}


def test_a_start_slot_on_an_mps_partition_is_a_violation(mps_instance):
    # it was accepted and ignored: the checker judged a plan other than the one given
    assert check(mps_instance, plan_of([shared()])).valid
    report = check(mps_instance, plan_of([replace(shared(), start=0)]))
    assert Rule.LAYOUT in rules(report) and "start slot" in report.violations[0].message
