"""The burst detector: an emergency decision `detect_s` seconds into a minute that overloads the plan in force.

The count trace gives one rate per minute and the simulator draws Poisson arrivals at that rate within the minute
(`stsched.simulation.arrivals`).  Without the detector (`detect_s=None`) the controller reacts to an overload at the
end of the minute that carried it (`AdaptOptions.trigger`): the emergency decision runs at the next minute's start,
so a burst that starts in minute m is met by new capacity at m + 1 plus the standby build time at the earliest.  A
serving system watches its queues within seconds; the detector models that watch.

**Detection rule.**  `detect_s` d seconds into minute m the controller has observed each service's arrivals since
the minute began: a count n drawn as Poisson(r x d) at the minute's rate r (`observed_counts`: a seeded stream per
(seed, minute, service), so plan-only and simulated runs draw the same counts and make the same decisions; it is
not the simulator's arrival draw, whose realisation the controller does not read).  A service is flagged when that
count is clearly above what the plan in force was made to absorb: above the count of a Poisson stream at `trigger`
x the rate c the plan serves it at, by `DETECT_Z` of its standard deviations,

    n  >  trigger c d + DETECT_Z sqrt(max(trigger c d, 1)),

a one-sided test at about 0.1 % false alarms per service-minute for a stream at exactly the trigger's rate (fewer
below it; a false alarm is an emergency decision the end-of-minute trigger, reading the minute's rate, would not
make; a service without capacity is flagged once its count exceeds DETECT_Z).  If any service is flagged the controller makes an emergency decision
at t0 + d, planning every flagged service for at least its observed rate n / d x head-room (the emergency floor's rule,
`controller.overload_floor`), with the estimate read up to the standby lead before t0 + d as any decision's.  The
GPUs it switches on serve from t0 + d + the standby build time (`AdaptOptions.costs`), and those it rebuilds while in
use serve their old layout until then, as with an emergency decision at a minute's start; the simulator runs the
minute in pieces, the plan in force until t0 + d, then the new one (its GPUs still being built on their old
layouts until the build ends), queues carried across (`stsched.planning.adapt.minutes`).  A decision before the
estimate has seen minute m (the next minute's, whose estimate stops at the standby lead) keeps the flagged services'
floor (`Observed`): the controller saw the burst.

Default d = 5 s (`AdaptOptions.detect_s`; None: off): at 5 s a burst of a few hundred req/s above the plan is a
count thousands of standard deviations away, and the build time (15 s per MPS repartition) dominates the delay
anyway; measured in docs/RESULTS.md ("Re-planning judged by frontiers").
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from stsched.errors import InputError
from stsched.validate import check_real

DETECT_Z = 3.0  # standard deviations of the trigger rate's Poisson count the observed count must exceed


MINUTE_S = 60.0  # one bin of the count trace


def check_detect(detect_s: float | None) -> None:
    """`detect_s`: None (off) or a finite number of seconds > 0 shorter than one bin of the count trace (at its
    end the end-of-minute trigger reacts)."""
    check_seconds_of_minute(detect_s, "detect_s (seconds into the trace's minute)")


def check_seconds_of_minute(value: float | None, name: str) -> None:
    """THE rule of an option that is None (off) or seconds within one bin of the count trace: a number (not text),
    > 0 and < MINUTE_S (`detect_s`, `cold_count_s`)."""
    if value is None:
        return
    if not isinstance(value, numbers.Real):  # `check_real` reads text as a number (the CLI's); an option holds one
        raise InputError(f"{name}: expected a number or None (off), got {value!r}")
    check_real(value, name, minimum=0.0, strict=True, maximum=MINUTE_S, strict_max=True)


def observed_counts(rates: np.ndarray, detect_s: float, seed: int, minute: int) -> np.ndarray:
    """Per service i: the arrivals the detector observes in the first `detect_s` seconds of `minute` at `rates`,
    Poisson(rate x `detect_s`) drawn from `numpy.random.default_rng([seed, minute, i, 7])` (the same counts in
    plan-only and simulated runs)."""
    return np.array([np.random.default_rng([seed, minute, i, 7]).poisson(max(float(r), 0.0) * detect_s)
                     for i, r in enumerate(rates)], dtype=float)


def flagged(counts: np.ndarray, served: np.ndarray, trigger: float, detect_s: float) -> np.ndarray:
    """Per service: whether `counts` arrivals in `detect_s` seconds (`observed_counts`) are clearly above `trigger`
    x `served` (the module's rule); none when `trigger` is 0 (the emergency trigger off)."""
    if trigger <= 0:
        return np.zeros(len(counts), dtype=bool)
    expected = trigger * np.asarray(served, dtype=float) * detect_s
    return np.asarray(counts, dtype=float) > expected + DETECT_Z * np.sqrt(np.maximum(expected, 1.0))


@dataclass
class Observed:
    """Floors the detector set that the estimate has not seen yet: (end of the minute, per-service floor)."""

    pending: list[tuple[float, np.ndarray]] = field(default_factory=list)

    def add(self, minute_end_s: float, floor: np.ndarray) -> None:
        self.pending.append((minute_end_s, np.asarray(floor, dtype=float)))

    def floor(self, n: int, seen_s: float) -> np.ndarray:
        """Per service (n of them): the largest floor of a minute that ends after `seen_s` (the estimate, which
        reads the minutes ended by `seen_s`, does not contain it yet); 0 elsewhere."""
        self.pending = [p for p in self.pending if p[0] > seen_s]
        out = np.zeros(n)
        for _, f in self.pending:
            out = np.maximum(out, f)
        return out
