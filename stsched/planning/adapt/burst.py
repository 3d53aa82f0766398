"""The burst reserve: a service that has burst above the plan in force keeps capacity for that burst for a while.

A batch-like function (bert~resnet101 on functions 14..17 of the Azure trace) sits near 0 req/s and jumps to
thousands within a minute, several times a day; the 30-minute peak of the estimate (`stsched.planning.adapt.estimate`)
forgets a burst half an hour later, so the next one meets a plan without capacity for it, and a 22 ms SLO loses the
whole minute.  With `burst_hold_s` h (`AdaptOptions`; None: off) every minute in which a service's rate exceeded
`trigger` times the rate the plan in force served it at (the emergency trigger's test) is remembered, and for h
seconds after that minute ended the decisions plan the service for at least that rate x head-room.  Decisions read
only the minutes that ended by the time they see (the standby lead included).  When the hold expires the estimate
falls back and the compaction rent (`stsched.planning.adapt.compaction`) gives the GPUs back.  What it costs and
buys: docs/RESULTS.md ("Re-planning judged by frontiers").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stsched.errors import InputError


def check_hold(hold_s: float | None) -> None:
    """`burst_hold_s`: None (off) or a finite number of seconds > 0."""
    if hold_s is not None and not (isinstance(hold_s, (int, float)) and hold_s > 0 and math.isfinite(hold_s)):
        raise InputError(f"burst_hold_s must be a finite number > 0 (seconds) or None (off), got {hold_s!r}")


@dataclass
class BurstMemory:
    """The overloaded minutes seen so far: (end of the minute, service index, rate x head-room)."""

    hold_s: float
    seen: list[tuple[float, int, float]] = field(default_factory=list)

    def record(self, end_s: float, loads: np.ndarray, rates: np.ndarray, trigger: float, headroom: float) -> None:
        """Remember the services whose `loads` in the minute ending at `end_s` exceeded `trigger` (0: never)."""
        if trigger <= 0:
            return
        for i in np.flatnonzero(loads > trigger):
            self.seen.append((end_s, int(i), float(rates[i]) * headroom))

    def floor(self, n: int, seen_s: float) -> np.ndarray:
        """Per service (n of them): the largest remembered burst whose minute ended by `seen_s` and less than
        `hold_s` before it, 0 where none."""
        out = np.zeros(n)
        self.seen = [s for s in self.seen if s[0] > seen_s - self.hold_s]  # expired bursts are forgotten
        for end, i, rate in self.seen:
            if end <= seen_s:
                out[i] = max(out[i], rate)
        return out
