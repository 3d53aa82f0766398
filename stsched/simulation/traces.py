"""Real request traces (data/traces/) turned into per-service rate schedules and arrival streams.

Two kinds of trace ship with the project (see each folder's PROVENANCE.md):

* **count traces** -- `azure-functions-2019`: per-minute invocation counts of 500 functions over 8 hours
  (minutes 480..959 of the trace day, Shahrad et al., ATC'20, via vHive In-Vitro).  Service *i* of an instance
  (instance order) is mapped onto the *i*-th function by total invocation volume (descending, ties broken by
  `HashFunction`; deterministic); with more services than functions the mapping wraps around.  The function's
  per-minute counts give the *shape*; the instance's rate scales it so that the **peak minute equals the
  instance's rate** (`normalise="peak"`, the default: an instance's rates are the peak rates, and a plan for the
  instance provisions the peak) or so that the **mean equals it** (`normalise="mean"`).
* **timestamp traces** -- `azure-llm-inference-2023` (two streams, code and conv, about one hour each) and
  `azure-functions-2021` (998 invocations pooled into one stream, arrival = end_timestamp - duration).  Service
  *i* replays stream *i mod k*, circularly shifted by a deterministic offset (a golden-ratio fraction of the span
  times *i // k*) and **time-scaled so that its mean rate equals the instance's rate**; the stream repeats
  (period = its span) for as long as the simulation needs.  Time scaling keeps the burstiness (the coefficient of
  variation of inter-arrival times) of the real trace.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stsched.errors import InputError

log = logging.getLogger(__name__)

COUNT_TRACES = ("azure-functions-2019",)
TIMESTAMP_TRACES = ("azure-llm-inference-2023", "azure-functions-2021")
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def trace_path(name: str) -> Path:
    """The folder of a shipped trace (`stsched.data.loaders.trace_dir`)."""
    from stsched.data.loaders import trace_dir

    return trace_dir(name)


def known_traces() -> tuple[str, ...]:
    return COUNT_TRACES + TIMESTAMP_TRACES


def _check_name(name: str) -> None:
    if name not in known_traces():
        raise InputError(f"unknown trace {name!r} (known: {', '.join(known_traces())})")


# ------------------------------------------------------------------------------------------- count traces
@dataclass(frozen=True)
class CountTrace:
    """Per-bin counts of a set of functions, ordered by total volume (row 0 = busiest)."""

    name: str
    bin_s: float
    labels: tuple[str, ...]
    counts: np.ndarray  # (functions, bins), float

    @property
    def bins(self) -> int:
        return self.counts.shape[1]

    @property
    def span_s(self) -> float:
        return self.bins * self.bin_s


@functools.lru_cache(maxsize=4)
def load_count_trace(name: str = "azure-functions-2019") -> CountTrace:
    """Per-minute counts of every function of a count trace, busiest first (deterministic order)."""
    _check_name(name)
    if name not in COUNT_TRACES:
        raise InputError(f"trace {name!r} has per-request timestamps, not per-minute counts")
    from stsched.data.importers import read_headed

    path = trace_path(name) / "invocations.csv"
    try:  # the one header rule of every CSV read (a minute named twice was renamed '485.1' and dropped)
        df = read_headed(path, ["HashFunction"])
    except OSError as e:
        raise InputError(f"cannot read: {e}", source=str(path)) from None
    minute_cols = [c for c in df.columns if c.isdigit()]
    if not minute_cols:
        raise InputError("expected HashFunction and per-minute columns", source=str(path))
    _check_minutes([int(c) for c in minute_cols], str(path))
    counts = pd.DataFrame({c: pd.to_numeric(df[c], errors="coerce") for c in minute_cols}).to_numpy(dtype=float)
    bad = ~(np.isfinite(counts) & (counts >= 0))
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(f"per-minute counts must be finite numbers >= 0: column {minute_cols[col]!r}, data row "
                         f"{row + 1}: {df[minute_cols[col]].iloc[row]!r}", source=str(path))
    total = counts.sum(axis=1)
    order = sorted(range(len(df)), key=lambda i: (-total[i], str(df["HashFunction"].iloc[i])))
    order = [i for i in order if total[i] > 0]
    if not order:  # else refused later as if the offset were wrong ('--functions-offset: ... has 0 functions')
        raise InputError("no function has invocations (every per-minute count is 0)", source=str(path))
    labels = tuple(str(df["HashFunction"].iloc[i])[:12] for i in order)
    counts = counts[order]
    counts.setflags(write=False)
    return CountTrace(name, 60.0, labels, counts)


def _check_minutes(minutes: list[int], source: str) -> None:
    """Minute columns one minute apart, in order: a gap or a column out of order would be read as the next minute."""
    for a, b in zip(minutes, minutes[1:]):
        if b != a + 1:
            what = f"minute {a + 1} is missing" if b > a + 1 else f"minute {a} is followed by minute {b}"
            raise InputError(f"per-minute columns must be consecutive minutes in order: {what}", source=source)


def check_function_offset(offset: int, name: str = "azure-functions-2019") -> int:
    """The offset of the first function a re-planning run follows: a whole number below the count trace's number
    of functions (service i follows function (offset + i) modulo that number; a larger offset allocated a rate
    array of offset + services rows before failing)."""
    n_fn = load_count_trace(name).counts.shape[0]
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < n_fn:
        raise InputError(f"function offset {offset!r}: trace {name!r} has {n_fn} functions with invocations "
                         f"(offsets 0..{n_fn - 1})")
    return offset


def rate_schedule(rates: np.ndarray | list[float], name: str = "azure-functions-2019",
                  normalise: str = "peak", offset: int = 0) -> np.ndarray:
    """Per-service, per-bin rates (req/s): shape of function (offset + i) modulo the trace's functions scaled by
    `rates[i]` (see module docstring)."""
    trace = load_count_trace(name)
    rates = np.asarray(rates, dtype=float)
    n_fn = trace.counts.shape[0]
    if offset + len(rates) > n_fn:  # documented (the rows wrap around), but a short replacement file said nothing
        log.warning("trace %r has %d functions with invocations for %d services%s: services %d.. follow its "
                    "functions again from the busiest", name, n_fn, len(rates),
                    f" from function {offset}" if offset else "", n_fn - offset)
    shapes = trace.counts[(offset + np.arange(len(rates))) % n_fn]
    if normalise == "peak":
        scale = shapes.max(axis=1)
    elif normalise == "mean":
        scale = shapes.mean(axis=1)
    else:
        raise InputError(f"normalise must be 'peak' or 'mean', got {normalise!r}")
    return shapes / scale[:, None] * rates[:, None]


# ------------------------------------------------------------------------------------------- timestamp traces
@functools.lru_cache(maxsize=4)
def load_timestamp_streams(name: str) -> tuple[np.ndarray, ...]:
    """The arrival streams of a timestamp trace, each sorted, in seconds from its first arrival."""
    _check_name(name)
    folder = trace_path(name)
    streams: list[np.ndarray] = []
    if name == "azure-llm-inference-2023":
        for file in ("AzureLLMInferenceTrace_code.csv", "AzureLLMInferenceTrace_conv.csv"):
            path = folder / file
            try:
                ts = pd.to_datetime(pd.read_csv(path)["TIMESTAMP"], format="mixed")
            except (OSError, KeyError, ValueError) as e:
                raise InputError(f"cannot read TIMESTAMP column: {e}", source=str(path)) from None
            t = np.sort((ts - ts.min()).dt.total_seconds().to_numpy())
            streams.append(t)
    elif name == "azure-functions-2021":
        path = folder / "AzureFunctionsInvocationTrace2021_sample.csv"
        try:
            df = pd.read_csv(path)
            t = (df["end_timestamp"] - df["duration"]).to_numpy(dtype=float)
        except (OSError, KeyError, ValueError) as e:
            raise InputError(f"cannot read end_timestamp/duration: {e}", source=str(path)) from None
        streams.append(np.sort(t - t.min()))
    else:
        raise InputError(f"trace {name!r} has per-minute counts, not per-request timestamps")
    for s in streams:
        s.setflags(write=False)
    return tuple(streams)


def replay_stream(name: str, index: int, rate: float, duration_s: float) -> np.ndarray:
    """Arrivals in [0, duration_s) of service `index` replaying a timestamp trace at mean rate `rate`."""
    if rate <= 0 or duration_s <= 0:
        return np.empty(0)
    streams = load_timestamp_streams(name)
    base = streams[index % len(streams)]
    n = len(base)
    span = float(base[-1]) + (float(base[-1]) / max(n - 1, 1))  # period: keeps the mean gap at the wrap
    mean_rate = n / span
    offset = (GOLDEN * (index // len(streams))) % 1.0 * span
    shifted = np.sort((base + offset) % span)
    scale = mean_rate / rate  # seconds of simulation per second of trace
    period = span * scale
    reps = int(math.ceil(duration_s / period))
    t = (shifted[None, :] * scale + period * np.arange(reps)[:, None]).ravel()
    return t[t < duration_s]


def stream_cv(name: str) -> list[float]:
    """Coefficient of variation of the inter-arrival times of every stream of a timestamp trace."""
    out = []
    for s in load_timestamp_streams(name):
        gaps = np.diff(s)
        out.append(float(gaps.std() / gaps.mean()) if len(gaps) > 1 and gaps.mean() > 0 else float("nan"))
    return out
