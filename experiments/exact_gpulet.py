"""Max-scale on gpulet's application mixes (A100 MPS data) on 1, 2 and 4 GPUs, solved exactly.

    python -m experiments.exact_gpulet                               # all mixes, 1/2/4 GPUs, cbc+highs+cpsat, 60 s
    python -m experiments.exact_gpulet --mixes m1,m2 --gpus 1,2 --engines highs --time-limit 30 --fresh
    python -m experiments.exact_gpulet --interference fitted         # with the fitted interference form

Instances: `stsched.scenarios.gpulet_mix(mix, gpus)`: gpulet's rules (sizes {20,40,50,60,80,100} %, at most 2
gpu-lets per GPU and 3 tenants each, batches <= 32, latency factor 1.0), every service at weight * 10 req/s, so
alpha is gpulet's step i.  `--interference fitted` adds the interference form that `stsched.latency` fits to the
A100 co-run data (exact per GPU pattern when the patterns fit, else the solver's stated conservative bound).
Reference: the official gpulet scheduler on the same data and rules (M1 104/217/417, M2 84/198/396; gpulet
PROVENANCE).  Target: proven optimal or a gap under 1 % within 60 s.
Results: results/exact_gpulet/rows.csv and a printed table.
Plots: results/exact_gpulet/alpha_<interference>.png, alpha per mix and GPU count per engine (and gpulet's reference
without interference) divided by the proven optimum; `--plot-only` redraws them from rows.csv without solving.
"""

from __future__ import annotations

import argparse
import functools
import logging
from dataclasses import replace
from pathlib import Path

from experiments.common import (EXACT_ENGINES, RUN_ERROR_CELL, Study, completed, listed, markdown_table, redraw,
                                results_dir, run_grid, run_study, study_args)
from experiments.plots import grouped_bars, number
from experiments.runners import RUN_ERROR
from stsched import validate as V
from stsched.scenarios import GPULET_MIXES, gpulet_mix
from stsched.registry import Objective, SolveOptions, Status, run_solver

log = logging.getLogger(__name__)

STUDY = Study("exact_gpulet", "max-scale on gpulet's mixes, 1/2/4 GPUs, solved exactly, vs gpulet",
              typical="30 min", quick="mix m1 on 1 GPU, highs and cpsat")
EXPERIMENT = "exact_gpulet"
ENGINES = EXACT_ENGINES
GPULET_REF = {("m1", 1): 104, ("m1", 2): 217, ("m1", 4): 417, ("m2", 1): 84, ("m2", 2): 198, ("m2", 4): 396}


@functools.lru_cache(maxsize=1)
def _fitted_interference():
    from stsched.data.loaders import load_profile
    from stsched.latency import FitOptions, fit, interference_for
    return interference_for(fit(load_profile("a100-mps"), FitOptions()))


def _instance(mix: str, gpus: int, interference: str):
    inst = gpulet_mix(mix, gpus)
    return replace(inst, interference=_fitted_interference()) if interference == "fitted" else inst


def _point(p, time_limit: float, threads: int) -> dict[str, object]:
    inst = _instance(str(p["mix"]), int(p["gpus"]), str(p["interference"]))
    name, backend = ENGINES[str(p["engine"])]
    j = run_solver(name, inst, SolveOptions(Objective.MAX_SCALE, time_limit_s=time_limit, threads=threads,
                                            engine=backend))
    r = j.result
    formulation = r.discretisation.split(";")[0].replace("formulation ", "") if r.discretisation else ""
    return {"status": r.status.value, "alpha": r.objective, "bound": r.bound, "gap": r.gap, "valid": j.valid,
            "wall_s": round(r.wall_s, 2), "formulation": formulation,
            "exact_model": "restricted" not in r.discretisation if r.discretisation else "",
            "message": r.message[:200]}


def _cell(d) -> str:
    if d.get(RUN_ERROR):  # kept in rows.csv with its error; the next run retries it
        return RUN_ERROR_CELL
    if d["status"] == Status.INFEASIBLE.value:
        return f"infeasible {float(d['wall_s']):.1f}s"
    if not d["alpha"]:
        return f"{d['status']} {float(d['wall_s']):.1f}s"
    gap = f", gap {float(d['gap']):.2%}" if d["gap"] not in ("", None) and d["status"] != "optimal" else ""
    return f"{float(d['alpha']):.2f} ({d['status']}{gap}) {float(d['wall_s']):.1f}s"


def _plot_one(rows: list[dict[str, str]], interference: str) -> Path:
    """alpha / optimum for one interference setting; the optimum is the best proven alpha, else the least upper
    bound any engine proved (the group is then marked "bound"); groups without any plan are listed in the note."""
    rows = [d for d in rows if d["interference"] == interference]
    engines = list(dict.fromkeys(d["engine"] for d in rows))
    cases = list(dict.fromkeys((d["mix"], int(d["gpus"])) for d in rows))
    ref_name = "gpulet (official scheduler)"
    groups, missing = [], []
    series: dict[str, list[float | None]] = {e: [] for e in engines}
    labels: dict[str, list[str | None]] = {e: [] for e in engines}
    if interference == "none":
        series[ref_name], labels[ref_name] = [], []
    for mix, g in cases:
        got = {d["engine"]: d for d in rows if (d["mix"], int(d["gpus"])) == (mix, g)}
        alphas = {e: number(d["alpha"]) for e, d in got.items() if d["valid"] == "True" and number(d["alpha"])}
        proven = [alphas[e] for e, d in got.items() if e in alphas and d["status"] == Status.OPTIMAL.value]
        bounds = [b for d in got.values() if (b := number(d["bound"])) is not None]
        if not alphas or not (proven or bounds):
            missing.append(f"{mix}/{g} ({'/'.join(sorted({d['status'] for d in got.values()}))})")
            continue
        best = max(proven) if proven else min(bounds)
        groups.append(f"{mix}/{g} GPU " + (f"a*={best:.1f}" if proven else f"a<={best:.1f} (bound)"))
        for e in engines:
            a = alphas.get(e)
            series[e].append(None if a is None else a / best)
            proven_here = e in got and got[e]["status"] == Status.OPTIMAL.value
            labels[e].append(None if a is None or proven_here else f"gap {number(got[e]['gap']) or 0:.1%}")
        if interference == "none":
            ref = GPULET_REF.get((mix, g))
            series[ref_name].append(None if ref is None else ref / best)
            labels[ref_name].append(None if ref is None else f"{ref}")
    ratios = [v for vals in series.values() for v in vals if v is not None]
    note = "a*: best proven alpha (a<=: least proven upper bound); labels: gap left when not proven, gpulet's alpha"
    if missing:
        note += "; no plan: " + ", ".join(missing)
    return grouped_bars(groups, series, results_dir(EXPERIMENT) / f"alpha_{interference}.png",
                        ylabel="alpha / optimum", labels=labels, hline=1.0, note=note,
                        ylim=(max(0.0, min(ratios, default=1.0) - 0.05), 1.12),
                        title=f"gpulet mixes, max-scale (interference: {interference})")


def plot(rows: list[dict[str, str]]) -> list[Path]:
    """One figure per interference setting present in the rows."""
    rows = completed(rows)
    return [_plot_one(rows, i) for i in dict.fromkeys(d["interference"] for d in rows)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mixes", default=",".join(GPULET_MIXES))
    ap.add_argument("--gpus", default="1,2,4")
    ap.add_argument("--engines", default="cbc,highs,cpsat")
    ap.add_argument("--interference", default="none", choices=["none", "fitted"])
    ap.add_argument("--time-limit", type=V.time_limit, default=60.0)
    args = study_args(ap, argv, quick="mix m1 on 1 GPU, highs and cpsat")  # the shared block (--threads too)
    if args.quick:
        args.mixes, args.gpus, args.engines = next(iter(GPULET_MIXES)), "1", "highs,cpsat"
    if args.plot_only:
        return redraw(EXPERIMENT, plot)
    mixes = listed(ap, "--mixes", args.mixes, known=list(GPULET_MIXES))
    gpus = listed(ap, "--gpus", args.gpus, lambda t: V.check_int(t, "GPUs", minimum=1, maximum=V.MAX_PLAN_GPUS))
    engines = listed(ap, "--engines", args.engines, known=list(ENGINES))
    points = [{"interference": args.interference, "mix": m, "gpus": g, "engine": e}
              for m in mixes for g in gpus for e in engines]
    rows = run_grid(EXPERIMENT, points, ("interference", "mix", "gpus", "engine"),
                    lambda p: _point(p, args.time_limit, args.threads), fresh=args.fresh)
    table = []
    for m in mixes:
        for g in gpus:
            line: dict[str, object] = {"mix": m, "gpus": g, "gpulet_ref": GPULET_REF.get((m, g), "-")}
            for d in rows:
                if d["mix"] == m and int(d["gpus"]) == g and d["interference"] == args.interference:
                    line[d["engine"]] = _cell(d)
                    line["model"] = (f"{d['formulation']}{'' if d['exact_model'] in ('True', True) else ' (restricted)'}"
                                     if d["formulation"] else "-")
            table.append(line)
    print(f"interference: {args.interference}; cells: alpha (status, gap when not proven) and wall time\n")
    print(markdown_table(table, ["mix", "gpus", "gpulet_ref", "model", *engines]))
    print("\n" + "\n".join(map(str, plot(rows))))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
