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
(`host.exec_ratio` in `stsched execute --json`); `batch_factors` turns them into the simulator's per-batch factors
(inverse-transform sampling), for a run on other arrivals of the same plan on the same machine (a calibration run:
never the run being compared, which would compare the executor with itself).

`parse_host_overhead` reads them from a number (seconds per batch), `BATCH,WAKE` (seconds), or a JSON file: the
output of `stsched execute --json` (its measured `host.overhead`) or an object `{"batch_s": .., "wake_s": ..}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from stsched.errors import InputError
from stsched.validate import check_real

QUANTILES = 101  # ratio quantiles kept per partition: 0, 1, ..., 100 %


@dataclass(frozen=True)
class HostOverhead:
    """Per-batch dispatch gap and wake-up delay after an idle period, seconds (module docstring)."""

    batch_s: float = 0.0
    wake_s: float = 0.0
    source: str = "none"

    def __post_init__(self) -> None:
        for name in ("batch_s", "wake_s"):  # seconds: finite, >= 0 (the project's one number check)
            check_real(getattr(self, name), f"host overhead {name}", minimum=0.0)

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


@dataclass(frozen=True)
class BatchTimeQuantiles:
    """Per (gpu, partition): `QUANTILES` quantiles (0..100 %) of measured batch time / the simulator's batch time,
    and how many batches they summarise."""

    ratios: Mapping[tuple[int, int], tuple[float, ...]]
    batches: Mapping[tuple[int, int], int]
    source: str = "executor"

    def to_dict(self) -> dict[str, Any]:
        return {"partitions": [{"gpu": g, "partition": q, "batches": self.batches[(g, q)],
                                "median": self.ratios[(g, q)][QUANTILES // 2],
                                "mean": float(np.mean(self.ratios[(g, q)])), "quantiles": list(self.ratios[(g, q)])}
                               for g, q in sorted(self.ratios)]}

    @staticmethod
    def from_mapping(d: Mapping[str, Any], source: str) -> "BatchTimeQuantiles":
        host = d.get("host") if isinstance(d.get("host"), Mapping) else {}
        rows = host.get("exec_ratio", {}).get("partitions") if isinstance(host.get("exec_ratio"), Mapping) else None
        if not isinstance(rows, list) or not rows:
            raise InputError("expected the output of `stsched execute --json` with host.exec_ratio", source=source)
        ratios, counts = {}, {}
        for i, r in enumerate(rows):
            try:
                key = (int(r["gpu"]), int(r["partition"]))
                q = tuple(float(x) for x in r["quantiles"])
                counts[key] = int(r["batches"])
            except (KeyError, TypeError, ValueError):
                raise InputError(f"host.exec_ratio.partitions[{i}]: expected gpu, partition, batches, quantiles",
                                 source=source) from None
            if len(q) != QUANTILES or not all(math.isfinite(x) and x > 0 for x in q) or list(q) != sorted(q):
                raise InputError(f"host.exec_ratio.partitions[{i}]: expected {QUANTILES} increasing positive "
                                 f"quantiles", source=source)
            ratios[key] = q
        return BatchTimeQuantiles(ratios, counts, source)

    def batch_factors(self) -> Callable[[Any, int, np.random.Generator], "np.ndarray | None"]:
        """The simulator's `BatchFactors`: n factors drawn from the partition's measured ratio distribution (a
        partition the calibration run did not measure gets the pooled distribution of those it did)."""
        grid = np.linspace(0.0, 1.0, QUANTILES)
        pooled = np.sort(np.concatenate([np.asarray(q) for q in self.ratios.values()]))
        pooled_q = tuple(np.quantile(pooled, grid).tolist())

        def draw(pt: Any, n: int, rng: np.random.Generator) -> np.ndarray:
            q = self.ratios.get((pt.gpu, pt.partition), pooled_q)
            return np.interp(rng.random(n), grid, q)

        return draw


def read_batch_quantiles(path: str) -> BatchTimeQuantiles:
    """The measured batch-time ratios of an earlier `stsched execute --json` output."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--exec-noise {path!r}: no such file")
    return BatchTimeQuantiles.from_mapping(_json_object(p), str(p))
