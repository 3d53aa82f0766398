"""Poisson arrivals against a batch per cycle: how many requests a tenant may expect per cycle.

The checker's throughput rule credits a tenant with batch b and duty cycle d with `1000 b / d` req/s, which under
Poisson arrivals is a queue at utilisation 1 (docs/SIMULATOR.md).  Model one cycle: the requests arriving during
a cycle, N ~ Poisson(lambda), are served by the tenant's next batch; when more than b arrive, the overflow
E[(N - b)+] waits another cycle and misses an SLO that leaves room for one cycle of waiting only (the latency rule
`d + e <= SLO` is exactly that room).  `batch_credit(b, late_share)` is the largest lambda whose overflow share
E[(N - b)+] / lambda stays within `late_share`; a planner that credits the tenant with `1000 credit / d` req/s
instead of `1000 b / d` keeps the expected late share of every tenant within `late_share` under that model.  The
model is conservative when the real cycle is shorter than d (work-conserving round robin skips idle tenants) or
the SLO leaves room for more than one cycle.
"""

from __future__ import annotations

import math
from functools import lru_cache

from stsched.errors import InputError


def overflow(lam: float, b: int) -> float:
    """E[(N - b)+] for N ~ Poisson(lam): lam - b + sum_{n < b} (b - n) P(N = n)."""
    if lam <= 0:
        return 0.0
    p = math.exp(-lam)
    below = 0.0
    for n in range(b):
        below += (b - n) * p
        p *= lam / (n + 1)
    return max(0.0, lam - b + below)


@lru_cache(maxsize=4096)
def batch_credit(b: int, late_share: float) -> float:
    """The largest mean per-cycle arrival count lam <= b with overflow(lam, b) <= late_share x lam (bisection to
    1e-9 relative); `late_share` 0 means the formulation's rule, lam = b."""
    if b < 1:
        raise InputError(f"batch must be >= 1, got {b}")
    if not 0.0 <= late_share < 1.0:
        raise InputError(f"late share must lie in [0, 1), got {late_share!r}")
    if late_share == 0.0:
        return float(b)
    lo, hi = 0.0, float(b)
    if overflow(hi, b) <= late_share * hi:
        return hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if overflow(mid, b) <= late_share * mid:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-9 * hi:
            break
    return lo
