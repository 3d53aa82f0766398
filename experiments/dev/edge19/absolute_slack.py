"""How much the checker's absolute 1e-9 slacks could add to what valid GPUs carry, against `whole_gpus`'s guard
(docs/RESULTS.md, "Limits and faults", session 19, item 2).  Per instance: the layout LP's fractional GPUs x and its
rounding `whole_gpus(x)`; n = that bound; P the most partitions of a GPU; t the largest tenant set meeting the
latency rule (the exact driver's own test, `_larger_sets_exist`); g_s each service's best req/s per GPU
(`bounds.efficiency`); and A = n (P t 1e-9 / g_min + 1e-9 / C) + 1e-9 sum_s 1 / g_s, the most GPUs of exact need the
absolute parts let n valid GPUs carry beyond n (1 + 1e-6)^3 (a tenant 1e-9 req/s above its widened capacity, a rate
covered 1e-9 short, a GPU's sizes 1e-9 over).  `whole_gpus` (ceil(x / K - 1e-6), K = (1 + 1e-6)^3) is sound for
every x while A / K <= 1e-6, its guard; max-scale's `tolerant_scale` has no guard: A / (K n) relative uncounted.
`PYTHONPATH=. python experiments/dev/edge19/absolute_slack.py [--big]` (--big adds a 100,000-service instance)."""

import sys
import time

from solvers.exact.driver import _larger_sets_exist
from solvers.exact.patterns import _Timer
from stsched import bounds
from stsched.checker import REL_TOL, whole_gpus
from stsched.layouts import enumerate_layouts
from stsched.scenarios import igniter_example, parvagpu, random_instance

DELTA = 1e-9
K = (1 + REL_TOL) ** 3


def report(name, inst):
    t0 = time.process_time()
    per_model = {}
    g = [bounds.efficiency(inst, s.name, per_model).per_unit * inst.mechanism.capacity
         for s in inst.services if s.rate > DELTA]
    x = bounds.lp_gpus(inst)
    n = whole_gpus(x)
    layouts = enumerate_layouts(inst, maximal=True, limit=10 ** 6)
    parts = max(map(len, layouts))
    timer = _Timer(inst, False, layouts)
    t = 1
    while _larger_sets_exist(inst, timer, t):
        t += 1
    g_min = min(v for v in g if v > 0)
    per_gpu = parts * t * DELTA / g_min + DELTA / inst.mechanism.capacity
    a = n * per_gpu + DELTA * sum(1 / v for v in g if v > 0)
    print(f"{name}: {len(g)} services, x {x:.6f}, whole_gpus {n}, P {parts}, t {t}, g_min {g_min:.4g} req/s/GPU, "
          f"A {a:.3g} GPUs (guard 1e-6: {'covered' if a / K <= 1e-6 else 'NOT covered'}; reached at about "
          f"{1e-6 / per_gpu:,.0f} GPUs of such services), max-scale bound uncounted by {a / (K * n):.2g} relative "
          f"({time.process_time() - t0:.1f} s CPU)", flush=True)


if __name__ == "__main__":
    for arr in ("poisson", "deterministic"):
        report(f"r256-seed7-{arr}", random_instance(256, 128, 7, arrivals=arr))
    for r in range(1, 5):
        report(f"parvagpu{r}", parvagpu(r))
    report("igniter", igniter_example())
    report("r64-a100-mig-seed0", random_instance(64, 64, 0, "a100-mig"))
    if "--big" in sys.argv:  # (over 25 min at load ~10: the tenant-set test over 100,000 services)
        report("r100k-seed7", random_instance(100_000, 50_000, 7))  # (docs/RESULTS.md's r100k)
