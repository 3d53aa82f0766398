"""How fast the simulator is -- 10 simulated minutes of 64 services at thousands of req/s.

    python -m experiments.sim_speed              # default grid (fresh every run: these are timings)
    python -m experiments.sim_speed --quick      # one row

Instances: `stsched.scenarios.random_instance(64 services, G GPUs, seed)` on the A100 MPS data (its rates scale with
G); plans: the registered "heuristic" solver (min-gpus), judged by the checker, made for the rates themselves or,
in the `headroom` 1.25 rows, for 1.25 x the rates (`stsched solve --headroom`), and simulated at the rates.  Each row simulates `duration`
seconds of arrivals (Poisson, Gamma CV 2, or the Azure Functions 2019 trace shape) and drains the queues, and
reports the wall time of `stsched.simulation.simulate` (arrival generation, routing, every partition, records and
summary), the requests simulated and the SLO attainment.  Results: results/sim_speed/rows.csv and a printed
Markdown table.  Plots: results/sim_speed/requests_per_s.png and slo_attainment.png, per GPU count and arrival
process, the head-room rows as their own series; `--plot-only` redraws them from rows.csv without simulating.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from experiments.common import Study, markdown_table, redraw, results_dir, run_grid, run_study, study_args
from experiments.plots import grouped_bars, number
from stsched.scenarios import random_instance
from stsched.simulation import ArrivalSpec, SimOptions, simulate
from stsched.registry import SolveOptions, run_solver

log = logging.getLogger(__name__)

STUDY = Study("sim_speed", "simulator speed: 10 simulated minutes of 64 services, and head-room plans",
              typical="5 min", quick="one row only")
EXPERIMENT = "sim_speed"


def point(p) -> dict[str, object]:
    inst = random_instance(int(p["services"]), int(p["gpus"]), int(p["seed"]), arrivals="deterministic")
    inst = inst.with_gpus(4 * inst.gpus)  # room for the solver; rates are fixed by the scenario
    headroom = float(p.get("headroom", 1.0))  # plan for headroom x the rates, simulate the rates themselves
    judged = run_solver("heuristic", inst.scaled(headroom), SolveOptions(time_limit_s=30.0, seed=int(p["seed"])))
    plan = judged.result.plan
    if plan is None or not judged.valid:
        return {"error": f"no valid plan: {judged.result.message}"}
    opts = SimOptions(duration_s=float(p["duration"]), seed=int(p["seed"]))
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    res = simulate(inst, plan, ArrivalSpec.parse(str(p["arrivals"])), opts)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    s = res.summary
    return {"total_rps": round(sum(x.rate for x in inst.services), 1), "plan_gpus": plan.gpus_used,
            "partitions": sum(1 for g in plan.gpus for q in g.partitions if q.tenants),
            "requests": s.requests, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "requests_per_s": round(s.requests / wall), "slo_attainment": round(s.slo_attainment, 5),
            "p99_ms": round(s.p99_ms, 2), "gpu_utilisation": round(s.gpu_utilisation, 4)}


GROUPS_NOTE = "G: the scenario's GPU count, which sets the rates; the plans use more GPUs (plan_gpus in rows.csv)"


def plot(rows: list[dict[str, str]]) -> list[Path]:
    """Simulated requests per wall second and SLO attainment per GPU count, one series per arrival process (plans
    for the rates), then one per arrival process and head-room (plans for head-room x the rates)."""
    cases = sorted({(int(d["gpus"]), d["total_rps"]) for d in rows}, key=lambda c: c[0])
    names = {(d["arrivals"], d["headroom"]): d["arrivals"] if number(d["headroom"]) == 1.0 else
             f"{d['arrivals']}, plan for {float(d['headroom']):g} x rates" for d in rows}
    keys = sorted(names, key=lambda k: (number(k[1]) != 1.0, number(k[1]) or 0))  # head-room series last
    cell = {(int(d["gpus"]), d["arrivals"], d["headroom"]): d for d in rows}

    def series(col: str, scale: float) -> dict[str, list[float | None]]:
        return {names[k]: [None if (v := number(cell.get((g, *k), {}).get(col))) is None else v * scale
                           for g, _ in cases] for k in keys}

    groups = [f"G={g} ({number(rps) or 0:.0f} req/s)" for g, rps in cases]
    folder = results_dir(EXPERIMENT)
    speed = series("requests_per_s", 1e-6)
    slo = series("slo_attainment", 100.0)
    sub = f"{rows[0]['services']} services, {float(rows[0]['duration']):g} s simulated" if rows else ""
    return [grouped_bars(groups, speed, folder / "requests_per_s.png", ylabel="simulated requests / wall s (M)",
                         labels={k: [None if v is None else f"{v:.2f}" for v in vs] for k, vs in speed.items()},
                         log_scale=False, title=f"simulator speed ({sub})", note=GROUPS_NOTE),
            grouped_bars(groups, slo, folder / "slo_attainment.png", ylabel="SLO attainment (%)",
                         labels={k: [None if v is None else f"{v:.1f}" for v in vs] for k, vs in slo.items()},
                         log_scale=False, ylim=(0, 105), title=f"SLO attainment, heuristic plans ({sub})",
                         note=GROUPS_NOTE + ("; no bar: no valid plan (the error column of rows.csv)"
                                             if any(v is None for vs in slo.values() for v in vs) else ""))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = study_args(ap, argv, quick="one row only")  # the shared block: --quick, --plot-only, runner (always fresh)
    if args.plot_only:
        return redraw(EXPERIMENT, plot)
    grid = [{"services": 64, "gpus": g, "seed": 1, "duration": 600, "arrivals": a, "headroom": 1.0}
            for g in (2, 4, 8) for a in ("poisson", "gamma:2", "trace:azure-functions-2019")]
    grid += [{"services": 64, "gpus": g, "seed": 1, "duration": 600, "arrivals": "poisson", "headroom": 1.25}
             for g in (2, 4, 8)]
    if args.quick:
        grid = grid[3:4]
    keys = ["services", "gpus", "seed", "duration", "arrivals", "headroom"]
    rows = run_grid(EXPERIMENT, grid, keys, point, fresh=True)
    print(markdown_table(rows, keys + ["total_rps", "plan_gpus", "partitions", "requests", "wall_s", "cpu_s",
                                       "requests_per_s", "slo_attainment", "p99_ms"]))
    print("\n" + "\n".join(map(str, plot(rows))))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
