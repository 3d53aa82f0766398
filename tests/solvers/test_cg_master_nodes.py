"""cg's `master_nodes`: a work limit on its integer master (milp's `max_nodes`), checked before any work."""

from __future__ import annotations

import pytest

from stsched.errors import InputError
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import random_instance


def _instance():
    return random_instance(4, 2, 1, "a100-mig", arrivals="deterministic")


def test_master_nodes_reaches_the_engine_as_its_node_limit(monkeypatch):
    """The quick grid's cg rows were cut by the wall clock because cg's integer master had no work limit (session
    17's figure audit); `master_nodes` now reaches milp's engine as `max_nodes` (HiGHS mip_max_nodes, CBC
    maxNodes)."""
    import solvers.exact.cg as cg
    from solvers.exact.driver import EngineOutcome
    from solvers.exact.patterns import MilpOptions

    seen = []

    def engine(backend):
        def run(data, options, warm, limit):
            seen.append(MilpOptions.from_solve_options(options).max_nodes)
            return EngineOutcome("none", None, None)
        return run

    monkeypatch.setattr(cg, "_engine", engine)
    opts = SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=30,
                        params=(("master_nodes", "7"), ("warm", "none"), ("max_rounds", "5")))
    run_solver("cg", _instance(), opts)
    assert seen == [7]
    seen.clear()
    run_solver("cg", _instance(), SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=30,
                                               params=(("warm", "none"), ("max_rounds", "5"))))
    assert seen == [0]  # none by default: the time limit alone


def test_a_negative_master_nodes_is_refused_before_any_work():
    with pytest.raises(InputError, match="master_nodes must be >= 0"):
        run_solver("cg", _instance(), SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=5,
                                                   params=(("master_nodes", "-1"),)))


def test_highs_stopped_by_its_node_limit_returns_its_plan():
    """HiGHS stopped by `max_nodes` (mip_max_nodes) ends with status kSolutionLimit, which PuLP 3.3's status map
    lacks: `milp --engine highs --param max_nodes=N`, and cg's quick-grid master, raised KeyError whenever the limit
    bound (found running `scale_eval --quick` with the node-limited master).  Now it is a plan, `feasible`."""
    import random

    import pulp

    from solvers.exact.milp import _solve

    rng = random.Random(3)
    prob = pulp.LpProblem("knapsacks", pulp.LpMaximize)
    x = [pulp.LpVariable(f"x{i}", 0, 3, cat=pulp.LpInteger) for i in range(40)]
    for j in range(3):
        prob += pulp.lpSum(rng.randint(20, 99) * xi for xi in x) <= 997 + j
    prob += pulp.lpSum(rng.randint(11, 108) * xi for xi in x)
    opts = SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=30, params=(("max_nodes", "1"),))
    status, bound = _solve(prob, "highs", opts, 30.0, False)
    assert status == "feasible" and pulp.value(prob.objective) > 0
    assert bound is None or bound >= pulp.value(prob.objective) - 1e-6  # (a bound is never below the plan here)
