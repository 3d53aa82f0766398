"""Issue 4: how the exact solvers scale: services 4..64, GPUs 1..32, three formulations x three engines (min-gpus).

    python -m experiments.exact_scaling                                   # default grid, 20 s per solve
    python -m experiments.exact_scaling --points 4x1,8x2 --time-limit 10 --engines highs --formulations slots
    python -m experiments.exact_scaling --device a100-mig --fresh

Instances: `stsched.scenarios.random_instance(services, gpus, seed, device)` (A100 MPS data by default: sizes
{20,...,100} %, no partition or tenant limits beyond the rules, load 0.6 of the GPUs).  Formulations (solvers/milp.py):
slots (aggregated configurations + layout counts), patterns (complete GPU patterns; when they exceed the pattern
limit the solver falls back to slots and the cell says so), indexed (one block of variables per GPU, symmetry
breaking).  Each cell: wall time to a proven optimum, or the gap left at the time limit.
Results: results/exact_scaling/rows.csv and a printed table.
"""

from __future__ import annotations

import argparse
import logging
import re

from experiments.common import markdown_table, run_grid
from stsched.scenarios import random_instance
from stsched.solve import Objective, SolveOptions, Status, run_solver

log = logging.getLogger(__name__)

EXPERIMENT = "exact_scaling"
ENGINES = {"cbc": ("milp", "cbc"), "highs": ("milp", "highs"), "cpsat": ("cpsat", None)}
DEFAULT_POINTS = "4x1,4x2,8x2,8x4,16x4,16x8,32x8,32x16,64x16,64x32"


def _point(p, time_limit: float, threads: int) -> dict[str, object]:
    inst = random_instance(int(p["services"]), int(p["gpus"]), int(p["seed"]), device=str(p["device"]))
    name, backend = ENGINES[str(p["engine"])]
    j = run_solver(name, inst, SolveOptions(Objective.MIN_GPUS, time_limit_s=time_limit, threads=threads,
                                            backend=backend, params=(("formulation", str(p["formulation"])),)))
    r = j.result
    disc = r.discretisation
    used = re.search(r"formulation (\w+)", disc)
    sizes = re.search(r"(\d+) configurations, (\d+) layouts(?:, (\d+) GPU patterns)?", disc)
    tenants = re.search(r"tenant sets <= (\d+)", disc)
    return {"status": r.status.value, "gpus_used": r.gpus, "bound": r.bound, "gap": r.gap, "valid": j.valid,
            "wall_s": round(r.wall_s, 2), "used": used.group(1) if used else "",
            "configs": sizes.group(1) if sizes else "", "patterns": (sizes.group(3) or "") if sizes else "",
            "tenants": tenants.group(1) if tenants else "", "exact_model": "restricted" not in disc if disc else "",
            "message": r.message[:200]}


def _cell(d) -> str:
    wall = float(d["wall_s"])
    if d["used"] and d["used"] != d["formulation"]:
        return f"fell back to {d['used']}: " + _cell({**d, "used": ""})
    if d["status"] == Status.OPTIMAL.value:
        return f"{wall:.1f}s"
    if d["status"] == Status.FEASIBLE.value:
        return f"gap {float(d['gap']):.0%}" if d["gap"] not in ("", None) else "feasible"
    return d["status"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", default=DEFAULT_POINTS, help="SERVICESxGPUS,... (default %(default)s)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--device", default="a100-mps")
    ap.add_argument("--formulations", default="slots,patterns,indexed")
    ap.add_argument("--engines", default="cbc,highs,cpsat")
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    pairs = [tuple(int(x) for x in p.split("x")) for p in args.points.split(",")]
    forms, engines = args.formulations.split(","), args.engines.split(",")
    points = [{"device": args.device, "services": s, "gpus": g, "seed": int(seed), "formulation": f, "engine": e}
              for s, g in pairs for seed in args.seeds.split(",") for f in forms for e in engines]
    rows = run_grid(EXPERIMENT, points, ("device", "services", "gpus", "seed", "formulation", "engine"),
                    lambda p: _point(p, args.time_limit, args.threads), fresh=args.fresh)
    table = []
    for s, g in pairs:
        for seed in args.seeds.split(","):
            line: dict[str, object] = {"services": s, "gpus": g, "seed": seed}
            for d in rows:
                if (d["device"], int(d["services"]), int(d["gpus"]), d["seed"]) != (args.device, s, g, seed):
                    continue
                line[f"{d['formulation']}/{d['engine']}"] = _cell(d)
                if d["formulation"] == "slots":
                    line["configs"] = d["configs"]
                    line["T"] = d["tenants"] + ("" if d["exact_model"] in ("True", True) else "*")
                    if d["status"] == Status.OPTIMAL.value or "optimum" not in line:
                        line["optimum"] = d["gpus_used"] if d["status"] == Status.OPTIMAL.value else \
                            f"<= {d['gpus_used']}"
            table.append(line)
    cols = ["services", "gpus", "seed", "optimum", "configs", "T"] + [f"{f}/{e}" for f in forms for e in engines]
    print(f"device {args.device}; min-gpus; time limit {args.time_limit:g} s per solve; cells: time to proven "
          f"optimum or the gap left; T: tenant sets in the model (* a restriction)\n")
    print(markdown_table(table, cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
