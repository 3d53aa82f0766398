"""`stsched demo`: the main job end to end on shipped data.

Imports the shipped profiles, builds the published scenarios, checks ParvaGPU's published deployments, solves the
scenarios with every registered solver (exact solvers under a time limit), checks every plan, simulates the
winning plan when the simulator is installed, judges plans of a random 16-service instance made at the rates, at
1.25 x, with head-room found by simulation and for every service at 99 % on fresh Poisson arrivals, and writes
`results/demo/` (rows.csv, summary.md).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

from tqdm import tqdm

from stsched import validate as V
from stsched.checker import check
from stsched.io import write_atomic
from stsched.outputs import output_folder
from stsched.registry import Objective, SolveOptions, available_solvers, run_solver

log = logging.getLogger(__name__)


def add(sub) -> None:
    p = sub.add_parser("demo", help="run the main job end to end on the shipped data")
    p.add_argument("--out", default="results/demo", help="folder for rows.csv and summary.md")
    p.add_argument("--time-limit", type=V.time_limit, default=20.0, help="seconds per exact solve (default 20)")
    p.add_argument("--quick", action="store_true", help="fewer scenarios (for smoke tests)")
    p.set_defaults(run=run)


def _cases(quick: bool):
    from stsched import scenarios
    rows = [1, 2] if quick else [1, 2, 3, 4]
    for r in rows:
        yield f"parvagpu row {r}", scenarios.parvagpu(r), Objective.MIN_GPUS
    mixes = ["m2"] if quick else ["m1", "m2"]
    gpus = [1] if quick else [1, 2]
    for mix in mixes:
        for g in gpus:
            yield f"gpulet {mix} on {g} GPU", scenarios.gpulet_mix(mix, g), Objective.MAX_SCALE


def _datasets() -> list[str]:
    from stsched.data.loaders import list_datasets, load_profile
    lines = []
    for name in list_datasets():
        p = load_profile(name)
        corun = 0 if p.corun is None else len(p.corun)
        lines.append(f"- `{name}`: {p.meta.gpu}, {p.meta.mechanism}, {len(p.solo)} solo rows, {corun} co-run rows, "
                     f"{p.solo['model'].nunique()} models")
    return lines


def run(args) -> int:
    from stsched import scenarios
    out = output_folder(args.out)
    started = time.perf_counter()
    summary = ["# stsched demo", "", "## Shipped profiles", *_datasets(), ""]
    print("\n".join(summary))

    summary += ["## ParvaGPU's published deployments under its own rules (5-process build)", ""]
    for row in (1, 2, 3, 4):
        inst = scenarios.parvagpu(row, max_procs=5)
        report = check(inst, scenarios.parvagpu_published_plan(inst, row=row))
        line = f"- row {row}: {report.stats.gpus_used} GPUs, checker says {'valid' if report.valid else 'INVALID'}"
        summary.append(line)
        print(line)
    summary.append("")

    solvers = available_solvers()
    records = []
    cases = list(_cases(args.quick))
    for label, inst, objective in tqdm(cases, desc="scenarios", disable=True if getattr(args, "quiet", False) else None):
        for name, info in solvers.items():
            if info.oracle or info.alias_of or info.supports(inst, objective):
                continue  # a test oracle, an alias of a solver run already, or one that does not plan for this
            opts = SolveOptions(objective=objective, time_limit_s=args.time_limit)
            judged = run_solver(name, inst, opts)
            d = judged.to_dict()
            rec = {"case": label, "objective": objective.value, **{k: d[k] for k in
                   ("solver", "status", "objective", "bound", "gap", "wall_s", "gpus", "scale", "valid")}}
            rec["objective_value"] = rec.pop("objective")
            rec["objective"] = objective.value
            records.append(rec)
            print(f"{label:<22} {name:<12} {d['status']:<10} objective {d['objective']}  bound {d['bound']}  "
                  f"{d['wall_s'] * 1000:9.1f} ms  valid {d['valid']}")
    summary += ["## Solvers on the published scenarios", "",
                "| case | objective | solver | status | value | bound | wall ms | valid |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        val, bound = _fmt(r["objective_value"]), _fmt(r["bound"])
        summary.append(f"| {r['case']} | {r['objective']} | {r['solver']} | {r['status']} | {val} | {bound} | "
                       f"{r['wall_s'] * 1000:.1f} | {r['valid']} |")
    summary += ["", *_simulate(records, args), "", *_attainment(), "",
                f"Total wall time {time.perf_counter() - started:.1f} s."]
    buf = io.StringIO()
    if records:
        w = csv.DictWriter(buf, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    write_atomic(out / "rows.csv", buf.getvalue())
    write_atomic(out / "summary.md", "\n".join(summary) + "\n")
    print(f"\nwrote {out / 'rows.csv'} and {out / 'summary.md'}")
    bad = [r for r in records if r["valid"] is False]
    return 1 if bad else 0


def _fmt(x) -> str:
    return "" if x is None else f"{x:.4g}"


def _simulate(records, args) -> list[str]:
    """Replay the heuristic's min-gpus plan of gpulet m2 under Poisson and bursty arrivals."""
    from stsched import scenarios
    from stsched.simulation import ArrivalSpec, SimOptions, simulate

    inst = scenarios.gpulet_mix("m2", 1, rate=800.0 / 3)  # 800 req/s in all
    judged = run_solver("heuristic", inst, SolveOptions(objective=Objective.MIN_GPUS))
    if judged.result.plan is None:
        return ["(no heuristic plan to simulate)"]
    out = ["## Simulation", "",
           f"The heuristic's min-gpus plan of gpulet m2 at {sum(s.rate for s in inst.services):.0f} req/s "
           f"({judged.result.gpus} GPU), replayed for 60 s:", ""]
    for spec in ("poisson", "gamma:2"):
        summ = simulate(inst, judged.result.plan, ArrivalSpec.parse(spec), SimOptions(duration_s=60.0, seed=0)).summary
        line = f"- {spec}: SLO attainment {summ.slo_attainment:.4f}, p99 {summ.p99_ms:.1f} ms"
        print(line)
        out.append(line)
    return out


def _attainment() -> list[str]:
    """Heuristic plans of a random 16-service instance judged on fresh Poisson arrivals: at the rates, at 1.25 x the
    rates, with head-room found by simulation (`stsched solve --attainment 0.99`) and for every service at 99 %
    (`--late-share 0.05 --attainment-scope service`)."""
    from stsched import scenarios
    from stsched.planning.attainment import AttainmentOptions, plan_for_attainment, registry_solver
    from stsched.simulation import ArrivalSpec, SimOptions, simulate

    inst = scenarios.random_instance(16, 2, 3).with_gpus(8)
    solve = registry_solver("heuristic", SolveOptions(objective=Objective.MIN_GPUS))

    overall = plan_for_attainment(inst, solve, AttainmentOptions(target=0.99, seed=100))
    every = plan_for_attainment(inst.with_late_share(0.05), solve,
                                AttainmentOptions(target=0.99, scope="service", seed=100))
    plans = [("at the rates", solve(inst).result.plan), ("1.25 x the rates", solve(inst.scaled(1.25)).result.plan),
             (f"head-room by simulation ({overall.message})", overall.plan),
             (f"late_share 0.05 + head-room by simulation ({every.message})", every.plan)]
    out = ["## Plans for Poisson arrivals", "",
           f"The heuristic's min-gpus plans of `{inst.name}` ({sum(s.rate for s in inst.services):.0f} req/s), "
           "each replayed for 120 s of Poisson arrivals that no plan was made with (seed 1):", ""]
    for label, plan in plans:
        if plan is None:
            line = f"- {label}: no plan"
        else:
            summ = simulate(inst, plan, ArrivalSpec.parse("poisson"), SimOptions(duration_s=120.0, seed=1)).summary
            worst = min(summ.per_service, key=lambda x: x.attainment)
            line = (f"- {label}: {plan.gpus_used} GPUs, SLO attainment {summ.slo_attainment:.4f}, worst service "
                    f"{worst.name} {worst.attainment:.4f}")
        print(line)
        out.append(line)
    return out
