"""`stsched demo`: the main job end to end on shipped data.

Imports the shipped profiles, builds the published scenarios, checks ParvaGPU's published deployments, solves the
scenarios with every registered solver (exact solvers under a time limit), checks every plan, simulates the
winning plan when the simulator is installed, judges plans of a random 16-service instance made at the rates, at
1.25 x, with head-room found by simulation and for every service at 99 % on fresh Poisson arrivals, and writes
`results/demo/` (rows.csv, summary.md, plans/: a picture, the instance and the plan of one plan per scenario).

stdout gets the report (one rounded line per scenario, where the files are); progress goes to stderr (`--quiet`:
none).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

from stsched import validate as V
from stsched.checker import check
from stsched.commands.demo_report import next_steps, report_table, slug
from stsched.io import save_instance, save_plan, write_atomic
from stsched.outputs import output_folder
from stsched.registry import Objective, SolveOptions, available_solvers, run_solver

log = logging.getLogger(__name__)


def add(sub) -> None:
    p = sub.add_parser("demo", help="run the main job end to end on the shipped data")
    p.add_argument("--out", default="results/demo", help="folder for rows.csv and summary.md")
    p.add_argument("--time-limit", type=V.time_limit, default=20.0, help="seconds per exact solve (default 20)")
    p.add_argument("--quick", action="store_true", help="fewer scenarios (for smoke tests)")
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress on stderr (the report still goes to stdout; as `stsched -q demo`)")
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


class _Progress:
    """Progress lines on stderr, unless quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, line: str) -> None:
        if not self.quiet:
            tqdm.write(line, file=sys.stderr)


def run(args) -> int:
    from stsched import scenarios
    out = output_folder(args.out)
    quiet = getattr(args, "quiet", False)
    say = _Progress(quiet)
    started = time.perf_counter()
    summary = ["# stsched demo", "", "## Shipped profiles", *_datasets(), ""]
    for line in summary[3:-1]:
        say(line)

    summary += ["## ParvaGPU's published deployments under its own rules (5-process build)", ""]
    for row in (1, 2, 3, 4):
        inst = scenarios.parvagpu(row, max_procs=5)
        report = check(inst, scenarios.parvagpu_published_plan(inst, row=row))
        line = f"- row {row}: {report.stats.gpus_used} GPUs, checker says {'valid' if report.valid else 'INVALID'}"
        summary.append(line)
        say(line)
    summary.append("")

    solvers = available_solvers()
    kinds = {name: info.kind for name, info in solvers.items()}
    records, pictures = [], []
    cases = list(_cases(args.quick))
    for label, inst, objective in tqdm(cases, desc="scenarios", disable=True if quiet else None):
        plans = {}
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
            if judged.valid and judged.result.plan is not None:
                plans[name] = judged.result.plan
            say(f"{label:<22} {name:<12} {d['status']:<10} objective {_fmt(d['objective'])}  bound "
                f"{_fmt(d['bound'])}  {d['wall_s'] * 1000:9.1f} ms  valid {d['valid']}")
        pictures.append(_picture(out, label, inst, plans, say))
    table = report_table(records, kinds)
    summary += ["## Solvers on the published scenarios", "",
                "Value: GPUs (min-gpus) or the rate factor alpha served (max-scale); gap: the heuristic against the "
                "best exact plan; n/a: a baseline for another partition mechanism; every plan passed the checker "
                "unless marked invalid. All solves: rows.csv.", "", *table, "",
                "## One plan per scenario", "",
                "One row per GPU, its partitions to scale, inside each the duty cycle to scale (stsched show).", ""]
    for label, rel, who in pictures:
        summary += [f"### {label}: {who}", "", f"![{label}]({rel})", ""] if rel else [f"- {label}: no valid plan", ""]
    sim = _simulate(records, args, say)
    summary += ["", *sim, "", *_attainment(say), "", *next_steps(str(out)), "",
                f"Total wall time {time.perf_counter() - started:.1f} s."]
    buf = io.StringIO()
    if records:
        w = csv.DictWriter(buf, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    write_atomic(out / "rows.csv", buf.getvalue())
    write_atomic(out / "summary.md", "\n".join(summary) + "\n")
    print("\n".join(table))
    for line in sim:
        if line.startswith("- "):
            print(f"simulated, the heuristic's min-gpus plan of gpulet m2 at 800 req/s, {line[2:]}")
    print(f"wrote {out / 'summary.md'} (report, {sum(1 for p in pictures if p[1])} plan pictures in {out / 'plans'}) "
          f"and {out / 'rows.csv'}")
    bad = [r for r in records if r["valid"] is False]
    return 1 if bad else 0


def _picture(out: Path, label: str, inst, plans: dict, say) -> tuple[str, str | None, str]:
    """Draw the heuristic's plan of a scenario (else the first valid plan) into out/plans/, with its instance and
    plan JSON beside it (so that `stsched show` and `stsched export` can be run on them)."""
    from stsched.view import plan_view, render

    name = "heuristic" if "heuristic" in plans else next(iter(plans), None)
    if name is None:
        return label, None, ""
    base = out / "plans" / slug(label)
    save_instance(inst, base.with_suffix(".instance.json"))
    save_plan(plans[name], base.with_suffix(".plan.json"))
    render(plan_view(inst, plans[name]), base.with_suffix(".png"))
    say(f"{label}: picture of the {name} plan -> {base.with_suffix('.png')}")
    return label, f"plans/{base.name}.png", f"the {name}'s plan ({plans[name].gpus_used} GPU{'s' if plans[name].gpus_used != 1 else ''})"


def _fmt(x) -> str:
    return "" if x is None else f"{x:.4g}"


def _simulate(records, args, say) -> list[str]:
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
        line = f"- {spec}: SLO attainment {summ.slo_attainment:.2%}, p99 {summ.p99_ms:.0f} ms"
        say(line)
        out.append(line)
    return out


def _attainment(say) -> list[str]:
    """Heuristic plans of a random 16-service instance judged on fresh Poisson arrivals: at the rates, at 1.25 x the
    rates, with head-room found by simulation (`stsched solve --attainment 0.99`) and for every service at 99 %
    (`--late-share 0.05 --attainment-scope service`)."""
    from stsched import scenarios
    from stsched.planning.attainment import AttainmentOptions, plan_for_attainment, registry_solver
    from stsched.simulation import ArrivalSpec, SimOptions, simulate

    inst = scenarios.random_instance(16, 2, 3, arrivals="deterministic").with_gpus(8)
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
            line = (f"- {label}: {plan.gpus_used} GPUs, SLO attainment {summ.slo_attainment:.2%}, worst service "
                    f"{worst.name} {worst.attainment:.2%}")
        say(line)
        out.append(line)
    return out
