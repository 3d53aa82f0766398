"""The host's slow spells replayed: batch-time ratios drawn as a measured sequence, not one by one.

`stsched.simulation.host.BatchTimeQuantiles` gives the simulator each batch's factor (measured batch time / the
simulator's time for it) as an independent draw from a calibration run's distribution.  On a shared host the
executor's batch times are not independent: a spell in which other work holds the core slows tens of batches
in a row (lag-1 autocorrelation of the ratios 0.67 on the 2-core machine, docs/RESULTS.md), and a queue feels a
spell far more than the same slow batches spread out, so independent draws under-predict the executor's p99.

`RatioTrace` keeps, per partition of a calibration run, every batch's ratio in dispatch order with the tenant that
ran it (`stsched.executor.host.measure_host` records it).  `batch_factors` replays it: a simulated partition's
i-th dispatched batch of tenant j takes the ratio of tenant j's latest batch at or before position (o + i) mod M
of the calibration sequence (M batches long; o a random offset per draw, so that repeated draws see the spells at
other instants).  The spells keep the lengths and the depth the calibration run measured, in batches: a run of
the same plan at the same rates dispatches about as many batches per second.  What is replayed is measured on
another run than the one it is compared with (never the compared run itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class RatioTrace:
    """Per (gpu, partition): the tenant index and the measured / simulated batch-time ratio of each batch, in
    dispatch order (module docstring)."""

    tenants: Mapping[tuple[int, int], tuple[int, ...]]
    ratios: Mapping[tuple[int, int], tuple[float, ...]]
    source: str = "executor"

    def filled(self, key: tuple[int, int], k: int) -> np.ndarray | None:
        """A k x M array: row j at position x the ratio of tenant j's latest batch at or before x of the partition's
        sequence (before its first batch: its first); None when the partition or one of its k tenants has no
        batch in the trace."""
        ten = np.asarray(self.tenants.get(key, ()), dtype=int)
        r = np.asarray(self.ratios.get(key, ()), dtype=float)
        if not len(r):
            return None
        out = np.empty((k, len(r)))
        pos = np.arange(len(r))
        for j in range(k):
            mine = np.flatnonzero(ten == j)
            if not len(mine):
                return None
            at = np.searchsorted(mine, pos, side="right") - 1  # the latest own batch at or before x
            out[j] = r[mine[np.maximum(at, 0)]]
        return out

    def batch_factors(self, aligned: bool = False) -> Any:
        """The simulator's `BatchFactors`: per tenant a row of n factors replayed from a random offset (a
        k x 2 x n array: the same row for back-to-back batches and those after idling, since the replay keeps
        what each batch met); None for a partition the trace does not cover (no factors: the table's times).
        `aligned`: from the trace's first batch instead: a run's own trace so replayed on its own arrivals gives
        every batch the ratio the executor measured for it wherever the simulator dispatches in the executor's
        order (a check of the queueing and host model, not a prediction: `experiments.exec_vs_sim`); a batch
        beyond the trace's M (the simulator dispatched more than the executor did) takes its tenant's last
        measured ratio, never a wrap to the run's first batches."""

        fills: dict[tuple, np.ndarray | None] = {}  # one filled trace per partition, not one per draw

        def draw(pt: Any, n: int, rng: np.random.Generator) -> np.ndarray | None:
            key = (pt.gpu, pt.partition, len(pt.part.tenants))
            if key not in fills:
                fills[key] = self.filled(key[:2], key[2])
            fill = fills[key]
            if fill is None:
                return None
            m = fill.shape[1]
            if aligned:  # beyond the trace: each tenant's last ratio (no wrap to the run's first batches)
                idx = np.minimum(np.arange(n), m - 1)
            else:
                idx = (int(rng.integers(m)) + np.arange(n)) % m
            rows = fill[:, idx]
            return np.stack([rows, rows], axis=1)

        return draw


__all__ = ["RatioTrace"]
