"""Issue 15: what the default (Poisson) arrivals buy -- random instances planned for deterministic arrivals (the
papers' rule) against the new default, Poisson (the margin `POISSON_LATE_SHARE`), both simulated under Poisson arrivals.

    python -m experiments.arrivals_default            # 12 and 64 services, three seeds each (fresh every run)
    python -m experiments.arrivals_default --quick    # 12 services, one seed
    python -m experiments.arrivals_default --services 64 --time-limit 300   # the heuristic's wall limit (loaded machine)

Instances: `stsched.scenarios.random_instance(S services, S GPUs, seed, arrivals=A)` on the A100 MPS data, A
deterministic or poisson (the same services and rates; only the planning rule differs).  Plans: the registered
"heuristic" solver, min-gpus: `deterministic` as `stsched solve` plans a deterministic instance; `poisson` by the
Poisson margin alone (`stsched solve --attainment 0`); `poisson+attainment` as `stsched solve` now plans a Poisson
instance by default: the margin, then the attainment loop until every service reaches 99 % in simulation
(`--attainment 0.99 --attainment-scope service`, 120 s planning simulations, at most 12 rounds, raises of at most
`POISSON_MAX_STEP` per round).  Each plan is simulated for `duration`
seconds of Poisson arrivals at the instance's rates (seed 1000 + seed, never used in planning), as `stsched
simulate --arrivals poisson` does.  Rows: results/arrivals_default/rows.csv; a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import logging
import time

from experiments.common import Study, markdown_table, run_grid, run_study, study_args
from stsched.scenarios import random_instance
from stsched.planning.attainment import AttainmentOptions, plan_for_attainment, registry_solver
from stsched.planning.solve import POISSON_MAX_STEP
from stsched.simulation import ArrivalSpec, SimOptions, simulate
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.validate import count, seed as seed_arg, services as services_arg, time_limit

log = logging.getLogger(__name__)

EXPERIMENT = "arrivals_default"
VARIANTS = ("deterministic", "poisson", "poisson+attainment")


def point(p) -> dict[str, object]:
    cpu0 = time.process_time()
    services, seed = int(p["services"]), int(p["seed"])
    loop = str(p["arrivals"]).endswith("+attainment")
    inst = random_instance(services, services, seed, arrivals=str(p["arrivals"]).split("+")[0])
    options = SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=float(p.get("time_limit", 60.0)), seed=seed)
    if loop:  # `stsched solve --attainment 0.99 --attainment-scope service` on the Poisson instance
        res = plan_for_attainment(inst, registry_solver("heuristic", options),
                                  AttainmentOptions(target=0.99, scope="service", seed=seed, rounds=12,
                                                    max_step=POISSON_MAX_STEP))
        judged = res.judged
    else:
        judged = run_solver("heuristic", inst, options)
    plan = judged.result.plan
    if plan is None or not judged.valid:
        return {"error": f"no valid plan: {judged.result.message}"}
    s = simulate(inst, plan, ArrivalSpec.parse("poisson"),
                 SimOptions(duration_s=float(p["duration"]), seed=1000 + seed)).summary
    worst = min(s.per_service, key=lambda x: x.attainment)
    return {"total_rps": round(sum(x.rate for x in inst.services), 1), "gpus": plan.gpus_used,
            "requests": s.requests, "slo_attainment": round(s.slo_attainment, 5),
            "worst_service": worst.name, "worst_attainment": round(worst.attainment, 5),
            "solve_s": round(judged.result.wall_s, 2), "point_cpu_s": round(time.process_time() - cpu0, 1)}


STUDY = Study("arrivals_default", "the default plan of Poisson instances vs deterministic plans and the margin alone",
              typical="15 min (12 services, 3 seeds)", quick="12 services, one seed")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=services_arg, nargs="+", default=[12, 64])
    ap.add_argument("--seeds", type=seed_arg, nargs="+", default=[1, 2, 3])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                    help="plans to make (default all three)")
    ap.add_argument("--time-limit", type=time_limit, default=60.0,
                    help="the heuristic's wall-clock limit per solve, s (default 60; raise it on a loaded machine)")
    args = study_args(ap, argv, quick="12 services, one seed")
    seeds = (1,) if args.quick else tuple(args.seeds)
    sizes = (12,) if args.quick else tuple(args.services)
    grid = [{"services": n, "seed": seed, "arrivals": a, "duration": 300 if n <= 64 else 120}
            | ({"time_limit": args.time_limit} if args.time_limit != 60.0 else {})
            for n in sizes for seed in seeds for a in VARIANTS if a in args.variants]
    keys = ["services", "seed", "arrivals", "duration"]
    rows = run_grid(EXPERIMENT, grid, keys, point, fresh=args.fresh)
    print(markdown_table(rows, keys + ["total_rps", "gpus", "requests", "slo_attainment", "worst_service",
                                       "worst_attainment", "solve_s", "point_cpu_s"]))
    by = {(r["services"], r["seed"], r["arrivals"]): r for r in rows}
    print("\n| services | seed | planned for | GPUs (deterministic: D) | extra over D | allowed: max(2, 20 % of D) | "
          "overall | worst service |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for seed in seeds:
            d = by.get((str(n), str(seed), "deterministic"))
            for a in ("poisson", "poisson+attainment"):
                q = by.get((str(n), str(seed), a))
                if not d or not q or not d.get("gpus") or not q.get("gpus"):
                    continue
                extra = int(q["gpus"]) - int(d["gpus"])
                allowed = max(2, int(0.2 * int(d["gpus"])))
                print(f"| {n} | {seed} | {a} | {q['gpus']} (D {d['gpus']}) | +{extra} | {allowed} | "
                      f"{float(q['slo_attainment']):.2%} | {float(q['worst_attainment']):.2%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
