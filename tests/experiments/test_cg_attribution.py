"""experiments.cg_attribution: the integer master over the columns of a column generation with cuts gives a plan the
checker accepts, never below the bound, and the saved columns give the same bound when read back."""

from __future__ import annotations

import re

import pytest

from experiments.cg_attribution import main
from stsched.io import save_instance
from stsched.scenarios import random_instance


def test_attribution_plan_is_valid_and_not_below_the_bound(tmp_path, capsys):
    path, saved = tmp_path / "i.json", tmp_path / "cg.pkl"
    save_instance(random_instance(8, 4, 1, arrivals="deterministic"), path)
    assert main([str(path), "--cuts", "1", "--cg-time", "20", "--master-time", "20", "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    bound = float(re.search(r"rounded ([0-9.]+)\)", out).group(1))
    plan = int(re.search(r"plan (\d+) GPUs \(checker: valid\)", out).group(1))
    assert bound <= 3 <= plan  # the optimum of this instance is 3 GPUs (scale_eval --integrality)
    assert main([str(path), "--load", str(saved), "--master-time", "20"]) == 0
    assert float(re.search(r"rounded ([0-9.]+)\)", capsys.readouterr().out).group(1)) == bound


def test_attribution_bad_limit_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["x.json", "--cg-time", "-1"])
    assert e.value.code == 2 and "--cg-time" in capsys.readouterr().err
