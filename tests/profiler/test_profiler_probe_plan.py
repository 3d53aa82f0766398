"""`stsched profile --corun-plan`: exactly the co-runs `stsched probe-plan` proposed (issue 19)."""

from __future__ import annotations

import json

import pytest

from stsched.cli import main
from stsched.errors import InputError

PLAN = [{"victim": "resnet-tiny", "victim_batch": 2, "victim_partition": 1.0, "corunner": "vgg-tiny",
         "corunner_batch": 1, "corunner_partition": 1.0},
        {"victim": "vgg-tiny", "victim_batch": 4, "victim_partition": 1.0, "corunner": "resnet-tiny",
         "corunner_batch": 2, "corunner_partition": 1.0}]


def test_spec_takes_exactly_the_planned_points():
    from profiler.sweep import SweepSpec
    spec = SweepSpec(models=("a",), batches=(1,), sizes=(1.0,), corun_sizes=((1.0, 1.0),),
                     corun_plan=(("a", 2, 32.0, "b", 8, 96.0), ("a", 4, 32.0, "c", 8, 96.0),
                                 ("a", 8, 64.0, "b", 8, 64.0)))
    assert spec.corun_layouts() == ((32.0, 96.0), (64.0, 64.0))
    assert spec.layout_points(32.0, 96.0) == [("a", 2, "b", 8), ("a", 4, "c", 8)]
    assert spec.layout_points(64.0, 64.0) == [("a", 8, "b", 8)]
    with pytest.raises(InputError, match="planned co-run"):
        SweepSpec(models=("a",), batches=(1,), sizes=(1.0,), corun_plan=(("a", 0, 32.0, "b", 8, 96.0),))


@pytest.mark.parametrize("content, message", [
    ("[]", "non-empty JSON list"), ("{", "cannot read"),
    (json.dumps([{"victim": "a"}]), "entry 1: needs"),
    (json.dumps([dict(PLAN[0], victim_batch=0)]), "entry 1: batches must be >= 1"),
    (json.dumps([PLAN[0], PLAN[1], PLAN[0]]), "entry 3 repeats entry 1"),
])
def test_bad_corun_plans_exit_2_before_any_work(tmp_path, capsys, content, message):
    path = tmp_path / "plan.json"
    path.write_text(content)
    argv = ["profile", "--backend", "cpu", "--models", "resnet-tiny", "--batches", "1", "--sizes", "1",
            "--out", str(tmp_path / "out"), "--corun-plan", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and not (tmp_path / "out").exists()
