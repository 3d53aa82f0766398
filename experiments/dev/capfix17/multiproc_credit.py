"""Session 17's review: the efficiency LP (`stsched.bounds.lp_gpus`) on the Poisson MIG instance of
tests/solvers/test_cg_setup_clock.py as it is, with multi-process points also credited by the cycle rule at the least
Poisson credit (what a finding claimed the checker credits: it does not, tests/core/test_bound_credit_multiproc.py),
and the layout LP.  Run: python experiments/dev/capfix17/multiproc_credit.py"""

from stsched import bounds
from stsched.checker import cycle_rate
from stsched.scenarios import random_instance

inst = random_instance(24, 12, 3, "a100-mig", arrivals="poisson")
print(f"lp_gpus (entry_capacity as it is):          {bounds.lp_gpus(inst):.4f}")
orig = bounds.entry_capacity


def with_cycle(instance, e, budget_ms, optimistic=False):
    c = orig(instance, e, budget_ms, optimistic=optimistic)
    if c is None or e.procs == 1:
        return c
    return max(c, cycle_rate(instance.margin.credit(e.batch), e.latency_ms * instance.margin.latency_factor, e.procs))


bounds.entry_capacity = with_cycle
print(f"lp_gpus (multi-process also by the cycle rule): {bounds.lp_gpus(inst):.4f}")
bounds.entry_capacity = orig
print(f"layout LP (lp_relaxation):                  {bounds.lp_relaxation(inst).value:.4f}")
