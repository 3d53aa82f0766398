"""The per-partition batching engine: round robin over tenants, one batch per tenant per turn.

Semantics (docs/RULES.md, the checker's model): a partition serves its tenants in a fixed round-robin order.
When a tenant's turn comes at time t it takes the requests queued for it (arrived at or before t), at most its
batch size b, and runs them as one batch (m <= b requests) for an execution time given per fill m (the simulator
passes the checker's `e_s` scaled down for partial batches, see `stsched.simulation.simulator`; optionally times a
noise factor); the next turn starts when the batch completes.  A tenant with nothing queued is skipped at no cost, so the
cycle shortens (work conserving); when no tenant has anything queued the partition idles until the next arrival.
The checker's bound `d + e` on latency therefore holds whenever no more than b requests of a tenant arrive per
cycle; with random arrivals it is exceeded only when a burst leaves more than b requests queued.

A partition with `procs` > 1 processes (MIG slices with MPS inside, ParvaGPU) has a single tenant and `procs`
identical servers: each free server takes up to b queued requests.

Partitions never interact except through interference, which (as in the checker) is a static slowdown folded into
e; so every partition is simulated independently, in a tight loop over batches (the queue of a tenant is a
contiguous range of its sorted arrival array, found with `bisect`).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class PartitionOutcome:
    """What one partition did: per tenant, the dispatch and completion time of every request (NaN: not
    dispatched before the horizon), and the list of batches (start, duration) for utilisation."""

    start: tuple[np.ndarray, ...]
    finish: tuple[np.ndarray, ...]
    batch_start: np.ndarray
    batch_dur: np.ndarray
    batch_tenant: np.ndarray
    free_at: float  # when the last dispatched batch completes (>= available_s)


def _single(a: list[float], e: list[float], b: int, t: float, horizon: float, noise: list[float] | None,
            gap: float = 0.0, wake: float = 0.0, idle: list[float] | None = None):
    n = len(a)
    h = 0
    starts: list[float] = []
    counts: list[int] = []
    durs: list[float] = []
    k = 0
    end = t
    while h < n:
        x = a[h]
        fresh = x > t
        if fresh:  # idle until this arrival, then the host's wake-up delay
            t = x + wake
        if t >= horizon:
            break
        hi = h + b
        if hi > n:
            hi = n
        m = bisect_right(a, t, h, hi) - h
        starts.append(t)
        counts.append(m)
        h += m
        if noise is None:
            d = e[m] + gap
        else:
            d = e[m] * (idle[k] if fresh and idle is not None else noise[k]) + gap
            k += 1
        durs.append(d)
        t += d
        end = t
    return starts, counts, durs, end


def _round_robin(arrs: list[list[float]], es: list[list[float]], bs: list[int], t: float, horizon: float,
                 noise: list[float] | None, ptr: int = 0, gap: float = 0.0, wake: float = 0.0,
                 idle: list[float] | None = None):
    """Returns the batches, when the last one ends, and the round-robin pointer (whose turn is next), so that a
    run cut at a horizon can be resumed (`stsched.simulation.stream`)."""
    k = len(arrs)
    ns = [len(a) for a in arrs]
    heads = [0] * k
    # factors per tenant (rows indexed by the batch's dispatch number) or one list for all
    rows = None if noise is None else (noise if noise and isinstance(noise[0], list) else [noise] * k)
    idle_rows = None if idle is None else (idle if idle and isinstance(idle[0], list) else [idle] * k)
    tenants: list[int] = []
    starts: list[float] = []
    counts: list[int] = []
    durs: list[float] = []
    nb = 0
    end = t
    fresh = False  # the next batch ends an idle period
    while True:
        chosen = -1
        for j in range(k):
            i = ptr + j
            if i >= k:
                i -= k
            h = heads[i]
            if h < ns[i] and arrs[i][h] <= t:
                chosen = i
                break
        if chosen < 0:  # nothing queued: idle until the next arrival (the pointer stays where it is)
            nxt = math.inf
            for i in range(k):
                if heads[i] < ns[i] and arrs[i][heads[i]] < nxt:
                    nxt = arrs[i][heads[i]]
            if nxt == math.inf:
                break
            t = nxt + wake
            fresh = True
            if t >= horizon:
                break
            continue
        if t >= horizon:
            break
        a = arrs[chosen]
        h = heads[chosen]
        hi = h + bs[chosen]
        if hi > ns[chosen]:
            hi = ns[chosen]
        m = bisect_right(a, t, h, hi) - h
        d = (es[chosen][m] if rows is None else
             es[chosen][m] * (idle_rows[chosen][nb] if fresh and idle_rows is not None else rows[chosen][nb])) + gap
        nb += 1
        fresh = False
        tenants.append(chosen)
        starts.append(t)
        counts.append(m)
        durs.append(d)
        heads[chosen] = h + m
        t += d
        end = t
        ptr = chosen + 1 if chosen + 1 < k else 0
    return tenants, starts, counts, durs, end, ptr


def _multi_proc(a: list[float], e: list[float], b: int, procs: int, t0: float, horizon: float,
                noise: list[float] | None, free: list[float] | None = None, gap: float = 0.0, wake: float = 0.0,
                idle: list[float] | None = None):
    """`free`: when each process is free (a heap; default all at `t0`), updated in place so that a run cut at
    a horizon can be resumed (`stsched.simulation.stream`)."""
    n = len(a)
    h = 0
    free = [t0] * procs if free is None else free
    starts: list[float] = []
    counts: list[int] = []
    durs: list[float] = []
    k = 0
    while h < n:
        f = heapq.heappop(free)
        fresh = a[h] > f
        t = a[h] + wake if fresh else f
        if t >= horizon:
            heapq.heappush(free, f)
            break
        hi = h + b
        if hi > n:
            hi = n
        m = bisect_right(a, t, h, hi) - h
        d = (e[m] if noise is None else e[m] * (idle[k] if fresh and idle is not None else noise[k])) + gap
        k += 1
        starts.append(t)
        counts.append(m)
        durs.append(d)
        h += m
        heapq.heappush(free, t + d)
    return starts, counts, durs, max(free)


def run_partition(arrivals: Sequence[np.ndarray], exec_s: Sequence[float | Sequence[float]], batches: Sequence[int], procs: int = 1,
                  available_s: float = 0.0, horizon_s: float = math.inf,
                  noise: np.ndarray | None = None, gap_s: float = 0.0, wake_s: float = 0.0,
                  idle_noise: np.ndarray | None = None) -> PartitionOutcome:
    """Simulate one partition.

    `arrivals[j]`: sorted arrival times (s) of the requests routed to tenant j; `batches[j]`: its batch size b;
    `exec_s[j]`: its execution time (s) of one batch, either one number (any fill) or a sequence indexed by the
    number of requests m = 0..b in the batch (entry 0 unused); the partition serves nothing before `available_s` (start of the
    run or end of a reconfiguration); no batch starts at or after `horizon_s` (requests left are returned with a
    NaN start).  `noise`: multiplicative factors, one per batch in dispatch order (at least one per request).
    `gap_s`, `wake_s`: the host's overhead (`stsched.simulation.host.HostOverhead`): every batch occupies the
    partition `gap_s` longer than its execution time (dispatch and bookkeeping between batches), and a partition
    that idled dispatches `wake_s` after the arrival that ends the idle (taking what arrived by then).
    `idle_noise`: factors like `noise` (as many, needs `noise`) for the batches that end an idle period (their
    time on a shared host differs from back-to-back batches': `stsched.simulation.host`); None: `noise` for all.
    Either may be a k x N array: one row of factors per tenant (a batch of tenant j takes row j's factor at its
    dispatch number), for tenants whose batch times vary differently.
    """
    k = len(arrivals)
    if not (len(exec_s) == len(batches) == k) or k == 0:
        raise ValueError("run_partition: one arrival array, execution time and batch size per tenant")
    if procs > 1 and k != 1:
        raise ValueError("run_partition: several processes need exactly one tenant")
    lists = [np.asarray(a, dtype=float).tolist() for a in arrivals]
    es: list[list[float]] = []
    for e, b in zip(exec_s, batches):
        if isinstance(e, (int, float)):
            es.append([float(e)] * (b + 1))
        else:
            if len(e) != b + 1:
                raise ValueError("run_partition: execution times by fill need b + 1 entries")
            es.append([float(x) for x in e])
    nz = None if noise is None else np.asarray(noise, dtype=float)
    iz = None if idle_noise is None else np.asarray(idle_noise, dtype=float)
    for name, x in (("noise", nz), ("idle_noise", iz)):
        if x is None:
            continue
        if x.ndim == 2 and x.shape[0] != k:
            raise ValueError(f"run_partition: {name} needs one row per tenant")
        if x.ndim not in (1, 2) or x.shape[-1] < sum(len(a) for a in lists):
            raise ValueError(f"run_partition: need at least one {name} factor per request")
    if iz is not None and (nz is None or iz.shape[-1] < nz.shape[-1]):
        raise ValueError("run_partition: idle_noise needs noise and as many factors")
    if k == 1:  # one tenant: its row
        nz = None if nz is None else nz.reshape(-1, nz.shape[-1])[0]
        iz = None if iz is None else iz.reshape(-1, iz.shape[-1])[0]
    nz = None if nz is None else nz.tolist()
    iz = None if iz is None else iz.tolist()
    if k == 1 and procs > 1:
        starts, counts, durs, free_at = _multi_proc(lists[0], es[0], batches[0], procs, available_s,
                                                    horizon_s, nz, None, gap_s, wake_s, iz)
        tenants = [0] * len(starts)
    elif k == 1:
        starts, counts, durs, free_at = _single(lists[0], es[0], batches[0], available_s, horizon_s, nz,
                                                gap_s, wake_s, iz)
        tenants = [0] * len(starts)
    else:
        tenants, starts, counts, durs, free_at, _ = _round_robin(lists, es, list(batches), available_s,
                                                                 horizon_s, nz, 0, gap_s, wake_s, iz)
    b_start = np.asarray(starts, dtype=float)
    b_dur = np.asarray(durs, dtype=float)
    b_count = np.asarray(counts, dtype=np.int64)
    b_tenant = np.asarray(tenants, dtype=np.int64)
    out_start: list[np.ndarray] = []
    out_finish: list[np.ndarray] = []
    for j, a in enumerate(lists):
        sel = b_tenant == j if k > 1 else slice(None)
        s = np.full(len(a), np.nan)
        f = np.full(len(a), np.nan)
        c = b_count[sel]
        done = int(c.sum())
        s[:done] = np.repeat(b_start[sel], c)
        f[:done] = np.repeat(b_start[sel] + b_dur[sel], c)
        out_start.append(s)
        out_finish.append(f)
    return PartitionOutcome(tuple(out_start), tuple(out_finish), b_start, b_dur, b_tenant,
                            max(free_at, available_s))
