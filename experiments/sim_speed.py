"""Issue 6: how fast the simulator is -- 10 simulated minutes of 64 services at thousands of req/s.

    python -m experiments.sim_speed              # default grid (fresh every run: these are timings)
    python -m experiments.sim_speed --quick      # one row

Instances: `stsched.scenarios.random_instance(64 services, G GPUs, seed)` on the A100 MPS data (its rates scale with
G); plans: the registered "heuristic" solver (min-gpus), judged by the checker, made for the rates themselves or,
in the `headroom` 1.25 rows, for 1.25 x the rates (`stsched solve --headroom`), and simulated at the rates.  Each row simulates `duration`
seconds of arrivals (Poisson, Gamma CV 2, or the Azure Functions 2019 trace shape) and drains the queues, and
reports the wall time of `stsched.simulate.simulate` (arrival generation, routing, every partition, records and
summary), the requests simulated and the SLO attainment.  Results: results/sim_speed/rows.csv and a printed
Markdown table.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from experiments.common import markdown_table, run_grid
from stsched.scenarios import random_instance
from stsched.simulate import ArrivalSpec, SimOptions, simulate
from stsched.solve import SolveOptions, run_solver

log = logging.getLogger(__name__)

EXPERIMENT = "sim_speed"


def point(p) -> dict[str, object]:
    inst = random_instance(int(p["services"]), int(p["gpus"]), int(p["seed"]))
    inst = inst.with_gpus(4 * inst.gpus)  # room for the solver; rates are fixed by the scenario
    headroom = float(p.get("headroom", 1.0))  # plan for headroom x the rates, simulate the rates themselves
    judged = run_solver("heuristic", inst.scaled(headroom), SolveOptions(time_limit_s=30.0, seed=int(p["seed"])))
    plan = judged.result.plan
    if plan is None or not judged.valid:
        return {"error": f"no valid plan: {judged.result.message}"}
    opts = SimOptions(duration_s=float(p["duration"]), seed=int(p["seed"]))
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    res = simulate(inst, plan, ArrivalSpec.parse(str(p["arrivals"])), opts)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    s = res.summary
    return {"total_rps": round(sum(x.rate for x in inst.services), 1), "plan_gpus": plan.gpus_used,
            "partitions": sum(1 for g in plan.gpus for q in g.partitions if q.tenants),
            "requests": s.requests, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "requests_per_s": round(s.requests / wall), "slo_attainment": round(s.slo_attainment, 5),
            "p99_ms": round(s.p99_ms, 2), "gpu_utilisation": round(s.gpu_utilisation, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one row only")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if os.environ.get("STSCHED_VERBOSE") else logging.WARNING)
    grid = [{"services": 64, "gpus": g, "seed": 1, "duration": 600, "arrivals": a, "headroom": 1.0}
            for g in (2, 4, 8) for a in ("poisson", "gamma:2", "trace:azure-functions-2019")]
    grid += [{"services": 64, "gpus": g, "seed": 1, "duration": 600, "arrivals": "poisson", "headroom": 1.25}
             for g in (2, 4, 8)]
    if args.quick:
        grid = grid[3:4]
    keys = ["services", "gpus", "seed", "duration", "arrivals", "headroom"]
    rows = run_grid(EXPERIMENT, grid, keys, point, fresh=True)
    print(markdown_table(rows, keys + ["total_rps", "plan_gpus", "partitions", "requests", "wall_s", "cpu_s",
                                       "requests_per_s", "slo_attainment", "p99_ms"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
