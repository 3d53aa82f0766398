"""Peak memory of the simulator per request: what `stsched.simulation.arrivals.BYTES_PER_REQUEST` is sized from.

    python -m experiments.sim_memory                  # 0.6 M and 1.8 M Poisson requests (about 30 s)
    stsched experiment sim_memory --quick             # 0.6 M requests only

Instance: gpulet's mix m2 on 2 GPUs (`stsched.scenarios.gpulet_mix("m2", 2)`, 30 req/s in all), its heuristic
min-gpus plan; each row simulates D seconds of Poisson arrivals in a fresh process (so that earlier rows do not
hide the peak) and reports the growth of the process's peak resident memory (ru_maxrss, after a 1-second warm-up
simulation) divided by the requests simulated.  The simulator refuses a run whose arrivals would exceed the memory
available at BYTES_PER_REQUEST bytes each (rounded up from these rows, never down).  Printed as a table; no files.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp

from experiments.common import Study, markdown_table, study_args

STUDY = Study("sim_memory", "simulator peak memory per request (sizes the refusal of runs that do not fit)",
              typical="30 s", quick="0.6 M requests only")


def _measure(duration_s: float, queue) -> None:
    import resource

    from stsched.registry import SolveOptions, run_solver
    from stsched.scenarios import gpulet_mix
    from stsched.simulation import ArrivalSpec, SimOptions, simulate

    inst = gpulet_mix("m2", 2)
    plan = run_solver("heuristic", inst, SolveOptions()).result.plan
    simulate(inst, plan, ArrivalSpec(), SimOptions(duration_s=1.0))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = simulate(inst, plan, ArrivalSpec(), SimOptions(duration_s=duration_s)).summary.requests
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"duration_s": duration_s, "requests": n, "bytes_per_request": round((peak - base) * 1024 / n, 1)})


def main(argv: list[str] | None = None) -> int:
    from stsched.simulation.arrivals import BYTES_PER_REQUEST

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = study_args(ap, argv, quick="0.6 M requests only")
    rows = []
    for duration in ((20_000.0,) if args.quick else (20_000.0, 60_000.0)):
        q = mp.get_context("spawn").Queue()
        p = mp.get_context("spawn").Process(target=_measure, args=(duration, q))
        p.start()
        rows.append(q.get())
        p.join()
    print(markdown_table(rows, ["duration_s", "requests", "bytes_per_request"]))
    print(f"\nBYTES_PER_REQUEST = {BYTES_PER_REQUEST} (the largest row rounded up: "
          f"{'ok' if all(r['bytes_per_request'] <= BYTES_PER_REQUEST for r in rows) else 'TOO SMALL'})")
    return 0 if all(r["bytes_per_request"] <= BYTES_PER_REQUEST for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
