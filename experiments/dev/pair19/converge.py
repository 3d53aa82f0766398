"""Run the configuration LP with K rounds of per-service rounding cuts (cut_early) to convergence and save its
columns AND its cuts (the pool is not part of CgBound), for the pair-cut diagnostic (experiments/dev/pair19/pairs.py).

    python -m experiments.dev.pair19.converge I.json OUT.pkl [--cuts 3] [--cg-time 900] [--start RUN.pkl]

`--start`: the columns of an earlier run join the first master (its cuts do not: they are separated again).

Development only (issue 17, session 19); CPU clock of this process.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import time

import solvers.exact.colgen as colgen
from solvers.exact.cg_cuts import CutOptions, CutPool
from solvers.exact.colgen import CgOptions, column_generation
from stsched.io import instance_digest, load_instance
from stsched.registry import Objective

_pools: list[CutPool] = []


class _RecordedPool(CutPool):
    def __init__(self, n, opts):
        super().__init__(n, opts)
        _pools.append(self)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("instance")
    ap.add_argument("out")
    ap.add_argument("--cuts", type=int, default=3)
    ap.add_argument("--cg-time", type=float, default=900.0)
    ap.add_argument("--start", default=None, help="a RUN.pkl of this instance whose columns join the first master")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    inst = load_instance(args.instance)
    colgen.CutPool = _RecordedPool  # capture the pool (development only)
    start = ()
    if args.start:
        with open(args.start, "rb") as f:
            old = pickle.load(f)
        if old.get("instance") != instance_digest(inst):
            ap.error(f"--start {args.start}: saved for another instance")
        start = old["result"].configs
    c0 = time.process_time()
    r = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=args.cg_time, clock="cpu", workers=1),
                          start=start, cuts=CutOptions(args.cuts, early=True))
    cpu = time.process_time() - c0
    cuts = list(_pools[-1].cuts) if _pools else []
    print(f"bound {r.bound:.4f} master {r.lp_value:.4f} converged {r.converged} cuts {len(cuts)} columns {r.columns} "
          f"cpu {cpu:.1f}", flush=True)
    with open(args.out, "wb") as f:
        pickle.dump({"instance": instance_digest(inst), "result": r, "cuts": cuts, "cpu_s": cpu}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
