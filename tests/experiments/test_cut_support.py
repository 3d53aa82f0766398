"""experiments.cut_support: the LP's support, the count rows and the cuts over fixed columns (which only raise it)."""

from __future__ import annotations

import re

import pytest

from experiments.cut_support import main
from stsched.io import save_instance
from stsched.scenarios import random_instance


def test_cut_support_reports_lp_values_that_only_rise(tmp_path, capsys):
    path = tmp_path / "i.json"
    save_instance(random_instance(8, 4, 1, arrivals="deterministic"), path)
    assert main([str(path), "--rounds", "2", "--time-limit", "20"]) == 0
    out = capsys.readouterr().out
    lp = float(re.search(r"LP ([0-9.]+) \(bound", out).group(1))
    count = float(re.search(r"LP with them ([0-9.]+)", out).group(1))
    cuts = [float(v) for v in re.findall(r"over the fixed columns: .*LP ([0-9.]+)", out)]
    assert len(cuts) == 2 and count >= lp - 1e-6 and cuts[0] >= lp - 1e-6 and cuts[1] >= cuts[0] - 1e-6
    assert lp <= 3 and cuts[-1] <= 3 + 1e-6  # the optimum of this instance is 3 GPUs (scale_eval --integrality)


def test_cut_support_bad_rounds_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["x.json", "--rounds", "-1"])
    assert e.value.code == 2 and "--rounds" in capsys.readouterr().err
