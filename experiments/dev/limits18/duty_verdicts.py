"""Whether crediting max(duty_ms, needed cycle) (docs/RESULTS.md, session 18, item 4a) changes the checker's verdict on
any plan of the shipped scenarios and random seeds: ParvaGPU rows 1-4, the iGniter example and random 8-service
instances (a100-mps, a100-mig; Poisson, deterministic; seeds 0-1), solved by heuristic, cg, milp, parvagpu and gpulet
(both objectives, 2 s each), each plan checked with the duty before and after.  `PYTHONPATH=. python
experiments/dev/limits18/duty_verdicts.py` in a checkout of s18-mendA or later."""
import time, itertools
import stsched.checker as ck
from stsched.timing import cycle_ms
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import random_instance, parvagpu, igniter_example

def old_duty_of(p, times):
    return p.duty_ms if p.duty_ms is not None else cycle_ms(times)
new_duty_of = ck.duty_of

insts = [(f"parvagpu{r}", parvagpu(r)) for r in range(1, 5)] + [("igniter", igniter_example())]
for dev, arr, seed, n in itertools.product(("a100-mps", "a100-mig"), ("deterministic", "poisson"), range(2), (8,)):
    try:
        insts.append((f"random {dev} {arr} s{seed} n{n}", random_instance(n, max(2, n), seed, dev, arrivals=arr)))
    except Exception as e:
        print("skip", dev, arr, seed, n, e)
solvers = ["heuristic", "cg", "milp", "parvagpu", "gpulet"]
t0 = time.time(); plans = changed = short = 0
for name, inst in insts:
    for s in solvers:
        for obj in (Objective.MIN_GPUS, Objective.MAX_SCALE):
            try:
                r = run_solver(s, inst, SolveOptions(objective=obj, time_limit_s=2)).result
            except Exception as e:
                continue
            if r.plan is None:
                continue
            plans += 1
            ck.duty_of = new_duty_of; a = ck.check(inst, r.plan).valid
            ck.duty_of = old_duty_of; b = ck.check(inst, r.plan).valid
            ck.duty_of = new_duty_of
            for g in r.plan.gpus:
                from stsched.timing import gpu_timings
                for p, t in zip(g.partitions, gpu_timings(inst, g)):
                    if p.duty_ms is not None and p.duty_ms < cycle_ms(t):
                        short += 1
            if a != b:
                changed += 1; print("CHANGED", name, s, obj, "old", b, "new", a)
print(f"{len(insts)} instances, {plans} plans, {changed} verdicts changed, {short} partitions with duty_ms below the needed cycle; {time.time()-t0:.0f} s")
