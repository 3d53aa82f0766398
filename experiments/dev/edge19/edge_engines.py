"""The exact solvers on and near the checker's tolerance edge (docs/RESULTS.md, "Limits and faults", session 19):
`tests/core/test_bound_rounding_edge.py`'s `_edge(2, e)`, one service whose need is (1 + e) x what 2 GPUs carry at
its best point, for e = 9e-7 (a 2-GPU plan the checker calls valid), 2.5e-6 (no valid 2-GPU plan: beyond
(1 + 1e-6)^2) and 4e-6; min-gpus, 60 s, each of milp, milp-highs, cpsat and brute: status, GPUs, bound.
`PYTHONPATH=. python experiments/dev/edge19/edge_engines.py` in a checkout of s19-edge (or of its parent with the
script copied in, for the before)."""

from stsched.checker import check
from stsched.registry import Objective, SolveOptions, run_solver
from tests.core.test_bound_rounding_edge import _edge

if __name__ == "__main__":
    for excess in (9e-7, 2.5e-6, 4e-6):
        inst, plan = _edge(2, excess)
        print(f"need 2 x (1 + {excess:g}) GPUs; the 2-GPU plan valid: {check(inst, plan).valid}")
        for solver in ("milp", "milp-highs", "cpsat", "brute"):
            r = run_solver(solver, inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=60)).result
            print(f"  {solver}: {r.status.value}, {r.objective} GPUs, bound {r.bound}")
