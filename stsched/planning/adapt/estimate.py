"""Rate estimation for the next epoch from a recent window of observed per-minute rates.

The controller observes the per-minute rate of every service (the trace's rate schedule: at thousands of requests
per minute the Poisson noise of a realised count is below 1 %).  At decision time tau it looks at the minutes that
ended within the last `window_s` seconds and estimates each service's rate for the next epoch as

    estimate = statistic(observed minutes) * headroom        statistic: "peak" (max, default) or "mean"

The headroom is the stated safety factor against growth within the next epoch and against Poisson bursts inside a
minute.  With `burst_s` (the short-burst decay) the peak is taken only over the last `burst_s` seconds, and over
the whole window the `burst_q` quantile instead:

    estimate = max(peak(last burst_s), quantile_q(window)) * headroom

so a burst of a few minutes (fewer than a share 1 - q of the window's minutes) is held for `burst_s`, not for the
whole window, while a rate seen in more of the window's minutes is held as long as before.  Before one full minute has been observed (the very first plan) the first minute of the trace is used:
the initial deployment is planned with one minute of look-ahead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stsched.errors import InputError


def check_window(window_s: float, what: str, headroom: float) -> None:
    """A window of past rates (> 0 s) and a head-room factor (>= 1), both finite: bad input otherwise."""
    if not (window_s > 0 and math.isfinite(window_s)):
        raise InputError(f"{what} must be > 0 s, got {window_s!r}")
    if not (headroom >= 1 and math.isfinite(headroom)):
        raise InputError(f"headroom must be a factor >= 1, got {headroom!r}")


def seen_bins(schedule: np.ndarray, bin_s: float, tau: float, window_s: float) -> np.ndarray:
    """The per-bin rates (rows of `schedule`) of the bins that ended within `window_s` before `tau` (seconds);
    the first bin before any has ended."""
    last = int(math.floor(tau / bin_s + 1e-9))  # bins [0, last) have ended by tau
    first = max(0, int(math.floor((tau - window_s) / bin_s + 1e-9)))
    if last <= 0:
        first, last = 0, 1
    return schedule[:, first:last]


@dataclass(frozen=True)
class RateEstimator:
    window_s: float = 600.0
    headroom: float = 1.1  # a factor >= 1: plan for headroom x the estimate
    statistic: str = "peak"
    burst_s: float | None = None  # the peak only over this recent part of the window (module docstring); None: off
    burst_q: float = 0.9  # with `burst_s`: the quantile of the whole window's bins

    def __post_init__(self) -> None:
        check_window(self.window_s, "estimation window", self.headroom)
        if self.statistic not in ("peak", "mean"):
            raise InputError(f"estimator statistic must be 'peak' or 'mean', got {self.statistic!r}")
        if self.burst_s is not None:
            if self.statistic != "peak":
                raise InputError("burst_s (the short-burst decay) applies to the peak statistic only")
            check_window(self.burst_s, "burst_s", self.headroom)
            if self.burst_s > self.window_s:
                raise InputError(f"burst_s {self.burst_s!r} must not exceed the estimate window {self.window_s!r}")
        if not 0.0 <= self.burst_q <= 1.0:
            raise InputError(f"burst_q must be a quantile in [0, 1], got {self.burst_q!r}")

    def estimate(self, schedule: np.ndarray, bin_s: float, tau: float) -> np.ndarray:
        """Estimated rate per service (rows of `schedule`, per-bin rates) at decision time `tau` (seconds)."""
        seen = seen_bins(schedule, bin_s, tau, self.window_s)
        if self.statistic == "mean":
            return seen.mean(axis=1) * self.headroom
        if self.burst_s is None:
            return seen.max(axis=1) * self.headroom
        recent = seen_bins(schedule, bin_s, tau, self.burst_s).max(axis=1)
        return np.maximum(recent, np.quantile(seen, self.burst_q, axis=1)) * self.headroom
