"""experiments.cg_lns_pool: both arms of the paired search start from one plan, keep only checker-valid plans, and
never go below the bound."""

from __future__ import annotations

import re

import pytest

from experiments.cg_lns_pool import main
from stsched.io import save_instance
from stsched.scenarios import random_instance


def test_both_arms_report_valid_plans_not_below_the_bound(tmp_path, capsys):
    path = tmp_path / "i.json"
    save_instance(random_instance(12, 6, 3, arrivals="deterministic"), path)
    assert main([str(path), "--cuts", "1", "--cg-time", "10", "--master-time", "5", "--lns-time", "5",
                 "--free", "3"]) == 0
    out = capsys.readouterr().out
    bound = float(re.search(r"rounded ([0-9.]+)\)", out).group(1))
    start = int(re.search(r": (\d+) GPUs \([0-9.]+ s of CPU", out).group(1))
    arms = [int(g) for g in re.findall(r"lns_pool=[01]: (\d+) GPUs \(checker: valid\)", out)]
    assert len(arms) == 2 and all(bound <= g <= start for g in arms)


def test_bad_limit_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["x.json", "--lns-time", "-1"])
    assert e.value.code == 2 and "--lns-time" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--cg-time", "5"], ["--master-time", "5"], ["--lns-time", "5"], ["--free", "3"],
                                  ["--cuts", "2"]])
def test_quick_refuses_the_limits_it_sets(flag, capsys):
    # --quick set its own limits over those given (review mends, session 18): one line, exit 2, before any work
    with pytest.raises(SystemExit) as e:
        main(["--quick", *flag])
    err = capsys.readouterr().err
    assert e.value.code == 2 and flag[0] in err and len(err.strip().splitlines()) == 1
