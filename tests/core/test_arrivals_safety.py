"""Safe defaults: the instance states its arrivals (JSON `arrivals`), random instances default to Poisson (the
margin POISSON_LATE_SHARE), published scenarios stay deterministic, and `stsched solve` warns on stderr about a
deterministic plan whose tenants run above the unsafe load."""

from __future__ import annotations

import json
import re

import pytest
from tests.conftest import make_mps_instance

from stsched import scenarios
from stsched.cli import main
from stsched.errors import InputError
from stsched.io import instance_from_dict, instance_to_dict, save_instance
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import POISSON_LATE_SHARE, Arrivals
from stsched.safety import UNSAFE_LOAD, overloads, warning


def test_random_defaults_to_poisson_published_stay_deterministic():
    inst = scenarios.random_instance(4, 1, 0)
    assert inst.arrivals is Arrivals.POISSON and inst.margin.late_share == POISSON_LATE_SHARE
    det = scenarios.random_instance(4, 1, 0, arrivals="deterministic")
    assert det.arrivals is Arrivals.DETERMINISTIC and det.margin.late_share == 0
    assert det.services == inst.services  # the same draw, only the rule differs
    for published in (scenarios.parvagpu(1), scenarios.gpulet_mix("m1", 1), scenarios.igniter_example()):
        assert published.arrivals is Arrivals.DETERMINISTIC
    with pytest.raises(InputError, match="arrivals 'bursty'"):
        inst.with_arrivals("bursty")


def test_json_field_round_trips_and_contradictions_are_bad_input():
    inst = make_mps_instance()
    d = instance_to_dict(inst)
    assert d["arrivals"] == "deterministic"
    d["arrivals"] = "poisson"
    assert instance_from_dict(d).margin.late_share == POISSON_LATE_SHARE  # poisson alone: the project's margin
    d["margin"]["late_share"] = 0.02
    assert instance_from_dict(d).margin.late_share == 0.02
    assert instance_to_dict(instance_from_dict(d))["arrivals"] == "poisson"
    d["arrivals"] = "deterministic"
    with pytest.raises(InputError, match="contradicts margin.late_share"):
        instance_from_dict(d, "x.json")
    d["arrivals"] = "sometimes"
    with pytest.raises(InputError, match="arrivals: 'sometimes' is not one of"):
        instance_from_dict(d, "x.json")
    del d["arrivals"]  # files written before the field: derived from the margin
    assert instance_from_dict(d).arrivals is Arrivals.POISSON


def _plan(rate0: float) -> Plan:
    return Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, rate0),)), Partition(50.0, (Tenant("s1", 4, 50.0),)))),))


def test_overloads_follow_the_load_and_the_offered_share():
    inst = make_mps_instance(rates=(300.0, 50.0))
    cap0 = 1000 * 4 / inst.solo_ms("s0", 4, 50.0)
    cap1 = 1000 * 4 / inst.solo_ms("s1", 4, 50.0)
    assert 300 / cap0 > UNSAFE_LOAD and 50 / cap1 < UNSAFE_LOAD
    found = overloads(inst, _plan(300.0))
    assert [(o.gpu, o.partition, o.service) for o in found] == [(0, 0, "s0")]
    assert found[0].load == pytest.approx(300 / cap0)
    # a plan for 2 x the offered 150 req/s (--headroom): at the offered rate its tenant runs at half the load
    assert overloads(make_mps_instance(rates=(150.0, 50.0)), _plan(300.0)) == []
    assert overloads(inst.with_arrivals("poisson"), _plan(300.0)) == []
    assert "gpu 0 partition 0, s0" in warning(inst, _plan(300.0))
    assert warning(inst, _plan(150.0)) is None


def test_solve_warns_on_stderr_once(tmp_path, capsys):
    inst = scenarios.random_instance(6, 2, 1, arrivals="deterministic")
    save_instance(inst, tmp_path / "d.json")
    assert main(["solve", str(tmp_path / "d.json"), "--out", str(tmp_path / "p.json")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unsafe under Poisson arrivals" in err[0]
    assert f"--late-share {POISSON_LATE_SHARE:g}" in err[0]
    save_instance(inst.with_arrivals("poisson").with_gpus(8), tmp_path / "p.json")
    assert main(["solve", str(tmp_path / "p.json")]) == 0  # the Poisson default: every service at 99 % simulated
    out = capsys.readouterr()
    assert out.err == "" and re.search(r"every service reached (99|100)\.\d\d% \(lower confidence bound; target "
                                       r"99\.00%\)", out.out)
    assert main(["solve", str(tmp_path / "p.json"), "--attainment", "0"]) == 0  # the margin alone
    out = capsys.readouterr()
    assert out.err == "" and "reached" not in out.out


def test_scenario_cli_flag(tmp_path, capsys):
    assert main(["scenario", "random", "--services", "3", "--gpus", "1", "--out", str(tmp_path / "a.json")]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["arrivals"] == "poisson"
    assert main(["scenario", "random", "--services", "3", "--gpus", "1", "--arrivals", "deterministic",
                 "--out", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["arrivals"] == "deterministic"
