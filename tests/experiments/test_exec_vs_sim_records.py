"""exec_vs_sim keeps every executor run's batches and requests (session 16: the quiet runs' rows alone could not
show why the predicted p99 was too heavy; the per-batch records could)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from experiments.exec_vs_sim import run_records
from stsched.simulation.summary import RequestRecords


def test_a_runs_batches_and_requests_are_labelled_with_its_seed_and_repetition():
    rec = RequestRecords(("a", "b"), np.array([1, 0], dtype=np.int32), np.array([0.1, 0.2]), np.array([0.15, np.nan]),
                         np.array([0.17, np.nan]), np.zeros(2, dtype=np.int32), np.zeros(2, dtype=np.int32))
    batches = pd.DataFrame({"gpu": [0], "partition": [0], "service": ["b"], "start_s": [0.15], "exec_ms": [20.0],
                            "requests": [1], "model_ms": [10.0]})
    b, r = run_records(SimpleNamespace(records=rec, batches=batches), 3, None)
    assert list(b["seed"]) == [3] and list(b["rep"]) == [-1] and list(b["exec_ms"]) == [20.0]  # a calibration run
    assert list(r["service"]) == ["b", "a"] and np.isnan(r["start_s"].iloc[1]) and list(r["arrival_s"]) == [0.1, 0.2]
    b, r = run_records(SimpleNamespace(records=rec, batches=batches), 2, 1)
    assert set(b["rep"]) == set(r["rep"]) == {1} and len(batches.columns) == 7  # the run's own frame unchanged
