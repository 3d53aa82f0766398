"""Issue 18: one GPU off for one layout change (stsched.planning.adapt.shed) and the switch-off rent."""

from __future__ import annotations

import pytest

from stsched.checker import check
from stsched.plan import GpuLayout, Partition, Plan, Tenant, layout_changes, tenant_changes
from stsched.planning.adapt.policies import Adaptive, PolicyOptions
from stsched.planning.adapt.rebalance import rebalance, retenant, without_gpu
from stsched.planning.adapt.shed import fill_slack, first_switch_off, gpu_legal, shed, switch_offs
from stsched.scenarios import gpulet_mix


@pytest.fixture(scope="module")
def two():
    inst = gpulet_mix("m2", 4, rate=100.0)
    a, b = inst.services[0].name, inst.services[1].name  # resnet50, vgg16
    return inst.subset({a: 1.0, b: 1.0}), a, b


def _plan(inst, a, b, batch_b=4):
    p = Plan((GpuLayout((Partition(100.0, (Tenant(a, 4, 0.0),)),)),
              GpuLayout((Partition(100.0, (Tenant(b, batch_b, 0.0),)),))))
    return rebalance(inst, p)


@pytest.mark.parametrize("rate_b", [50.0, 400.0])
def test_one_gpu_off_moves_its_service_into_a_kept_partition(two, rate_b):
    """GPU 1 serves vgg16 alone; switched off, vgg16 becomes a second tenant of GPU 0's partition (at a batch that
    carries its rate): checker-valid, one layout change, the other layout kept; rebalancing and re-tenanting alone
    cannot do it."""
    base, a, b = two
    inst = base.with_rates({a: 50.0, b: rate_b})
    plan = _plan(inst, a, b)
    assert plan is not None and plan.gpus_used == 2
    off = without_gpu(plan, 1)
    assert rebalance(inst, off) is None and retenant(inst, off) is None
    new = shed(inst, plan, 1)
    assert new is not None and check(inst, new).valid
    assert new.gpus_used == 1 and layout_changes(plan, new) == 1
    assert new.gpus[0].layout() == plan.gpus[0].layout() and tenant_changes(plan, new) == 1
    assert {t.service for t in new.gpus[0].partitions[0].tenants} == {a, b}


def test_switch_offs_rebalance_every_gpu_before_filling_slack(two):
    """The shared switch-off rule: every GPU of the order rebalanced first, then (with `fill`) every GPU again with
    the slack filled; `shed` is the first that carries for one GPU, and without `fill` none is filled."""
    base, a, b = two
    inst = base.with_rates({a: 50.0, b: 50.0})
    plan = _plan(inst, a, b)
    got = list(switch_offs(inst, plan, [1, 0], fill=True))
    assert [how for how, _ in got] == ["one GPU off"] * 2 + ["one GPU off, slack filled"] * 2
    assert [p for _, p in got] == [rebalance(inst, without_gpu(plan, 1)), rebalance(inst, without_gpu(plan, 0)),
                                   fill_slack(inst, without_gpu(plan, 1)), fill_slack(inst, without_gpu(plan, 0))]
    assert len(list(switch_offs(inst, plan, [1, 0], fill=False))) == 2
    tight = base.with_rates({a: 50.0, b: 400.0})  # GPU 1 off: only filling GPU 0's slack carries vgg16
    plan = _plan(tight, a, b)
    assert first_switch_off(tight, plan, [1], fill=False) is None
    filled = fill_slack(tight, without_gpu(plan, 1))
    assert filled is not None and shed(tight, plan, 1) == first_switch_off(tight, plan, [1], fill=True) == filled


def test_shed_refuses_what_the_slack_cannot_carry(two):
    base, a, b = two
    inst = base.with_rates({a: 700.0, b: 1000.0})
    plan = _plan(inst, a, b, batch_b=8)
    assert plan is not None
    assert shed(inst, plan, 1) is None and fill_slack(inst, without_gpu(plan, 1)) is None


def test_gpu_legal_sees_the_latency_of_a_longer_cycle(two):
    base, a, b = two
    big = max(base.batches)
    g = GpuLayout((Partition(20.0, (Tenant(a, big, 0.0), Tenant(b, big, 0.0))),))
    assert not gpu_legal(base, g)
    assert gpu_legal(base, GpuLayout((Partition(100.0, (Tenant(a, 1, 0.0),)),)))


def test_switch_offs_are_bought_at_their_own_rent(two):
    """A plan with a GPU that the others can absorb: at the default rent (12 GPU-decisions per change) it is kept
    for 12 decisions; with `off_rent` 2 it is switched off after 2 (one change)."""
    base, a, b = two

    def decisions_until_off(**kw) -> tuple[int, int]:
        pol = Adaptive(PolicyOptions(time_limit_s=5.0, adapt_solver="", **kw))
        inst = base.with_rates({a: 50.0, b: 50.0})
        plan = _plan(inst, a, b)
        pol.initial(inst)
        for d in range(1, 30):
            new, _ = pol.next(inst, plan)
            if new.gpus_used < plan.gpus_used:
                return d, layout_changes(plan, new)
            plan = new
        return 0, 0

    default, cheap = decisions_until_off(), decisions_until_off(off_rent=2.0, shed=True)
    assert cheap == (2, 1)
    assert default[0] > cheap[0]
