"""How the exact solvers scale: services 4..64, GPUs 1..32, three formulations x three engines (min-gpus).

    python -m experiments.exact_scaling                                   # default grid, 20 s per solve
    python -m experiments.exact_scaling --points 4x1,8x2 --time-limit 10 --engines highs --formulations slots
    python -m experiments.exact_scaling --dataset a100-mig --fresh

Instances: `stsched.scenarios.random_instance(services, gpus, seed, device)` (A100 MPS data by default: sizes
{20,...,100} %, no partition or tenant limits beyond the rules, load 0.6 of the GPUs).  Formulations (solvers/exact/milp.py):
slots (aggregated configurations + layout counts), patterns (complete GPU patterns; when they exceed the pattern
limit the solver falls back to slots and the cell says so), indexed (one block of variables per GPU, symmetry
breaking).  Each cell: wall time to a proven optimum, or the gap left at the time limit; where the model is a
restriction solved to its own optimum, that time and the gap to the problem's layout LP bound ("1.2s, LP gap 17%").
Results: results/exact_scaling/rows.csv and a printed table.
Plots: results/exact_scaling/solve_time_<device>.png (time to a proven optimum) and gap_<device>.png (gap left) per
services x GPUs, one series per formulation x engine; `--plot-only` redraws them from rows.csv without solving.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from experiments.common import (EXACT_ENGINES, RUN_ERROR_CELL, Study, completed, listed, markdown_table, redraw,
                                results_dir, run_grid, run_study, study_args)
from experiments.plots import number, series_plot
from experiments.runners import RUN_ERROR
from solvers.exact.patterns import FORMULATIONS
from stsched import validate as V
from stsched.errors import InputError
from stsched.scenarios import random_instance
from stsched.registry import Objective, SolveOptions, Status, run_solver

log = logging.getLogger(__name__)

STUDY = Study("exact_scaling", "exact solvers' time and gap from 4 services on 1 GPU to 64 on 32",
              typical="60 min", quick="4x1, 4x2 and 8x2 only")
EXPERIMENT = "exact_scaling"
ENGINES = EXACT_ENGINES
DEFAULT_POINTS = "4x1,4x2,8x2,8x4,16x4,16x8,32x8,32x16,64x16,64x32"


def _point(p, time_limit: float, threads: int) -> dict[str, object]:
    inst = random_instance(int(p["services"]), int(p["gpus"]), int(p["seed"]), device=str(p["device"]),
                           arrivals="deterministic")
    name, backend = ENGINES[str(p["engine"])]
    j = run_solver(name, inst, SolveOptions(Objective.MIN_GPUS, time_limit_s=time_limit, threads=threads,
                                            engine=backend, params=(("formulation", str(p["formulation"])),)))
    r = j.result
    disc = r.discretisation
    used = re.search(r"formulation (\w+)", disc)
    sizes = re.search(r"(\d+) configurations, (\d+) layouts(?:, (\d+) GPU patterns)?", disc)
    tenants = re.search(r"tenant sets <= (\d+)", disc)
    return {"status": r.status.value, "gpus_used": r.gpus, "bound": r.bound, "gap": r.gap, "valid": j.valid,
            "wall_s": round(r.wall_s, 2), "used": used.group(1) if used else "",
            "configs": sizes.group(1) if sizes else "", "patterns": (sizes.group(3) or "") if sizes else "",
            "tenants": tenants.group(1) if tenants else "", "exact_model": "restricted" not in disc if disc else "",
            "restricted_optimal": "optimal for the restricted model" in r.message, "message": r.message[:200]}


def _pair(text: str) -> tuple[int, int]:
    """SERVICESxGPUS, each a whole number >= 1."""
    services, gpus = text.split("x")  # not two: ValueError
    return (V.check_int(services, "services", minimum=1, maximum=V.MAX_SERVICES),
            V.check_int(gpus, "GPUs", minimum=1, maximum=V.MAX_PLAN_GPUS))


def _cell(d) -> str:
    if d.get(RUN_ERROR):  # kept in rows.csv with its error; the next run retries it
        return RUN_ERROR_CELL
    wall = float(d["wall_s"])
    if d["used"] and d["used"] != d["formulation"]:
        return f"fell back to {d['used']}: " + _cell({**d, "used": ""})
    if d["status"] == Status.OPTIMAL.value:
        return f"{wall:.1f}s"
    if d["status"] == Status.FEASIBLE.value:
        gap = f"gap {float(d['gap']):.0%}" if d["gap"] not in ("", None) else "feasible"
        # the restricted model solved to optimality: its time, and the gap to the problem's LP bound
        return f"{wall:.1f}s, LP {gap}" if str(d.get("restricted_optimal")) == "True" else gap
    return d["status"]


COLOURS = {"slots": "tab:blue", "patterns": "tab:orange", "indexed": "tab:green"}
MARKERS = {"cbc": "o", "highs": "s", "cpsat": "^"}


def plot(rows: list[dict[str, str]]) -> list[Path]:
    """Per device: time to a proven optimum (no point when not proven) and the gap left (0 when proven, no point
    without a plan) against services x GPUs, one series per formulation/engine as requested."""
    out = []
    rows = completed(rows)
    for device in dict.fromkeys(d["device"] for d in rows):
        rs = [d for d in rows if d["device"] == device]
        seeds = len({d["seed"] for d in rs}) > 1
        at = {id(d): f"{d['services']}x{d['gpus']}" + (f"/{d['seed']}" if seeds else "") for d in rs}
        order = list(dict.fromkeys(at[id(d)] for d in sorted(rs, key=lambda d: (int(d["services"]), int(d["gpus"]),
                                                                              int(d["seed"])))))
        times, gaps, styles = {}, {}, {}
        for d in rs:
            name = f"{d['formulation']}/{d['engine']}"
            proven = d["status"] == Status.OPTIMAL.value and d["valid"] == "True"
            has_plan = d["valid"] == "True" and number(d["gpus_used"]) is not None
            times.setdefault(name, ([], []))
            gaps.setdefault(name, ([], []))
            times[name][0].append(at[id(d)])
            times[name][1].append(number(d["wall_s"]) if proven else None)
            gaps[name][0].append(at[id(d)])
            gaps[name][1].append(0.0 if proven else 100 * number(d["gap"]) if has_plan and number(d["gap"]) is not None
                                 else None)
            styles[name] = {"color": COLOURS.get(d["formulation"]), "marker": MARKERS.get(d["engine"], "o"),
                            "alpha": 0.8}
        fell = sorted({f"{d['formulation']}->{d['used']}" for d in rs if d["used"] and d["used"] != d["formulation"]})
        back = f"; fell back (model used instead): {', '.join(fell)}" if fell else ""
        out.append(series_plot(times, results_dir(EXPERIMENT) / f"solve_time_{device}.png", categories=order,
                               xlabel="services x GPUs", ylabel="wall time to proven optimum (s)", styles=styles,
                               title=f"exact solvers, min-gpus ({device})",
                               note="no point: optimum not proven within the time limit (see gap plot)" + back))
        out.append(series_plot(gaps, results_dir(EXPERIMENT) / f"gap_{device}.png", categories=order,
                               xlabel="services x GPUs", ylabel="gap left at the end (%)", styles=styles,
                               log_scale=False, title=f"exact solvers, min-gpus ({device})",
                               note="0: proven optimum; no point: no plan within the time limit" + back))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", default=DEFAULT_POINTS, help="SERVICESxGPUS,... (default %(default)s)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--dataset", dest="device", default="a100-mps", help="data set of the random instances")
    ap.add_argument("--device", dest="device", help=argparse.SUPPRESS)  # the former name of --dataset
    ap.add_argument("--formulations", default="slots,patterns,indexed")
    ap.add_argument("--engines", default="cbc,highs,cpsat")
    ap.add_argument("--time-limit", type=V.time_limit, default=20.0)
    args = study_args(ap, argv, quick="4x1, 4x2 and 8x2 only")  # the shared block (--threads too)
    if args.quick:
        args.points = "4x1,4x2,8x2"
    if args.plot_only:
        return redraw(EXPERIMENT, plot)
    pairs = listed(ap, "--points", args.points, _pair)
    seeds = listed(ap, "--seeds", args.seeds, lambda t: V.check_int(t, "seed", minimum=0))
    forms = listed(ap, "--formulations", args.formulations, known=[f for f in FORMULATIONS if f != "auto"])
    engines = listed(ap, "--engines", args.engines, known=list(ENGINES))
    for s, g in pairs:  # the data set and each instance's size, before any point runs
        try:
            random_instance(s, g, seeds[0], device=args.device, arrivals="deterministic")
        except InputError as e:
            ap.error(f"argument --dataset {args.device!r} / --points {s}x{g}: {e}")
    points = [{"device": args.device, "services": s, "gpus": g, "seed": seed, "formulation": f, "engine": e}
              for s, g in pairs for seed in seeds for f in forms for e in engines]
    rows = run_grid(EXPERIMENT, points, ("device", "services", "gpus", "seed", "formulation", "engine"),
                    lambda p: _point(p, args.time_limit, args.threads), fresh=args.fresh,
                    cost=lambda p: p["services"] * p["gpus"])  # bigger models first on several workers
    table = []
    for s, g in pairs:
        for seed in seeds:
            line: dict[str, object] = {"services": s, "gpus": g, "seed": seed}
            for d in rows:
                if (d["device"], int(d["services"]), int(d["gpus"]), int(d["seed"])) != (args.device, s, g, seed):
                    continue
                line[f"{d['formulation']}/{d['engine']}"] = _cell(d)
                if d["formulation"] == "slots" and not d.get(RUN_ERROR):
                    line["configs"] = d["configs"]
                    line["T"] = d["tenants"] + ("" if d["exact_model"] in ("True", True) else "*")
                    if d["status"] == Status.OPTIMAL.value or "optimum" not in line:
                        line["optimum"] = d["gpus_used"] if d["status"] == Status.OPTIMAL.value else \
                            f"<= {d['gpus_used']}"
            table.append(line)
    cols = ["services", "gpus", "seed", "optimum", "configs", "T"] + [f"{f}/{e}" for f in forms for e in engines]
    print(f"device {args.device}; min-gpus; time limit {args.time_limit:g} s per solve; cells: time to proven "
          f"optimum or the gap left (restricted model solved: its time and the LP gap); T: tenant sets in the "
          f"model (* a restriction)\n")
    print(markdown_table(table, cols))
    print("\n" + "\n".join(map(str, plot(rows))))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
