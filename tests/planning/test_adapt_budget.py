"""Issue 18: the adaptive policy's change budget (full re-partitioning replayed beside it), and what makes its
decisions cheap at scale (GPU capacities memoised per layout, scale-outs instead of large neighbourhoods)."""

from __future__ import annotations

import pytest

from stsched.checker import check, share_one_capacities
from stsched.errors import InputError
from stsched.plan import GpuLayout, Partition, Plan, Tenant, layout_changes
from stsched.planning.adapt import Adaptive, AdaptOptions, PolicyOptions
from stsched.planning.adapt.budget import ShadowFull
from stsched.planning.adapt.calls import min_gpus
from stsched.planning.adapt.rebalance import gpu_capacities, service_capacities
from stsched.scenarios import gpulet_mix, random_instance

LIMIT = 5.0


def _gpu(*sizes: float) -> GpuLayout:
    return GpuLayout(tuple(Partition(s, (Tenant("vgg16", 1, 0.0),)) for s in sizes))


def test_shadow_counts_full_repartitionings_changes_and_the_budget():
    a, b = Plan((_gpu(60.0), _gpu(60.0))), Plan((_gpu(50.0, 50.0), _gpu(40.0), _gpu(60.0)))
    shadow = ShadowFull()
    shadow.step(b)  # before the initial deployment: nothing to replay
    assert shadow.changes == 0
    shadow.start(a)
    shadow.step(b)  # aligned: the 60 % GPU stays, one rebuilt, one switched on
    assert shadow.changes == layout_changes(a, b) - 1 == 2
    shadow.step(None)  # no plan from scratch found: full re-partitioning keeps its plan
    assert shadow.changes == 2
    shadow.spent(a, a)
    assert shadow.own == 0 and shadow.fits(0.5, 1) and not shadow.fits(0.5, 2)


def test_budget_rent_applies_only_within_the_budget():
    policy = Adaptive(PolicyOptions(change_budget=0.2, budget_rent=3.0, compact_rent=12.0))
    policy._shadow.changes, policy._shadow.own = 10, 1
    assert policy._budget_rent(12.0, 1) == 3.0  # 1 + 1 <= 0.2 x 10
    assert policy._budget_rent(12.0, 2) == 12.0  # 1 + 2 > 2
    assert Adaptive(PolicyOptions())._budget_rent(12.0, 1) == 12.0  # no budget: the rent as it is


def test_budget_knobs_are_checked():
    for bad in ({"change_budget": -0.1}, {"change_budget": float("nan")}, {"budget_rent": 0.0},
                {"local_services": 0}):
        with pytest.raises(InputError, match=next(iter(bad))):
            AdaptOptions(**bad)


def test_a_compaction_within_the_budget_is_bought_at_the_lower_rent():
    """Two vgg16 GPUs where one carries the rate: with the default rent (12 GPU-decisions per change) the spare GPU
    is kept for the first decisions; with a budget that full re-partitioning's changes leave open, it is given back
    after `budget_rent` (3) decisions, and the plan stays checker-valid."""
    vgg = gpulet_mix("m2", 40, rate=800.0).subset(["vgg16"])
    two = Plan(tuple(GpuLayout((Partition(60.0, (Tenant("vgg16", 16, 300.0),)),)) for _ in range(2)))
    low = vgg.with_rates({"vgg16": 600.0})

    def run(**knobs) -> list[int]:
        policy = Adaptive(PolicyOptions(time_limit_s=LIMIT, **knobs))
        policy._shadow.start(two)
        policy._shadow.changes = 20  # as if full re-partitioning had changed 20 layouts so far
        plan, used = two, []
        for _ in range(5):
            plan, _ = policy.next(low, plan)
            assert check(low, plan).valid
            used.append(plan.gpus_used)
        return used

    assert run() == [2, 2, 2, 2, 2]
    kept = run(change_budget=0.2)
    assert kept[:2] == [2, 2] and kept[-1] == 1


def test_capacities_are_memoised_per_layout_and_never_depend_on_rates():
    inst = random_instance(6, 6, 2, "a100-mps", arrivals="deterministic")
    plan = min_gpus(inst, PolicyOptions(time_limit_s=LIMIT))
    for g in plan.gpus:
        if g.used:
            first = gpu_capacities(inst, g)
            first[(0, 0)] = -1.0  # a copy: the memo is not changed through it
            again = gpu_capacities(inst.scaled(0.5), g)
            assert again == share_one_capacities(inst, g) and again[(0, 0)] >= 0.0


def test_at_scale_a_large_neighbourhood_is_a_scale_out():
    """With every service above `local_above` and neighbourhoods larger than `local_services`, the heuristic's
    adapt is not asked; the services left short get GPUs of their own (the layouts in force are kept)."""
    inst = random_instance(12, 12, 1, "a100-mps", arrivals="deterministic")
    plan = min_gpus(inst, PolicyOptions(time_limit_s=LIMIT))
    caps = service_capacities(inst, plan)
    up = inst.with_rates({n: 1.3 * c for n, c in list(caps.items())[:6]})

    class NoAdapt(Adaptive):
        def _adapt(self, instance, current):
            out = super()._adapt(instance, current)
            assert out is None, "a neighbourhood above local_services must not be solved"
            return out

    new, note = NoAdapt(PolicyOptions(time_limit_s=LIMIT, local_above=4, local_services=1,
                                   scale_out_above=4)).next(up, plan)
    assert check(up, new).valid, note
    assert "scale-out" in note
    kept = [k for k, g in enumerate(plan.gpus) if g.used]
    assert all(new.gpus[k] == plan.gpus[k] or {p.size for p in new.gpus[k].partitions} ==
               {p.size for p in plan.gpus[k].partitions} for k in kept)
