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
- `calib/replay+host`: batch times replayed from the calibration run's sequence of ratios, per tenant, from a
  random offset (`stsched.simulation.replay`: the host's slow spells keep their lengths instead of being drawn
  batch by batch);
- `own+host`: batch times drawn from the compared run's OWN measured ratios and its own host overhead: not a
  prediction (it reads the run it is compared with) but a check of the simulator's queueing model: what remains
  here is the simulator's, what `calib+host` adds on top is the host's drift between runs;
- `own/tenant/idle+host`: as `own+host` per tenant and class;
- `own/trace+host`: every batch of the compared run's own ratios replayed in its own dispatch order from its first
  batch (`RatioTrace.batch_factors(aligned=True)`), with its own host overhead: each simulated batch takes the
  ratio the executor measured for it wherever the simulator dispatches in the executor's order, so what remains
  is the queueing model's and the host overhead's (its figures: docs/RESULTS.md, the executor-vs-simulator bullet); what
  the `own/...` draws add on top is their independence's, what the `calib/...` models add the drift between runs.

`--spin-ms` passes the executor's polling window (`stsched.executor.ExecOptions.spin_ms`; default: the executor's,
which polls on a pinned worker's own core and sleeps with `--no-pin`; 0: sleep);
`--timer-slack-ns` its worker's timer slack while serving (default 1; 0: the kernel's 50 us); `--no-pin` lets the
OS place the worker process on any core (default: pinned to its partition's cores); `--no-cpustat` leaves
/proc/stat unsampled (below; default: sampled).

**Pass rule** (issue 15's target, fixed in session 12 before the runs it judges were made): the executor's p99 on
one set of arrivals moves more than 15 % between repetitions on a shared machine (seed 4: 9.5 / 15.1 / 9.1 ms), so
one run is no reference.  For each seed the executor runs `--repeats` R times (default 3) on the same arrivals,
after the seed's calibration run; its reference SLO attainment and p99 are the **medians over the R runs**.  The
prediction (`calib/tenant+host`, the default model: everything measured before the runs it predicts) is simulated
R times on the same arrivals and routing with independent draws of the batch-time ratios; its attainment and p99
are the medians over those (the rule's rows name the model; `calib/replay+host` is judged the same way, as a
second model fixed with the rule).  A seed **passes** when the prediction's attainment is within 2 points of the
executor's and its p99 within 15 % of the executor's median p99 (0.85 <= ratio <= 1.15).  The rows keep every run
(`rep`), and the rule's row the executor's p99 range over its R runs (it covers the executor's median p99 with
probability 1 - 2 / 2^R: 75 % at R = 3, 94 % at R = 5) and its spread (max / min).

Each row: executor or simulator variant, SLO attainment, p50, p99; and the differences to the executor (points of
attainment, p99 ratio).  Rows: results/exec_vs_sim/rows.csv; a Markdown table is printed.  Every executor run's
batches and requests (calibration runs with `rep` -1) are kept beside them in batches.csv.gz and
requests.csv.gz, so that a model can be checked against a run after the fact; each batch with its worker's CPU
time, page faults and involuntary switches, and each run's rows say where its batch time went (`off_core`,
`preempted`, `faults_pb`, `slow_share`: `stsched.executor.accounting`); the machine's cores sampled every 100 ms
while each run served (/proc/stat: busy and steal ticks per core, `stsched.executor.cpustat`) in cpustat.csv.gz,
each sample with the plan GPU whose layout was serving (`gpu`; `t_s` after that layout's t0, the clock of its
batches) and the cores the sampler ran on (`sampler_cores`: the process's cores that no worker of the plan is
pinned to; with `--no-pin`, or a plan whose workers take every core, there is none and /proc/stat is not sampled,
with a warning).  The load average at the start and the end of every run is kept, because the executor's times
move with whatever else runs.  The files are written when the study ends, also when it is interrupted or fails:
a run cut short keeps the runs it finished.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import resource
import time
from typing import Any, Callable

import pandas as pd

from experiments.common import Study, hold_folder, markdown_table, results_dir, run_study, study_args

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
    ap.add_argument("--spin-ms", type=float, default=None,
                    help="the executor's polling window before an arrival, ms (0: it sleeps; default: the "
                         "executor's, polling on the pinned worker's own core, sleeping with --no-pin)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="executor runs per seed on the same arrivals (the pass rule's medians; module docstring)")
    ap.add_argument("--timer-slack-ns", type=int, default=1,
                    help="the executor worker's timer slack while serving, ns (0: the kernel's default 50 us)")
    ap.add_argument("--no-pin", action="store_true", help="let the OS place the worker process on any core")
    ap.add_argument("--no-cpustat", action="store_true",
                    help="do not sample /proc/stat while the executor serves (default: sampled on a core no "
                         "worker uses)")
    args = study_args(ap, argv, quick="one calibration and one compared run of 4 s")
    if not math.isfinite(args.duration) or args.duration <= 0:
        ap.error(f"--duration: {args.duration} is not a positive number of seconds")
    if min(args.seeds + [args.calib_seed]) < 0 or len(set(args.seeds)) < len(args.seeds):
        ap.error(f"--seeds: {args.seeds} (and --calib-seed {args.calib_seed}): distinct seeds >= 0, please")
    if args.spin_ms is not None and (not math.isfinite(args.spin_ms) or args.spin_ms < 0):
        ap.error(f"--spin-ms: {args.spin_ms} is not a number of milliseconds >= 0")
    if args.repeats < 1:
        ap.error(f"--repeats: {args.repeats}: at least 1 run per seed")
    if args.timer_slack_ns < 0:
        ap.error(f"--timer-slack-ns: {args.timer_slack_ns} is not a number of ns >= 0")
    from profiler.partitions import get_backend
    from stsched.executor import ExecOptions, execute
    from stsched.executor.cpustat import CpuSampler
    from stsched.executor.host import measure_host
    from stsched.io import load_instance, load_plan
    from stsched.judge import judge_plan
    from stsched.simulation.noise import measured_noise

    inst, plan = load_instance(args.instance), load_plan(args.plan)
    judge_plan(inst, plan, args.plan)
    hold_folder(results_dir(EXPERIMENT))  # before the first run: a second run into it is refused (exit 2)
    noise = measured_noise(args.profile)
    duration = 4.0 if args.quick else args.duration
    seeds = args.seeds[:1] if args.quick else args.seeds
    repeats = 1 if args.quick else args.repeats
    backend = get_backend("cpu", pin=not args.no_pin)
    slack = args.timer_slack_ns or None
    cores = () if args.no_cpustat else sampler_cores(inst, plan, backend)
    if not args.no_cpustat and not cores:
        log.warning("exec_vs_sim: /proc/stat not sampled: no core of this process is free of the workers (%s)",
                    "--no-pin" if args.no_pin else "the plan's workers take every core")

    kept: list[tuple[pd.DataFrame, pd.DataFrame]] = []
    stats: list[pd.DataFrame] = []  # /proc/stat while each run served (`stsched.executor.cpustat`)

    def run(seed: int, rep: int | None = None):
        load0 = os.getloadavg()[0]
        t, c = time.perf_counter(), _cpu_s()
        sampler = CpuSampler(0.1, cores) if cores else None
        with sampler or contextlib.nullcontext():
            res = execute(inst, plan, backend, ExecOptions(duration_s=duration, seed=seed, progress=False,
                                                           spin_ms=args.spin_ms, timer_slack_ns=slack))
        if sampler is not None:
            stats.append(by_layout(sampler.frame(), res.layouts).assign(
                sampler_cores=" ".join(map(str, cores)), seed=seed, rep=-1 if rep is None else rep))
        cond = {"spin_ms": res.layouts[0].get("spin_ms"),  # the worker's polling window (automatic: load at start)
                "load_start": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
                "wall_s": round(time.perf_counter() - t, 1), "cpu_s": round(_cpu_s() - c, 1)}
        kept.append(run_records(res, seed, rep))
        return res, measure_host(res, inst, plan, "fixed"), cond

    calib = calib_cond = None
    rows: list[dict[str, object]] = []
    rules: list[dict[str, object]] = []
    out = results_dir(EXPERIMENT) / "rows.csv"
    try:
        for seed in seeds:
            if calib is None or args.calibrate == "each":
                cseed = args.calib_seed if args.calibrate == "once" else 100 + seed
                _, calib, calib_cond = run(cseed)
                rows.append({"seed": cseed, "side": "calibration", **_host_columns(calib), **calib_cond})
            runs = []
            for rep in range(repeats):
                res, host, cond = run(seed, rep)
                runs.append(res)
                rows.extend(_compared(seed, rep, res, host, cond, calib, noise.cv, inst, plan, duration))
            for model in RULE_MODELS:
                rules.append(_rule(seed, runs, calib, inst, plan, duration, model))
    finally:  # interrupted or failed: the runs done are kept (a judging run is 15 minutes)
        write_files(out, rows, rules, kept, stats)
    print(f"profile noise CV {noise.cv:.4f} ({noise.rows} solo rows); calibration {args.calibrate}; "
          f"{repeats} executor run(s) per seed; worker {'pinned' if not args.no_pin else 'not pinned'}, polling "
          f"{'automatic (spin_ms column)' if args.spin_ms is None else f'{args.spin_ms:g} ms'} before an arrival, "
          f"timer slack "
          f"{f'{slack} ns' if slack else 'kernel default'}")
    cols = ["seed", "rep", "side", "requests", "slo_attainment", "p50_ms", "p99_ms", "d_attainment_pts", "p99_vs_exec",
            "gap_ms", "wake_ms", "wake_batches", "ratio_median", "ratio_p90", "busy_median", "idle_median",
            "off_core", "preempted", "faults_pb", "slow_share", "spin_ms", "load_start", "load_end", "wall_s", "cpu_s"]
    print(markdown_table(rows, [c for c in cols if any(c in r for r in rows)]))
    print("\npass rule (module docstring): medians over the executor's runs and over as many draws of the model")
    print(markdown_table(rules, list(rules[0])))
    for model in RULE_MODELS:
        mine = [r for r in rules if r["model"] == model]
        print(f"{model}: passed {sum(bool(r['pass']) for r in mine)} of {len(mine)} seeds")
    return 0


def sampler_cores(inst: Any, plan: Any, backend: Any) -> tuple[int, ...]:
    """The cores the /proc/stat sampler may run on: those of this process that no worker of the plan is pinned to
    on any of its GPUs (`CpuBackend.free_cores` of each layout the executor opens; none with `--no-pin`)."""
    from stsched.executor.run import layout_units

    free: set[int] | None = None
    for gi, g in enumerate(plan.gpus):
        if g.used:
            mine = set(backend.free_cores(layout_units(inst, plan, backend, gi)[1]))
            free = mine if free is None else free & mine
    return tuple(sorted(free or ()))


def by_layout(frame: pd.DataFrame, layouts: Any) -> pd.DataFrame:
    """/proc/stat rows (`CpuSampler.frame()`, `t_s` on the executor's clock) labelled with the plan GPU whose
    layout was serving (the latest to have started by the sample; the first before any) and `t_s` made relative
    to that layout's t0, the clock of its batches' `start_s`."""
    import numpy as np

    t0 = np.array([L["t0"] for L in layouts], dtype=float)
    k = np.clip(np.searchsorted(t0, frame["t_s"].to_numpy(dtype=float), side="right") - 1, 0, None)
    return frame.assign(gpu=[int(layouts[i]["gpu"]) for i in k], t_s=frame["t_s"].to_numpy(dtype=float) - t0[k])


def write_files(out: Any, rows: list, rules: list, kept: list, stats: list) -> None:
    """rows.csv (path `out`), rule.csv, batches.csv.gz, requests.csv.gz, cpustat.csv.gz beside it, of what has been
    done; a file with nothing to hold is removed (no stale file of an earlier study beside these rows).  Before
    the first run has ended nothing is written: an earlier study's files stay as they were."""
    if not kept:
        return
    frames = {"rows.csv": pd.DataFrame(rows) if rows else None, "rule.csv": pd.DataFrame(rules) if rules else None,
              "batches.csv.gz": pd.concat([b for b, _ in kept]) if kept else None,
              "requests.csv.gz": pd.concat([r for _, r in kept]) if kept else None,
              "cpustat.csv.gz": pd.concat(stats) if stats else None}
    for name, frame in frames.items():
        path = out.with_name(name)
        if frame is None:
            path.unlink(missing_ok=True)
        else:
            frame.to_csv(path, index=False)


def run_records(res: Any, seed: int, rep: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One executor run's batches and requests, labelled with its seed and repetition (none: a calibration run),
    for an analysis after the fact (batches.csv.gz, requests.csv.gz beside the rows)."""
    label = {"seed": seed, "rep": -1 if rep is None else rep}
    rec = res.records
    requests = pd.DataFrame({**label, "service": [rec.services[i] for i in rec.service], "gpu": rec.gpu,
                             "partition": rec.partition, "arrival_s": rec.arrival, "start_s": rec.start,
                             "finish_s": rec.finish})
    return res.batches.assign(**label), requests


def _host_columns(host, spread: bool = False) -> dict[str, object]:
    """One executor run's host columns (`stsched.executor.host.measure_host`): its dispatch gap, wake-up delay and
    the batches behind it, its first partition's median measured/simulated batch-time ratio (`spread`: also that
    ratio's 90th percentile and its medians dispatched back to back and after idling, the compared runs' rows),
    and where its batch time went (`stsched.executor.accounting`: off the worker's core, preempted batches, page
    faults per batch, windows in a slow spell)."""
    part0 = host.exec_ratio.to_dict()["partitions"][0]
    cols: dict[str, object] = {"gap_ms": round(host.gap.mean_s * 1e3, 3), "wake_ms": round(host.wake.mean_s * 1e3, 3),
                               "wake_batches": host.wake.count, "ratio_median": round(part0["median"], 3)}
    if spread:
        from stsched.simulation.host import quantile_at

        levels = host.exec_ratio.levels
        cols.update({column: round(quantile_at(part0[name], percent, levels), 3) for column, name, percent in (
            ("ratio_p90", "quantiles", 90), ("busy_median", "busy_quantiles", 50),
            ("idle_median", "idle_quantiles", 50))})
    a = host.accounting
    return {**cols, "off_core": round(a.off_core_share, 4), "preempted": round(a.preempted_share, 4),
            "faults_pb": round(a.faults_per_batch, 3), "slow_share": round(a.slow_share, 3)}


def _compared(seed, rep, res, host, cond, calib, noise_cv, inst, plan, duration) -> list[dict[str, object]]:
    """One executor run's row and every simulator variant's on its arrivals (module docstring)."""
    from stsched.simulation import SimOptions, simulate

    ex = res.summary
    o = host.overhead
    rows = [_row(seed, "executor", ex, rep=rep, **_host_columns(host, spread=True), **cond)]

    def sim(cv=0.0, overhead=None, factors=None):
        opts = SimOptions(duration_s=duration, seed=seed, noise_cv=cv, exec_model="fixed",
                          **({"host": overhead} if overhead is not None else {}))
        return simulate(inst, plan, res.arrivals, opts, batch_factors=factors).summary

    rows.append(_row(seed, "sim plain", sim(), ex, rep=rep))
    rows.append(_row(seed, "sim noise", sim(noise_cv), ex, rep=rep))
    rows.append(_row(seed, "sim noise+host", sim(noise_cv, o), ex, rep=rep))
    for name in SIM_MODELS:
        overhead, factors = model_inputs(name, calib, host)
        rows.append(_row(seed, f"sim {name}", sim(0.0, overhead, factors), ex, rep=rep))
    return rows


def _redrawn(factors, k: int, seed: int):
    """The batch-time factors `factors` drawn from the k-th independent stream (the arrivals and routing unchanged)."""
    import numpy as np

    def draw(pt, n, rng):
        return factors(pt, n, np.random.default_rng([k, seed, 6007, pt.gpu, pt.partition]))
    return draw


#: every calibrated simulator model, by its row name, in row order: whose host measurement it takes ("calib": the
#: calibration run's, measured before the runs it predicts; "own": the compared run's own) and how it draws each
#: batch's time factor from it (`stsched.simulation.host`: per partition or per tenant, busy/idle apart, or a replay
#: of the measured trace).  The rows and the pass rule both read this one table.
SIM_MODELS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "calib+host": ("calib", lambda h: h.exec_ratio.batch_factors(False, False)),
    "calib/tenant+host": ("calib", lambda h: h.exec_ratio.batch_factors(False, True)),
    "calib/tenant/idle+host": ("calib", lambda h: h.exec_ratio.batch_factors(True, True)),
    "calib/replay+host": ("calib", lambda h: h.trace.batch_factors()),
    "own+host": ("own", lambda h: h.exec_ratio.batch_factors(False, False)),
    "own/tenant/idle+host": ("own", lambda h: h.exec_ratio.batch_factors(True, True)),
    "own/trace+host": ("own", lambda h: h.trace.batch_factors(aligned=True)),
}

#: the predictions the pass rule judges (module docstring): the default model first
RULE_MODELS = ("calib/tenant+host", "calib/replay+host")


def model_inputs(name: str, calib: Any, own: Any) -> tuple[Any, Any]:
    """(host overhead, batch factors) of simulator model `name` of `SIM_MODELS`, from the calibration run's host
    measurement `calib` or the compared run's `own`."""
    source, factors = SIM_MODELS[name]
    host = calib if source == "calib" else own
    return host.overhead, factors(host)


def _rule(seed, runs, calib, inst, plan, duration, model) -> dict[str, object]:
    """The pass rule's row for one seed and one model of `RULE_MODELS`: the executor's medians over its runs
    against the prediction's medians over as many independent draws (module docstring)."""
    from stsched.simulation import SimOptions, simulate

    overhead, factors = model_inputs(model, calib, calib)  # the rule judges predictions: calibrated models only
    opts = SimOptions(duration_s=duration, seed=seed, noise_cv=0.0, exec_model="fixed", host=overhead)
    preds = [simulate(inst, plan, runs[0].arrivals, opts, batch_factors=_redrawn(factors, k, seed)).summary
             for k in range(len(runs))]
    ex = [r.summary for r in runs]
    return {"model": model, **verdict(seed, [s.slo_attainment for s in ex], [s.p99_ms for s in ex],
                                      [p.slo_attainment for p in preds], [p.p99_ms for p in preds])}


def verdict(seed: int, exec_att, exec_p99, sim_att, sim_p99, points: float = 2.0, rel: float = 0.15,
            ) -> dict[str, object]:
    """The pass rule on one seed (module docstring): the medians of the executor's runs' attainment and p99
    against the medians of the prediction's draws; passes when the attainments are within `points` points and
    the p99s within `rel` of the executor's."""
    import numpy as np

    ex_p99 = np.asarray(exec_p99, dtype=float)
    ex_att, ex_med = float(np.median(exec_att)), float(np.median(ex_p99))
    s_att, s_p99 = float(np.median(sim_att)), float(np.median(sim_p99))
    d_att = 100.0 * (s_att - ex_att)
    # an infinite p99 (more than 1 % of the requests unserved by the horizon: a saturated run) has no ratio
    finite = math.isfinite(ex_med) and math.isfinite(s_p99) and ex_med > 0
    ratio = s_p99 / ex_med if finite else None
    spread = float(ex_p99.max() / ex_p99.min()) if np.isfinite(ex_p99).all() and ex_p99.min() > 0 else None
    return {"seed": seed, "runs": len(ex_p99), "exec_attainment": round(ex_att, 4),
            "exec_p99_median_ms": round(ex_med, 2), "exec_p99_min_ms": round(float(ex_p99.min()), 2),
            "exec_p99_max_ms": round(float(ex_p99.max()), 2),
            "exec_p99_spread": None if spread is None else round(spread, 3),
            "sim_attainment": round(s_att, 4), "sim_p99_median_ms": round(s_p99, 2),
            "d_attainment_pts": round(d_att, 2), "p99_vs_exec": None if ratio is None else round(ratio, 3),
            "pass": bool(ratio is not None and abs(d_att) <= points * (1 + 1e-9)
                         and abs(ratio - 1.0) <= rel * (1 + 1e-9))}


if __name__ == "__main__":
    raise SystemExit(run_study(main))
