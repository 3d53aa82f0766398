"""A function offset beyond the trace is refused before any work, at the depth every caller shares (run_adapt), and
by the study adapt_eval before any point runs (it ran every point, each failing, and exited 0)."""

from __future__ import annotations

import pytest

from stsched.errors import InputError
from stsched.planning.adapt.controller import AdaptOptions, run_adapt
from stsched.scenarios import gpulet_mix


def test_run_adapt_refuses_an_offset_beyond_the_trace():
    with pytest.raises(InputError, match="offsets 0..499"):
        run_adapt(gpulet_mix("scen1", 1), AdaptOptions(function_offset=99_999_999, simulate=False, hours=0.1))


def test_adapt_eval_refuses_it_before_any_point(tmp_path, capsys):
    from experiments import adapt_eval

    with pytest.raises(SystemExit) as e:
        adapt_eval.main(["--functions-offset", "99999999", "--plan-only", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "--functions-offset" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.csv"))


def test_plan_only_run_says_not_simulated():
    # it printed "SLO attainment nan%" and 0.0000 % per epoch
    res = run_adapt(gpulet_mix("m2", 2), AdaptOptions(simulate=False, hours=0.2))
    text = res.format()
    assert "not simulated" in text and "nan" not in text.lower() and "0.0000%" not in text
