"""Model-predictive control of the GPU count: the clairvoyant bound's DP, run online on a forecast of the need.

`stsched.planning.adapt.offline` finds, for a known per-epoch need n_t, the fewest GPU-hours of a GPU-count
sequence u_t >= n_t with a given number of changes.  Online the need of the next epochs is not known; at each
decision the adaptive policy (knob `mpc_h`) instead

1. forecasts the need of the next `horizon` epochs (`NeedForecast`): this epoch's is the plan from scratch's GPU
   count for the estimate (known now); the later ones are the current need held (`quantile` None), or the
   `quantile` of the needs recorded at the decisions of the last `window_s` seconds (the past hour's per-decision
   needs: a need that flipped up within the hour is expected back).  Never the window's own future: the trace holds
   only the 8 hours of one day, so there is no earlier day to read the same hours from;
2. prices every count u the plan could hold this epoch by `CountValue`: the GPU-hours of this epoch at u plus the
   fewest GPU-hours + `change_gpu_h` x changes of the rest of the horizon from u (a backward DP over counts, each
   GPU switched on or off one change, as in the bound), so V(u) - V(u') is what holding u instead of u' is forecast
   to cost over the horizon, changes of the later epochs included;
3. decides with the real first step: a compaction of c layout changes to u GPUs is bought when
   `change_gpu_h` x c + V(u) < V(count in force) (ski rental on the forecast: a change is paid only when the
   forecast saving over its lifetime exceeds its price), and scale-ups are ranked by `change_gpu_h` x c + V(u)
   (a GPU above the plan from scratch costs what the forecast says holding or dropping it will cost).
Only the first step is applied; the existing compactions (`stsched.planning.adapt.compaction._compactions`)
realise the count with as few layout changes as they find, and the next decision forecasts again.

`change_gpu_h` 1 is the price of the default rent (12 GPU-decisions per change at 5-minute epochs).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from stsched.errors import InputError
from stsched.planning.adapt.estimate import check_window


@dataclass(frozen=True)
class CountValue:
    """V(u) for u = 0 .. len(values) - 1 (module docstring, step 2); inf where u is below this epoch's need."""

    values: tuple[float, ...]
    change_gpu_h: float

    def of(self, count: int) -> float:
        """V(count) (`count` within the table: `count_values`' `top` covers every count the policy can hold)."""
        return self.values[count]

    def move(self, count: int, changes: float) -> float:
        """The forecast cost of taking a plan of `count` GPUs that changes `changes` layouts now."""
        return self.change_gpu_h * changes + self.of(count)


def count_values(need_now: int, forecast: list[int], step_h: float, change_gpu_h: float, top: int,
                 down_changes: float = 1.0) -> CountValue:
    """The DP of the module docstring: V(u) = u x step_h + C(W_2)(u), W_t(v) = v x step_h + C(W_(t+1))(v) for
    v >= forecast[t - 2] (inf below), W beyond the horizon 0, where C(W)(v) = min over w of W(w) + `change_gpu_h` x
    (w - v for a rise, `down_changes` x (v - w) for a fall): a GPU switched on is one change, a GPU given back costs
    `down_changes` changes (1: a switch-off; a compaction that rebuilds layouts to free a GPU costs more, and
    pricing a later fall at one change would always make holding look cheap).  u, v, w in 0 .. `top` (raised to
    every need).  O(horizon x top): C is two passes over the counts."""
    if not (step_h > 0 and math.isfinite(step_h)) or not (change_gpu_h >= 0 and math.isfinite(change_gpu_h)) \
            or not (down_changes >= 0 and math.isfinite(down_changes)):
        raise InputError(f"step_h must be > 0, change_gpu_h and down_changes >= 0, got {step_h!r}, "
                         f"{change_gpu_h!r}, {down_changes!r}")
    top = max([top, need_now, *forecast])
    counts = np.arange(top + 1, dtype=float)
    up, down = change_gpu_h, change_gpu_h * down_changes
    w = np.zeros(top + 1)
    for need in reversed([need_now, *forecast]):
        # best[v]: the cheapest continuation from count v: a rise to w >= v (min of W(w) + up (w - v), a running
        # minimum from the top), then a fall to w <= v (min of best(w) + down (v - w), a running minimum upwards)
        best = np.minimum.accumulate((w + up * counts)[::-1])[::-1] - up * counts
        best = np.minimum.accumulate(best - down * counts) + down * counts
        w = np.where(counts >= need, counts * step_h + best, np.inf)
    return CountValue(tuple(float(x) for x in w), change_gpu_h)


@dataclass
class NeedForecast:
    """The needs recorded at past decisions (time in seconds, GPUs of the plan from scratch), and the forecast of
    the next epochs' needs from them (module docstring, step 1)."""

    horizon: int
    quantile: float | None = None
    window_s: float = 3600.0

    def __post_init__(self) -> None:
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or self.horizon < 1:
            raise InputError(f"mpc horizon must be a whole number of epochs >= 1, got {self.horizon!r}")
        if self.quantile is not None and not 0.0 <= self.quantile <= 1.0:
            raise InputError(f"mpc quantile must be in [0, 1], got {self.quantile!r}")
        check_window(self.window_s, "mpc window", 1.0)
        self._seen: deque[tuple[float, int]] = deque()
        self._last: tuple[tuple[int, float | None], list[int]] | None = None  # later()'s last answer (a decision
        # asks it once per candidate; a record between two calls clears it)

    def record(self, t_s: float, need: int) -> None:
        """The need at a decision at `t_s` seconds (decisions in time order)."""
        self._forget(t_s)
        self._seen.append((t_s, int(need)))
        self._last = None

    def _forget(self, t_s: float) -> None:
        while self._seen and self._seen[0][0] < t_s - self.window_s - 1e-9:
            self._seen.popleft()

    def later(self, need_now: int, t_s: float | None = None) -> list[int]:
        """The forecast needs of epochs 2 .. horizon at a decision at `t_s` seconds: `need_now` held, or the
        quantile of the needs recorded within the window before `t_s` (the current one included), rounded up."""
        if self._last is not None and self._last[0] == (need_now, t_s):
            return list(self._last[1])
        if t_s is not None:
            self._forget(t_s)
        if self.quantile is None:
            out = [need_now] * (self.horizon - 1)
        else:
            q = float(np.quantile([n for _, n in self._seen] + [need_now], self.quantile))
            out = [int(math.ceil(q - 1e-9))] * (self.horizon - 1)
        self._last = ((need_now, t_s), out)
        return list(out)
