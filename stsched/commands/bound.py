"""`stsched bound INSTANCE [--objective min-gpus|max-scale] [--time-limit S] [--method cg] [--json]`.

A certified bound on the optimum of the full problem from a registered bound provider (default `cg`: the
configuration LP by column generation).  Exit 0 with a bound, 1 when the instance is infeasible (the services that
cannot be served are named), 2 on bad input.
"""

from __future__ import annotations

import json
import sys

from stsched import validate as V
from stsched.commands._common import time_left
from stsched.forking import clock_named
from stsched.io import load_instance
from stsched.registry import Objective, SolveOptions, check_bound_provider, checked_bound


def add(sub) -> None:
    p = sub.add_parser("bound", help="a certified bound on the optimum (column generation)")
    p.add_argument("instance", help="instance JSON file")
    p.add_argument("--objective", default="min-gpus", choices=[Objective.MIN_GPUS.value, Objective.MAX_SCALE.value],
                   help="min-gpus (a lower bound on GPUs) or max-scale (an upper bound on alpha)")
    p.add_argument("--time-limit", type=V.time_limit, default=SolveOptions().time_limit_s,
                   help="seconds for the whole command, the instance file's load included (default 60; with "
                        "--param clock=cpu, CPU seconds of the process, the load's too); stopped early, the bound is "
                        "still valid and says converged: false (cut within the feasibility scan: the services "
                        "scanned only, and it says so)")
    p.add_argument("--method", default="cg", help="the registered bound provider (default cg)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="provider option")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from stsched.commands.solve import _params
    from stsched.errors import InputError

    # the limit counts from here on either clock: the provider's check below imports the solvers (5-10 s of wall
    # at 4,096 services niced at load 8, outside the limit before: 24.9-31.5 s for --time-limit 20)
    started = {name: clock_named(name)() for name in ("wall", "cpu")}
    if not args.time_limit > 0:
        raise InputError(f"--time-limit {args.time_limit}: expected a positive number of seconds")
    params = _params(args.param)
    objective = Objective(args.objective)
    check_bound_provider(args.method, objective, params)  # before the load (1.1-1.3 s at 100,000 services)
    # the whole command honours the limit, the instance's load included, on the clock the limit is on (`--param
    # clock=cpu`: CPU seconds of this process, which the provider reads)
    name = dict(params).get("clock", "wall")
    clock = clock_named(name)  # (checked above: the one provider's clock is wall or cpu)
    since = started[name]
    instance = load_instance(args.instance)
    options = SolveOptions(objective=objective, time_limit_s=time_left(args.time_limit, since, clock), params=params)
    res = checked_bound(args.method, instance, options)  # (the provider checked above, once)
    if args.json:
        json.dump(res.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"{args.method} bound ({res.objective.value}): {res.bound}, LP {res.lp_value}, converged "
              f"{str(res.converged).lower()}, {res.columns} columns, {res.pricing_calls} pricing calls, "
              f"{res.wall_s:.2f} s")
        print(f"  method: {res.method}")
        if res.message:
            print(f"  {res.message}")
    if res.infeasible_services:
        print(f"stsched: infeasible: cannot be served: {', '.join(res.infeasible_services)}", file=sys.stderr)
        return 1
    return 0
