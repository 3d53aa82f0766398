"""The counter-free interference form `stsched-elastic` (no L2/DRAM utilisation): its invariants, and its fit on a
synthetic co-run table with known coefficients."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.errors import InputError
from stsched.interference import Features, aggregate_slowdown, get_form
from stsched.latency import FitOptions, fit, interference_for, load, predict_slowdown, save
from stsched.latency.evaluate import in_sample, leave_one_group_out, transfer
from stsched.latency.forms import get_spec
from stsched.latency.model import corun_data, side_features

FORM = get_form("stsched-elastic")
NAN = float("nan")
unit = st.floats(0.0, 1.0)
coef = st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0))


def feat(fraction: float, elasticity: float = 0.5, latency_ms: float = 2.0) -> Features:
    return Features(NAN, NAN, fraction, latency_ms, 8, elasticity)  # no utilisation: the form must not read it


def test_registered_counter_free_and_carryable():
    spec = get_spec("stsched-elastic")
    assert not FORM.reads_util and FORM.combine == "sum" and FORM.n_coef == spec.n_coef == 2
    assert spec.carryable and not spec.needs_util and spec.fit == "lsq" and spec.lower == (0.0, 0.0)
    assert not get_form("none").reads_util and get_form("stsched-regime").reads_util


def test_values():
    assert FORM.pair((0.1, 0.2), feat(0.5, elasticity=1.0), feat(0.5)) == pytest.approx(1.1)
    assert FORM.pair((0.1, 0.2), feat(0.5, elasticity=0.0), feat(0.25)) == pytest.approx(1.15)
    assert FORM.pair((0.0, 0.0), feat(0.5), feat(0.5)) == 1.0
    # elasticity outside [0, 1] (a noisy surface) is clipped, as in stsched-regime
    assert FORM.pair((0.1, 0.2), feat(0.5, elasticity=1.3), feat(0.5)) == pytest.approx(1.1)
    assert FORM.pair((0.1, 0.2), feat(0.5, elasticity=-0.2), feat(0.5)) == pytest.approx(1.2)


@settings(max_examples=200, deadline=None)
@given(coef, unit, st.floats(-0.5, 1.5), unit, unit)
def test_at_least_one_and_monotone_in_the_neighbours_fraction(c, fv, sv, f1, f2):
    lo, hi = sorted((f1, f2))
    victim = feat(fv, sv)
    a, b = FORM.pair(c, victim, feat(lo)), FORM.pair(c, victim, feat(hi))
    assert a >= 1.0 and b >= a - 1e-12
    # never increasing in the victim's SM elasticity (a host/launch-bound victim suffers more)
    assert FORM.pair(c, feat(fv, 0.2), feat(hi)) >= FORM.pair(c, feat(fv, 0.8), feat(hi)) - 1e-12


@settings(max_examples=100, deadline=None)
@given(coef, unit, st.lists(st.lists(unit, min_size=1, max_size=3), min_size=1, max_size=3))
def test_neighbours_add_up_and_one_more_never_helps(c, sv, parts):
    victim = feat(0.2, sv)
    neighbours = [[feat(f) for f in tenants] for tenants in parts]
    total = aggregate_slowdown(FORM, c, victim, neighbours)
    worst = [max(FORM.pair(c, victim, o) for o in tenants) for tenants in neighbours]
    assert total == pytest.approx(1.0 + sum(w - 1.0 for w in worst))
    assert aggregate_slowdown(FORM, c, victim, neighbours + [[feat(0.1)]]) >= total - 1e-12


def test_vectorised_equals_scalar():
    rng = np.random.default_rng(0)
    fv, fo, sv = rng.uniform(0, 1, 50), rng.uniform(0, 1, 50), rng.uniform(-0.2, 1.2, 50)
    arr = np.asarray(FORM.pair((0.07, 0.15), Features(NAN, NAN, fv, 1.0, 8, sv), Features(NAN, NAN, fo, 1.0, 8, 0.5)))
    one = [FORM.pair((0.07, 0.15), feat(a, s), feat(b)) for a, b, s in zip(fv, fo, sv)]
    np.testing.assert_allclose(arr, one)


# ------------------------------------------------------------------------------------------ fit on synthetic data
KAPPA, MU = 0.08, 0.20
MODELS = {"hostbound": (3.0, 0.2), "mixed": (0.8, 1.0), "compute": (0.05, 2.0)}  # floor ms, compute ms at p=100


def synthetic_solo() -> pd.DataFrame:
    """Solo latency F + c b / (8 f) without utilisation: elasticity near 0 for the host-bound model, near 1 for
    the compute-bound one, in between for the mixed one."""
    rows = []
    for m, (floor, work) in MODELS.items():
        for b in (1, 2, 4, 8, 16):
            for p in (10, 20, 40, 60, 80, 100):
                rows.append({"model": m, "batch": b, "partition": float(p), "latency_ms": floor + work * b / 8 * 100 / p})
    return pd.DataFrame(rows)


def synthetic_corun(solo_model, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rows = []
    for v in MODELS:
        for o in MODELS:
            for pv, po in ((20, 80), (40, 60), (60, 40), (80, 20), (10, 40)):
                for b in (2, 8):
                    rows.append({"victim": v, "victim_batch": b, "victim_partition": float(pv), "corunner": o,
                                 "corunner_batch": 4, "corunner_partition": float(po)})
    df = pd.DataFrame(rows)
    vs = side_features(solo_model, df["victim"].to_numpy(), df["victim_batch"].to_numpy(),
                       df["victim_partition"].to_numpy())
    s = np.clip(vs.elasticity, 0, 1)
    slow = 1 + KAPPA * (1 - s) + MU * df["corunner_partition"].to_numpy() / 100.0
    eps = np.random.default_rng(seed).normal(0, noise, len(df)) if noise else 0.0
    return df.assign(victim_latency_ms=vs.latency_ms * slow * (1 + eps))


@pytest.fixture(scope="module")
def solo():
    return synthetic_solo()


@pytest.fixture(scope="module")
def solo_model(solo):
    return fit((solo, None))


def test_fit_recovers_known_coefficients(solo, solo_model, caplog):
    el = side_features(solo_model, ["hostbound", "compute"], [8, 8], [40.0, 40.0]).elasticity
    assert el[0] < 0.3 and el[1] > 0.8  # the synthetic surfaces span the regimes
    corun = synthetic_corun(solo_model)
    with caplog.at_level(logging.INFO, logger="stsched.latency.model"):
        model = fit((solo, corun))
    assert not model.has_util and list(model.coef) == ["stsched-elastic"]
    assert model.coef["stsched-elastic"] == pytest.approx((KAPPA, MU), abs=1e-6)
    assert interference_for(model).coef == pytest.approx((KAPPA, MU), abs=1e-6)
    data = corun_data(model, corun)
    assert len(data) == len(corun)
    # a request for options.form (read utilisation, not fitted) is answered with the counter-free form
    np.testing.assert_allclose(predict_slowdown(model, data), data.slowdown, rtol=1e-6)
    np.testing.assert_allclose(predict_slowdown(model, data, "stsched-regime"), data.slowdown, rtol=1e-6)
    noisy = fit((solo, synthetic_corun(solo_model, noise=0.02)))
    assert noisy.coef["stsched-elastic"] == pytest.approx((KAPPA, MU), abs=0.02)


def test_splits_score_the_form_and_the_baselines(solo, solo_model):
    corun = synthetic_corun(solo_model)
    model = fit((solo, corun))
    forms = ["stsched-elastic", "none", "constant"]
    for by in ("layout", "model", "corunner", "pair"):
        stats, preds, data = leave_one_group_out(model, corun, by, forms)
        assert stats["stsched-elastic"]["mape"] < 1e-5 < stats["constant"]["mape"] < stats["none"]["mape"]
        assert (preds["none"] == 1).all() and stats["stsched-elastic"]["n"] == len(data) == len(corun)
    stats, _, _ = in_sample(model, corun, forms)
    assert stats["stsched-elastic"]["p90"] < 1e-5
    other = synthetic_corun(solo_model, noise=0.01, seed=1)
    stats, _, test = transfer(model, corun, fit((solo, other)), other, forms)
    assert len(test) == len(other) and stats["stsched-elastic"]["mape"] < stats["constant"]["mape"]
    with pytest.raises(InputError, match="unknown grouping"):
        leave_one_group_out(model, corun, "gpu")


def test_options_and_persistence(solo, solo_model, tmp_path):
    # the new option is left out of the options' dict at its default: older model files keep their hashes
    assert "corun_only_form" not in FitOptions().to_dict()
    with pytest.raises(InputError, match="corun_only_form"):
        FitOptions(corun_only_form="stsched-regime")  # reads utilisation
    model = fit((solo, synthetic_corun(solo_model)))
    save(model, tmp_path / "m.json")
    back = load(tmp_path / "m.json")
    assert back.coef == model.coef and back.data_hash == model.data_hash and not back.has_util
    assert interference_for(back).form == "stsched-elastic"


def test_profiles_with_utilisation_keep_their_forms(solo, solo_model):
    util = solo.assign(l2_util=0.3, dram_util=0.2)
    corun = synthetic_corun(solo_model)
    model = fit((util, corun), replace(FitOptions(), forms=("igniter", "stsched-regime")))
    assert model.has_util and set(model.coef) == {"igniter", "stsched-regime"}
    assert interference_for(model).form == "stsched-regime"
