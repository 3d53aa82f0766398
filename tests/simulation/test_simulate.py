"""The simulator on whole plans: a closed form, a checker-valid plan under Poisson, an overloaded partition."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stsched.checker import check
from stsched.cli import main
from stsched.devices import DEVICES, mps_mechanism
from stsched.errors import InputError
from stsched.io import save_instance, save_plan
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Instance, LatencyTable, ProfileEntry, Service
from stsched.scenarios import gpulet_mix
from stsched.simulation import ArrivalSpec, SimOptions, simulate

T_MS = 1000.0 / 256.0  # 3.90625 ms: every time below is an exact binary fraction of a second


def closed_form_instance(slo_ms: float = 6 * T_MS) -> Instance:
    # one model, one partition size; L(1) = 1.5T, L(2) = 2T, L(4) = 3T
    table = LatencyTable("m", tuple(ProfileEntry(b, 100.0, 1, lat) for b, lat in
                                    ((1, 1.5 * T_MS), (2, 2 * T_MS), (4, 3 * T_MS))))
    return Instance("closed", (Service("s", "m", 256.0, slo_ms),), DEVICES["a100-80gb"], mps_mechanism((100.0,)),
                    1, (1, 2, 4), (table,))


def test_closed_form_one_service_one_partition():
    """256 req/s evenly spaced, batch 4 taking 3T: request i >= 1 is dispatched at 3*ceil(i/3)*T, so its
    latency is (3*ceil(i/3) + 3 - i) * T; request 0 runs alone (3T with the fixed model, 1.5T with fill)."""
    inst = closed_form_instance()
    plan = Plan((GpuLayout((Partition(100.0, (Tenant("s", 4, 256.0),)),)),))
    assert check(inst, plan).valid
    res = simulate(inst, plan, ArrivalSpec("deterministic"), SimOptions(duration_s=2.0, exec_model="fixed"))
    lat = res.records.latency_ms()
    n = len(lat)
    assert n == 512
    i = np.arange(1, n)
    expect = np.concatenate([[3 * T_MS], (3 * np.ceil(i / 3) + 3 - i) * T_MS])
    order = np.argsort(res.records.arrival)
    assert np.allclose(lat[order], expect, rtol=0, atol=1e-9)
    assert res.summary.slo_attainment == 1.0
    assert res.summary.p99_ms == pytest.approx(5 * T_MS)
    # the checker's worst case d + e = 6T bounds every latency
    assert lat.max() <= check(inst, plan).stats.worst_latency_ms["s"] + 1e-9
    # an SLO of 4T is met exactly by the requests with latency 3T and 4T: two of every three after the first
    tight = simulate(closed_form_instance(4 * T_MS), plan, ArrivalSpec("deterministic"),
                     SimOptions(duration_s=2.0, exec_model="fixed"))
    assert tight.summary.within_slo == 1 + int(((3 * np.ceil(i / 3) + 3 - i) <= 4).sum())


def test_closed_form_fill_model_light_load():
    """At 1/10 of the rate every request runs alone in the batch-of-one time L(1) = 1.5T."""
    inst = closed_form_instance().with_rates({"s": 25.6})
    plan = Plan((GpuLayout((Partition(100.0, (Tenant("s", 4, 25.6),)),)),))
    res = simulate(inst, plan, ArrivalSpec("deterministic"), SimOptions(duration_s=5.0))
    assert np.allclose(res.records.latency_ms(), 1.5 * T_MS)


@pytest.fixture(scope="module")
def m2_instance() -> Instance:
    return gpulet_mix("m2", 2, rate=800.0)


def m2_plan(vgg_rate: float = 800.0, vgg_batch: int = 16) -> Plan:
    return Plan((GpuLayout((Partition(60.0, (Tenant("resnet50", 16, 800.0), Tenant("mobilenet", 16, 800.0))),)),
                 GpuLayout((Partition(60.0, (Tenant("vgg16", vgg_batch, vgg_rate),)),))))


def test_checker_valid_plan_meets_slo_under_poisson(m2_instance):
    plan = m2_plan()
    assert check(m2_instance, plan).valid
    res = simulate(m2_instance, plan, ArrivalSpec("poisson"), SimOptions(duration_s=120.0, seed=3))
    s = res.summary
    assert s.requests == pytest.approx(3 * 800 * 120, rel=0.02)
    assert s.slo_attainment >= 0.99
    for x in s.per_service:
        assert x.attainment >= 0.99
        assert x.p99_ms <= x.slo_ms
    assert s.goodput == pytest.approx(s.within_slo / 120.0)
    assert 0 < s.gpu_utilisation < 1


def test_overloaded_partition_queue_grows_and_attainment_collapses(m2_instance):
    """vgg16 at batch 4 on 60 % serves 1000*4/4.4 = 909 req/s; offered 1200 req/s it falls behind, and only it."""
    inst = m2_instance.with_rates({"vgg16": 1200.0})
    plan = m2_plan(vgg_rate=1200.0, vgg_batch=4)
    report = check(inst, plan)
    assert not report.valid and {v.rule.value for v in report.violations} == {"throughput"}
    res = simulate(inst, plan, ArrivalSpec("poisson"), SimOptions(duration_s=60.0, seed=1))
    vgg = res.records.services.index("vgg16")
    rec = res.records
    sel = rec.service == vgg
    from stsched.simulation import RequestRecords
    sub = RequestRecords(rec.services, rec.service[sel], rec.arrival[sel], rec.start[sel], rec.finish[sel],
                         rec.gpu[sel], rec.partition[sel])
    q = sub.backlog([15.0, 30.0, 45.0, 60.0])
    assert np.all(np.diff(q) > 0)  # the queue keeps growing
    assert q[-1] == pytest.approx((1200 - 909) * 60, rel=0.15)
    assert res.summary.service("vgg16").attainment < 0.1
    assert res.summary.service("resnet50").attainment >= 0.99  # partitions are independent


def test_bursty_arrivals_hurt_more_than_poisson(m2_instance):
    plan = m2_plan()
    opts = SimOptions(duration_s=60.0, seed=2)
    poisson = simulate(m2_instance, plan, ArrivalSpec.parse("poisson"), opts).summary
    bursty = simulate(m2_instance, plan, ArrivalSpec.parse("gamma:4"), opts).summary
    assert bursty.p99_ms > poisson.p99_ms
    assert bursty.slo_attainment < poisson.slo_attainment


def test_unserved_service_counts_as_missed(m2_instance):
    plan = Plan((GpuLayout((Partition(60.0, (Tenant("resnet50", 16, 800.0),)),)),))
    res = simulate(m2_instance, plan, ArrivalSpec("poisson"), SimOptions(duration_s=10.0))
    assert res.summary.service("vgg16").attainment == 0.0
    assert res.summary.service("resnet50").attainment >= 0.99
    assert res.summary.slo_attainment < 0.4


def test_noise_and_random_routing_run(m2_instance):
    plan = m2_plan()
    res = simulate(m2_instance, plan, ArrivalSpec("poisson"),
                   SimOptions(duration_s=20.0, seed=1, noise_cv=0.1, routing="random"))
    assert res.summary.slo_attainment > 0.95


def test_bad_options():
    with pytest.raises(InputError):
        SimOptions(duration_s=-1)
    with pytest.raises(InputError):
        SimOptions(routing="nearest")
    with pytest.raises(InputError):
        ArrivalSpec.parse("gamma:x")
    with pytest.raises(InputError):
        ArrivalSpec.parse("trace:nope")


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_simulate_json_and_files(tmp_path, m2_instance, capsys):
    save_instance(m2_instance, tmp_path / "i.json")
    save_plan(m2_plan(), tmp_path / "p.json")
    out, rec = tmp_path / "s.json", tmp_path / "r.csv"
    code = main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--duration", "5", "--seed", "1",
                 "--arrivals", "trace:azure-functions-2019", "--json", "--out", str(out), "--records", str(rec)])
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert {"slo_attainment", "goodput", "p99_ms", "per_service"} <= set(d)
    assert set(d["per_service"]) == {"resnet50", "vgg16", "mobilenet"}
    assert json.loads(out.read_text()) == d
    assert rec.read_text().startswith("service,arrival_s")


def test_cli_simulate_with_the_noise_a_profile_measured(tmp_path, m2_instance, capsys):
    """--noise-cv PROFILE: the median CV of the profiler's solo repeats (co-run rows and short rows left out)."""
    save_instance(m2_instance, tmp_path / "i.json")
    save_plan(m2_plan(), tmp_path / "p.json")
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "samples.json").write_text(json.dumps({
        "solo|d|cpu|a|1|1.0|1": [1.0, 2.0, 3.0],  # CV 0.5
        "solo|d|cpu|a|2|1.0|1": [2.0, 4.0, 6.0, "x"],  # CV 0.5 (the non-number dropped)
        "solo|d|cpu|b|1|1.0|1": [10.0, 10.0, 10.0],  # CV 0
        "solo|d|cpu|b|2|1.0|1": [1.0, 9.0],  # too few repeats
        "corun|d|cpu|a|1|1.0|b|1|1.0": [1.0, 100.0, 1.0]}))
    for where in (profile, profile / "samples.json"):
        assert main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--duration", "5",
                     "--noise-cv", str(where), "--json"]) == 0
        d = json.loads(capsys.readouterr().out)
        assert d["noise_cv"] == pytest.approx(0.5) and d["noise_source"].startswith("measured:")
        assert "3 solo rows" in d["noise_source"]
    report = tmp_path / "report.json"  # scripts/gpu_check.sh keeps the sweep's samples under "samples"
    report.write_text(json.dumps({"failed_steps": [], "samples": json.loads((profile / "samples.json").read_text())}))
    assert main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--duration", "5",
                 "--noise-cv", str(report), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["noise_cv"] == pytest.approx(0.5)
    (profile / "samples.json").write_text(json.dumps({"corun|x": [1.0, 2.0, 3.0]}))
    assert main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--noise-cv", str(profile)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stsched: error:") and "samples.json" in err and "no solo row" in err


@pytest.mark.parametrize("extra", [["--arrivals", "gamma:-1"], ["--arrivals", "weibull"], ["--duration", "0"],
                                   ["--duration", "x"], ["--arrivals", "trace:nope"], ["--routing", "zz"],
                                   ["--noise-cv", "-0.1"], ["--noise-cv", "nope.json"]])
def test_cli_simulate_bad_input_exits_2(tmp_path, m2_instance, extra, capsys):
    save_instance(m2_instance, tmp_path / "i.json")
    save_plan(m2_plan(), tmp_path / "p.json")
    assert main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), *extra]) == 2
    assert capsys.readouterr().err.startswith("stsched: error:")
