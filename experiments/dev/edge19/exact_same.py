"""Whether the exact solvers' results move on ordinary instances when their min-gpus models write the checker's
tolerance (docs/RESULTS.md, "Limits and faults", session 19): ParvaGPU rows 1-3, the iGniter example, random
instances (8 services on a100-mps and a100-mig, 4 on a100-mps, where brute joins; Poisson and deterministic; seeds
0-1), min-gpus (max-scale's models did not change; brute's max-scale too on the 4-service ones), solved by milp
(CBC), milp-highs, cpsat (and brute), one thread, `--time-limit` 60 s (a run stopped by the limit moves with the
load, so compare those that finish).  One line a run: instance, solver, objective, status, objective value, bound,
GPUs of the plan, CPU seconds.  `PYTHONPATH=. python experiments/dev/edge19/exact_same.py > OUT` in each checkout,
then `diff` (CPU time aside)."""

import itertools
import time

from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import igniter_example, parvagpu, random_instance


def instances():
    yield from ((f"parvagpu{r}", parvagpu(r)) for r in range(1, 4))
    yield "igniter", igniter_example()
    for dev, arr, seed in itertools.product(("a100-mps", "a100-mig"), ("deterministic", "poisson"), range(2)):
        yield f"random-{dev}-{arr}-s{seed}-n8", random_instance(8, 8, seed, dev, arrivals=arr)
    for arr, seed in itertools.product(("deterministic", "poisson"), range(2)):
        yield f"random-a100-mps-{arr}-s{seed}-n4", random_instance(4, 4, seed, "a100-mps", arrivals=arr)


if __name__ == "__main__":
    for name, inst in instances():
        solvers = ("milp", "milp-highs", "cpsat") + (("brute",) if name.endswith("n4") else ())
        runs = [(solver, Objective.MIN_GPUS) for solver in solvers]
        runs += [("brute", Objective.MAX_SCALE)] if "brute" in solvers else []
        for solver, obj in runs:
            t0 = time.process_time()
            try:
                r = run_solver(solver, inst, SolveOptions(objective=obj, time_limit_s=60, threads=1)).result
                line = (f"{r.status.value} {r.objective if r.objective is None else f'{r.objective:.9g}'} "
                        f"{r.bound if r.bound is None else f'{r.bound:.9g}'} "
                        f"{None if r.plan is None else r.plan.gpus_used}")
            except Exception as e:  # noqa: BLE001 - a failure is a result to compare too
                line = f"error {type(e).__name__}: {e}"
            print(f"{name} {solver} {obj.value} {line} cpu={time.process_time() - t0:.1f}", flush=True)
