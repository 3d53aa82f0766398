"""The exact engines on the checker's tolerance edge (docs/RESULTS.md, "Limits and faults", session 18, item 4a): the
instance of tests/core/test_bound_rounding_edge.py's `_edge(2, 9e-7)`, which a valid 2-GPU plan serves.  Prints the
checker's verdict on that plan, then each exact engine's status, objective and bound (min-gpus, 60 s).
`PYTHONPATH=. python experiments/dev/limits18/edge_exact.py` in a checkout of s18-mendA or later."""

from stsched.checker import check
from stsched.registry import Objective, SolveOptions, run_solver
from tests.core.test_bound_rounding_edge import _edge

if __name__ == "__main__":
    inst, plan = _edge(2, 9e-7)
    print(f"the 2-GPU plan: valid {check(inst, plan).valid}")
    for solver in ("milp", "cpsat", "cg"):
        r = run_solver(solver, inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=60)).result
        print(f"{solver}: {r.status.value}, {r.objective} GPUs, bound {r.bound}")
