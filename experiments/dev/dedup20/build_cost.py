"""CPU time of building the core data's hot classes (`Tenant`, `Partition`, `Service`): the check that writing their
ranges once (session 20, `stsched.validate.Range`) kept their fast path as fast.  Run it in each tree to compare:

    python -m experiments.dev.dedup20.build_cost [--builds 200000] [--repeats 5]

Prints, per class, the best over `repeats` of the CPU time (`time.process_time`) per build, in nanoseconds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from stsched.plan import Partition, Tenant
from stsched.problem import Service


def best_ns(build: Callable[[], object], builds: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        for _ in range(builds):
            build()
        best = min(best, (time.process_time() - t) / builds)
    return best * 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builds", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    tenants = (Tenant("s0", 4, 10.0),)
    for name, build in (("Tenant", lambda: Tenant("s0", 4, 10.0)),
                        ("Partition", lambda: Partition(50.0, tenants, None, 1, None)),
                        ("Service", lambda: Service("a", "m", 10.0, 100.0, 5.0, 0.0))):
        print(f"{name} {best_ns(build, args.builds, args.repeats):.0f} ns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
