"""The host's overhead, as the simulator models it: what a real server spends between and around batches.

The engine (`stsched.simulation.engine`) starts a partition's next batch the instant the previous one completes and
wakes an idle partition the instant a request arrives.  A real server does not: the executor
(`stsched.executor`, one Python worker per partition) spends time between two batches (the round-robin choice,
slicing the queue, looking up the model, recording times: the *dispatch gap*), and after idling it sleeps until
the next arrival and wakes late (timer slack, the OS scheduling the worker back onto a core: the *wake-up delay*).
Both are measured by the executor on every run (`stsched.executor.host.measure_host`, printed by `stsched execute`
and kept under `host` in its `--json` output) and modelled here by two constants:

- `batch_s`: every batch occupies its partition `batch_s` seconds longer than its execution time (its requests
  complete that much later, and the next batch starts that much later);
- `wake_s`: a partition that idled dispatches its next batch `wake_s` seconds after the arrival that ends the idle,
  taking every request that arrived by then (on top of `batch_s`).

A third measured quantity is the execution time itself: `BatchTimeQuantiles` holds, per partition, quantiles of
the ratio measured batch time / the simulator's execution time for that batch, from an executor run
(`host.exec_ratio` in `stsched execute --json`, at the percent levels `LEVELS`: every percent, and finer in the
top percent, where a queue's p99 is made); `batch_factors` turns them into the simulator's per-batch factors
(inverse-transform sampling), for a run on other arrivals of the same plan on the same machine (a calibration run:
never the run being compared, which would compare the executor with itself).  The executor also keeps them apart
for the batches dispatched back to back and for those that end an idle period (a shared host runs the two
differently: `BatchTimeQuantiles`), and per tenant (a host's delays add milliseconds, so a short batch's ratio
spreads far more than a long one's); the simulator then draws each batch's factor from its tenant's class
(`stsched.simulation.engine.run_partition`'s `noise` rows and `idle_noise`).

`parse_host_overhead` reads them from a number (seconds per batch), `BATCH,WAKE` (seconds), or a JSON file: the
output of `stsched execute --json` (its measured `host.overhead`) or an object `{"batch_s": .., "wake_s": ..}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from stsched.errors import InputError
from stsched.validate import MAX_REAL_RUN_S, check_real

#: the levels (percent) at which measured batch-time ratios are kept: every percent up to 99, then every tenth of a
#: percent up to 99.9 and every hundredth above.  A queue's p99 is made by the slowest percent of batches: kept at
#: 99 and 100 % alone (the grid before session 16), the draws between them were spread evenly from the 99th
#: percentile up to the slowest batch of the run, so one stall in 5,000 batches came back in half a percent of
#: the draws (docs/RESULTS.md, "CPU executor vs simulator", session 16)
LEVELS: tuple[float, ...] = (tuple(float(p) for p in range(99)) + tuple(round(99.0 + 0.1 * i, 1) for i in range(9))
                             + tuple(round(99.9 + 0.01 * i, 2) for i in range(10)) + (100.0,))
#: the levels of a file written before `LEVELS` (no `levels` key): 0, 1, ..., 100 %
LEGACY_LEVELS: tuple[float, ...] = tuple(float(p) for p in range(101))


def quantile_at(quantiles: Sequence[float], percent: float, levels: Sequence[float] = LEVELS) -> float:
    """The value at `percent` of a quantile function kept at `levels` (linear between two levels)."""
    return float(np.interp(percent, levels, quantiles))


def quantiles_mean(quantiles: Sequence[float], levels: Sequence[float] = LEVELS) -> float:
    """The mean of a distribution given by its quantile function at `levels` (piecewise linear between them)."""
    q, u = np.asarray(quantiles, dtype=float), np.asarray(levels, dtype=float) / 100.0
    return float(np.sum(np.diff(u) * (q[1:] + q[:-1]) / 2.0))


def mixture_quantiles(rows: Sequence[Sequence[float]], levels: Sequence[float] = LEVELS) -> tuple[float, ...]:
    """The quantile function at `levels` of an equal mixture of the distributions given by `rows` (each a quantile
    function at `levels`): the mean of their distribution functions, inverted."""
    u = np.asarray(levels, dtype=float) / 100.0
    xs = np.unique(np.concatenate([np.asarray(r, dtype=float) for r in rows]))
    cdf = np.mean([np.interp(xs, np.asarray(r, dtype=float), u) for r in rows], axis=0)
    return tuple(np.interp(u, cdf, xs).tolist())


@dataclass(frozen=True)
class HostOverhead:
    """Per-batch dispatch gap and wake-up delay after an idle period, seconds (module docstring)."""

    batch_s: float = 0.0
    wake_s: float = 0.0
    source: str = "none"

    def __post_init__(self) -> None:
        for name in ("batch_s", "wake_s"):  # seconds: finite, >= 0, at most a day (the project's one number check;
            # --host-overhead 1e300 printed p50 5.5e+302 ms, 0,1e308 overflowed the latencies)
            check_real(getattr(self, name), f"host overhead {name}", minimum=0.0, maximum=MAX_REAL_RUN_S)

    @property
    def none(self) -> bool:
        return self.batch_s == 0 and self.wake_s == 0

    def to_dict(self) -> dict[str, Any]:
        return {"batch_s": self.batch_s, "wake_s": self.wake_s, "source": self.source}

    @staticmethod
    def from_mapping(d: Mapping[str, Any], source: str) -> "HostOverhead":
        host = d.get("host") if isinstance(d.get("host"), Mapping) else None
        if host is not None:  # `stsched execute --json`
            d = host.get("overhead") if isinstance(host.get("overhead"), Mapping) else {}
        if "batch_s" not in d or "wake_s" not in d:
            raise InputError("expected the output of `stsched execute --json` (host.overhead) or an object with "
                             "batch_s and wake_s", source=source)
        try:
            return HostOverhead(float(d["batch_s"]), float(d["wake_s"]), source)
        except (TypeError, ValueError):
            raise InputError(f"batch_s {d['batch_s']!r}, wake_s {d['wake_s']!r}: expected numbers of seconds",
                             source=source) from None


def parse_host_overhead(text: str, what: str = "--host-overhead") -> HostOverhead:
    """A number (seconds per batch), `BATCH,WAKE` (seconds), or a JSON file (module docstring)."""
    parts = str(text).split(",")
    try:
        nums = [float(x) for x in parts]
    except ValueError:
        nums = None
    if nums is not None:
        if len(nums) > 2:
            raise InputError(f"{what} {text!r}: expected SECONDS, BATCH,WAKE or a JSON file")
        try:
            return HostOverhead(nums[0], nums[1] if len(nums) == 2 else 0.0, "given")
        except InputError as e:
            raise InputError(f"{what} {text!r}: {e}") from None
    path = Path(text)
    if not path.is_file():
        raise InputError(f"{what} {text!r}: not a number of seconds and no such file")
    return HostOverhead.from_mapping(_json_object(path), str(path))


def _json_object(path: Path) -> Mapping[str, Any]:
    """The JSON object in `path` (an `stsched execute --json` output), or one line naming the file."""
    from stsched.io import read_json

    d = read_json(path)
    if not isinstance(d, Mapping):
        raise InputError("expected a JSON object", source=str(path))
    return d


MIN_CLASS_BATCHES = 20  # fewer batches of a class (back-to-back, after idle) in a partition: its pooled quantiles


@dataclass(frozen=True)
class TenantRatios:
    """One tenant of a partition: quantiles of measured / simulated batch time over all its batches, over those
    dispatched back to back and over those that end an idle period, with the counts."""

    all: tuple[float, ...]
    busy: tuple[float, ...]
    idle: tuple[float, ...]
    batches: int
    busy_batches: int
    idle_batches: int

    def classes(self, conditioned: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(back-to-back, after-idle) quantiles to draw from: the pooled ones for a class with few batches."""
        if not conditioned:
            return self.all, self.all
        return (self.busy if self.busy_batches >= MIN_CLASS_BATCHES else self.all,
                self.idle if self.idle_batches >= MIN_CLASS_BATCHES else self.all)

    def to_dict(self, service: str) -> dict[str, Any]:
        return {"service": service, "batches": self.batches, "quantiles": list(self.all),
                "busy_batches": self.busy_batches, "busy_quantiles": list(self.busy),
                "idle_batches": self.idle_batches, "idle_quantiles": list(self.idle)}


@dataclass(frozen=True)
class BatchTimeQuantiles:
    """Per (gpu, partition): the quantiles at `levels` (percent, 0..100: `LEVELS`, or `LEGACY_LEVELS` read from an
    older file) of measured batch time / the simulator's batch time, and how many batches they summarise; `busy`
    and `idle` (optional): the same for the batches dispatched back to back and for those that end an idle
    period, with their counts in `busy_batches`, `idle_batches`.

    On a host shared with other work the two differ: a worker that slept is favoured by the OS scheduler when it
    wakes and runs its batch mostly unpreempted, while one that runs batch after batch has used its share and is
    preempted inside them (measured: after-idle batches faster at the median, back-to-back ones longer-tailed)."""

    ratios: Mapping[tuple[int, int], tuple[float, ...]]
    batches: Mapping[tuple[int, int], int]
    source: str = "executor"
    busy: Mapping[tuple[int, int], tuple[float, ...]] | None = None
    idle: Mapping[tuple[int, int], tuple[float, ...]] | None = None
    busy_batches: Mapping[tuple[int, int], int] | None = None
    idle_batches: Mapping[tuple[int, int], int] | None = None
    tenants: Mapping[tuple[int, int, str], TenantRatios] | None = None
    levels: tuple[float, ...] = LEVELS

    def __post_init__(self) -> None:
        rows = [*self.ratios.values(), *(self.busy or {}).values(), *(self.idle or {}).values()]
        rows += [q for t in (self.tenants or {}).values() for q in (t.all, t.busy, t.idle)]
        if any(len(q) != len(self.levels) for q in rows):
            raise ValueError(f"BatchTimeQuantiles: every quantile row needs one value per level ({len(self.levels)})")

    @property
    def conditioned(self) -> bool:
        return self.busy is not None and self.idle is not None

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for g, q in sorted(self.ratios):
            key = (g, q)
            row: dict[str, Any] = {"gpu": g, "partition": q, "batches": self.batches[key],
                                   "median": quantile_at(self.ratios[key], 50.0, self.levels),
                                   "mean": quantiles_mean(self.ratios[key], self.levels),
                                   "quantiles": list(self.ratios[key])}
            if self.conditioned and key in self.busy and key in self.idle:
                row.update({"busy_batches": self.busy_batches[key], "busy_quantiles": list(self.busy[key]),
                            "idle_batches": self.idle_batches[key], "idle_quantiles": list(self.idle[key])})
            if self.tenants:
                row["tenants"] = [t.to_dict(sv) for (g2, q2, sv), t in sorted(self.tenants.items())
                                  if (g2, q2) == key]
            rows.append(row)
        return {"levels": list(self.levels), "partitions": rows}

    @staticmethod
    def from_mapping(d: Mapping[str, Any], source: str) -> "BatchTimeQuantiles":
        host = d.get("host") if isinstance(d.get("host"), Mapping) else {}
        ratio = host.get("exec_ratio") if isinstance(host.get("exec_ratio"), Mapping) else {}
        rows = ratio.get("partitions")
        if not isinstance(rows, list) or not rows:
            raise InputError("expected the output of `stsched execute --json` with host.exec_ratio", source=source)
        levels = _levels(ratio.get("levels", LEGACY_LEVELS), source)
        ratios, counts = {}, {}
        busy, idle, n_busy, n_idle = {}, {}, {}, {}
        tenants: dict[tuple[int, int, str], TenantRatios] = {}
        for i, r in enumerate(rows):
            try:
                key = (int(r["gpu"]), int(r["partition"]))
                ratios[key] = _quantiles(r["quantiles"], i, "quantiles", source, levels)
                counts[key] = int(r["batches"])
                if "busy_quantiles" in r or "idle_quantiles" in r:
                    busy[key] = _quantiles(r["busy_quantiles"], i, "busy_quantiles", source, levels)
                    idle[key] = _quantiles(r["idle_quantiles"], i, "idle_quantiles", source, levels)
                    n_busy[key], n_idle[key] = int(r["busy_batches"]), int(r["idle_batches"])
                for t in r.get("tenants", []):
                    tenants[(*key, str(t["service"]))] = TenantRatios(
                        _quantiles(t["quantiles"], i, "tenants.quantiles", source, levels),
                        _quantiles(t["busy_quantiles"], i, "tenants.busy_quantiles", source, levels),
                        _quantiles(t["idle_quantiles"], i, "tenants.idle_quantiles", source, levels),
                        int(t["batches"]), int(t["busy_batches"]), int(t["idle_batches"]))
            except (KeyError, TypeError, ValueError):
                raise InputError(f"host.exec_ratio.partitions[{i}]: expected gpu, partition, batches, quantiles "
                                 f"(and busy_/idle_ quantiles and batches together)", source=source) from None
        if busy and len(busy) == len(ratios):
            return BatchTimeQuantiles(ratios, counts, source, busy, idle, n_busy, n_idle, tenants or None, levels)
        return BatchTimeQuantiles(ratios, counts, source, tenants=tenants or None, levels=levels)

    def batch_factors(self, conditioned: bool = False, per_tenant: bool = True,
                      ) -> Callable[[Any, int, np.random.Generator], "np.ndarray | None"]:
        """The simulator's `BatchFactors` (by default per tenant, not by class: on the shared 2-core machine the class
        split over-predicted the tail, docs/RESULTS.md): n factors drawn from the partition's ratios (a
        partition the calibration run did not measure gets the pooled distribution of those it did); with
        `conditioned` and the busy/idle split measured, a 2 x n array: row 0 drawn from the back-to-back
        batches' ratios, row 1 from those after an idle period (a class with fewer than `MIN_CLASS_BATCHES`
        batches in a partition uses the partition's pooled ratios); with `per_tenant` and every tenant of the
        partition measured, a k x 2 x n array: those rows per tenant, from the tenant's own batches."""
        grid = np.asarray(self.levels, dtype=float) / 100.0
        pooled_q = mixture_quantiles(list(self.ratios.values()), self.levels)
        split = conditioned and self.conditioned

        def draw(pt: Any, n: int, rng: np.random.Generator) -> np.ndarray:
            key = (pt.gpu, pt.partition)
            own = [self.tenants.get((*key, t.service)) for t in pt.part.tenants] if per_tenant and self.tenants else []
            if own and all(t is not None for t in own):
                u = rng.random((len(own), 2, n))
                return np.stack([np.stack([np.interp(u[j, c], grid, qc) for c, qc in
                                           enumerate(t.classes(conditioned))]) for j, t in enumerate(own)])
            q = self.ratios.get(key, pooled_q)
            if not split:
                return np.interp(rng.random(n), grid, q)
            qb, qi = TenantRatios(q, self.busy.get(key, q), self.idle.get(key, q), 0, self.busy_batches.get(key, 0),
                                  self.idle_batches.get(key, 0)).classes(True)
            u = rng.random((2, n))
            return np.stack([np.interp(u[0], grid, qb), np.interp(u[1], grid, qi)])

        return draw


def _levels(x: Any, source: str) -> tuple[float, ...]:
    """`host.exec_ratio.levels`: percent levels from 0 to 100, increasing."""
    try:
        levels = tuple(float(v) for v in x)
    except (TypeError, ValueError):
        levels = ()
    if (len(levels) < 2 or not all(math.isfinite(v) for v in levels) or levels[0] != 0.0 or levels[-1] != 100.0
            or any(b <= a for a, b in zip(levels, levels[1:]))):
        raise InputError(f"host.exec_ratio.levels: expected increasing percent levels from 0 to 100, got "
                         f"{str(x)[:80]}", source=source)
    return levels


def _quantiles(x: Any, i: int, name: str, source: str, levels: Sequence[float]) -> tuple[float, ...]:
    q = tuple(float(v) for v in x)
    if len(q) != len(levels) or not all(math.isfinite(v) and v > 0 for v in q) or list(q) != sorted(q):
        raise InputError(f"host.exec_ratio.partitions[{i}].{name}: expected {len(levels)} increasing positive "
                         f"quantiles (one per level)", source=source)
    return q


def read_batch_quantiles(path: str) -> BatchTimeQuantiles:
    """The measured batch-time ratios of an earlier `stsched execute --json` output."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--exec-noise {path!r}: no such file")
    return BatchTimeQuantiles.from_mapping(_json_object(p), str(p))
