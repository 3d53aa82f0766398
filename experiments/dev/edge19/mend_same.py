"""Review mends of s19-edge (docs/RESULTS.md, session 19, item 4): what the pruning without tolerance and the
heuristic's memory comparisons by the checker's rule leave the same.  Prints the exact driver's configuration
counts (ParvaGPU rows 1 and 3, a random a100-mps instance) and the heuristic's status and GPUs (3 s, one thread)
on ParvaGPU rows 1-2 and two random instances.  `PYTHONPATH=. python experiments/dev/edge19/mend_same.py` in a
checkout of s19-mendE and of main before it (or of the commit before each mend, the script copied in)."""

from solvers.exact.driver import prepare
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import parvagpu, random_instance

if __name__ == "__main__":
    rand = random_instance(6, 3, 2, device="a100-mps", arrivals="deterministic").with_gpus(8)
    for name, inst in (("parvagpu 1", parvagpu(1)), ("parvagpu 3", parvagpu(3)), ("random 6/3/2", rand)):
        d = prepare(inst, SolveOptions(objective=Objective.MIN_GPUS))
        print(f"{name}: {d.formulation}, {len(d.configs)} configurations, {len(d.patterns)} patterns")
    for name, inst in (("parvagpu 1", parvagpu(1)), ("parvagpu 2", parvagpu(2)), ("random 6/3/2", rand),
                       ("random 8/5/3", random_instance(8, 5, 3, device="a100-mps").with_gpus(20))):
        r = run_solver("heuristic", inst, SolveOptions(time_limit_s=3, threads=1)).result
        print(f"{name}: heuristic {r.status.value}, {r.objective} GPUs")
