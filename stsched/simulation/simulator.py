"""Discrete-event simulation of a plan under arrivals: route, run every partition, collect records, summarise.

Execution times are the checker's (`stsched.timing.gpu_timings`: solo latency x the margin's latency factor x the
worst-case interference slowdown) for a full batch of b requests.  A partial batch of m < b requests
(`exec_model="fill"`, the default) runs for that time scaled by L(m')/L(b), where L is the solo latency table at the
partition's size and process count and m' the smallest profiled batch >= m (the batch is padded to a profiled
size; never longer than the full batch); `exec_model="fixed"` charges the full-batch time to every batch (the
checker's worst case).  Either is optionally multiplied per batch by a log-normal noise factor of mean 1 and
coefficient of variation `noise_cv`.  Each service's requests are split across the partitions that serve it in
proportion to the tenants' rate shares (`stsched.simulation.routing`).  SLO attainment compares latency with the
service's real SLO (see `stsched.simulation.summary`).  There is no drop policy: queues grow under overload and
every request is eventually served (unless a horizon cuts the run, as the adaptive controller does per epoch).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from stsched.errors import InputError
from stsched.plan import Partition, Plan, Tenant
from stsched.problem import Instance
from stsched.simulation import routing as routing_mod
from stsched.simulation.arrivals import ArrivalSpec, MemoryNeed, generate
from stsched.simulation.engine import run_partition
from stsched.simulation.host import HostOverhead
from stsched.simulation.summary import PartitionUse, RequestRecords, Summary, summarize
from stsched.timing import gpu_timings

log = logging.getLogger(__name__)

EXEC_MODELS = ("fill", "fixed")


@dataclass(frozen=True)
class SimOptions:
    """`duration_s`: arrival window; `routing`: interleave | random; `noise_cv`: per-batch execution-time noise
    (log-normal, mean 1, 0 = none); `exec_model`: fill | fixed (module docstring); `host`: the host's overhead
    (`stsched.simulation.host`, none by default); `progress`: a tqdm bar over partitions."""

    duration_s: float = 60.0
    seed: int = 0
    routing: str = "interleave"
    noise_cv: float = 0.0
    exec_model: str = "fill"
    progress: bool = False
    host: HostOverhead = HostOverhead()

    def __post_init__(self) -> None:
        from stsched.validate import check_int

        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise InputError(f"duration must be a finite number > 0, got {self.duration_s!r}")
        check_int(self.seed, "seed", minimum=0)
        if self.routing not in routing_mod.ROUTINGS:
            raise InputError(f"routing must be one of {', '.join(routing_mod.ROUTINGS)}, got {self.routing!r}")
        check_noise_cv(self.noise_cv)
        if self.exec_model not in EXEC_MODELS:
            raise InputError(f"exec model must be one of {', '.join(EXEC_MODELS)}, got {self.exec_model!r}")
        if not isinstance(self.host, HostOverhead):
            raise InputError(f"host overhead must be a HostOverhead, got {type(self.host).__name__}")


@dataclass(frozen=True)
class PartitionTiming:
    gpu: int
    partition: int
    part: Partition
    exec_s: tuple[tuple[float, ...], ...]  # per tenant, seconds, indexed by the batch fill m = 0..b


#: per-batch factors of one partition: (its timing, how many, a generator) -> array of factors, or None; a 2 x n
#: array: row 0 for back-to-back batches, row 1 for batches that end an idle period (`stsched.simulation.host`);
#: a k x 2 x n array: those two rows per tenant of the partition
BatchFactors = Callable[[PartitionTiming, int, np.random.Generator], "np.ndarray | None"]


@dataclass(frozen=True)
class PlanRun:
    """Records of one run of a plan (NaN start: not dispatched before the horizon) in pieces (one per partition
    tenant, plus the unrouted requests; `records` joins them), busy time per partition inside the accounting
    window, and when every partition finishes its last dispatched batch."""

    parts: tuple[RequestRecords, ...]
    services: tuple[str, ...]
    use: tuple[PartitionUse, ...]
    free_at: Mapping[tuple[int, int], float] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def records(self) -> RequestRecords:
        if self.parts:
            return RequestRecords.concat(self.parts)
        empty = np.empty(0)
        return RequestRecords(self.services, np.empty(0, dtype=np.int32), empty, empty, empty,
                              np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32))


@dataclass(frozen=True)
class SimResult:
    records: RequestRecords
    summary: Summary
    wall_s: float


def fill_times(instance: Instance, service: str, batch: int, size: float, procs: int, full_s: float,
               exec_model: str = "fill") -> tuple[float, ...]:
    """Execution time (s) of a batch holding m = 0..batch requests (entry 0 unused); see the module docstring."""
    if exec_model == "fixed":
        return (full_s,) * (batch + 1)
    lat = {e.batch: e.latency_ms for e in instance.table(instance.service(service).model).entries
           if e.procs == procs and abs(e.size - size) < 1e-9 and e.batch <= batch}
    full = lat.get(batch)
    if not full:
        return (full_s,) * (batch + 1)
    sizes = sorted(lat)
    out = [full_s]
    for m in range(1, batch + 1):
        padded = next(b for b in sizes if b >= m)
        out.append(full_s * min(1.0, lat[padded] / full))
    return tuple(out)


def _check_tenant(instance: Instance, gi: int, qi: int, p: Partition, t: Tenant) -> None:
    """A tenant's service is the instance's and its profile has an entry at the tenant's batch and the
    partition's size and processes (a lookup, not a timing), else InputError."""
    if not instance.has_service(t.service):
        raise InputError(f"gpus[{gi}].partitions[{qi}]: unknown service {t.service!r}")
    if instance.entry(t.service, t.batch, p.size, p.procs) is None:
        raise InputError(f"gpus[{gi}].partitions[{qi}]: no latency for {t.service!r} at batch "
                         f"{t.batch}, size {p.size:g}, {p.procs} procs")


def partition_timings(instance: Instance, plan: Plan, exec_model: str = "fill",
                      gpus: Sequence[int] | None = None, *, check: bool = True) -> list[PartitionTiming]:
    """Execution times (s) of every tenant of every partition with tenants, as the checker computes them (full
    batch), by batch fill; `gpus`: only those GPUs (indices into `plan.gpus`; a GPU's times depend on it alone).
    `check=False`: every tenant was checked already (`_tenant_partitions`)."""
    out = []
    for gi in (range(len(plan.gpus)) if gpus is None else gpus):
        gpu = plan.gpus[gi]
        timings = gpu_timings(instance, gpu)
        for qi, (p, times) in enumerate(zip(gpu.partitions, timings)):
            if not p.tenants:
                continue
            exec_s = []
            for t, tt in zip(p.tenants, times):
                if check:
                    _check_tenant(instance, gi, qi, p, t)
                exec_s.append(fill_times(instance, t.service, t.batch, p.size, p.procs, tt.exec_ms / 1000.0,
                                         exec_model))
            out.append(PartitionTiming(gi, qi, p, tuple(exec_s)))
    return out


def _tenant_partitions(instance: Instance, plan: Plan) -> list[tuple[int, int, Partition]]:
    """(GPU index, partition index, partition) of every partition with tenants, each tenant checked by
    `_check_tenant` (a lookup, not a timing: `run_plan` times only the partitions that get requests, so a plan of
    100,000 GPUs given 30 requests costs its 30 requests); every tenant, of GPUs with requests or not, so that a
    refusal does not depend on where requests land."""
    out = []
    for gi, gpu in enumerate(plan.gpus):
        for qi, p in enumerate(gpu.partitions):
            if not p.tenants:
                continue
            for t in p.tenants:
                _check_tenant(instance, gi, qi, p, t)
            out.append((gi, qi, p))
    return out


NOISE_CV_MAX = 1e150  # log1p(CV^2), the log-normal's variance, must be finite


def check_noise_cv(cv: float) -> None:
    """A per-batch noise CV: a finite number in [0, NOISE_CV_MAX] (--noise-cv 1e300 made the log-normal's variance
    infinite: batches of 0 ms and of inf ms, p50 0.00 ms, without a word)."""
    if not (cv >= 0 and math.isfinite(cv)):
        raise InputError(f"noise CV must be a finite number >= 0, got {cv!r}")
    if cv > NOISE_CV_MAX:
        raise InputError(f"noise CV {cv:g} is above {NOISE_CV_MAX:g}: the log-normal's variance log(1 + CV^2) "
                         "would be infinite")


def _noise(cv: float, n: int, rng: np.random.Generator) -> np.ndarray | None:
    if cv <= 0:
        return None
    sigma2 = math.log1p(cv * cv)
    return rng.lognormal(-sigma2 / 2.0, math.sqrt(sigma2), n)


def _segments(arr: np.ndarray, routes: list[tuple[int, int, float]], slots: list[tuple[int, int, Partition]],
              available: Mapping[int, float] | None, start_s: float, reroute: bool):
    """Time segments of a service's arrivals and the routing weights in force in each: while a partition is
    down (not yet available) it gets no new requests, unless every partition of the service is down."""
    shares = [x[2] for x in routes]
    if not available or not reroute:
        return [(arr, shares)]
    ready = [max(start_s, available.get(slots[k][0], start_s)) for k, _, _ in routes]
    cuts = sorted({t for t in ready if t > start_s})
    if not cuts:
        return [(arr, shares)]
    out = []
    bounds = [-math.inf, *cuts, math.inf]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        a, b = np.searchsorted(arr, [lo, hi], side="left")
        if b <= a:
            continue
        up = [w if r <= max(lo, start_s) else 0.0 for w, r in zip(shares, ready)]
        out.append((arr[a:b], up if sum(up) > 0 else shares))
    return out


class SimulationStopped(Exception):
    """`run_plan` passed its `deadline` before every partition was run."""


def run_plan(instance: Instance, plan: Plan, arrivals: Mapping[str, np.ndarray], *,
             available: Mapping[int, float] | None = None, start_s: float = 0.0, horizon_s: float = math.inf,
             window: tuple[float, float] | None = None, routing: str = "interleave", noise_cv: float = 0.0,
             exec_model: str = "fill", reroute: bool = True, seed: int = 0, progress: bool = False,
             batch_factors: BatchFactors | None = None, host: HostOverhead = HostOverhead(),
             collect: Callable[[RequestRecords], None] | None = None, deadline: float | None = None) -> PlanRun:
    """Run `plan` on the given arrivals (absolute seconds, sorted per service).

    `batch_factors(partition timing, n, rng)`: n further multiplicative factors per batch in dispatch order (or
    None), e.g. interference slowdowns drawn from a predictive distribution (`stsched.simulation.interference_noise`).

    Every partition serves from `start_s`, or from `available[gpu]` when given (a GPU being reconfigured or still
    finishing earlier work); with `reroute`, requests arriving while a partition is not yet available are routed
    to the service's other partitions (by their shares) when it has any that are.  No batch starts at or after
    `horizon_s`.  Busy time is counted inside `window` (default: start to the last completion).  `host`: the
    host's dispatch gap per batch and wake-up delay (`stsched.simulation.host`; none by default).

    `collect`: each piece of records (a partition tenant's, the unrouted requests') is handed to it and not kept
    (the run's `parts` are then empty; `stsched.simulation.span_counts`).  `deadline` (a `time.perf_counter()`
    instant): SimulationStopped when it has passed after a partition was run.
    """
    t0 = time.perf_counter()
    names = instance.service_names
    index = {n: i for i, n in enumerate(names)}
    for name in arrivals:
        instance.service(name)
    slots = _tenant_partitions(instance, plan)
    # routing table: service -> [(slot index, tenant index, share)]
    routes: dict[str, list[tuple[int, int, float]]] = {}
    for k, (_, _, part) in enumerate(slots):
        for j, t in enumerate(part.tenants):
            routes.setdefault(t.service, []).append((k, j, t.rate))
    per_part: dict[int, list[list[np.ndarray]]] = {}  # only the partitions that get requests
    ids: dict[int, list[list[np.ndarray]]] = {}
    unrouted_svc, unrouted_arr = [], []
    rng_route = np.random.default_rng([seed, 104729])
    for name, arr in arrivals.items():
        arr = np.asarray(arr, dtype=float)
        if len(arr) == 0:
            continue
        r = routes.get(name)
        if not r:
            unrouted_svc.append(np.full(len(arr), index[name], dtype=np.int32))
            unrouted_arr.append(arr)
            continue
        for seg, weights in _segments(arr, r, slots, available, start_s, reroute):
            which = routing_mod.assign(len(seg), weights, routing, rng_route)
            hit = np.bincount(which, minlength=len(r)) if len(r) > 1 else np.array([len(seg)])
            for m in np.flatnonzero(hit):  # a request goes to few of a big plan's partitions: visit only those
                k, j, _ = r[m]
                part = seg if len(r) == 1 else seg[which == m]
                if k not in per_part:
                    n_ten = len(slots[k][2].tenants)
                    per_part[k], ids[k] = [[] for _ in range(n_ten)], [[] for _ in range(n_ten)]
                per_part[k][j].append(part)
                ids[k][j].append(np.full(len(part), index[name], dtype=np.int32))
    # the checker's execution times, only for the GPUs of partitions that got requests (the rest run no batch)
    timing = {(pt.gpu, pt.partition): pt
              for pt in partition_timings(instance, plan, exec_model, sorted({slots[k][0] for k in per_part}),
                                     check=False)}  # every tenant checked by `_tenant_partitions`
    parts_out: list[RequestRecords] = []
    keep = parts_out.append if collect is None else collect
    use: list[PartitionUse] = []
    free_at: dict[tuple[int, int], float] = {}
    bar = tqdm(slots, desc="simulate", disable=None if progress else True, leave=False)
    for k, (gi, qi, part) in enumerate(bar):
        begin = start_s if available is None else max(start_s, available.get(gi, start_s))
        if k not in per_part:  # no request: no batch, not busy, free when it becomes available
            free_at[(gi, qi)] = begin
            use.append(PartitionUse(gi, qi, part.size, part.procs, 0.0))
            continue
        pt = timing[(gi, qi)]
        # one array per tenant (a service appears once per partition), sorted because routing keeps order
        arrs = [x[0] if len(x) == 1 else (np.sort(np.concatenate(x)) if x else np.empty(0)) for x in per_part[k]]
        svc = [x[0] if len(x) == 1 else (np.concatenate(x) if x else np.empty(0, dtype=np.int32)) for x in ids[k]]
        n = sum(len(a) for a in arrs)
        noise = _noise(noise_cv, n + 1, np.random.default_rng([seed, 7919, pt.gpu, pt.partition]))
        idle = None
        if batch_factors is not None:
            extra = batch_factors(pt, n + 1, np.random.default_rng([seed, 6007, pt.gpu, pt.partition]))
            if extra is not None:
                extra = np.asarray(extra, dtype=float)
                if extra.ndim >= 2:  # [tenant,] (back-to-back batches, batches that end an idle period)
                    idle = extra[..., 1, :] if noise is None else noise * extra[..., 1, :]
                    extra = extra[..., 0, :]
                noise = extra if noise is None else noise * extra
        out = run_partition(arrs, pt.exec_s, [t.batch for t in pt.part.tenants], pt.part.procs, begin, horizon_s,
                            noise, host.batch_s, host.wake_s, idle)
        free_at[(pt.gpu, pt.partition)] = out.free_at
        for j, a in enumerate(arrs):
            if len(a):
                keep(RequestRecords(names, svc[j], a, out.start[j], out.finish[j],
                                    np.full(len(a), pt.gpu, dtype=np.int32),
                                    np.full(len(a), pt.partition, dtype=np.int32)))
        w0, w1 = window if window is not None else (start_s, max(out.free_at, start_s))
        ends = out.batch_start + out.batch_dur
        busy = float(np.clip(np.minimum(ends, w1) - np.maximum(out.batch_start, w0), 0.0, None).sum())
        use.append(PartitionUse(pt.gpu, pt.partition, pt.part.size, pt.part.procs, busy))
        if deadline is not None and time.perf_counter() >= deadline:
            raise SimulationStopped(f"stopped after {k + 1} of {len(slots)} partitions")
    for s, a in zip(unrouted_svc, unrouted_arr):
        nan = np.full(len(a), np.nan)
        minus = np.full(len(a), -1, dtype=np.int32)
        keep(RequestRecords(names, s, a, nan, nan, minus, minus))
    return PlanRun(tuple(parts_out), names, tuple(use), free_at, time.perf_counter() - t0)


def arrivals_of(instance: Instance, plan: Plan, arrivals: ArrivalSpec | Mapping[str, np.ndarray],
                options: SimOptions, need: MemoryNeed = MemoryNeed(),
                only: Sequence[int] | None = None) -> Mapping[str, np.ndarray]:
    """The arrivals `simulate` runs: drawn from a spec at every service's rate x `plan.scale`, or as given; `need`:
    the memory the simulation holds (`generate` refuses a run that would not fit; default: `simulate`'s); `only`:
    the services at these positions of the instance alone (the same arrays as drawing all)."""
    if not isinstance(arrivals, ArrivalSpec):
        return arrivals if only is None else {n: arrivals[n] for n in (instance.service_names[i] for i in only)
                                               if n in arrivals}
    rates = [s.rate * plan.scale for s in instance.services]
    return generate(arrivals, instance.service_names, rates, options.duration_s, options.seed, need, only)


def simulate(instance: Instance, plan: Plan, arrivals: ArrivalSpec | Mapping[str, np.ndarray] = ArrivalSpec(),
             options: SimOptions = SimOptions(), batch_factors: BatchFactors | None = None) -> SimResult:
    """Simulate `plan` for `options.duration_s` seconds of arrivals and drain the queues.

    With an `ArrivalSpec`, every service arrives at its instance rate times `plan.scale` (the rate the plan
    claims to serve), shaped by the spec.
    """
    t0 = time.perf_counter()
    arrivals = arrivals_of(instance, plan, arrivals, options)
    run = run_plan(instance, plan, arrivals, routing=options.routing, noise_cv=options.noise_cv,
                   exec_model=options.exec_model, seed=options.seed, progress=options.progress, window=(0.0, options.duration_s),
                   batch_factors=batch_factors, host=options.host)
    offered = {name: len(a) / options.duration_s for name, a in arrivals.items()}
    summary = summarize(instance, run.records, options.duration_s, run.use, offered)
    return SimResult(run.records, summary, time.perf_counter() - t0)
