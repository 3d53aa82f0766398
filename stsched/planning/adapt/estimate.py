"""Rate estimation for the next epoch from a recent window of observed per-minute rates.

The controller observes the per-minute rate of every service (the trace's rate schedule: at thousands of requests
per minute the Poisson noise of a realised count is below 1 %).  At decision time tau it looks at the minutes that
ended within the last `window_s` seconds and estimates each service's rate for the next epoch as

    estimate = statistic(observed minutes) * headroom        statistic: "peak" (max, default) or "mean"

The headroom is the stated safety factor against growth within the next epoch and against Poisson bursts inside a
minute.  Before one full minute has been observed (the very first plan) the first minute of the trace is used:
the initial deployment is planned with one minute of look-ahead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stsched.errors import InputError


@dataclass(frozen=True)
class RateEstimator:
    window_s: float = 600.0
    headroom: float = 1.1  # a factor >= 1: plan for headroom x the estimate
    statistic: str = "peak"

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and math.isfinite(self.window_s)):
            raise InputError(f"estimation window must be > 0 s, got {self.window_s!r}")
        if not (self.headroom >= 1 and math.isfinite(self.headroom)):
            raise InputError(f"headroom must be a factor >= 1, got {self.headroom!r}")
        if self.statistic not in ("peak", "mean"):
            raise InputError(f"estimator statistic must be 'peak' or 'mean', got {self.statistic!r}")

    def estimate(self, schedule: np.ndarray, bin_s: float, tau: float) -> np.ndarray:
        """Estimated rate per service (rows of `schedule`, per-bin rates) at decision time `tau` (seconds)."""
        last = int(math.floor(tau / bin_s + 1e-9))  # bins [0, last) have ended by tau
        first = max(0, int(math.floor((tau - self.window_s) / bin_s + 1e-9)))
        if last <= 0:
            first, last = 0, 1
        seen = schedule[:, first:last]
        stat = seen.max(axis=1) if self.statistic == "peak" else seen.mean(axis=1)
        return stat * self.headroom
