"""Re-planning policies over the 8-hour Azure Functions 2019 trace mapped onto gpulet's model mix.

    python -m experiments.adapt_eval                 # the study (resumable: rows already in the CSV are kept)
    python -m experiments.adapt_eval --fresh         # recompute everything
    python -m experiments.adapt_eval --hours 1       # a shorter run (first hour of the trace)
    python -m experiments.adapt_eval --epochs 300,600  # also other epoch lengths
    python -m experiments.adapt_eval --jobs 2        # grid points in parallel processes
    python -m experiments.adapt_eval --variant up_margin=0.1   # an extra adaptive row with other knobs
    python -m experiments.adapt_eval --functions-offset 4      # development data: services on functions 4..7 (dev.csv)
    python -m experiments.adapt_eval --functions-offset 4 --plan-only   # no simulation: reconfigurations, GPU-hours only
    python -m experiments.adapt_eval --plot-only     # redraw the figures from the saved series, compute nothing

What is simulated (docs/SIMULATOR.md): `stsched.scenarios.gpulet_mix(MIX, rate=LEVEL)` (A100 MPS data, gpulet's
sizes, <= 2 partitions and <= 3 tenants per GPU); service i follows the i-th busiest function of
`azure-functions-2019` (per-minute counts, minutes 480..959 of the trace day), scaled so that its peak minute is
its instance rate (weight x LEVEL).  The controller (`stsched.planning.adapt.run_adapt`) decides every epoch and on
emergencies, with the rate estimate = peak of the last 30 minutes x 1.2; every plan comes from the registered
"heuristic" solver (min-gpus, or its adapt objective) and passes the checker.  GPU-hours and reconfigurations are
exact; SLO attainment comes from the minute-by-minute simulation (calm minutes sampled, risky ones in full).
Reconfiguration cost: 15 s per MPS repartition (gpulet), `stop` (the GPU serves nothing meanwhile) or `standby`
(double-buffered: both layouts' memory during the switch).  Results: results/adapt/rows.csv, summary.md; each
grid point's per-epoch series in results/adapt/series/<policy>_<downtime>[_...].csv (written when the point is
computed); per downtime mode a figure of GPUs in use per epoch and the layout reconfigurations over time,
results/adapt/gpus_<downtime>[_...].png (the suffix names what differs from the study: epoch, hours, mix, offset,
plan-only).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import os
import re
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

from experiments.adapt_frontier import WORKLOAD_OWNED, parse_policy
from experiments.common import Study, markdown_table, read_rows, results_dir, results_root, run_grid, run_study, study_args
from experiments.plots import stairs_plot
from stsched.planning.adapt import AdaptOptions, run_adapt
from stsched.io import write_atomic
from stsched.scenarios import gpulet_mix

log = logging.getLogger(__name__)

STUDY = Study("adapt_eval", "re-planning policies over 8 hours of Azure Functions 2019 (reconfigurations, "
              "GPU-hours, SLO attainment)", typical="60 min with --jobs 2", results="adapt",
              quick="the first half hour of the trace")
EXPERIMENT = "adapt"
MIX, LEVEL = "scen1", 4000.0  # scen1 weights 2,2,1,1: peak 24,000 req/s, about 11 GPUs at the peak
TIME_LIMIT_S = AdaptOptions.time_limit_s  # solver time limit per decision, every policy (the one default)
KEYS = ["mix", "level", "hours", "epoch_s", "policy", "downtime"]
DEV_KEYS = KEYS + ["offset", "simulate"]  # development runs on other functions of the trace (dev.csv)
EPOCH_S, HOURS = 300.0, 8.0  # the study's epoch and span: files of other values carry them in their names
OWNED = {**WORKLOAD_OWNED, "epoch_s": "--epochs", "hours": "--hours", "downtime": "a --variant row is standby",
         "function_offset": "--functions-offset", "simulate": "--plan-only",
         "time_limit_s": "the policies' one default", "progress": "always on",
         }  # what run_of sets itself
SERIES_COLUMNS = ("epoch", "start_s", "gpus", "reconfigurations", "attainment", "max_load")  # from EpochRow
SERIES_INTS = ("epoch", "reconfigurations")


def run_of(p):
    """The instance and the options of grid point `p` (the checks of both run here: `main` calls it on every point
    before any runs)."""
    inst = gpulet_mix(str(p["mix"]), 400, rate=float(p["level"]))
    hours = float(p["hours"])
    policy, extra = parse_policy(str(p["policy"]), OWNED)  # --variant's knobs typed and checked as every study's
    return inst, AdaptOptions(policy=policy, epoch_s=float(p["epoch_s"]), hours=None if hours >= 8 else hours,
                              downtime=str(p["downtime"]), time_limit_s=TIME_LIMIT_S, progress=True,
                              function_offset=int(p.get("offset", 0)),
                              simulate=str(p.get("simulate", "True")) == "True", **extra)


def point(p) -> dict[str, object]:
    inst, options = run_of(p)
    r = run_adapt(inst, options)
    write_series(series_path(p), [{c: getattr(row, c) for c in SERIES_COLUMNS} for row in r.rows])
    return {"reconfigurations": r.reconfigurations, "tenant_changes": r.tenant_changes,
            "downtime_s": round(r.downtime_s, 1),
            "gpu_hours": round(r.gpu_hours, 3), "slo_attainment": round(r.slo_attainment, 6),
            "decisions": r.decisions, "emergencies": r.emergencies, "detections": r.detections, "standby_extra_mb": round(r.standby_extra_mb),
            "full_minutes": r.full_minutes, "sampled_minutes": r.sampled_minutes,
            "simulated_requests": r.simulated_requests, "simulated_s": round(r.simulated_s),
            "worst_service": min(r.per_service, key=r.per_service.get),
            "worst_service_attainment": round(min(r.per_service.values()), 6), "wall_s": round(r.wall_s, 1)}


def suffix(p: Mapping[str, object]) -> str:
    """What tells a grid point's files apart beyond policy and downtime: its key values other than the study's."""
    out = ""
    if float(p["epoch_s"]) != EPOCH_S:
        out += f"_{float(p['epoch_s']):g}s"
    if float(p["hours"]) != HOURS:
        out += f"_{float(p['hours']):g}h"
    if str(p["mix"]) != MIX or float(p["level"]) != LEVEL:
        out += f"_{p['mix']}x{float(p['level']):g}"
    if "offset" in p:  # development data (dev.csv)
        out += f"_offset{p['offset']}"
    if str(p.get("simulate", "True")) != "True":
        out += "_plan"
    return out


def series_path(p: Mapping[str, object]) -> Path:
    """results/adapt/series/<policy>_<downtime><suffix>.csv (a variant's brackets and '=' become '-')."""
    policy = re.sub(r"[^A-Za-z0-9_.]+", "-", str(p["policy"])).strip("-")
    return results_root() / EXPERIMENT / "series" / f"{policy}_{p['downtime']}{suffix(p)}.csv"


def write_series(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    """One grid point's per-epoch rows (SERIES_COLUMNS) as CSV, written atomically; floats exactly (repr)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SERIES_COLUMNS)
    w.writerows([repr(float(r[c])) if c not in SERIES_INTS else int(r[c]) for c in SERIES_COLUMNS] for r in rows)
    write_atomic(path, buf.getvalue())


def read_series(path: Path) -> list[dict[str, float | int]]:
    """What `write_series` wrote: ints for epoch and reconfigurations, floats (nan possible) for the rest."""
    with open(path, newline="") as f:
        return [{c: int(r[c]) if c in SERIES_INTS else float(r[c]) for c in SERIES_COLUMNS}
                for r in csv.DictReader(f)]


STYLES = {"static-peak": {"color": "grey", "ls": "--", "lw": 1.2},
          "full-repartition": {"color": "tab:orange", "lw": 2.6, "alpha": 0.75},  # wide: adaptive drawn over it
          "adaptive": {"color": "tab:blue", "lw": 1.4}}
VARIANT_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")  # dash-dot


def plot(rows: list[dict[str, str]], grid: list[dict[str, object]], keys: Sequence[str]) -> list[Path]:
    """Per epoch length and downtime mode: GPUs in use per epoch of every policy, and its reconfigurations.

    static-peak (run once, with `stop`: it never reconfigures) is drawn in both modes' figures.  A grid point
    without a row is left out; one whose series file is missing (computed before series were saved) or does not
    add up to its row (stale) is left out with a warning.  The per-epoch means are GPUs in use; the GPU-hours in
    the title are the row's, which with `standby` also count the spare GPUs held while double-buffering."""
    by = {tuple(r.get(k, "") for k in keys): r for r in rows}
    out = []
    for epoch in dict.fromkeys(float(g["epoch_s"]) for g in grid):
        for downtime in ("stop", "standby"):
            pts = [g for g in grid if float(g["epoch_s"]) == epoch and (
                g["downtime"] == downtime and g["policy"] != "static-peak" or g["policy"] == "static-peak")]
            series, styles, totals = {}, {}, []
            for g in pts:
                row = by.get(tuple(str(g[k]) for k in keys))
                if row is None:
                    continue
                path = series_path(g)
                if not path.exists():
                    log.warning("%s, %s: no per-epoch series (%s; its row predates them): left out of the figure, "
                                "--fresh recomputes it", g["policy"], g["downtime"], path)
                    continue
                s = read_series(path)
                end = min(s[-1]["start_s"] + epoch, float(g["hours"]) * 3600.0) if s else 0.0  # last may be short
                edges = [x["start_s"] / 3600.0 for x in s] + [end / 3600.0]
                gh = sum(x["gpus"] * (b - a) for x, a, b in zip(s, edges, edges[1:]))
                rc = sum(x["reconfigurations"] for x in s)
                # rows.csv's GPU-hours also count standby's spare GPU time while double-buffering: never less
                if rc != int(row["reconfigurations"]) or gh > float(row["gpu_hours"]) + 0.01:
                    log.warning("%s, %s: series %s (%d reconfigurations, %.3f GPU-hours) does not match rows.csv "
                                "(%s, %s): left out of the figure", g["policy"], g["downtime"], path, rc, gh,
                                row["reconfigurations"], row["gpu_hours"])
                    continue
                name = str(g["policy"])
                series[name] = (edges, [x["gpus"] for x in s], [x["reconfigurations"] for x in s])
                styles[name] = STYLES.get(name) or {
                    "lw": 1.4, "ls": "-.", "color": VARIANT_COLORS[sum(n not in STYLES for n in styles) % 6]}
                totals.append(f"{name} {int(row['reconfigurations'])} / {float(row['gpu_hours']):.2f}")
            if not series:
                continue
            first = pts[0]
            tag = suffix({**first, "epoch_s": epoch})
            title = (f"{first['mix']} x{float(first['level']):g}, downtime {downtime}, epochs of {epoch:g} s"
                     f"{', ' + tag.strip('_').replace('_', ', ') if tag else ''}\n"
                     + "\n".join(textwrap.wrap("layout reconfigurations / GPU-hours: " + "; ".join(totals), 110)))
            out.append(stairs_plot(series, results_root() / EXPERIMENT / f"gpus_{downtime}{tag}.png",
                                   xlabel="hour of the trace window", ylabel="GPUs in use (mean over the epoch)",
                                   event_label="layout reconfigurations\n(running total)", title=title,
                                   styles=styles,
                                   note="markers: epochs with layout reconfigurations (larger: more); GPU-hours from "
                                        "rows.csv (standby: with the spare GPUs held while double-buffering); "
                                        "static-peak run once, with stop (it never reconfigures)"))
    return out


def verdict(rows: list[dict[str, str]]) -> list[str]:
    """The study's targets (fewer reconfigurations at nearly the GPU-hours of full re-partitioning, SLO
    attainment), checked on the measured rows (one line per epoch length and downtime mode)."""
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
    ap.add_argument("--hours", type=float, default=8.0, help="hours of the trace (default all 8)")
    ap.add_argument("--epochs", default="300", help="comma-separated epoch lengths in seconds (default 300)")
    ap.add_argument("--mix", default=MIX)
    ap.add_argument("--level", type=float, default=LEVEL)
    ap.add_argument("--variant", action="append", default=[],
                    help="an extra adaptive row with AdaptOptions overrides, e.g. up_margin=0.1 (standby)")
    ap.add_argument("--functions-offset", "--offset", dest="offset", type=int, default=0,
                    help="development data: service i follows the (offset + i)-th busiest function (dev.csv)")
    ap.add_argument("--plan-only", action="store_true",
                    help="no simulation (reconfigurations and GPU-hours only; development, dev.csv)")
    args = study_args(ap, argv, quick="the first half hour of the trace")  # the shared block (--jobs: parallel)
    from stsched.errors import InputError
    from stsched.simulation.traces import check_function_offset
    try:  # before any point runs (each would fail alone, exit 0)
        check_function_offset(args.offset)
    except InputError as e:
        ap.error(f"--functions-offset: {e}")
    if args.quick:
        args.hours = 0.5
    if os.environ.get("STSCHED_VERBOSE"):
        logging.getLogger().setLevel(logging.INFO)
    dev = args.offset != 0 or args.plan_only or args.mix != MIX
    keys = DEV_KEYS if dev else KEYS
    filename, summary = ("dev.csv", "dev_summary.md") if dev else ("rows.csv", "summary.md")
    grid = []
    try:
        epochs = [float(e) for e in args.epochs.split(",")]
    except ValueError:
        ap.error(f"argument --epochs: {args.epochs!r}: expected seconds separated by commas")
    for epoch in epochs:
        base = {"mix": args.mix, "level": args.level, "hours": args.hours, "epoch_s": epoch}
        if dev:
            base.update(offset=args.offset, simulate=not args.plan_only)
        grid.append({**base, "policy": "static-peak", "downtime": "stop"})
        for downtime in ("stop", "standby"):
            for policy in ("full-repartition", "adaptive"):
                grid.append({**base, "policy": policy, "downtime": downtime})
        for v in args.variant:
            grid.append({**base, "policy": f"adaptive[{v}]", "downtime": "standby"})
    if args.plot_only:  # the grid of these options, and every adaptive variant saved with them
        saved = read_rows(EXPERIMENT, filename)
        have = {tuple(str(g[k]) for k in keys) for g in grid}
        for r in saved:
            base = next((g for g in grid if all(r.get(k, "") == str(g[k]) for k in keys if k != "policy")), None)
            if base is not None and r["policy"].startswith("adaptive[") and tuple(r.get(k, "") for k in keys) \
                    not in have:
                grid.append({**base, "policy": r["policy"]})
        want = {tuple(str(g[k]) for k in keys) for g in grid}
        rows = [r for r in saved if tuple(r.get(k, "") for k in keys) in want]
        print("\n".join(map(str, plot(rows, grid, keys))))
        return 0
    from experiments.adapt_frontier import hours_arg

    hours_arg(ap, args.hours)
    for g in grid:  # before any point runs (a bad --epochs, --mix, --level or --variant failed every point, exit 0)
        try:
            run_of(g)
        except (InputError, KeyError, TypeError, ValueError) as e:
            ap.error(f"{g['policy']}, epoch {g['epoch_s']:g} s: {e}")
        except SystemExit as e:  # parse_policy's own line
            ap.error(str(e.code))
    rows = run_grid(EXPERIMENT, grid, keys, point, fresh=args.fresh, filename=filename)  # --runner, --jobs: where
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
    print("\n".join(map(str, plot(rows, grid, keys))))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
