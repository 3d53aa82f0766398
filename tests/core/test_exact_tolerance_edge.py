"""The exact solvers on the checker's tolerance edge (session 19): a need 9e-7 above 2 GPUs, served by a 2-GPU plan
the checker calls valid (tests/core/test_bound_rounding_edge.py's `_edge`).  milp (CBC, HiGHS) and cpsat modelled
capacities exactly (cpsat floored them) and brute force compared capacities with the rates exactly: each called 3
GPUs optimal with bound 3, a bound above a valid plan.  Now the min-gpus models' coverage rows are the checker's
(`ModelData.row_coverage`, `row_need`: `tolerant_limit` and `least_covering`), a relaxation whose bound is the
problem's; an incumbent the checker rejects is replaced by the plan of the model at exact capacities."""

from __future__ import annotations

import pytest

from stsched.checker import check
from stsched.registry import Objective, SolveOptions, Status, run_solver
from tests.core.test_bound_rounding_edge import _edge, _scaled_edge

ENGINES = ["milp", "milp-highs", "cpsat", "brute"]


def _solve(solver, inst, objective=Objective.MIN_GPUS):
    return run_solver(solver, inst, SolveOptions(objective=objective, time_limit_s=60)).result


@pytest.mark.parametrize("solver", ENGINES)
def test_an_exact_solver_finds_the_valid_plan_on_the_edge(solver):
    inst, plan = _edge(2, 9e-7)
    assert check(inst, plan).valid
    r = _solve(solver, inst)
    assert r.bound <= 2  # (was 3: above the valid 2-GPU plan)
    assert (r.status, r.objective) == (Status.OPTIMAL, 2.0)
    assert check(inst, r.plan).valid


@pytest.mark.parametrize("solver", ENGINES)
def test_between_the_tolerances_no_false_optimum(solver):
    """2.5e-6 above 2 GPUs: no valid 2-GPU plan (a tenant may run 1e-6 above its capacity and a rate be covered
    1e-6 short, (1 + 1e-6)^2 < 1 + 2.5e-6), but the relaxation may admit 2 within its engine's own feasibility
    tolerances (CBC and HiGHS let this row 5e-7 short pass) or CP-SAT's rounding up: the plan is the exact model's
    3 GPUs, valid, and the bound at most 3 whatever the status."""
    inst, plan = _edge(2, 2.5e-6)
    assert not check(inst, plan).valid
    r = _solve(solver, inst)
    assert r.objective == 3.0 and check(inst, r.plan).valid
    assert r.bound in (2.0, 3.0) and (r.status is Status.OPTIMAL) == (r.bound == 3.0)


@pytest.mark.parametrize("solver", ENGINES)
def test_beyond_the_tolerance_three_gpus_are_optimal(solver):
    inst, plan = _edge(2, 4e-6)
    assert not check(inst, plan).valid
    r = _solve(solver, inst)
    assert (r.status, r.objective, r.bound) == (Status.OPTIMAL, 3.0, 3.0)


@pytest.mark.parametrize("solver", ENGINES)
def test_the_max_scale_bound_is_above_a_valid_plans_scale(solver):
    """max-scale on 2 GPUs: each tenant 0.99e-6 above its capacity and each rate 0.99e-6 short is valid; every
    engine's upper bound on alpha is at least that plan's (brute force reported its exact optimum as the bound)."""
    inst, plan = _scaled_edge()
    r = _solve(solver, inst, Objective.MAX_SCALE)
    assert r.status is Status.OPTIMAL and r.bound >= plan.scale
