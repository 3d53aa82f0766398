"""The hardware-validation experiment: its instance and plan (made here), and its report of an executor run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from experiments import hw_validate
from stsched.check import check
from stsched.io import load_instance, load_plan

VALIDATION = Path(__file__).resolve().parents[1] / "data" / "validation"
SHIPPED = VALIDATION / "h200-sm"


def test_prepare_makes_a_checked_one_gpu_plan_with_headroom(tmp_path):
    hw_validate.prepare(tmp_path)
    inst, plan = load_instance(tmp_path / "instance.json"), load_plan(tmp_path / "plan.json")
    assert len(plan.gpus) == 1 and check(inst, plan).valid
    served = {}
    for g in plan.gpus:
        for p in g.partitions:
            for t in p.tenants:
                served[t.service] = served.get(t.service, 0.0) + t.rate
    for s in inst.services:  # planned for 1.25 x the offered rate
        assert served[s.name] >= hw_validate.HEADROOM * s.rate * (1 - 1e-6)
    meta = json.loads((tmp_path / "prepare.json").read_text())
    assert meta["checker_valid"] and meta["simulated"]["slo_attainment"] > 0.95


@pytest.mark.parametrize("dataset,gpu", [("h200-sm", "NVIDIA H200"), ("h100-sm", "NVIDIA H100 80GB HBM3")])
def test_report_of_the_shipped_runs(tmp_path, dataset, gpu):
    shipped = VALIDATION / dataset
    for name in ("instance.json", "plan.json", "exec.json"):
        shutil.copy(shipped / name, tmp_path / name)
    text = hw_validate.summarize(tmp_path)
    assert f"executor ({gpu})" in text and "simulator (profile)" in text
    ex = json.loads((shipped / "exec.json").read_text())
    assert ex["summary"]["requests"] == ex["simulated"]["requests"] > 0
    assert f"{ex['summary']['slo_attainment']:.4g}" in text
