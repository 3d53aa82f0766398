"""Which side of solver `cg`'s certified gap is loose at 256 services: the plans or the bound (min-gpus).

    python -m experiments.cg_attribution INSTANCE [--cuts 3] [--cg-time 600] [--master-time 900] [--save F.pkl]
    python -m experiments.cg_attribution INSTANCE --load F.pkl --master-time 900      # the columns of a saved run
    stsched experiment cg_attribution --quick       # a random 16-service A100 MPS instance (seed 7), short limits

`--save` keeps the instance's digest and the objective with the result; `--load` refuses a file saved for another
instance or objective (one line, exit 2).  `--quick` sets its own instance and `--cuts`: given with either, refused.

One instance (a `stsched scenario ... --out` file), three measurements, printed as lines (no files but `--save`):
1. the configuration LP with `--cuts` rounds of rounding cuts (solvers.exact.cg_cuts, `early`: the next round as
   soon as the rounded bound meets the rounded master) by column generation, `--cg-time` seconds of CPU of this
   process and its pricing workers together (the `cpu` clock, stsched.forking.cpu_seconds; set it large to see where
   the cut bound ends): its Lagrangian bound, the master at each cut round, whether it converged, and that CPU time;
2. the integer master over every column it generated plus the heuristic's partitions (HiGHS, `--master-time`
   seconds of its own wall clock, one thread; `--highs-start 1` gives it the heuristic's plan as its MIP start,
   presolve then off): the best plan among those columns (judged by stsched.checker) and HiGHS's dual bound, which
   bounds every plan made of those columns only (not a bound of the instance);
3. partitions per size: the plan's against the restricted master's slots (sum over layouts of y_L n_L(p)).
If the master finds a plan near the bound, the plans were loose; if its dual bound over the columns stays near the
old plans, no better plan exists among them, and either the columns or the bound are what is missing.
Used for docs/RESULTS.md ("Solver `cg` at 256 services: where the gap is").
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import pickle
import time
from collections import Counter
from dataclasses import replace

from experiments.common import Study, instance_arg, instance_or_quick, run_study, study_args
from solvers.exact.cg import _model, _plan_configs
from solvers.exact.cg_cuts import CutOptions
from solvers.exact.colgen import CgOptions, column_generation
from solvers.exact.milp import _engine
from solvers.exact.plans import gpus_of, to_plan, warm_counts
from stsched import validate as V
from stsched.errors import InputError
from stsched.checker import check
from stsched.forking import cpu_seconds
from stsched.io import instance_digest
from stsched.registry import Objective, SolveOptions, run_solver

STUDY = Study("cg_attribution", "solver cg at 256 services: is the plan or the bound loose",
              typical="15-30 min of CPU per 256-service instance", quick="16 services, short limits")

log = logging.getLogger(__name__)


def _sizes_of_plan(plan) -> Counter:
    return Counter(p.size for g in plan.gpus for p in g.partitions if p.tenants)


def _sizes_of_lp(r) -> dict[float, float]:
    out: dict[float, float] = {}
    for layout, y in zip(r.layouts, r.y):
        for p in layout:
            out[p] = out.get(p, 0.0) + y
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    instance_arg(ap)
    ap.add_argument("--cuts", type=V.whole(0), default=None, help="rounds of rounding cuts (default 3)")
    ap.add_argument("--cg-time", type=V.time_limit, default=600.0, help="CPU seconds for the column generation")
    ap.add_argument("--master-time", type=V.time_limit, default=900.0, help="HiGHS's limit (its wall clock)")
    ap.add_argument("--highs-start", type=V.whole(0), default=0, help="1: the heuristic's plan as HiGHS's MIP start")
    ap.add_argument("--save", default=None, help="pickle the column generation's result here")
    ap.add_argument("--load", default=None, help="read a result saved by --save (a pickle: only files this script wrote) instead of running it")
    args = study_args(ap, argv, quick="a random 16-service A100 MPS instance (seed 7), short limits", grid=False)
    if args.quick and (args.instance is not None or args.cuts is not None):
        ap.error(f"--quick sets its own {'instance' if args.instance is not None else '--cuts'}: "
                 f"{args.instance if args.instance is not None else f'--cuts {args.cuts}'} would be ignored")
    args.cuts = 3 if args.cuts is None else args.cuts
    inst = instance_or_quick(ap, args)
    if args.quick:
        args.cg_time, args.master_time, args.cuts = min(args.cg_time, 20.0), min(args.master_time, 20.0), 1
    if args.load and not os.path.isfile(args.load):
        ap.error(f"--load {args.load}: no such file")
    mine = {"instance": instance_digest(inst), "objective": Objective.MIN_GPUS.value}
    saved = None
    if args.load:
        try:
            with open(args.load, "rb") as f:
                saved = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, TypeError):
            saved = None  # not a pickle this script wrote (or unreadable): refused below, one line
        if not isinstance(saved, dict) or {k: saved.get(k) for k in mine} != mine or "result" not in saved:
            ap.error(f"--load {args.load}: not a result saved by --save for this instance "
                     f"(digest {mine['instance']}) and objective {mine['objective']}")
    c1 = time.process_time()  # the heuristic first: its plan is needed (warm start, columns), checked before the work
    warm = run_solver("heuristic", inst, SolveOptions(Objective.MIN_GPUS, time_limit_s=60.0)).plan
    if warm is None:  # one line, exit 2 (an AttributeError traceback after the column generation before)
        raise InputError(f"{args.instance or 'the --quick instance'}: the heuristic found no plan on its "
                         f"{inst.gpus} GPUs; this study needs one")
    heuristic_cpu = time.process_time() - c1
    c0 = cpu_seconds()  # (this process and its pricing workers: what --cg-time limits)
    if saved is not None:
        r = saved["result"]
    else:
        r = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=args.cg_time, clock="cpu"),
                              cuts=CutOptions(args.cuts, early=True))
        if args.save:
            with open(args.save, "wb") as f:
                pickle.dump({**mine, "result": r}, f)
    print(f"column generation: bound {r.bound:.4f} (rounded {r.integer_bound:g}), master {r.lp_value:.4f}, "
          f"converged {r.converged}, {r.cuts} cuts, {r.columns} columns, {r.rounds} rounds, "
          f"{cpu_seconds() - c0:.1f} s of CPU with its workers")
    print(f"heuristic: {warm.gpus_used} GPUs ({heuristic_cpu:.1f} s of CPU)")
    data = _model(inst, replace(r, configs=r.configs + _plan_configs(inst, warm)))
    params = (("highs_start", "1"),) if args.highs_start else ()
    opts = SolveOptions(Objective.MIN_GPUS, time_limit_s=args.master_time, params=params)
    c2, w2 = time.process_time(), time.perf_counter()
    out = _engine("highs")(data, opts, warm_counts(data, warm), args.master_time)
    plan = None if out.counts is None else to_plan(data, gpus_of(data, out.counts), Objective.MIN_GPUS, "cg")
    valid = plan is not None and check(inst, plan).valid
    print(f"integer master over {len(data.configs)} columns: {out.status}, plan "
          f"{plan.gpus_used if plan else None} GPUs (checker: {'valid' if valid else 'REJECTED'}), dual bound over "
          f"these columns {out.bound if out.bound is None else f'{out.bound:.3f}'}, "
          f"{time.process_time() - c2:.1f} s of CPU, {time.perf_counter() - w2:.1f} s of wall")
    lp = _sizes_of_lp(r)
    best = plan if valid and plan.gpus_used < warm.gpus_used else warm
    got = _sizes_of_plan(best)
    print("partitions per size (size: plan / restricted master's slots): " + ", ".join(
        f"{p:g}: {got.get(p, 0)} / {lp.get(p, 0.0):.2f}" for p in sorted(set(lp) | set(got))))
    print(f"GPU capacity used: plan {sum(p * n for p, n in got.items()) / inst.mechanism.capacity:.2f}, "
          f"master {sum(p * n for p, n in lp.items()) / inst.mechanism.capacity:.2f} (of "
          f"{best.gpus_used} and {math.fsum(r.y):.2f} GPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
