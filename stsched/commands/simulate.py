"""`stsched simulate INSTANCE PLAN ...` and `stsched adapt INSTANCE --trace NAME ...` (docs/SIMULATOR.md).

simulate: replay arrivals through a plan; `--json` prints the summary (slo_attainment, goodput, p99_ms,
per_service, ...).  adapt: run a re-planning policy over a per-minute rate trace; `--json` prints reconfigurations,
downtime_s, gpu_hours, slo_attainment and the per-epoch rows.  Exit 0 on success, 1 when no plan serves the
rates, 2 on bad input.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

from stsched import validate as V
from stsched.commands._common import print_json, progress
from stsched.judge import judge_plan
from stsched.errors import InfeasibleError, InputError
from stsched.io import instance_digest, load_instance, load_plan, plan_digest, write_json
from stsched.outputs import output_file

log = logging.getLogger(__name__)

WINDOW_DEFAULT = "10"  # seconds of arrivals the streaming simulator generates at a time


def _number(text: str, option: str, *, positive: bool = True) -> float:
    """A finite number (> 0, or >= 0 with positive=False) given on the command line, else InputError."""
    return V.check_real(text, option, minimum=0.0, strict=positive)


def _optional(text: str, parse, none=None):
    """`none` for the word 'none' (any case) given on the command line, else `parse(text)`."""
    return none if text.lower() == "none" else parse(text)


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
    from stsched.simulation import SimOptions

    sd = SimOptions()
    p.add_argument("--duration", default=f"{sd.duration_s:g}", help="seconds of arrivals (default %(default)s)")
    p.add_argument("--seed", type=V.seed, default=sd.seed, help="random seed of the arrivals and noise (>= 0)")
    p.add_argument("--routing", default=sd.routing, help="interleave (deterministic) | random")
    p.add_argument("--noise-cv", default="0",
                   help="per-batch execution-time noise: a coefficient of variation, or a profile's samples.json "
                        "(or its folder) for the noise the profiler measured (median CV of its solo repeats)")
    p.add_argument("--exec-model", default=sd.exec_model, help="fill (partial batches run faster) | fixed")
    p.add_argument("--host-overhead", default="0", metavar="SECONDS|BATCH,WAKE|EXEC_JSON",
                   help="a real server's host overhead: seconds per batch, BATCH,WAKE seconds (dispatch gap per "
                        "batch, wake-up delay after idling), or what `stsched execute --json` measured "
                        "(docs/PROFILER.md, 'Host overhead'; default none)")
    p.add_argument("--allow-invalid", action="store_true",
                   help="simulate a plan that the checker rejects (refused otherwise: exit 1 with its first "
                        "violation); the summary then says so")
    p.add_argument("--interference-noise", default=None, metavar="MODEL",
                   help="draw each batch's interference slowdown from MODEL's calibrated predictive distribution of "
                        "the instance's form (a model file from stsched fit)")
    p.add_argument("--out", default=None, help="write the summary here (JSON, atomically)")
    p.add_argument("--records", default=None, help="write per-request records here (CSV, atomically)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    g = p.add_argument_group("streaming, sharded simulation (stsched.simulation.stream; Poisson arrivals)")
    g.add_argument("--shards", type=V.count, default=None, metavar="K",
                   help="stream the summary (memory bounded by one window, not the duration) and split the plan's "
                        "GPUs into K tasks; per-tenant Poisson streams (random routing in law); the summary does "
                        "not depend on K")
    g.add_argument("--runner", default="local", choices=("local", "ray"), help="where shards run (default local)")
    g.add_argument("--jobs", type=V.count, default=None, help="shards at a time (default min(K, CPUs))")
    g.add_argument("--address", default=None, help="a Ray cluster: auto | HOST:PORT (--runner ray)")
    g.add_argument("--window", default=WINDOW_DEFAULT,
                   help=f"seconds of arrivals generated at a time (default {WINDOW_DEFAULT})")
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
    a.add_argument("--period", type=int, default=None,
                   help=f"periodic: full re-partitioning every N decisions (default {d.period})")
    a.add_argument("--save-gpus", type=int, default=None,
                   help=f"practitioner: re-plan when a fresh plan saves >= K GPUs ... (default {d.save_gpus})")
    a.add_argument("--save-for", type=int, default=None,
                   help=f"practitioner: ... at M decisions in a row (default {d.save_for})")
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
    a.add_argument("--adapt-nodes", default=None,
                   help="adaptive: work limit of the exact adapt solver, branch-and-bound nodes per call (default "
                        f"{d.adapt_nodes}; 'none': the time limit alone, so results depend on the machine's load)")
    a.add_argument("--cold-start", default=f"{d.cold_start_s:g}", metavar="S|none",
                   help="the declared rates x head-room floor the estimate of the initial deployment and of the "
                        "decisions in the first S seconds (0: the initial deployment only; 'none': off, the first "
                        "plan is for the trace's first minute; default %(default)s)")
    a.add_argument("--cold-count", default="none", metavar="S|none",
                   help="the observed start: the initial deployment planned for the upper confidence bound of each "
                        "service's arrivals in the first S seconds (0 < S < 60) x head-room, instead of the declared "
                        "rates; it reads the first S s of minute 0 ahead, the plan serves from t = 0 (needs "
                        "--cold-start none; default %(default)s: off)")
    a.add_argument("--no-cold-release", action="store_true",
                   help="with the cold start: the first decision after it gives the floor's GPUs back by the "
                        "policy's normal rule, not at once without the compaction rent")
    a.add_argument("--detect", default=f"{d.detect_s:g}", metavar="S|none",
                   help="the burst detector: an emergency decision S seconds into a minute whose arrivals so far are "
                        "clearly above --trigger x a service's planned rate (shorter than a minute; 'none': off, "
                        "the end-of-minute trigger alone; default %(default)s)")
    a.add_argument("--seed", type=V.seed, default=0, help="random seed of the arrivals (>= 0)")
    a.add_argument("--time-limit", default=f"{d.time_limit_s:g}",
                   help="wall-clock limit per solver call, seconds: the safety net behind the work limits (the "
                        "heuristic's counts, --adapt-nodes); a result says when it may have cut a decision (default "
                        "%(default)s)")
    a.add_argument("--functions-offset", type=V.whole(0), default=d.function_offset, metavar="N",
                   help="service i follows the (N + i)-th busiest function of the trace (default %(default)s)")
    a.add_argument("--plan-only", action="store_true",
                   help="plans, reconfigurations and GPU-hours only, no simulation (attainment not measured)")
    a.add_argument("--out", default=None, help="write the result here (JSON, atomically)")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(run=run_adapt)


def format_summary(s) -> str:
    lines = [f"SLO attainment {s.slo_attainment:.4%} of {s.requests} requests over {s.duration_s:g} s, goodput "
             f"{s.goodput:.1f} req/s, p50 {s.p50_ms:.2f} ms, p99 {s.p99_ms:.2f} ms, GPU utilisation "
             f"{s.gpu_utilisation:.1%}"]
    for x in s.per_service:
        lines.append(f"  {x.name:<28} {x.requests:>9} req  attainment {x.attainment:8.4%}  p99 {x.p99_ms:9.2f} ms"
                     f"  (SLO {x.slo_ms:g} ms)")
    return "\n".join(lines)


def _interference_noise(path: str, inst, plan):
    from stsched.latency import load
    from stsched.simulation.interference_noise import base_interference, predictive_factors

    model = load(path)
    form = base_interference(inst).form
    if form not in model.predictive:
        raise InputError(f"model has no predictive distribution of the instance's form {form!r} (calibrated: "
                         f"{', '.join(model.predictive) or 'none; refit it with stsched fit'})", source=path)
    return predictive_factors(inst, plan, model.predictive[form])


def _check_engine_options(args) -> None:
    """The options of one simulator given to the other are refused, not ignored: --runner, --jobs, --address and
    --window belong to the streaming simulator (--shards), --interference-noise to the event simulator."""
    stream_only = [name for name, given in (("--runner", args.runner != "local"), ("--jobs", args.jobs is not None),
                                            ("--address", args.address is not None), ("--window", args.window != WINDOW_DEFAULT))
                   if given]
    if args.shards is None and stream_only:
        raise InputError(f"{', '.join(stream_only)}: options of the streaming simulator; add --shards K")
    if args.shards is not None and args.interference_noise:
        raise InputError("--interference-noise: the streaming simulator (--shards) does not model it")


def _check_records_room(args, inst, plan) -> None:
    """--records: refused before the run when the records of the requests expected (the rates the plan claims,
    times the duration) cannot fit on disk, or in memory where the streaming simulator holds them."""
    from stsched.simulation.records_csv import check_records_room

    rates = [s.rate * plan.scale for s in inst.services]
    total = sum(rates)
    names = sum(r * len(s.name.encode()) for r, s in zip(rates, inst.services)) / total if total > 0 else 0.0
    check_records_room(args.records, total * _number(args.duration, "--duration"), names,
                       in_memory=args.shards is not None)


def run_simulate(args) -> int:
    from stsched.simulation import ArrivalSpec, SimOptions, simulate

    output_file(args.out, inputs=(args.instance, args.plan, args.interference_noise))
    output_file(args.records, inputs=(args.instance, args.plan), what="--records", outputs=(args.out,))
    _check_engine_options(args)
    inst = load_instance(args.instance)
    plan = load_plan(args.plan)
    report = judge_plan(inst, plan, args.plan, allow_invalid=args.allow_invalid)
    spec = ArrivalSpec.parse(args.arrivals)
    noise_cv, noise_source = _noise(args.noise_cv)
    from stsched.simulation.host import parse_host_overhead

    host = parse_host_overhead(args.host_overhead)
    if args.records:
        _check_records_room(args, inst, plan)
    if args.shards is not None:
        if not host.none:
            raise InputError("--host-overhead: the streaming simulator (--shards) does not model it")
        return _run_stream(args, inst, plan, spec, noise_cv, noise_source)
    options = SimOptions(duration_s=_number(args.duration, "--duration"), seed=args.seed, routing=args.routing,
                         noise_cv=noise_cv, exec_model=args.exec_model, progress=progress(args), host=host)
    factors = None
    if args.interference_noise:
        factors = _interference_noise(args.interference_noise, inst, plan)
    result = simulate(inst, plan, spec, options, batch_factors=factors)
    d = result.summary.to_dict()
    d["arrivals"] = spec.describe()
    d["noise_cv"], d["noise_source"] = noise_cv, noise_source
    d["host_overhead"] = host.to_dict()
    d["interference_noise"] = args.interference_noise
    d["wall_s"] = round(result.wall_s, 3)
    d["plan_valid"] = report.valid
    d["plan_digest"], d["instance_digest"] = plan_digest(plan), instance_digest(inst)
    if not report.valid:
        d["plan_violations"] = [str(v) for v in report.violations]
    if args.out:
        write_json(args.out, d)
    if args.records:
        from stsched.simulation.records_csv import write_records_csv

        write_records_csv(args.records, result.records)
    if args.json:
        print_json(d)
    else:
        if not report.valid:
            print(f"NOTE: the plan is not valid ({len(report.violations)} violations, first: "
                  f"{report.violations[0]}); simulated because of --allow-invalid")
        print(format_summary(result.summary))
        print(f"  simulated in {result.wall_s:.2f} s")
    return 0


def _run_stream(args, inst, plan, spec, noise_cv, noise_source) -> int:
    from stsched.simulation.stream import StreamOptions, simulate_stream

    if spec.kind != "poisson":
        raise InputError(f"--shards: the streaming simulator draws poisson arrivals, got --arrivals {args.arrivals}")
    options = StreamOptions(duration_s=_number(args.duration, "--duration"), seed=args.seed, noise_cv=noise_cv,
                            exec_model=args.exec_model, window_s=_number(args.window, "--window"),
                            shards=args.shards, runner=args.runner, jobs=args.jobs, address=args.address,
                            records=bool(args.records), progress=progress(args))
    result = simulate_stream(inst, plan, options)
    d = result.summary.to_dict()
    d["arrivals"] = "poisson (per tenant)"
    d["noise_cv"], d["noise_source"] = noise_cv, noise_source
    d["shards"], d["runner"] = result.shards, args.runner
    d["plan_digest"], d["instance_digest"] = plan_digest(plan), instance_digest(inst)
    d["wall_s"] = round(result.wall_s, 3)
    d["requests_per_s"] = round(result.requests_per_s)
    if args.out:
        write_json(args.out, d)
    if args.records and result.records is not None:
        from stsched.simulation.records_csv import write_records_csv

        write_records_csv(args.records, result.records)
    if args.json:
        print_json(d)
    else:
        print(format_summary(result.summary))
        print(f"  simulated in {result.wall_s:.2f} s over {result.shards} shard(s) ({args.runner}): "
              f"{result.requests_per_s:,.0f} requests / s")
    return 0


def run_adapt(args) -> int:
    from stsched.planning.adapt import AdaptOptions, ReconfigCosts, run_adapt as adapt_run

    from stsched.planning.adapt.policies import knob_reader, knobs_read

    for flag, value, knob in (("--period", args.period, "period"), ("--save-gpus", args.save_gpus, "save_gpus"),
                              ("--save-for", args.save_for, "save_for"),
                              ("--compact-rent", args.compact_rent, "compact_rent"),
                              ("--adapt-solver", args.adapt_solver, "adapt_solver"),
                              ("--adapt-nodes", args.adapt_nodes, "adapt_nodes")):
        if value is not None and knob not in knobs_read(args.policy):  # it would be ignored (`knobs_read`)
            raise InputError(f"{flag} is an option of --policy {knob_reader(knob)}, not of {args.policy}")
    output_file(args.out, inputs=(args.instance, args.reconfig_cost))
    inst = load_instance(args.instance)
    costs = ReconfigCosts.parse(args.reconfig_cost) if args.reconfig_cost else ReconfigCosts()
    d = AdaptOptions()
    options = AdaptOptions(trace=args.trace, policy=args.policy, epoch_s=_number(args.epoch, "--epoch"),
                           headroom=_number(args.headroom, "--headroom"),
                           estimate_window_s=_number(args.estimate_window, "--estimate-window"),
                           trigger=_number(args.trigger, "--trigger", positive=False),
                           hours=_number(args.hours, "--hours") if args.hours else None, downtime=args.downtime,
                           costs=costs, sampling=args.sampling, seed=args.seed,
                           time_limit_s=V.check_time_limit(args.time_limit, "--time-limit"),
                           progress=progress(args),
                           function_offset=args.functions_offset, simulate=not args.plan_only,
                           period=d.period if args.period is None else args.period,
                           save_gpus=d.save_gpus if args.save_gpus is None else args.save_gpus,
                           save_for=d.save_for if args.save_for is None else args.save_for,
                           cold_start_s=_optional(args.cold_start,
                                                  lambda t: _number(t, "--cold-start", positive=False)),
                           cold_release=not args.no_cold_release,
                           cold_count_s=_optional(args.cold_count, lambda t: _number(t, "--cold-count")),
                           detect_s=_optional(args.detect, lambda t: _number(t, "--detect")))
    if args.compact_rent is not None:
        options = replace(options, compact_rent=_optional(args.compact_rent, lambda t: _number(t, "--compact-rent")))
    if args.adapt_solver is not None:
        options = replace(options, adapt_solver=_optional(args.adapt_solver, str, none=""))
    if args.adapt_nodes is not None:
        options = replace(options, adapt_nodes=_optional(args.adapt_nodes,
                                                         lambda t: V.check_int(t, "--adapt-nodes", minimum=1)))
    from stsched.simulation.traces import check_function_offset, load_count_trace

    load_count_trace(options.trace)  # a bad trace file named as itself, not as the option checked against it
    try:
        check_function_offset(options.function_offset, options.trace)
    except InputError as e:
        raise InputError(f"--functions-offset: {e}") from None
    from stsched.planning.adapt.controller import check_hours

    try:
        check_hours(options.hours, options.trace)
    except InputError as e:
        raise InputError(f"--hours: {e}") from None
    try:
        result = adapt_run(inst, options)
    except InfeasibleError as e:
        print(f"stsched: no plan: {e}", file=sys.stderr)
        return 1
    d = result.to_dict()
    if args.out:
        write_json(args.out, d)
    if args.json:
        print_json(d)
    else:
        print(result.format())
    return 0

