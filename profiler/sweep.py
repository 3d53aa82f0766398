"""A profiling sweep over (model, batch, partition size), written in the project's profile schema and resumable.

    from profiler.partitions import get_backend
    from profiler.sweep import SweepSpec, sweep
    sweep(get_backend("cpu"), SweepSpec(models=("resnet-tiny",), batches=(1, 4), sizes=(1, 2)), "out/cpu")

Output folder (data/README.md describes the tables):

* `solo.csv`: one row per (model, batch, partition): `latency_ms` = **median** of `repeats` timed batches after
  `warmup` untimed ones; `throughput_rps` = 1000 x batch / latency_ms (one process); `l2_util` / `dram_util`
  empty (not measured: they need Nsight Compute).  `partition` is the size actually obtained (green contexts
  round SM counts up; the driver is asked, never assumed).
* `corun.csv`: two partitions of one layout run two models back to back for `corun_window_s` seconds from a
  common start; each side's median is its latency while the other runs.  One measurement gives two rows (each
  side as the victim).
* `meta.json`: device, driver, CUDA and torch versions, SM count (or cores), date, timing options, what every
  worker reported, the SM counts read back per requested size.
* `samples.json`: every timed sample behind every row (for noise analysis).

Tables are rewritten atomically after every measurement; a restarted sweep skips the rows already present.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd
from tqdm import tqdm

from profiler.measure import TimingOptions, Timing, now
from profiler.partitions.base import PartitionBackend, PartitionSet, WorkerFailed
from stsched.data.importers import write_table
from stsched.data.schema import CORUN_COLUMNS, SOLO_COLUMNS, validate_corun, validate_solo
from stsched.errors import InputError
from stsched.io import read_json, write_json
from stsched.validate import MAX_REAL_RUN_S, check_real

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepSpec:
    """The grid.  Co-runs: every pair of sizes in `corun_sizes` x every (model, batch) of the victim x every
    (model, batch) of the co-runner, from `corun_models` / `corun_batches` (default: `models` / `batches`)."""

    models: tuple[str, ...]
    batches: tuple[int, ...]
    sizes: tuple[float, ...]
    timing: TimingOptions = TimingOptions()
    corun_sizes: tuple[tuple[float, float], ...] = ()
    corun_models: tuple[str, ...] = ()
    corun_batches: tuple[int, ...] = ()
    corun_window_s: float = 1.0
    corun_warmup: int = 2
    progress: bool = True
    # exact co-runs (victim, victim batch, victim size, co-runner, co-runner batch, co-runner size), e.g. the
    # probes of `stsched probe-plan`; when given, they replace the corun_sizes x models x batches grid
    corun_plan: tuple[tuple[str, int, float, str, int, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.models or not self.batches:
            raise InputError("sweep: need at least one model and one batch size")
        if any(b < 1 for b in self.batches + self.corun_batches):
            raise InputError("sweep: batch sizes must be >= 1")
        for label, values in (("--models", self.models), ("--batches", self.batches),
                              ("--corun-models", self.corun_models), ("--corun-batches", self.corun_batches)):
            twice = sorted({str(v) for v in values if values.count(v) > 1})
            if twice:  # measured, then refused by solo.csv's key check after the work
                raise InputError(f"sweep: {label} lists {', '.join(twice)} more than once")
        if any(len(p) != 2 for p in self.corun_sizes):
            raise InputError("sweep: co-run sizes come in pairs")
        check_real(self.corun_window_s, "sweep: the co-run window (s)", minimum=0.0, strict=True,
                   maximum=MAX_REAL_RUN_S)
        if any(len(p) != 6 or p[1] < 1 or p[4] < 1 or not (p[2] > 0 and p[5] > 0) for p in self.corun_plan):
            raise InputError("sweep: a planned co-run is (model, batch >= 1, size > 0, model, batch >= 1, size > 0)")

    def corun_layouts(self) -> tuple[tuple[float, float], ...]:
        """The size pairs co-run: those of the plan, else `corun_sizes`."""
        if self.corun_plan:
            return tuple(dict.fromkeys((float(p[2]), float(p[5])) for p in self.corun_plan))
        return self.corun_sizes

    def layout_points(self, a: float, b: float) -> list[tuple[str, int, str, int]]:
        """The (victim, batch, co-runner, batch) points co-run on sizes (a, b)."""
        if self.corun_plan:
            return list(dict.fromkeys((m1, int(b1), m2, int(b2)) for m1, b1, pa, m2, b2, pb in self.corun_plan
                                      if (float(pa), float(pb)) == (float(a), float(b))))
        return self.corun_points()

    def corun_points(self) -> list[tuple[str, int, str, int]]:
        models = self.corun_models or self.models
        batches = self.corun_batches or self.batches
        return [(m1, b1, m2, b2) for m1 in models for b1 in batches for m2 in models for b2 in batches]


@dataclass
class SweepResult:
    out_dir: Path
    solo: pd.DataFrame
    corun: pd.DataFrame | None
    measured_solo: int = 0
    measured_corun: int = 0
    skipped: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent, check=True).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return "unknown"


class _Store:
    """The output folder: tables, samples and meta, rewritten atomically; knows which keys are done."""

    def __init__(self, out: Path, fresh: bool) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        if fresh:
            for name in ("solo.csv", "corun.csv", "samples.json", "meta.json"):
                (out / name).unlink(missing_ok=True)
        self.solo = self._load("solo.csv", SOLO_COLUMNS, validate_solo)
        self.corun = self._load("corun.csv", CORUN_COLUMNS, validate_corun)
        self.samples: dict[str, list[float]] = (json.loads((out / "samples.json").read_text())
                                                if (out / "samples.json").exists() else {})
        self.meta: dict[str, Any] = read_json(out / "meta.json") if (out / "meta.json").exists() else {}

    def _load(self, name: str, columns: tuple[str, ...], validate: Any) -> list[dict[str, Any]]:
        path = self.out / name
        if not path.exists():
            return []
        from stsched.data.importers import read_headed

        df = validate(read_headed(path, columns), str(path))
        return df.to_dict("records")

    def solo_keys(self) -> set[tuple]:
        return {(r["device"], r["mechanism"], r["model"], int(r["batch"]), float(r["partition"]), int(r["procs"]))
                for r in self.solo}

    def corun_keys(self) -> set[tuple]:
        return {(r["device"], r["mechanism"], r["victim"], int(r["victim_batch"]), float(r["victim_partition"]),
                 r["corunner"], int(r["corunner_batch"]), float(r["corunner_partition"])) for r in self.corun}

    def add_solo(self, row: dict[str, Any], samples: Sequence[float]) -> None:
        self.solo.append(row)
        self.samples["solo|" + "|".join(str(row[c]) for c in SOLO_COLUMNS[:6])] = list(samples)
        self._write("solo.csv", self.solo, SOLO_COLUMNS, validate_solo)

    def add_corun(self, rows: list[dict[str, Any]], samples: list[Sequence[float]]) -> None:
        keys = self.corun_keys()
        for row, s in zip(rows, samples):
            key = tuple(row[c] for c in CORUN_COLUMNS[:8])
            if key in keys:
                continue
            keys.add(key)
            self.corun.append(row)
            self.samples["corun|" + "|".join(str(k) for k in key)] = list(s)
        self._write("corun.csv", self.corun, CORUN_COLUMNS, validate_corun)

    def _write(self, name: str, rows: list[dict[str, Any]], columns: tuple[str, ...], validate: Any) -> None:
        df = validate(pd.DataFrame(rows, columns=list(columns)), name)
        write_table(df, self.out / name)
        from stsched.io import write_atomic

        write_atomic(self.out / "samples.json", json.dumps(self.samples) + "\n")

    def write_meta(self) -> None:
        write_json(self.out / "meta.json", self.meta)


def _median(samples: Sequence[float]) -> float:
    return Timing(tuple(samples)).median_ms


def _same_measurement(store: _Store, old: dict[str, Any], spec: SweepSpec) -> None:
    """A resumed profile keeps its measurement arguments: rows timed another way must not mix."""
    now = {**{f"timing.{k}": v for k, v in asdict(spec.timing).items()}, "corun_window_s": spec.corun_window_s}
    before = {**{f"timing.{k}": v for k, v in (old.get("timing") or {}).items()},
              "corun_window_s": old.get("corun_window_s")}
    diff = [f"{k} {before[k]!r} -> {v!r}" for k, v in now.items() if k in before and before[k] != v]
    if diff:
        raise InputError(f"{store.out} holds rows measured with other arguments ({'; '.join(diff)}): resume with "
                         "the same ones, use another folder, or --fresh")


def _start_meta(store: _Store, backend: PartitionBackend, spec: SweepSpec) -> dict[str, Any]:
    facts = backend.describe()
    old = store.meta
    if old and (old.get("device"), old.get("mechanism")) != (facts["device"], facts["mechanism"]):
        raise InputError(f"{store.out} holds a profile of {old.get('device')}/{old.get('mechanism')}, not "
                         f"{facts['device']}/{facts['mechanism']}: use another folder or --fresh")
    if old and (store.solo_keys() or store.corun_keys()):
        _same_measurement(store, old, spec)
    today = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    meta = {
        "name": store.out.name,
        "description": f"measured by the stsched profiler: backend {backend.name}, {facts.get('device_name')}",
        "device": facts["device"], "gpu": facts.get("device_name", ""), "sm_count": int(facts.get("sm_count", 0)),
        "memory_mb": float(facts.get("memory_mb", 0.0)), "mechanism": facts["mechanism"],
        "partition_capacity": float(facts["capacity"]), "partition_sizes": list(old.get("partition_sizes", [])),
        "has_latency": True, "source_repo": "this repository (stsched profiler)", "source_commit": _git_commit(),
        "licence": "MIT (measured by this project)", "held_back": "nothing", "importer": "stsched-profiler",
        "raw_inputs": ["samples.json"],
        "notes": ["latency_ms is the median of the timed repeats (not the mean); l2_util and dram_util are not "
                  "measured (they need Nsight Compute)",
                  f"partition unit: {backend.units}"],
        "created": old.get("created", today), "updated": today,
        "backend": facts, "driver": facts.get("driver"), "cuda": facts.get("cuda"), "torch": facts.get("torch"),
        "timing": {**asdict(spec.timing), "statistic": "median", "timer": facts.get("timer")},
        "corun_window_s": spec.corun_window_s, "size_readback": dict(old.get("size_readback", {})),
        "workers": dict(old.get("workers", {})),
        "models": {**old.get("models", {}), **_model_sources(spec)},
        "load_average": {"at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
    }
    store.meta = meta
    store.write_meta()
    return meta


def _model_sources(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """Where every model of the sweep came from (meta.json `models`: data/README.md)."""
    from profiler import zoo

    out = {}
    for m in sorted(set(spec.models) | set(spec.corun_models)):
        s = zoo.resolve(m)
        out[s.name] = {"source": s.source, "params": s.params, "input_shape": list(s.input_shape),
                       "tokens": s.tokens}
    return out


def _record_set(store: _Store, requested: Sequence[float], pset: PartitionSet) -> list[float]:
    actual = pset.sizes
    for r, a, w in zip(requested, actual, pset.workers):
        store.meta["size_readback"][f"{float(r):g}"] = a
        store.meta["workers"][f"{float(a):g}"] = w.info
    store.meta["partition_sizes"] = sorted({float(a) for a in actual} | set(store.meta["partition_sizes"]))
    store.write_meta()
    return actual


def _solo_todo(spec: SweepSpec, done: set[tuple], device: str, mech: str, size: float) -> list[tuple[str, int]]:
    return [(m, b) for m in spec.models for b in spec.batches
            if (device, mech, m, b, float(size), 1) not in done]


def _corun_todo(points: list[tuple[str, int, str, int]], done: set[tuple], device: str, mech: str, a: float,
                b: float) -> Iterator[tuple[str, int, str, int]]:
    for m1, b1, m2, b2 in points:
        if (device, mech, m1, b1, float(a), m2, b2, float(b)) not in done:
            yield m1, b1, m2, b2


def _point_failed(e: WorkerFailed, point: str, result: SweepResult, out_dir: str | Path) -> InputError:
    """A worker that failed on a point (the model raised, ran out of memory, or died): one line naming the point
    and the worker's last line, instead of the worker's traceback; the points measured so far stay in `out_dir`."""
    cause = e.last_line
    kept = result.measured_solo + result.measured_corun
    return InputError(f"measuring {point or 'a point'} failed: {cause} ({kept} points measured in this run are "
                      f"kept in {out_dir}: run again without that point to resume)")


def sweep(backend: PartitionBackend, spec: SweepSpec, out_dir: str | Path, *, fresh: bool = False) -> SweepResult:
    """Measure every point of `spec` not yet in `out_dir` on `backend`; returns the full (old + new) tables."""
    from profiler import zoo

    for m in set(spec.models) | set(spec.corun_models) | {x for p in spec.corun_plan for x in (p[0], p[3])}:
        zoo.resolve(m)
    backend.require()
    store = _Store(Path(out_dir), fresh)
    meta = _start_meta(store, backend, spec)
    device, mech = meta["device"], meta["mechanism"]
    readback = meta["size_readback"]
    total = len(spec.models) * len(spec.batches) * len(spec.sizes) + sum(
        len(spec.layout_points(a, b)) for a, b in spec.corun_layouts())
    bar = tqdm(total=total, desc=f"profile {backend.name}", disable=not spec.progress or None, unit="pt")
    result = SweepResult(Path(out_dir), pd.DataFrame(), None)
    point = ""
    try:
        for size in spec.sizes:
            guess = float(readback.get(f"{float(size):g}", size))
            if not _solo_todo(spec, store.solo_keys(), device, mech, guess):
                bar.update(len(spec.models) * len(spec.batches))
                result.skipped += len(spec.models) * len(spec.batches)
                continue
            with backend.open([size]) as pset:
                (actual,) = _record_set(store, [size], pset)
                worker = pset.workers[0]
                todo = _solo_todo(spec, store.solo_keys(), device, mech, actual)
                result.skipped += len(spec.models) * len(spec.batches) - len(todo)
                bar.update(len(spec.models) * len(spec.batches) - len(todo))
                for model, batch in todo:
                    point = f"{model} batch {batch} on partition {actual:g}"
                    bar.set_postfix_str(f"{model} b{batch} p{actual:g}")
                    out = worker.call("measure", model=model, batch=batch, warmup=spec.timing.warmup,
                                      repeats=spec.timing.repeats)
                    lat = _median(out["samples_ms"])
                    store.add_solo({"device": device, "mechanism": mech, "model": model, "batch": batch,
                                    "partition": actual, "procs": 1, "latency_ms": lat,
                                    "throughput_rps": 1000.0 * batch / lat, "l2_util": None, "dram_util": None},
                                   out["samples_ms"])
                    result.measured_solo += 1
                    bar.update(1)
        for sa, sb in spec.corun_layouts():
            points = spec.layout_points(sa, sb)
            ga = float(readback.get(f"{float(sa):g}", sa))
            gb = float(readback.get(f"{float(sb):g}", sb))
            if not any(True for _ in _corun_todo(points, store.corun_keys(), device, mech, ga, gb)):
                bar.update(len(points))
                result.skipped += len(points)
                continue
            with backend.open([sa, sb]) as pset:
                a, b = _record_set(store, [sa, sb], pset)
                wa, wb = pset.workers
                for m1, b1, m2, b2 in points:
                    if (device, mech, m1, b1, a, m2, b2, b) in store.corun_keys():
                        result.skipped += 1
                        bar.update(1)
                        continue
                    point = f"co-run {m1} batch {b1} on {a:g} + {m2} batch {b2} on {b:g}"
                    bar.set_postfix_str(f"{m1} b{b1} p{a:g} + {m2} b{b2} p{b:g}")
                    _corun_one(store, spec, device, mech, (wa, m1, b1, a), (wb, m2, b2, b))
                    result.measured_corun += 1
                    bar.update(1)
    except WorkerFailed as e:
        raise _point_failed(e, point, result, out_dir) from None
    finally:
        bar.close()
        store.meta["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        if hasattr(os, "getloadavg"):
            store.meta["load_average"]["at_end"] = list(os.getloadavg())
        store.write_meta()
    result.solo = validate_solo(pd.DataFrame(store.solo, columns=list(SOLO_COLUMNS)))
    result.corun = validate_corun(pd.DataFrame(store.corun, columns=list(CORUN_COLUMNS))) if store.corun else None
    result.meta = store.meta
    return result


def _corun_one(store: _Store, spec: SweepSpec, device: str, mech: str, side_a: tuple, side_b: tuple) -> None:
    (wa, m1, b1, a), (wb, m2, b2, b) = side_a, side_b
    for w, m, bt in ((wa, m1, b1), (wb, m2, b2)):
        w.call("prepare", items=[(m, bt)], warmup=spec.corun_warmup)
    start = now() + 0.2
    stop = start + spec.corun_window_s
    pa = wa.submit("window", model=m1, batch=b1, start_at=start, stop_at=stop)
    pb = wb.submit("window", model=m2, batch=b2, start_at=start, stop_at=stop)
    timeout = spec.corun_window_s + 600.0
    sa, sb = pa.result(timeout)["samples_ms"], pb.result(timeout)["samples_ms"]
    la, lb = _median(sa), _median(sb)
    rows = [{"device": device, "mechanism": mech, "victim": m1, "victim_batch": b1, "victim_partition": a,
             "corunner": m2, "corunner_batch": b2, "corunner_partition": b, "victim_latency_ms": la,
             "corunner_latency_ms": lb},
            {"device": device, "mechanism": mech, "victim": m2, "victim_batch": b2, "victim_partition": b,
             "corunner": m1, "corunner_batch": b1, "corunner_partition": a, "victim_latency_ms": lb,
             "corunner_latency_ms": la}]
    store.add_corun(rows, [sa, sb])
