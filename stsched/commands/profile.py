"""`stsched profile`, `stsched execute` and `stsched backends`: measure models on partitions, run a plan for real.

    stsched backends
    stsched profile --backend cpu --models resnet-tiny vgg-tiny --batches 1 4 --sizes 1 2 --out profiles/cpu
    stsched execute INSTANCE PLAN --backend cpu --duration 10 --json

torch is imported only when a command runs (never when the CLI starts). Without the project's CLI (a machine where
the solvers' dependencies are not installed): `python -m stsched.commands.profile profile ...`. Exit codes: 0 done,
2 bad input or a backend that cannot run here (one line saying why).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from stsched import validate as V
from stsched.errors import InputError

log = logging.getLogger(__name__)

BACKEND_NAMES = ("cpu", "mps", "sm", "gpu")


def add(sub) -> None:
    p = sub.add_parser("profile", help="measure zoo models on partitions (solo and co-run), resumable")
    p.add_argument("--backend", required=True, choices=BACKEND_NAMES,
                   help="cpu (threads), mps (CUDA MPS %%), sm (green-context SMs), gpu (whole GPU)")
    p.add_argument("--models", nargs="+", required=True,
                   help="zoo model names (docs/PROFILER.md) or your own: [NAME=]pkg.module:factory, tv:NAME "
                        "(torchvision), hf:CONFIG (transformers config class, random weights)")
    p.add_argument("--input-shape", default=None, metavar="SHAPE",
                   help="one sample's input of your own models, e.g. 3x224x224 (or 128 token ids with --vocab); "
                        "default: an example_input attribute, tv: 3x224x224, hf: 128 tokens")
    p.add_argument("--vocab", type=V.count, default=None, help="inputs of your own models are token ids below this")
    p.add_argument("--batches", nargs="+", type=V.count, required=True, help="batch sizes (>= 1)")
    p.add_argument("--sizes", nargs="+", type=V.positive, required=True,
                   help="partition sizes in the backend's units (threads, percent, SMs; gpu: 100)")
    p.add_argument("--out", required=True, help="output folder (solo.csv, corun.csv, meta.json, samples.json)")
    p.add_argument("--repeats", type=V.repeats, default=10,
                   help=f"timed batches per point (median reported; at most {V.MAX_REPEATS:,})")
    p.add_argument("--warmup", type=V.warmups, default=3,
                   help=f"untimed batches before timing (at most {V.MAX_REPEATS:,})")
    p.add_argument("--corun", nargs="*", default=[], metavar="A,B",
                   help="co-run size pairs, e.g. 1,1 or 64,64 (two partitions at once)")
    p.add_argument("--corun-models", nargs="+", default=None, help="models for co-runs (default --models)")
    p.add_argument("--corun-batches", nargs="+", type=V.count, default=None, help="batches for co-runs")
    p.add_argument("--corun-window", type=V.real_run, default=1.0,
                   help="seconds both sides run together (> 0, at most a day)")
    p.add_argument("--corun-plan", default=None, metavar="FILE",
                   help="measure exactly these co-runs (the JSON list of `stsched probe-plan --json`) instead of "
                        "the --corun grid")
    p.add_argument("--sm-impl", default="driver", choices=("driver", "torch"), help="green contexts (sm)")
    p.add_argument("--no-graphs", action="store_true", help="GPU: run eagerly instead of CUDA graphs")
    p.add_argument("--fresh", action="store_true",
                   help="discard what --out holds instead of resuming (a resume with other --repeats, --warmup or "
                        "--corun-window is refused)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_profile)

    e = sub.add_parser("execute", help="run a plan on real hardware and summarise like the simulator")
    e.add_argument("instance", help="instance JSON file")
    e.add_argument("plan", help="plan JSON file")
    e.add_argument("--backend", required=True, choices=BACKEND_NAMES, help="partition backend to run on")
    e.add_argument("--duration", type=V.real_run, default=10.0,
                   help="arrival window, seconds of real time (> 0, at most a day; default 10)")
    e.add_argument("--seed", type=V.seed, default=0, help="random seed of the arrivals (>= 0)")
    e.add_argument("--arrivals", default="poisson", help="poisson | gamma:CV | deterministic | trace:NAME")
    e.add_argument("--routing", default="interleave", choices=("interleave", "random"),
                   help="how a service's requests are split over its partitions")
    e.add_argument("--drain", type=V.real_wait, default=5.0,
                   help="seconds after the window for queued requests (at most a day)")
    e.add_argument("--no-pad", action="store_true", help="run a batch at the number of requests taken")
    e.add_argument("--spin-ms", type=V.nonnegative, default=None,
                   help="cpu/mps: an idle worker polls the clock this long before the next arrival instead of "
                        "sleeping (no wake-up delay, no slow spells after idling; on a shared CPU it is preempted "
                        "more inside batches: give 0 there); default: poll where the worker owns its cores (cpu, "
                        "pinned), sleep elsewhere")
    e.add_argument("--model-map", nargs="*", default=[], metavar="MODEL=ZOO", help="instance model -> zoo model")
    e.add_argument("--gpus", nargs="*", type=V.whole(0), default=None, help="plan GPU indices to run (default all)")
    e.add_argument("--sm-impl", default="driver", choices=("driver", "torch"), help="green contexts (sm)")
    e.add_argument("--no-graphs", action="store_true", help="GPU: run eagerly instead of CUDA graphs")
    e.add_argument("--compare-sim", action="store_true", help="also simulate the same arrivals and report both")
    e.add_argument("--noise-cv", default="0", metavar="CV|PROFILE",
                   help="with --compare-sim: the simulator's per-batch execution-time noise, a number or a profile's "
                        "samples.json / folder (its measured median CV; docs/SIMULATOR.md)")
    e.add_argument("--host-overhead", default="none", metavar="measured|SECONDS|BATCH,WAKE|JSON",
                   help="with --compare-sim: the host overhead the simulator models (docs/PROFILER.md): 'measured' "
                        "(this run's own), seconds per batch, BATCH,WAKE seconds, or an earlier `execute --json` "
                        "output; default none")
    e.add_argument("--exec-noise", default=None, metavar="EXEC_JSON",
                   help="with --compare-sim: draw each simulated batch's time factor from the measured / simulated "
                        "batch times of an earlier `execute --json` run of this plan (a calibration run on other "
                        "arrivals; instead of --noise-cv)")
    e.add_argument("--allow-invalid", action="store_true",
                   help="run a plan that the checker rejects (refused otherwise: exit 1 with its first violation)")
    e.add_argument("--records", default=None, help="write per-request records here (CSV)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(run=run_execute)

    r = sub.add_parser("reconfig-cost", help="measure what a layout change costs (partitions + model reloads)")
    r.add_argument("--backend", required=True, choices=BACKEND_NAMES, help="partition backend to measure")
    r.add_argument("--layouts", nargs="+", required=True, metavar="A[,B...]",
                   help="layouts in the backend's units, e.g. 64,64 32,96")
    r.add_argument("--models", nargs="+", required=True, help="zoo models, dealt round robin onto the partitions")
    r.add_argument("--batch", type=V.count, default=8, help="batch each tenant runs")
    r.add_argument("--repeats", type=V.repeats, default=3,
                   help=f"switches per layout (the first is reported as cold; at most {V.MAX_REPEATS:,})")
    r.add_argument("--warmup", type=V.warmups, default=2,
                   help=f"batches run before a tenant counts as ready (at most {V.MAX_REPEATS:,})")
    r.add_argument("--process-restart", type=V.whole(0, V.MAX_REPEATS), default=0, metavar="N",
                   help="also restart every model's process in parallel N times (the MPS analogue)")
    r.add_argument("--sm-impl", default="driver", choices=("driver", "torch"), help="green contexts (sm)")
    r.add_argument("--no-graphs", action="store_true", help="GPU: run eagerly instead of CUDA graphs")
    r.add_argument("--out", required=True, help="JSON file (written atomically); `stsched adapt --reconfig-cost` "
                                                "reads its reconfig_s (a GPU run's: a CPU run measures none)")
    r.add_argument("--json", action="store_true", help="print one JSON object (the file's content)")
    r.set_defaults(run=run_reconfig_cost)

    b = sub.add_parser("backends", help="which partition backends can run on this machine, and why not")
    b.add_argument("--json", action="store_true", help="print one JSON list")
    b.set_defaults(run=run_backends)


def _backend(name: str, args: Any) -> Any:
    from profiler.partitions import get_backend

    options: dict[str, Any] = {}
    if name == "sm":
        options["impl"] = args.sm_impl
    if name in ("sm", "gpu"):
        options["graphs"] = not args.no_graphs
    backend = get_backend(name, **options)
    a = backend.availability()
    if not a.ok:
        raise InputError(f"backend {name} cannot run here: {a.reason}")
    return backend


def _pairs(items: list[str]) -> tuple[tuple[float, float], ...]:
    out = []
    for item in items:
        try:
            a, b = (float(x) for x in item.split(","))
        except ValueError:
            raise InputError(f"--corun {item!r}: expected two sizes A,B") from None
        out.append((a, b))
    return tuple(out)


PLAN_KEYS = ("victim", "victim_batch", "victim_partition", "corunner", "corunner_batch", "corunner_partition")


def _corun_plan(path: str) -> tuple[tuple[str, int, float, str, int, float], ...]:
    """The co-runs of a `stsched probe-plan --json` file, checked entry by entry (json only: no scipy here)."""
    try:
        with open(path, encoding="utf-8") as fh:
            items = json.load(fh)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read the co-run plan: {e}", source=path) from None
    if not isinstance(items, list) or not items:
        raise InputError("a co-run plan is a non-empty JSON list (stsched probe-plan --json)", source=path)
    out = []
    for i, item in enumerate(items, 1):
        try:
            m1, b1, p1, m2, b2, p2 = (item[k] for k in PLAN_KEYS)
            point = (str(m1), int(b1), float(p1), str(m2), int(b2), float(p2))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"entry {i}: needs {', '.join(PLAN_KEYS)} (batches integers, partitions numbers)",
                             source=path) from None
        if point[1] < 1 or point[4] < 1 or not (point[2] > 0 and point[5] > 0):
            raise InputError(f"entry {i}: batches must be >= 1 and partitions > 0", source=path)
        if point in out:
            raise InputError(f"entry {i} repeats entry {out.index(point) + 1}", source=path)
        out.append(point)
    return tuple(out)


def _device_errors(fn: Any, name: str) -> Any:
    """Run `fn`; a backend or CUDA driver failure becomes one line (exit 2) instead of a traceback."""
    from profiler.partitions import BackendUnavailable

    try:
        return fn()
    except BackendUnavailable as e:
        raise InputError(f"backend {name} failed: {e}") from None


def _own_models(args) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """--models / --corun-models with the researcher's own models registered (profiler.custom) under their names."""
    from profiler import custom

    if args.vocab is not None and args.vocab < 1:
        raise InputError(f"--vocab: expected an integer >= 1, got {args.vocab}")
    shape = custom.parse_shape(args.input_shape) if args.input_shape else None
    names: dict[str, str] = {}

    def one(m: str) -> str:
        if not custom.is_custom(m):
            return m
        if m not in names:
            names[m] = custom.register(m, shape, args.vocab)
        return names[m]
    return tuple(one(m) for m in args.models), tuple(one(m) for m in (args.corun_models or ()))


def run_profile(args) -> int:
    from profiler.measure import TimingOptions
    from profiler.sweep import SweepSpec, sweep

    from stsched.outputs import output_folder

    output_folder(args.out)
    plan = _corun_plan(args.corun_plan) if args.corun_plan else ()
    if plan and args.corun:
        raise InputError("--corun-plan replaces the --corun grid: give one of them")
    backend = _backend(args.backend, args)
    models, corun_models = _own_models(args)
    spec = SweepSpec(models=models, batches=tuple(args.batches), sizes=tuple(args.sizes),
                     timing=TimingOptions(args.warmup, args.repeats), corun_sizes=_pairs(args.corun),
                     corun_models=corun_models, corun_batches=tuple(args.corun_batches or ()),
                     corun_window_s=args.corun_window, corun_plan=plan, progress=not getattr(args, "quiet", False))
    r = _device_errors(lambda: sweep(backend, spec, args.out, fresh=args.fresh), args.backend)
    if args.json:
        _print_json({"backend": args.backend, "out": str(r.out_dir), "measured_solo": r.measured_solo,
                     "measured_corun": r.measured_corun, "skipped": r.skipped, "solo_rows": len(r.solo),
                     "corun_rows": None if r.corun is None else len(r.corun)})
        return 0
    print(f"profile {args.backend} -> {r.out_dir}: {r.measured_solo} solo and {r.measured_corun} co-run "
          f"measurements, {r.skipped} already present; solo.csv {len(r.solo)} rows"
          + (f", corun.csv {len(r.corun)} rows" if r.corun is not None else ""))
    return 0


def run_reconfig_cost(args) -> int:
    from profiler.reconfig import (SwitchSpec, measure_layout_switch, measure_process_restart, summarize)
    from stsched.io import write_atomic
    from stsched.outputs import output_file

    output_file(args.out)
    layouts = tuple(_sizes(text) for text in args.layouts)
    backend = _backend(args.backend, args)
    spec = SwitchSpec(layouts, tuple(args.models), args.batch, args.repeats, args.warmup)
    facts = _device_errors(backend.describe, args.backend)
    switch = _device_errors(lambda: measure_layout_switch(backend, spec), args.backend)
    restart = []
    if args.process_restart > 0:
        device = "cuda:0" if args.backend in ("sm", "gpu", "mps") else "cpu"
        restart = measure_process_restart(device, spec.models, spec.batch, args.process_restart, spec.warmup)
    out = summarize(switch, restart, facts, backend.mechanism)
    out["switches"], out["restarts"] = switch, restart
    write_atomic(args.out, json.dumps(_clean(out), indent=1, allow_nan=False) + "\n")
    if args.json:
        _print_json(out)
        return 0
    for row in out["layouts"]:
        print(f"layout {row['layout']} (tenants {row['tenants']}): switch {row['switch_ms']:.1f} ms median "
              f"(open {row['open_ms']:.1f}, load {row['load_ms']:.1f}; cold {row['cold_switch_ms']:.1f}), "
              f"close {row['close_ms']:.1f} ms")
    if "process_restart" in out:
        pr = out["process_restart"]
        print(f"process restart of {pr['models']}: {pr['wall_ms']:.0f} ms median (cold {pr['cold_wall_ms']:.0f})")
    print(f"reconfig_s {out['reconfig_s'] or '(none: not a GPU run)'} -> {args.out}")
    return 0


def _sizes(text: str) -> tuple[float, ...]:
    try:
        sizes = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--layouts {text!r}: expected sizes separated by commas, e.g. 64,64") from None
    if not sizes or any(not x > 0 for x in sizes):
        raise InputError(f"--layouts {text!r}: sizes must be > 0")
    return sizes


def run_execute(args) -> int:
    from stsched.executor import ExecOptions, execute
    from stsched.io import load_instance, load_plan
    from stsched.outputs import output_file

    output_file(args.records, inputs=(args.instance, args.plan), what="--records")
    inst = load_instance(args.instance)
    plan = load_plan(args.plan)
    _judge(inst, plan, args.plan, args.allow_invalid)
    mm = []
    models = sorted({s.model for s in inst.services})
    for item in args.model_map:
        if "=" not in item:
            raise InputError(f"--model-map {item!r}: expected MODEL=ZOO")
        model, zoo_name = item.split("=", 1)
        if model not in models:  # a typo was ignored, and the run then measured another model or failed on it
            raise InputError(f"--model-map {item!r}: the instance has no model {model!r} (models: "
                             f"{', '.join(models)})")
        from profiler import zoo

        try:
            zoo.resolve(zoo_name)
        except InputError as e:
            raise InputError(f"--model-map {item!r}: {e}") from None
        mm.append((model, zoo_name))
    options = ExecOptions(duration_s=args.duration, seed=args.seed, arrivals=args.arrivals, routing=args.routing,
                          drain_s=args.drain, pad_batches=not args.no_pad, model_map=tuple(mm),
                          gpus=tuple(args.gpus) if args.gpus else None, spin_ms=args.spin_ms)
    if args.compare_sim and options.gpus is not None:
        raise InputError("--compare-sim needs every GPU of the plan (drop --gpus)")
    noise_cv, host_given, quantiles = _sim_model(args)
    backend = _backend(args.backend, args)
    res = _device_errors(lambda: execute(inst, plan, backend, options), args.backend)
    from stsched.executor.host import measure_host

    exec_model = "fill" if args.no_pad else "fixed"  # a padded batch runs for the full batch's time
    host = measure_host(res, inst, plan, exec_model, source="measured")
    sim = plain = None
    model: dict[str, Any] = {"exec_model": exec_model, "noise_cv": noise_cv, "host": None,
                             "exec_noise": quantiles.source if quantiles else None}
    if args.compare_sim:
        from stsched.simulation import SimOptions, simulate

        overhead = host.overhead if args.host_overhead == "measured" else host_given
        model["host"] = overhead.to_dict()
        sim_opts = SimOptions(duration_s=args.duration, seed=args.seed, routing=args.routing, noise_cv=noise_cv,
                              exec_model=exec_model, host=overhead)
        sim = simulate(inst, plan, res.arrivals, sim_opts,
                       batch_factors=quantiles.batch_factors() if quantiles else None).summary
        if noise_cv or quantiles or not overhead.none:  # also the simulator without them, for comparison
            plain = simulate(inst, plan, res.arrivals, SimOptions(duration_s=args.duration, seed=args.seed,
                                                                  routing=args.routing, exec_model=exec_model)).summary
    if args.records:
        from stsched.io import write_atomic

        write_atomic(args.records, res.records.to_frame().to_csv(index=False))
    if args.json:
        out = {"summary": res.summary.to_dict(), "backend": res.backend, "layouts": list(res.layouts),
               "exec": res.exec_table().to_dict("records"), "wall_s": res.wall_s, "host": host.to_dict(),
               "simulated": sim.to_dict() if sim is not None else None, "sim_model": model,
               "simulated_plain": plain.to_dict() if plain is not None else None}
        _print_json(out)
        return 0
    s = res.summary
    print(f"executed on {args.backend} ({res.backend.get('device')}): {s.requests} requests in "
          f"{s.duration_s:g} s, SLO attainment {s.slo_attainment:.4f}, p50 {s.p50_ms:.2f} ms, "
          f"p99 {s.p99_ms:.2f} ms, goodput {s.goodput:.1f} req/s ({res.wall_s:.1f} s wall)")
    print(host.line())
    if host.accounting is not None:
        print(host.accounting.line())
    print("\n".join(host.exec_lines()))
    if sim is not None:
        o = model["host"]
        noise = f"batch times from {quantiles.source}" if quantiles else f"noise CV {noise_cv:.4f}"
        print(f"simulated, same arrivals ({noise}, host {o['batch_s'] * 1e3:.3f} ms per batch + "
              f"{o['wake_s'] * 1e3:.3f} ms wake-up, {o['source']}): SLO attainment {sim.slo_attainment:.4f}, "
              f"p50 {sim.p50_ms:.2f} ms, p99 {sim.p99_ms:.2f} ms, goodput {sim.goodput:.1f} req/s")
    if plain is not None:
        print(f"simulated without noise or host overhead: SLO attainment {plain.slo_attainment:.4f}, "
              f"p50 {plain.p50_ms:.2f} ms, p99 {plain.p99_ms:.2f} ms, goodput {plain.goodput:.1f} req/s")
    for row in res.exec_table().to_dict("records"):
        model = "-" if row["model_ms"] is None else f"{row['model_ms']:.2f}"
        print(f"  gpu {row['gpu']} partition {row['partition']} {row['service']}: {row['batches']} batches, "
              f"median {row['median_exec_ms']:.2f} ms (instance e_s {model} ms)")
    return 0


def _sim_model(args) -> tuple[float, Any, Any]:
    """--noise-cv, --host-overhead and --exec-noise, checked before any work (the host model of 'none' and
    'measured' is a zero placeholder: 'measured' means this run's own, known only after it)."""
    from stsched.simulation.host import HostOverhead, parse_host_overhead, read_batch_quantiles

    given = args.noise_cv != "0" or args.host_overhead != "none" or args.exec_noise is not None
    if given and not args.compare_sim:
        raise InputError("--noise-cv, --host-overhead and --exec-noise configure the simulator of --compare-sim: "
                         "add it")
    if args.exec_noise is not None and args.noise_cv != "0":
        raise InputError("--exec-noise replaces --noise-cv: give one of them")
    quantiles = read_batch_quantiles(args.exec_noise) if args.exec_noise is not None else None
    try:
        float(args.noise_cv)
    except ValueError:  # a profile's samples: its measured noise
        from stsched.simulation.noise import measured_noise

        m = measured_noise(args.noise_cv)
        log.info("noise: median CV %.4f over %d solo rows of %s", m.cv, m.rows, m.source)
        noise_cv = m.cv
    else:
        noise_cv = float(args.noise_cv)
    from stsched.simulation.simulator import check_noise_cv

    try:  # the simulator's rule, before the execution (1e300 was refused by the simulator after it)
        check_noise_cv(noise_cv)
    except InputError as e:
        raise InputError(f"--noise-cv: {e}") from None
    if args.host_overhead in ("none", "measured"):
        return noise_cv, HostOverhead(), quantiles
    return noise_cv, parse_host_overhead(args.host_overhead), quantiles


def _clean(x: Any) -> Any:
    from stsched.commands._common import json_safe  # imports only the checker: fine on a GPU machine too
    return json_safe(x)


def _print_json(obj: Any) -> None:
    from stsched.commands._common import print_json
    print_json(obj)


def _judge(inst: Any, plan: Any, source: str, allow_invalid: bool) -> None:
    from stsched.judge import judge_plan
    judge_plan(inst, plan, source, allow_invalid=allow_invalid)


def run_backends(args) -> int:
    from profiler.partitions import BACKENDS, get_backend

    rows = []
    for name in BACKENDS:
        a = get_backend(name).availability()
        rows.append({"backend": name, "available": bool(a.ok), "reason": "" if a.ok else a.reason})
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        print(f"{r['backend']:<4} {'available' if r['available'] else 'unavailable'}"
              f"{'' if r['available'] else ': ' + r['reason']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """These three commands alone, for machines without the solvers' dependencies (the GPU check script)."""
    import argparse
    import logging

    parser = argparse.ArgumentParser(prog="python -m stsched.commands.profile")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    add(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from stsched.cli import run_parsed  # the CLI's exit codes; it imports no command module by itself

    return run_parsed(args, "stsched: interrupted (every point written so far is kept; run the same command to "
                            "resume)")


if __name__ == "__main__":
    sys.exit(main())
