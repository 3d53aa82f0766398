"""Issue 15: the CPU executor against the simulator on the same arrivals, with the host's overhead modelled.

    stsched profile --backend cpu --models resnet-tiny vgg-tiny mobilenetv2-tiny --batches 1 2 4 8 --sizes 1 \\
        --repeats 20 --warmup 5 --out /tmp/prof
    stsched scenario profile /tmp/prof --services 2 --gpus 1 --load 0.08 --out inst.json
    stsched solve inst.json --out plan.json
    python -m experiments.exec_vs_sim --instance inst.json --plan plan.json --profile /tmp/prof

(`--load 0.08`: the plan keeps its core about half busy; at 0.15 the Poisson-safe plan of a profile measured on a
loaded machine packs it to 87 %, which the executor on a shared machine saturates.)  A calibration run (seed
`--calib-seed`, or 100 + the compared seed right before each compared run with `--calibrate each`, the default,
since the machine's load drifts between runs) executes the plan and measures the
executor's host overhead and its batch times against the simulator's (`stsched.executor.host.measure_host`).
Then every seed of `--seeds` executes the plan on fresh Poisson arrivals, and the simulator runs on exactly those
arrivals (same routing) in four variants:

- `plain`: the table's execution times (padded batches: the full batch's time), no noise, no host overhead;
- `noise`: plus the profile's measured noise (log-normal, the median CV of its solo repeats: `--noise-cv PROFILE`);
- `noise+host`: plus this run's measured host overhead (dispatch gap per batch, wake-up delay after idling);
- `calib+host`: batch times drawn from the calibration run's measured/simulated ratios (per partition) and the
  calibration run's host overhead: everything measured before the run being compared;
- `calib/tenant+host`: as `calib+host`, but each batch's ratio drawn from the calibration run's batches of its
  own tenant (a host's delays add milliseconds: a short batch's ratio spreads far more than a long one's);
- `calib/tenant/idle+host`: and from those of its own class: dispatched back to back, or ending an idle period
  (a shared host runs the two differently: `stsched.simulation.host.BatchTimeQuantiles`);
- `own+host`: batch times drawn from the compared run's OWN measured ratios and its own host overhead: not a
  prediction (it reads the run it is compared with) but a check of the simulator's queueing model: what remains
  here is the simulator's, what `calib+host` adds on top is the host's drift between runs;
- `own/tenant/idle+host`: as `own+host` per tenant and class.

`--spin-ms` passes the executor's polling window (`stsched.executor.ExecOptions.spin_ms`; default 0: sleep).

Each row: executor or simulator variant, SLO attainment, p50, p99; and the differences to the executor (points of
attainment, p99 ratio).  Rows: results/exec_vs_sim/rows.csv; a Markdown table is printed.  The load average at
the start and the end of every run is kept, because the executor's times move with whatever else runs.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import time

import pandas as pd

from experiments.common import Study, markdown_table, results_dir, run_study, study_args

log = logging.getLogger(__name__)

EXPERIMENT = "exec_vs_sim"

STUDY = Study("exec_vs_sim", "the CPU executor vs the simulator on the same arrivals, host overhead modelled",
              typical="2 min (4 runs of 8 s)", quick="one calibration and one compared run of 4 s")


def _cpu_s() -> float:
    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def _row(seed: int, side: str, s, ref=None, **extra) -> dict[str, object]:
    row: dict[str, object] = {"seed": seed, "side": side, "requests": s.requests,
                              "slo_attainment": round(s.slo_attainment, 4), "p50_ms": round(s.p50_ms, 2),
                              "p99_ms": round(s.p99_ms, 2) if s.p99_ms is not None else None}
    if ref is not None:
        row["d_attainment_pts"] = round(100.0 * (s.slo_attainment - ref.slo_attainment), 2)
        ok = s.p99_ms is not None and ref.p99_ms
        row["p99_vs_exec"] = round(s.p99_ms / ref.p99_ms, 3) if ok else None
    row.update(extra)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--instance", required=True, help="instance JSON (from a CPU profile: module docstring)")
    ap.add_argument("--plan", required=True, help="plan JSON of that instance")
    ap.add_argument("--profile", required=True, help="the CPU profile folder (its samples.json: measured noise)")
    ap.add_argument("--duration", type=float, default=8.0, help="arrival window of every run, seconds")
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4], help="compared runs' arrival seeds")
    ap.add_argument("--calib-seed", type=int, default=1, help="the calibration run's arrival seed (--calibrate once)")
    ap.add_argument("--calibrate", choices=("once", "each"), default="each",
                    help="one calibration run before all compared runs, or one (seed 100 + seed) before each")
    ap.add_argument("--spin-ms", type=float, default=0.0,
                    help="the executor's polling window before an arrival, ms (0: it sleeps)")
    args = study_args(ap, argv, quick="one calibration and one compared run of 4 s")
    if not math.isfinite(args.duration) or args.duration <= 0:
        ap.error(f"--duration: {args.duration} is not a positive number of seconds")
    if min(args.seeds + [args.calib_seed]) < 0 or len(set(args.seeds)) < len(args.seeds):
        ap.error(f"--seeds: {args.seeds} (and --calib-seed {args.calib_seed}): distinct seeds >= 0, please")
    if not math.isfinite(args.spin_ms) or args.spin_ms < 0:
        ap.error(f"--spin-ms: {args.spin_ms} is not a number of milliseconds >= 0")
    from profiler.partitions import get_backend
    from stsched.executor import ExecOptions, execute
    from stsched.executor.host import measure_host
    from stsched.io import load_instance, load_plan
    from stsched.judge import judge_plan
    from stsched.simulation import SimOptions, simulate
    from stsched.simulation.noise import measured_noise

    inst, plan = load_instance(args.instance), load_plan(args.plan)
    judge_plan(inst, plan, args.plan)
    noise = measured_noise(args.profile)
    duration = 4.0 if args.quick else args.duration
    seeds = args.seeds[:1] if args.quick else args.seeds
    backend = get_backend("cpu")

    def run(seed: int):
        load0 = os.getloadavg()[0]
        t, c = time.perf_counter(), _cpu_s()
        res = execute(inst, plan, backend, ExecOptions(duration_s=duration, seed=seed, progress=False,
                                                       spin_ms=args.spin_ms))
        cond = {"load_start": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
                "wall_s": round(time.perf_counter() - t, 1), "cpu_s": round(_cpu_s() - c, 1)}
        return res, measure_host(res, inst, plan, "fixed"), cond

    calib = calib_cond = None
    rows = []
    for seed in seeds:
        if calib is None or args.calibrate == "each":
            cseed = args.calib_seed if args.calibrate == "once" else 100 + seed
            _, calib, calib_cond = run(cseed)
            rows.append({"seed": cseed, "side": "calibration", "gap_ms": round(calib.gap.mean_s * 1e3, 3),
                         "wake_ms": round(calib.wake.mean_s * 1e3, 3), "wake_batches": calib.wake.count,
                         "ratio_median": round(calib.exec_ratio.to_dict()["partitions"][0]["median"], 3),
                         **calib_cond})
        q = calib.exec_ratio
        res, host, cond = run(seed)
        ex = res.summary
        o = host.overhead
        part0 = host.exec_ratio.to_dict()["partitions"][0]
        rows.append(_row(seed, "executor", ex, gap_ms=round(host.gap.mean_s * 1e3, 3),
                         wake_ms=round(host.wake.mean_s * 1e3, 3), wake_batches=host.wake.count,
                         ratio_median=round(part0["median"], 3), ratio_p90=round(part0["quantiles"][90], 3),
                         busy_median=round(part0["busy_quantiles"][50], 3),
                         idle_median=round(part0["idle_quantiles"][50], 3), **cond))

        def sim(noise_cv=0.0, overhead=None, factors=None):
            opts = SimOptions(duration_s=duration, seed=seed, noise_cv=noise_cv, exec_model="fixed",
                              **({"host": overhead} if overhead is not None else {}))
            return simulate(inst, plan, res.arrivals, opts, batch_factors=factors).summary

        rows.append(_row(seed, "sim plain", sim(), ex))
        rows.append(_row(seed, "sim noise", sim(noise.cv), ex))
        rows.append(_row(seed, "sim noise+host", sim(noise.cv, o), ex))
        own = host.exec_ratio
        for name, ov, src, cond_, per in (("calib+host", calib.overhead, q, False, False),
                                          ("calib/tenant+host", calib.overhead, q, False, True),
                                          ("calib/tenant/idle+host", calib.overhead, q, True, True),
                                          ("own+host", o, own, False, False),
                                          ("own/tenant/idle+host", o, own, True, True)):
            rows.append(_row(seed, f"sim {name}", sim(0.0, ov, src.batch_factors(cond_, per)), ex))
    out = results_dir(EXPERIMENT) / "rows.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    print(f"profile noise CV {noise.cv:.4f} ({noise.rows} solo rows); calibration {args.calibrate}")
    cols = ["seed", "side", "requests", "slo_attainment", "p50_ms", "p99_ms", "d_attainment_pts", "p99_vs_exec",
            "gap_ms", "wake_ms", "wake_batches", "ratio_median", "ratio_p90", "busy_median", "idle_median",
            "load_start", "load_end", "wall_s", "cpu_s"]
    print(markdown_table(rows, [c for c in cols if any(c in r for r in rows)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
