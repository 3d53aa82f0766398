"""Issue 18: re-use of layouts seen before (`stsched.planning.adapt.reuse`)."""

from __future__ import annotations

from stsched.checker import check
from stsched.plan import GpuLayout, Partition, Plan, Tenant, layout_changes
from stsched.planning.adapt import Adaptive, PolicyOptions
from stsched.planning.adapt.rebalance import service_capacities
from stsched.planning.adapt.reuse import LayoutCache, layout_key
from stsched.scenarios import gpulet_mix


def _vgg(n: int, size: float = 60.0) -> Plan:
    return Plan(tuple(GpuLayout((Partition(size, (Tenant("vgg16", 16, 100.0),)),)) for _ in range(n)))


VGG = gpulet_mix("m2", 40, rate=800.0).subset(["vgg16"])


def test_layout_key_ignores_order_and_tenants():
    a = Plan((GpuLayout((Partition(40.0, (Tenant("a", 1, 1.0),)),)), GpuLayout((Partition(60.0, (Tenant("a", 1, 1.0),)),))))
    b = Plan((GpuLayout((Partition(60.0, (Tenant("b", 2, 5.0),)),)), GpuLayout(),
              GpuLayout((Partition(40.0, (Tenant("c", 4, 2.0),)),))))
    assert layout_key(a) == layout_key(b)


def test_cache_keeps_recent_distinct_plans():
    cache = LayoutCache(size=2)
    for n in (1, 2, 1, 3):
        cache.remember(_vgg(n))
    assert [p.gpus_used for p in cache.plans] == [3, 1]


def test_a_cached_plan_is_reused_only_when_it_still_serves_the_rates():
    """Two GPUs seen before, three in force: the two are offered (one GPU switched off, no layout rebuilt) at a
    rate they carry, and not at a rate beyond their capacity."""
    cache = LayoutCache()
    cache.remember(_vgg(2))
    three = _vgg(3)
    cap2 = service_capacities(VGG, _vgg(2))["vgg16"]
    ok = list(cache.candidates(VGG.with_rates({"vgg16": 0.9 * cap2}), three, fewer=True))
    assert len(ok) == 1
    plan = ok[0][1]
    assert plan.gpus_used == 2 and layout_changes(three, plan) == 1
    assert check(VGG.with_rates({"vgg16": 0.9 * cap2}), plan).valid
    assert list(cache.candidates(VGG.with_rates({"vgg16": 1.1 * cap2}), three, fewer=True)) == []
    assert list(cache.candidates(VGG.with_rates({"vgg16": 0.9 * cap2}), three, fewer=False)) == []


def test_adaptive_scales_up_back_to_layouts_seen_before():
    """The plan went from three 60 % GPUs to two; when the rate comes back, re-use switches the third GPU on with
    its old layout (one change, the two kept), where the heuristic's adapt rebuilds both (ranked by changes: no
    rent, so GPUs are not weighed)."""
    policy = Adaptive(PolicyOptions(time_limit_s=5.0, reuse=True, adapt_solver="", compact_rent=None))
    policy._cache.remember(_vgg(3))
    two = _vgg(2)
    cap2, cap3 = (service_capacities(VGG, _vgg(n))["vgg16"] for n in (2, 3))
    up = VGG.with_rates({"vgg16": (cap2 + cap3) / 2})
    plan, note = policy.next(up, two)
    assert check(up, plan).valid and plan.gpus_used == 3 and layout_changes(two, plan) == 1, note
