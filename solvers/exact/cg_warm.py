"""Fill numba's on-disk cache with the column generation's compiled kernels (solvers.exact.cg_kernels), and say
what that cost: `python -m solvers.exact.cg_warm`.

The first call of each kernel in a fresh environment compiles it; a measurement whose first bound pays that would
count the compiler in the bound's time.  This runs a small column generation per device and objective (every
signature the pricing uses), then prints the wall and CPU time it took: about 20 s of CPU the first time, about a
second once the cache is filled (docs/SOLVERS.md).  Run it once after installing, before timing anything."""

from __future__ import annotations

import argparse
import time

from solvers.exact.cg_pricing import CgOptions
from solvers.exact.colgen import column_generation
from stsched.registry import Objective
from stsched.scenarios import random_instance

DEVICES = ("a100-mps", "a100-mig")


def warm(services: int = 16, rounds: int = 15) -> tuple[float, float]:
    """Small column generations on `services` services (seed 1, both devices, both objectives, at most `rounds`
    master solves each); returns (wall s, CPU s) spent, compilation or cache loading included."""
    t0, c0 = time.perf_counter(), time.process_time()
    for device in DEVICES:
        inst = random_instance(services, max(1, services // 2), 1, device, arrivals="deterministic")
        for objective in (Objective.MIN_GPUS, Objective.MAX_SCALE):
            column_generation(inst, objective, CgOptions(max_rounds=rounds))
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m solvers.exact.cg_warm", description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    wall, cpu = warm()
    print(f"cg kernels ready: four small column generations (compilation or cache loading included) {wall:.2f} s "
          f"wall, {cpu:.2f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
