"""Parts of experiments/interference_eval.py and interference_plans.py that the figures rest on (issue 19)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from experiments.interference_eval import aggregate, oracle_floor, plans_file
from experiments.interference_plans import LATE_SHARE, _has_neighbour
from stsched.plan import GpuLayout, Partition, Tenant


def test_oracle_floor_removes_a_per_batch_factor_exactly():
    rows = pd.DataFrame({"victim_batch": [1, 1, 2, 2, 4, 4], "victim_partition": [20.0, 40.0] * 3})
    measured = np.array([1.5, 1.5, 1.2, 1.2, 1.0, 1.0])
    pred = measured / np.array([1.3, 1.3, 0.9, 0.9, 1.1, 1.1])  # a different wrong factor per batch
    floor = oracle_floor(SimpleNamespace(rows=rows, slowdown=measured), pred)
    assert floor["oracle_batch_p90"] == pytest.approx(0.0, abs=1e-12)
    assert floor["oracle_batch_partition_p90"] == pytest.approx(0.0, abs=1e-12)
    noisy = measured * np.array([1.1, 0.9, 1.0, 1.0, 1.0, 1.0])  # scatter inside batch 1: only cells remove it
    floor = oracle_floor(SimpleNamespace(rows=rows, slowdown=noisy), pred)
    assert floor["oracle_batch_p90"] > 0.05 and floor["oracle_batch_partition_p90"] == pytest.approx(0.0, abs=1e-12)


def test_a_service_has_a_neighbour_only_beside_another_busy_partition():
    a, b = Tenant("a", 8, 10.0), Tenant("b", 8, 10.0)
    alone = GpuLayout((Partition(64.0, (a,)), Partition(32.0, ())))
    shared = GpuLayout((Partition(64.0, (a,)), Partition(32.0, (b,))))
    assert not _has_neighbour(alone, "a")
    assert _has_neighbour(shared, "a") and _has_neighbour(shared, "b") and not _has_neighbour(shared, "c")


def test_plans_files_and_headline(tmp_path):
    assert plans_file(LATE_SHARE) == "plans.csv" and plans_file(0.01) == "plans-late0.01.csv"
    pd.DataFrame([{"dataset": "d", "form": "f", "victim": "pooled", "coverage_q90": 0.9,
                   "min_victim_coverage_q90": 0.7}]).to_csv(tmp_path / "calibration.csv", index=False)
    pd.DataFrame([{"dataset": "d", "victim": v, "plan": "q0.9", "gpus": 2, "slo_attainment": s}
                  for v, s in (("x", 0.995), ("y", 0.98))]).to_csv(tmp_path / "plans-late0.01.csv", index=False)
    text = "\n".join(aggregate(tmp_path))
    assert "| d | f | 0.900 | 0.700 | no |" in text  # a victim below 0.75 misses the target
    assert "plans-late0.01.csv:" in text and "| q0.9 | 4 | 1 / 2 | 0.9800 (d y) |" in text
