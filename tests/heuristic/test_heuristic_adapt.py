"""Adaptive mode: `layout_changes`, `adapt` and the ADAPT objective of the "heuristic" solver."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.checker import check
from stsched.errors import InfeasibleError
from stsched.heuristic import adapt
from stsched.plan import layout_changes
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.registry import Objective, SolveOptions, Status, available_solvers, run_solver
from tests.conftest import make_mig_instance, make_mps_instance


def _plan(*layouts):
    return Plan(tuple(GpuLayout(tuple(Partition(s, (Tenant("s0", 1, 1.0),)) for s in sizes)) for sizes in layouts))


def test_layout_changes_counts_gpus_by_index():
    old = _plan((50.0, 50.0), (100.0,))
    assert layout_changes(old, _plan((50.0, 50.0), (100.0,))) == 0
    assert layout_changes(old, _plan((50.0, 50.0), (60.0, 40.0))) == 1  # resized
    assert layout_changes(old, _plan((100.0,), (50.0, 50.0))) == 2  # same multiset of GPUs, other indices
    assert layout_changes(old, _plan((50.0, 50.0))) == 1  # GPU 1 switched off
    assert layout_changes(old, _plan((50.0, 50.0), (100.0,), (20.0,))) == 1  # GPU 2 switched on
    empty = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 1, 1.0),)), Partition(50.0, ()))), GpuLayout(())))
    assert layout_changes(_plan((50.0,)), empty) == 0  # partitions without tenants and idle GPUs do not count


def _current(instance):
    judged = run_solver("heuristic", instance, SolveOptions())
    assert judged.valid
    return judged.result.plan


@settings(max_examples=10, deadline=None)
@given(factors=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
       mig=st.booleans())
def test_rates_that_drop_keep_every_layout(factors, mig):
    instance = (make_mig_instance(rates=(900.0, 400.0), slos=(60.0, 90.0), gpus=3) if mig else
                make_mps_instance(rates=(700.0, 300.0, 150.0), slos=(40.0, 60.0, 90.0), gpus=3,
                                  memory=(500.0, 500.0, 500.0)))
    current = _current(instance)
    lower = instance.with_rates({s.name: s.rate * f for s, f in zip(instance.services, factors)})
    new = adapt(lower, current)
    assert check(lower, new).valid
    assert layout_changes(current, new) == 0
    assert new.gpus_used == current.gpus_used


def test_foreign_plan_absorbs_a_drop_without_changes():
    if "gslice" not in available_solvers():
        pytest.skip("baseline 'gslice' is not registered")
    instance = make_mps_instance(rates=(700.0, 300.0), slos=(40.0, 60.0), gpus=3)
    current = run_solver("gslice", instance, SolveOptions()).result.plan
    assert current is not None and check(instance, current).valid
    new = adapt(instance.scaled(0.7), current)
    assert check(instance.scaled(0.7), new).valid and layout_changes(current, new) == 0


@pytest.mark.parametrize("factor", [1.1, 1.6, 2.5])
def test_rates_that_grow_are_served_with_few_changes(factor):
    instance = make_mps_instance(rates=(700.0, 300.0, 150.0), slos=(40.0, 60.0, 90.0), gpus=6,
                                 memory=(500.0, 500.0, 500.0))
    current = _current(instance)
    grown = instance.scaled(factor)
    judged = run_solver("heuristic", grown, SolveOptions(objective=Objective.ADAPT, current_plan=current))
    r = judged.result
    assert judged.valid, r.message
    assert r.objective == layout_changes(current, r.plan)
    assert r.bound == 0.0 and r.status in (Status.OPTIMAL, Status.FEASIBLE)
    unchanged = sum(1 for a, b in zip(current.gpus, r.plan.gpus) if a.sizes() == b.sizes())
    assert unchanged >= len(current.gpus) - r.objective  # GPU k of the result is GPU k of the plan in force
    fresh = run_solver("heuristic", grown, SolveOptions()).result.plan
    assert r.objective <= max(len(current.gpus), len(fresh.gpus))


def test_a_new_service_is_placed_and_an_old_one_dropped():
    instance = make_mps_instance(rates=(700.0, 300.0), slos=(40.0, 60.0), gpus=3)
    current = _current(instance)
    renamed = make_mps_instance(rates=(700.0, 300.0, 120.0), slos=(40.0, 60.0, 90.0), gpus=3,
                                memory=(1000.0, 2000.0, 500.0))
    new = adapt(renamed.subset(["s0", "s2"]), current)
    assert check(renamed.subset(["s0", "s2"]), new).valid
    assert all(t.service != "s1" for _, _, _, t in new.placements())


def test_adapt_without_a_plan_in_force_and_when_impossible():
    instance = make_mps_instance(rates=(700.0, 300.0), slos=(40.0, 60.0), gpus=2)
    r = run_solver("heuristic", instance, SolveOptions(objective=Objective.ADAPT)).result
    assert r.status is Status.UNKNOWN and r.plan is None
    current = _current(instance)
    with pytest.raises(InfeasibleError):
        adapt(instance.scaled(50.0).with_gpus(1), current)


def test_adapt_switches_no_idle_gpu_on_beyond_the_instance_cap(caplog):
    """A plan in force with an idle GPU slot and an instance capped at the GPUs in use: the rise is met by
    rebuilding inside the cap, never by switching the idle slot on (which the checker would reject)."""
    from stsched.scenarios import gpulet_mix

    vgg = gpulet_mix("m2", 40, rate=800.0).subset(["vgg16"])
    sixty = GpuLayout((Partition(60.0, (Tenant("vgg16", 16, 900.0),)),))
    current = Plan((sixty, sixty, GpuLayout(())))
    inst = vgg.with_rates({"vgg16": 3000.0}).with_gpus(2)
    with caplog.at_level("WARNING"):
        judged = run_solver("heuristic", inst, SolveOptions(objective=Objective.ADAPT, time_limit_s=1.0,
                                                            current_plan=current))
    assert judged.valid and judged.result.plan.gpus_used <= 2
    assert "rebuilt" in judged.result.message and "plan rejected" not in caplog.text
