"""`stsched solve INSTANCE --solver NAME [--objective ...] [--time-limit S] [--headroom H] [--late-share X]
[--attainment T] [--out PLAN] [--json]`.

Exit 0 when a plan the checker accepts was found (with `--attainment`: and its simulation reached the target), 1
when the instance is infeasible, no valid plan came back or the target was not reached.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace

from stsched import validate as V
from stsched.commands._common import print_json
from stsched.judge import RATE_FREE, load_judged_plan
from stsched.errors import InputError
from stsched.io import load_instance, save_plan
from stsched.outputs import output_file
from stsched.registry import Judged, Objective, SolveOptions, Status, available_solvers, unknown_solver

log = logging.getLogger(__name__)


def add(sub) -> None:
    d = SolveOptions()
    h = SolveOptions.HELP
    p = sub.add_parser("solve", help="solve an instance with a registered solver",
                       description="Solve an instance with a registered solver (`stsched solvers`) and judge its plan "
                                   "with the checker: exit 0 with a valid plan, 1 when infeasible or no valid plan "
                                   "came back, 2 on bad input.")
    p.add_argument("instance", help="instance JSON file")
    p.add_argument("--solver", default="heuristic", help="solver name (see `stsched solvers`)")
    p.add_argument("--objective", default=d.objective.value, choices=[o.value for o in Objective],
                   help=h["objective"])
    p.add_argument("--time-limit", type=V.time_limit, default=d.time_limit_s, metavar="S", help=h["time_limit_s"] + "; when the attainment loop runs (--attainment), every round's solve and "
                        "simulation together")
    # no argparse choices: each solver declares its engines (`register(engines=...)`, a third party's too), and
    # `SolverInfo.check_engine` refuses the others before any work (choices cbc/highs refused a plugin's engine)
    p.add_argument("--engine", default=d.engine, metavar="ENGINE", help=h["engine"])
    p.add_argument("--backend", dest="engine", help=argparse.SUPPRESS)  # deprecated: --engine
    p.add_argument("--warm-start", default=None, metavar="PLAN",
                   help="a plan JSON to start from (judged by the checker first, coverage aside)")
    p.add_argument("--current", default=None, metavar="PLAN",
                   help="the plan in force (objective adapt; judged by the checker first, coverage aside)")
    p.add_argument("--allow-invalid", action="store_true",
                   help="use a --warm-start or --current plan that the checker rejects (a warning says so)")
    p.add_argument("--seed", type=V.seed, default=d.seed, help=h["seed"])
    p.add_argument("--threads", type=V.threads, default=d.threads, help=h["threads"])
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a solver option (`stsched solvers NAME` lists its keys, types, defaults and help)")
    p.add_argument("--headroom", type=V.factor, default=1.0, metavar="H",
                   help="plan for H x every rate (H >= 1; min-gpus and adapt): partitions then run at <= 1/H of "
                        "their cycle capacity, which Poisson arrivals need (a plan at 100 %% queues without bound; "
                        "default 1)")
    p.add_argument("--late-share", type=V.real(0.0, 1.0, strict_max=True), default=None, metavar="X",
                   help="set the instance's margin.late_share (0 <= X < 1): credit each batch only with the Poisson "
                        "arrivals it absorbs with at most X overflow (docs/RULES.md; heuristic and exact solvers; "
                        "default: the instance's)")
    p.add_argument("--attainment", type=V.real(0.0, 1.0, strict_max=True), default=None, metavar="T",
                   help="re-plan with per-service head-room until a simulation at the rates reaches SLO attainment T "
                        "(0 < T < 1; min-gpus; stsched.planning.attainment; --headroom gives the starting factor). "
                        "Default: 0.99 for every service when the instance is planned for Poisson arrivals (min-gpus, "
                        "a solver that models the margin; python -m experiments.arrivals_default), else off; 0: off. "
                        "Each round is a solve and a simulation of 120 s of arrivals (--attainment-duration; "
                        "counted per service and tenth of the window, no request kept); --time-limit bounds the "
                        "whole loop: the first solve gets half of it, a round starts only if the time left covers "
                        "the last round's, and a loop stopped by "
                        "it returns the best round so far with the target not met (exit 1)")
    p.add_argument("--attainment-scope", default=None, choices=["overall", "service"],
                   help="T applies to all requests together (default with an explicit T) or to every service (the "
                        "Poisson default; add --late-share 0.05 to a deterministic instance: docs/SIMULATOR.md)")
    p.add_argument("--attainment-arrivals", default="poisson", metavar="SPEC",
                   help="arrival process of the planning simulations: poisson (default) or gamma:CV")
    p.add_argument("--attainment-rounds", type=V.count, default=12, metavar="N", help="at most N plans (default 12)")
    p.add_argument("--attainment-duration", type=V.positive, default=None, metavar="S",
                   help="seconds of arrivals each round simulates (default 120, the loop's own); a loop whose rounds "
                        "would not fit in memory whatever the plan is refused before its first solve, and one that "
                        "runs short of memory later returns the best round so far")
    p.add_argument("--bound", default="own", metavar="METHOD",
                   help="the bound reported: own (the solver's, computed within its run; default) or a registered "
                        "bound provider such as cg (column generation, run after the solver, its time not counted "
                        "in the solver's wall_s); the better of the two is reported, named in bound_method")
    p.add_argument("--out", default=None, help="write the plan here (JSON; checked before the work)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    q = sub.add_parser("solvers", help="list the registered solvers",
                       description="List the registered solvers: kind, objectives, mechanisms and options.")
    q.add_argument("names", nargs="*", metavar="NAME",
                   help="only these solvers, each with its options (--param KEY=DEFAULT, type, help)")
    q.add_argument("--json", action="store_true",
                   help="print one JSON list: each solver's options (type, default, help), objectives, mechanisms")
    q.set_defaults(run=run_list)



def run_list(args) -> int:
    solvers = available_solvers()
    unknown = [n for n in args.names if n not in solvers]
    if unknown:
        raise unknown_solver(unknown[0])
    if args.names:
        solvers = {n: solvers[n] for n in dict.fromkeys(args.names)}
    if args.json:
        print_json([info.to_dict() for info in solvers.values()])
        return 0
    for name, info in solvers.items():
        print(f"{name:<12} {info.kind:<10} {', '.join(o.value for o in info.objectives):<28} "
              f"{'/'.join(info.mechanisms):<12} {info.description}")
        if args.names:  # a named solver: its options, as --param takes them
            engines = f"  --engine {' | '.join(info.engines)}\n" if info.engines else ""
            print(engines + ("\n".join(f"  --param {o.name}={o.default}  ({o.type}) {o.help}".rstrip()
                                        for o in info.option_info()) or "  (no options)"))
    return 0


def _params(items: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        if "=" not in item:
            raise InputError(f"--param {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out.append((k.strip(), v))
    return tuple(out)


def run(args) -> int:
    from stsched.planning.headroom import validate_headroom
    from stsched.planning.solve import PlanOptions, plan

    output_file(args.out, inputs=(args.instance, args.warm_start, args.current))
    objective = Objective(args.objective)
    solvers = available_solvers()
    if args.solver not in solvers:
        raise unknown_solver(args.solver)
    info = solvers[args.solver]
    params = _params(args.param)
    info.parse(params)
    info.check_engine(args.engine)
    if objective is Objective.ADAPT and not args.current:
        raise InputError("--objective adapt needs --current PLAN (the plan in force)")
    if args.current and objective is not Objective.ADAPT:
        raise InputError(f"--current: the plan in force is read by --objective adapt only, not {objective.value} "
                         f"(a plan to start from is --warm-start)")
    if args.bound != "own":
        from stsched.registry import check_bound_provider

        try:
            check_bound_provider(args.bound, objective)
        except InputError as e:
            raise InputError(f"--bound {args.bound}: {e}") from None
    from stsched.simulation import ArrivalSpec

    try:
        ArrivalSpec.parse(args.attainment_arrivals)
    except InputError as e:
        raise InputError(f"--attainment-arrivals: {e}") from None
    offered = load_instance(args.instance)
    if args.late_share is not None:
        offered = offered.with_late_share(args.late_share)
    reason = info.supports(offered, objective)
    if reason:
        raise InputError(reason)
    try:
        validate_headroom(args.headroom, objective)
    except InputError as e:
        raise InputError(f"--{e}") from None
    warm = current = None
    if args.warm_start:
        warm = load_judged_plan(offered, args.warm_start, allow_invalid=args.allow_invalid, what="--warm-start",
                                rules=RATE_FREE)
    if args.current:
        current = load_judged_plan(offered, args.current, allow_invalid=args.allow_invalid, what="--current",
                                   rules=RATE_FREE)
    options = SolveOptions(objective=objective, time_limit_s=args.time_limit, seed=args.seed,
                           threads=args.threads, engine=args.engine, warm_start=warm, current_plan=current,
                           params=params, progress=None if getattr(args, "quiet", False) else _progress)
    how = PlanOptions(headroom=args.headroom, attainment=args.attainment, attainment_scope=args.attainment_scope,
                      attainment_arrivals=args.attainment_arrivals, attainment_rounds=args.attainment_rounds,
                      attainment_duration_s=(PlanOptions.attainment_duration_s if args.attainment_duration is None
                                             else args.attainment_duration))
    from stsched.planning.solve import check_scope

    # each option's flag: its field's name, the unit suffix dropped (attainment_duration_s: --attainment-duration)
    check_scope(offered, args.solver, objective, how, lambda f: "--" + f.removesuffix("_s").replace("_", "-"),
                "--attainment")
    planned = plan(args.solver, offered, options, how, duration_name="--attainment-duration",
                   off_name="--attainment 0")
    judged, met = planned.judged, planned.attainment_met
    if args.bound != "own":
        judged = _with_bound(judged, offered, options, args.bound)
    r = judged.result
    if args.out and r.plan is not None:
        save_plan(r.plan, args.out)
    if r.plan is not None and judged.valid:
        from stsched.safety import warning

        line = warning(offered, r.plan)
        if line:
            print(f"stsched: {line}", file=sys.stderr)
    if met is False:
        print(f"stsched: warning: SLO-attainment target not met: {planned.attainment_note}", file=sys.stderr)
    if args.json:
        print_json({**judged.to_dict(), **({} if met is None else {"attainment_target_met": met})})
    else:
        scale = f", scale {r.scale:.6g}" if objective is Objective.MAX_SCALE and r.scale is not None else ""
        print(f"{r.solver}: {r.status.value}, objective {_g(r.objective)}, bound {_g(r.bound)}, "
              f"gap {'-' if r.gap is None else f'{r.gap:.2%}'}, {r.wall_s * 1000:.1f} ms, GPUs {r.gpus}{scale}, "
              f"valid {judged.valid}")
        if r.message:
            print(f"  {r.message}")
        if r.infeasible_services and "cannot be served" not in (r.message or ""):  # said once, with its reason
            print(f"  cannot be served: {', '.join(r.infeasible_services)}")
        if judged.report is not None and not judged.report.valid:
            for v in judged.report.violations:
                print(f"  {v}")
    ok = r.status in (Status.OPTIMAL, Status.FEASIBLE) and judged.valid
    return 0 if ok and met is not False else 1


def _progress(line: str) -> None:
    print(f"  ... {line}", file=sys.stderr, flush=True)


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def _with_bound(judged: Judged, instance, options: SolveOptions, method: str) -> Judged:
    """The result with the better of its own bound and provider `method`'s (run with the same time limit)."""
    from stsched.registry import bound_params, run_bound

    own = method == judged.result.solver  # --param is the solver's: another provider runs with its defaults, the
    # solver's own bound with those of its options that its bound reads
    reads = bound_params(method)
    params = tuple(kv for kv in options.params if own and kv[0] in reads)
    b = run_bound(method, instance, replace(options, params=params))
    r = judged.result
    if b.bound is None:  # (infeasible: the solver's own run says which services, with its status)
        return judged
    said = f": {b.message}" if b.message else ""  # (the provider's note: e.g. its feasibility scan cut by the limit)
    if judged.valid and r.objective is not None:
        from stsched.claims import contradicts

        if contradicts(options.objective, b.bound, r.objective):  # a provider's bound is judged, never trusted
            note = f"{method} bound {b.bound:g} is disproved by the valid plan's {r.objective:g}: dropped"
            log.warning("%s", note)
            return replace(judged, result=replace(r, message=(r.message + "; " if r.message else "") + note))
    maxi = options.objective is Objective.MAX_SCALE
    better = r.bound is None or (b.bound < r.bound if maxi else b.bound > r.bound)
    if not better:
        return replace(judged, result=replace(r, message=(r.message + "; " if r.message else "") +
                                              f"{method} bound {b.bound:.6g} is not tighter{said}"))
    status = r.status
    if r.objective is not None and r.status is Status.FEASIBLE:
        proven = (r.objective <= b.bound + 1e-9) if not maxi else (b.bound - r.objective <= options.max_scale_tol
                                                                   * max(r.objective, 1e-12))
        status = Status.OPTIMAL if proven else status
    msg = (r.message + "; " if r.message else "") + f"bound from {method} ({b.wall_s:.2f} s, converged " \
        f"{str(b.converged).lower()}){said}"
    return replace(judged, result=replace(r, bound=b.bound, bound_method=b.method, status=status, message=msg))
