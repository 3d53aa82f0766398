"""A latency histogram on fixed log-spaced buckets: streamable, mergeable by addition, exact in its counts.

Bucket i holds latencies in [LO_MS * G^i, LO_MS * G^(i+1)) (bucket 0 also everything below, the last one
everything above); a quantile is reported as its bucket's geometric midpoint, so it is within a relative
`(sqrt(G) - 1)` = 0.5 % of the empirical (lower) quantile that `stsched.simulation.summary` computes from all
requests.  Requests that never completed are counted apart (infinite latency, ranked last), as in the summary.
Counts are integers: histograms of shards add up to the histogram of the whole run, whatever the sharding.
"""

from __future__ import annotations

import math

import numpy as np

LO_MS = 1e-3
G = 1.01
HI_MS = 1e8
BUCKETS = int(math.ceil(math.log(HI_MS / LO_MS) / math.log(G))) + 1
_LOG_G = math.log(G)


def buckets(latency_ms: np.ndarray) -> np.ndarray:
    """The bucket of each (finite) latency."""
    x = np.maximum(np.asarray(latency_ms, dtype=float), LO_MS)
    return np.minimum((np.log(x / LO_MS) / _LOG_G).astype(np.int64), BUCKETS - 1)


def counts(latency_ms: np.ndarray) -> np.ndarray:
    """A histogram (BUCKETS int64 counts) of finite latencies."""
    return np.bincount(buckets(latency_ms), minlength=BUCKETS).astype(np.int64)


def value(bucket: int) -> float:
    """The value reported for a bucket: its geometric midpoint (ms)."""
    return LO_MS * G ** (bucket + 0.5)


def quantile(hist: np.ndarray, lost: int, q: float) -> float:
    """The lower empirical q-quantile (ms) of the requests in `hist` plus `lost` never-completed ones (inf);
    NaN when there is no request."""
    done = int(hist.sum())
    n = done + lost
    if n == 0:
        return float("nan")
    rank = min(n - 1, max(0, math.ceil(q * n) - 1))
    if rank >= done:
        return float("inf")
    return value(int(np.searchsorted(np.cumsum(hist), rank + 1)))
