"""Which random instances straddle at the default tolerances (docs/RESULTS.md, session 19, round-aware convergence;
tests/solvers/test_colgen_round.py's docstring): 80 instances, 8, 12, 16, 24 and 32 services, a100-mps and a100-mig,
seeds 1-8 (`random_instance(n, max(2, n // 2), seed, device, arrivals="deterministic")`); min-gpus column generation
with round_aware off, 30 s of CPU each: whether the converged bound rounds up below the master (`straddles`), and
where it does, the run with round_aware on.  Session 19's development scan (kept from /tmp/s19settle/scan.py by the
review's mends, unchanged but for this docstring and the line breaks; rerun at commit dc9d931: 80 lines "no
straddle", all converged, 14 s of CPU).
`PYTHONPATH=. python experiments/dev/settle19/scan.py`."""

import time

from solvers.exact.cg_pricing import CgOptions
from solvers.exact.cg_round import straddles
from solvers.exact.colgen import column_generation
from stsched.registry import Objective
from stsched.scenarios import random_instance

if __name__ == "__main__":
    for n in (8, 12, 16, 24, 32):
        for ds in ("a100-mps", "a100-mig"):
            for seed in range(1, 9):
                inst = random_instance(n, max(2, n // 2), seed, ds, arrivals="deterministic")
                t = time.process_time()
                off = column_generation(inst, Objective.MIN_GPUS,
                                        CgOptions(time_limit_s=30, round_aware=False, clock="cpu"))
                if straddles(off.bound, off.lp_value):
                    on = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=30, clock="cpu"))
                    print(n, ds, seed, "OFF", off.bound, off.lp_value, off.integer_bound, off.rounds, "ON", on.bound,
                          on.lp_value, on.integer_bound, on.rounds, on.converged, on.rounding, flush=True)
                else:
                    print(n, ds, seed, "no straddle", round(off.bound, 5), round(off.lp_value, 5), off.converged,
                          f"{time.process_time() - t:.1f}s", flush=True)
