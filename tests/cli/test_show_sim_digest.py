"""`stsched show --sim SUMMARY` with a summary of another plan or instance was shown as this plan's attainment;
a summary now names what it simulated (`plan_digest`, `instance_digest`) and another's is exit 2."""

from __future__ import annotations

import json

from stsched.cli import main
from stsched.io import instance_to_dict, save_instance, save_plan
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from tests.conftest import make_mps_instance


def test_show_refuses_the_summary_of_another_plan_or_instance(tmp_path, capsys):
    f = {k: str(tmp_path / f"{k}.json") for k in ("inst", "other_inst", "a", "b", "sa", "sb", "old")}
    inst = make_mps_instance()
    save_instance(inst, f["inst"])
    d = instance_to_dict(inst)
    d["services"][0]["rate"] = 90.0
    (tmp_path / "other_inst.json").write_text(json.dumps(d))
    save_plan(Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),)), f["a"])
    save_plan(Plan((GpuLayout((Partition(60.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),)), f["b"])
    for plan, out in (("a", "sa"), ("b", "sb")):
        assert main(["-q", "simulate", f["inst"], f[plan], "--duration", "2", "--out", f[out]]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "sa.json").read_text())
    summary.pop("plan_digest"), summary.pop("instance_digest")
    (tmp_path / "old.json").write_text(json.dumps(summary))

    def show(inst: str, sim: str) -> tuple[int, str]:
        code = main(["show", f[inst], f["a"], "--text", "--sim", f[sim]])
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return code, out.err

    assert show("inst", "sa") == (0, "")
    code, err = show("inst", "sb")
    assert code == 2 and "a summary of another plan" in err and len(err.strip().splitlines()) == 1, err
    code, err = show("other_inst", "sa")
    assert code == 2 and "a summary of another instance" in err, err
    code, err = show("inst", "old")  # written before summaries named their plan: shown, with a note
    assert code == 0 and "does not say which instance and plan it simulated" in err, err
