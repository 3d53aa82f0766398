"""Execution-time noise measured by the profiler, for the simulator's `noise_cv`.

The profiler keeps every timed repeat behind every row of a profile in `samples.json` (docs/PROFILER.md):
`{"solo|device|mechanism|model|batch|partition|procs": [ms, ...], "corun|...": [...]}`; `scripts/gpu_check.sh`
keeps its sweep's under "samples" in `report.json`, which is accepted too.  The coefficient of
variation (sample standard deviation / mean) of one solo row's repeats is the batch-to-batch jitter of that
(model, batch, partition) run alone; `measured_noise` summarises it over the rows by its median (and reports the
90th percentile and the number of rows), which the simulator applies as a log-normal factor per batch.  Co-run
rows are left out: their spread mixes jitter with the phase of the neighbour's batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stsched.errors import InputError
from stsched.io import read_json

MIN_REPEATS = 3  # a row needs this many finite positive samples to give a CV


@dataclass(frozen=True)
class MeasuredNoise:
    """`cv`: median CV over `rows` solo rows; `p90_cv`: their 90th percentile; `source`: the samples file."""

    cv: float
    p90_cv: float
    rows: int
    source: str


def _samples_file(path: str | Path) -> Path:
    p = Path(path)
    return p / "samples.json" if p.is_dir() else p


def measured_noise(path: str | Path) -> MeasuredNoise:
    """The noise of a profile's `samples.json` (the file, or the profile folder holding it), or of a GPU check's
    `report.json`."""
    f = _samples_file(path)
    data = read_json(f)
    if isinstance(data, dict) and isinstance(data.get("samples"), dict):  # scripts/gpu_check.sh's report.json
        data = data["samples"]
    if not isinstance(data, dict):
        raise InputError("not a profiler samples file (expected an object of sample lists)", source=str(f))
    cvs = []
    for key, values in data.items():
        if not str(key).startswith("solo|") or not isinstance(values, list):
            continue
        xs = np.array([v for v in values if isinstance(v, (int, float)) and math.isfinite(v) and v > 0], dtype=float)
        if len(xs) >= MIN_REPEATS:
            cvs.append(float(np.std(xs, ddof=1) / np.mean(xs)))
    if not cvs:
        raise InputError(f"no solo row with at least {MIN_REPEATS} timed repeats, so no measured noise",
                         source=str(f))
    return MeasuredNoise(float(np.median(cvs)), float(np.percentile(cvs, 90)), len(cvs), str(f))
