"""Normalised (heteroscedastic) conformal calibration from solo features (stsched.latency.heteroscedastic)."""

from __future__ import annotations

import numpy as np
import pytest

from stsched.errors import InputError
from stsched.latency.heteroscedastic import NormalisedPredictive, ScaleModel, solo_features
from stsched.latency.uncertainty import conformal_quantiles
from stsched.latency.victim_prior import VictimEffect


def _rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Three features in [0, 1]; the log residual's noise grows with the first (sd 0.01 .. 0.21), the others are
    noise-free distractors."""
    x = rng.uniform(0, 1, (n, 3))
    return x, rng.normal(0, 0.01 + 0.2 * x[:, 0])


def _normalised(x: np.ndarray, c: np.ndarray, effect: VictimEffect | None = None) -> NormalisedPredictive:
    scale = ScaleModel.fit(x, np.abs(c))
    return NormalisedPredictive("synthetic", scale, tuple(np.sort(c / scale.sigma(x))), effect)


@pytest.mark.parametrize("seed", [0, 1])
def test_normalised_scores_cover_the_noisy_rows_where_a_pooled_quantile_does_not(seed):
    rng = np.random.default_rng(seed)
    x, c = _rows(rng, 1500)
    pred = _normalised(x, c)
    xn, cn = _rows(rng, 4000)
    up = pred.log_factor(xn, 0.9)
    noisy, quiet = xn[:, 0] > 0.8, xn[:, 0] < 0.2
    assert 0.87 <= np.mean(cn <= up) <= 0.93
    assert 0.85 <= np.mean(cn[noisy] <= up[noisy]) <= 0.95
    assert 0.85 <= np.mean(cn[quiet] <= up[quiet]) <= 0.97
    pooled = conformal_quantiles(c, (0.9,))[0]  # one width for every row: over-covers quiet rows, misses noisy ones
    assert np.mean(cn[noisy] <= pooled) < 0.84 and np.mean(cn[quiet] <= pooled) > 0.98


def test_a_victim_effect_widens_every_row_and_new_victims_are_covered():
    """Victims with shifts ~ N(0, 0.05^2) and the heteroscedastic within noise: the t-predicted shift convolved
    with sigma(x) x the normalised scores covers rows of new victims at about the nominal level in every noise
    regime."""
    rng = np.random.default_rng(3)
    shifts = rng.normal(0, 0.05, 8)
    parts = [_rows(rng, 150) for _ in shifts]
    x = np.vstack([p[0] for p in parts])
    c = np.concatenate([p[1] - np.median(p[1]) for p in parts])
    seen = shifts + np.array([np.median(p[1]) for p in parts])
    pred = _normalised(x, c, VictimEffect.of(seen))
    bare = _normalised(x, c)
    xn = rng.uniform(0, 1, (40, 3))
    assert np.all(pred.log_factor(xn, 0.9) > bare.log_factor(xn, 0.9))
    cover = {"noisy": [], "quiet": []}
    for _ in range(40):
        xn, cn = _rows(rng, 200)
        cn = cn + rng.normal(0, 0.05)
        up = pred.log_factor(xn, 0.9)
        cover["noisy"].append(np.mean((cn <= up)[xn[:, 0] > 0.7]))
        cover["quiet"].append(np.mean((cn <= up)[xn[:, 0] < 0.3]))
    assert 0.85 <= np.mean(cover["noisy"]) <= 0.95
    assert 0.85 <= np.mean(cover["quiet"]) <= 0.97


def test_scale_model_keeps_a_positive_floor_and_refuses_too_few_rows():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    s = ScaleModel.fit(x, np.array([0.3, 0.2, 0.1, 0.0]))
    assert s.floor == pytest.approx(0.25 * 0.15)
    assert np.all(s.sigma(np.array([[10.0]])) == s.floor)
    with pytest.raises(InputError, match="at least 2 residuals"):
        ScaleModel.fit(np.array([[1.0]]), np.array([0.1]))
    pred = NormalisedPredictive("f", s, (-1.0, 0.0, 1.0), None)
    with pytest.raises(InputError, match="quantile level"):
        pred.log_factor(x, 1.0)


def test_leave_one_victim_out_never_sees_the_held_out_victim():
    """H100 green contexts (4 victims, 80 rows): scaling one held-out victim's measured latencies leaves its
    predicted quantile (width, sigma) unchanged and moves only its coverage; the solo features refuse a mismatch."""
    from stsched.data.loaders import load_profile
    from stsched.latency import fit
    from stsched.latency.heteroscedastic import leave_one_victim_out_normalised
    from stsched.latency.model import corun_data, default_form

    prof = load_profile("h100-sm")
    model = fit(prof)
    form = default_form(model)
    base = leave_one_victim_out_normalised(model, prof.corun, form)
    assert [r["victim"] for r in base["victims"]] == ["bert-base", "mobilenetv2", "resnet50", "vgg16"]
    assert base["pooled"]["n"] == 80 and 0 <= base["pooled"]["coverage_q90"] <= 1
    corun = prof.corun.copy()
    corun.loc[corun["victim"] == "vgg16", "victim_latency_ms"] *= 1.5
    moved = leave_one_victim_out_normalised(model, corun, form)
    a, b = base["victims"][3], moved["victims"][3]
    assert a["q90_width"] == pytest.approx(b["q90_width"]) and a["sigma_max"] == pytest.approx(b["sigma_max"])
    assert b["coverage_q90"] < a["coverage_q90"]
    data = corun_data(model, prof.corun)
    assert solo_features(data, np.full(len(data), 1.2)).shape == (len(data), 3)
    with pytest.raises(InputError, match="point predictions"):
        solo_features(data, np.ones(len(data) + 1))
