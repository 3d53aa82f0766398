"""MIG placement legality and the measured-throughput rule (ParvaGPU's segments)."""

from __future__ import annotations

import pytest

from stsched.checker import Rule, check, find_mig_starts
from stsched.devices import mig_mechanism
from stsched.plan import GpuLayout, Partition, Plan, Tenant


def one_gpu(*parts) -> Plan:
    return Plan((GpuLayout(tuple(parts)),))


@pytest.mark.parametrize("sizes, legal", [
    ((7,), True), ((4, 3), True), ((3, 3), True), ((4, 2, 1), True), ((1,) * 7, True), ((2, 2, 2, 1), True),
    ((3, 1, 3), False), ((4, 4), False), ((7, 1), False), ((3, 2, 2, 1), False), ((1,) * 8, False),
])
def test_mig_layouts(sizes, legal):
    parts = tuple(Partition(float(s), ()) for s in sizes)
    assert (find_mig_starts(mig_mechanism().placements, parts) is not None) == legal


def test_given_start_is_respected():
    m = mig_mechanism()
    assert find_mig_starts(m.placements, (Partition(3.0, (), start=4), Partition(4.0, ()))) == (4, 0)
    assert find_mig_starts(m.placements, (Partition(3.0, (), start=0), Partition(4.0, ()))) is None
    assert find_mig_starts(m.placements, (Partition(2.0, (), start=1),)) is None  # 2g starts at 0, 2, 4


def test_measured_throughput_segments(mig_instance):
    # size 3, batch 4, 2 procs: 21 ms per batch, 2 * 190.5 req/s measured; latency 2 * 21 <= 0.9 * 60
    ok = one_gpu(Partition(3.0, (Tenant("s0", 4, 300.0),), procs=2))
    assert check(mig_instance, ok).valid
    over = one_gpu(Partition(3.0, (Tenant("s0", 4, 300.0),), procs=1))  # one process: 190.5 req/s
    report = check(mig_instance, over)
    assert {v.rule for v in report.violations} == {Rule.THROUGHPUT}
    slow = one_gpu(Partition(3.0, (Tenant("s0", 8, 300.0),), procs=2))  # 35 ms: 70 > 54 ms budget
    assert {v.rule for v in check(mig_instance, slow).violations} == {Rule.LATENCY}


def test_illegal_mig_layout_is_rejected(mig_instance):
    plan = one_gpu(Partition(3.0, (Tenant("s0", 4, 300.0),), procs=2), Partition(1.0, ()), Partition(3.0, ()))
    report = check(mig_instance, plan)
    assert {v.rule for v in report.violations} == {Rule.LAYOUT}
    assert "no legal MIG placement" in report.violations[0].message


def test_processes_need_a_single_tenant(mig_instance):
    plan = one_gpu(Partition(7.0, (Tenant("s0", 1, 300.0), Tenant("s0", 2, 1.0)), procs=2))
    assert Rule.LAYOUT in {v.rule for v in check(mig_instance, plan).violations}
