"""The heuristic against the proven optimum, gpulet, temporal-only (Nexus), ParvaGPU, and its speed.

    python -m experiments.heuristic_eval                    # every section (resumable: rows already done are kept)
    python -m experiments.heuristic_eval --section speed    # one section: gap|scale|interference|mig|speed|sm|poisson
    python -m experiments.heuristic_eval --fresh            # recompute everything

Every solver runs through the registry (`stsched.registry.run_solver`, which times it and judges its plan with the
checker) on the same instances; solvers that are not registered are reported as missing.  Sections:
- gap: min-gpus and max-scale against the exact solver's proven optimum (rows where it is not proven are listed
  but left out of the gap statistics);
- scale: max-scale on gpulet's mixes (A100 MPS data) against gpulet, Nexus-like temporal-only, the optimum and
  the reference figures of the official gpulet scheduler (data/profiles PROVENANCE);
- interference: max-scale on gpulet's mixes under gpulet's own interference form and 1.1 latency margin, the
  heuristic against gpulet;
- mig: min-gpus on ParvaGPU's shipped scenario rows against ParvaGPU (registry and published counts) and the
  optimum, and the heuristic without its coordinate descent (`descent_budget=0`, "heuristic-fast");
- speed: 64 services on 32 GPUs (random A100 MPS instances), the heuristic's time and a baseline's time measured
  in the same run, with their ratio;
- sm: max-scale on this project's H100/H200 green-context profiles on 1-3 GPUs, without and with their fitted
  counter-free interference: the heuristic, the heuristic without its `whole` construction, and the exact solver;
- poisson: the gap section's instances under the Poisson margin `late_share` 0.05 (docs/RULES.md), the same
  comparison.
Results: results/heuristic/<section>.csv and a printed Markdown summary.
Plots: results/heuristic/gap.png (the heuristic's gap to the proven optimum per instance) and wall_time.png (every
solver's wall time against the instance's services, all sections); `--plot-only` redraws them from the CSVs.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import statistics
import time
from pathlib import Path
from typing import Mapping

from experiments.common import Study, markdown_table, read_rows, results_dir, results_root, run_grid, run_study, study_args
from experiments.plots import grouped_bars, number, series_plot
from stsched.scenarios import PARVAGPU_GPUS, gpulet_mix, parvagpu, random_instance
from stsched.registry import Objective, SolveOptions, Status, available_solvers, run_solver

log = logging.getLogger(__name__)

STUDY = Study("heuristic_eval", "the heuristic vs the proven optimum, gpulet, Nexus, ParvaGPU, and its speed",
              typical="60 min", results="heuristic",
              quick="fewer seeds and instances; sections gap, scale, interference and speed unless --section "
                    "names one")
EXPERIMENT = "heuristic"
QUICK_SECTIONS = ("gap", "scale", "interference", "speed")  # --quick: the sections without long exact solves
QUICK = "fewer seeds and instances; sections gap, scale, interference and speed unless --section names one"
EXACT = "milp"  # the exact solver whose proven optima the gap is measured against
PARVAGPU_ROWS = {1: 1, 2: 2, 3: 4, 4: 6}  # shipped data row -> ParvaGPU's scenario number
GPULET_REF = {("m1", 1): 104, ("m1", 2): 217, ("m1", 4): 417, ("m2", 1): 84, ("m2", 2): 198, ("m2", 4): 396}
TEMPORAL_REF = {("m1", 1): 84, ("m1", 2): 169, ("m1", 4): 337, ("m2", 1): 15, ("m2", 2): 116, ("m2", 4): 290}
RANDOM_DEVICES = ("a100-mps", "v100-mps", "a100-mig")


def build(spec: str):
    """An instance from its spec string: parvagpu:ROW | gpulet:MIX:GPUS | random:DEVICE:SERVICES:GPUS:SEED |
    sm:DATASET:none|fitted:GPUS, each optionally followed by +late:X (the Poisson margin `late_share` X)."""
    spec, _, late = spec.partition("+late:")
    if late:
        return build(spec).with_late_share(float(late))
    kind, *args = spec.split(":")
    if kind == "parvagpu":
        return parvagpu(int(args[0]))
    if kind == "gpulet":
        return gpulet_mix(args[0], int(args[1]))
    if kind == "random":
        return random_instance(int(args[1]), int(args[2]), int(args[3]), device=args[0],
                               arrivals="deterministic")
    if kind == "sm":  # this project's green-context profiles (hardware-validation instance), rates 100 per service
        from experiments import hw_validate
        inter = hw_validate.fitted_interference(args[0]) if args[1] == "fitted" else None
        return hw_validate.build_instance(100.0, 1.0, args[0], inter).with_gpus(int(args[2]))
    raise ValueError(spec)


SPEC = {  # section -> the instance spec of one of its rows
    "gap": lambda r: str(r["spec"]),
    "scale": lambda r: f"gpulet:{r['mix']}:{r['gpus']}",
    "interference": lambda r: f"gpulet:{r['mix']}:{r['gpus']}",  # same services; gpulet's interference rules
    "mig": lambda r: f"parvagpu:{r['row']}",
    "speed": lambda r: f"random:a100-mps:64:32:{r['seed']}",
    "sm": lambda r: f"sm:{r['dataset']}:{r['interference']}:{r['gpus']}",
    "poisson": lambda r: str(r["spec"]),
}


def solve(name: str, spec: str, objective: Objective, time_limit: float, params: tuple = (),
          label: str | None = None) -> dict[str, object]:
    """One registered solver on one instance: status, objective, GPUs, validity, wall time of the solve (as
    `run_solver` measures it) and CPU time of this process around it (solve and check; robust to other jobs on
    a shared machine), or why not."""
    key = label or name
    if name not in available_solvers():
        return {f"{key}_status": "not registered"}
    instance = build(spec)
    cpu = time.process_time()
    judged = run_solver(name, instance, SolveOptions(objective=objective, time_limit_s=time_limit, params=params))
    cpu = time.process_time() - cpu
    r = judged.result
    return {f"{key}_status": r.status.value, f"{key}_obj": r.objective, f"{key}_gpus": r.gpus,
            f"{key}_valid": judged.valid, f"{key}_ms": round(r.wall_s * 1000, 2),
            f"{key}_cpu_ms": round(cpu * 1000, 2)}


# ----------------------------------------------------------------------------------------------- sections
def gap_points(quick: bool) -> list[dict[str, object]]:
    rows = list(PARVAGPU_ROWS)[:2] if quick else list(PARVAGPU_ROWS)  # --quick: rows proven in seconds
    pts = [{"spec": f"parvagpu:{row}", "objective": "min-gpus"} for row in rows]
    seeds = range(1) if quick else range(3)
    for dev in RANDOM_DEVICES:
        for seed in seeds:
            pts.append({"spec": f"random:{dev}:5:3:{seed}", "objective": "min-gpus"})
            pts.append({"spec": f"random:{dev}:3:2:{seed}", "objective": "max-scale"})
    for mix in ("m1", "m2"):
        for g in ((1,) if quick else (1, 2)):
            pts.append({"spec": f"gpulet:{mix}:{g}", "objective": "max-scale"})
    return pts


def poisson_points(quick: bool) -> list[dict[str, object]]:
    """The gap section's instances under the Poisson margin late_share 0.05 (docs/RULES.md)."""
    return [{**p, "spec": f"{p['spec']}+late:0.05"} for p in gap_points(quick)]


def poisson_row(point: Mapping[str, object], time_limit: float) -> dict[str, object]:
    """As the gap section, plus max-scale with `scale_full_search` ("heuristic-full")."""
    row = gap_row(point, time_limit)
    full = {f"heuristic-full_{k}": "" for k in ("status", "obj", "gpus", "valid", "ms", "cpu_ms")}  # same columns
    if point["objective"] == "max-scale":
        full = solve("heuristic", point["spec"], Objective.MAX_SCALE, time_limit,
                     params=(("scale_full_search", "1"),), label="heuristic-full")
    return {**row, **full}


def gap_row(point: Mapping[str, object], time_limit: float) -> dict[str, object]:
    obj = Objective(point["objective"])
    row = solve("heuristic", point["spec"], obj, time_limit)
    row.update(solve(EXACT, point["spec"], obj, time_limit))
    return row


def scale_points() -> list[dict[str, object]]:
    return [{"mix": m, "gpus": g} for m in ("m1", "m2") for g in (1, 2, 4)]


def scale_row(point: Mapping[str, object], time_limit: float) -> dict[str, object]:
    spec = SPEC["scale"](point)
    row: dict[str, object] = {"gpulet_ref": GPULET_REF[(point["mix"], point["gpus"])],
                              "temporal_ref": TEMPORAL_REF[(point["mix"], point["gpus"])]}
    for name in ("heuristic", "gpulet", "nexus", EXACT):
        row.update(solve(name, spec, Objective.MAX_SCALE, time_limit))
    return row


GPULET_2080TI = (0.11291, 0.71596, 0.35487, 0.08820, 0.89537)  # glet resource/2080ti/INT_MODEL_CONSTANT.CSV


def interference_points() -> list[dict[str, object]]:
    return [{"mix": m, "gpus": g} for m in ("m1", "m2", "game", "traffic") for g in (2, 4)]


def interference_row(point: Mapping[str, object], time_limit: float) -> dict[str, object]:
    """gpulet's own rules: its linear interference form (2080 Ti constants, the only published fit) and
    latencies x 1.1; max-scale of the heuristic and of gpulet, both judged by the checker with that form."""
    from stsched.problem import Interference
    inst = gpulet_mix(str(point["mix"]), int(point["gpus"]), latency_factor=1.1,
                      interference=Interference("gpulet-linear", GPULET_2080TI))
    row: dict[str, object] = {}
    for name in ("heuristic", "gpulet"):
        if name not in available_solvers():
            row[f"{name}_status"] = "not registered"
            continue
        judged = run_solver(name, inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=time_limit))
        r = judged.result
        row.update({f"{name}_obj": r.objective, f"{name}_valid": judged.valid, f"{name}_ms": round(r.wall_s * 1000, 2)})
    return row


def mig_points() -> list[dict[str, object]]:
    return [{"row": r} for r in PARVAGPU_ROWS]


def mig_row(point: Mapping[str, object], time_limit: float) -> dict[str, object]:
    spec = SPEC["mig"](point)
    row: dict[str, object] = {"scenario": PARVAGPU_ROWS[point["row"]],
                              "parvagpu_published": PARVAGPU_GPUS[PARVAGPU_ROWS[point["row"]]]}
    for name in ("heuristic", "parvagpu", EXACT):
        row.update(solve(name, spec, Objective.MIN_GPUS, time_limit))
    # the millisecond answer: no coordinate descent
    row.update(solve("heuristic", spec, Objective.MIN_GPUS, time_limit, (("descent_budget", "0"),), "heuristic-fast"))
    return row


SPEED_BASELINE = "gslice"  # spatial-only baseline, measured in the same run for the time ratio


def speed_points(quick: bool) -> list[dict[str, object]]:
    return [{"seed": s} for s in range(3 if quick else 5)]


def speed_row(point: Mapping[str, object], time_limit: float) -> dict[str, object]:
    spec = SPEC["speed"](point)
    build(spec)  # load the data set before timing anything
    row: dict[str, object] = {"load": round(os.getloadavg()[0], 2)}
    for name in ("heuristic", SPEED_BASELINE):
        best = None
        for _ in range(3):  # best of three: the machine is shared
            got = solve(name, spec, Objective.MIN_GPUS, time_limit)
            if best is None or (got.get(f"{name}_ms") or math.inf) < (best.get(f"{name}_ms") or math.inf):
                best = got
        row.update(best)
    return row


SM_DATASETS = ("h100-sm", "h200-sm")
WITHOUT_WHOLE = (("constructions", "greedy,cover,balanced,second,third"),)


def sm_points() -> list[dict[str, object]]:
    return [{"dataset": d, "interference": i, "gpus": g} for d in SM_DATASETS for i in ("none", "fitted")
            for g in (1, 2, 3)]


def sm_row(point: Mapping[str, object], time_limit: float) -> dict[str, object]:
    """Max-scale on the measured H100/H200 green-context data, without and with the fitted counter-free
    interference: the heuristic, the heuristic without its `whole` construction, and the exact solver (whose model
    is conservative, hence restricted, with interference: its status says whether it is proven)."""
    spec = SPEC["sm"](point)
    row: dict[str, object] = {}
    row.update(solve("heuristic", spec, Objective.MAX_SCALE, time_limit))
    row.update(solve("heuristic", spec, Objective.MAX_SCALE, time_limit, WITHOUT_WHOLE, "heuristic-nowhole"))
    row.update(solve(EXACT, spec, Objective.MAX_SCALE, time_limit))
    return row


# ----------------------------------------------------------------------------------------------- summaries
_f = number


def proven_gap(r: Mapping[str, str]) -> float | None:
    """The heuristic's relative gap to the exact solver's proven optimum (None when not proven or missing)."""
    h, e = _f(r.get("heuristic_obj")), _f(r.get(f"{EXACT}_obj"))
    if h is None or e is None or r.get(f"{EXACT}_status") != Status.OPTIMAL.value or e <= 0:
        return None
    return (h - e) / e if r["objective"] == "min-gpus" else (e - h) / e


def summarize_gap(rows: list[dict[str, str]]) -> str:
    out, gaps, gpu_diff = [], [], []
    for r in rows:
        proven = r.get(f"{EXACT}_status") == Status.OPTIMAL.value
        gap = proven_gap(r)
        if gap is not None:
            gaps.append(gap)
            if r["objective"] == "min-gpus":
                gpu_diff.append(_f(r["heuristic_obj"]) - _f(r[f"{EXACT}_obj"]))
        out.append({**r, "gap": "-" if gap is None else f"{gap:.2%}", "proven": proven})
    table = markdown_table(out, ["spec", "objective", "heuristic_obj", "heuristic_ms", "heuristic_valid",
                                 f"{EXACT}_status", f"{EXACT}_obj", f"{EXACT}_ms", "gap"])
    stats = (f"\nproven optima: {len(gaps)} of {len(rows)}; mean gap {statistics.mean(gaps):.2%}, worst "
             f"{max(gaps):.2%}; worst min-gpus excess {max(gpu_diff, default=0):+.0f} GPU(s)" if gaps else "")
    return table + stats


def summarize_poisson(rows: list[dict[str, str]]) -> str:
    """The gap summary, then the same statistics for max-scale with `scale_full_search`."""
    full = [{**r, "heuristic_obj": r["heuristic-full_obj"], "heuristic_ms": r["heuristic-full_ms"]}
            for r in rows if r.get("heuristic-full_obj")]
    gaps = [g for g in map(proven_gap, full) if g is not None]
    extra = (f"\nwith scale_full_search (max-scale rows): proven {len(gaps)}, mean gap {statistics.mean(gaps):.2%}, "
             f"worst {max(gaps):.2%}; heuristic-full ms "
             f"{min(_f(r['heuristic_ms']) for r in full):.0f}-{max(_f(r['heuristic_ms']) for r in full):.0f}"
             if gaps else "")
    return summarize_gap(rows) + extra


def summarize_scale(rows: list[dict[str, str]]) -> str:
    out = []
    for r in rows:
        h = _f(r.get("heuristic_obj"))
        row = dict(r)
        for name, key in (("gpulet", "gpulet_obj"), ("nexus", "nexus_obj"), ("gpulet ref", "gpulet_ref"),
                          ("temporal ref", "temporal_ref"), ("optimum", f"{EXACT}_obj")):
            b = _f(r.get(key))
            row[f"x {name}"] = "-" if h is None or not b else f"{h / b:.3f}"
        out.append(row)
    return markdown_table(out, ["mix", "gpus", "heuristic_obj", "heuristic_ms", "gpulet_obj", "nexus_obj",
                                f"{EXACT}_obj", f"{EXACT}_status", "gpulet_ref", "temporal_ref", "x gpulet",
                                "x nexus", "x gpulet ref", "x temporal ref", "x optimum"])


def summarize_interference(rows: list[dict[str, str]]) -> str:
    out = []
    for r in rows:
        h, b = _f(r.get("heuristic_obj")), _f(r.get("gpulet_obj"))
        out.append({**r, "x gpulet": "-" if h is None or not b else f"{h / b:.3f}"})
    return markdown_table(out, ["mix", "gpus", "heuristic_obj", "heuristic_valid", "heuristic_ms", "gpulet_obj",
                                "gpulet_valid", "gpulet_ms", "x gpulet"])


def summarize_mig(rows: list[dict[str, str]]) -> str:
    return markdown_table(rows, ["row", "scenario", "parvagpu_published", "parvagpu_gpus", "parvagpu_ms",
                                 "heuristic_gpus", "heuristic_valid", "heuristic_ms", "heuristic_cpu_ms",
                                 "heuristic-fast_gpus", "heuristic-fast_ms", f"{EXACT}_status", f"{EXACT}_obj",
                                 f"{EXACT}_ms"])


def summarize_speed(rows: list[dict[str, str]]) -> str:
    out = []
    for r in rows:
        h, b = _f(r.get("heuristic_ms")), _f(r.get(f"{SPEED_BASELINE}_ms"))
        out.append({**r, "ratio": "-" if not h or not b else f"{h / b:.2f}"})
    return markdown_table(out, ["seed", "load", "heuristic_gpus", "heuristic_ms", "heuristic_cpu_ms",
                                "heuristic_valid", f"{SPEED_BASELINE}_gpus", f"{SPEED_BASELINE}_ms",
                                f"{SPEED_BASELINE}_cpu_ms", "ratio"])


def summarize_sm(rows: list[dict[str, str]]) -> str:
    out = []
    for r in rows:
        h, w, e = _f(r.get("heuristic_obj")), _f(r.get("heuristic-nowhole_obj")), _f(r.get(f"{EXACT}_obj"))
        out.append({**r, "x exact": "-" if h is None or not e else f"{h / e:.3f}",
                    "x without whole": "-" if h is None or not w else f"{h / w:.3f}"})
    return markdown_table(out, ["dataset", "interference", "gpus", "heuristic_obj", "heuristic_ms",
                                "heuristic_valid", "heuristic-nowhole_obj", f"{EXACT}_obj", f"{EXACT}_status",
                                f"{EXACT}_ms", "x exact", "x without whole"])


SECTIONS = {
    "gap": (lambda q: gap_points(q), gap_row, ["spec", "objective"], summarize_gap),
    "scale": (lambda q: scale_points(), scale_row, ["mix", "gpus"], summarize_scale),
    "interference": (lambda q: interference_points(), interference_row, ["mix", "gpus"], summarize_interference),
    "mig": (lambda q: mig_points(), mig_row, ["row"], summarize_mig),
    "speed": (lambda q: speed_points(q), speed_row, ["seed"], summarize_speed),
    "sm": (lambda q: sm_points(), sm_row, ["dataset", "interference", "gpus"], summarize_sm),
    "poisson": (lambda q: poisson_points(q), poisson_row, ["spec", "objective"], summarize_poisson),
}


@functools.lru_cache(maxsize=None)
def services_of(spec: str) -> int:
    """How many services the instance has: from a random spec itself, else by loading it (data only, no solver)."""
    kind, *args = spec.split(":")
    return int(args[1]) if kind == "random" else len(build(spec).services)


def plot(sections: Mapping[str, list[dict[str, str]]]) -> list[Path]:
    """gap.png from the gap rows, wall_time.png from every section's rows (solver wall time per run vs services)."""
    out, folder = [], results_dir(EXPERIMENT)
    if sections.get("gap"):
        rows = sections["gap"]
        gaps = [proven_gap(r) for r in rows]
        unproven = [f"{r['spec']} {r['objective']}" for r, g in zip(rows, gaps) if g is None]
        out.append(grouped_bars(
            [f"{r['spec']} {r['objective']}" for r in rows], {"heuristic vs proven optimum": [
                None if g is None else 100 * g for g in gaps]}, folder / "gap.png", ylabel="gap (%)",
            labels={"heuristic vs proven optimum": [None if g is None else f"{g:.2%}" for g in gaps]},
            log_scale=False,
            title="heuristic vs the exact optimum (min-gpus: relative extra GPUs; max-scale: alpha lost)",
            note="no bar: optimum not proven: " + ", ".join(unproven) if unproven else None))
    times: dict[str, tuple[list[int], list[float | None]]] = {}
    for name, rows in sections.items():
        for r in rows:
            for col in r:
                if col.endswith("_ms") and not col.endswith("_cpu_ms") and _f(r[col]) is not None:
                    xs, ys = times.setdefault(col[:-3] + (" (exact)" if col[:-3] == EXACT else ""), ([], []))
                    xs.append(services_of(SPEC[name](r)))
                    ys.append(_f(r[col]))
    if times:
        out.append(series_plot(times, folder / "wall_time.png", xlabel="services in the instance", log_x=True,
                               ylabel="wall time of one solve (ms)", connect=False, log_scale=True,
                               styles={k: {"alpha": 0.7} for k in times},
                               title="solver wall time vs instance size (all sections, as measured)"))
    return out


def _written(names: list[str]) -> dict[str, list[dict[str, str]]]:
    return {n: read_rows(EXPERIMENT, f"{n}.csv") for n in names if (results_root() / EXPERIMENT / f"{n}.csv").exists()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--section", choices=["all", *SECTIONS], default="all")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per solver run (default 120)")
    args = study_args(ap, argv, quick=QUICK)  # the shared block: --quick, --fresh, --plot-only, runner
    if args.plot_only:
        names = [n for n in SECTIONS if args.section in ("all", n)]
        if not (written := _written(names)):
            raise SystemExit(f"error: no {'/'.join(names)} CSV in {results_root() / EXPERIMENT}; run "
                             f"`python -m experiments.heuristic_eval` first")
        print("\n".join(map(str, plot(written))))
        return 0
    for name, (points, fn, keys, summary) in SECTIONS.items():
        if args.section not in ("all", name) or (args.quick and args.section == "all" and name not in QUICK_SECTIONS):
            continue
        t0 = time.perf_counter()
        rows = run_grid(EXPERIMENT, points(args.quick), keys, lambda p, fn=fn: fn(p, args.time_limit),
                        fresh=args.fresh, filename=f"{name}.csv")
        print(f"## {name} ({time.perf_counter() - t0:.0f} s)\n")
        print(summary(rows))
        print()
    print("\n".join(map(str, plot(_written(list(SECTIONS))))))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
