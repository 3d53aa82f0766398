"""`stsched scenario profile` and `stsched scenario services`: instances from any profile set and a user's list."""

from __future__ import annotations

import json
import shutil

import pytest

from stsched.cli import main
from stsched.data.loaders import data_dir, load_profile
from stsched.errors import InputError
from stsched.planning.scenarios import profile_scenario, services_scenario
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import draw_services, read_services_csv


def test_profile_scenario_is_loaded_to_the_stated_share_of_max_scale():
    inst = profile_scenario("h100-sm", load=0.5, gpus=1, arrivals="deterministic")
    assert profile_scenario("h100-sm", load=0.5, gpus=1).arrivals.value == "poisson"  # the default, same rates
    assert len(inst.services) == 5 and len({s.rate for s in inst.services}) == 1
    ms = run_solver("heuristic", inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=10))
    assert ms.valid and ms.plan.scale == pytest.approx(2.0, rel=0.02)  # 1 / load of the offered rates
    ps = load_profile("h100-sm")
    top = ps.solo[(ps.solo["model"] == "resnet50") & (ps.solo["partition"] == 132) & (ps.solo["batch"] == 8)]
    assert inst.service("resnet50").slo_ms == pytest.approx(5 * float(top["latency_ms"].iloc[0]), abs=0.01)


def test_more_services_than_models_take_every_model_then_draw_by_seed():
    ps = load_profile("h200-sm")
    a = draw_services(ps, 12, seed=1)
    assert set(a.models) == set(ps.models) and len(a.names) == len(set(a.names)) == 12
    assert draw_services(ps, 12, seed=1) == a and draw_services(ps, 12, seed=2).models != a.models


def test_a_profile_folder_that_was_just_measured_is_a_scenario(tmp_path, capsys):
    folder = tmp_path / "my-profile"
    shutil.copytree(data_dir() / "profiles" / "h200-sm", folder, ignore=shutil.ignore_patterns("raw"))
    assert main(["scenario", "profile", str(folder), "--services", "3", "--gpus", "2", "--out",
                 str(tmp_path / "i.json")]) == 0
    d = json.loads((tmp_path / "i.json").read_text())
    assert len(d["services"]) == 3 and d["gpus"] == 2 and d["mechanism"]["kind"] == "sm"
    assert main(["scenario", "profile", str(tmp_path / "nowhere")]) == 2
    assert "unknown data set or profile folder" in capsys.readouterr().err


def test_services_csv_builds_a_servable_instance(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("model,rate,slo_ms,name\nresnet50,900,30,front\nbert-base,120,80,qa\n")
    inst = services_scenario(csv, "h100-sm")
    assert [s.name for s in inst.services] == ["front", "qa"] and inst.gpus >= 1
    r = run_solver("heuristic", inst, SolveOptions(time_limit_s=10))
    assert r.valid and r.plan.gpus_used <= inst.gpus


@pytest.mark.parametrize("text, words", [
    ("model,rate\nresnet50,1\n", "missing column(s) slo_ms"),
    ("model,rate,slo_ms,colour\nresnet50,1,5,red\n", "unknown column(s) colour"),
    ("model,rate,slo_ms\nresnet50,-1,5\n", "data row 1: rate must be a number > 0"),
    ("model,rate,slo_ms\nresnet50,nan,5\n", "data row 1: rate"),
    ("model,rate,slo_ms,name\nresnet50,1,5,a\nvgg16,1,5,a\n", "repeated: a"),
    ("model,rate,slo_ms\n", "no services"),
])
def test_bad_service_lists_get_one_line(tmp_path, text, words):
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_services_csv(csv)


def test_unknown_model_in_the_list_is_named(tmp_path, capsys):
    csv = tmp_path / "x.csv"
    csv.write_text("model,rate,slo_ms\nalexnet,10,50\n")
    assert main(["scenario", "services", str(csv), "--dataset", "h100-sm"]) == 2
    assert "alexnet" in capsys.readouterr().err
