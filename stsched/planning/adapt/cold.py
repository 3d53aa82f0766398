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

**The observed start** (`cold_count_s` d, `AdaptOptions`; None: off, the default; it replaces the declared rates'
floor, so it needs `cold_start_s=None`).  The declared rates are each service's peak over the whole trace: on a
window whose first hours run far below them the initial deployment holds every GPU the peak needs and the release
pays one layout change per GPU given back (8-9 of the 27-32 changes of functions 20..23 and 28..31, issue 18
session 17).  With the observed start the initial deployment is planned for what the controller has seen of the
first minute instead: each service's arrivals in its first d seconds, the detector's seeded Poisson count n
(`stsched.planning.adapt.detect.observed_counts`, minute 0: the same draw the detector reads), taken at its
one-sided upper confidence bound

    rate = chi2.ppf(Phi(DETECT_Z), 2 (n + 1)) / (2 d)        (the exact Poisson bound, about 0.1 % below it)

times the head-room, so a service idle in those seconds still gets the capacity of a few requests per second (6.6
requests in d: the bound of a count of 0), not none.  Later decisions follow the estimate; the safety net for a
service that rises above that plan is the detector and the emergency decisions (every policy gets the same start:
it is the controller's).  The plan serves from t = 0, as every initial deployment in this model: the start reads d
seconds of the first minute ahead (without any cold start the first plan reads the whole minute).  Measured in
docs/RESULTS.md ("Re-planning judged by frontiers", session 18).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, norm

from stsched.errors import InputError
from stsched.planning.adapt.detect import DETECT_Z, check_seconds_of_minute, observed_counts


@dataclass(frozen=True)
class ColdStart:
    declared: np.ndarray  # per service: declared rate x head-room (the observed start: its first rates x head-room)
    until_s: float  # decisions at t <= until_s are floored (0: the initial deployment only)
    observed: bool = False  # the observed start: `declared` replaces the initial estimate, floors nothing after

    def __post_init__(self) -> None:
        if isinstance(self.until_s, bool) or not isinstance(self.until_s, (int, float, np.integer, np.floating)) \
                or not (self.until_s >= 0 and math.isfinite(self.until_s)):
            raise InputError(f"cold_start_s must be a finite number >= 0 (seconds), got {self.until_s!r}")
        if self.declared.ndim != 1 or not np.all(np.isfinite(self.declared)) or np.any(self.declared < 0):
            raise InputError("cold start: declared rates must be finite numbers >= 0, one per service")

    def rates(self, estimate: np.ndarray, t_s: float, initial: bool) -> np.ndarray:
        """The rates a decision at `t_s` seconds plans for: max(estimate, declared) for the initial deployment and
        for decisions up to `until_s`, the estimate afterwards; the observed start: its rates for the initial
        deployment (the estimate there reads the whole first minute ahead), the estimate afterwards."""
        if self.observed:
            return self.declared if initial else estimate
        if initial or t_s <= self.until_s:
            return np.maximum(estimate, self.declared)
        return estimate


def cold_start(rates: list[float], headroom: float, until_s: float | None) -> ColdStart | None:
    """The cold start of a run whose services declare `rates` (None: off)."""
    if until_s is None:
        return None
    return ColdStart(np.asarray(rates, dtype=float) * headroom, until_s)


def poisson_upper(counts: np.ndarray, seconds: float) -> np.ndarray:
    """Per count n of arrivals in `seconds`: the one-sided upper confidence bound of its Poisson rate at the
    detector's level (`DETECT_Z` standard deviations, the exact chi-square form), in arrivals per second."""
    n = np.asarray(counts, dtype=float)
    return chi2.ppf(norm.cdf(DETECT_Z), 2.0 * (n + 1.0)) / (2.0 * seconds)


def check_count(count_s: float | None, until_s: float | None) -> None:
    """`cold_count_s`: None (off) or seconds of the first minute (as `detect_s`: > 0, below one minute), and only
    without the declared rates' floor (`cold_start_s=None`), which it replaces."""
    check_seconds_of_minute(count_s, "cold_count_s (seconds of the first minute)")
    if count_s is not None and until_s is not None:
        raise InputError(f"cold_count_s {count_s!r} replaces the declared rates' floor: set cold_start_s=None "
                         f"(got cold_start_s={until_s!r})")


def observed_start(first_minute: np.ndarray, headroom: float, count_s: float, seed: int) -> ColdStart:
    """The observed start of a run whose services' first-minute rates are `first_minute`: the upper bound of the
    count the controller sees in its first `count_s` seconds (`observed_counts`, minute 0), x `headroom`."""
    counts = observed_counts(np.asarray(first_minute, dtype=float), count_s, seed, 0)
    return ColdStart(poisson_upper(counts, count_s) * headroom, 0.0, observed=True)
