"""Proven optimal GPU counts for ParvaGPU's shipped scenarios (A100-80GB MIG profiles), beside ParvaGPU.

    python -m experiments.exact_parvagpu                         # rows 1-4, engines cbc, highs, cpsat, 60 s each
    python -m experiments.exact_parvagpu --rows 1,2 --engines highs --time-limit 30 --fresh

Every instance is `stsched.scenarios.parvagpu(row)`: ParvaGPU's own margin (latency < 0.9 * SLO / 2), at most 3
MPS processes per slice credited with the measured per-process throughput, NVIDIA's A100 MIG placements.  Two rule
sets are solved:
- `parvagpu`: one service per MIG slice (ParvaGPU's own restriction, written into the instance's mechanism, so that
  the optimum under these rules is the problem's);
- `shared`: what the instance allows besides, time sharing of a slice by several services (cycle rule, docs/RULES.md).
Reference: ParvaGPU's public scheduler re-run at commit 5f3de1e (2, 3, 5, 7, 13, 17 A100s for its scenarios 1-6;
shipped rows 1-4 are its scenarios 1, 2, 4, 6) and its committed deployment maps, judged here by our checker.
Results: results/exact_parvagpu/rows.csv, the optimal plans in results/exact_parvagpu/plans/, a printed table.
Plot: results/exact_parvagpu/gpus.png, GPUs per scenario (optimum with time sharing, optimum with one service per
slice, ParvaGPU's public re-run, and the heuristic from results/heuristic/mig.csv when that file exists);
`--plot-only` redraws it from rows.csv without solving.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

from experiments.common import (EXACT_ENGINES, RUN_ERROR_CELL, Study, completed, listed, markdown_table, read_rows,
                                redraw, results_dir, results_root, run_grid, run_study, study_args)
from experiments.plots import grouped_bars, number
from experiments.runners import RUN_ERROR
from stsched import validate as V
from stsched.errors import InputError
from stsched.bounds import lp_relaxation
from stsched.checker import check
from stsched.io import save_plan
from stsched.scenarios import PARVAGPU_GPUS, parvagpu, parvagpu_published_plan
from stsched.registry import Objective, SolveOptions, Status, run_solver

log = logging.getLogger(__name__)

STUDY = Study("exact_parvagpu", "ParvaGPU's scenarios (A100 MIG) solved exactly under its own rules",
              typical="10 min", quick="row 1 only, both rules, highs and cpsat")
EXPERIMENT = "exact_parvagpu"
SCENARIO_OF_ROW = {1: 1, 2: 2, 3: 4, 4: 6}  # shipped data row -> ParvaGPU's scenario number
RULES = {"parvagpu": 1, "shared": None}  # services per slice written into the instance: the rules are the problem
ENGINES = EXACT_ENGINES


def _published(row: int) -> tuple[int | None, bool | None]:
    inst = parvagpu(row)
    try:
        plan = parvagpu_published_plan(inst, row=row)
    except Exception as e:  # a missing map is reported, not fatal
        log.warning("row %d: no published map (%s)", row, e)
        return None, None
    return plan.gpus_used, check(inst, plan).valid


def _point(p, time_limit: float, threads: int, plans: Path) -> dict[str, object]:
    row, rules, engine = int(p["row"]), str(p["rules"]), str(p["engine"])
    inst = parvagpu(row)
    if RULES[rules] is not None:
        inst = replace(inst, mechanism=replace(inst.mechanism, max_tenants=RULES[rules]))
    name, backend = ENGINES[engine]
    judged = run_solver(name, inst, SolveOptions(Objective.MIN_GPUS, time_limit_s=time_limit, threads=threads,
                                                 engine=backend))
    r = judged.result
    if r.plan is not None and judged.valid:
        save_plan(r.plan, plans / f"row{row}_{rules}_{engine}.json")
    return {"status": r.status.value, "gpus": r.gpus, "bound": r.bound, "valid": judged.valid,
            "wall_s": round(r.wall_s, 2), "message": r.message[:160]}


def _describe(plan) -> str:
    gpus = []
    for g in plan.gpus:
        parts = [f"{p.size:g}g:{'+'.join(t.service for t in p.tenants)}" + (f"x{p.procs}" if p.procs > 1 else "")
                 for p in g.partitions]
        gpus.append("[" + " ".join(parts) + "]")
    return " ".join(gpus)


def plot(rows: list[dict[str, str]]) -> list[Path]:
    """GPUs per scenario row from the written rows: the proven optimum per rule set ("<=N" when no engine proved
    it), ParvaGPU's public figure, and the heuristic's valid count from results/heuristic/mig.csv if present."""
    rows = completed(rows)
    scen = sorted({int(d["row"]) for d in rows})
    series: dict[str, list[float | None]] = {}
    labels: dict[str, list[str | None]] = {}
    for rules, name in (("shared", "optimum, time sharing"), ("parvagpu", "optimum, one service per slice")):
        series[name], labels[name] = [], []
        for r in scen:
            got = [d for d in rows if int(d["row"]) == r and d["rules"] == rules and d["valid"] == "True"]
            proven = [number(d["gpus"]) for d in got if d["status"] == Status.OPTIMAL.value]
            found = [number(d["gpus"]) for d in got if number(d["gpus"]) is not None]
            best = min(proven) if proven else min(found, default=None)
            series[name].append(best)
            labels[name].append(None if best is None else f"{best:g}" if proven else f"<={best:g}")
    series["ParvaGPU (public re-run)"] = [PARVAGPU_GPUS.get(SCENARIO_OF_ROW.get(r, 0)) for r in scen]
    labels["ParvaGPU (public re-run)"] = [None if v is None else f"{v:g}" for v in series["ParvaGPU (public re-run)"]]
    if (results_root() / "heuristic" / "mig.csv").exists():
        mig = {int(d["row"]): number(d.get("heuristic_gpus")) for d in read_rows("heuristic", "mig.csv")
               if d.get("heuristic_valid") == "True"}
        series["heuristic"] = [mig.get(r) for r in scen]
        labels["heuristic"] = [None if v is None else f"{v:g}" for v in series["heuristic"]]
    groups = [f"row {r} (scenario {SCENARIO_OF_ROW.get(r, '?')})" for r in scen]
    return [grouped_bars(groups, series, results_dir(EXPERIMENT) / "gpus.png", ylabel="A100 GPUs", labels=labels,
                         title="ParvaGPU scenarios (A100 MIG): GPUs needed",
                         note="<=N: no engine proved the optimum within its time limit (best plan found)"
                         if any(t and t.startswith("<=") for ts in labels.values() for t in ts) else None)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="1,2,3,4")
    ap.add_argument("--engines", default="cbc,highs,cpsat")
    ap.add_argument("--rules", default="parvagpu,shared")
    ap.add_argument("--time-limit", type=V.time_limit, default=60.0)
    args = study_args(ap, argv, quick="row 1 only, both rules, highs and cpsat")  # the shared block
    if args.quick:
        args.rows, args.engines = "1", "highs,cpsat"
    if args.plot_only:
        return redraw(EXPERIMENT, plot)
    rows = listed(ap, "--rows", args.rows, lambda t: V.check_int(t, "row", minimum=1))
    rules = listed(ap, "--rules", args.rules, known=list(RULES))
    engines = listed(ap, "--engines", args.engines, known=list(ENGINES))
    for r in rows:  # each row read before any point runs (a row beyond the shipped file)
        try:
            parvagpu(r)
        except InputError as e:
            ap.error(f"argument --rows: {e}")
    plans = results_dir(EXPERIMENT) / "plans"
    plans.mkdir(exist_ok=True)
    points = [{"row": r, "rules": ru, "engine": e} for r in rows for ru in rules for e in engines]
    done = run_grid(EXPERIMENT, points, ("row", "rules", "engine"),
                    lambda p: _point(p, args.time_limit, args.threads, plans), fresh=args.fresh)
    table = []
    for r in rows:
        inst = parvagpu(r)
        pub, pub_valid = _published(r)
        line: dict[str, object] = {
            "row": r, "scenario": SCENARIO_OF_ROW.get(r, "?"), "services": len(inst.services),
            "parvagpu_public": PARVAGPU_GPUS.get(SCENARIO_OF_ROW.get(r, 0), "?"),
            "committed_map": f"{pub} ({'valid' if pub_valid else 'rejected'})" if pub is not None else "-",
            "lp_bound": f"{lp_relaxation(inst).value:.3f}"}
        for d in done:
            if int(d["row"]) != r:
                continue
            if d.get(RUN_ERROR):  # kept in rows.csv with its error; the next run retries it
                line[f"{d['rules']}/{d['engine']}"] = RUN_ERROR_CELL
                continue
            mark = "" if d["status"] == Status.OPTIMAL.value else f" ({d['status']}, bound {d['bound']})"
            line[f"{d['rules']}/{d['engine']}"] = f"{d['gpus']}{mark} {float(d['wall_s']):.1f}s"
        table.append(line)
    cols = ["row", "scenario", "services", "parvagpu_public", "committed_map", "lp_bound"]
    cols += [f"{ru}/{e}" for ru in rules for e in engines]
    print(markdown_table(table, cols))
    print("\ncells: GPUs (status when not proven optimal) and wall time; lp_bound: the layout LP (stsched.bounds)")
    for f in sorted(plans.glob("row*_highs.json")) or sorted(plans.glob("row*.json")):
        from stsched.io import load_plan
        r = int(f.name[3:].split("_")[0])
        plan = load_plan(f)
        rep = check(parvagpu(r), plan)
        print(f"\n{f.name}: {plan.gpus_used} GPUs, checker valid={rep.valid}\n  {_describe(plan)}")
    print("\n" + "\n".join(map(str, plot(done))))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
