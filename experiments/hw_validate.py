"""Validate a solver's plan on real hardware: profile -> instance -> plan -> checker -> simulator vs executor.

    python -m experiments.hw_validate prepare      # here (CPU): instance + heuristic plan from data/profiles/h200-sm
    python -m stsched.commands.profile execute results/hw/h200-sm/instance.json results/hw/h200-sm/plan.json \
        --backend sm --duration 20 --seed 1 --compare-sim --json > results/hw/h200-sm/exec.json   # on the GPU
    python -m experiments.hw_validate report       # here: results/hw/h200-sm/summary.md, batch_times.png
    (--margin 1.2 on prepare/report: the plan is made with every execution time x 1.2; results/hw/h200-sm/margin-1.2/;
    --dataset h100-sm: the same from the H100 profile, results/hw/h100-sm/)

The instance: the five models of a profile measured by this project (`data/profiles/h200-sm` or `h100-sm`, green-context partitions of the
measured sizes 16..132 SMs, no interference model), each with an SLO of `SLO_FACTOR` x its solo latency at batch 8
on the whole GPU.  Rates: the heuristic's max-scale on one GPU for equal base rates gives alpha; every service is
then offered `LOAD` x alpha, and the heuristic's min-gpus plan for `HEADROOM` x those rates is what runs (a plan
whose partitions run at 100 % of their cycle capacity is valid for the checker but queues without bound under
Poisson arrivals; the head-room keeps utilisation at or below 80 %).  The executor serves Poisson arrivals on the profiled GPU with the plan's partitions as green contexts
and its tenants round robin (docs/PROFILER.md); the simulator replays the same arrivals with the profile's solo
latencies.  Their gap is what the profile and the model leave out: co-run interference between partitions and
serving overheads.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from experiments.common import markdown_table, results_dir
from stsched.check import check
from stsched.data import load_profile
from stsched.devices import sm_mechanism
from stsched.errors import InputError
from stsched.io import load_instance, load_plan, save_instance, save_plan, write_atomic
from stsched.problem import Device, Instance, LatencyTable, Margin, ProfileEntry, Service
from stsched.simulate import SimOptions, simulate
from stsched.solve import Objective, SolveOptions, run_solver

log = logging.getLogger(__name__)

EXPERIMENT = "hw"
DATASET = "h200-sm"
SLO_FACTOR = 5.0
LOAD = 0.6
HEADROOM = 1.25  # plans are made for 1.25 x the offered rates (<= 80 % utilisation), as the adapt controller does
BATCHES = (1, 2, 4, 8, 16, 32)
DURATION_S, SEED = 20.0, 1


def build_instance(rate: float = 100.0, margin: float = 1.0, dataset: str = DATASET) -> Instance:
    ps = load_profile(dataset)
    meta, solo = ps.meta, ps.solo
    device = Device(meta.device, meta.memory_mb, meta.sm_count)
    sizes = tuple(sorted(float(s) for s in solo["partition"].unique()))
    mech = replace(sm_mechanism(device, granularity=8, max_partitions=3, max_tenants=3), sizes=sizes)  # profiled
    tables, services = [], []
    for model, g in solo.groupby("model"):
        tables.append(LatencyTable(model, tuple(ProfileEntry(int(r.batch), float(r.partition), 1, float(r.latency_ms))
                                                for r in g.itertuples())))
        whole = g[(g["batch"] == 8) & (g["partition"] == max(sizes))]["latency_ms"].iloc[0]
        services.append(Service(model, model, rate, round(SLO_FACTOR * float(whole), 2)))
    return Instance(f"{dataset}-hw", tuple(services), device, mech, 1, BATCHES, tuple(tables), Margin(margin),
                    notes=f"SLO = {SLO_FACTOR} x solo latency at batch 8 on {max(sizes):g} SMs; no interference "
                          f"model; latency margin {margin:g}")


def prepare(out: Path, margin: float = 1.0, dataset: str = DATASET) -> None:
    probe = build_instance(margin=margin, dataset=dataset)
    ms = run_solver("heuristic", probe, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=10))
    if ms.result.plan is None or not ms.report.valid:
        raise InputError(f"{dataset}: max-scale on one GPU found no valid plan ({ms.result.message})")
    alpha = float(ms.result.plan.scale)
    offered = round(LOAD * alpha * 100.0, 1)
    judged = run_solver("heuristic", build_instance(HEADROOM * offered, margin, dataset),
                        SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=10))
    inst = build_instance(offered, margin, dataset)
    plan = judged.result.plan
    if plan is None or not judged.report.valid:
        raise InputError(f"{dataset}: no valid min-gpus plan at {HEADROOM} x {LOAD} x alpha "
                         f"({judged.result.message})")
    report = check(inst, plan)
    sim = simulate(inst, plan, options=SimOptions(duration_s=DURATION_S, seed=SEED)).summary
    save_instance(inst, out / "instance.json")
    save_plan(plan, out / "plan.json")
    write_atomic(out / "prepare.json", json.dumps({"alpha_one_gpu": alpha, "load": LOAD, "headroom": HEADROOM, "gpus": len(plan.gpus),
                                                   "checker_valid": report.valid, "simulated": sim.to_dict()},
                                                  indent=1) + "\n")
    log.info("alpha on one GPU %.2f; plan at %.0f%% of it: %d GPU(s), layouts %s; simulated attainment %.4f",
             alpha, 100 * LOAD, len(plan.gpus), [[p.size for p in g.partitions] for g in plan.gpus],
             sim.slo_attainment)


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
    layouts = [[(p.size, [(t.service, t.batch) for t in p.tenants]) for p in g.partitions] for g in plan.gpus]
    text = "\n".join([
        f"# A heuristic plan on a real {gpu} ({inst.name})", "",
        f"Plan: {len(plan.gpus)} GPU(s), layouts {layouts}; services at {inst.services[0].rate:g} req/s each "
        f"(instance notes: {inst.notes}). Arrivals: Poisson, {DURATION_S:g} s, seed {SEED}; backend "
        f"{ex['backend'].get('backend', 'sm')} on {gpu}.",
        "", markdown_table(rows, list(rows[0])), "", "Per tenant: median measured batch time vs the profile's e_s:", "",
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("prepare", "report"))
    ap.add_argument("--margin", type=float, default=1.0,
                    help="latency margin the plan is made with (every e_s x F; 1 = none); results/hw/margin-F/")
    ap.add_argument("--dataset", default=DATASET, help=f"a profile measured by this project (default {DATASET})")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = results_dir(EXPERIMENT) / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    if args.margin != 1.0:
        out = out / f"margin-{args.margin:g}"
        out.mkdir(exist_ok=True)
    if args.step == "prepare":
        prepare(out, args.margin, args.dataset)
    else:
        print(summarize(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
