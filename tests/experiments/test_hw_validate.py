"""The hardware-validation experiment: its instance and plan (made here), and its report of an executor run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import hw_validate
from stsched.checker import check
from stsched.io import load_instance, load_plan

ROOT = Path(__file__).resolve().parents[2]
VALIDATION = ROOT / "data" / "validation"
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


# ------------------------------------------------------------------------------------ --interference (counter-free)
@pytest.fixture(scope="module")
def h100_interference(tmp_path_factory):
    out = tmp_path_factory.mktemp("h100-interference")
    meta = hw_validate.prepare(out, dataset="h100-sm", interference=True)
    return out, meta


def test_interference_instance_carries_the_form_fitted_to_the_profiles_own_coruns(h100_interference):
    out, meta = h100_interference
    inst, plan = load_instance(out / "instance.json"), load_plan(out / "plan.json")
    inter, model = hw_validate.fitted_interference("h100-sm")  # the profile alone: solo grid + its corun.csv
    assert inst.interference == inter and inter.form == "stsched-elastic" and model.corun_hash
    assert meta["interference"] == {"form": "stsched-elastic", "coef": list(inter.coef),
                                    "fitted_on": "data/profiles/h100-sm/corun.csv"}
    report = check(inst, plan)
    assert len(plan.gpus) == 1 and report.valid and meta["checker_valid"]
    # the checker applies I_s(q) to every tenant of a partition that has neighbours, from the profile's latencies
    assert all(t["slowdown"] > 1.0 and t["exec_ms"] == pytest.approx(t["solo_ms"] * t["slowdown"])
               for t in meta["tenants"])
    e = inst.entry("resnet50", 8, 64.0)
    assert e.latency_ms == pytest.approx(2.545, abs=1e-3) and 0 < e.sm_elasticity <= 1 and e.l2_util is None
    assert "not read by the form" in inst.notes and 0.9 < meta["simulated"]["slo_attainment"] <= 1.0


def test_interference_lowers_the_admissible_load(h100_interference, tmp_path):
    _, meta = h100_interference
    plain = hw_validate.prepare(tmp_path, dataset="h100-sm")
    assert plain["interference"]["form"] == "none" and plain["plan_from"] == "min-gpus"
    assert meta["alpha_one_gpu"] < plain["alpha_one_gpu"]


def test_the_device_needs_neither_scipy_nor_sklearn_to_execute_the_plan(h100_interference):
    """What `stsched.commands.profile execute ... --compare-sim` imports besides the backend (torch): the instance
    loads, its form evaluates and the simulator runs without scipy, scikit-learn, ortools or pulp."""
    out, meta = h100_interference
    code = (
        "import sys\n"
        "from stsched.executor import ExecOptions, execute\n"
        "from stsched.io import load_instance, load_plan\n"
        "from stsched.simulation import SimOptions, simulate\n"
        f"inst, plan = load_instance({str(out / 'instance.json')!r}), load_plan({str(out / 'plan.json')!r})\n"
        "s = simulate(inst, plan, options=SimOptions(duration_s=2.0, seed=1)).summary\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'sklearn', 'ortools', 'pulp'})\n"
        "print(inst.interference.form, s.requests > 0, bad)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["stsched-elastic", "True", "[]"]


def test_output_dirs(monkeypatch, tmp_path):
    monkeypatch.setattr(hw_validate, "results_dir", lambda exp: tmp_path / exp)
    assert hw_validate.output_dir("h100-sm", 1.0, True) == tmp_path / "hw" / "h100-sm" / "interference"
    assert hw_validate.output_dir("h200-sm", 1.2, True) == tmp_path / "hw" / "h200-sm" / "interference" / "margin-1.2"
    assert hw_validate.output_dir("h200-sm") == tmp_path / "hw" / "h200-sm"


def test_report_of_an_interference_plan_shows_the_planned_slowdown(h100_interference, tmp_path):
    out, meta = h100_interference
    for name in ("instance.json", "plan.json"):
        shutil.copy(out / name, tmp_path / name)
    exec_rows = [{"gpu": 0, "partition": qi, "service": t[0], "batches": 10, "median_exec_ms": 1.0,
                  "model_ms": next(x["solo_ms"] for x in meta["tenants"] if x["service"] == t[0])}
                 for qi, p in enumerate(meta["layouts"][0]) for t in p["tenants"]]
    summary = {"requests": 10, "slo_attainment": 1.0, "goodput": 1.0, "p50_ms": 1.0, "p99_ms": 1.0}
    (tmp_path / "exec.json").write_text(json.dumps({"summary": summary, "simulated": summary, "exec": exec_rows,
                                                    "backend": {"backend": "sm", "device_name": "test GPU"}}))
    text = hw_validate.summarize(tmp_path)
    assert "planned_slowdown" in text and "measured/planned" in text
    s = next(t["slowdown"] for t in meta["tenants"] if t["service"] == "bert-base")
    assert f"| {round(s, 3)} |" in text


def test_predicted_vs_the_shipped_executor_runs():
    rows = hw_validate.predicted_vs_executed("h200-sm")
    assert {r["run"] for r in rows} == {"h200-sm", "h200-sm/margin-1.2", "h200-sm/interference"} and len(rows) == 15
    assert all(r["stsched-elastic"] > 1.0 and 1.0 < r["measured"] < 1.3 for r in rows)
    assert all(r["err none"] == pytest.approx(1 - 1 / r["measured"]) for r in rows)
