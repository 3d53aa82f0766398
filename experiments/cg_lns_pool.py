"""Solver `cg`'s neighbourhood search with and without the whole instance's columns (`lns_pool`), paired (min-gpus).

    python -m experiments.cg_lns_pool INSTANCE [--cuts 3] [--cg-time 90] [--master-time 30] [--lns-time 60]
                                      [--free 20] [--seed 0]
    stsched experiment cg_lns_pool --quick     # a random 16-service A100 MPS instance (seed 7), short limits
                                               # (its own: INSTANCE and the five options above are refused)

One instance (a `stsched scenario ... --out` file), one start, two arms:
1. the configuration LP with `--cuts` rounds of rounding cuts (`early`) by column generation, `--cg-time` seconds of
   CPU (the `cpu` clock, one process): its bound rounded up is what every gap below is measured against;
2. the integer master (HiGHS, `--master-time` seconds of its wall clock) over those columns and the heuristic's
   partitions, warm-started with the heuristic's plan: the plan both arms start from;
3. the neighbourhood search of solver `cg` (solvers.exact.cg_lns, `--free` GPUs a move, the sub-problems' own column
   generation, the freed partitions and the singles, as `--param lns_free`) for `--lns-time` seconds of CPU of this
   process, once without and once with the whole instance's columns in every sub-problem (`--param lns_pool=1`),
   the same seed, so both arms draw the same first move from the same plan.
Printed as lines (no files); every plan the search keeps is judged by stsched.checker.  Used for docs/RESULTS.md
("Solver `cg` at 256 services: the search over the whole pool of columns, issue 17 session 18").
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace

from experiments.common import Study, instance_arg, instance_or_quick, refuse_ignored, run_study, study_args
from solvers.exact.cg import _integer_plan, _model, _plan_configs, sub_solver
from solvers.exact.cg_cuts import CutOptions
from solvers.exact.cg_lns import LnsOptions, improve
from solvers.exact.colgen import CgOptions, _clock, column_generation
from stsched import validate as V
from stsched.checker import check
from stsched.errors import InputError
from stsched.registry import Objective, SolveOptions, run_solver

STUDY = Study("cg_lns_pool", "solver cg at 256 services: the neighbourhood search with the whole pool of columns",
              typical="4-5 min of CPU per 256-service instance", quick="16 services, short limits")

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    instance_arg(ap)
    # the limits default to None so that --quick, which sets its own, can refuse a value given with it
    ap.add_argument("--cuts", type=V.whole(0), default=None, help="rounds of rounding cuts (default 3)")
    ap.add_argument("--cg-time", type=V.time_limit, default=None,
                    help="CPU seconds for the column generation (default 90)")
    ap.add_argument("--master-time", type=V.time_limit, default=None,
                    help="HiGHS's limit, its wall clock (default 30)")
    ap.add_argument("--lns-time", type=V.time_limit, default=None,
                    help="CPU seconds for each arm's search (default 60)")
    ap.add_argument("--free", type=V.whole(1), default=None, help="GPUs freed per move (default 20)")
    ap.add_argument("--seed", type=V.whole(0), default=0, help="seed of the moves' draws")
    args = study_args(ap, argv, quick="a random 16-service A100 MPS instance (seed 7), short limits", grid=False)
    own = {"cuts": (3, 1), "cg_time": (90.0, 10.0), "master_time": (30.0, 10.0), "lns_time": (60.0, 10.0),
           "free": (20, 4)}  # (default, --quick's) per option --quick sets
    if args.quick:
        if args.instance is not None:
            ap.error(f"--quick sets its own instance: {args.instance} would be ignored")
        refuse_ignored(ap, args, list(own), "--quick sets it; give one or the other",
                       "--quick sets them; give one or the other")
    for k, (default, quick) in own.items():
        if getattr(args, k) is None:
            setattr(args, k, quick if args.quick else default)
    inst = instance_or_quick(ap, args)
    warm = run_solver("heuristic", inst, SolveOptions(Objective.MIN_GPUS, time_limit_s=60.0)).plan
    if warm is None:
        raise InputError(f"{args.instance or 'the --quick instance'}: the heuristic found no plan on its "
                         f"{inst.gpus} GPUs; this study needs one")
    clock = _clock("cpu")
    c0 = clock()
    r = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=args.cg_time, clock="cpu", workers=1),
                          cuts=CutOptions(args.cuts, early=True))
    bound = r.integer_bound
    print(f"column generation: bound {r.bound:.4f} (rounded {bound:g}), master {r.lp_value:.4f}, converged "
          f"{r.converged}, {r.cuts} cuts, {r.columns} columns, {clock() - c0:.1f} s of CPU")
    data = _model(inst, replace(r, configs=r.configs + _plan_configs(inst, warm)))
    w0, c1 = time.perf_counter(), clock()
    start, note = _integer_plan("cg", data, SolveOptions(Objective.MIN_GPUS, warm_start=warm), args.master_time)
    print(f"heuristic {warm.gpus_used} GPUs; {note}: {start.gpus_used} GPUs ({clock() - c1:.1f} s of CPU, "
          f"{time.perf_counter() - w0:.1f} s of wall); gap {_gap(start.gpus_used, bound)}")
    opts = SolveOptions(Objective.MIN_GPUS, time_limit_s=args.lns_time, seed=args.seed)
    for pool in (0, 1):
        c2, w2 = clock(), time.perf_counter()
        found = improve(inst, start, c2 + args.lns_time, clock,
                        sub_solver("cg", opts, clock, inst, data.configs if pool else ()),
                        LnsOptions(free=args.free, seed=args.seed), stop_at=bound)
        valid = check(inst, found.plan).valid
        print(f"lns_pool={pool}: {found.plan.gpus_used} GPUs (checker: {'valid' if valid else 'REJECTED'}), "
              f"gap {_gap(found.plan.gpus_used, bound)}; {found.moves} moves, {found.improved} improving, "
              f"{found.unimproved} without a better sub-plan; {clock() - c2:.1f} s of CPU, "
              f"{time.perf_counter() - w2:.1f} s of wall")
    return 0


def _gap(gpus: int, bound: float) -> str:
    return f"{100.0 * (gpus - bound) / gpus:.1f} %"


if __name__ == "__main__":
    raise SystemExit(run_study(main))
