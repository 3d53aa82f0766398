"""Timing one batch: warm-up, repeats, median; CUDA events on a GPU stream, `perf_counter` on the CPU.

A `Clock` times one call of a function and returns milliseconds.  On the CPU the call is synchronous, so the
wall time around it is the execution time.  On a GPU the work is queued on a stream: the clock records a CUDA event
before and after the call on that stream, synchronises the stream, and reads the elapsed GPU time between the two
events (device time, free of host jitter after the launch).  Cross-process co-ordination (co-runs, the executor)
uses `now()`, `time.monotonic`, which on Linux is one clock for every process of the machine.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

from stsched.errors import InputError
from stsched.validate import MAX_REPEATS, check_int


def now() -> float:
    """Seconds on the machine-wide monotonic clock (comparable across processes on Linux)."""
    return time.monotonic()


@dataclass(frozen=True)
class TimingOptions:
    """`warmup` untimed calls, then `repeats` timed calls; the reported latency is the median."""

    warmup: int = 3
    repeats: int = 10

    def __post_init__(self) -> None:
        check_int(self.warmup, "timing: warmup", minimum=0, maximum=MAX_REPEATS)
        check_int(self.repeats, "timing: repeats", minimum=1, maximum=MAX_REPEATS)


@dataclass(frozen=True)
class Timing:
    """Per-call latencies in ms, in the order measured."""

    samples_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return float(statistics.median(self.samples_ms))

    @property
    def mean_ms(self) -> float:
        return float(statistics.fmean(self.samples_ms))

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        return (max(self.samples_ms) - min(self.samples_ms)) / self.median_ms

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "mean_ms": self.mean_ms, "n": len(self.samples_ms),
                "min_ms": min(self.samples_ms), "max_ms": max(self.samples_ms)}


class CpuClock:
    """Wall time of a synchronous call."""

    kind = "perf_counter"

    def __call__(self, fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000.0


class CudaClock:
    """GPU time between two CUDA events recorded around the call on `stream` (which is synchronised)."""

    kind = "cuda_events"

    def __init__(self, stream: Any) -> None:
        import torch

        self._torch = torch
        self.stream = stream
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def __call__(self, fn: Callable[[], Any]) -> float:
        with self._torch.cuda.stream(self.stream):
            self._start.record(self.stream)
            fn()
            self._end.record(self.stream)
        self._end.synchronize()
        return float(self._start.elapsed_time(self._end))


def measure(fn: Callable[[], Any], clock: Callable[[Callable[[], Any]], float],
            options: TimingOptions = TimingOptions()) -> Timing:
    """Warm up, then time `options.repeats` calls of `fn`."""
    for _ in range(options.warmup):
        clock(fn)
    samples = tuple(clock(fn) for _ in range(options.repeats))
    bad = [s for s in samples if not (s > 0 and math.isfinite(s))]
    if bad:
        raise RuntimeError(f"timing produced non-positive or non-finite samples: {bad[:3]}")
    return Timing(samples)


def run_window(fn: Callable[[], Any], clock: Callable[[Callable[[], Any]], float], start_at: float,
               stop_at: float) -> Timing:
    """Call `fn` back to back from `start_at` until `stop_at` (both `now()` seconds); keep the calls that started
    and finished inside the window (a co-run: both partitions are busy for the whole window)."""
    while now() < start_at:
        time.sleep(min(0.001, max(0.0, start_at - now())))
    samples = []
    while True:
        t = now()
        if t >= stop_at:
            break
        ms = clock(fn)
        if now() <= stop_at:
            samples.append(ms)
    if not samples:
        raise RuntimeError(f"co-run window of {stop_at - start_at:.3f} s too short for one call")
    return Timing(tuple(samples))
