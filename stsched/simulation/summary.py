"""Per-request records and the `Summary` that the simulator (and the executor, on real hardware) report.

Latency of a request = completion - arrival.  A request meets its SLO when its latency is at most the service's
**real** SLO (`Service.slo_ms`), not the margin-scaled budget the checker compares against
(`Instance.slo_budget_ms`).  A request that was never completed (no partition serves its service, or it was still
queued when a run was cut off) has infinite latency and misses its SLO.  Goodput = requests completed within their
SLO per second of the arrival window.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from stsched.problem import Instance


@dataclass(frozen=True)
class RequestRecords:
    """One row per request.  Times in seconds; `start`/`finish` NaN when not served; gpu/partition -1 when the
    request was not routed to any partition."""

    services: tuple[str, ...]
    service: np.ndarray  # index into `services`
    arrival: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    gpu: np.ndarray
    partition: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival)

    def latency_ms(self) -> np.ndarray:
        """Completion - arrival in ms (inf where the request was not completed)."""
        lat = (self.finish - self.arrival) * 1000.0
        return np.where(np.isnan(lat), np.inf, lat)

    def backlog(self, times: np.ndarray | Sequence[float]) -> np.ndarray:
        """Requests queued (arrived, not yet dispatched) at each of `times`."""
        times = np.asarray(times, dtype=float)
        arrived = np.searchsorted(np.sort(self.arrival), times, side="right")
        started = np.searchsorted(np.sort(np.where(np.isnan(self.start), np.inf, self.start)), times, side="right")
        return arrived - started

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "service": np.asarray(self.services, dtype=object)[self.service] if len(self.services) else [],
            "arrival_s": self.arrival, "start_s": self.start, "finish_s": self.finish,
            "latency_ms": self.latency_ms(), "gpu": self.gpu, "partition": self.partition,
        })

    @staticmethod
    def concat(parts: Sequence["RequestRecords"]) -> "RequestRecords":
        if not parts:
            raise ValueError("no records to concatenate")
        services = parts[0].services
        if any(p.services != services for p in parts):
            raise ValueError("records of different service lists")
        cat = lambda f: np.concatenate([getattr(p, f) for p in parts])  # noqa: E731
        return RequestRecords(services, cat("service"), cat("arrival"), cat("start"), cat("finish"), cat("gpu"),
                              cat("partition"))


@dataclass(frozen=True)
class PartitionUse:
    """Busy time of one partition inside the window (seconds of batch execution, summed over its processes)."""

    gpu: int
    partition: int
    size: float
    procs: int
    busy_s: float


@dataclass(frozen=True)
class ServiceSummary:
    name: str
    slo_ms: float
    requests: int
    completed: int
    within_slo: int
    attainment: float  # within_slo / requests (1.0 when no request arrived)
    goodput: float  # req/s completed within the SLO
    offered_rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float


@dataclass(frozen=True)
class Summary:
    """What users feel: SLO attainment (overall = fraction of all requests), goodput, latency percentiles
    (inf when more than that share of requests was never completed), utilisation of GPUs and partitions."""

    duration_s: float
    requests: int
    completed: int
    within_slo: int
    slo_attainment: float
    goodput: float  # req/s completed within their SLO
    p50_ms: float
    p99_ms: float
    mean_ms: float
    per_service: tuple[ServiceSummary, ...]
    gpu_utilisation: float  # capacity-weighted busy share of the used GPUs' capacity
    partition_utilisation: tuple[tuple[int, int, float], ...]  # (gpu, partition, busy fraction)

    def service(self, name: str) -> ServiceSummary:
        for s in self.per_service:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_service"] = {s.name: {k: _finite(v) for k, v in asdict(s).items() if k != "name"}
                            for s in self.per_service}
        d["partition_utilisation"] = [list(x) for x in self.partition_utilisation]
        return {k: _finite(v) if isinstance(v, float) else v for k, v in d.items()}


def _finite(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _rank(n: int, q: float) -> int:
    return min(n - 1, max(0, math.ceil(q * n) - 1))


def _stats(lat: np.ndarray) -> tuple[float, float, float]:
    """p50, p99 (lower empirical quantiles: the value below which that share of requests lies) and the mean."""
    n = len(lat)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    ranks = sorted({_rank(n, 0.50), _rank(n, 0.99)})
    part = np.partition(lat, ranks)
    mean = float(lat.mean()) if np.isfinite(lat).all() else float("inf")
    return float(part[_rank(n, 0.50)]), float(part[_rank(n, 0.99)]), mean


def within_slo(records: RequestRecords, slo_ms: np.ndarray, latency_ms: np.ndarray | None = None) -> np.ndarray:
    """Per request: completed within its service's SLO (`slo_ms` per service of `records.services`;
    `latency_ms`: `records.latency_ms()` when the caller has it already)."""
    if not len(records.services):
        return np.zeros(len(records), dtype=bool)
    lat = records.latency_ms() if latency_ms is None else latency_ms
    return lat <= slo_ms[records.service] * (1 + 1e-9)


def summarize(instance: Instance, records: RequestRecords, duration_s: float,
              use: Sequence[PartitionUse] = (), offered: Mapping[str, float] | None = None) -> Summary:
    """The summary of a run whose arrivals span `duration_s` seconds."""
    lat = records.latency_ms()
    slo = np.array([instance.service(n).slo_ms for n in records.services], dtype=float)
    ok = within_slo(records, slo, lat)
    per = []
    for i, name in enumerate(records.services):
        sel = records.service == i
        lat_i = lat[sel]
        n = int(sel.sum())
        good = int(ok[sel].sum())
        p50, p99, mean = _stats(lat_i)
        per.append(ServiceSummary(name, float(slo[i]), n, int(np.isfinite(lat_i).sum()), good,
                                  good / n if n else 1.0, good / duration_s,
                                  (offered or {}).get(name, n / duration_s), p50, p99, mean))
    n = len(records)
    good = int(ok.sum())
    p50, p99, mean = _stats(lat)
    cap = instance.mechanism.capacity
    gpus = sorted({u.gpu for u in use})
    busy = tuple((u.gpu, u.partition, min(1.0, u.busy_s / (duration_s * u.procs))) for u in use)
    gpu_util = (sum(u.size * min(1.0, u.busy_s / (duration_s * u.procs)) for u in use) / (len(gpus) * cap)
                if gpus else 0.0)
    return Summary(duration_s, n, int(np.isfinite(lat).sum()), good, good / n if n else 1.0, good / duration_s,
                   p50, p99, mean, tuple(per), gpu_util, busy)
