"""Parts of experiments/interference_eval.py and interference_plans.py that the figures rest on (issue 19)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from experiments.interference_eval import OPT_GRID, aggregate, oracle_floor, plans_file
from experiments.interference_plans import LATE_SHARE, _has_neighbour
from stsched.plan import GpuLayout, Partition, Tenant


def test_oracle_floor_removes_a_per_batch_factor_exactly():
    rows = pd.DataFrame({"victim_batch": [1, 1, 2, 2, 4, 4], "victim_partition": [20.0, 40.0] * 3,
                         "corunner": ["a", "b"] * 3})
    victim = SimpleNamespace(elasticity=np.array([0.0, 0.0, 0.0, 0.0, 0.9, 0.9]))  # batches 1, 2 launch-bound
    measured = np.array([1.5, 1.5, 1.2, 1.2, 1.0, 1.0])
    pred = measured / np.array([1.3, 1.3, 0.9, 0.9, 1.1, 1.1])  # a different wrong factor per batch
    floor = oracle_floor(SimpleNamespace(rows=rows, slowdown=measured, victim=victim), pred)
    assert floor["oracle_batch_p90"] == pytest.approx(0.0, abs=1e-12)
    assert floor["oracle_batch_partition_p90"] == pytest.approx(0.0, abs=1e-12)
    step = np.exp(OPT_GRID[1] - OPT_GRID[0]) - 1  # the p90-optimal factors lie on a grid
    assert floor["oracle_batch_p90opt"] <= step and floor["oracle_batch_partition_corunner_p90opt"] <= step
    assert floor["oracle_regime_p90opt"] > 0.1  # one factor for batches 1 and 2 (1.3 and 0.9 apart)
    noisy = measured * np.array([1.1, 0.9, 1.0, 1.0, 1.0, 1.0])  # scatter inside batch 1: only cells remove it
    floor = oracle_floor(SimpleNamespace(rows=rows, slowdown=noisy, victim=victim), pred)
    assert floor["oracle_batch_p90"] > 0.05 and floor["oracle_batch_partition_p90"] == pytest.approx(0.0, abs=1e-12)
    assert floor["oracle_batch_partition_p90opt"] <= step


def test_a_service_has_a_neighbour_only_beside_another_busy_partition():
    a, b = Tenant("a", 8, 10.0), Tenant("b", 8, 10.0)
    alone = GpuLayout((Partition(64.0, (a,)), Partition(32.0, ())))
    shared = GpuLayout((Partition(64.0, (a,)), Partition(32.0, (b,))))
    assert not _has_neighbour(alone, "a")
    assert _has_neighbour(shared, "a") and _has_neighbour(shared, "b") and not _has_neighbour(shared, "c")


def test_plans_files_and_headline(tmp_path):
    assert plans_file(LATE_SHARE) == "plans.csv" and plans_file(0.01) == "plans-late0.01.csv"
    assert plans_file(0.005, 0.99) == "plans-target0.99.csv"
    assert plans_file(0.01, None, 0.99) == "plans-late0.01-q0.99.csv"
    assert plans_file(0.01, 0.99, None, "each") == "plans-target0.99-each.csv"
    pd.DataFrame([{"dataset": "d", "form": "f", "victim": "pooled", "coverage_q90": 0.9,
                   "min_victim_coverage_q90": 0.7}]).to_csv(tmp_path / "calibration.csv", index=False)
    pd.DataFrame([{"dataset": "d", "victim": v, "plan": "q0.9", "gpus": 2, "slo_attainment": s}
                  for v, s in (("x", 0.995), ("y", 0.98))]).to_csv(tmp_path / "plans-late0.01.csv", index=False)
    pd.DataFrame([{"dataset": "d", "method": "normalised", "victim": "pooled", "coverage_q90": 0.8,
                   "min_victim_coverage_q90": 0.5, "q90_width": 0.15}]).to_csv(tmp_path / "calibration_variants.csv",
                                                                                index=False)
    pd.DataFrame([{"dataset": "d", "victim": v, "probes": 2, "n": n, "chosen_p90": 0.1, "random_p90_mean": 0.1,
                   "random_p90_worst": 0.2, "chosen_coverage_q90": c, "chosen_q90_width": w}
                  for v, n, c, w in (("x", 300, 1.0, 0.2), ("y", 100, 0.6, 0.1))]).to_csv(tmp_path / "probes.csv",
                                                                                         index=False)
    text = "\n".join(aggregate(tmp_path))
    assert "| d | normalised | 0.800 | 0.500 | 0.150 |" in text
    assert "| d | 2 | 0.900 | 0.600 | 0.150 |" in text  # pooled over rows: (300 x 1.0 + 100 x 0.6) / 400
    assert "| d | f | 0.900 | 0.700 | no |" in text  # a victim below 0.75 misses the target
    assert "plans-late0.01.csv:" in text and "| q0.9 | 4 | 1 / 2 | 0.9800 (d y) |" in text


def test_cell_tables_hold_each_victims_median_measured_slowdown_per_cell():
    """V100 (3 victims x 5 batches x 5 partitions): the measured table is the median of the rows' own slowdowns;
    the H100 (one victim batch) has no table."""
    from experiments.interference_eval import cell_tables
    from stsched.data.loaders import load_profile
    from stsched.latency import fit
    from stsched.latency.model import corun_data

    lines = cell_tables("v100-mps")
    heads = [x for x in lines if x.startswith("v100-mps ")]
    assert len(heads) == 6 and heads[0].startswith("v100-mps alexnet: median measured")
    prof = load_profile("v100-mps")
    data = corun_data(fit(prof), prof.corun)
    rows = data.rows.assign(s=data.slowdown)
    cell = rows[(rows.victim == "alexnet") & (rows.victim_batch == 2)].groupby("victim_partition")["s"].median()
    first = lines[lines.index(heads[0]) + 4]
    assert first == "| 2 | " + " | ".join(f"{x:.2f}" for x in cell) + " |"
    assert cell_tables("h100-sm") == []


def test_uniform_width_is_the_widest_victims_075_and_scores_everyone_at_it(monkeypatch):
    import experiments.interference_eval as ev
    res = {"d1": {"quiet": np.linspace(-0.1, 0.1, 101), "wide": np.linspace(-0.4, 0.4, 101)},
           "d2": {"mid": np.linspace(-0.2, 0.2, 101)}}
    monkeypatch.setattr(ev, "victim_residuals", lambda ds: res[ds])
    rows = {(r["dataset"], r["victim"]): r for r in ev.uniform_width_rows(("d1", "d2"))}
    w = rows[("d1", "wide")]["uniform_log_factor"]
    assert w == pytest.approx(0.2) and rows[("d1", "wide")]["coverage_at_uniform"] == pytest.approx(76 / 101)
    assert rows[("d1", "quiet")]["coverage_at_uniform"] == 1.0 and rows[("d2", "mid")]["coverage_at_uniform"] == 1.0
    assert rows[("d1", "wide")]["next_widest_log_q75"] == pytest.approx(0.1)
    assert rows[("all but the widest", "pooled")]["coverage_at_uniform"] == 1.0
    assert rows[("d2", "mid")]["widest"] == "d1 wide"
