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
