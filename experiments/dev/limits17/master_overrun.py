"""cg's integer master (HiGHS) over a work-limited column generation plus the heuristic's partitions, timed per
call: `python experiments/dev/limits17/master_overrun.py INSTANCE ROUNDS LIMIT [LIMIT ...]` (max-scale; the columns
are cached next to the instance; docs/RESULTS.md, "Limits and faults", session 17).  Prints, per limit, the whole
engine call's and HiGHS's own run's wall and CPU seconds and HiGHS's status."""

import os
import pickle
import sys
import time
from dataclasses import replace

import solvers.exact.milp as milp
from solvers.exact.cg import _integer_plan, _model, _plan_configs
from solvers.exact.colgen import CgOptions, column_generation
from stsched.io import load_instance
from stsched.registry import Objective, SolveOptions, run_solver


def main(path: str, rounds: int, limits: list[float]) -> None:
    inst = load_instance(path)
    cache = f"{path}.master{rounds}.pkl"
    if os.path.exists(cache):
        with open(cache, "rb") as f:
            r, warm = pickle.load(f)
    else:
        r = column_generation(inst, Objective.MAX_SCALE, CgOptions(max_rounds=rounds, time_limit_s=1e5))
        warm = run_solver("heuristic", inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=60)).plan
        with open(cache, "wb") as f:
            pickle.dump((r, warm), f)
    data = _model(inst, replace(r, configs=r.configs + _plan_configs(inst, warm)))
    calls, runs = [], []
    solve, call = milp._solve, milp._HighsWarm.callSolver

    def timed_solve(prob, backend, options, limit, w):
        t, c = time.perf_counter(), time.process_time()
        out = solve(prob, backend, options, limit, w)
        calls.append((round(time.perf_counter() - t, 2), round(time.process_time() - c, 2)))
        return out

    def timed_call(self, lp):
        t, c = time.perf_counter(), time.process_time()
        call(self, lp)
        runs.append((round(time.perf_counter() - t, 2), round(time.process_time() - c, 2),
                     str(lp.solverModel.getModelStatus())))

    milp._solve, milp._HighsWarm.callSolver = timed_solve, timed_call
    for lim in limits:
        _, note = _integer_plan("cg", data, SolveOptions(objective=Objective.MAX_SCALE, warm_start=warm), lim)
        print("limit", lim, note, "| engine call (wall, cpu):", calls[-1], "| HiGHS run (wall, cpu, status):", runs[-1],
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), [float(x) for x in sys.argv[3:]])
