"""Session 19's hostile property run (docs/RESULTS.md, "Session 19: a hostile user"): random tiny instances (the
edge of tests/core/test_bound_rounding_edge.py with `gpus` at or one above its plan's count, two-service MPS, one-
service MIG), min-gpus and max-scale, brute, milp, cpsat and the heuristic at 5 s each; prints every invalid plan,
every bound past a valid plan of any solver and every infeasible answer where some solver returned a plan.

    PYTHONPATH=. python experiments/dev/hostile19/edge_property.py SEED TRIALS
"""

from __future__ import annotations

import logging
import random
import sys
from dataclasses import replace

from stsched.checker import check
from stsched.registry import Objective, SolveOptions, Status, run_solver
from tests.conftest import make_mig_instance, make_mps_instance
from tests.core.test_bound_rounding_edge import _edge

log = logging.getLogger(__name__)
SOLVERS = ("brute", "milp", "cpsat", "heuristic")


def _instance(rng: random.Random):
    kind = rng.choice(["edge", "mps", "mig"])
    if kind == "edge":
        n = rng.choice([1, 2, 3])
        inst, _ = _edge(n, rng.choice([0, 3e-7, 9e-7, 1.2e-6, 1.9e-6, 2.1e-6, 2.9e-6]))
        return kind, replace(inst, gpus=n + rng.choice([0, 0, 1]))
    if kind == "mps":
        return kind, make_mps_instance(rates=(rng.uniform(50, 900), rng.uniform(10, 500)), gpus=rng.choice([1, 2, 3]))
    return kind, make_mig_instance(rates=(rng.uniform(50, 2000),), gpus=rng.choice([1, 2]))


def _faults(kind: str, inst, obj: Objective) -> int:
    res = {s: run_solver(s, inst, SolveOptions(objective=obj, time_limit_s=5)) for s in SOLVERS}
    bad = 0
    for s, r in res.items():
        if r.plan is not None and not check(inst, r.plan).valid:
            log.warning("invalid plan: %s %s %s", kind, obj.value, s)
            bad += 1
    plans = {s: r for s, r in res.items() if r.plan is not None}
    for s, r in res.items():
        for t, q in plans.items():
            v = q.plan.gpus_used if obj is Objective.MIN_GPUS else q.objective
            past = r.bound is not None and (r.bound > v + 1e-9 if obj is Objective.MIN_GPUS else r.bound < v - 1e-9)
            if past:
                log.warning("bound past a plan: %s %s %s bound %s, %s's plan %s", kind, obj.value, s, r.bound, t, v)
                bad += 1
        if r.status is Status.INFEASIBLE and plans:
            log.warning("infeasible beside a plan: %s %s %s", kind, obj.value, s)
            bad += 1
    return bad


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    rng = random.Random(int(argv[0]) if argv else 0)
    bad = 0
    for _ in range(int(argv[1]) if len(argv) > 1 else 20):
        kind, inst = _instance(rng)
        bad += sum(_faults(kind, inst, obj) for obj in (Objective.MIN_GPUS, Objective.MAX_SCALE))
    log.warning("faults: %d", bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
