"""Predictive slowdown distributions (conformal), few-shot probes, probe files, and their CLI (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.cli import main
from stsched.data.loaders import load_profile
from stsched.errors import InputError
from stsched.latency import fit, load, save
from stsched.latency.model import corun_data, default_form
from stsched.latency.probes import (Adaptation, adaptation_from, axis_weights, k_median, plan_probes,
                                    probe_mask, probed_prediction, read_probe_file)
from stsched.latency.uncertainty import (LEVELS, Predictive, calibrate_form, conformal_quantiles,
                                         leave_one_victim_out_calibration, with_predictive)

HEADER = ("device,mechanism,victim,victim_batch,victim_partition,corunner,corunner_batch,corunner_partition,"
          "victim_latency_ms,corunner_latency_ms\n")


@pytest.fixture(scope="module")
def v100():
    prof = load_profile("v100-mps")
    return prof, fit(prof)


# ------------------------------------------------------------------------------------------------ conformal
def test_conformal_quantiles_use_the_finite_sample_order_statistic():
    q = dict(zip(LEVELS, conformal_quantiles(np.arange(1.0, 20.0))))  # n = 19
    assert q[0.9] == 18.0  # ceil(20 * 0.9) = 18th smallest
    assert q[0.99] == 19.0 and q[0.5] == 10.0 and q[0.1] == 2.0  # floor(20 * 0.1) = 2nd


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=60), st.floats(0, 0.5),
       st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_predictive_quantiles_are_monotone_and_at_least_one(scores, shift, q1, q2):
    p = Predictive("igniter", shift, conformal_quantiles(np.asarray(scores)), "model", 2, len(scores))
    point = np.array([1.0, 1.3, 2.5])
    lo, hi = sorted((q1, q2))
    assert np.all(p.quantile(point, lo) <= p.quantile(point, hi) + 1e-12)
    assert np.all(p.quantile(point, lo) >= 1.0)
    assert Predictive.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_predictive_rejects_non_monotone_quantiles():
    d = Predictive("igniter", 0.1, tuple(np.linspace(-0.1, 0.1, len(LEVELS))), "model", 2, 10).to_dict()
    d["within"][5] = 5.0
    with pytest.raises(InputError, match="non-decreasing"):
        Predictive.from_dict(d)


def test_lovo_calibration_never_sees_the_held_out_victim(v100):
    prof, model = v100
    form = default_form(model)
    base = leave_one_victim_out_calibration(model, prof.corun, form)
    assert [r["victim"] for r in base["victims"]] == ["alexnet", "resnet50", "vgg19"]
    assert base["pooled"]["n"] == 750 and 0 <= base["pooled"]["coverage_q90"] <= 1
    # scale the held-out victim's measured latencies: its predicted quantile (width) must not move, its coverage must
    corun = prof.corun.copy()
    vgg = corun["victim"] == "vgg19"
    corun.loc[vgg, "victim_latency_ms"] *= 1.5
    moved = leave_one_victim_out_calibration(model, corun, form)
    a, b = base["victims"][2], moved["victims"][2]
    assert a["q90_width"] == pytest.approx(b["q90_width"])
    assert b["coverage_q90"] < a["coverage_q90"]


def test_calibration_treats_the_victim_shift_as_a_random_effect(v100):
    """V100: three victims of their own; a shipped population of larger shifts widens the upper quantile."""
    prof, model = v100
    data = corun_data(model, prof.corun)
    own = calibrate_form("igniter", data, model.options)
    assert own.grouping == "model" and own.n_groups == 3 and own.n_rows == 750 and own.victim_df == 3
    assert own.total and own.victim_scale > 0
    assert own.log_factor(0.9) > float(np.interp(0.9, LEVELS, own.within))  # the victim effect widens it
    assert own.log_factor(0.1) < float(np.interp(0.1, LEVELS, own.within))
    wide = calibrate_form("igniter", data, model.options, population=(0.3, -0.3))
    assert wide.victim_df == 5 and wide.log_factor(0.9) > own.log_factor(0.9) + 0.1
    assert Predictive.from_dict(json.loads(json.dumps(wide.to_dict()))) == wide


# --------------------------------------------------------------------------------------------------- probes
def test_k_median_picks_the_median_then_spreads():
    pts = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0], [4, 0]])
    assert k_median(pts, 1) == [2]
    assert k_median(pts, 2) == [2, 0]  # greedy: ties (0, 1, 3, 4 all cost 4) go to the lowest index
    assert len(k_median(pts, 9)) == 5


def _grid(batches=(1, 2, 4, 8, 16, 32), parts=(20.0, 50.0, 80.0), corunners=("a", "b")) -> pd.DataFrame:
    rows = [{"victim": "x", "victim_batch": b, "victim_partition": p, "corunner": c, "corunner_batch": cb,
             "corunner_partition": 100.0 - p} for b in batches for p in parts for c in corunners for cb in (1, 8)]
    return pd.DataFrame(rows)


def test_plan_spreads_over_the_heavier_axis_and_rotates_corunners():
    probes = plan_probes("new", _grid(), 3, weights=(2.0, 0.0))
    assert len({p.victim_batch for p in probes}) == 3  # batch axis only: three different batches
    assert [p.corunner for p in probes] == ["a", "b", "a"]
    assert all(p.victim == "new" and p.corunner_partition == 100.0 - p.victim_partition for p in probes)
    probes = plan_probes("new", _grid(), 3, weights=(0.0, 2.0))
    assert {p.victim_partition for p in probes} == {20.0, 50.0, 80.0}
    with pytest.raises(InputError, match="cannot be probed"):
        plan_probes("new", _grid(), 2, covered=np.zeros(len(_grid()), bool))


def test_axis_weights_follow_the_measured_slowdown():
    g = _grid().assign(victim="v")
    slow = 1.0 + 0.1 * np.log2(g["victim_batch"].to_numpy())  # moves with batch only
    wb, wp = axis_weights(g, slow)
    assert wb == pytest.approx(2.0) and wp == pytest.approx(0.0)
    assert axis_weights(g, np.ones(len(g))) == (1.0, 1.0)


def test_adaptation_recovers_the_sensitivity():
    pred = np.array([1.1, 1.3, 1.6])
    a = adaptation_from("x", 1 + 2.0 * (pred - 1), pred)
    assert a.sensitivity == pytest.approx(2.0) and a.probes == 3
    assert a.apply(np.array([1.0, 1.5])) == pytest.approx([1.0, 2.0])
    assert Adaptation.from_dict(a.to_dict()) == a
    assert adaptation_from("x", np.array([1.5]), np.array([1.0])).sensitivity == 1.0  # no predicted excess
    assert adaptation_from("x", np.array([0.8, 0.9]), np.array([1.2, 1.2])).sensitivity == 0.0


def test_probed_prediction_removes_a_victim_scaling(v100):
    """A held-out victim whose excess slowdown is 3x what the others show: 2 probes recover most of it."""
    prof, model = v100
    data = corun_data(model, prof.corun)
    held_mask = data.rows["victim"].to_numpy() == "vgg19"
    train, held = data.take(~held_mask), data.take(held_mask)
    from stsched.latency.evaluate import fit_predict
    truth = 1 + 3.0 * (fit_predict("igniter", train, held, model.options) - 1)
    held = type(held)(held.rows, held.victim, held.other, truth)
    before = np.abs(fit_predict("igniter", train, held, model.options) / truth - 1).mean()
    pred, chosen = probed_prediction(model, "igniter", train, held, 2)
    assert chosen.sum() == 2 and probe_mask(held.rows, []).sum() == 0
    after = np.abs(pred[~chosen] / truth[~chosen] - 1).mean()
    assert after < 0.2 * before


# -------------------------------------------------------------------------------------------------- probe files
def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "probe.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    return path


GOOD = "v100-16gb,mps,ssd,4,50,resnet50,4,50,40.0,"
NON_POSITIVE = "row 2: victim_latency_ms must be a positive|victim_latency_ms.* row 2"  # ours, or the loader's


@pytest.mark.parametrize("lines, message", [
    ([GOOD, "v100-16gb,mps,bert,4,50,resnet50,4,50,40.0,"], "row 2: unknown victim model 'bert'"),
    ([GOOD, "v100-16gb,mps,ssd,4,50,gpt,4,50,40.0,"], "row 2: unknown corunner model 'gpt'"),
    ([GOOD, "v100-16gb,mps,ssd,8,50,resnet50,4,50,0,"], NON_POSITIVE),
    ([GOOD, "v100-16gb,mps,ssd,8,50,resnet50,4,50,-3,"], NON_POSITIVE),
    ([GOOD, "v100-16gb,mps,ssd,2,50,resnet50,4,50,9,", GOOD], "row 3 repeats row 1|an earlier key in data row 3"),
])
def test_bad_probe_files_name_the_row(tmp_path, lines, message):
    path = _write(tmp_path, lines)
    with pytest.raises(InputError, match=message):
        read_probe_file(str(path), ["ssd", "resnet50", "alexnet", "vgg19"])


def test_fit_with_a_bad_probe_file_exits_2_with_one_line(tmp_path, capsys):
    path = _write(tmp_path, [GOOD, GOOD])
    out = tmp_path / "m.json"
    assert main(["fit", "--dataset", "v100", "--probe", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "repeats" in err and "row 2" in err and not out.exists()


def test_fit_with_probes_adapts_and_saves(tmp_path, capsys, v100):
    prof, _ = v100
    solo = prof.solo.set_index(["model", "batch", "partition"])["latency_ms"]
    lines = [f"v100-16gb,mps,ssd,{b},{p},resnet50,4,{100 - p},{1.4 * solo[('ssd', b, float(p))]:.4f},"
             for b, p in ((2, 50), (16, 50), (4, 20))]
    path = _write(tmp_path, lines)
    out = tmp_path / "m.json"
    capsys.readouterr()
    assert main(["fit", "--dataset", "v100", "--probe", str(path), "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["adapted"]["ssd"]["probes"] == 3 and info["adapted"]["ssd"]["sensitivity"] > 0
    assert "stsched-regime@3probes" in info["predictive"]
    model = load(out)
    assert model.adapted["ssd"].sensitivity == pytest.approx(info["adapted"]["ssd"]["sensitivity"])
    data = corun_data(model, pd.read_csv(path))
    from stsched.latency.model import predict_slowdown
    assert np.abs(predict_slowdown(model, data) / 1.4 - 1).max() < 0.1  # the probes are now predicted closely


# ------------------------------------------------------------------------------------------------------ CLI
def test_evaluate_model_reports_coverage_and_lovo(tmp_path, capsys):
    out = tmp_path / "v100.json"
    assert main(["fit", "--device", "v100", "--out", str(out)]) == 0  # the older spelling still works
    assert set(load(out).predictive) == {"gpulet-linear", "igniter", "stsched-contention", "stsched-regime"}
    capsys.readouterr()
    corun = load_profile("v100-mps").corun
    data = tmp_path / "corun.csv"
    corun.to_csv(data, index=False)
    assert main(["evaluate-model", str(out), "--data", str(data), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0 <= res["coverage_q90"] <= 1 and res["q90_width"] > 0
    assert [r["victim"] for r in res["per_model"]] == ["alexnet", "resnet50", "vgg19"]
    lovo = res["leave_one_victim_out"]
    assert lovo["dataset"] == "v100-mps" and len(lovo["victims"]) == 3
    assert 0 <= lovo["pooled"]["min_victim_coverage_q90"] <= lovo["pooled"]["coverage_q90"] <= 1
    assert main(["evaluate-model", str(out), "--json"]) == 0  # LOVO only
    assert "coverage_q90" not in json.loads(capsys.readouterr().out)


def test_saved_predictive_round_trips(tmp_path, v100):
    prof, model = v100
    m = with_predictive(model, prof.corun, ["igniter"])
    save(m, tmp_path / "m.json")
    back = load(tmp_path / "m.json")
    assert back.predictive == m.predictive


def test_probe_plan_cli(capsys):
    assert main(["probe-plan", "ssd", "--dataset", "v100", "--k", "3", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan) == 3 and {tuple(sorted(p)) for p in plan} == {tuple(sorted(
        ["victim", "victim_batch", "victim_partition", "corunner", "corunner_batch", "corunner_partition"]))}
    assert all(p["victim"] == "ssd" and p["victim_partition"] + p["corunner_partition"] == 100 for p in plan)
    for args, message in ((["probe-plan", "bert", "--dataset", "v100", "--k", "2"], "no solo profile"),
                          (["probe-plan", "ssd", "--dataset", "v100", "--k", "0"], "--k"),
                          (["probe-plan", "vgg16", "--dataset", "mig", "--k", "2"], "no co-run rows"),
                          (["fit", "--dataset", "v100", "--device", "v100", "--out", "x.json"], "once")):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err


# ------------------------------------------------------------------------------- instances and the simulator
def _inst_plan():
    from tests.conftest import make_mps_instance
    from stsched.plan import GpuLayout, Partition, Plan, Tenant
    from stsched.problem import Interference
    inst = make_mps_instance(rates=(40.0, 20.0), interference=Interference("igniter", (0.5, 1.0)))
    plan = Plan((GpuLayout((Partition(40.0, (Tenant("s0", 4, 40.0),)), Partition(60.0, (Tenant("s1", 4, 20.0),)))),))
    return inst, plan


def test_quantile_twin_scales_the_base_form():
    from stsched.interference import FORMS, Features
    v, o = Features(0.3, 0.4, 0.4, 5.0, 4), Features(0.6, 0.2, 0.6, 3.0, 4)
    base = FORMS["igniter"].pair((0.5, 1.0), v, o)
    assert FORMS["igniter@quantile"].pair((0.5, 1.0, 0.2), v, o) == pytest.approx(base * np.exp(0.2))
    assert FORMS["igniter@quantile"].pair((0.0, 0.0, -0.5), v, o) == 1.0  # never below 1
    assert FORMS["stsched-elastic@quantile"].combine == "sum" and FORMS["igniter@quantile"].n_coef == 3


def test_scenario_carries_the_quantile(tmp_path, v100):
    prof, model = v100
    m = with_predictive(model, prof.corun, ["stsched-regime"])
    save(m, tmp_path / "m.json")
    out = tmp_path / "i.json"
    assert main(["scenario", "igniter-example", "--latency-model", str(tmp_path / "m.json"),
                 "--interference-quantile", "0.9", "--out", str(out)]) == 0
    inter = json.loads(out.read_text())["interference"]
    assert inter["form"] == "stsched-regime@quantile"
    assert inter["coef"] == pytest.approx([*m.coef["stsched-regime"], float(m.predictive["stsched-regime"]
                                                                           .log_factor(0.9))])
    for bad in ("1", "0", "x"):
        assert main(["scenario", "igniter-example", "--latency-model", str(tmp_path / "m.json"),
                     "--interference-quantile", bad, "--out", str(out)]) == 2
    assert main(["scenario", "igniter-example", "--interference-quantile", "0.9"]) == 2  # needs a model


def test_scenario_plans_for_a_target_attainment(tmp_path, v100, capsys):
    """--target-attainment 0.99: late share 0.005 and the 0.99 quantile (union split), or 0.01 and 0.99 (each);
    bad values and conflicting options are one line and exit 2, before any file is written."""
    prof, model = v100
    m = with_predictive(model, prof.corun, ["stsched-regime"])
    save(m, tmp_path / "m.json")
    out = tmp_path / "i.json"
    base = ["scenario", "igniter-example", "--latency-model", str(tmp_path / "m.json")]
    for split, late in (("union", 0.005), ("each", 0.01)):
        assert main([*base, "--target-attainment", "0.99", "--budget-split", split, "--out", str(out)]) == 0
        d = json.loads(out.read_text())
        assert d["margin"]["late_share"] == pytest.approx(late) and d["arrivals"] == "poisson"
        assert d["interference"]["coef"][-1] == pytest.approx(float(m.predictive["stsched-regime"].log_factor(0.99)))
    capsys.readouterr()
    out.unlink()
    for extra in (["--target-attainment", "1"], ["--target-attainment", "x"],
                  ["--target-attainment", "0.99", "--interference-quantile", "0.9"]):
        assert main([*base, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "attainment" in err[0] and not out.exists()
    assert main(["scenario", "igniter-example", "--target-attainment", "0.99"]) == 2  # needs a model
    assert main(["scenario", "random", "--services", "3", "--gpus", "2", "--dataset", "v100-mps", "--latency-model",
                 str(tmp_path / "m.json"), "--arrivals", "deterministic", "--target-attainment", "0.99",
                 "--out", str(out)]) == 2
    assert "Poisson arrivals" in capsys.readouterr().err and not out.exists()


def test_interference_noise_draws_from_the_predictive():
    from stsched.simulation import ArrivalSpec, SimOptions, simulate
    from stsched.simulation.interference_noise import predictive_factors
    inst, plan = _inst_plan()
    opts = SimOptions(duration_s=20.0, seed=3)
    plain = simulate(inst, plan, ArrivalSpec(), opts)
    exact = Predictive("igniter", 0.0, tuple(0.0 for _ in LEVELS), "model", 2, 10)  # no uncertainty: no change
    same = simulate(inst, plan, ArrivalSpec(), opts, batch_factors=predictive_factors(inst, plan, exact))
    assert np.array_equal(plain.records.finish, same.records.finish)
    wide = Predictive("igniter", 0.5, tuple(np.linspace(0.0, 1.0, len(LEVELS))), "model", 2, 10)
    slow = simulate(inst, plan, ArrivalSpec(), opts, batch_factors=predictive_factors(inst, plan, wide))
    lat = lambda r: np.nanmean(r.records.finish - r.records.arrival)  # noqa: E731
    assert lat(slow) > lat(plain)
    with pytest.raises(InputError, match="form"):
        predictive_factors(inst, plan, Predictive("stsched-regime", 0.0, exact.within, "model", 2, 10))


def test_measured_factors_charge_only_partitions_with_a_neighbour():
    from experiments.interference_plans import measured_factors
    from stsched.plan import GpuLayout, Partition, Plan, Tenant
    from stsched.simulation.simulator import partition_timings
    inst, plan = _inst_plan()
    alone = GpuLayout((Partition(100.0, (Tenant("s0", 4, 10.0),)),))
    plan = Plan((*plan.gpus, alone))
    table = pd.DataFrame({"victim_batch": [4, 4, 8], "victim_partition": [40.0, 40.0, 60.0],
                          "slowdown": [1.5, 1.7, 9.0]})
    draw = measured_factors(inst, plan, table)
    pts = {(pt.gpu, pt.partition): pt for pt in partition_timings(inst, plan)}
    assert draw(pts[(1, 0)], 5, np.random.default_rng(0)) is None  # alone on its GPU
    from stsched.timing import gpu_timings
    planned = gpu_timings(inst, plan.gpus[0])[0][0].slowdown
    f = draw(pts[(0, 0)], 200, np.random.default_rng(0))  # s0: batch 4 on 40 -> the two rows measured there
    assert set(np.round(f * planned, 6)) == {1.5, 1.7}
    g = draw(pts[(0, 1)], 50, np.random.default_rng(0))  # s1: batch 4 on 60 -> nearest by batch first: (4, 40)
    assert set(np.round(g * gpu_timings(inst, plan.gpus[0])[1][0].slowdown, 6)) <= {1.5, 1.7}


def test_exceed_share_weights_each_charged_partition_by_its_rate():
    """s0 (rate 40) beside s1 (rate 20): each partition's share of measured draws above its planned slowdown,
    weighted by rate; a partition alone on its GPU is not charged and does not count."""
    from experiments.interference_plans import exceed_share
    from stsched.plan import GpuLayout, Partition, Plan, Tenant
    from stsched.timing import gpu_timings
    inst, plan = _inst_plan()
    p0, p1 = (gpu_timings(inst, plan.gpus[0])[q][0].slowdown for q in (0, 1))
    table = pd.DataFrame({"victim_batch": [4] * 6, "victim_partition": [40.0] * 4 + [60.0] * 2,
                          "slowdown": [p0 * 0.9, p0 * 1.1, p0 * 1.2, p0 * 1.3, p1 * 0.5, p1 * 0.8]})
    assert exceed_share(inst, plan, table) == pytest.approx((40 * 0.75 + 20 * 0.0) / 60)
    alone = Plan((GpuLayout((Partition(100.0, (Tenant("s0", 4, 40.0),)),)),))
    assert exceed_share(inst, alone, table) == 0.0


def test_probe_rows_of_seen_victims_only_join_the_refit(v100):
    from stsched.latency.probes import fit_with_probes
    prof, _ = v100
    solo = prof.solo.set_index(["model", "batch", "partition"])["latency_ms"]
    rows = pd.DataFrame([
        {"victim": "ssd", "victim_batch": 4, "victim_partition": 50.0, "corunner": "vgg19", "corunner_batch": 4,
         "corunner_partition": 50.0, "victim_latency_ms": 1.3 * solo[("ssd", 4, 50.0)]},
        {"victim": "vgg19", "victim_batch": 4, "victim_partition": 50.0, "corunner": "ssd", "corunner_batch": 4,
         "corunner_partition": 50.0, "victim_latency_ms": 1.1 * solo[("vgg19", 4, 50.0)]}])
    model = fit_with_probes(prof, rows)
    assert set(model.adapted) == {"ssd"}
