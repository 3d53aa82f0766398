"""Reconfiguration-cost measurement: the summary the adapt controller reads, and a real CPU run of the command."""

from __future__ import annotations

import json

import pytest

from profiler.reconfig import SwitchSpec, summarize, tenants_for
from stsched.reconfig import ReconfigCosts
from stsched.errors import InputError


def _switch(layout, ms, repeat):
    return {"layout": list(layout), "obtained": list(layout), "tenants": tenants_for(layout, ["a", "b", "c"]),
            "repeat": repeat, "open_ms": ms / 4, "load_ms": 3 * ms / 4, "switch_ms": ms, "close_ms": 1.0}


def test_tenants_are_dealt_round_robin():
    assert tenants_for([64, 64], ["a", "b", "c"]) == [["a", "c"], ["b"]]
    assert tenants_for([132], ["a", "b"]) == [["a", "b"]]
    assert tenants_for([16, 16, 16], ["a"]) == [["a"], [], []]


def test_spec_rejects_empty_layouts_and_models():
    with pytest.raises(InputError, match="layout"):
        SwitchSpec((), ("a",))
    with pytest.raises(InputError, match="model"):
        SwitchSpec(((64.0,),), ())


def test_summary_takes_warm_medians_and_the_worst_layout(tmp_path):
    rows = [_switch((64, 64), ms, i) for i, ms in enumerate([900.0, 100.0, 120.0, 110.0])]
    rows += [_switch((132,), ms, i) for i, ms in enumerate([50.0, 200.0, 220.0])]
    restart = [{"device": "cuda:0", "models": ["a"], "repeat": i, "wall_ms": w, "processes": []}
               for i, w in enumerate([9000.0, 6000.0])]
    out = summarize(rows, restart, {"device": "h200"}, "sm")
    first = out["layouts"][0]
    assert first["cold_switch_ms"] == 900.0 and first["switch_ms"] == 110.0  # the cold repeat is apart
    assert out["layouts"][1]["switch_ms"] == 210.0
    assert out["reconfig_s"] == {"sm": 0.21, "mps": 7.5}  # worst warm layout; median restart wall
    path = tmp_path / "reconfig.json"
    path.write_text(json.dumps(out))
    costs = ReconfigCosts.load(path)
    assert costs.of("sm") == 0.21 and costs.of("mps") == 7.5 and costs.of("mig") == 15.0
    assert "measured" in costs.source("sm")


def test_a_cpu_run_gives_no_gpu_costs():
    out = summarize([_switch((1, 1), 10.0, 0)], [], {"device": "cpu-amd-epyc"}, "cpu")
    assert out["reconfig_s"] == {} and out["layouts"][0]["switch_ms"] == 10.0


def test_reconfig_cost_command_on_cpu(tmp_path, capsys):
    pytest.importorskip("torch")
    from stsched.commands.profile import main

    out = tmp_path / "rc.json"
    rc = main(["reconfig-cost", "--backend", "cpu", "--layouts", "1", "--models", "resnet-tiny", "--repeats", "2",
               "--warmup", "1", "--out", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    (layout,) = data["layouts"]
    assert layout["tenants"] == [["resnet-tiny"]] and layout["repeats"] == 2
    assert layout["switch_ms"] >= layout["load_ms"] > 0
    assert data["switches"][0]["partitions"][0]["build_ms"][0] > 0
    assert "switch" in capsys.readouterr().out
    assert main(["reconfig-cost", "--backend", "cpu", "--layouts", "1,x", "--models", "resnet-tiny",
                 "--out", str(out)]) == 2
