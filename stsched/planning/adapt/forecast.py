"""Forecast-robust layouts: the rates a new layout is planned for, from the hours before the decision.

The estimate (`stsched.planning.adapt.estimate`: the last 30 minutes' peak x head-room) says what the next epoch
needs; a layout built for it alone is undone by the next rise that the last half hour did not show.  A persistence
forecast of the next hours reads the last `window_s` seconds of per-minute rates: the next hours' rates of a service
are taken to look like its last hours', and a layout is planned for their `quantile` (a high one: most of the
minutes the layout will see are below it) times the same head-room, or for the estimate where that is higher.
Rate shares and tenants inside kept layouts still follow the estimate alone (`rebalance`, `retenant`), so between
layout changes the plan serves what the estimate says; only the layouts, which are expensive to change, are held
to the forecast.  What it costs: GPUs above the plan from scratch for the estimate while the rates stay below the
forecast (measured in docs/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stsched.errors import InputError
from stsched.planning.adapt.estimate import check_window, seen_bins


@dataclass(frozen=True)
class Forecast:
    window_s: float = 7200.0  # the hours whose per-minute rates stand for the next hours'
    quantile: float = 0.9  # of those rates, per service
    headroom: float = 1.2  # the estimate's head-room (the same factor)

    def __post_init__(self) -> None:
        check_window(self.window_s, "forecast window", self.headroom)
        if not 0.0 <= self.quantile <= 1.0:
            raise InputError(f"forecast quantile must be in [0, 1], got {self.quantile!r}")

    def rates(self, schedule: np.ndarray, bin_s: float, tau: float) -> np.ndarray:
        """Per service (rows of `schedule`, per-bin rates): the `quantile` of the bins that ended within
        `window_s` before `tau`, times the head-room (the first bin before any has ended, as the estimate)."""
        return np.quantile(seen_bins(schedule, bin_s, tau, self.window_s), self.quantile, axis=1) * self.headroom


def robust_rates(estimate: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """The rates a new layout is planned for: the estimate, or the forecast where that is higher."""
    return np.maximum(estimate, forecast)
