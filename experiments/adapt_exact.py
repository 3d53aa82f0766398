"""The heuristic's adapt objective against the exact one (milp) on random rate changes.

    python -m experiments.adapt_exact            # resumable: results/adapt_exact/rows.csv, printed table
    python -m experiments.adapt_exact --fresh
    python -m experiments.adapt_exact --quick    # 2 seeds per device (same code path)

Each point: `stsched.scenarios.random_instance(SERVICES services, 3 GPUs of rate scale, seed)` on the A100 MPS or
MIG data with room for 8 GPUs; the plan in force is the heuristic's min-gpus plan; the new rates multiply every
service's rate by a factor drawn uniformly from [0.7, 1.6] (seeded); then the heuristic's adapt and the milp's
adapt (CBC, 20 s) re-plan from the plan in force.  Reported: layout reconfigurations and GPUs of each, the milp's
status (`optimal` = proven for the full problem) and wall times.
"""

from __future__ import annotations

import argparse

import numpy as np

from experiments.common import Study, markdown_table, read_rows, run_grid, run_study, study_args
from stsched.plan import layout_changes
from stsched.scenarios import random_instance
from stsched.registry import Objective, SolveOptions, run_solver

STUDY = Study("adapt_exact", "the heuristic's adapt objective vs the exact milp's on random rate changes",
              typical="5 min", quick="2 seeds per device")
EXPERIMENT = "adapt_exact"
SERVICES, LOW, HIGH = 5, 0.7, 1.6
KEYS = ["device", "seed"]


def point(p) -> dict[str, object]:
    seed = int(p["seed"])
    inst = random_instance(SERVICES, 3, seed, device=str(p["device"]), arrivals="deterministic").with_gpus(8)
    current = run_solver("heuristic", inst, SolveOptions(time_limit_s=5)).result.plan
    if current is None:
        return {"error": "no plan in force"}
    rng = np.random.default_rng(seed)
    new = inst.with_rates({s.name: s.rate * float(rng.uniform(LOW, HIGH)) for s in inst.services})
    out: dict[str, object] = {"gpus_in_force": current.gpus_used}
    for name in ("heuristic", "milp"):
        j = run_solver(name, new, SolveOptions(objective=Objective.ADAPT, current_plan=current, time_limit_s=20))
        plan = j.result.plan if j.valid else None
        out[f"{name}_changes"] = None if plan is None else layout_changes(current, plan)
        out[f"{name}_gpus"] = None if plan is None else plan.gpus_used
        out[f"{name}_ms"] = round(j.result.wall_s * 1000, 1)
        if name == "milp":
            out["milp_status"] = j.result.status.value
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = study_args(ap, argv)  # --quick, --fresh, --plot-only (no plots: the table again), --runner, --jobs
    grid = [{"device": d, "seed": s} for s in range(2 if args.quick else 10) for d in ("a100-mps", "a100-mig")]
    if args.plot_only:
        want = {tuple(str(g[k]) for k in KEYS) for g in grid}
        rows = [r for r in read_rows(EXPERIMENT) if tuple(r.get(k, "") for k in KEYS) in want]
    else:
        rows = run_grid(EXPERIMENT, grid, KEYS, point, fresh=args.fresh)
    cols = KEYS + ["gpus_in_force", "heuristic_changes", "heuristic_gpus", "heuristic_ms", "milp_status",
                   "milp_changes", "milp_gpus", "milp_ms"]
    print(markdown_table(rows, cols))
    done = [r for r in rows if r.get("milp_changes") not in (None, "") and r.get("heuristic_changes") not in (None, "")]
    proven = [r for r in done if r["milp_status"] == "optimal"]
    fewer = [r for r in done if int(r["milp_changes"]) < int(r["heuristic_changes"])]
    print(f"\n{len(done)} transitions: milp proven optimal on {len(proven)}, fewer reconfigurations than the "
          f"heuristic on {len(fewer)}; reconfigurations in all: heuristic "
          f"{sum(int(r['heuristic_changes']) for r in done)}, milp {sum(int(r['milp_changes']) for r in done)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
