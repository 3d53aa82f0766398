"""Whether every registered solver ends within its time limit (10 % + 1 s) on instances too large to finish.

    python -m experiments.time_limits                  # every solver, limit 5 s (about 2 minutes)
    python -m experiments.time_limits --time-limit 2 --solvers heuristic gpulet
    stsched experiment time_limits --quick             # heuristic, gpulet and brute, limit 2 s

Instances: gpulet's mix m2 (`stsched.scenarios.gpulet_mix`) on 10,000 GPUs, max-scale (every solver must fill all
10,000 GPUs: planning, extracting and checking a plan that size takes seconds), and a random 6-service A100 MPS
instance on 3 GPUs, min-gpus (`random_instance(6, 3, 2)`, deterministic arrivals: brute force enumerates for
minutes there).  Each row is one
`run_solver` call in this process: the solver's own wall time (`SolveResult.wall_s`, which the limit bounds; the
checker's independent verdict afterwards is not part of it), its status and the target 1.1 x limit + 1 s.
Timings depend on the machine and its load: say which when quoting them.  Printed as a Markdown table; no files.
"""

from __future__ import annotations

import argparse

from experiments.common import Study, markdown_table, run_study, study_args
from stsched.registry import Objective, SolveOptions, available_solvers, run_solver, unknown_solver
from stsched.scenarios import gpulet_mix, random_instance
from stsched import validate as V


STUDY = Study("time_limits", "every solver against its time limit on instances too large to finish",
              typical="2 min", quick="heuristic, gpulet and brute at 2 s")


def rows(limit: float, solvers: list[str]) -> list[dict[str, object]]:
    small = random_instance(6, 3, 2, arrivals="deterministic")
    cases = [("gpulet m2, 10,000 GPUs", gpulet_mix("m2", 10_000), Objective.MAX_SCALE),
             ("random 6 services, 3 GPUs", small, Objective.MIN_GPUS)]
    out = []
    for label, inst, objective in cases:
        for name in solvers:
            info = available_solvers()[name]
            if info.supports(inst, objective) or (info.oracle and inst.gpus > 10):
                continue  # brute force on 10,000 GPUs refuses at once (its multiset limit): nothing to time
            judged = run_solver(name, inst, SolveOptions(objective=objective, time_limit_s=limit))
            r = judged.result
            out.append({"instance": label, "objective": objective.value, "solver": name, "status": r.status.value,
                        "wall_s": round(r.wall_s, 2), "target_s": round(1.1 * limit + 1, 2),
                        "within": r.wall_s <= 1.1 * limit + 1})
            print(f"{label:<28} {name:<11} {r.status.value:<9} {r.wall_s:7.2f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=V.time_limit, default=5.0, help="time limit per solve, seconds (default 5)")
    ap.add_argument("--solvers", nargs="+", default=None, help="solvers (default: every registered one but aliases)")
    args = study_args(ap, argv, quick="heuristic, gpulet and brute at 2 s", grid=False)
    known = available_solvers()
    unknown = [n for n in args.solvers or () if n not in known]
    if unknown:  # (a KeyError traceback after the first solver's runs)
        ap.error(f"argument --solvers: {unknown_solver(unknown[0])}")
    names = args.solvers or [n for n, info in known.items() if not info.alias_of]
    limit = args.time_limit
    if args.quick:
        names, limit = [n for n in names if n in ("heuristic", "gpulet", "brute")], 2.0
    table = rows(limit, names)
    print()
    print(markdown_table(table, list(table[0]) if table else []))
    return 0 if all(r["within"] for r in table) else 1


if __name__ == "__main__":
    raise SystemExit(run_study(main))
