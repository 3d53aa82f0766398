"""One count of a tenant's capacity: `stsched.checker.capacities` is what `check` compares rates with, and `show`
(`stsched.view.plan_view`), the safety warning and the adaptive rebalance read it.  Under a Poisson margin a tenant
is credited at its share of its service's requests; a view that counted it at share 1 showed valid plans' tenants
above 100 % of their capacity."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import make_mps_instance

from stsched.checker import REL_TOL, Rule, capacities, check, duty_of, tenant_capacity
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.safety import overloads
from stsched.timing import TimingMemo
from stsched.view import format_text, plan_view

# s0 (300 req/s) spread over three partitions, one of them time-shared with s1: several tenants per service
POISSON = make_mps_instance(rates=(300.0, 50.0), slos=(60.0, 80.0), gpus=3).with_arrivals("poisson")


def _plan(r0: float, r1: float, r2: float, s1: float = 50.0) -> Plan:
    return Plan((GpuLayout((Partition(50.0, (Tenant("s0", 8, r0),)),
                            Partition(50.0, (Tenant("s0", 8, r1), Tenant("s1", 4, s1))))),
                 GpuLayout((Partition(100.0, (Tenant("s0", 8, r2),)),))))


def _view_caps(inst, plan) -> dict[tuple[int, int, int], float]:
    view = plan_view(inst, plan)
    return {(p.gpu, p.index, ti): t.capacity for parts in view.gpus for p in parts
            for ti, t in enumerate(p.tenants)}


def _share_one(inst, plan) -> dict[tuple[int, int, int], float]:
    memo, out = TimingMemo(inst), {}
    for gi, g in enumerate(plan.gpus):
        for qi, (p, times) in enumerate(zip(g.partitions, memo(g))):
            for ti, (t, tt) in enumerate(zip(p.tenants, times)):
                out[(gi, qi, ti)] = tenant_capacity(inst, t.service, t.batch, p.size, p.procs, tt.exec_ms,
                                                    duty_of(p, times), len(p.tenants))
    return out


def test_show_counts_the_checkers_capacity_at_each_tenants_share():
    plan = _plan(100.0, 100.0, 100.0)
    assert check(POISSON, plan).valid
    caps = capacities(POISSON, plan)
    assert _view_caps(POISSON, plan) == caps and len(caps) == 4
    one = _share_one(POISSON, plan)
    # each s0 tenant takes a third of its service's requests: more credit than at share 1 (what show counted)
    assert all(caps[k] > one[k] * (1 + 1e-3) for k in ((0, 0, 0), (0, 1, 0), (1, 0, 0)))
    assert caps[(0, 1, 1)] == one[(0, 1, 1)]  # s1 alone serves its service: share 1
    # a tenant between the two counts: valid, and show says so (load <= 100 %), not above its capacity
    r = (caps[(0, 0, 0)] + one[(0, 0, 0)]) / 2
    mid = _plan(r, 150.0, 890.0 - r)  # r / 1040 rounds to the same share (2^(-3/2)) as a third: its capacity stays
    assert capacities(POISSON, mid)[(0, 0, 0)] == caps[(0, 0, 0)] and check(POISSON, mid).valid
    row = next(line for line in format_text(plan_view(POISSON, mid)).splitlines() if f"{r:.1f}/" in line)
    assert f"{r:.1f}/{caps[(0, 0, 0)]:.1f}" in row


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1.0, 900.0), min_size=3, max_size=3), st.floats(1.0, 80.0))
def test_check_view_and_capacities_agree_on_every_rate_split(rates, s1):
    plan = _plan(*rates, s1)
    caps = capacities(POISSON, plan)
    assert _view_caps(POISSON, plan) == caps
    over = {(v.gpu, v.partition, v.service) for v in check(POISSON, plan).violations if v.rule is Rule.THROUGHPUT}
    want = {(gi, qi, plan.gpus[gi].partitions[qi].tenants[ti].service) for (gi, qi, ti), c in caps.items()
            if plan.gpus[gi].partitions[qi].tenants[ti].rate > c * (1 + REL_TOL) + 1e-9}
    assert over == want


def test_deterministic_warning_reads_the_same_capacities():
    inst = POISSON.with_arrivals("deterministic")
    plan = _plan(100.0, 100.0, 100.0)
    caps = capacities(inst, plan)
    assert caps == _share_one(inst, plan)  # no margin: the credit is the batch at any share
    found = {(o.gpu, o.partition, o.service): o.load for o in overloads(inst, plan, level=0.0)}
    for (gi, qi, ti), c in caps.items():
        t = plan.gpus[gi].partitions[qi].tenants[ti]
        assert abs(found[(gi, qi, t.service)] - t.rate / c) <= 1e-12
