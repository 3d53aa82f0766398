"""Validate a solver's plan on real hardware: profile -> instance -> plan -> checker -> simulator vs executor.

    python -m experiments.hw_validate prepare      # here (CPU): instance + heuristic plan from data/profiles/h200-sm
    python -m stsched.commands.profile execute results/hw/h200-sm/instance.json results/hw/h200-sm/plan.json \
        --backend sm --duration 20 --seed 1 --compare-sim --json > results/hw/h200-sm/exec.json   # on the GPU
    python -m experiments.hw_validate report       # here: results/hw/h200-sm/summary.md, batch_times.png
    (--margin 1.2 on prepare/report: the plan is made with every execution time x 1.2; results/hw/h200-sm/margin-1.2/;
    --dataset h100-sm: the same from the H100 profile, results/hw/h100-sm/;
    --interference: the instance carries the interference form fitted to the profile's own co-run rows
    (stsched-elastic: the profile has no L2/DRAM utilisation), so the checker, the heuristic and the simulator apply
    the co-running partitions' slowdown I_s(q); results/hw/<dataset>/interference/)

The instance: the five models of a profile measured by this project (`data/profiles/h200-sm` or `h100-sm`, green-context partitions of the
measured sizes 16..132 SMs, no interference model), each with an SLO of `SLO_FACTOR` x its solo latency at batch 8
on the whole GPU.  Rates: the heuristic's max-scale on one GPU for equal base rates gives alpha; every service is
then offered `LOAD` x alpha, and the heuristic's min-gpus plan for `HEADROOM` x those rates is what runs (a plan
whose partitions run at 100 % of their cycle capacity is valid for the checker but queues without bound under
Poisson arrivals; the head-room keeps utilisation at or below 80 %).  The executor serves Poisson arrivals on the profiled GPU with the plan's partitions as green contexts
and its tenants round robin (docs/PROFILER.md); the simulator replays the same arrivals with the profile's solo
latencies.  Their gap is what the profile and the model leave out: co-run interference between partitions and
serving overheads.  With --interference the fit reads data/profiles/<dataset>/corun.csv only, never the
executor's results under data/validation (those are the test).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from experiments.common import Study, hold_folder, markdown_table, results_dir, run_study, study_args
from stsched.checker import check
from stsched.data import load_profile
from stsched.errors import InputError
from stsched.io import load_instance, load_plan, save_instance, save_plan, write_atomic
from stsched.planning.headroom import solve_with_headroom
from stsched.planning.scenarios import calibrate
from stsched.problem import Instance, Interference
from stsched.scenarios import ProfileDraw, draw_services
from stsched.simulation import SimOptions, simulate
from stsched.registry import Objective, SolveOptions
from stsched.timing import gpu_timings

log = logging.getLogger(__name__)

STUDY = Study("hw_validate", "a heuristic plan executed on a GPU vs the simulator on the same arrivals",
              typical="20 min on a GPU", needs_gpu=True, results="hw",
              quick="the CPU steps: prepare, then predict on the shipped GPU runs")
EXPERIMENT = "hw"
DATASET = "h200-sm"
SLO_FACTOR = 5.0
LOAD = 0.6
HEADROOM = 1.25  # plans are made for 1.25 x the offered rates (<= 80 % utilisation), as the adapt controller does
BATCHES = (1, 2, 4, 8, 16, 32)
DURATION_S, SEED = 20.0, 1
VALIDATION = Path(__file__).resolve().parents[1] / "data" / "validation"  # executor runs: test data, never fitted


def fitted_interference(dataset: str = DATASET):
    """The latency model fitted to the profile alone (its solo grid and its own co-run rows): the interference form
    and coefficients an instance carries, and the model (for the SM elasticity the form reads)."""
    from stsched.latency import fit, interference_for  # scipy: only where the plan is made, not on the device

    model = fit(load_profile(dataset))
    return interference_for(model), model


def _draw(margin: float = 1.0, dataset: str = DATASET,
          interference: tuple[Interference, object] | None = None) -> ProfileDraw:
    """The five models of the profile, once each (`stsched scenario profile`'s draw), SLO_FACTOR x their solo
    latency at batch 8 on the whole GPU."""
    if interference is None:
        how = "no interference model"
    else:
        inter = interference[0]
        how = (f"interference {inter.form} {tuple(round(c, 4) for c in inter.coef)} fitted to "
               f"data/profiles/{dataset}/corun.csv; no L2/DRAM utilisation (not measured, not read by the form), "
               "sm_elasticity from the fitted solo surface")
    ps = load_profile(dataset)
    return draw_services(ps, slo_factor=SLO_FACTOR, gpus=1, interference=interference, latency_margin=margin,
                         name=f"{dataset}-hw",
                         notes=f"SLO = {SLO_FACTOR} x solo latency at batch 8 on {ps.solo['partition'].max():g} SMs; "
                               f"{how}; latency margin {margin:g}")


def build_instance(rate: float = 100.0, margin: float = 1.0, dataset: str = DATASET,
                   interference: tuple[Interference, object] | None = None) -> Instance:
    """The experiment's instance at `rate` req/s per service; `interference` = `fitted_interference(dataset)` makes
    it carry that form."""
    return _draw(margin, dataset, interference).instance(rate)


def prepare(out: Path, margin: float = 1.0, dataset: str = DATASET, interference: bool = False) -> dict:
    fitted = fitted_interference(dataset) if interference else None
    draw = _draw(margin, dataset, fitted)
    cal = calibrate(draw, LOAD, "heuristic", time_limit_s=10)  # `stsched scenario profile`'s rates
    ms, alpha, offered = cal.probe, cal.alpha, cal.rate
    inst = draw.instance(offered)
    judged = solve_with_headroom("heuristic", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=10),
                                 HEADROOM)
    plan, plan_from = judged.result.plan, "min-gpus"
    if plan is None or not judged.report.valid:
        # a safety net: before its load probes the heuristic's min-gpus missed the one-GPU plan at 0.75 alpha
        # on h100-sm with interference (the shipped run used this fallback); the max-scale plan serves
        # alpha >= HEADROOM x LOAD x alpha
        plan = replace(ms.result.plan, scale=1.0)
        plan_from = f"max-scale (min-gpus found no valid plan: {judged.result.message})"
        log.warning("%s: min-gpus at %g x %g x alpha found no valid plan (%s); taking the max-scale plan",
                    dataset, HEADROOM, LOAD, judged.result.message)
    report = check(inst, plan)
    if not report.valid:
        raise InputError(f"{dataset}: the {plan_from} plan is not valid for the offered rates")
    sim = simulate(inst, plan, options=SimOptions(duration_s=DURATION_S, seed=SEED)).summary
    save_instance(inst, out / "instance.json")
    save_plan(plan, out / "plan.json")
    tenants = [{"gpu": gi, "partition": p.size, "service": t.service, "batch": t.batch,
                "solo_ms": tt.solo_ms, "slowdown": tt.slowdown, "exec_ms": tt.exec_ms}
               for gi, g in enumerate(plan.gpus) for p, row in zip(g.partitions, gpu_timings(inst, g))
               for t, tt in zip(p.tenants, row)]
    meta = {"alpha_one_gpu": alpha, "load": LOAD, "headroom": HEADROOM, "gpus": len(plan.gpus),
            "checker_valid": report.valid, "margin": margin, "plan_from": plan_from,
            "interference": {"form": inst.interference.form, "coef": list(inst.interference.coef),
                             "fitted_on": f"data/profiles/{dataset}/corun.csv" if fitted else None},
            "layouts": [[{"size": p.size, "tenants": [[t.service, t.batch] for t in p.tenants]}
                         for p in g.partitions] for g in plan.gpus],
            "tenants": tenants, "simulated": sim.to_dict()}
    write_atomic(out / "prepare.json", json.dumps(meta, indent=1) + "\n")
    log.info("alpha on one GPU %.2f; plan at %.0f%% of it: %d GPU(s), layouts %s; simulated attainment %.4f",
             alpha, 100 * LOAD, len(plan.gpus), [[p.size for p in g.partitions] for g in plan.gpus],
             sim.slo_attainment)
    return meta


def summarize(out: Path) -> str:
    inst, plan = load_instance(out / "instance.json"), load_plan(out / "plan.json")
    try:
        ex = json.loads((out / "exec.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read the executor's result: {e}", source=str(out / "exec.json")) from None
    run, sim = ex["summary"], ex["simulated"]
    gpu = ex["backend"].get("device_name") or ex["backend"].get("device") or inst.device.name
    keys = ("requests", "slo_attainment", "goodput", "p50_ms", "p99_ms")
    rows = [{"source": f"executor ({gpu})", **{k: run.get(k) for k in keys}},
            {"source": "simulator (profile)", **{k: sim.get(k) for k in keys}}]
    table = [{"gpu": r["gpu"], "partition": r["partition"], "service": r["service"], "batches": r["batches"],
              "measured_ms": round(r["median_exec_ms"], 3), "profile_ms": r["model_ms"] and round(r["model_ms"], 3),
              "ratio": r["model_ms"] and round(r["median_exec_ms"] / r["model_ms"], 3)} for r in ex["exec"]]
    if inst.interference.form != "none":  # the planned e_s includes the co-running partitions' slowdown
        planned = {(gi, qi, t.service): tt for gi, g in enumerate(plan.gpus)
                   for qi, row in enumerate(gpu_timings(inst, g)) for t, tt in zip(g.partitions[qi].tenants, row)}
        for r in table:
            tt = planned.get((r["gpu"], r["partition"], r["service"]))
            r["planned_slowdown"] = tt and round(tt.slowdown, 3)
            r["measured/planned"] = tt and tt.exec_ms and round(r["measured_ms"] / tt.exec_ms, 3)
    layouts = [[(p.size, [(t.service, t.batch) for t in p.tenants]) for p in g.partitions] for g in plan.gpus]
    text = "\n".join([
        f"# A heuristic plan on a real {gpu} ({inst.name})", "",
        f"Plan: {len(plan.gpus)} GPU(s), layouts {layouts}; services at {inst.services[0].rate:g} req/s each "
        f"(instance notes: {inst.notes}). Arrivals: Poisson, {DURATION_S:g} s, seed {SEED}; backend "
        f"{ex['backend'].get('backend', 'sm')} on {gpu}.",
        "", markdown_table(rows, list(rows[0])), "", "Per tenant: median measured batch time vs the profile's solo "
        "time (margin included; and, with an interference form, the planned slowdown and e_s):", "",
        markdown_table(table, list(table[0])) if table else "(none)", ""])
    write_atomic(out / "summary.md", text)
    if table:
        from experiments.plots import grouped_bars

        grouped_bars([f"{r['service']} (p{r['partition']})" for r in table],
                     {f"measured on the {gpu}": [r["measured_ms"] for r in table],
                      "profile (planned e_s)": [r["profile_ms"] for r in table]}, out / "batch_times.png",
                     ylabel="median batch time (ms)", title=f"{inst.name}: measured vs planned batch times",
                     labels={f"measured on the {gpu}": [f"{r['ratio']}x" for r in table]})
    return text


def predicted_vs_executed(dataset: str = DATASET, runs: Path = VALIDATION) -> list[dict]:
    """A test of the fitted interference on the shipped executor runs (never fitted to them): per tenant of each
    run's plan, the slowdown the form fitted to the profile's co-runs predicts there, the constant (median profile
    co-run slowdown) and none, against the measured median batch time / the profile's solo time."""
    import numpy as np

    from stsched.latency.model import corun_data

    inter, model = fitted_interference(dataset)
    constant = float(np.median(corun_data(model, load_profile(dataset).corun).slowdown))
    inst = build_instance(dataset=dataset, interference=(inter, model))
    rows = []
    for d in sorted({p.parent for p in (runs / dataset).glob("**/exec.json")}):
        plan, ex = load_plan(d / "plan.json"), json.loads((d / "exec.json").read_text())
        margin = load_instance(d / "instance.json").margin.latency_factor
        slow = {(gi, qi, t.service): tt.slowdown for gi, g in enumerate(plan.gpus)
                for qi, row in enumerate(gpu_timings(inst, g)) for t, tt in zip(g.partitions[qi].tenants, row)}
        for r in ex["exec"]:
            measured = r["median_exec_ms"] * margin / r["model_ms"]  # model_ms includes the run's margin
            pred = slow[(r["gpu"], r["partition"], r["service"])]
            rows.append({"run": str(d.relative_to(runs)), "service": r["service"], "measured": measured,
                         inter.form: pred, "constant": constant,
                         **{f"err {k}": abs(v / measured - 1) for k, v in ((inter.form, pred), ("constant", constant),
                                                                           ("none", 1.0))}})
    return rows


def output_dir(dataset: str, margin: float = 1.0, interference: bool = False) -> Path:
    """results/hw/<dataset>[/interference][/margin-F]/ (created)."""
    out = results_dir(EXPERIMENT) / dataset
    if interference:
        out = out / "interference"
    if margin != 1.0:
        out = out / f"margin-{margin:g}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", nargs="?", choices=("prepare", "report", "predict"), default="prepare",
                    help="prepare (default) | report | predict: the fitted interference against the shipped "
                         "executor runs in data/validation (--quick: prepare, then predict; both CPU only)")
    ap.add_argument("--margin", type=float, default=1.0,
                    help="latency margin the plan is made with (every e_s x F; 1 = none); results/hw/margin-F/")
    ap.add_argument("--dataset", default=DATASET, help=f"a profile measured by this project (default {DATASET})")
    ap.add_argument("--interference", action="store_true",
                    help="the instance carries the interference form fitted to the profile's own co-run rows "
                         "(results/hw/<dataset>/interference/)")
    args = study_args(ap, argv, quick="the CPU steps: prepare, then predict on the shipped GPU runs")
    out = output_dir(args.dataset, args.margin, args.interference)
    hold_folder(results_dir(EXPERIMENT))  # a second run into it is refused (exit 2)
    if args.plot_only:
        args.step = "report"
    if args.quick:
        prepare(out, args.margin, args.dataset, args.interference)
        args.step = "predict"
    if args.step == "predict":
        rows = predicted_vs_executed(args.dataset)
        errs = [c for c in rows[0] if c.startswith("err ")]
        print(markdown_table([{k: f"{v:.3f}" if isinstance(v, float) else v for k, v in r.items()} for r in rows],
                             list(rows[0])))
        print("MAPE / max: " + ", ".join(f"{c[4:]} {100 * sum(r[c] for r in rows) / len(rows):.2f} % / "
                                        f"{100 * max(r[c] for r in rows):.2f} %" for c in errs))
    elif args.step == "prepare":
        prepare(out, args.margin, args.dataset, args.interference)
    else:
        print(summarize(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
