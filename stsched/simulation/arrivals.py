"""Arrival processes per service: Poisson, Gamma inter-arrivals with a coefficient of variation, deterministic
(evenly spaced, for closed-form checks), real traces (`stsched.simulation.traces`) and piecewise-constant rate
schedules (non-homogeneous Poisson, used by the adaptive controller).

Every generator returns, per service, a sorted float64 array of arrival times in seconds within [0, duration).
The spec strings of the command line are `poisson`, `gamma:CV`, `deterministic` and `trace:NAME`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from stsched import address_space
from stsched.errors import InputError
from stsched.simulation import traces

# peak memory of a simulation per request (arrival lists, queues, records): 215.0-216.5 bytes measured on 0.6 M
# and 1.8 M Poisson requests of gpulet m2, with and without writing the records to CSV (ru_maxrss growth /
# requests, `python -m experiments.sim_memory --records`, 2026-12-07; 154 in an earlier version of the simulator,
# when this was 160); rounded up, never down, so that a run that does not fit is refused
BYTES_PER_REQUEST = 224
# the span simulation (`stsched.simulation.span_counts.simulate_spans`, which keeps no records): per request of the
# group of services drawn and run at once, the arrival arrays, service ids and routing's copies held until the
# group's run ends (17.7-18.3 bytes measured with every service in one group on 6.0 M, 18.1 M and 26.3 M Poisson
# requests of random 256- and 1,024-service instances, whose largest partition held 1 % or less of them); and per
# request of the partition being run, what its run adds while it lasts
# (the engine's lists, the outcome arrays, its records and their tally: 207.0-207.3 bytes in all measured on 0.6 M
# and 1.8 M requests of gpulet m2, one partition holding every request, so 189 besides the first term).  ru_maxrss
# growth / requests, `python -m experiments.sim_memory --spans`, 2026-12-08; rounded up, never down
SPAN_BYTES_PER_REQUEST = 24
SPAN_PARTITION_BYTES_PER_REQUEST = 200


def available_bytes() -> int:
    """Memory the system can give now (MemAvailable, else physical pages available), no more than the address
    space this process's limit (`ulimit -v`, `prlimit --as`) leaves: a run under it was let through on the
    machine's memory and stopped 'out of memory' after 34 s of work."""
    return min(_system_available(), address_space.left_bytes())


def _system_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 2 ** 62


@dataclass(frozen=True)
class MemoryNeed:
    """What a simulation holds: `bytes_per_request` for every request of its window, and `fixed_bytes` besides
    (e.g. the partition being run, `stsched.simulation.span_counts`); the default is the record-keeping simulator's."""

    bytes_per_request: float = BYTES_PER_REQUEST
    fixed_bytes: float = 0.0

    def request_limit(self) -> int:
        """The most requests a simulation can hold in the memory available now."""
        return max(1, int((available_bytes() - self.fixed_bytes) // self.bytes_per_request))


class MemoryShort(InputError):
    """A simulation's arrivals would not fit in the memory available (`requests` expected or drawn, `limit`)."""

    def __init__(self, message: str, requests: float, limit: int):
        super().__init__(message)
        self.requests, self.limit = requests, limit


def _too_many(what: str, count: float, limit: int, need: MemoryNeed = MemoryNeed()) -> MemoryShort:
    besides = f", {need.fixed_bytes / 2 ** 20:.0f} MiB besides" if need.fixed_bytes else ""
    return MemoryShort(f"arrivals {what}: {count:.3g} requests would not fit in memory (at most {limit:,} requests: "
                       f"{available_bytes() / 2 ** 30:.1f} GiB available at {need.bytes_per_request:g} bytes per "
                       f"request{besides}); shorten --duration or lower the rates or the CV", count, limit)


def check_holds_a_request(rates: Sequence[float], duration_s: float) -> None:
    """Refuse a duration too short to hold one request at `rates` (their sum times the duration < 1): its summary
    would report 100 % attainment of 0 requests.  Rates that are all zero are allowed (nothing to serve)."""
    total = float(sum(max(0.0, r) for r in rates))
    if total > 0 and total * duration_s < 1.0:
        raise InputError(f"duration {duration_s:g} s is too short to hold one request at the plan's rates "
                         f"({total:g} req/s in all: {total * duration_s:.3g} expected); give a duration of at "
                         f"least {1.0 / total:.3g} s")


GAMMA_CV = (1e-150, 1e150)  # gamma arrivals: the CVs whose shape 1/CV^2 is a finite float > 0


@dataclass(frozen=True)
class ArrivalSpec:
    """How requests arrive.  `kind`: poisson | gamma | deterministic | trace; `cv` for gamma; `trace` for trace;
    `trace_offset_s` starts a count trace that many seconds into it; `normalise` (count traces): peak | mean."""

    kind: str = "poisson"
    cv: float = 1.0
    trace: str = ""
    trace_offset_s: float = 0.0
    normalise: str = "peak"

    def __post_init__(self) -> None:
        if self.kind not in ("poisson", "gamma", "deterministic", "trace"):
            raise InputError(f"arrivals: unknown kind {self.kind!r} (poisson, gamma:CV, deterministic, trace:NAME)")
        if self.kind == "gamma" and not (self.cv > 0 and math.isfinite(self.cv)):
            raise InputError(f"arrivals gamma: CV must be a finite number > 0, got {self.cv!r}")
        if self.kind == "gamma" and not GAMMA_CV[0] <= self.cv <= GAMMA_CV[1]:  # the shape 1/CV^2 must be a float:
            # gamma:1e-300 was a ZeroDivisionError traceback, gamma:1e300 an OverflowError
            raise InputError(f"arrivals gamma: CV {self.cv:g} out of range ({GAMMA_CV[0]:g} .. {GAMMA_CV[1]:g}: the "
                             f"gamma shape 1/CV^2 must be a finite number > 0)")
        if self.kind == "trace" and self.trace not in traces.known_traces():
            raise InputError(f"arrivals trace: unknown trace {self.trace!r} "
                             f"(known: {', '.join(traces.known_traces())})")
        if self.trace_offset_s < 0:
            raise InputError("arrivals: trace offset must be >= 0")

    @classmethod
    def parse(cls, text: str) -> "ArrivalSpec":
        """`poisson`, `gamma:CV`, `deterministic` or `trace:NAME`."""
        kind, _, arg = text.strip().partition(":")
        if kind == "gamma":
            try:
                cv = float(arg)
            except ValueError:
                raise InputError(f"arrivals {text!r}: expected gamma:CV with a number CV") from None
            return cls("gamma", cv=cv)
        if kind == "trace":
            return cls("trace", trace=arg)
        spec = cls(kind)  # an unknown kind is named as such first ('TRACE:x' said 'TRACE takes no argument')
        if arg:
            raise InputError(f"arrivals {text!r}: {kind} takes no argument")
        return spec

    def describe(self) -> str:
        return {"gamma": f"gamma:{self.cv:g}", "trace": f"trace:{self.trace}"}.get(self.kind, self.kind)


def poisson(rate: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """A homogeneous Poisson process on [0, duration): the count is Poisson, the times its uniform order
    statistics, drawn without sorting as normalised cumulative sums of n + 1 exponentials (exact, O(n))."""
    if rate <= 0 or duration_s <= 0:
        return np.empty(0)
    n = int(rng.poisson(rate * duration_s))
    gaps = rng.standard_exponential(n + 1)
    cum = np.cumsum(gaps)
    return cum[:-1] * (duration_s / cum[-1])


def gamma(rate: float, cv: float, duration_s: float, rng: np.random.Generator, cap: int | None = None,
          need: MemoryNeed = MemoryNeed()) -> np.ndarray:
    """A renewal process with Gamma inter-arrival times of mean 1/rate and coefficient of variation `cv`
    (cv = 1: Poisson; cv > 1: bursty).  Started in equilibrium by a uniform random phase of the first gap.
    More than `cap` arrivals (a very large CV puts huge numbers of them at nearly one instant) raise InputError."""
    if rate <= 0 or duration_s <= 0:
        return np.empty(0)
    shape = 1.0 / cv ** 2
    scale = 1.0 / (rate * shape)
    chunks = []
    t0 = -rng.uniform(0.0, 1.0) * rng.gamma(shape, scale)
    total = 0
    expect = int(rate * duration_s * 1.1) + 16
    while True:
        gaps = rng.gamma(shape, scale, expect)
        times = t0 + np.cumsum(gaps)
        chunks.append(times)
        total += len(times)
        before, t0 = t0, float(times[-1])
        if t0 >= duration_s:
            break
        if cap is not None and total > cap:
            raise _too_many(f"gamma:{cv:g}", total, cap, need)
        expect = max(16, int(rate * (duration_s - t0) * 1.2) + 16)
        if t0 - before < 0.01 * (duration_s - before):  # nearly no progress (a very bursty process): grow
            expect = max(expect, 2 * len(times))
    t = np.concatenate(chunks)
    t = t[(t >= 0.0) & (t < duration_s)]
    if cap is not None and len(t) > cap:
        raise _too_many(f"gamma:{cv:g}", len(t), cap, need)
    return t


def deterministic(rate: float, duration_s: float, phase: float = 0.0) -> np.ndarray:
    """Evenly spaced arrivals at `rate` req/s starting at `phase` seconds (for closed-form checks)."""
    if rate <= 0 or duration_s <= 0:
        return np.empty(0)
    t = phase + np.arange(int(math.ceil((duration_s - phase) * rate)) + 1) / rate
    return t[t < duration_s]


def piecewise_poisson(bin_rates: np.ndarray, bin_s: float, t0: float, t1: float,
                      rng: np.random.Generator) -> np.ndarray:
    """A Poisson process whose rate is constant inside each bin of `bin_s` seconds (bin k covers
    [k*bin_s, (k+1)*bin_s), times absolute; past the last bin the schedule repeats), restricted to [t0, t1)."""
    if t1 <= t0:
        return np.empty(0)
    first = int(math.floor(t0 / bin_s))
    last = int(math.ceil(t1 / bin_s))
    ks = np.arange(max(first, 0), last)
    if len(ks) == 0 or len(bin_rates) == 0:
        return np.empty(0)
    lo = np.maximum(ks * bin_s, t0)
    hi = np.minimum((ks + 1) * bin_s, t1)
    lam = bin_rates[ks % len(bin_rates)] * np.clip(hi - lo, 0.0, None)
    counts = rng.poisson(lam)
    # uniform order statistics per bin without sorting: normalised cumulative sums of counts + 1 exponentials
    draws = counts + 1
    cs = np.cumsum(rng.standard_exponential(int(draws.sum())))
    ends = np.cumsum(draws) - 1
    base = np.concatenate([[0.0], cs[ends[:-1]]])
    scale = (hi - lo) / (cs[ends] - base)
    keep = np.ones(len(cs), dtype=bool)
    keep[ends] = False
    return lo.repeat(counts) + (cs[keep] - base.repeat(counts)) * scale.repeat(counts)


def check_fits(spec: ArrivalSpec, rates: Sequence[float], duration_s: float, need: MemoryNeed = MemoryNeed()) -> int:
    """The most requests that fit in memory at `need`; MemoryShort when the requests expected at `rates` over
    `duration_s` are more (`generate` checks this before drawing any arrival)."""
    limit = need.request_limit()
    expected = float(sum(max(0.0, r) for r in rates)) * duration_s
    if expected > limit:
        raise _too_many(spec.describe(), expected, limit, need)
    return limit


def generate(spec: ArrivalSpec, names: Sequence[str], rates: Sequence[float], duration_s: float,
             seed: int = 0, need: MemoryNeed = MemoryNeed(),
             only: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Arrival times per service (sorted, seconds in [0, duration_s)).  Each service draws from its own stream
    seeded by (seed, its position), so adding a service does not change the arrivals of the others, and `only`
    (positions; None: all) draws those services alone, the same arrays as drawing all.  A run whose expected
    requests (of `only`) would not fit in memory at `need` (the simulation's own per-request memory) is refused
    (MemoryShort) before any arrival is drawn."""
    if not duration_s > 0 or not math.isfinite(duration_s):
        raise InputError(f"duration must be a finite number > 0, got {duration_s!r}")
    if len(names) != len(rates):
        raise InputError("arrivals: names and rates differ in length")
    check_holds_a_request(rates, duration_s)
    which = range(len(names)) if only is None else only
    limit = check_fits(spec, [rates[i] for i in which], duration_s, need)
    out: dict[str, np.ndarray] = {}
    if spec.kind == "trace" and spec.trace in traces.COUNT_TRACES:
        sched = traces.rate_schedule(list(rates), spec.trace, spec.normalise)
        trace = traces.load_count_trace(spec.trace)
        for i in which:
            rng = np.random.default_rng([seed, i])
            t = piecewise_poisson(sched[i], trace.bin_s, spec.trace_offset_s, spec.trace_offset_s + duration_s, rng)
            out[names[i]] = t - spec.trace_offset_s
        return out
    for i in which:
        name, rate = names[i], rates[i]
        rng = np.random.default_rng([seed, i])
        if spec.kind == "poisson":
            out[name] = poisson(rate, duration_s, rng)
        elif spec.kind == "gamma":
            out[name] = gamma(rate, spec.cv, duration_s, rng, cap=limit - sum(len(a) for a in out.values()),
                              need=need)
        elif spec.kind == "deterministic":
            out[name] = deterministic(rate, duration_s)
        else:
            out[name] = traces.replay_stream(spec.trace, i, rate, duration_s)
    return out
