"""The streaming, sharded simulator: big plans for long durations in bounded memory, over processes or Ray.

    from stsched.simulation.stream import StreamOptions, simulate_stream
    result = simulate_stream(instance, plan, StreamOptions(duration_s=600, seed=1, shards=2))
    result.summary.slo_attainment, result.summary.p99_ms

What differs from `stsched.simulation.simulate` (docs/SIMULATOR.md):
- Arrivals are Poisson and generated per partition tenant: tenant j of a service s gets an independent Poisson
  stream of rate `rate_s * plan.scale * share_j` (share_j = its planned rate over the plan's total for s), which
  is in law exactly Poisson arrivals of s routed at random by the shares (`routing="random"`); the stream of each
  tenant is drawn window by window (`window_s`) from its own seed (seed, gpu, partition, tenant, window), so it
  does not depend on which task simulates it.
- Each partition is run window by window with the engine of `stsched.simulation.engine` (round robin, batches by
  fill, processes), cut at each window's end and resumed with the requests still queued, the time its last batch
  ends and the round-robin pointer: the same batches as one run over all its arrivals (a test checks it).
- The summary streams: per service, request / completion / within-SLO counters, the sum of latencies (added up
  per tenant, then in plan order, so the mean does not depend on the sharding) and a latency histogram
  (`stsched.simulation.sketch`, quantiles within 0.5 %); per-request records only with `records=True`.  Memory is
  bounded by one window of one partition plus the histograms (services x 2,545 counts), not by the duration.
- `shards` K > 1 splits the plan's GPUs into K contiguous groups of about equal estimated work (`shard_gpus`),
  each simulated in a task (`runner` local: a process pool of `jobs` workers, default min(K, CPUs); ray: Ray
  tasks, `address` or a local instance); the merged summary equals the single-process run's exactly, for any K
  (a test checks it).  More shards than workers balance the load as the tasks finish.
Execution times, noise (per batch, from a stream per partition and window) and SLO accounting are the simulator's.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Sequence

import numpy as np
from tqdm import tqdm

from stsched.errors import InputError
from stsched.plan import Plan
from stsched.problem import Instance
from stsched.simulation import sketch
from stsched.simulation.arrivals import check_holds_a_request, poisson
from stsched.simulation.engine import _multi_proc, _round_robin, _single
from stsched.simulation.simulator import EXEC_MODELS, PartitionTiming, _noise, check_noise_cv, partition_timings
from stsched.simulation.summary import RequestRecords, ServiceSummary, Summary

log = logging.getLogger(__name__)

RUNNERS = ("local", "ray")


MAX_WINDOWS = 1_000_000  # windows of arrivals in one run (each costs a draw per tenant)


@dataclass(frozen=True)
class StreamOptions:
    """`duration_s` of Poisson arrivals (then the queues drain); `window_s`: arrivals generated and partitions
    advanced this many seconds at a time; `shards`: tasks the plan's GPUs are split into; `runner`: local | ray;
    `jobs`: workers at a time (default min(shards, CPUs)); `address`: a Ray cluster (auto | HOST:PORT); `records`: also
    return per-request records (memory grows with the duration)."""

    duration_s: float = 60.0
    seed: int = 0
    noise_cv: float = 0.0
    exec_model: str = "fill"
    window_s: float = 10.0
    shards: int = 1
    runner: str = "local"
    jobs: int | None = None
    address: str | None = None
    records: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("duration_s", "window_s"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise InputError(f"{name.replace('_s', '')} must be a finite number > 0, got {v!r}")
        if self.duration_s / self.window_s > MAX_WINDOWS:  # --window 1e-300 looped for ever
            raise InputError(f"window {self.window_s:g} s cuts {self.duration_s:g} s into {self.duration_s / self.window_s:.3g} "
                             f"windows (at most {MAX_WINDOWS:,}): give a window of at least "
                             f"{self.duration_s / MAX_WINDOWS:.3g} s")
        check_noise_cv(self.noise_cv)
        if self.exec_model not in EXEC_MODELS:
            raise InputError(f"exec model must be one of {', '.join(EXEC_MODELS)}, got {self.exec_model!r}")
        if self.shards < 1 or (self.jobs is not None and self.jobs < 1):
            raise InputError(f"--shards and --jobs must be >= 1, got {self.shards} and {self.jobs}")
        if self.runner not in RUNNERS:
            raise InputError(f"runner must be one of {', '.join(RUNNERS)}, got {self.runner!r}")
        if self.address and self.runner != "ray":
            raise InputError("--address needs --runner ray")


@dataclass(frozen=True)
class TenantTotals:
    """What one tenant of one partition served: counts, the sum of its latencies (ms), its service's index."""

    service: int
    requests: int
    completed: int
    within_slo: int
    latency_sum_ms: float


@dataclass(frozen=True)
class PartitionTotals:
    gpu: int
    partition: int
    size: float
    procs: int
    busy_s: float  # batch execution inside [0, duration], summed over processes
    tenants: tuple[TenantTotals, ...]


@dataclass(frozen=True)
class ShardResult:
    parts: tuple[PartitionTotals, ...]
    hist: np.ndarray  # (services, sketch.BUCKETS) int64 latency counts of completed requests
    records: tuple[RequestRecords, ...]
    requests: int
    wall_s: float
    cpu_s: float  # CPU seconds the shard took
    worker: int = 0  # the process that simulated it


@dataclass(frozen=True)
class StreamResult:
    summary: Summary
    records: RequestRecords | None
    wall_s: float
    shards: int
    requests_per_s: float  # requests simulated per wall second
    shard_cpu_s: tuple[float, ...] = ()  # CPU seconds of each shard
    worker_cpu_s: tuple[float, ...] = ()  # CPU seconds of each worker process (the largest: the critical path)


def tenant_rates(instance: Instance, plan: Plan) -> dict[tuple[int, int, int], float]:
    """Offered arrival rate (req/s) of every tenant (gpu, partition, tenant index): its service's rate x
    `plan.scale` x the tenant's share of the plan's rate for that service."""
    total: dict[str, float] = {}
    for g in plan.gpus:
        for p in g.partitions:
            for t in p.tenants:
                total[t.service] = total.get(t.service, 0.0) + t.rate
    out = {}
    for gi, g in enumerate(plan.gpus):
        for qi, p in enumerate(g.partitions):
            for j, t in enumerate(p.tenants):
                share = t.rate / total[t.service] if total[t.service] > 0 else 1.0 / _count(plan, t.service)
                out[(gi, qi, j)] = instance.service(t.service).rate * plan.scale * share
    return out


def _count(plan: Plan, service: str) -> int:
    return sum(1 for g in plan.gpus for p in g.partitions for t in p.tenants if t.service == service)


class PartitionStream:
    """One partition run window by window: `step(new_arrivals, horizon)` appends each tenant's new arrivals to
    its queue and dispatches every batch that starts before `horizon`; the batches are exactly those of one run
    over all the arrivals (`engine.run_partition`), since a batch starting at t only takes requests arrived by t."""

    def __init__(self, exec_s: Sequence[Sequence[float]], batches: Sequence[int], procs: int, start_s: float = 0.0):
        self.es = [list(map(float, e)) for e in exec_s]
        self.batches = list(batches)
        self.procs = procs
        self.t = start_s
        self.ptr = 0
        self.free = [start_s] * procs if procs > 1 else None
        self.queues = [np.empty(0) for _ in batches]

    def step(self, new: Sequence[np.ndarray], horizon: float, noise: np.ndarray | None = None):
        """Returns, per tenant, the arrivals dispatched now with their start and finish times, and the batches
        (start, duration) dispatched now."""
        arrs = [q if not len(x) else (x if not len(q) else np.concatenate([q, x])) for q, x in zip(self.queues, new)]
        lists = [a.tolist() for a in arrs]
        nz = None if noise is None else noise.tolist()
        k = len(lists)
        if k == 1 and self.procs > 1:
            starts, counts, durs, _ = _multi_proc(lists[0], self.es[0], self.batches[0], self.procs, self.t,
                                                  horizon, nz, self.free)
            tenants = None
        elif k == 1:
            starts, counts, durs, self.t = _single(lists[0], self.es[0], self.batches[0], self.t, horizon, nz)
            tenants = None
        else:
            tenants, starts, counts, durs, self.t, self.ptr = _round_robin(lists, self.es, self.batches, self.t,
                                                                           horizon, nz, self.ptr)
        b_start = np.asarray(starts, dtype=float)
        b_dur = np.asarray(durs, dtype=float)
        b_count = np.asarray(counts, dtype=np.int64)
        b_tenant = None if tenants is None else np.asarray(tenants, dtype=np.int64)
        out = []
        for j, a in enumerate(arrs):
            sel = slice(None) if b_tenant is None else b_tenant == j
            c = b_count[sel]
            done = int(c.sum())
            s = np.repeat(b_start[sel], c)
            out.append((a[:done], s, s + np.repeat(b_dur[sel], c)))
            self.queues[j] = a[done:]
        return out, b_start, b_dur

    def queued(self) -> int:
        return sum(len(q) for q in self.queues)


def _simulate_partition(pt: PartitionTiming, rates: Sequence[float], service_ix: Sequence[int],
                        slo_ms: Sequence[float], opts: StreamOptions, hist: np.ndarray,
                        records: list[RequestRecords] | None, names: tuple[str, ...]) -> PartitionTotals:
    tenants = pt.part.tenants
    k = len(tenants)
    sim = PartitionStream(pt.exec_s, [t.batch for t in tenants], pt.part.procs)
    n = [0] * k
    good = [0] * k
    lat_sum = [0.0] * k
    busy = 0.0
    windows = max(1, int(math.ceil(opts.duration_s / opts.window_s - 1e-9)))  # a window > duration: one (was 0)
    for w in range(windows + 1):  # the last step drains the queues
        if w < windows:
            lo, hi = w * opts.window_s, min((w + 1) * opts.window_s, opts.duration_s)
            new = [lo + poisson(r, hi - lo, np.random.default_rng([opts.seed, 31, pt.gpu, pt.partition, j, w]))
                   for j, r in enumerate(rates)]
            horizon = hi
        else:
            new, horizon = [np.empty(0)] * k, math.inf
        count = sim.queued() + sum(len(x) for x in new)
        noise = _noise(opts.noise_cv, count + 1, np.random.default_rng([opts.seed, 7919, pt.gpu, pt.partition, w]))
        served, b_start, b_dur = sim.step(new, horizon, noise)
        busy += float(np.clip(np.minimum(b_start + b_dur, opts.duration_s) - np.maximum(b_start, 0.0), 0.0,
                              None).sum())
        for j, (arr, start, finish) in enumerate(served):
            if not len(arr):
                continue
            lat = (finish - arr) * 1000.0
            n[j] += len(arr)
            good[j] += int((lat <= slo_ms[j] * (1 + 1e-9)).sum())
            lat_sum[j] += float(lat.sum())
            hist[service_ix[j]] += sketch.counts(lat)
            if records is not None:
                records.append(RequestRecords(names, np.full(len(arr), service_ix[j], dtype=np.int32), arr, start,
                                              finish, np.full(len(arr), pt.gpu, dtype=np.int32),
                                              np.full(len(arr), pt.partition, dtype=np.int32)))
    totals = tuple(TenantTotals(service_ix[j], n[j], n[j], good[j], lat_sum[j]) for j in range(k))
    return PartitionTotals(pt.gpu, pt.partition, pt.part.size, pt.part.procs, busy, totals)


def simulate_shard(instance: Instance, plan: Plan, gpus: Sequence[int], opts: StreamOptions) -> ShardResult:
    """Simulate the partitions of `gpus` (indices into `plan.gpus`): one task of a sharded run."""
    t0, c0 = time.perf_counter(), time.process_time()
    names = instance.service_names
    index = {s: i for i, s in enumerate(names)}
    rates = tenant_rates(instance, plan)
    hist = np.zeros((len(names), sketch.BUCKETS), dtype=np.int64)
    records: list[RequestRecords] | None = [] if opts.records else None
    parts = []
    timings = partition_timings(instance, plan, opts.exec_model, gpus)
    for pt in tqdm(timings, desc="simulate", disable=None if opts.progress else True, leave=False):
        ten = pt.part.tenants
        parts.append(_simulate_partition(pt, [rates[(pt.gpu, pt.partition, j)] for j in range(len(ten))],
                                         [index[t.service] for t in ten],
                                         [instance.service(t.service).slo_ms for t in ten], opts, hist, records,
                                         names))
    requests = sum(t.requests for p in parts for t in p.tenants)
    return ShardResult(tuple(parts), hist, tuple(records or ()), requests, time.perf_counter() - t0,
                       time.process_time() - c0, os.getpid())


PARTITION_COST = 10.0  # per partition: its per-window work, in batches per second (a rough estimate)


def shard_gpus(instance: Instance, plan: Plan, shards: int) -> list[list[int]]:
    """The GPUs with tenants split into at most `shards` contiguous groups of about equal estimated work: per
    tenant the batches it runs per second (between rate / b, full batches, and one per cycle, capped by its
    rate), plus PARTITION_COST per partition."""
    rates = tenant_rates(instance, plan)
    if shards <= 1:
        return [sorted({g for g, _, _ in rates})] if rates else [[]]
    load: dict[int, float] = {}
    for pt in partition_timings(instance, plan):
        cycle = sum(e[-1] for e in pt.exec_s)  # seconds of one full round (full batches)
        work = PARTITION_COST
        for j, t in enumerate(pt.part.tenants):
            r = rates[(pt.gpu, pt.partition, j)]
            work += min(r, max(r / t.batch, 1.0 / cycle if cycle > 0 else r))
        load[pt.gpu] = load.get(pt.gpu, 0.0) + work
    gpus = sorted(load)
    total = sum(load.values()) or 1.0
    n = min(shards, len(gpus)) or 1
    out: list[list[int]] = [[] for _ in range(n)]
    acc, k = 0.0, 0
    for i, g in enumerate(gpus):
        want = int((acc + load[g] / 2) / total * n)  # the group this GPU's load midpoint falls in
        k = min(max(want, k, n - (len(gpus) - i)), k + (1 if out[k] else 0), n - 1)  # contiguous, none empty
        out[k].append(g)
        acc += load[g]
    return [s for s in out if s]


def _unrouted(instance: Instance, plan: Plan, opts: StreamOptions) -> dict[int, np.ndarray]:
    served = {t.service for g in plan.gpus for p in g.partitions for t in p.tenants}
    out = {}
    for i, s in enumerate(instance.services):
        if s.name not in served:
            out[i] = poisson(s.rate * plan.scale, opts.duration_s, np.random.default_rng([opts.seed, 37, i]))
    return out


def _run_shards(instance: Instance, plan: Plan, groups: list[list[int]], opts: StreamOptions) -> list[ShardResult]:
    if len(groups) == 1 and opts.runner == "local":
        return [simulate_shard(instance, plan, groups[0], opts)]
    quiet = StreamOptions(**{**opts.__dict__, "progress": False})
    # never more workers than shards: a fork pool starts every worker at once (`--jobs 99999` forked that many)
    jobs = min(opts.jobs or os.cpu_count() or 1, len(groups))
    if opts.runner == "ray":
        from stsched.ray_runtime import init_ray

        ray = init_ray(opts.address, jobs)
        task = ray.remote(num_cpus=1, max_retries=1)(simulate_shard)
        inst_ref, plan_ref = ray.put(instance), ray.put(plan)
        return ray.get([task.remote(inst_ref, plan_ref, g, quiet) for g in groups])
    from stsched.forking import die_with_parent

    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("fork"), initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(simulate_shard, instance, plan, g, quiet) for g in groups]
        return [f.result() for f in tqdm(futures, desc="shards", disable=None if opts.progress else True,
                                         leave=False)]


def merge(instance: Instance, plan: Plan, results: Sequence[ShardResult], unrouted: dict[int, np.ndarray],
          duration_s: float) -> Summary:
    """The summary of shards' results: counters and histograms added, sums added in plan order."""
    names = instance.service_names
    parts = sorted((p for r in results for p in r.parts), key=lambda p: (p.gpu, p.partition))
    hist = np.zeros((len(names), sketch.BUCKETS), dtype=np.int64)
    for r in results:
        hist += r.hist
    req = [0] * len(names)
    done = [0] * len(names)
    good = [0] * len(names)
    lat = [0.0] * len(names)
    for p in parts:
        for t in p.tenants:
            req[t.service] += t.requests
            done[t.service] += t.completed
            good[t.service] += t.within_slo
            lat[t.service] += t.latency_sum_ms
    for i, arr in unrouted.items():
        req[i] += len(arr)
    per = []
    for i, name in enumerate(names):
        lost = req[i] - done[i]
        mean = (lat[i] / done[i] if done[i] else float("nan")) if lost == 0 else float("inf")
        if req[i] == 0:
            mean = float("nan")
        per.append(ServiceSummary(name, float(instance.service(name).slo_ms), req[i], done[i], good[i],
                                  good[i] / req[i] if req[i] else 1.0, good[i] / duration_s,
                                  instance.service(name).rate * plan.scale, sketch.quantile(hist[i], lost, 0.50),
                                  sketch.quantile(hist[i], lost, 0.99), mean))
    n, c, g = sum(req), sum(done), sum(good)
    total = hist.sum(axis=0)
    lost = n - c
    mean = float("nan") if n == 0 else (float("inf") if lost else sum(lat) / c)
    cap = instance.mechanism.capacity
    used = sorted({p.gpu for p in parts})
    busy = tuple((p.gpu, p.partition, min(1.0, p.busy_s / (duration_s * p.procs))) for p in parts)
    util = (sum(p.size * min(1.0, p.busy_s / (duration_s * p.procs)) for p in parts) / (len(used) * cap)
            if used else 0.0)
    return Summary(duration_s, n, c, g, g / n if n else 1.0, g / duration_s, sketch.quantile(total, lost, 0.50),
                   sketch.quantile(total, lost, 0.99), mean, tuple(per), util, busy)


def simulate_stream(instance: Instance, plan: Plan, options: StreamOptions = StreamOptions()) -> StreamResult:
    """Simulate `plan` under Poisson arrivals for `options.duration_s` seconds, streaming (module docstring)."""
    check_holds_a_request([s.rate * plan.scale for s in instance.services], options.duration_s)
    t0 = time.perf_counter()
    groups = shard_gpus(instance, plan, options.shards) or [[]]
    results = _run_shards(instance, plan, groups, options)
    unrouted = _unrouted(instance, plan, options)
    summary = merge(instance, plan, results, unrouted, options.duration_s)
    records = None
    if options.records:
        names = instance.service_names
        pieces = [r for res in results for r in res.records]
        for i, arr in unrouted.items():
            nan = np.full(len(arr), np.nan)
            minus = np.full(len(arr), -1, dtype=np.int32)
            pieces.append(RequestRecords(names, np.full(len(arr), i, dtype=np.int32), arr, nan, nan, minus, minus))
        empty = np.empty(0)
        records = RequestRecords.concat(pieces) if pieces else RequestRecords(
            names, np.empty(0, dtype=np.int32), empty, empty, empty, np.empty(0, dtype=np.int32),
            np.empty(0, dtype=np.int32))
    wall = time.perf_counter() - t0
    per_worker: dict[int, float] = {}
    for r in results:
        per_worker[r.worker] = per_worker.get(r.worker, 0.0) + r.cpu_s
    return StreamResult(summary, records, wall, len(groups), summary.requests / wall if wall > 0 else 0.0,
                        tuple(r.cpu_s for r in results), tuple(per_worker.values()))
