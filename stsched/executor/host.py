"""The executor's own host overhead, measured from the times it records (what the simulator's engine does not do).

For every partition the executor records each batch's start s_k and duration (the model call alone) and each
request's arrival.  Between two batches the worker's Python loop runs (round-robin choice, queue slicing, model
lookup, recording), and after idling it sleeps until the next arrival and wakes late.  With e_{k-1} the end of
the partition's previous batch (0 = the instant serving starts) and a_k the earliest arrival among the requests
still waiting for the partition when batch k is dispatched (its own and those of later batches, of any tenant),
the host's delay before batch k is

    o_k = s_k - max(e_{k-1}, a_k)

which the simulator's engine takes to be 0.  A batch is *busy* when a request was already waiting when the
previous batch ended (a_k <= e_{k-1}): o_k is the dispatch gap; otherwise the worker idled and o_k is the
wake-up delay plus the dispatch gap.  (a_k is not batch k's own first arrival: a worker that wakes late may find
a second tenant's request too and serve that one first, round robin; the delay runs from the arrival that ended
the idle, as the simulator's wake-up does.)  `measure_host` summarises both; `HostMeasurement.overhead` is what the
simulator models (`stsched.simulation.host.HostOverhead`): `batch_s` = the mean dispatch gap, `wake_s` = the mean
delay after idling minus that gap (at least 0).  Means, not medians, because a queue feels the mean occupancy.
The execution times themselves are the third measured quantity: per partition, the quantiles of measured batch
time / the simulator's time for that batch (`stsched.simulation.host.BatchTimeQuantiles`), which a later
comparison on other arrivals may use as the simulator's per-batch factors, pooled and apart for busy batches
and batches after idling (a shared host runs them differently), and every batch's ratio in dispatch order
(`HostMeasurement.trace`, `stsched.simulation.replay.RatioTrace`: a later comparison may replay the host's slow
spells instead of drawing each batch's factor independently).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from stsched.executor.accounting import BatchAccounting
from stsched.plan import Plan
from stsched.problem import Instance
from stsched.simulation.host import LEVELS, BatchTimeQuantiles, HostOverhead, TenantRatios, quantile_at
from stsched.simulation.replay import RatioTrace
from stsched.simulation.simulator import partition_timings


@dataclass(frozen=True)
class DelayStats:
    """Seconds: count, mean, median, 90th and 99th percentile, max (NaN where count is 0)."""

    count: int
    mean_s: float
    median_s: float
    p90_s: float
    p99_s: float
    max_s: float

    @staticmethod
    def of(x: np.ndarray) -> "DelayStats":
        x = np.asarray(x, dtype=float)
        if not len(x):
            return DelayStats(0, *([float("nan")] * 5))
        q = np.percentile(x, [50, 90, 99])
        return DelayStats(len(x), float(x.mean()), float(q[0]), float(q[1]), float(q[2]), float(x.max()))


@dataclass(frozen=True)
class HostMeasurement:
    """Dispatch gaps of busy batches, delays of batches after an idle period, the model of both, the clock."""

    gap: DelayStats
    wake: DelayStats
    overhead: HostOverhead
    timer_resolution_s: float
    exec_ratio: BatchTimeQuantiles
    trace: RatioTrace | None = None  # every batch's ratio in dispatch order (`stsched.simulation.replay`)
    accounting: BatchAccounting | None = None  # where the batch time went (`stsched.executor.accounting`)

    def to_dict(self) -> dict[str, Any]:
        out = {"gap": asdict(self.gap), "wake": asdict(self.wake), "overhead": self.overhead.to_dict(),
               "timer_resolution_s": self.timer_resolution_s, "exec_ratio": self.exec_ratio.to_dict()}
        if self.accounting is not None:
            out["accounting"] = self.accounting.to_dict()
        return out

    def line(self) -> str:
        g, w, o = self.gap, self.wake, self.overhead
        return (f"host overhead: dispatch gap per busy batch mean {g.mean_s * 1e3:.3f} ms (median "
                f"{g.median_s * 1e3:.3f}, p99 {g.p99_s * 1e3:.3f}, {g.count} batches); after idling mean "
                f"{w.mean_s * 1e3:.3f} ms (median {w.median_s * 1e3:.3f}, p99 {w.p99_s * 1e3:.3f}, {w.count} "
                f"batches); modelled as {o.batch_s * 1e3:.3f} ms per batch + {o.wake_s * 1e3:.3f} ms wake-up")

    def exec_lines(self) -> list[str]:
        out = []
        levels = self.exec_ratio.levels
        for row in self.exec_ratio.to_dict()["partitions"]:
            q = row["quantiles"]
            line = (f"  gpu {row['gpu']} partition {row['partition']}: measured / simulated batch time median "
                    f"{row['median']:.3f}, mean {row['mean']:.3f}, p90 {quantile_at(q, 90, levels):.3f}, p99 "
                    f"{quantile_at(q, 99, levels):.3f} ({row['batches']} batches)")
            if "busy_quantiles" in row:
                b, i = row["busy_quantiles"], row["idle_quantiles"]
                line += (f"; back to back median {quantile_at(b, 50, levels):.3f}, p90 {quantile_at(b, 90, levels):.3f}"
                         f" ({row['busy_batches']}), after idling median {quantile_at(i, 50, levels):.3f}, p90 "
                         f"{quantile_at(i, 90, levels):.3f} ({row['idle_batches']})")
            out.append(line)
        return out


def waiting_since(request_start: np.ndarray, request_arrival: np.ndarray, batch_start: np.ndarray) -> np.ndarray:
    """One partition: for each batch start, the earliest arrival among the requests dispatched at or after it (NaN
    start: never dispatched, waiting to the end), i.e. since when a request has waited at that dispatch."""
    st = np.where(np.isfinite(request_start), request_start, np.inf)
    order = np.argsort(st, kind="stable")
    st, arr = st[order], np.asarray(request_arrival, dtype=float)[order]
    later = np.append(np.minimum.accumulate(arr[::-1])[::-1], np.inf)  # later[i]: min arrival of requests i..
    return later[np.searchsorted(st, np.asarray(batch_start, dtype=float), side="left")]


def busy_batches(batch_start: np.ndarray, batch_dur: np.ndarray, first_arrival: np.ndarray,
                 begin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One partition's batches in dispatch order: (busy mask: a request waited for the previous batch to end,
    the host's delay o_k before each batch); `first_arrival`: since when a request has waited at each batch's
    dispatch (`waiting_since`)."""
    s = np.asarray(batch_start, dtype=float)
    prev_end = np.concatenate([[begin], s[:-1] + np.asarray(batch_dur, dtype=float)[:-1]])
    a = np.asarray(first_arrival, dtype=float)
    return a <= prev_end, s - np.maximum(prev_end, a)


def delays(batch_start: np.ndarray, batch_dur: np.ndarray, first_arrival: np.ndarray,
           begin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One partition's batches in dispatch order: (dispatch gaps of busy batches, delays after idling)."""
    busy, o = busy_batches(batch_start, batch_dur, first_arrival, begin)
    return o[busy], o[~busy]



def _ratios(r: np.ndarray, busy: np.ndarray, grid: np.ndarray) -> TenantRatios:
    """Percentiles (`grid`: `LEVELS`) of the batch-time ratios `r`: all of them, those dispatched back to back
    (`busy`) and those that end an idle period, with the counts; an empty class gets the pooled percentiles."""
    q_all = tuple(np.percentile(r, grid).tolist())
    cls = [tuple(np.percentile(r[c], grid).tolist()) if c.any() else q_all for c in (busy, ~busy)]
    return TenantRatios(q_all, cls[0], cls[1], len(r), int(busy.sum()), int((~busy).sum()))

def measure_host(result: Any, instance: Instance, plan: Plan, exec_model: str = "fixed",
                 source: str = "executor") -> HostMeasurement:
    """The host overhead of an `ExecResult` of `plan` and its batch times against the simulator's (`exec_model`:
    fixed when the executor pads batches, fill when it does not; module docstring).  The accounting's backend is
    `result.backend["backend"]` (a result that does not name it: cpu)."""
    rec = result.records
    b = result.batches
    gaps, wakes = [], []
    timing = {(pt.gpu, pt.partition): pt for pt in partition_timings(instance, plan, exec_model)}
    grid = np.asarray(LEVELS)
    ratios: dict[tuple[int, int], tuple[float, ...]] = {}
    counts: dict[tuple[int, int], int] = {}
    split: dict[str, dict[tuple[int, int], tuple[float, ...]]] = {"busy": {}, "idle": {}}
    split_n: dict[str, dict[tuple[int, int], int]] = {"busy": {}, "idle": {}}
    tenants: dict[tuple[int, int, str], TenantRatios] = {}
    seq_t: dict[tuple[int, int], tuple[int, ...]] = {}
    seq_r: dict[tuple[int, int], tuple[float, ...]] = {}
    for (gi, qi), grp in b.groupby(["gpu", "partition"], sort=True):
        sel = (rec.gpu == gi) & (rec.partition == qi)  # served or not: one never served waited to the end
        grp = grp.sort_values("start_s", kind="stable")
        starts = grp["start_s"].to_numpy(dtype=float)
        a = np.minimum(waiting_since(rec.start[sel], rec.arrival[sel], starts), starts)
        busy, o = busy_batches(starts, grp["exec_ms"].to_numpy(dtype=float) / 1000.0, a)
        gaps.append(o[busy])
        wakes.append(o[~busy])
        pt = timing[(int(gi), int(qi))]
        tenant = {t.service: j for j, t in enumerate(pt.part.tenants)}
        model = np.array([pt.exec_s[tenant[sv]][min(int(m), len(pt.exec_s[tenant[sv]]) - 1)]
                          for sv, m in zip(grp["service"], grp["requests"])], dtype=float)
        r = grp["exec_ms"].to_numpy(dtype=float) / 1000.0 / model
        key = (int(gi), int(qi))
        whole = _ratios(r, busy, grid)
        ratios[key], counts[key] = whole.all, whole.batches
        split["busy"][key], split["idle"][key] = whole.busy, whole.idle
        split_n["busy"][key], split_n["idle"][key] = whole.busy_batches, whole.idle_batches
        services = grp["service"].to_numpy()
        seq_t[key], seq_r[key] = tuple(tenant[sv] for sv in services.tolist()), tuple(r.tolist())
        for sv in pt.part.tenants:
            mine = services == sv.service
            if mine.any():
                tenants[(*key, sv.service)] = _ratios(r[mine], busy[mine], grid)
    gap = DelayStats.of(np.concatenate(gaps) if gaps else np.empty(0))
    wake = DelayStats.of(np.concatenate(wakes) if wakes else np.empty(0))
    batch_s = gap.mean_s if gap.count else 0.0
    wake_s = max(0.0, wake.mean_s - batch_s) if wake.count else 0.0
    return HostMeasurement(gap, wake, HostOverhead(batch_s, wake_s, source),
                           time.get_clock_info("monotonic").resolution,
                           BatchTimeQuantiles(ratios, counts, source, split["busy"], split["idle"], split_n["busy"],
                                              split_n["idle"], tenants), RatioTrace(seq_t, seq_r, source),
                           BatchAccounting.of(b, (getattr(result, "backend", None) or {}).get("backend", "cpu")))
