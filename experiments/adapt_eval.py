"""Issue 6: re-planning policies over the 8-hour Azure Functions 2019 trace mapped onto gpulet's model mix.

    python -m experiments.adapt_eval                 # the study (resumable: rows already in the CSV are kept)
    python -m experiments.adapt_eval --fresh         # recompute everything
    python -m experiments.adapt_eval --hours 1       # a shorter run (first hour of the trace)
    python -m experiments.adapt_eval --epochs 300,600  # also other epoch lengths
    python -m experiments.adapt_eval --jobs 2        # grid points in parallel processes
    python -m experiments.adapt_eval --variant up_margin=0.1   # an extra adaptive row with other knobs
    python -m experiments.adapt_eval --offset 4      # development data: services on functions 4..7 (dev.csv)
    python -m experiments.adapt_eval --offset 4 --plan-only   # no simulation: reconfigurations, GPU-hours only

What is simulated (docs/SIMULATOR.md): `stsched.scenarios.gpulet_mix(MIX, rate=LEVEL)` (A100 MPS data, gpulet's
sizes, <= 2 partitions and <= 3 tenants per GPU); service i follows the i-th busiest function of
`azure-functions-2019` (per-minute counts, minutes 480..959 of the trace day), scaled so that its peak minute is
its instance rate (weight x LEVEL).  The controller (`stsched.adapt.run_adapt`) decides every epoch and on
emergencies, with the rate estimate = peak of the last 30 minutes x 1.2; every plan comes from the registered
"heuristic" solver (min-gpus, or its adapt objective) and passes the checker.  GPU-hours and reconfigurations are
exact; SLO attainment comes from the minute-by-minute simulation (calm minutes sampled, risky ones in full).
Reconfiguration cost: 15 s per MPS repartition (gpulet), `stop` (the GPU serves nothing meanwhile) or `standby`
(double-buffered: both layouts' memory during the switch).  Results: results/adapt/rows.csv, summary.md.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor

from experiments.common import markdown_table, results_dir, run_grid
from stsched.adapt import AdaptOptions, run_adapt
from stsched.io import write_atomic
from stsched.scenarios import gpulet_mix

log = logging.getLogger(__name__)

EXPERIMENT = "adapt"
MIX, LEVEL = "scen1", 4000.0  # scen1 weights 2,2,1,1: peak 24,000 req/s, about 11 GPUs at the peak
TIME_LIMIT_S = 2.0  # heuristic time limit per call, every policy
KEYS = ["mix", "level", "hours", "epoch_s", "policy", "downtime"]
DEV_KEYS = KEYS + ["offset", "simulate"]  # development runs on other functions of the trace (dev.csv)


INT_KNOBS = ("hold", "release_slack", "release_budget", "release_backoff", "compact_slack", "release_after",
             "compact_after")
BOOL_KNOBS = ("scale_out", "retenant", "fill")


STR_KNOBS = ("release_solver",)


OPTIONAL_KNOBS = ("release_after", "compact_after", "compact_rent", "hours_budget")  # "none" switches them off


def _knob(name: str, value: str) -> object:
    if name in STR_KNOBS:
        return value
    if name in OPTIONAL_KNOBS and value.lower() == "none":
        return None
    if name in BOOL_KNOBS:
        if value.lower() not in ("0", "1", "true", "false"):
            raise SystemExit(f"--variant {name}={value}: expected true or false")
        return value.lower() in ("1", "true")
    try:
        return int(value) if name in INT_KNOBS else float(value)
    except ValueError:
        raise SystemExit(f"--variant {name}={value}: expected a number") from None


def point(p) -> dict[str, object]:
    inst = gpulet_mix(str(p["mix"]), 400, rate=float(p["level"]))
    hours = float(p["hours"])
    policy, _, variant = str(p["policy"]).partition("[")
    extra = {k: _knob(k, v) for k, v in (kv.split("=") for kv in variant.rstrip("]").split(",") if kv)}
    r = run_adapt(inst, AdaptOptions(policy=policy, epoch_s=float(p["epoch_s"]),
                                     hours=None if hours >= 8 else hours, downtime=str(p["downtime"]),
                                     time_limit_s=TIME_LIMIT_S, progress=True,
                                     function_offset=int(p.get("offset", 0)),
                                     simulate=str(p.get("simulate", "True")) == "True", **extra))
    return {"reconfigurations": r.reconfigurations, "tenant_changes": r.tenant_changes,
            "downtime_s": round(r.downtime_s, 1),
            "gpu_hours": round(r.gpu_hours, 3), "slo_attainment": round(r.slo_attainment, 6),
            "decisions": r.decisions, "emergencies": r.emergencies, "standby_extra_mb": round(r.standby_extra_mb),
            "full_minutes": r.full_minutes, "sampled_minutes": r.sampled_minutes,
            "simulated_requests": r.simulated_requests, "simulated_s": round(r.simulated_s),
            "worst_service": min(r.per_service, key=r.per_service.get),
            "worst_service_attainment": round(min(r.per_service.values()), 6), "wall_s": round(r.wall_s, 1)}


def verdict(rows: list[dict[str, str]]) -> list[str]:
    """The issue's targets, checked on the measured rows (one line per epoch length and downtime mode)."""
    out = []
    by = {(r["epoch_s"], r["downtime"], r["policy"]): r for r in rows if "gpu_hours" in r}
    static = {r["epoch_s"]: r for r in rows if r.get("policy") == "static-peak" and "gpu_hours" in r}
    for (epoch, downtime, policy), a in sorted(by.items()):
        if not policy.startswith("adaptive") or (epoch, downtime, "full-repartition") not in by:
            continue
        f = by[(epoch, downtime, "full-repartition")]
        ra, rf = int(a["reconfigurations"]), int(f["reconfigurations"])
        ga, gf = float(a["gpu_hours"]), float(f["gpu_hours"])
        ratio = rf / ra if ra else float("inf")
        line = (f"epoch {epoch} s, {downtime}: full re-partitioning {rf} reconfigurations / {policy} {ra} = "
                f"{ratio:.2f}x (target >= 5x: {'met' if ratio >= 5 else 'NOT met'}); GPU-hours adaptive {ga:.2f} vs "
                f"full {gf:.2f} = {100 * (ga / gf - 1):+.1f}% (target <= +5%: {'met' if ga <= 1.05 * gf else 'NOT met'})"
                + _attainment(float(a["slo_attainment"])))
        if epoch in static:
            gs = float(static[epoch]["gpu_hours"])
            line += f"; static peak {gs:.2f} GPU-hours, adaptive saves {100 * (1 - ga / gs):.1f}%"
        out.append(line)
    return out


def _attainment(x: float) -> str:
    if math.isnan(x):
        return "; SLO attainment not simulated (plan-only)"
    return f"; SLO attainment adaptive {x:.4%} (target >= 99.5%: {'met' if x >= 0.995 else 'NOT met'})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--hours", type=float, default=8.0, help="hours of the trace (default all 8)")
    ap.add_argument("--epochs", default="300", help="comma-separated epoch lengths in seconds (default 300)")
    ap.add_argument("--mix", default=MIX)
    ap.add_argument("--level", type=float, default=LEVEL)
    ap.add_argument("--jobs", type=int, default=1, help="grid points run in parallel processes")
    ap.add_argument("--variant", action="append", default=[],
                    help="an extra adaptive row with AdaptOptions overrides, e.g. up_margin=0.1 (standby)")
    ap.add_argument("--offset", type=int, default=0,
                    help="development data: service i follows the (offset + i)-th busiest function (dev.csv)")
    ap.add_argument("--plan-only", action="store_true",
                    help="no simulation (reconfigurations and GPU-hours only; development, dev.csv)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if os.environ.get("STSCHED_VERBOSE") else logging.WARNING)
    dev = args.offset != 0 or args.plan_only or args.mix != MIX
    keys = DEV_KEYS if dev else KEYS
    filename, summary = ("dev.csv", "dev_summary.md") if dev else ("rows.csv", "summary.md")
    grid = []
    for epoch in (float(e) for e in args.epochs.split(",")):
        base = {"mix": args.mix, "level": args.level, "hours": args.hours, "epoch_s": epoch}
        if dev:
            base.update(offset=args.offset, simulate=not args.plan_only)
        grid.append({**base, "policy": "static-peak", "downtime": "stop"})
        for downtime in ("stop", "standby"):
            for policy in ("full-repartition", "adaptive"):
                grid.append({**base, "policy": policy, "downtime": downtime})
        for v in args.variant:
            grid.append({**base, "policy": f"adaptive[{v}]", "downtime": "standby"})
    fn = point
    if args.jobs > 1:  # compute the missing points in parallel, then let run_grid record them in order
        path = results_dir(EXPERIMENT) / filename
        if args.fresh and path.exists():
            path.unlink()
        done = set()
        if path.exists():
            with open(path, newline="") as f:
                done = {tuple(r.get(k, "") for k in keys) for r in csv.DictReader(f)}
        todo = [g for g in grid if tuple(str(g[k]) for k in keys) not in done]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = dict(zip((tuple(str(g[k]) for k in keys) for g in todo), pool.map(point, todo)))
        fn = lambda p: results[tuple(str(p[k]) for k in keys)]  # noqa: E731
    rows = run_grid(EXPERIMENT, grid, keys, fn, fresh=args.fresh and args.jobs <= 1, filename=filename)
    want = {tuple(str(g[k]) for k in keys) for g in grid}
    rows = [r for r in rows if tuple(r.get(k, "") for k in keys) in want]
    table = markdown_table(rows, keys + ["reconfigurations", "tenant_changes", "downtime_s", "gpu_hours", "slo_attainment",
                                         "decisions", "emergencies", "standby_extra_mb", "worst_service_attainment",
                                         "simulated_requests", "wall_s"])
    lines = verdict(rows)
    what = f", development data: functions {args.offset}.. of the trace" if dev else ""
    text = f"# Re-planning policies ({args.mix} x{args.level:g}, azure-functions-2019{what})\n\n{table}\n\n" + \
        "\n".join(f"- {x}" for x in lines) + "\n"
    write_atomic(results_dir(EXPERIMENT) / summary, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
