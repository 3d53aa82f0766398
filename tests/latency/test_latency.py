"""Latency model: monotone solo surfaces, honest interpolation, forms equal to what the checker evaluates,
bad input named, extrapolation announced, save/load integrity, tables and speed."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.data.loaders import load_profile
from stsched.errors import InputError
from stsched.interference import Features, get_form
from stsched.latency import (FitOptions, evaluate, fit, interference_for, load, predict, save, tables_for,
                             with_model)
from stsched.latency.evaluate import leave_one_model_out, size_holdout
from stsched.latency.features import CorunData, Side, clean_corun, clean_solo
from stsched.latency.forms import FORM_SPECS
from stsched.latency.interference_fit import fit_form
from stsched.latency.model import corun_data, predict_slowdown


@pytest.fixture(scope="module")
def a100():
    return fit(load_profile("a100-mps"))


@pytest.fixture(scope="module")
def v100():
    return fit(load_profile("v100-mps"))


# ------------------------------------------------------------------------------------------------ solo
@settings(max_examples=60, deadline=None)
@given(i=st.integers(0, 9), b1=st.floats(1, 64), b2=st.floats(1, 64), p1=st.floats(20, 100), p2=st.floats(20, 100))
def test_solo_monotone_a100(a100, i, b1, b2, p1, p2):
    m = a100.models[i]
    (b1, b2), (p1, p2) = sorted((b1, b2)), sorted((p1, p2))
    lat = predict(a100, [m] * 4, [b1, b2, b1, b1], [p1, p1, p1, p2])
    assert np.all(np.isfinite(lat))
    assert lat[0] <= lat[1] * (1 + 1e-9), "a larger batch must never be faster"
    assert lat[3] <= lat[2] * (1 + 1e-9), "more SMs must never be slower"


@settings(max_examples=40, deadline=None)
@given(i=st.integers(0, 3), b1=st.integers(1, 32), b2=st.integers(1, 32), p1=st.floats(20, 80), p2=st.floats(20, 80))
def test_solo_monotone_v100(v100, i, b1, b2, p1, p2):
    m = v100.models[i]
    (b1, b2), (p1, p2) = sorted((b1, b2)), sorted((p1, p2))
    lat = predict(v100, [m] * 4, [b1, b2, b1, b1], [p1, p1, p1, p2])
    assert lat[0] <= lat[1] * (1 + 1e-9) and lat[3] <= lat[2] * (1 + 1e-9)


def test_solo_reproduces_profiled_points(a100, v100):
    for model, name in ((a100, "a100-mps"), (v100, "v100-mps")):
        s = load_profile(name).solo
        pred = predict(model, s["model"].to_numpy(), s["batch"].to_numpy(), s["partition"].to_numpy())
        err = np.abs(pred / s["latency_ms"].to_numpy() - 1)
        # the monotone projection only moves points that break monotonicity (A100 floor noise ~1 %)
        assert np.median(err) < 1e-9 and err.max() < 0.03


def test_unprofiled_sizes_within_target():
    """Fit without 50 % and 80 %, predict them: the issue's target is MAPE <= 5 %."""
    (r,) = size_holdout(load_profile("a100-mps"), (20, 40, 60, 100))
    assert r["n"] == 140 and r["mape"] <= 0.05


def test_elasticity_separates_launch_and_compute_bound(a100):
    from stsched.latency.model import side_features
    side = side_features(a100, ["densenet121", "vgg19"], [1, 64], [60, 60])
    assert side.elasticity[0] < 0.1 < 0.6 < side.elasticity[1]


def test_outside_range_is_nan_with_warning_and_extrapolation_names_rule(v100, caplog):
    with caplog.at_level(logging.WARNING, logger="stsched.latency"):
        lat = predict(v100, ["resnet50"], [8], [100])
    assert math.isnan(lat[0]) and "outside the profiled range" in caplog.text
    caplog.clear()
    at80 = predict(v100, ["resnet50"], [8], [80])[0]
    with caplog.at_level(logging.WARNING, logger="stsched.latency"):
        up, low, big = (predict(v100, ["resnet50"], [b], [p], extrapolate=True)[0]
                        for b, p in ((8, 100), (8, 10), (64, 80)))
    assert up == pytest.approx(at80)  # more SMs never slower: hold
    assert low == pytest.approx(predict(v100, ["resnet50"], [8], [20])[0] * 2)  # perfect scaling from 20 %
    assert big == pytest.approx(predict(v100, ["resnet50"], [32], [80])[0] * 2)  # per-request cost held
    assert "extrapolated" in caplog.text and "upper bound" in caplog.text


def test_mig_tables_never_invent_feasibility():
    """ParvaGPU's OOM cells (0,0 in the source) stay absent: the model's tables cover exactly the profiled cells,
    and every (model, procs) surface is monotone on them."""
    prof = load_profile("a100-mig")
    model = fit(prof)
    s = prof.solo
    tabs = tables_for(model, model.models, sorted(s["batch"].unique()), sorted(s["partition"].unique()),
                      sorted(s["procs"].unique()))
    got = {(t.model, e.batch, e.size, e.procs) for t in tabs for e in t.entries}
    assert got == {(r.model, r.batch, r.partition, r.procs) for r in s.itertuples()}
    for t in tabs:
        lat = {(e.batch, e.size, e.procs): e.latency_ms for e in t.entries}
        for (b, p, k), v in lat.items():
            for (b2, p2) in ((2 * b, p), (b, p + 1)):
                if (b2, p2, k) in lat:
                    assert (lat[(b2, p2, k)] >= v - 1e-9) if b2 > b else (lat[(b2, p2, k)] <= v + 1e-9)


# ------------------------------------------------------------------------------------------------ bad input
def _solo_frame():
    return pd.DataFrame({"model": ["a", "a", "a", "a"], "batch": [1, 2, 4, 8], "partition": [50.0] * 4,
                         "procs": [1] * 4, "latency_ms": [1.0, 0.0, np.nan, 3.0], "l2_util": [0.1] * 4,
                         "dram_util": [0.1] * 4, "throughput_rps": [1000, 0, 0, 2666]})


def test_clean_solo_skips_zero_and_nan_naming_rows(caplog):
    with caplog.at_level(logging.WARNING):
        out = clean_solo(_solo_frame(), "t.csv")
    assert list(out["batch"]) == [1, 8]
    assert "t.csv" in caplog.text and "data rows 2, 3" in caplog.text


@pytest.mark.parametrize("col, value, words", [("latency_ms", -1.0, "negative"), ("l2_util", 1.5, "l2_util"),
                                               ("batch", 0, "batch"), ("partition", -5.0, "partition"),
                                               ("latency_ms", "abc", "not numeric")])
def test_clean_solo_rejects_bad_values_naming_rows(col, value, words):
    df = _solo_frame().astype({col: object})
    df.loc[3, col] = value
    with pytest.raises(InputError, match=rf"{words}.*data row 4"):
        clean_solo(df, "t.csv")


def test_clean_solo_rejects_repeats_and_missing_columns():
    df = _solo_frame()
    df.loc[1, "latency_ms"], df.loc[1, "batch"] = 2.0, 1
    with pytest.raises(InputError, match="repeats"):
        clean_solo(df)
    with pytest.raises(InputError, match="missing column"):
        clean_solo(df.drop(columns=["latency_ms"]))
    with pytest.raises(InputError, match="negative"):
        clean_corun(pd.DataFrame({"victim": ["a"], "victim_batch": [1], "victim_partition": [50.0],
                                  "corunner": ["b"], "corunner_batch": [1], "corunner_partition": [50.0],
                                  "victim_latency_ms": [-2.0]}))


def test_options_refuse_uncarryable_carry_form():
    with pytest.raises(InputError, match="cannot be carried"):
        FitOptions(forms=("stsched-regime", "gbm"), carry_form="gbm")


# ------------------------------------------------------------------------------------------------ forms
@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4), st.floats(0.1, 1.0), st.floats(0.1, 1.0),
       st.floats(0.5, 100.0), st.floats(0.5, 100.0), st.lists(st.floats(-1.0, 2.0), min_size=5, max_size=5))
def test_vectorised_forms_equal_the_checkers_pair_functions(u, fv, fo, lv, lo, coef):
    v = Features(u[0], u[1], fv, lv, 4)
    o = Features(u[2], u[3], fo, lo, 8)
    arr = lambda f: Side(*(np.array([getattr(f, k)]) for k in ("l2_util", "dram_util", "fraction", "latency_ms",
                                                                "batch")), np.array([1.0]))  # noqa: E731
    for name, spec in FORM_SPECS.items():
        if not spec.carryable:
            continue
        c = [abs(x) for x in coef[:spec.n_coef]] if spec.fit == "lsq" else coef[:spec.n_coef]
        scalar = get_form(name).pair(c, v, o)
        assert spec.evaluate(c, arr(v), arr(o))[0] == pytest.approx(scalar, rel=1e-12)
        assert scalar >= 1.0


def _synthetic(n=400, seed=1):
    rng = np.random.default_rng(seed)
    side = lambda: Side(rng.uniform(0.02, 0.4, n), rng.uniform(0.02, 0.4, n), rng.uniform(0.2, 0.8, n),  # noqa
                        rng.uniform(2, 50, n), rng.integers(1, 64, n).astype(float), rng.uniform(0, 1, n))
    return side(), side()


@pytest.mark.parametrize("name, coef", [("stsched-contention", (0.4, 0.3, 0.2)), ("stsched-regime", (0.45, 0.3, 0.1)),
                                        ("igniter", (0.6, 1.5))])
def test_fit_recovers_known_coefficients(name, coef):
    v, o = _synthetic()
    y = FORM_SPECS[name].evaluate(coef, v, o)
    data = CorunData(pd.DataFrame(index=range(len(y))), v, o, y)
    assert fit_form(name, data) == pytest.approx(coef, abs=1e-4)


def test_leave_one_model_out_never_sees_the_victim(v100):
    corun = load_profile("v100-mps").corun
    _, before, data = leave_one_model_out(v100, corun, ["stsched-regime"])
    shaken = corun.copy()
    vgg = shaken["victim"] == "vgg19"
    shaken.loc[vgg, "victim_latency_ms"] *= np.linspace(0.5, 3.0, int(vgg.sum()))
    _, after, _ = leave_one_model_out(v100, shaken, ["stsched-regime"])
    m = (data.rows["victim"] == "vgg19").to_numpy()
    assert np.allclose(before["stsched-regime"][m], after["stsched-regime"][m])
    assert not np.allclose(before["stsched-regime"][~m], after["stsched-regime"][~m])


def test_evaluate_table(v100):
    t = evaluate(v100, load_profile("v100-mps"))
    assert set(t["kind"]) == {"solo", "slowdown"} and set(t["form"]) >= set(v100.coef)
    assert (t["n"] > 0).all() and (t["p90"] >= t["p50"]).all()


# ------------------------------------------------------------------------------------------------ save / load
def test_save_load_roundtrip_and_integrity(v100, tmp_path):
    path = tmp_path / "m.json"
    save(v100, path)
    m2 = load(path)
    assert m2.coef == v100.coef and m2.data_hash == v100.data_hash
    s = load_profile("v100-mps").solo
    args = (s["model"].to_numpy(), s["batch"].to_numpy(), s["partition"].to_numpy())
    assert np.array_equal(predict(v100, *args), predict(m2, *args), equal_nan=True)
    text = path.read_text()
    for old, new, words in (('"version": 1', '"version": 99', "version"),
                            ('"format": "stsched-latency-model"', '"format": "x"', "not a latency model"),
                            (str(v100.coef["igniter"][0]), "0.5", "content_sha256")):
        assert old in text
        (tmp_path / "bad.json").write_text(text.replace(old, new, 1))
        with pytest.raises(InputError, match=words):
            load(tmp_path / "bad.json")


def test_data_hash_follows_data_and_settings(v100):
    prof = load_profile("v100-mps")
    other = fit(prof, replace(FitOptions(), f_scale=0.1))
    assert other.points_hash != v100.points_hash and other.data_hash != v100.data_hash
    assert fit(prof).data_hash == v100.data_hash


# ------------------------------------------------------------------------------------------------ tables
def test_tables_match_predictions_and_leave_out_unprofiled(v100):
    (tab,) = tables_for(v100, ["resnet50"], [1, 8], [20, 50, 100])
    keys = {(e.batch, e.size) for e in tab.entries}
    assert keys == {(1, 20.0), (1, 50.0), (1, 100.0), (8, 20.0), (8, 50.0)}  # (8, 100) was never profiled
    e = tab.get(8, 50.0)
    assert e.latency_ms == pytest.approx(predict(v100, ["resnet50"], [8], [50])[0])
    assert e.l2_util is not None and e.throughput_rps > 0
    (full,) = tables_for(v100, ["resnet50"], [8], [100], extrapolate=True)
    assert full.get(8, 100.0).latency_ms == pytest.approx(predict(v100, ["resnet50"], [8], [80])[0])
    with pytest.raises(InputError, match="no profile of model 'bert'"):
        tables_for(v100, ["bert"], [1], [50])


def test_checker_slowdown_equals_the_models_carried_form(a100):
    """The Instance carries (form, coef); the checker's timing gives the slowdown the latency model predicts."""
    from stsched.plan import GpuLayout, Partition, Tenant
    from stsched.scenarios import gpulet_mix
    from stsched.timing import gpu_timings

    inst = with_model(gpulet_mix("m1", 1), a100)
    assert inst.interference == interference_for(a100) and inst.interference.form == "stsched-regime"
    s0, s1 = inst.services[0], inst.services[1]
    layout = GpuLayout((Partition(40.0, (Tenant(s0.name, 8, 1.0),)), Partition(60.0, (Tenant(s1.name, 16, 1.0),))))
    got = gpu_timings(inst, layout)[0][0].slowdown
    corun = pd.DataFrame({"victim": [s0.model], "victim_batch": [8], "victim_partition": [40.0],
                          "corunner": [s1.model], "corunner_batch": [16], "corunner_partition": [60.0],
                          "victim_latency_ms": [1.0]})
    want = predict_slowdown(a100, corun_data(a100, corun), "stsched-regime")[0]
    assert got == pytest.approx(want, rel=1e-9) and got > 1.0


def test_full_table_of_64_services(a100):
    """The full grid of 64 services is evaluated (its speed is a figure of experiments/latency_eval.py, not a
    timed test)."""
    rng = np.random.default_rng(0)
    services = [str(m) for m in rng.choice(a100.models, 64)]
    tables = tables_for(a100, services, list(range(1, 65)), list(np.arange(5.0, 100.1, 5.0)))
    assert sum(len(tb.entries) for tb in tables) > 10_000
