"""What runs inside one partition's worker: build zoo models, time batches, co-run windows, serve requests.

A `Runner` lives in a worker process (cpu, mps backends) or a worker thread (sm, gpu backends) and is driven by
named commands (`prepare`, `measure`, `window`, `serve`, `info`, `release`).  Everything it returns is plain data
(lists, dicts, floats) so that it crosses a process pipe unchanged.

On a GPU the runner launches on its partition's stream (a green-context stream for `sm`) and, when `graphs` is on,
captures each (model, batch) forward pass into a CUDA graph once, so one batch is one launch: workers that share a
Python interpreter (threads) then contend for the GIL once per batch, not once per kernel.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import resource
import sys
import threading
import time
from bisect import bisect_right
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from profiler.measure import CpuClock, CudaClock, Timing, TimingOptions, measure, now, run_window

log = logging.getLogger(__name__)

# Workers of the sm and gpu backends are threads of one process.  Building a model on the GPU draws on the
# process's CUDA random generator, whose state a CUDA-graph capture in another thread records ("Offset increment
# outside graph capture", seen on an H200 when partitions loaded in parallel): builds and captures take turns.
CUDA_BUILD_LOCK = threading.Lock()


PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 29, 30  # linux/prctl.h


def _prctl() -> Any:
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fn = libc.prctl
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return fn


@contextmanager
def timer_slack(ns: int | None) -> Iterator[int | None]:
    """Set the calling thread's timer slack to `ns` nanoseconds (Linux `prctl(PR_SET_TIMERSLACK)`) for the block
    and restore it after; yields the slack in force (None: not changed, `ns` None or not Linux)."""
    if ns is None or not sys.platform.startswith("linux"):
        yield None
        return
    try:
        prctl = _prctl()
        before = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)
        if before < 0 or prctl(PR_SET_TIMERSLACK, max(1, int(ns)), 0, 0, 0) != 0:
            raise OSError("prctl refused")
    except (OSError, AttributeError) as e:
        log.debug("timer slack not set (%s)", e)
        yield None
        return
    try:
        yield prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)
    finally:
        prctl(PR_SET_TIMERSLACK, before, 0, 0, 0)


def thread_counters() -> tuple[int, int]:
    """The calling thread's (page faults, involuntary context switches) so far: the counters of Linux
    `getrusage(RUSAGE_THREAD)`; (-1, -1) where the platform has no per-thread usage.

    `Runner.serve` brackets every batch with them, and inside them, right around the timed call, with the thread's
    CPU clock (`time.thread_time`, exact to the nanosecond; `getrusage`'s user + system time of a running thread
    moves only at scheduler ticks, 0 for most 1 ms batches).  That tells where a batch's wall time went: a batch
    whose CPU time falls short of its duration was off the core (preempted: the switches count it, or the
    hypervisor took the core), one with page faults touched new memory, and one as long on the CPU as on the clock
    ran its own code the whole time, only slower (a host whose core, cache or memory another workload shares)."""
    if not hasattr(resource, "RUSAGE_THREAD"):
        return -1, -1
    u = resource.getrusage(resource.RUSAGE_THREAD)
    return u.ru_minflt + u.ru_majflt, u.ru_nivcsw


class Runner:
    """Runs zoo models on one partition.  `device` is "cpu" or "cuda[:i]"; `stream` a torch CUDA stream or None."""

    def __init__(self, device: str = "cpu", stream: Any = None, graphs: bool = False, seed: int = 0,
                 extra_info: dict[str, Any] | None = None) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.cuda = device.startswith("cuda")
        if self.cuda and stream is None:
            stream = torch.cuda.current_stream(torch.device(device))
        self.stream = stream
        self.graphs = graphs and self.cuda
        self.seed = seed
        self.clock: Callable[[Callable[[], Any]], float] = CudaClock(stream) if self.cuda else CpuClock()
        self._models: dict[str, Any] = {}
        self._calls: dict[tuple[str, int], Callable[[], Any]] = {}
        self._inputs: dict[tuple[str, int], Any] = {}
        self._graphed: dict[tuple[str, int], bool] = {}
        self.extra_info = dict(extra_info or {})

    # -- building -------------------------------------------------------------------------------------------
    def _model(self, name: str) -> Any:
        if name not in self._models:
            from profiler import zoo

            if self.cuda:
                with CUDA_BUILD_LOCK:
                    self._models[name] = zoo.build(name, self.device, self.seed)
            else:
                self._models[name] = zoo.build(name, self.device, self.seed)
        return self._models[name]

    def _eager(self, model: Any, x: Any) -> Callable[[], Any]:
        torch = self.torch
        if not self.cuda:
            def call() -> Any:
                with torch.inference_mode():
                    return model(x)
            return call

        def call_cuda() -> Any:
            with torch.inference_mode(), torch.cuda.stream(self.stream):
                return model(x)
        return call_cuda

    def _graph(self, model: Any, x: Any) -> Callable[[], Any]:
        torch = self.torch
        eager = self._eager(model, x)
        with torch.cuda.stream(self.stream):
            for _ in range(3):  # warm-up on the capture stream (cuDNN autotuning, allocator)
                eager()
        self.stream.synchronize()
        g = torch.cuda.CUDAGraph()
        with CUDA_BUILD_LOCK, torch.inference_mode(), torch.cuda.graph(g, stream=self.stream,
                                                                        capture_error_mode="thread_local"):
            model(x)

        def replay() -> None:
            with torch.cuda.stream(self.stream):
                g.replay()
        return replay

    def _call(self, model_name: str, batch: int) -> Callable[[], Any]:
        key = (model_name, batch)
        if key not in self._calls:
            from profiler import zoo

            model = self._model(model_name)
            x = zoo.make_input(model_name, batch, self.device, self.seed)
            self._inputs[key] = x
            if self.cuda:  # weights and input were written on this thread's current stream, not the partition's
                self.torch.cuda.current_stream(self.torch.device(self.device)).synchronize()
            fn = None
            if self.graphs:
                try:
                    fn = self._graph(model, x)
                    self._graphed[key] = True
                except Exception as e:  # noqa: BLE001 - any capture failure falls back to eager, recorded
                    log.warning("CUDA graph capture failed for %s batch %d (%s); running eagerly", model_name,
                                batch, e)
                    self._graphed[key] = False
            if fn is None:
                fn = self._eager(model, x)
                self._graphed.setdefault(key, False)
            self._calls[key] = fn
        return self._calls[key]

    def _run(self, fn: Callable[[], Any]) -> None:
        """Run one batch to completion."""
        fn()
        if self.cuda:
            self.stream.synchronize()

    # -- commands -------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        torch = self.torch
        out: dict[str, Any] = {"pid": os.getpid(), "torch": str(torch.__version__), "device": self.device,
                               "threads": torch.get_num_threads(), "python": platform.python_version(),
                               "clock": getattr(self.clock, "kind", "?"), "graphs": self.graphs}
        if hasattr(os, "sched_getaffinity"):
            out["cpu_affinity"] = sorted(os.sched_getaffinity(0))
        if self.cuda:
            props = torch.cuda.get_device_properties(torch.device(self.device))
            out.update({"gpu_name": props.name, "gpu_sms": props.multi_processor_count,
                        "gpu_memory_mb": props.total_memory / 2 ** 20, "cuda": str(torch.version.cuda),
                        "cudnn": torch.backends.cudnn.version(),
                        "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                        "allow_tf32_cudnn": torch.backends.cudnn.allow_tf32,
                        "mps_active_thread_percentage": os.environ.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE")})
        out.update(self.extra_info)
        return out

    def prepare(self, items: list[tuple[str, int]], warmup: int = 2) -> dict[str, Any]:
        """Build and warm up every (model, batch); returns which ones run as CUDA graphs."""
        for model, batch in items:
            fn = self._call(model, int(batch))
            for _ in range(warmup):
                self._run(fn)
        return {f"{m}@{b}": self._graphed.get((m, int(b)), False) for m, b in items}

    def load(self, items: list[tuple[str, int]], warmup: int = 2) -> dict[str, Any]:
        """Load models from nothing, as after a reconfiguration: build each model's weights on the device, then
        make its input, warm it up and capture its CUDA graph (first batch ready).  Returns milliseconds."""
        out: dict[str, Any] = {"build_ms": [], "prepare_ms": []}
        for model, batch in items:
            t0 = time.perf_counter()
            self._model(model)
            if self.cuda:
                self.torch.cuda.synchronize(self.torch.device(self.device))
            t1 = time.perf_counter()
            fn = self._call(model, int(batch))
            for _ in range(warmup):
                self._run(fn)
            t2 = time.perf_counter()
            out["build_ms"].append((t1 - t0) * 1000)
            out["prepare_ms"].append((t2 - t1) * 1000)
        out["total_ms"] = sum(out["build_ms"]) + sum(out["prepare_ms"])
        return out

    def measure(self, model: str, batch: int, warmup: int = 3, repeats: int = 10) -> dict[str, Any]:
        fn = self._call(model, int(batch))
        t = measure(fn, self.clock, TimingOptions(warmup, repeats))
        return {"samples_ms": list(t.samples_ms), "graph": self._graphed.get((model, int(batch)), False)}

    def window(self, model: str, batch: int, start_at: float, stop_at: float) -> dict[str, Any]:
        """Back-to-back batches inside [start_at, stop_at] (`now()` seconds); call `prepare` first."""
        fn = self._call(model, int(batch))
        t: Timing = run_window(fn, self.clock, start_at, stop_at)
        return {"samples_ms": list(t.samples_ms), "graph": self._graphed.get((model, int(batch)), False)}

    def serve(self, tenants: list[dict[str, Any]], t0: float, horizon_s: float, pad: bool = True,
              spin_s: float = 0.0, quiet_gc: bool = False, timer_slack_ns: int | None = None) -> dict[str, Any]:
        """Serve requests round robin, one batch per tenant per turn (the simulator's engine, in real time).

        `tenants`: dicts with `model`, `batch`, `arrivals` (sorted seconds after `t0`, a `now()` time).  When a
        tenant's turn comes at time t it takes its requests that arrived by t, at most `batch` of them, and runs
        them as one batch (padded to `batch` when `pad`); a tenant with nothing queued is skipped; when nothing
        is queued the worker sleeps until `spin_s` before the next arrival, then polls the clock until it comes
        (a sleeping thread wakes late: timer slack and the OS scheduling it back cost milliseconds, which a
        serving system's polling dispatcher does not pay; `spin_s` 0: sleep all the way).  No batch starts at or
        after `horizon_s`.  With `quiet_gc` (a worker process: the collector is the process's own) the cyclic
        garbage collector is off while serving, what exists frozen first, so that no collection pauses a batch;
        it is restored afterwards.  With `timer_slack_ns` (Linux, a worker process: the slack is per thread) the
        thread's timer slack is set while serving, so that a sleep ends within that many ns of its deadline instead
        of the kernel's default 50 us, and restored afterwards (`timer_slack`).
        Returns per tenant the dispatch and completion times of each request (NaN: not served) and the batches,
        each with its thread CPU time (`time.thread_time` read right before and after the timed call), page faults
        and involuntary context switches (`thread_counters`, read outside those).  The reads are outside the timed
        call, so a batch's measured time is unchanged, but they lie between batches: the dispatch gap (`gap_ms`,
        `stsched.executor.host`) includes them (a few us per batch: docs/PROFILER.md).
        """
        with timer_slack(timer_slack_ns):
            if not quiet_gc:
                return self._serve(tenants, t0, horizon_s, pad, spin_s)
            collecting = gc.isenabled()
            gc.freeze()  # cheap (no collection, which could take longer than the lead before t0)
            gc.disable()
            try:
                return self._serve(tenants, t0, horizon_s, pad, spin_s)
            finally:
                gc.unfreeze()
                if collecting:
                    gc.enable()

    def _serve(self, tenants: list[dict[str, Any]], t0: float, horizon_s: float, pad: bool, spin_s: float,
               ) -> dict[str, Any]:
        k = len(tenants)
        arr = [list(map(float, t["arrivals"])) for t in tenants]
        n = [len(a) for a in arr]
        bs = [int(t["batch"]) for t in tenants]
        calls = {}
        for t, b in zip(tenants, bs):
            calls[(t["model"], b)] = self._call(t["model"], b)
        start = [np.full(m, np.nan) for m in n]
        finish = [np.full(m, np.nan) for m in n]
        b_start: list[float] = []
        b_dur: list[float] = []
        b_tenant: list[int] = []
        b_size: list[int] = []
        b_cpu: list[float] = []
        b_faults: list[int] = []
        b_switches: list[int] = []
        heads = [0] * k
        turn = 0
        while True:
            pending = [i for i in range(k) if heads[i] < n[i]]
            if not pending:
                break
            t = now() - t0
            if t >= horizon_s:
                break
            chosen = -1
            for j in range(k):
                i = (turn + j) % k
                if heads[i] < n[i] and arr[i][heads[i]] <= t:
                    chosen = i
                    break
            if chosen < 0:
                nxt = min(arr[i][heads[i]] for i in pending)
                if nxt >= horizon_s:
                    break
                wait = nxt - (now() - t0)
                if wait > spin_s:
                    time.sleep(wait - spin_s)
                while now() - t0 < nxt:  # poll the last `spin_s` (the partition's core is its own)
                    pass
                continue
            i = chosen
            h = heads[i]
            m = bisect_right(arr[i], t, h, min(h + bs[i], n[i])) - h
            if pad or m == bs[i]:
                fn = calls[(tenants[i]["model"], bs[i])]
            else:
                fn = self._call(tenants[i]["model"], m)
            u0 = thread_counters()  # outside the CPU clock's bracket, which holds the timed call alone
            c0 = time.thread_time()
            s = now() - t0
            self._run(fn)
            e = now() - t0
            c1 = time.thread_time()
            u1 = thread_counters()
            b_cpu.append(c1 - c0)
            b_faults.append(u1[0] - u0[0] if u0[0] >= 0 else -1)
            b_switches.append(u1[1] - u0[1] if u0[1] >= 0 else -1)
            start[i][h:h + m] = s
            finish[i][h:h + m] = e
            b_start.append(s)
            b_dur.append(e - s)
            b_tenant.append(i)
            b_size.append(m)
            heads[i] = h + m
            turn = (i + 1) % k
        return {"start": [x.tolist() for x in start], "finish": [x.tolist() for x in finish],
                "batch_start": b_start, "batch_dur": b_dur, "batch_tenant": b_tenant, "batch_size": b_size,
                "batch_cpu": b_cpu, "batch_faults": b_faults, "batch_switches": b_switches}

    def observed_sms(self, programs: int = 2048, graph: bool = False) -> list[int]:
        """SM ids that a probe kernel on this partition's stream ran on (`profiler.smprobe`; GPU only), launched
        directly or, with `graph`, replayed from a CUDA graph captured on the stream."""
        if not self.cuda:
            raise RuntimeError("observed_sms needs a CUDA partition")
        from profiler.smprobe import observed_sms

        return sorted(observed_sms(self.stream, programs, device=self.device, graph=graph))

    def release(self) -> None:
        """Drop models, inputs and graphs (free memory between sweep points)."""
        self._calls.clear()
        self._inputs.clear()
        self._models.clear()
        self._graphed.clear()
        if self.cuda:
            self.torch.cuda.empty_cache()
