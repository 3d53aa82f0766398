"""`stsched simulate INSTANCE PLAN ...` and `stsched adapt INSTANCE --trace NAME ...` (docs/SIMULATOR.md).

simulate: replay arrivals through a plan; `--json` prints the summary (slo_attainment, goodput, p99_ms,
per_service, ...).  adapt: run a re-planning policy over a per-minute rate trace; `--json` prints reconfigurations,
downtime_s, gpu_hours, slo_attainment and the per-epoch rows.  Exit 0 on success, 1 when no plan serves the
rates, 2 on bad input.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from stsched.errors import InfeasibleError, InputError
from stsched.io import check_plan_services, load_instance, load_plan, write_json

log = logging.getLogger(__name__)


def _number(text: str, option: str, *, positive: bool = True) -> float:
    """A finite number (> 0, or >= 0 with positive=False) given on the command line, else InputError."""
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"{option}: expected a number, got {text!r}") from None
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        raise InputError(f"{option}: expected a finite number {'>' if positive else '>='} 0, got {text!r}")
    return v


def _noise(text: str) -> tuple[float, str]:
    """--noise-cv: a number, or a profile's samples.json / folder (the median CV the profiler measured)."""
    try:
        float(text)
    except ValueError:
        from stsched.simulation.noise import measured_noise

        m = measured_noise(text)
        log.info("noise: median CV %.4f over %d solo rows of %s (p90 %.4f)", m.cv, m.rows, m.source, m.p90_cv)
        return m.cv, f"measured: {m.source} ({m.rows} solo rows, p90 CV {m.p90_cv:.4f})"
    return _number(text, "--noise-cv", positive=False), "given"


def add(sub) -> None:
    p = sub.add_parser("simulate", help="simulate a plan under Poisson, bursty or real-trace arrivals")
    p.add_argument("instance", help="instance JSON file")
    p.add_argument("plan", help="plan JSON file")
    p.add_argument("--arrivals", default="poisson", help="poisson | gamma:CV | deterministic | trace:NAME")
    p.add_argument("--duration", default="60", help="seconds of arrivals (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--routing", default="interleave", help="interleave (deterministic) | random")
    p.add_argument("--noise-cv", default="0",
                   help="per-batch execution-time noise: a coefficient of variation, or a profile's samples.json "
                        "(or its folder) for the noise the profiler measured (median CV of its solo repeats)")
    p.add_argument("--exec-model", default="fill", help="fill (partial batches run faster) | fixed")
    p.add_argument("--out", default=None, help="write the summary here (JSON, atomically)")
    p.add_argument("--records", default=None, help="write per-request records here (CSV, atomically)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_simulate)

    from stsched.planning.adapt.controller import AdaptOptions

    d = AdaptOptions
    a = sub.add_parser("adapt", help="re-plan epoch by epoch over a rate trace, with reconfiguration cost",
                       description="Re-plan epoch by epoch over a per-minute rate trace (service i follows the "
                                   "(offset + i)-th busiest function), counting layout reconfigurations, their "
                                   "downtime and GPU-hours, and simulating the arrivals (docs/SIMULATOR.md).")
    a.add_argument("instance", help="instance JSON file (its rates are the services' peak rates)")
    a.add_argument("--trace", required=True, help="per-minute count trace under data/traces (azure-functions-2019)")
    a.add_argument("--epoch", default=f"{d.epoch_s:g}",
                   help="seconds between planned decisions, whole minutes (default %(default)s)")
    from stsched.planning.adapt.policies import POLICIES

    a.add_argument("--policy", default=d.policy, help=f"{' | '.join(POLICIES)} (default %(default)s)")
    a.add_argument("--period", type=int, default=d.period,
                   help="periodic: full re-partitioning every N decisions (default %(default)s)")
    a.add_argument("--save-gpus", type=int, default=d.save_gpus,
                   help="practitioner: re-plan when a fresh plan saves >= K GPUs ... (default %(default)s)")
    a.add_argument("--save-for", type=int, default=d.save_for,
                   help="practitioner: ... at M decisions in a row (default %(default)s)")
    a.add_argument("--headroom", default=f"{d.headroom:g}", metavar="H",
                   help="plan for H x the estimated rates (a factor >= 1; default %(default)s)")
    a.add_argument("--estimate-window", default=f"{d.estimate_window_s:g}",
                   help="seconds of history the estimate looks at (default %(default)s)")
    a.add_argument("--trigger", default=f"{d.trigger:g}",
                   help="emergency re-plan when a service's last-minute rate exceeds this share of its planned "
                        "rate (0: never; default %(default)s)")
    a.add_argument("--hours", default=None, help="only the first H hours of the trace")
    a.add_argument("--downtime", default="stop", help="stop | standby (double-buffered, needs both layouts' memory)")
    a.add_argument("--reconfig-cost", default=None,
                   help="seconds per layout reconfiguration, or a JSON file {mechanism: seconds}")
    a.add_argument("--sampling", default="sampled", help="sampled (calm minutes sampled) | full (every minute)")
    a.add_argument("--compact-rent", default=None,
                   help="adaptive: GPU-decisions of spare GPUs paid per layout change before a compaction is bought "
                        "(ski rental; default 12; 'none': the release band instead, docs/SIMULATOR.md)")
    a.add_argument("--adapt-solver", default=None,
                   help="adaptive: solver whose adapt objective also proposes fewest-change releases, compactions "
                        "and scale-ups (default milp, exact; milp-highs | heuristic | 'none': off)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--time-limit", default=f"{d.time_limit_s:g}",
                   help="solver time limit per decision, seconds (default %(default)s)")
    a.add_argument("--functions-offset", type=int, default=d.function_offset, metavar="N",
                   help="service i follows the (N + i)-th busiest function of the trace (default %(default)s)")
    a.add_argument("--plan-only", action="store_true",
                   help="plans, reconfigurations and GPU-hours only, no simulation (attainment not measured)")
    a.add_argument("--out", default=None, help="write the result here (JSON, atomically)")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(run=run_adapt)


def _write_csv_atomic(df, path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_summary(s) -> str:
    lines = [f"SLO attainment {s.slo_attainment:.4%} of {s.requests} requests over {s.duration_s:g} s, goodput "
             f"{s.goodput:.1f} req/s, p50 {s.p50_ms:.2f} ms, p99 {s.p99_ms:.2f} ms, GPU utilisation "
             f"{s.gpu_utilisation:.1%}"]
    for x in s.per_service:
        lines.append(f"  {x.name:<28} {x.requests:>9} req  attainment {x.attainment:8.4%}  p99 {x.p99_ms:9.2f} ms"
                     f"  (SLO {x.slo_ms:g} ms)")
    return "\n".join(lines)


def run_simulate(args) -> int:
    from stsched.simulation import ArrivalSpec, SimOptions, simulate

    inst = load_instance(args.instance)
    plan = load_plan(args.plan)
    check_plan_services(inst, plan, args.plan)
    spec = ArrivalSpec.parse(args.arrivals)
    noise_cv, noise_source = _noise(args.noise_cv)
    options = SimOptions(duration_s=_number(args.duration, "--duration"), seed=args.seed, routing=args.routing,
                         noise_cv=noise_cv, exec_model=args.exec_model, progress=True)
    result = simulate(inst, plan, spec, options)
    d = result.summary.to_dict()
    d["arrivals"] = spec.describe()
    d["noise_cv"], d["noise_source"] = noise_cv, noise_source
    d["wall_s"] = round(result.wall_s, 3)
    if args.out:
        write_json(args.out, d)
    if args.records:
        _write_csv_atomic(result.records.to_frame(), args.records)
    if args.json:
        json.dump(d, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_summary(result.summary))
        print(f"  simulated in {result.wall_s:.2f} s")
    return 0


def run_adapt(args) -> int:
    from stsched.planning.adapt import AdaptOptions, ReconfigCosts, run_adapt as adapt_run

    inst = load_instance(args.instance)
    costs = ReconfigCosts.parse(args.reconfig_cost) if args.reconfig_cost else ReconfigCosts()
    options = AdaptOptions(trace=args.trace, policy=args.policy, epoch_s=_number(args.epoch, "--epoch"),
                           headroom=_number(args.headroom, "--headroom"),
                           estimate_window_s=_number(args.estimate_window, "--estimate-window"),
                           trigger=_number(args.trigger, "--trigger", positive=False),
                           hours=_number(args.hours, "--hours") if args.hours else None, downtime=args.downtime,
                           costs=costs, sampling=args.sampling, seed=args.seed,
                           time_limit_s=_number(args.time_limit, "--time-limit"), progress=True,
                           function_offset=args.functions_offset, simulate=not args.plan_only,
                           period=args.period, save_gpus=args.save_gpus, save_for=args.save_for)
    if args.compact_rent is not None:
        rent = None if args.compact_rent.lower() == "none" else _number(args.compact_rent, "--compact-rent")
        options = replace(options, compact_rent=rent)
    if args.adapt_solver is not None:
        options = replace(options, adapt_solver="" if args.adapt_solver.lower() == "none" else args.adapt_solver)
    try:
        result = adapt_run(inst, options)
    except InfeasibleError as e:
        print(f"stsched: no plan: {e}", file=sys.stderr)
        return 1
    d = result.to_dict()
    if args.out:
        write_json(args.out, d)
    if args.json:
        json.dump(d, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(result.format())
    return 0

