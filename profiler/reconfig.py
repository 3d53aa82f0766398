"""Reconfiguration cost on real hardware: how long one GPU serves nothing when its layout changes.

A layout change (docs/RULES.md: a partition created, removed or resized) is: tear the old partitions down, create
the new ones, and load every tenant's model into its new partition until its first batch is ready (weights built
on the device, input made, warm-up batches, CUDA graph captured).  Partitions load in parallel; the tenants of one
partition load one after another.

* `measure_layout_switch(backend, spec)`: for each layout (with the spec's models dealt round robin onto its
  partitions as tenants), `repeats` times: open the partitions (`open_ms`), load all tenants (`load_ms`), the sum
  (`switch_ms`: the downtime of a stop-and-rebuild), then close them (`close_ms`).  The first repeat of a process
  also pays one-time initialisation (CUDA modules, cuDNN, allocator): it is reported apart as the cold figure.
  On the sm and gpu backends (threads of one process) model builds and CUDA-graph captures take turns
  (`profiler.partitions.runner.CUDA_BUILD_LOCK`), so the partitions load partly one after another.
* `measure_process_restart(device, models, ...)`: the MPS analogue.  gpulet re-partitions MPS by restarting the
  serving processes with new active-thread percentages; here every tenant's process is started afresh (Python,
  `import torch`, CUDA context, model build, first batch), all in parallel, and the wall time until the last is
  ready is measured.  MPS daemon commands are not included (this tool never starts or stops a daemon).
* `summarize(...)`: medians per layout and `reconfig_s`, the per-mechanism seconds that
  `stsched.planning.adapt.ReconfigCosts.load` reads (`stsched adapt --reconfig-cost FILE`): `sm` = the largest median
  switch of a green-context layout, `mps` = the median process restart on a GPU.  A CPU run gives the pipeline
  but no `reconfig_s` (its numbers say nothing about a GPU).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from stsched.errors import InputError
from stsched.validate import MAX_REPEATS, check_int

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from profiler.partitions.runner import Runner
runner = Runner(sys.argv[1], graphs=sys.argv[1].startswith("cuda"))
if runner.cuda:
    torch.zeros(1, device=sys.argv[1]); torch.cuda.synchronize()
t2 = time.perf_counter()
out = runner.load([(sys.argv[2], int(sys.argv[3]))], warmup=int(sys.argv[4]))
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1000, "context_ms": (t2 - t1) * 1000, "load_ms": (t3 - t2) * 1000,
                  "build_ms": out["build_ms"][0], "prepare_ms": out["prepare_ms"][0]}))
"""


@dataclass(frozen=True)
class SwitchSpec:
    """Layouts (sizes in the backend's units) and the models dealt onto their partitions as tenants."""

    layouts: tuple[tuple[float, ...], ...]
    models: tuple[str, ...]
    batch: int = 8
    repeats: int = 3
    warmup: int = 2

    def __post_init__(self) -> None:
        if not self.layouts or any(not layout for layout in self.layouts):
            raise InputError("reconfiguration cost: give at least one layout of at least one partition")
        if not self.models:
            raise InputError("reconfiguration cost: give at least one model")
        if self.batch < 1:
            raise InputError("reconfiguration cost: batch must be >= 1")
        check_int(self.repeats, "reconfiguration cost: repeats", minimum=1, maximum=MAX_REPEATS)
        check_int(self.warmup, "reconfiguration cost: warmup", minimum=0, maximum=MAX_REPEATS)


def tenants_for(layout: Sequence[float], models: Sequence[str]) -> list[list[str]]:
    """The models dealt round robin onto the partitions of `layout` (partition j gets models j, j+n, ...)."""
    n = len(layout)
    return [list(models[j::n]) for j in range(n)]


def measure_layout_switch(backend: Any, spec: SwitchSpec) -> list[dict[str, Any]]:
    """One row per (layout, repeat): open, load, switch and close times in milliseconds."""
    from profiler import zoo

    for m in spec.models:
        zoo.resolve(m)
    backend.require()
    rows = []
    for layout in spec.layouts:
        tenants = tenants_for(layout, spec.models)
        for r in range(spec.repeats):
            t0 = time.perf_counter()
            pset = backend.open(list(layout))
            try:
                t1 = time.perf_counter()
                pending = [w.submit("load", items=[(m, spec.batch) for m in ts], warmup=spec.warmup)
                           for w, ts in zip(pset.workers, tenants) if ts]
                loads = [p.result(600.0) for p in pending]
                t2 = time.perf_counter()
                obtained = pset.sizes
            finally:
                t3 = time.perf_counter()
                pset.close()
                t4 = time.perf_counter()
            row = {"layout": list(layout), "obtained": obtained, "tenants": tenants, "repeat": r,
                   "open_ms": (t1 - t0) * 1000, "load_ms": (t2 - t1) * 1000, "switch_ms": (t2 - t0) * 1000,
                   "close_ms": (t4 - t3) * 1000, "partitions": loads}
            log.info("layout %s repeat %d: open %.1f ms, load %.1f ms, close %.1f ms", layout, r, row["open_ms"],
                     row["load_ms"], row["close_ms"])
            rows.append(row)
    return rows


def measure_process_restart(device: str, models: Sequence[str], batch: int = 8, repeats: int = 2,
                            warmup: int = 2, python: str | None = None) -> list[dict[str, Any]]:
    """One row per repeat: every model's serving process started afresh, in parallel; wall ms to the last ready."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    rows = []
    for r in range(repeats):
        t0 = time.perf_counter()
        procs = [subprocess.Popen([python or sys.executable, "-c", _CHILD, device, m, str(batch), str(warmup)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
                 for m in models]
        children = []
        for m, p in zip(models, procs):
            out, err = p.communicate(timeout=600)
            if p.returncode != 0:
                last = (err.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"restarting a process for {m} failed: {last}")
            children.append(dict(json.loads(out.strip().splitlines()[-1]), model=m))
        wall = (time.perf_counter() - t0) * 1000
        log.info("process restart of %s, repeat %d: %.0f ms", list(models), r, wall)
        rows.append({"device": device, "models": list(models), "repeat": r, "wall_ms": wall, "processes": children})
    return rows


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def summarize(switch: Sequence[dict[str, Any]], restart: Sequence[dict[str, Any]], facts: dict[str, Any],
              mechanism: str) -> dict[str, Any]:
    """Medians per layout (warm: repeats after the first; cold: the first) and the `reconfig_s` mapping."""
    layouts = []
    for key in dict.fromkeys(tuple(r["layout"]) for r in switch):
        rs = [r for r in switch if tuple(r["layout"]) == key]
        warm = rs[1:] or rs
        layouts.append({"layout": list(key), "obtained": rs[0]["obtained"], "tenants": rs[0]["tenants"],
                        "repeats": len(rs), "cold_switch_ms": rs[0]["switch_ms"],
                        **{f"{k}_ms": _median([r[f"{k}_ms"] for r in warm])
                           for k in ("open", "load", "switch", "close")}})
    out: dict[str, Any] = {"facts": facts, "mechanism": mechanism, "layouts": layouts, "reconfig_s": {},
                           "sources": {}}
    gpu = str(facts.get("device", "")).lower() not in ("", "cpu") and mechanism != "cpu"
    if layouts and gpu and mechanism in ("sm", "mps"):
        worst = max(layouts, key=lambda x: x["switch_ms"])
        out["reconfig_s"][mechanism] = round(worst["switch_ms"] / 1000, 4)
        out["sources"][mechanism] = (f"largest median layout switch (open + load of every tenant), layout "
                                     f"{worst['layout']} with tenants {worst['tenants']}")
    if restart:
        walls = [r["wall_ms"] for r in restart]
        out["process_restart"] = {"models": restart[0]["models"], "repeats": len(walls), "wall_ms": _median(walls),
                                  "cold_wall_ms": walls[0]}
        if gpu and str(restart[0]["device"]).startswith("cuda"):
            out["reconfig_s"]["mps"] = round(_median(walls) / 1000, 4)
            out["sources"]["mps"] = ("median wall time to restart every tenant's process in parallel (Python, "
                                     "torch, CUDA context, model, first batch); MPS daemon commands not included")
    return out
