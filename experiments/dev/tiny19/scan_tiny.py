"""Max-scale near TINY_SCALE (stsched.bounds): make_mps_instance(rates=(R, 50), slos=(50, 50), gpus=2) for each R given;
the heuristic's valid plan, the layout LP, the efficiency bound, milp, milp-highs and cpsat (5 s) and the cg bound (10 s) per row.
Usage: PYTHONPATH=. python experiments/dev/tiny19/scan_tiny.py 1.5e3 1.5e5 1.5e6 1.5e7 1.5e8 5e8 1.4e9"""
import sys
from stsched.registry import Objective, SolveOptions, run_solver, run_bound
from stsched import bounds
from stsched.checker import check
from tests.conftest import make_mps_instance
for r in [float(x) for x in sys.argv[1:]]:
    inst = make_mps_instance(rates=(r, 50.0), slos=(50.0, 50.0), gpus=2, memory=(1000.0, 1000.0))
    o = SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=5)
    h = run_solver("heuristic", inst, o).result
    lp = bounds.lp_relaxation(inst, Objective.MAX_SCALE).value
    row = [f"rate {r:.3g}", f"heur {h.objective:.6g} valid {check(inst,h.plan).valid}", f"layoutLP {lp:.6g}", f"eff {bounds.lp_bound_scale(inst):.6g}"]
    for s in ("milp", "milp-highs", "cpsat"):
        x = run_solver(s, inst, o).result
        row.append(f"{s} {x.status.value} {x.objective if x.objective is None else format(x.objective,'.6g')} b {x.bound if x.bound is None else format(x.bound, '.6g')}")
    b = run_bound("cg", inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=10))
    row.append(f"cg {b.bound:.6g}")
    print(" | ".join(row), flush=True)
