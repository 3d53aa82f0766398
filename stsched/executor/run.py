"""Execute a `Plan` on real hardware through a partition backend and report the simulator's `Summary`.

The executor follows the simulator step for step, with the execution time measured instead of looked up:

1. arrivals: `stsched.simulation.arrivals.generate` (Poisson by default, seeded, numpy), each service at its
   instance rate times `plan.scale`;
2. routing: every service's requests are split across the partitions that serve it in proportion to the tenants'
   rate shares, with `stsched.simulation.routing.assign` and the simulator's seed, so both see the same requests;
3. one GPU of the plan at a time (one physical device here), one worker per partition with tenants, started
   through the backend; partition sizes are mapped by their share of the device (`size / mechanism.capacity`) to
   the backend's units (threads, MPS percent, SMs);
4. every worker builds and warms up its tenants' models, then all start at one instant t0 and serve their
   requests in real time, round robin, one batch per tenant per turn (`profiler.partitions.runner.Runner.serve`,
   the semantics of `stsched.simulation.engine`);
5. latency = completion - arrival per request; `stsched.simulation.summary.summarize` makes the `Summary`.

Requests still queued `drain_s` after the arrival window are reported as not completed (latency infinite), as the
simulator does at a horizon; so are the requests of a service that no partition serves. GPUs of the plan that are
not run (`ExecOptions.gpus`) take no part: the requests routed to them are left out of the records. The executor
never decides anything about the plan.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm

from stsched.errors import InputError
from stsched.validate import MAX_REAL_RUN_S, check_int, check_real
from stsched.plan import Plan
from stsched.problem import Instance
from stsched.simulation import routing as routing_mod
from stsched.simulation.arrivals import ArrivalSpec, generate
from stsched.simulation.summary import PartitionUse, RequestRecords, Summary, summarize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecOptions:
    """`duration_s`: arrival window; `arrivals`: an ArrivalSpec string (poisson, gamma:CV, deterministic,
    trace:NAME); `drain_s`: how long after the window queued requests may still be served; `pad_batches`: run
    every batch at the tenant's full batch size (the checker's e_s) or at the number of requests taken;
    `lead_s`: pause between "all workers ready" and t0; `model_map`: instance model -> zoo model; `gpus`: plan
    GPU indices to run (default: every used GPU, one after another); `backend_options`: passed to the backend.
    `spin_ms`: a worker process (cpu, mps backends) that idles polls the clock for the last `spin_ms` before the
    next arrival instead of sleeping through it (wake-up median 0.5 ms instead of 1.5-2.2 ms); `None` (the
    default): `AUTO_SPIN_MS` where the worker owns its cores (the cpu backend, pinned) on an otherwise idle
    machine (`AUTO_SPIN_MAX_BUSY`), 0 (sleep) elsewhere (`spin_ms_for`).
    On a quiet machine an idle core that sleeps runs its next batches slower for a while (the host's "slow
    spells", docs/RESULTS.md, issue 15 session 17: with polling the executor's p99 moved 1.03-1.43 x between
    repetitions of the same arrivals against 1.54-2.87 x sleeping); on a CPU shared with other work the polling
    core is preempted inside batches more often (a batch's p90 time rose from 2.1-2.4 to 8 x the table at load
    6): give 0 there.  A worker thread (sm, gpu) always sleeps (polling would hold the GIL its neighbours need).  A worker process serves with its garbage
    collector off (`profiler.partitions.runner.Runner.serve`) and, with `timer_slack_ns` (default 1; None: the
    kernel's 50 us), its timer slack lowered, so that its sleeps end at their deadline (Linux)."""

    duration_s: float = 10.0
    seed: int = 0
    arrivals: str = "poisson"
    routing: str = "interleave"
    drain_s: float = 5.0
    pad_batches: bool = True
    lead_s: float = 0.5
    warmup: int = 3
    model_map: tuple[tuple[str, str], ...] = ()
    gpus: tuple[int, ...] | None = None
    progress: bool = True
    spin_ms: float | None = None
    timer_slack_ns: int | None = 1

    def __post_init__(self) -> None:
        check_real(self.duration_s, "executor: duration", minimum=0.0, strict=True, maximum=MAX_REAL_RUN_S)
        check_real(self.drain_s, "executor: drain", minimum=0.0, maximum=MAX_REAL_RUN_S)
        check_real(self.lead_s, "executor: lead", minimum=0.0, maximum=MAX_REAL_RUN_S)
        if self.spin_ms is not None:
            check_real(self.spin_ms, "executor: spin (ms)", minimum=0.0)
        if self.timer_slack_ns is not None and (isinstance(self.timer_slack_ns, bool)
                                                 or not isinstance(self.timer_slack_ns, int)
                                                 or self.timer_slack_ns < 1):
            raise InputError(f"executor: timer slack must be a whole number of ns >= 1 (or None), got "
                             f"{self.timer_slack_ns!r}")
        if self.routing not in routing_mod.ROUTINGS:
            raise InputError(f"executor: routing must be one of {', '.join(routing_mod.ROUTINGS)}")
        ArrivalSpec.parse(self.arrivals)
        if self.gpus is not None:  # a GPU listed twice ran twice, its batches overlapping in the records
            for gi in self.gpus:
                check_int(gi, "executor: gpus", minimum=0)
                if self.gpus.count(gi) > 1:
                    raise InputError(f"executor: gpus: GPU {gi} is listed twice")


#: one row per batch that ran: where, whose, when (seconds after t0), its measured time, requests taken, the
#: instance's time for it (e_s), and the worker thread's CPU time, page faults and involuntary context switches
#: over the batch (`profiler.partitions.runner.thread_counters`; NaN / -1 where the platform has none): a batch
#: slower than the table with cpu_ms close to exec_ms ran the whole time, only slower (the core, cache or memory
#: shared with other work on the host); one with cpu_ms well below was off its core
BATCH_COLUMNS = ("gpu", "partition", "service", "start_s", "exec_ms", "requests", "model_ms", "cpu_ms", "faults",
                 "switches")


@dataclass(frozen=True)
class ExecResult:
    """Records and summary (same types as the simulator's), every batch that ran, and what the backend gave."""

    records: RequestRecords
    summary: Summary
    batches: pd.DataFrame  # BATCH_COLUMNS
    layouts: tuple[dict[str, Any], ...]
    backend: dict[str, Any]
    arrivals: Mapping[str, np.ndarray] = field(repr=False, default_factory=dict)
    wall_s: float = 0.0

    def exec_table(self) -> pd.DataFrame:
        """Per (gpu, partition, service): median measured batch time and the instance's solo e_s."""
        if self.batches.empty:
            return pd.DataFrame(columns=["gpu", "partition", "service", "batches", "median_exec_ms", "model_ms"])
        g = self.batches.groupby(["gpu", "partition", "service"], as_index=False)
        return g.agg(batches=("exec_ms", "size"), median_exec_ms=("exec_ms", "median"),
                     model_ms=("model_ms", "first"))


def _zoo_model(instance: Instance, service: str, model_map: Mapping[str, str]) -> str:
    from profiler import zoo

    model = instance.service(service).model
    return zoo.resolve(model_map.get(model, model)).name


def route(instance: Instance, plan: Plan, arrivals: Mapping[str, np.ndarray], routing: str = "interleave",
          seed: int = 0) -> dict[tuple[int, int, int], np.ndarray]:
    """Arrival times per (gpu, partition, tenant), split as `stsched.simulation.simulator.run_plan` splits them."""
    routes: dict[str, list[tuple[tuple[int, int, int], float]]] = {}
    for gi, g in enumerate(plan.gpus):
        for qi, p in enumerate(g.partitions):
            for ti, t in enumerate(p.tenants):
                routes.setdefault(t.service, []).append(((gi, qi, ti), t.rate))
    out: dict[tuple[int, int, int], np.ndarray] = {}
    rng = np.random.default_rng([seed, 104729])
    for name, arr in arrivals.items():
        arr = np.asarray(arr, dtype=float)
        r = routes.get(name)
        if not r or len(arr) == 0:
            continue
        which = routing_mod.assign(len(arr), [x[1] for x in r], routing, rng)
        for m, (key, _) in enumerate(r):
            out[key] = arr[which == m]
    return out


def layout_units(instance: Instance, plan: Plan, backend: Any, gi: int) -> tuple[list[int], list[float]]:
    """Plan GPU `gi` as the executor opens it on `backend`: the indices of its partitions with tenants (one worker
    each) and their sizes in the backend's units (each partition's share of the device, `units_for`)."""
    q_idx = [qi for qi, p in enumerate(plan.gpus[gi].partitions) if p.tenants]
    cap = instance.mechanism.capacity
    return q_idx, [backend.units_for(plan.gpus[gi].partitions[qi].size / cap) for qi in q_idx]


def _check_plan(instance: Instance, plan: Plan, model_map: Mapping[str, str]) -> None:
    for gi, g in enumerate(plan.gpus):
        for qi, p in enumerate(g.partitions):
            if p.tenants and p.procs != 1:
                raise InputError(f"gpus[{gi}].partitions[{qi}]: {p.procs} processes per partition; the executor "
                                 f"runs one process per partition")
            for t in p.tenants:
                try:
                    _zoo_model(instance, t.service, model_map)
                except InputError as e:
                    model = instance.service(t.service).model
                    mapped = f" (mapped to {model_map[model]!r})" if model in model_map else ""
                    raise InputError(f"gpus[{gi}].partitions[{qi}]: service {t.service!r} runs model {model!r}"
                                     f"{mapped}, which the executor cannot build: {e}; map the instance's model to "
                                     f"one it can with --model-map {model}=ZOO (ExecOptions.model_map)") from None


#: the polling window of a worker that owns its cores (`ExecOptions.spin_ms` None): longer than any idle gap of
#: a served plan, so such a worker polls whenever it waits
AUTO_SPIN_MS = 1000.0
#: ... but only on an otherwise idle machine: fewer cores' worth of other work than this over 0.3 s of /proc/stat
#: right before the run, the workers waiting (`stsched.executor.cpustat.busy_cores`; not the load average, which
#: the executor's own polling worker raises to 1).  A polling worker beside other work is a CPU hog to the
#: scheduler, which then preempts it inside batches, where a sleeping one is woken first (session 17, load about
#: 4: compared runs of the quiet plan at 9-35 % attainment)
AUTO_SPIN_MAX_BUSY = 0.5


def spin_ms_for(backend: Any, options: ExecOptions, busy: float | None = None) -> float:
    """The polling window a worker process of `backend` gets: `options.spin_ms` where given, else `AUTO_SPIN_MS`
    where the worker owns its cores (the cpu backend with its partitions pinned) on an otherwise idle machine
    (`busy`, default measured now by `busy_cores`, below `AUTO_SPIN_MAX_BUSY`), and 0 (sleep) elsewhere or where
    /proc/stat cannot be read."""
    if options.spin_ms is not None:
        return float(options.spin_ms)
    owns = getattr(backend, "name", "") == "cpu" and bool(getattr(backend, "pin", False))
    if not owns:
        return 0.0
    if busy is None:
        from stsched.executor.cpustat import busy_cores

        busy = busy_cores()
    return AUTO_SPIN_MS if busy is not None and busy < AUTO_SPIN_MAX_BUSY else 0.0


def _steady(worker: Any, options: ExecOptions, spin_ms: float) -> dict[str, Any]:
    """How a worker waits and collects garbage while serving (`spin_ms_for`, `ExecOptions.timer_slack_ns`): only a
    worker process polls, stops its collector and sets its timer slack; a thread shares the GIL and the collector
    with its neighbours."""
    from profiler.partitions.base import ProcessWorker

    if isinstance(worker, ProcessWorker):
        return {"spin_s": spin_ms / 1000.0, "quiet_gc": True, "timer_slack_ns": options.timer_slack_ns}
    return {}


def execute(instance: Instance, plan: Plan, backend: Any, options: ExecOptions = ExecOptions()) -> ExecResult:
    """Run `plan` on `backend` (a `profiler.partitions.PartitionBackend`) for `options.duration_s` seconds."""
    t_wall = time.perf_counter()
    model_map = dict(options.model_map)
    _check_plan(instance, plan, model_map)
    backend.require()
    names = instance.service_names
    index = {n: i for i, n in enumerate(names)}
    rates = [s.rate * plan.scale for s in instance.services]
    arrivals = generate(ArrivalSpec.parse(options.arrivals), names, rates, options.duration_s, options.seed)
    routed = route(instance, plan, arrivals, options.routing, options.seed)
    used = [gi for gi, g in enumerate(plan.gpus) if g.used]
    run_gpus = used if options.gpus is None else list(options.gpus)
    for gi in run_gpus:
        if gi not in used:
            raise InputError(f"executor: plan GPU {gi} does not exist or serves nothing (used: {used})")
    parts: list[RequestRecords] = []
    use: list[PartitionUse] = []
    batch_rows: list[dict[str, Any]] = []
    layouts: list[dict[str, Any]] = []
    horizon = options.duration_s + options.drain_s
    for gi in tqdm(run_gpus, desc=f"execute {backend.name}", disable=not options.progress or None, unit="gpu"):
        q_idx, sizes = layout_units(instance, plan, backend, gi)
        plan_parts = [plan.gpus[gi].partitions[qi] for qi in q_idx]
        with backend.open(sizes) as pset:
            layouts.append({"gpu": gi, "plan_sizes": [p.size for p in plan_parts], "requested": sizes,
                            "obtained": pset.sizes, "workers": [w.info for w in pset.workers]})
            tenants_of = []
            for qi, p, w in zip(q_idx, plan_parts, pset.workers):
                ts = [{"model": _zoo_model(instance, t.service, model_map), "batch": t.batch,
                       "arrivals": routed.get((gi, qi, ti), np.empty(0)).tolist()}
                      for ti, t in enumerate(p.tenants)]
                tenants_of.append(ts)
                w.call("prepare", items=[(t["model"], t["batch"]) for t in ts], warmup=options.warmup)
            from profiler.measure import now

            spin = spin_ms_for(backend, options)  # (may read /proc/stat for 0.3 s: before t0, not out of the lead)
            t0 = now() + options.lead_s
            layouts[-1]["t0"] = t0  # the worker's clock (`profiler.measure.now`): record times are after it
            layouts[-1]["spin_ms"] = spin
            log.info("execute: GPU %d's workers %s", gi, f"poll {spin:g} ms before an arrival" if spin else "sleep")
            pending = [w.submit("serve", tenants=ts, t0=t0, horizon_s=horizon, pad=options.pad_batches,
                                **_steady(w, options, spin)) for w, ts in zip(pset.workers, tenants_of)]
            outs = [p.result(horizon + options.lead_s + 600.0) for p in pending]
        for qi, p, ts, out in zip(q_idx, plan_parts, tenants_of, outs):
            for ti, (t, tt) in enumerate(zip(p.tenants, ts)):
                a = np.asarray(tt["arrivals"], dtype=float)
                if len(a):
                    parts.append(RequestRecords(names, np.full(len(a), index[t.service], dtype=np.int32), a,
                                                np.asarray(out["start"][ti], dtype=float),
                                                np.asarray(out["finish"][ti], dtype=float),
                                                np.full(len(a), gi, dtype=np.int32),
                                                np.full(len(a), qi, dtype=np.int32)))
            bs, bd = np.asarray(out["batch_start"]), np.asarray(out["batch_dur"])
            busy = float(np.clip(np.minimum(bs + bd, options.duration_s) - np.maximum(bs, 0.0), 0.0, None).sum())
            use.append(PartitionUse(gi, qi, p.size, p.procs, busy))
            for s, d, k, m, c, f, w in zip(out["batch_start"], out["batch_dur"], out["batch_tenant"],
                                           out["batch_size"], out["batch_cpu"], out["batch_faults"],
                                           out["batch_switches"]):
                t = p.tenants[k]
                batch_rows.append({"gpu": gi, "partition": qi, "service": t.service, "start_s": s,
                                   "exec_ms": d * 1000.0, "requests": m,
                                   "model_ms": instance.solo_ms(t.service, t.batch, p.size, p.procs),
                                   "cpu_ms": c * 1000.0, "faults": f, "switches": w})
    served = {t.service for _, _, _, t in plan.placements()}
    for name, arr in arrivals.items():
        if name not in served and len(arr):  # no partition serves it: never completed, as in the simulator
            nan, minus = np.full(len(arr), np.nan), np.full(len(arr), -1, dtype=np.int32)
            parts.append(RequestRecords(names, np.full(len(arr), index[name], dtype=np.int32),
                                        np.asarray(arr, dtype=float), nan, nan, minus, minus))
    records = (RequestRecords.concat(parts) if parts else
               RequestRecords(names, np.empty(0, dtype=np.int32), np.empty(0), np.empty(0), np.empty(0),
                              np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32)))
    kept = {n: (0 if n in served else len(arrivals.get(n, ()))) for n in names}
    for k, arr in routed.items():
        if k[0] in run_gpus:
            kept[plan.gpus[k[0]].partitions[k[1]].tenants[k[2]].service] += len(arr)
    offered = {n: kept[n] / options.duration_s for n in names}
    summary = summarize(instance, records, options.duration_s, use, offered)
    batches = pd.DataFrame(batch_rows, columns=list(BATCH_COLUMNS))
    return ExecResult(records, summary, batches, tuple(layouts), backend.describe(), arrivals,
                      time.perf_counter() - t_wall)
