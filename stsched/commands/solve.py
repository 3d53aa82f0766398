"""`stsched solve INSTANCE --solver NAME [--objective ...] [--time-limit S] [--headroom H] [--late-share X]
[--attainment T] [--out PLAN] [--json]`.

Exit 0 when a plan the checker accepts was found (with `--attainment`: and its simulation reached the target), 1
when the instance is infeasible, no valid plan came back or the target was not reached.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

from stsched.io import load_instance, load_plan, save_plan
from stsched.registry import Judged, Objective, SolveOptions, Status, available_solvers


def add(sub) -> None:
    p = sub.add_parser("solve", help="solve an instance with a registered solver")
    p.add_argument("instance", help="instance JSON file")
    p.add_argument("--solver", default="heuristic", help="solver name (see `stsched solvers`)")
    p.add_argument("--objective", default="min-gpus", choices=[o.value for o in Objective])
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--backend", default=None, help="engine inside a solver, e.g. cbc or highs for milp")
    p.add_argument("--warm-start", default=None, help="a plan JSON to start from")
    p.add_argument("--current", default=None, help="the plan in force (objective adapt)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="solver-specific option")
    p.add_argument("--headroom", type=float, default=1.0, metavar="H",
                   help="plan for H x every rate (H >= 1; min-gpus and adapt): partitions then run at <= 1/H of "
                        "their cycle capacity, which Poisson arrivals need (a plan at 100 %% queues without bound)")
    p.add_argument("--late-share", type=float, default=None, metavar="X",
                   help="set the instance's margin.late_share: credit each batch only with the Poisson arrivals it "
                        "absorbs with at most X overflow (docs/RULES.md; heuristic and exact solvers)")
    p.add_argument("--attainment", type=float, default=None, metavar="T",
                   help="re-plan with per-service head-room until a simulation at the rates reaches SLO attainment T "
                        "(0 < T < 1; min-gpus; stsched.planning.attainment; --headroom gives the starting factor). "
                        "Default: 0.99 for every service when the instance is planned for Poisson arrivals (min-gpus, "
                        "a solver that models the margin; python -m experiments.arrivals_default), else off; 0: off")
    p.add_argument("--attainment-scope", default=None, choices=["overall", "service"],
                   help="T applies to all requests together (default with an explicit T) or to every service (the "
                        "Poisson default; add --late-share 0.05 to a deterministic instance: docs/SIMULATOR.md)")
    p.add_argument("--attainment-arrivals", default="poisson", metavar="SPEC",
                   help="arrival process of the planning simulations: poisson (default) or gamma:CV")
    p.add_argument("--attainment-rounds", type=int, default=12, metavar="N", help="at most N plans (default 12)")
    p.add_argument("--bound", default="own", metavar="METHOD",
                   help="the bound reported: own (the solver's, computed within its run; default) or a registered "
                        "bound provider such as cg (column generation, run after the solver, its time not counted "
                        "in the solver's wall_s); the better of the two is reported, named in bound_method")
    p.add_argument("--out", default=None, help="write the plan here (JSON)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    q = sub.add_parser("solvers", help="list the registered solvers")
    q.set_defaults(run=run_list)


def run_list(args) -> int:
    for name, info in available_solvers().items():
        print(f"{name:<12} {info.kind:<10} {', '.join(o.value for o in info.objectives):<28} {info.description}")
    return 0


def _params(items: list[str]) -> tuple[tuple[str, str], ...]:
    from stsched.errors import InputError
    out = []
    for item in items:
        if "=" not in item:
            raise InputError(f"--param {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out.append((k, v))
    return tuple(out)


def run(args) -> int:
    from stsched.errors import InputError
    from stsched.planning.headroom import validate_headroom
    from stsched.planning.solve import PlanOptions, plan

    offered = load_instance(args.instance)
    if args.late_share is not None:
        offered = offered.with_late_share(args.late_share)
    try:
        validate_headroom(args.headroom, Objective(args.objective))
    except InputError as e:
        raise InputError(f"--{e}") from None
    options = SolveOptions(objective=Objective(args.objective), time_limit_s=args.time_limit, seed=args.seed,
                           threads=args.threads, backend=args.backend,
                           warm_start=load_plan(args.warm_start) if args.warm_start else None,
                           current_plan=load_plan(args.current) if args.current else None,
                           params=_params(args.param))
    how = PlanOptions(headroom=args.headroom, attainment=args.attainment, attainment_scope=args.attainment_scope,
                      attainment_arrivals=args.attainment_arrivals, attainment_rounds=args.attainment_rounds)
    planned = plan(args.solver, offered, options, how)
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
    if args.json:
        json.dump({**judged.to_dict(), **({} if met is None else {"attainment_target_met": met})}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"{r.solver}: {r.status.value}, objective {r.objective}, bound {r.bound}, "
              f"gap {'-' if r.gap is None else f'{r.gap:.2%}'}, {r.wall_s * 1000:.1f} ms, GPUs {r.gpus}, "
              f"scale {r.scale}, valid {judged.valid}")
        if r.message:
            print(f"  {r.message}")
        if r.infeasible_services:
            print(f"  cannot be served: {', '.join(r.infeasible_services)}")
        if judged.report is not None and not judged.report.valid:
            for v in judged.report.violations:
                print(f"  {v}")
    ok = r.status in (Status.OPTIMAL, Status.FEASIBLE) and judged.valid
    return 0 if ok and met is not False else 1


def _with_bound(judged: Judged, instance, options: SolveOptions, method: str) -> Judged:
    """The result with the better of its own bound and provider `method`'s (run with the same time limit)."""
    from stsched.registry import run_bound

    if options.objective not in (Objective.MIN_GPUS, Objective.MAX_SCALE):
        from stsched.errors import InputError
        raise InputError(f"--bound {method}: only for min-gpus and max-scale")
    b = run_bound(method, instance, options)
    r = judged.result
    if b.bound is None:
        return judged
    maxi = options.objective is Objective.MAX_SCALE
    better = r.bound is None or (b.bound < r.bound if maxi else b.bound > r.bound)
    if not better:
        return replace(judged, result=replace(r, message=(r.message + "; " if r.message else "") +
                                              f"{method} bound {b.bound:.6g} is not tighter"))
    status = r.status
    if r.objective is not None and r.status is Status.FEASIBLE:
        proven = (r.objective <= b.bound + 1e-9) if not maxi else (b.bound - r.objective <= options.max_scale_tol
                                                                   * max(r.objective, 1e-12))
        status = Status.OPTIMAL if proven else status
    msg = (r.message + "; " if r.message else "") + f"bound from {method} ({b.wall_s:.2f} s, converged " \
        f"{str(b.converged).lower()})"
    return replace(judged, result=replace(r, bound=b.bound, bound_method=b.method, status=status, message=msg))
