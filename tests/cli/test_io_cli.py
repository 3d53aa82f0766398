"""JSON round trips, one-line errors for malformed input (exit 2), and the CLI's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stsched.cli import main
from stsched.errors import InputError
from stsched.io import (instance_from_dict, instance_to_dict, load_instance, plan_from_dict, plan_to_dict,
                        save_instance, save_plan)
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from tests.conftest import make_mig_instance, make_mps_instance


def valid_plan() -> Plan:
    return Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),))


def test_instance_round_trip():
    for inst in (make_mps_instance(), make_mig_instance()):
        d = instance_to_dict(inst)
        back = instance_from_dict(json.loads(json.dumps(d)))
        assert back == inst
        assert instance_to_dict(back) == d


def test_plan_round_trip():
    plan = valid_plan()
    assert plan_from_dict(json.loads(json.dumps(plan_to_dict(plan)))) == plan


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("services"), "services: missing"),
    (lambda d: d["services"][0].update(rate=-1), "services[0] (s0).rate: must be >= 0"),
    (lambda d: d["services"][1].update(slo_ms="fast"), "services[1] (s1).slo_ms: expected a number"),
    (lambda d: d["tables"][0]["rows"][0].__setitem__(3, -2.0), "rows[0].latency_ms: must be > 0"),
    (lambda d: d["mechanism"].update(kind="tpu"), "mechanism.kind: 'tpu' is not one of"),
    (lambda d: d["services"][0].update(model="nope"), "uses model 'nope', which has no latency table"),
    (lambda d: d["interference"].update(form="magic"), "unknown interference form 'magic'"),
])
def test_malformed_instance_names_the_field(tmp_path, mutate, message):
    d = instance_to_dict(make_mps_instance())
    mutate(d)
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(d))
    with pytest.raises(InputError) as err:
        load_instance(path)
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


def test_nan_is_rejected(tmp_path):
    text = json.dumps(instance_to_dict(make_mps_instance())).replace('"rate": 100.0', '"rate": NaN', 1)
    path = tmp_path / "nan.json"
    path.write_text(text)
    with pytest.raises(InputError, match="must be finite"):
        load_instance(path)


@pytest.fixture
def files(tmp_path):
    inst, plan = tmp_path / "inst.json", tmp_path / "plan.json"
    save_instance(make_mps_instance(), inst)
    save_plan(valid_plan(), plan)
    return inst, plan


def test_cli_check_exit_codes(files, tmp_path, capsys):
    inst, plan = files
    assert main(["check", str(inst), str(plan)]) == 0
    bad = plan_to_dict(valid_plan())
    bad["gpus"][0]["partitions"][0]["duty_ms"] = 10.0
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["check", str(inst), str(tmp_path / "bad.json"), "--json"]) == 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["valid"] is False and out["violations"][0]["rule"] == "duty"


def test_cli_unknown_service_is_bad_input(files, tmp_path, capsys):
    inst, _ = files
    bad = plan_to_dict(valid_plan())
    bad["gpus"][0]["partitions"][0]["tenants"][0]["service"] = "ghost"
    (tmp_path / "ghost.json").write_text(json.dumps(bad))
    assert main(["check", str(inst), str(tmp_path / "ghost.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown service 'ghost'" in err and "ghost.json" in err


def test_cli_missing_file_is_one_line(tmp_path, capsys):
    assert main(["check", str(tmp_path / "none.json"), str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such file" in err and "Traceback" not in err


def test_cli_scenario_then_check_in_a_subprocess(tmp_path):
    """The console entry point end to end: build a ParvaGPU instance, no traceback on a bad row."""
    out = tmp_path / "p.json"
    run = subprocess.run([sys.executable, "-m", "stsched.cli", "scenario", "parvagpu", "--row", "1", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert load_instance(out).name == "parvagpu-row1"
    run = subprocess.run([sys.executable, "-m", "stsched.cli", "scenario", "parvagpu", "--row", "12"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "row 12 out of range" in run.stderr and "Traceback" not in run.stderr


def test_interference_form_needs_features_everywhere():
    from dataclasses import replace

    from stsched.problem import Interference, LatencyTable, ProfileEntry
    inst = make_mps_instance()
    t = inst.table("m0")
    bare = LatencyTable("m0", tuple(ProfileEntry(e.batch, e.size, e.procs, e.latency_ms) for e in t.entries))
    with pytest.raises(InputError, match="needs L2 and DRAM utilisation, model 'm0' lacks them"):
        replace(inst, tables=(bare, inst.table("m1")), interference=Interference("gpulet-linear", (0, 0, 0, 0, 1.2)))
    with pytest.raises(InputError, match="takes 5 coefficients, got 2"):
        replace(inst, interference=Interference("gpulet-linear", (1.0, 2.0)))


def test_solve_with_headroom_plans_for_more_than_the_rates(tmp_path, capsys):
    from stsched.io import load_instance, load_plan, save_instance
    from stsched.scenarios import gpulet_mix

    inst = gpulet_mix("m2", 8, rate=300.0)
    save_instance(inst, tmp_path / "inst.json")
    out = tmp_path / "plan.json"
    assert main(["solve", str(tmp_path / "inst.json"), "--headroom", "1.25", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] and "planned for 1.25 x every rate" in result["message"]
    plan, inst = load_plan(out), load_instance(tmp_path / "inst.json")
    served = {}
    for g in plan.gpus:
        for p in g.partitions:
            for t in p.tenants:
                served[t.service] = served.get(t.service, 0.0) + t.rate
    assert all(served[s.name] >= 1.25 * s.rate * (1 - 1e-6) for s in inst.services)
    assert main(["solve", str(tmp_path / "inst.json"), "--headroom", "0.5"]) == 2
    assert main(["solve", str(tmp_path / "inst.json"), "--headroom", "1.2", "--objective", "max-scale"]) == 2
