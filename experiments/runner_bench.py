"""Issue 20: what the runners and the sharded simulator buy, measured in one run (docs/SCALE_OUT.md).

    python -m experiments.runner_bench            # the 24-point grid on 1 and 2 workers (local, ray), the simulator
    python -m experiments.runner_bench --quick    # 12 points, 60 simulated seconds (a couple of minutes)
    stsched experiment runner_bench [--quick]

Grid: the scale study's kind of point, 24 of them: `random_instance(N services, N/4 GPUs, seed)` on the A100 MPS
data (deterministic arrivals), N in 64/128/256/512, seeds 1-6, each planned by the registered heuristic (min-gpus,
judged by the checker; its work does not depend on a time limit here), run through `run_grid` into a scratch
results folder, once per runner and worker count: local 1, local 2, ray 1, ray 2 (one local Ray instance of 2
CPUs for both Ray runs).
With 2 workers the points start biggest first (`run_grid(cost=...)`, longest processing time first), so that the
last 512-service point does not run alone.  Reported: the wall time of each and the ratio 2 workers / 1 per runner (target <= 0.6), that every run gives the
same plans, and the CPU seconds of the points (`cpu_s`) and of the busiest worker (`shard_cpu_s`); `cpu_ratio` =
busiest worker's CPU with 2 workers over all CPU with 1: the wall ratio on two otherwise idle cores, less the
runner's own overhead (shown because a shared machine's load moves the wall ratio).

Simulator: `random_instance(1024 services, 512 GPUs, seed 1)` (854 k req/s offered), its heuristic min-gpus plan,
simulated by the streaming simulator (`stsched simulate --shards K --jobs W`) for 600 s of Poisson arrivals: one
process (K = 1), then 2 local workers on K = 2 and on K = 8 shards (more shards than workers: the pool balances
them as they finish), each in its own process: wall time, requests, requests simulated per wall second, the
ratio 2 workers / 1 (target <= 0.6), CPU seconds of all shards and of the busiest worker (`shard_cpu_s`), and
their ratio (`cpu_ratio`: the busiest worker's CPU over the single run's, the critical path on two idle cores; shown
because a shared machine's load moves the wall ratio), and the peak resident memory of the driver and of the
largest shard worker (target <= 2 GB).  Both runs must give the same summary (the sharding does not change it).
Timings depend on the machine and its load: the ratios are measured in one run, side by side.
Results: results/runner_bench/rows.csv (one row per measurement) and summary.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.common import Study, markdown_table, read_rows, results_dir, run_grid, run_study, study_args
from experiments.runners import Runner, init_ray
from stsched.io import save_instance, save_plan, write_atomic
from stsched.registry import SolveOptions, run_solver
from stsched.scenarios import random_instance

STUDY = Study("runner_bench", "runners (local pool, Ray) 2 workers vs 1 on a 24-point grid; the sharded "
              "simulator on 1,024 services", typical="12 min", quick="12 points, 60 simulated seconds")
EXPERIMENT = "runner_bench"
SIM_SERVICES, SIM_GPUS = 1024, 512


def plan_point(p) -> dict[str, object]:
    c0 = time.process_time()
    inst = random_instance(int(p["services"]), int(p["services"]) // 4, int(p["seed"]), arrivals="deterministic")
    inst = inst.with_gpus(inst.gpus * 4)
    j = run_solver("heuristic", inst, SolveOptions(time_limit_s=600.0, seed=int(p["seed"])))
    return {"plan_gpus": j.result.plan.gpus_used if j.result.plan else None, "valid": j.valid,
            "cpu_s": time.process_time() - c0, "pid": os.getpid()}


def grid_rows(quick: bool) -> list[dict[str, object]]:
    seeds = range(1, 4 if quick else 7)
    grid = [{"services": n, "seed": s} for n in (64, 128, 256, 512) for s in seeds]
    out = []
    plans = {}
    with tempfile.TemporaryDirectory() as scratch:
        old = os.environ.get("STSCHED_RESULTS")
        os.environ["STSCHED_RESULTS"] = scratch
        try:
            plan_point(grid[0])  # warm: the solver's imports are not part of any timing
            for kind, jobs in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
                if kind == "ray":
                    init_ray(None, num_cpus=2)
                t0 = time.perf_counter()
                rows = run_grid(f"{kind}{jobs}", grid, ["services", "seed"], plan_point,
                                runner=Runner(kind, jobs=jobs), cost=lambda p: p["services"])
                wall = time.perf_counter() - t0
                plans[(kind, jobs)] = [(r["plan_gpus"], r["valid"]) for r in rows]
                per_worker: dict[str, float] = {}
                for r in rows:
                    per_worker[r["pid"]] = per_worker.get(r["pid"], 0.0) + float(r["cpu_s"])
                out.append({"what": "grid", "runner": kind, "workers": jobs, "points": len(grid),
                            "wall_s": round(wall, 2), "cpu_s": round(sum(per_worker.values()), 2),
                            "shard_cpu_s": round(max(per_worker.values()), 2)})
        finally:
            if old is None:
                os.environ.pop("STSCHED_RESULTS", None)
            else:
                os.environ["STSCHED_RESULTS"] = old
            if "ray" in sys.modules:
                sys.modules["ray"].shutdown()
    same = len({tuple(v) for v in plans.values()}) == 1
    for kind in ("local", "ray"):
        one, two = (next(r for r in out if r["runner"] == kind and r["workers"] == k) for k in (1, 2))
        out.append({"what": "grid ratio", "runner": kind, "workers": "2/1", "points": len(grid),
                    "ratio": round(two["wall_s"] / one["wall_s"], 3),
                    "cpu_ratio": round(two["shard_cpu_s"] / one["cpu_s"], 3), "same_rows": same})
    return out


CHILD = """
import json, resource, sys, time
from stsched.io import load_instance, load_plan
from stsched.simulation.stream import StreamOptions, simulate_stream
inst, plan = load_instance(sys.argv[1]), load_plan(sys.argv[2])
res = simulate_stream(inst, plan, StreamOptions(duration_s=float(sys.argv[3]), seed=1, shards=int(sys.argv[4]),
                                                jobs=int(sys.argv[5])))
s = res.summary
print(json.dumps({"wall_s": res.wall_s, "shard_cpu_s": max(res.worker_cpu_s), "cpu_s": sum(res.shard_cpu_s), "requests": s.requests, "requests_per_s": res.requests_per_s,
                  "slo_attainment": s.slo_attainment, "p99_ms": s.p99_ms, "mean_ms": s.mean_ms,
                  "driver_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def sim_rows(quick: bool) -> list[dict[str, object]]:
    duration = 60.0 if quick else 600.0
    inst = random_instance(SIM_SERVICES, SIM_GPUS, 1, arrivals="deterministic")
    inst = inst.with_gpus(2 * inst.gpus)
    judged = run_solver("heuristic", inst, SolveOptions(time_limit_s=600.0, seed=1))
    if judged.result.plan is None or not judged.valid:
        return [{"what": "simulator", "error": f"no valid plan: {judged.result.message}"}]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        save_instance(inst, Path(tmp) / "instance.json")
        save_plan(judged.result.plan, Path(tmp) / "plan.json")
        for shards, jobs in ((1, 1), (2, 2), (8, 2)):
            proc = subprocess.run([sys.executable, "-c", CHILD, str(Path(tmp) / "instance.json"),
                                   str(Path(tmp) / "plan.json"), str(duration), str(shards), str(jobs)],
                                  capture_output=True, text=True, check=True)
            d = json.loads(proc.stdout.strip().splitlines()[-1])
            out.append({"what": "simulator", "runner": "local", "workers": jobs, "shards": shards,
                        "services": SIM_SERVICES,
                        "gpus": SIM_GPUS, "plan_gpus": judged.result.plan.gpus_used, "duration_s": duration,
                        "requests": d["requests"], "wall_s": round(d["wall_s"], 2),
                        "shard_cpu_s": round(d["shard_cpu_s"], 2), "cpu_s": round(d["cpu_s"], 2),
                        "requests_per_s": round(d["requests_per_s"]),
                        "slo_attainment": round(d["slo_attainment"], 5),
                        "p99_ms": round(d["p99_ms"], 2), "driver_rss_mb": round(d["driver_rss_mb"]),
                        **({"worker_rss_mb": round(d["worker_rss_mb"])} if shards > 1 else {})})
    for row in out[1:]:
        same = all(row[k] == out[0][k] for k in ("requests", "slo_attainment", "p99_ms"))
        out.append({"what": "simulator ratio", "runner": "local", "workers": "2/1", "shards": row["shards"],
                    "duration_s": duration, "ratio": round(row["wall_s"] / out[0]["wall_s"], 3),
                    "cpu_ratio": round(row["shard_cpu_s"] / out[0]["shard_cpu_s"], 3), "same_rows": same})
    return out


COLUMNS = ["what", "runner", "workers", "shards", "points", "duration_s", "requests", "wall_s", "cpu_s", "shard_cpu_s",
           "requests_per_s", "ratio", "cpu_ratio",
           "same_rows", "slo_attainment", "p99_ms", "driver_rss_mb", "worker_rss_mb", "error"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("all", "grid", "simulator"), default="all")
    args = study_args(ap, argv, quick="12 points, 60 simulated seconds")  # its runners are what it measures
    if args.plot_only:
        rows = read_rows(EXPERIMENT)
    else:
        rows = (grid_rows(args.quick) if args.part in ("all", "grid") else []) + \
            (sim_rows(args.quick) if args.part in ("all", "simulator") else [])
        cols = [c for c in COLUMNS if any(c in r for r in rows)]
        write_atomic(results_dir(EXPERIMENT) / "rows.csv",
                     ",".join(cols) + "\n" + "\n".join(",".join("" if r.get(c) is None else str(r.get(c, ""))
                                                                for c in cols) for r in rows) + "\n")
    cols = [c for c in COLUMNS if any(r.get(c) not in (None, "") for r in rows)]
    text = (f"# Runners and the sharded simulator ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the "
            f"end{', quick' if args.quick else ''})\n\n{markdown_table(rows, cols)}\n")
    write_atomic(results_dir(EXPERIMENT) / "summary.md", text)
    print(text)
    print(f"(driver peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
