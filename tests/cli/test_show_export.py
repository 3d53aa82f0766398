"""`stsched show` (stsched.view) and `stsched export` (stsched.export): one row per GPU, valid PNG/SVG, the table,
bad input as one line with exit 2, MIG commands at the checker's start slots, MPS percentages, green contexts."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from tests.conftest import make_mig_instance, make_mps_instance

from stsched.checker import check
from stsched.cli import main
from stsched.devices import DEVICES, sm_mechanism
from stsched.export import MIG_PROFILE_IDS, export_plan
from stsched.io import save_instance, save_plan
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Instance
from stsched.view import format_text, plan_view, render


def _big(gpus: int = 32) -> tuple[Instance, Plan]:
    """2 services per GPU, each alone in a 50 % partition at half its capacity (a valid plan)."""
    n = 2 * gpus
    inst = make_mps_instance(rates=tuple(1.0 + i / 10 for i in range(n)), slos=(5000.0,) * n, gpus=gpus,
                             memory=(1000.0,) * n)
    layouts = []
    for g in range(gpus):
        parts = tuple(Partition(50.0, (Tenant(f"s{2 * g + k}", 4, 1.0 + (2 * g + k) / 10),)) for k in range(2))
        layouts.append(GpuLayout(parts))
    return inst, Plan(tuple(layouts), solver="hand")


def _files(tmp_path, inst, plan):
    i, p = tmp_path / "inst.json", tmp_path / "plan.json"
    save_instance(inst, i)
    save_plan(plan, p)
    return str(i), str(p)


def test_svg_has_one_row_per_gpu(tmp_path):
    inst, plan = _big(32)
    view = plan_view(inst, plan)
    assert view.valid, view.violations
    assert len(view.gpus) == 32
    render(view, tmp_path / "plan.svg")  # its time is printed by `stsched show` (README), not asserted here
    root = ET.parse(tmp_path / "plan.svg").getroot()
    assert root.tag.endswith("svg")
    rows = {e.get("id") for e in root.iter() if (e.get("id") or "").startswith("gpu-")}
    assert rows == {f"gpu-{g}" for g in range(32)}


def test_png_is_valid_and_legible_size(tmp_path):
    from PIL import Image

    inst, plan = _big(3)
    render(plan_view(inst, plan), tmp_path / "plan.png")
    data = (tmp_path / "plan.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(tmp_path / "plan.png") as im:
        im.verify()
    with Image.open(tmp_path / "plan.png") as im:
        assert im.size[0] >= 1000 and im.size[1] >= 250


def test_view_numbers_are_the_checkers(mps_instance):
    inst = mps_instance
    plan = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 60.0), Tenant("s1", 2, 50.0)), duty_ms=40.0),)),))
    view = plan_view(inst, plan)
    (p,) = view.gpus[0]
    e0 = inst.solo_ms("s0", 4, 50.0)
    e1 = inst.solo_ms("s1", 2, 50.0)
    assert p.duty_ms == 40.0 and p.tenants[0].exec_ms == pytest.approx(e0)
    assert p.idle_share == pytest.approx(1 - (e0 + e1) / 40.0)
    assert p.tenants[0].capacity == pytest.approx(1000 * 4 / 40.0)
    assert p.tenants[1].latency_ms == pytest.approx(40.0 + e1)
    report = check(inst, plan)
    served = {s.name: s.served for s in view.services}
    assert served == pytest.approx(report.stats.served)
    text = format_text(view)
    assert "s0" in text and "60.0/100.0" in text and ("VALID" in text)


def test_mig_view_keeps_start_slots(mig_instance):
    plan = Plan((GpuLayout((Partition(3.0, (Tenant("s0", 4, 100.0),), start=4),
                            Partition(4.0, (Tenant("s0", 4, 200.0),)))),))
    view = plan_view(mig_instance, plan)
    labels = sorted(p.label for p in view.gpus[0])
    assert labels == ["3g@4", "4g@0"]
    assert {p.start for p in view.gpus[0]} == {0.0, 4.0}


def test_show_cli_text_and_picture(tmp_path, capsys):
    inst, plan = _big(2)
    i, p = _files(tmp_path, inst, plan)
    sim = tmp_path / "sim.json"
    sim.write_text(json.dumps({"slo_attainment": 0.97, "per_service": {f"s{k}": {"attainment": 0.9 + k / 100}
                                                                         for k in range(4)}}))
    assert main(["show", i, p, "--text", "--sim", str(sim)]) == 0
    out = capsys.readouterr().out
    assert "simulated attainment 97.00%" in out and "91.00%" in out
    assert len([ln for ln in out.splitlines() if re.match(r"\s+\d+\s+50 %", ln)]) == 4
    assert main(["show", i, p, "--out", str(tmp_path / "x.svg")]) == 0
    assert (tmp_path / "x.svg").read_text().lstrip().startswith("<?xml")


def _one_line_exit2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_show_bad_input_is_one_line_exit_2(tmp_path, capsys, mig_instance):
    inst, plan = _big(2)
    i, p = _files(tmp_path, inst, plan)
    _one_line_exit2(capsys, ["show", i, str(tmp_path / "missing.json")], "no such file")
    # a plan with an unknown service
    bad = Plan((GpuLayout((Partition(50.0, (Tenant("nope", 4, 1.0),)),)),))
    save_plan(bad, tmp_path / "bad.json")
    _one_line_exit2(capsys, ["show", i, str(tmp_path / "bad.json")], "unknown service 'nope'")
    # a plan for another instance: MIG slices against an MPS instance
    mig = Plan((GpuLayout((Partition(3.0, (Tenant("s0", 4, 1.0),)),)),))
    save_plan(mig, tmp_path / "mig.json")
    _one_line_exit2(capsys, ["show", i, str(tmp_path / "mig.json")], "another instance")
    # more GPUs than the instance has
    small, _ = _big(1)
    save_instance(small, tmp_path / "small.json")
    _one_line_exit2(capsys, ["show", str(tmp_path / "small.json"), p], "another instance")
    _one_line_exit2(capsys, ["show", i, p, "--out", str(tmp_path / "x.jpg")], ".png or .svg")


def test_export_mig_commands_at_the_checkers_slots(tmp_path, capsys):
    inst = make_mig_instance(rates=(300.0,))
    plan = Plan((GpuLayout((Partition(4.0, (Tenant("s0", 8, 150.0),), procs=2),
                            Partition(3.0, (Tenant("s0", 4, 150.0),)))),), solver="hand")
    report = check(inst, plan)
    assert report.valid, report.violations
    text = export_plan(inst, plan, report, "mig")
    (cgi,) = re.findall(r"nvidia-smi mig -i 0 -cgi (\S+) -C", text)
    assert cgi == f"{MIG_PROFILE_IDS[4]}:0,{MIG_PROFILE_IDS[3]}:4"  # 4g at 0, 3g at 4 (3g+4g: the only legal way)
    assert "4g.40gb" in text and "3g.40gb" in text and "2 MPS processes" in text and "s0 batch 8" in text
    i, p = _files(tmp_path, inst, plan)
    _one_line_exit2(capsys, ["export", i, p, "--format", "mps"], "use --format mig")
    assert main(["export", i, p, "--format", "mig", "--out", str(tmp_path / "mig.sh")]) == 0
    assert (tmp_path / "mig.sh").read_text() == text


def test_export_mps_and_sm(tmp_path, capsys):
    inst, plan = _big(2)
    report = check(inst, plan)
    text = export_plan(inst, plan, report, "mps")
    lines = [ln for ln in text.splitlines() if ln.startswith("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=")]
    assert len(lines) == 4 and all(ln.startswith("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=50 ") for ln in lines)
    assert "STSCHED_TENANTS=s0:4:1.0000" in lines[0]
    dev = DEVICES["h100-80gb"]
    sm = Instance("sm", inst.services[:2], dev, sm_mechanism(dev), 1, inst.batches,
                  tuple(type(t)(t.model, tuple(type(e)(e.batch, {50.0: 64.0, 100.0: 128.0}.get(e.size, e.size), e.procs,
                                                        e.latency_ms) for e in t.entries if e.size in (50.0, 100.0)))
                        for t in inst.tables[:2]))
    splan = Plan((GpuLayout((Partition(64.0, (Tenant("s0", 4, 10.0),)), Partition(64.0, (Tenant("s1", 4, 11.0),)))),))
    doc = json.loads(export_plan(sm, splan, check(sm, splan), "sm"))
    assert doc["gpus"][0]["sms"] == [64, 64]
    assert doc["gpus"][0]["partitions"][1]["tenants"] == [{"service": "s1", "model": "m1", "batch": 4, "rate": 11.0}]
    # an invalid plan is not exported
    i, _ = _files(tmp_path, inst, plan)
    over = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 1e6),)),)),))
    save_plan(over, tmp_path / "over.json")
    assert main(["export", i, str(tmp_path / "over.json"), "--format", "mps"]) == 1
    assert "nothing exported" in capsys.readouterr().err
