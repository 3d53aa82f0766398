"""The exact adapt objective (milp): fewest layout reconfigurations from the plan in force, then fewest GPUs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stsched.plan import tenant_changes
from stsched.checker import check
from stsched.plan import layout_changes
from stsched.scenarios import parvagpu, random_instance
from stsched.registry import Objective, SolveOptions, Status, run_solver


def _adapt(solver: str, inst, current, **kw):
    return run_solver(solver, inst, SolveOptions(objective=Objective.ADAPT, current_plan=current, time_limit_s=20,
                                                 **kw))


@pytest.fixture(scope="module")
def in_force():
    inst = random_instance(6, 3, 2, device="a100-mps", arrivals="deterministic").with_gpus(8)
    return inst, run_solver("heuristic", inst, SolveOptions(time_limit_s=5)).result.plan


def test_same_rates_keep_every_layout(in_force):
    inst, current = in_force
    j = _adapt("milp", inst, current)
    assert j.valid and j.result.status is Status.OPTIMAL and j.result.objective == 0
    assert layout_changes(current, j.result.plan) == 0 and j.result.plan.gpus_used == current.gpus_used


def test_kept_partitions_keep_their_tenants(in_force):
    """Tenant changes are cheap, not free: with every layout kept, every partition keeps its tenant services when
    the plan in force already carries the rates (the third term and the assembly), and at 0.8 x the rates too."""
    inst, current = in_force
    for new in (inst, inst.scaled(0.8)):
        j = _adapt("milp", new, current)
        assert j.valid and layout_changes(current, j.result.plan) == 0
        assert tenant_changes(current, j.result.plan) == 0


def test_a_rise_costs_the_fewest_reconfigurations(in_force):
    inst, current = in_force
    new = inst.scaled(1.6)
    j = _adapt("milp", new, current, engine="highs")
    assert j.valid and j.result.objective == layout_changes(current, j.result.plan) >= 1
    assert check(new, j.result.plan).valid


def test_mig_kept_gpus_keep_their_slices():
    inst = parvagpu(1)
    current = run_solver("heuristic", inst, SolveOptions(time_limit_s=10)).result.plan
    j = _adapt("milp", inst.scaled(0.7), current)
    assert j.valid and j.result.objective == 0
    for old, new in zip(current.gpus, j.result.plan.gpus):
        assert sorted((p.size, p.start) for p in old.partitions if p.tenants) == \
            sorted((p.size, p.start) for p in new.partitions if p.tenants)


def test_needs_the_plan_in_force(in_force):
    inst, _ = in_force
    r = run_solver("milp", inst, SolveOptions(objective=Objective.ADAPT, time_limit_s=5)).result
    assert r.status is Status.UNKNOWN and "current_plan" in r.message


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 50), device=st.sampled_from(["a100-mps", "a100-mig"]), spread=st.floats(0.3, 1.0))
def test_exact_adapt_never_worse_than_the_heuristic(seed, device, spread):
    inst = random_instance(5, 3, seed, device=device, arrivals="deterministic").with_gpus(8)
    current = run_solver("heuristic", inst, SolveOptions(time_limit_s=5)).result.plan
    if current is None:
        return
    rng = np.random.default_rng(seed)
    new = inst.with_rates({s.name: s.rate * float(rng.uniform(1 - spread / 2, 1 + spread)) for s in inst.services})
    h, m = _adapt("heuristic", new, current), _adapt("milp", new, current)
    assert m.result.plan is None or m.valid  # never a plan the checker rejects
    if m.result.status is Status.OPTIMAL and h.result.plan is not None:
        hc, mc = layout_changes(current, h.result.plan), layout_changes(current, m.result.plan)
        assert mc <= hc
        if mc == hc:
            assert m.result.plan.gpus_used <= h.result.plan.gpus_used
