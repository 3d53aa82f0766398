"""The cold start: what the first plans are made for before the estimate window has seen enough of the trace.

The estimate (`stsched.planning.adapt.estimate`) reads the minutes that ended before a decision; the initial
deployment has none, so without the cold start (`cold_start_s=None`) it is planned for the trace's first minute
(one minute of look-ahead).  A service that is idle in that minute (a batch-like function at 0 req/s) gets no capacity, and its first burst is
lost until an emergency decision answers it.

With `cold_start_s` c (seconds, `AdaptOptions`), the instance's **declared rates** (each service's `rate`: what the
operator deployed for; here the rate the trace is peak-normalised to) times the head-room are a floor under the
estimate of the initial deployment and of every decision made before c seconds of the trace have passed
(c = 0: the initial deployment only); default c = 300 s (`AdaptOptions.cold_start_s`; None: off).  Later
decisions follow the estimate.  With `cold_release` (default on) the controller tells the policy at the first
decision after the floor (`Compaction.waive_rent`), and the adaptive policy buys the compaction freeing most GPUs
at that decision without the compaction rent: the GPUs the declared rates held above the plan from scratch were
held for a rate the estimate never asked for, so they are given back at once (off: by the policy's normal rule, the
rent of 12 GPU-decisions per change, which held them for an hour or more on windows 4..7 and 12..15).  Policies
without a rent (static peak, the baselines) follow their own rule, and so does the adaptive policy with `mpc_h`
(its compactions are decided on the forecast: it ignores the waiver).  What it costs, in GPU-hours and layout changes,
and what it buys in attainment: docs/RESULTS.md ("Re-planning judged by frontiers").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stsched.errors import InputError


@dataclass(frozen=True)
class ColdStart:
    declared: np.ndarray  # per service: declared rate x head-room
    until_s: float  # decisions at t <= until_s are floored (0: the initial deployment only)

    def __post_init__(self) -> None:
        if isinstance(self.until_s, bool) or not isinstance(self.until_s, (int, float, np.integer, np.floating)) \
                or not (self.until_s >= 0 and math.isfinite(self.until_s)):
            raise InputError(f"cold_start_s must be a finite number >= 0 (seconds), got {self.until_s!r}")
        if self.declared.ndim != 1 or not np.all(np.isfinite(self.declared)) or np.any(self.declared < 0):
            raise InputError("cold start: declared rates must be finite numbers >= 0, one per service")

    def rates(self, estimate: np.ndarray, t_s: float, initial: bool) -> np.ndarray:
        """The rates a decision at `t_s` seconds plans for: max(estimate, declared) for the initial deployment and
        for decisions up to `until_s`, the estimate afterwards."""
        if initial or t_s <= self.until_s:
            return np.maximum(estimate, self.declared)
        return estimate


def cold_start(rates: list[float], headroom: float, until_s: float | None) -> ColdStart | None:
    """The cold start of a run whose services declare `rates` (None: off)."""
    if until_s is None:
        return None
    return ColdStart(np.asarray(rates, dtype=float) * headroom, until_s)
