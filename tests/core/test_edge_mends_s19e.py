"""Review mends of s19-edge (session 19, mend E): the exact solvers and the screens at the checker's tolerance edge.

`_edge(2, 9e-7)` with `gpus=2`: a 2-GPU plan the checker calls valid serves a need 9e-7 above 2 GPUs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stsched import bounds
from stsched.checker import check
from stsched.registry import Objective, SolveOptions, Status, run_solver
from tests.core.test_bound_rounding_edge import _edge


def _on_two():
    inst, plan = _edge(2, 9e-7)
    inst = replace(inst, gpus=2)
    assert check(inst, plan).valid
    return inst, plan


def test_the_screen_calls_a_rate_on_the_edge_servable():
    """(finding 1) `unservable` compared the rate with all GPUs' reach at 1e-9: s0 "exceeds" on 2 GPUs."""
    inst, _ = _on_two()
    assert bounds.infeasible_services(inst) == {}
    assert bounds.unservable(inst, Objective.MIN_GPUS) == {}


@pytest.mark.parametrize("solver", ["milp", "milp-highs", "cpsat", "brute", "heuristic"])
def test_no_false_infeasible_on_the_edge(solver):
    """(finding 1) every engine said INFEASIBLE (the screen, or the layout LP's 2.0000018 > 2 + 1e-6)."""
    inst, _ = _on_two()
    r = run_solver(solver, inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=30)).result
    assert r.status is not Status.INFEASIBLE, r.message
    if solver != "heuristic":
        assert (r.status, r.objective) == (Status.OPTIMAL, 2.0) and check(inst, r.plan).valid



def test_the_fallback_is_skipped_with_under_a_second_left():
    """(finding 4) an incumbent the checker rejects (2 GPUs 2.5e-6 short, which CBC and HiGHS let pass) was followed
    by the model at exact capacities with max(1 s, what was left): past the limit.  Now skipped, and said."""
    import time

    from solvers.exact.driver import EngineOutcome, _attempt, prepare
    from solvers.exact.plans import Counts

    inst, _ = _edge(2, 2.5e-6)
    opts = SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=10)
    data = prepare(inst, opts)
    assert data.formulation == "slots" and len(data.configs) == len(data.layouts) == 1
    calls = []

    def engine(d, options, warm, limit):
        calls.append(limit)
        time.sleep(0.6)  # (a build and solve that used the limit)
        return EngineOutcome("optimal", 2.0, Counts(layouts={0: 2}, configs={0: 2}))

    r = _attempt("milp", inst, opts, data, None, 1.2, engine, "fake", 2.0)
    assert len(calls) == 1, calls
    assert r.status is Status.UNKNOWN and "no time left" in r.message


def test_adapt_milp_no_false_infeasible_on_the_edge():
    """(findings 1, 3) adapt-milp from the valid 2-GPU plan on 2 GPUs: the screen said INFEASIBLE, and its
    coverage rows at exact capacities would too."""
    inst, plan = _on_two()
    r = run_solver("milp", inst, SolveOptions(objective=Objective.ADAPT, current_plan=plan, time_limit_s=30)).result
    assert r.status is not Status.INFEASIBLE, r.message
    assert (r.status, r.objective) == (Status.OPTIMAL, 0.0) and check(inst, r.plan).valid


def test_adapt_milp_falls_back_to_exact_capacities_for_a_rejected_incumbent():
    """(finding 3) 2.5e-6 above 2 GPUs, on 3: an incumbent keeping both GPUs in force (which the tolerant rows may
    let pass within an engine's own tolerance) is rejected by the checker; the plan is then the exact-capacity
    model's, valid, and not called optimal (the engine stands in for one that let it pass)."""
    from solvers.exact.adapt_milp import solve_adapt
    from solvers.exact.milp import _solve

    inst, plan = _edge(2, 2.5e-6)
    inst = replace(inst, gpus=3)
    calls = []

    def solve_model(prob, opts, limit):
        calls.append(limit)
        if len(calls) == 1:  # both GPUs kept, their configurations as in force
            for v in prob.variables():
                v.varValue = {"k_0": 2, "w_0": 2}.get(v.name, 0)
            return "optimal", None
        return _solve(prob, "cbc", opts, limit, False)

    opts = SolveOptions(objective=Objective.ADAPT, current_plan=plan, time_limit_s=30)
    r = solve_adapt("milp", inst, opts, solve_model)
    assert len(calls) == 2 and "exact capacities" in r.message, r.message
    assert r.status is Status.FEASIBLE and r.objective == 1.0 and check(inst, r.plan).valid
