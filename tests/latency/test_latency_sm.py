"""The latency model on green-context (`sm`) data: h200-sm, measured by this project (SM counts, capacity 132,
no L2/DRAM utilisation, so its co-runs fit the counter-free form stsched-elastic)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from stsched.data.loaders import load_profile, read_corun_csv, read_solo_csv
from stsched.errors import InputError
from stsched.latency import fit, interference_for, predict, side_features
from stsched.latency.evaluate import batch_holdout, measured_slowdowns, size_holdout
from stsched.latency.model import corun_data


@pytest.fixture(scope="module")
def h200():
    return load_profile("h200-sm")


@pytest.fixture(scope="module")
def h200_model(h200):
    return fit(h200)


def test_fit_sm_profile_without_utilisation(h200, caplog):
    """No L2/DRAM utilisation: the counter-free form is fitted to the 80 co-runs (the others read utilisation)."""
    with caplog.at_level(logging.INFO, logger="stsched.latency.model"):
        model = fit(h200)
    assert (model.mechanism, model.capacity, model.device) == ("sm", 132.0, "h200")
    assert model.models == ["bert-base", "mobilenetv2", "resnet18", "resnet50", "vgg16"]
    assert not model.has_util and list(model.coef) == ["stsched-elastic"] and not model.estimators
    assert any("fitting the counter-free form stsched-elastic to 80 co-run row(s)" in r.getMessage()
               and "l2_util / dram_util" in r.getMessage() for r in caplog.records)
    inter = interference_for(model)
    assert inter.form == "stsched-elastic" and len(inter.coef) == 2 and all(c >= 0 for c in inter.coef)
    assert inter.coef == pytest.approx((0.0629, 0.1638), abs=5e-4)  # docs/LATENCY.md quotes these
    s = h200.solo
    pred = predict(model, s["model"].to_numpy(), s["batch"].to_numpy(), s["partition"].to_numpy())
    err = np.abs(pred / s["latency_ms"].to_numpy() - 1)
    assert np.median(err) < 1e-9 and err.max() < 0.01  # profiled points reproduced (monotone projection aside)
    side = side_features(model, ["resnet50"], [8], [66.0])
    assert side.fraction[0] == pytest.approx(0.5)  # partition fraction = SMs / 132


def test_corun_data_names_missing_utilisation(h200, h200_model, caplog):
    corun = h200.corun.copy()
    corun.loc[5, "victim"] = "alexnet"  # a model the fit has never seen
    with caplog.at_level(logging.WARNING, logger="stsched.latency.model"):
        with pytest.raises(InputError, match="no co-run row matches"):
            corun_data(h200_model, corun, "h200 co-run", require_util=True)
    msgs = [r.getMessage() for r in caplog.records]
    assert any("skipped 1 co-run row(s) whose victim or co-runner the model has no profile" in m
               and m.endswith("data row 6") for m in msgs)
    assert any("skipped 79 co-run row(s) whose victim or co-runner has no solo L2/DRAM utilisation" in m
               for m in msgs)
    kept = corun_data(h200_model, corun, "h200 co-run")  # default: the profile has no utilisation, none required
    assert len(kept) == 79 and np.isnan(kept.victim.l2_util).all() and np.isfinite(kept.victim.elasticity).all()


def test_fit_of_sm_frames_without_meta_takes_the_largest_partition(h200, caplog):
    solo = h200.solo[h200.solo["partition"] <= 96]
    with caplog.at_level(logging.WARNING, logger="stsched.latency.model"):
        model = fit((solo, None))
    assert model.capacity == 96.0
    assert any("no fixed capacity" in r.getMessage() and "(96)" in r.getMessage() for r in caplog.records)


def test_held_out_sizes_and_batches_match_the_documented_figures(h200):
    """docs/LATENCY.md quotes these (experiments/latency_eval.py); a change to the solo model must update them."""
    (r,) = size_holdout(h200, (16, 32, 64, 132))
    assert r["n"] == 60
    assert r["mape"] == pytest.approx(0.0400, abs=5e-4) and r["p90"] == pytest.approx(0.0835, abs=5e-4)
    (r,) = batch_holdout(h200, (1, 4, 16, 32))
    assert r["n"] == 60
    assert r["mape"] == pytest.approx(0.0374, abs=5e-4) and r["p90"] == pytest.approx(0.0759, abs=5e-4)


def test_measured_slowdowns(h200, h200_model, caplog):
    sd = measured_slowdowns(h200.corun, h200.solo, h200_model)
    assert len(sd) == 80 and sd["slowdown"].gt(0).all()
    assert (sd["solo_from"] == "model").sum() == 16 and set(sd.loc[sd["solo_from"] == "model", "victim_partition"]) \
        == {112.0}
    row = sd[(sd["victim"] == "resnet50") & (sd["corunner"] == "resnet50") & (sd["victim_partition"] == 64)]
    assert row["slowdown"].tolist() == [2.9345920085906982 / 2.478543996810913]
    with caplog.at_level(logging.WARNING, logger="stsched.latency.evaluate"):
        measured_only = measured_slowdowns(h200.corun, h200.solo, source="c.csv")
    assert len(measured_only) == 64 and set(measured_only["solo_from"]) == {"measured"}
    assert any("c.csv: dropped 16 co-run row(s)" in r.getMessage() for r in caplog.records)
    raw = h200.path / "raw"
    whole = measured_slowdowns(read_corun_csv(raw / "gpu_corun.csv"), read_solo_csv(raw / "gpu_solo.csv"))
    assert len(whole) == 4 and whole["slowdown"].between(1.55, 1.72).all()
