"""Mondrian conformal calibration by the victim's solo regime (stsched.latency.mondrian)."""

from __future__ import annotations

import numpy as np
import pytest

from stsched.errors import InputError
from stsched.latency.mondrian import REGIMES, mondrian_from
from stsched.latency.uncertainty import conformal_quantiles
from stsched.latency.victim_prior import VictimEffect

LB, CB = REGIMES


def _rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Half the rows launch-bound with log-residual sd 0.2, half compute-bound with sd 0.02."""
    regimes = np.where(rng.uniform(size=n) < 0.5, LB, CB)
    return regimes, rng.normal(0, np.where(regimes == LB, 0.2, 0.02))


@pytest.mark.parametrize("seed", [0, 1])
def test_each_regime_is_covered_at_the_level_where_one_pooled_quantile_is_not(seed):
    rng = np.random.default_rng(seed)
    reg, c = _rows(rng, 2000)
    pred = mondrian_from(c, reg, None)
    regn, cn = _rows(rng, 6000)
    up = pred.log_factor(regn, 0.9)
    for name in REGIMES:
        assert 0.87 <= np.mean(cn[regn == name] <= up[regn == name]) <= 0.93
    pooled = conformal_quantiles(c, (0.9,))[0]
    assert np.mean(cn[regn == LB] <= pooled) < 0.82 and np.mean(cn[regn == CB] <= pooled) > 0.99


def test_a_victim_effect_widens_both_classes_and_a_thin_class_takes_the_pooled_scores():
    rng = np.random.default_rng(2)
    reg, c = _rows(rng, 400)
    bare = mondrian_from(c, reg, None)
    wide = mondrian_from(c, reg, VictimEffect.of([0.05, -0.04, 0.03, -0.06, 0.02]))
    both = np.array([LB, CB])
    assert np.all(wide.log_factor(both, 0.9) > bare.log_factor(both, 0.9))
    thin = np.where(np.arange(400) < 10, LB, CB)  # 10 launch-bound rows: below MIN_CLASS_ROWS
    pred = mondrian_from(c, thin, None)
    assert pred.scores[LB] == tuple(np.sort(c))
    assert pred.log_factor(np.array([LB]), 0.9)[0] == pytest.approx(conformal_quantiles(c, (0.9,))[0])


def test_bad_levels_regimes_and_empty_scores_are_refused():
    pred = mondrian_from(np.array([0.0, 0.1, -0.1]), np.array([LB, CB, CB]), None, min_rows=1)
    with pytest.raises(InputError, match="quantile level"):
        pred.log_factor(np.array([LB]), 1.0)
    with pytest.raises(InputError, match="unknown solo regime"):
        pred.log_factor(np.array(["memory-bound"]), 0.9)
    with pytest.raises(InputError, match="at least one"):
        mondrian_from(np.array([np.nan]), np.array([LB]), None)


def test_leave_one_victim_out_never_sees_the_held_out_victim():
    """H100 green contexts (4 victims, 80 rows): scaling one held-out victim's measured latencies leaves its
    predicted quantile (width) unchanged and moves only its coverage."""
    from stsched.data.loaders import load_profile
    from stsched.latency import fit
    from stsched.latency.model import default_form
    from stsched.latency.mondrian import leave_one_victim_out_mondrian

    prof = load_profile("h100-sm")
    model = fit(prof)
    form = default_form(model)
    base = leave_one_victim_out_mondrian(model, prof.corun, form)
    assert [r["victim"] for r in base["victims"]] == ["bert-base", "mobilenetv2", "resnet50", "vgg16"]
    assert base["pooled"]["n"] == 80 and all(0 <= r["launch_bound_share"] <= 1 for r in base["victims"])
    corun = prof.corun.copy()
    corun.loc[corun["victim"] == "vgg16", "victim_latency_ms"] *= 1.5
    moved = leave_one_victim_out_mondrian(model, corun, form)
    a, b = base["victims"][3], moved["victims"][3]
    assert a["q90_width"] == pytest.approx(b["q90_width"]) and b["coverage_q90"] < a["coverage_q90"]
