"""`stsched scenario KIND ... --out instance.json`: build an instance from a published workload or at random."""

from __future__ import annotations

import argparse

from stsched import scenarios
from stsched import validate as V
from stsched.commands._common import print_json
from stsched.errors import InputError
from stsched.io import instance_to_dict, save_instance
from stsched.outputs import output_file


def add(sub) -> None:
    p = sub.add_parser("scenario", help="build an instance (parvagpu, gpulet-MIX, igniter-example, random)")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")

    q = kinds.add_parser("parvagpu", help="a ParvaGPU scenario on the A100 MIG profiles")
    q.add_argument("--rates", default=None, help="SLO_req_rate.csv in ParvaGPU's layout (default: shipped)")
    q.add_argument("--slos", default=None, help="SLO_latency.csv in ParvaGPU's layout (default: shipped)")
    q.add_argument("--row", type=V.count, required=True, help="data row, counted from 1")
    q.add_argument("--max-procs", type=V.count, default=3, help="MPS processes per MIG slice (ParvaGPU: 3)")
    q.add_argument("--gpus", type=V.count, default=32, help="GPUs available")
    q.add_argument("--no-truncate-slo", action="store_true", help="keep fractional SLOs (ParvaGPU truncates)")
    _out(q)
    q.set_defaults(run=lambda a: _emit(a, lambda: scenarios.parvagpu(
        a.row, a.rates, a.slos, max_procs=a.max_procs, gpus=a.gpus, truncate_slo=not a.no_truncate_slo)))

    q = kinds.add_parser("random", help="random services drawn from a device's profiled models")
    q.add_argument("--services", type=V.services, required=True, help="services to draw (1 to 100,000)")
    q.add_argument("--gpus", type=V.count, required=True, help="GPUs available (>= 1)")
    q.add_argument("--seed", type=V.seed, default=0, help="random seed (>= 0)")
    q.add_argument("--dataset", default="a100-mps", choices=sorted(scenarios.RANDOM_DATASETS),
                   help="profile data set the services are drawn from")
    q.add_argument("--device", dest="dataset", choices=sorted(scenarios.RANDOM_DATASETS),
                   help=argparse.SUPPRESS)  # deprecated name of --dataset
    q.add_argument("--load", type=V.positive, default=0.6, help="demand as a share of the GPUs' capacity (> 0)")
    q.add_argument("--arrivals", default="poisson", choices=["poisson", "deterministic"],
                   help="arrivals the instance is planned for: poisson (default; the Poisson margin late_share 0.05) "
                        "or deterministic (the papers' rule; its plans collapse under random arrivals)")
    _out(q)
    q.set_defaults(run=lambda a: _emit(a, lambda: scenarios.random_instance(a.services, a.gpus, a.seed, a.dataset,
                                                                             load=a.load, arrivals=a.arrivals)))

    q = kinds.add_parser("profile", help="services drawn from any profile set (shipped or measured)",
                         description="Build an instance from a profile set: a shipped data set (h100-sm, h200-sm, "
                                     "a100-mps, ...) or a folder that `stsched profile` or `stsched import` wrote. "
                                     "SLO = F x the model's solo latency at its largest profiled batch <= 8 on the "
                                     "largest partition; every service's rate = L x the heuristic's max-scale alpha "
                                     "on G GPUs x 100 req/s.")
    q.add_argument("dataset", metavar="DATASET_OR_DIR", help="shipped data set name or profile folder")
    q.add_argument("--services", type=V.services, default=None,
                   help="services (default: one per profiled model); every model once, then drawn with --seed")
    q.add_argument("--seed", type=V.seed, default=0, help="seed of the model draw (default %(default)s)")
    q.add_argument("--slo-factor", type=V.positive, default=5.0, help="SLO as a multiple of the solo latency "
                                                                       "(default %(default)s)")
    q.add_argument("--load", type=V.positive, default=0.6, help="share of the max-scale rate (default %(default)s)")
    q.add_argument("--gpus", type=V.count, default=1, help="GPUs of the instance (default %(default)s)")
    q.add_argument("--arrivals", default="poisson", choices=["poisson", "deterministic"],
                   help="arrivals the instance is planned for (default %(default)s; as scenario random)")
    _out(q)
    q.set_defaults(run=lambda a: _emit(a, lambda: _planning().profile_scenario(
        a.dataset, a.services, a.seed, slo_factor=a.slo_factor, load=a.load, gpus=a.gpus, arrivals=a.arrivals)))

    q = kinds.add_parser("services", help="your own services (CSV: model, rate, slo_ms, optional name)",
                         description="Build an instance from your own list of services on a profile set's latency "
                                     "tables. CSV columns: model, rate (req/s), slo_ms, optional name.")
    q.add_argument("file", metavar="FILE.csv", help="the services")
    q.add_argument("--dataset", required=True, help="shipped data set name or profile folder with the models")
    q.add_argument("--gpus", type=V.count, default=None,
                   help="GPUs available (default: enough for every service alone on whole GPUs)")
    q.add_argument("--arrivals", default="poisson", choices=["poisson", "deterministic"],
                   help="arrivals the instance is planned for (default %(default)s; as scenario random)")
    _out(q)
    q.set_defaults(run=lambda a: _emit(a, lambda: _planning().services_scenario(a.file, a.dataset, a.gpus,
                                                                                         a.arrivals),
                                       inputs=(a.file,)))

    for mix in scenarios.GPULET_MIXES:
        q = kinds.add_parser(f"gpulet-{mix}", help=f"gpulet's mix {mix} on the A100 MPS data")
        q.add_argument("--gpus", type=V.count, default=1, help="GPUs available (>= 1)")
        q.add_argument("--rate", type=V.positive, default=None, help="req/s per unit weight (default 10; scen1 50)")
        q.add_argument("--latency-factor", type=V.real(1.0), default=1.0, help="gpulet's margin is 1.1 (>= 1)")
        _out(q)
        q.set_defaults(run=lambda a, mix=mix: _emit(a, lambda: scenarios.gpulet_mix(
            mix, a.gpus, a.rate, latency_factor=a.latency_factor)))

    q = kinds.add_parser("igniter-example", help="iGniter's README workload on a V100")
    q.add_argument("--gpus", type=V.count, default=1, help="GPUs available (>= 1)")
    q.add_argument("--step", type=V.real(0.0, 100.0, strict=True), default=None,
                   help="MPS size step in %% (iGniter: 2.5; needs --latency-model for unprofiled sizes)")
    _out(q)
    q.set_defaults(run=lambda a: _emit(a, lambda: scenarios.igniter_example(
        sizes=None if a.step is None else scenarios.mps_steps(a.step), gpus=a.gpus)))


def _planning():
    from stsched.planning import scenarios as planned
    return planned


def _out(q) -> None:
    q.add_argument("--out", default=None, help="instance JSON to write (default: print it)")
    q.add_argument("--latency-model", default=None, metavar="MODEL",
                   help="a fitted model (stsched fit): tables and interference evaluated from it")
    q.add_argument("--interference-form", default=None,
                   help="form the instance carries (with --latency-model; default: the model's)")
    q.add_argument("--interference-quantile", default=None, metavar="Q",
                   help="carry the Q-quantile (0 < Q < 1) of the form's calibrated slowdown distribution instead of "
                        "its point prediction (needs --latency-model)")
    q.add_argument("--target-attainment", default=None, metavar="A",
                   help="plan for SLO attainment A (0.5 <= A < 1) of Poisson arrivals under the model's slowdown "
                        "distribution: the late share and interference quantile of A's miss budget "
                        "(stsched.latency.miss_budget; needs --latency-model; not with --interference-quantile)")
    q.add_argument("--budget-split", default=None, choices=["union", "each"],
                   help="with --target-attainment: half the miss budget to queueing and half to interference "
                        "(union, default) or all of it to each (each; docs/LATENCY.md measures both)")
    q.add_argument("--json", action="store_true",
                   help="with --out: print a JSON summary (name, services, total rate, GPUs, mechanism, arrivals, "
                        "out); without --out the instance JSON itself is printed")


def _budget(args):
    """The miss budget of --target-attainment (checked before any work), or None."""
    text = getattr(args, "target_attainment", None)
    if text is None:
        if getattr(args, "budget_split", None) is not None:  # it would be ignored
            raise InputError("--budget-split splits the miss budget of --target-attainment: give that too")
        return None
    from stsched.latency.miss_budget import MissBudget
    if args.interference_quantile is not None:
        raise InputError("--target-attainment sets the interference quantile: give it or --interference-quantile")
    if not args.latency_model:
        raise InputError("--target-attainment needs --latency-model (the fitted model's calibrated slowdowns)")
    if getattr(args, "arrivals", "poisson") != "poisson":
        raise InputError(f"--target-attainment plans for Poisson arrivals, not --arrivals {args.arrivals}")
    try:
        a = float(text)
    except ValueError:
        a = float("nan")
    try:
        return MissBudget(a, args.budget_split or "union")
    except InputError as e:
        raise InputError(f"--target-attainment {text}: {e}") from None


def _quantile(args) -> tuple[float | None, object]:
    """The interference quantile (`--interference-quantile`, else the miss budget's) and the miss budget
    (`_budget`), each computed once."""
    text = args.interference_quantile
    if text is None:
        budget = _budget(args)
        return (None if budget is None else budget.quantile), budget
    try:
        q = float(text)
    except ValueError:
        q = float("nan")
    if not 0 < q < 1:
        raise InputError(f"--interference-quantile: a level in (0, 1) expected, got {text!r}")
    if not args.latency_model:
        raise InputError("--interference-quantile needs --latency-model (the fitted model's calibrated slowdowns)")
    return q, _budget(args)  # refuses --target-attainment beside it


def _emit(args, build, inputs=()) -> int:
    """Check the output and the options, then build the instance (`build()`, or an instance given) and write or
    print it."""
    output_file(args.out, inputs=[*inputs, *(getattr(args, k, None) for k in ("latency_model", "rates", "slos"))])
    if args.interference_form and not args.latency_model:
        raise InputError("--interference-form applies with --latency-model (the form's coefficients come from it)")
    quantile, budget = _quantile(args)  # checked before any work (when `build` is a callable that makes the instance)
    inst = build() if callable(build) else build
    if budget is not None:
        inst = inst.with_arrivals("poisson", budget.late_share)
    if args.latency_model:
        from stsched.latency import load, with_model
        model = load(args.latency_model)
        if args.interference_form and not model.coef:
            raise InputError(f"--interference-form {args.interference_form}: latency model {args.latency_model} "
                             "has no co-run data, so no interference form")
        inst = with_model(inst, model, form=args.interference_form, quantile=quantile)
    if not args.out:
        print_json(instance_to_dict(inst))
        return 0
    save_instance(inst, args.out)
    rate = sum(s.rate for s in inst.services)
    if args.json:
        print_json({"name": inst.name, "services": len(inst.services), "total_rate": rate, "gpus": inst.gpus,
                    "mechanism": inst.mechanism.kind.value, "sizes": list(inst.mechanism.sizes),
                    "arrivals": inst.arrivals.value, "out": args.out})
    else:
        print(f"{inst.name}: {len(inst.services)} services, {rate:.6g} req/s in all, {inst.gpus} GPUs, "
              f"{inst.mechanism.kind.value} sizes {[f'{x:g}' for x in inst.mechanism.sizes]}, "
              f"{inst.arrivals.value} arrivals -> {args.out}")
    return 0
