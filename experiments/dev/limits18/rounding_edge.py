"""The bound's rounding on a need exactly on the checker's tolerance edge (docs/RESULTS.md, "Limits and faults",
session 18, item 4): one service on a whole-GPU MPS partition at 2 x its best point's capacity x (1 + excess), and
the 2-GPU plan that serves it, each tenant `excess` above its capacity.  Prints whether the checker calls the plan
valid, `lp_bound_gpus` and colgen's whole-GPU bound.  `PYTHONPATH=. python experiments/dev/limits18/rounding_edge.py` in any
checkout (tests/conftest.py's instance)."""

from dataclasses import replace

from solvers.exact.colgen import CgOptions, column_generation
from stsched import bounds
from stsched.checker import check
from stsched.devices import mps_mechanism
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.registry import Objective
from tests.conftest import make_mps_instance

if __name__ == "__main__":
    tiny = make_mps_instance(rates=(100.0,), slos=(50.0,), gpus=4, memory=(1000.0,))
    base = replace(tiny, mechanism=mps_mechanism((100.0,), max_partitions=1, max_tenants=3))
    eff = bounds.efficiency(base, "s0")
    cap = eff.per_unit * eff.size
    for excess in (5e-7, 9e-7, 3e-6):
        rate = 2 * cap * (1 + excess)
        inst = base.with_rates({"s0": rate})
        plan = Plan((GpuLayout((Partition(eff.size, (Tenant("s0", eff.batch, rate / 2),), procs=eff.procs),)),) * 2)
        cg = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60))
        print(f"excess {excess:g}: plan of 2 GPUs valid {check(inst, plan).valid}, lp_bound_gpus "
              f"{bounds.lp_bound_gpus(inst)}, colgen {cg.integer_bound:g}")
