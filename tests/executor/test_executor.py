"""The executor on the CPU backend: real runs of tiny models, checked against the simulator's bookkeeping."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

from stsched.errors import InputError, InvalidPlanError
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Device, Instance, LatencyTable, Mechanism, MechanismKind, ProfileEntry, Service

pytest.importorskip("torch")

from profiler.partitions import get_backend  # noqa: E402
from stsched.executor import ExecOptions, execute, route  # noqa: E402
from stsched.simulation import generate, run_plan, summarize  # noqa: E402
from stsched.simulation.arrivals import ArrivalSpec  # noqa: E402

CORES = len(os.sched_getaffinity(0))


def _table(model: str, ms: float) -> LatencyTable:
    return LatencyTable(model, tuple(ProfileEntry(b, float(s), 1, ms * b / s) for b in (1, 2, 4) for s in (1, 2)))


def make_instance(slo_ms: float = 5000.0, extra_service: bool = False) -> Instance:
    services = [Service("a", "vgg-tiny", 30.0, slo_ms), Service("b", "resnet-tiny", 20.0, slo_ms)]
    if extra_service:
        services.append(Service("c", "vgg-tiny", 10.0, slo_ms))
    return Instance("cpu-exec", tuple(services), Device("cpu", 4096.0, 2), Mechanism(MechanismKind.SM, 2.0, (1.0, 2.0)),
                    2, (1, 2, 4), (_table("vgg-tiny", 1.0), _table("resnet-tiny", 2.0)))


def make_plan() -> Plan:
    # service a is split over two partitions (15 + 15 req/s), b time-shares partition 0 with a
    return Plan((GpuLayout((Partition(1.0, (Tenant("a", 2, 15.0), Tenant("b", 2, 20.0))),
                            Partition(1.0, (Tenant("a", 4, 15.0),)))),))


@pytest.fixture(scope="module")
def executed():
    if CORES < 2:
        pytest.skip("needs two cores for two partitions")
    inst, plan = make_instance(), make_plan()
    opts = ExecOptions(duration_s=1.0, seed=3, progress=False, warmup=1)
    return inst, plan, opts, execute(inst, plan, get_backend("cpu"), opts)


def test_every_request_is_served_once_in_order(executed):
    inst, plan, opts, res = executed
    arrivals = generate(ArrivalSpec(), inst.service_names, [s.rate for s in inst.services], opts.duration_s,
                        opts.seed)
    rec = res.records
    assert len(rec) == sum(len(a) for a in arrivals.values()) > 20
    for i, name in enumerate(rec.services):
        np.testing.assert_array_equal(np.sort(rec.arrival[rec.service == i]), arrivals[name])
    assert np.isfinite(rec.finish).all()
    assert (rec.start >= rec.arrival).all() and (rec.finish > rec.start).all()
    s = res.summary
    assert s.requests == len(rec) == s.completed and s.slo_attainment == 1.0
    assert sum(x.requests for x in s.per_service) == s.requests
    assert 0 < s.p50_ms <= s.p99_ms


def test_routing_matches_the_simulator(executed):
    inst, plan, opts, res = executed
    sim = run_plan(inst, plan, res.arrivals, routing=opts.routing, seed=opts.seed)
    key = lambda r: sorted(zip(r.service.tolist(), r.arrival.tolist(), r.partition.tolist()))  # noqa: E731
    assert key(sim.records) == key(res.records)
    routed = route(inst, plan, res.arrivals)
    assert abs(len(routed[(0, 0, 0)]) - len(routed[(0, 1, 0)])) <= 1  # a's two equal shares


def test_batches_respect_batch_sizes_and_never_overlap(executed):
    inst, plan, opts, res = executed
    b = res.batches
    assert b["requests"].sum() == len(res.records)
    for (q, svc), g in b.groupby(["partition", "service"]):
        tenant = next(t for t in plan.gpus[0].partitions[q].tenants if t.service == svc)
        assert (g["requests"] <= tenant.batch).all() and (g["requests"] >= 1).all()
        assert (g["model_ms"] == inst.solo_ms(svc, tenant.batch, 1.0)).all()
    for q, g in b.groupby("partition"):
        g = g.sort_values("start_s")
        ends = g["start_s"] + g["exec_ms"] / 1000.0
        assert (g["start_s"].to_numpy()[1:] >= ends.to_numpy()[:-1] - 1e-9).all()
    table = res.exec_table()
    assert len(table) == 3 and (table["median_exec_ms"] > 0).all()
    assert res.layouts[0]["obtained"] == [1.0, 1.0]
    assert [w["threads"] for w in res.layouts[0]["workers"]] == [1, 1]


def test_a_tight_slo_fails_on_the_same_records(executed):
    inst, plan, opts, res = executed
    tight = make_instance(slo_ms=0.001)
    s = summarize(tight, res.records, opts.duration_s)
    assert s.slo_attainment == 0.0 and s.goodput == 0.0


def test_plan_errors_are_reported_before_anything_runs():
    inst = make_instance()
    cpu = get_backend("cpu")
    procs = Plan((GpuLayout((Partition(1.0, (Tenant("a", 2, 30.0),), procs=2),)),))
    with pytest.raises(InputError, match="processes"):
        execute(inst, procs, cpu, ExecOptions(duration_s=1, progress=False))
    with pytest.raises(InputError, match="does not exist"):
        execute(inst, make_plan(), cpu, ExecOptions(duration_s=1, gpus=(3,), progress=False))
    with pytest.raises(InputError, match="unknown model"):
        execute(inst, make_plan(), cpu, ExecOptions(duration_s=1, model_map=(("vgg-tiny", "vgg99"),),
                                                    progress=False))
    with pytest.raises(InputError):
        ExecOptions(duration_s=0)
    with pytest.raises(InputError):
        ExecOptions(arrivals="weibull")


def _cli(argv):
    from stsched.commands import profile

    parser = argparse.ArgumentParser()
    profile.add(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_execute_one_gpu_of_two_with_an_unserved_service(tmp_path, capsys):
    from stsched.io import save_instance, save_plan

    inst = make_instance(extra_service=True)
    plan = Plan((GpuLayout((Partition(1.0, (Tenant("a", 2, 30.0),)),)),
                 GpuLayout((Partition(1.0, (Tenant("b", 1, 20.0),)),))))
    save_instance(inst, tmp_path / "inst.json")
    save_plan(plan, tmp_path / "plan.json")
    argv = ["execute", str(tmp_path / "inst.json"), str(tmp_path / "plan.json"), "--backend", "cpu",
            "--duration", "1", "--drain", "2", "--gpus", "1", "--json", "--records", str(tmp_path / "rec.csv")]
    with pytest.raises(InvalidPlanError, match="coverage"):  # the plan leaves c unserved: judged first, refused
        _cli(argv)
    capsys.readouterr()
    argv.append("--allow-invalid")
    assert _cli(argv) == 0
    out = json.loads(capsys.readouterr().out)
    per = out["summary"]["per_service"]
    assert per["a"]["requests"] == 0  # routed to GPU 0, which did not run
    assert per["b"]["requests"] > 0 and per["b"]["completed"] == per["b"]["requests"]
    assert per["c"]["requests"] > 0 and per["c"]["completed"] == 0 and per["c"]["attainment"] == 0.0
    assert [x["gpu"] for x in out["layouts"]] == [1]
    assert out["exec"][0]["service"] == "b" and out["simulated"] is None
    assert (tmp_path / "rec.csv").read_text().startswith("service,arrival_s")


def test_cli_execute_text_report_beside_the_simulator(tmp_path, capsys):
    from stsched.io import save_instance, save_plan

    inst = make_instance()
    plan = Plan((GpuLayout((Partition(1.0, (Tenant("a", 4, 30.0), Tenant("b", 2, 20.0))),)),))
    save_instance(inst, tmp_path / "inst.json")
    save_plan(plan, tmp_path / "plan.json")
    base = ["execute", str(tmp_path / "inst.json"), str(tmp_path / "plan.json"), "--backend", "cpu"]
    with pytest.raises(InputError, match="compare-sim"):
        _cli(base + ["--gpus", "0", "--compare-sim"])
    with pytest.raises(InputError, match="add it"):  # the simulator's model without the simulator
        _cli(base + ["--host-overhead", "0.001"])
    with pytest.raises(InputError, match="one of them"):
        _cli(base + ["--compare-sim", "--noise-cv", "0.1", "--exec-noise", str(tmp_path / "inst.json")])
    with pytest.raises(InputError, match="host overhead"):
        _cli(base + ["--compare-sim", "--host-overhead", "-1"])
    calib = {"host": {"overhead": {"batch_s": 0.0005, "wake_s": 0.001},
                      "exec_ratio": {"partitions": [{"gpu": 0, "partition": 0, "batches": 9,
                                                     "quantiles": [1.0 + i / 1000 for i in range(101)]}]}}}
    (tmp_path / "calib.json").write_text(json.dumps(calib))
    assert _cli(base + ["--duration", "0.5", "--compare-sim", "--model-map", "vgg-tiny=vgg-tiny",
                        "--host-overhead", str(tmp_path / "calib.json"),
                        "--exec-noise", str(tmp_path / "calib.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("executed on cpu") and "SLO attainment 1.0000" in lines[0]
    assert lines[1].startswith("host overhead: dispatch gap per busy batch")
    assert lines[2].startswith("batch time: ") and "off the worker's core" in lines[2]  # where it went
    lines.pop(2)
    assert lines[2].startswith("  gpu 0 partition 0: measured / simulated batch time")
    assert lines[3].startswith("simulated, same arrivals (batch times from ")
    assert "0.500 ms per batch + 1.000" in lines[3]
    assert lines[4].startswith("simulated without noise or host overhead")
    assert len(lines) == 7 and "instance e_s 4.00 ms" in lines[5]
    assert _cli(base + ["--duration", "0.5", "--compare-sim", "--host-overhead", "measured", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    host = out["host"]
    assert out["sim_model"]["host"] == host["overhead"] and host["overhead"]["source"] == "measured"
    assert out["sim_model"]["exec_model"] == "fixed" and out["simulated"]["requests"] == out["summary"]["requests"]
    from stsched.simulation.host import LEVELS

    assert host["exec_ratio"]["levels"] == list(LEVELS)  # every quantile list is kept at these levels
    assert len(host["exec_ratio"]["partitions"][0]["quantiles"]) == len(LEVELS)


def test_host_overhead_is_measured_from_every_batch(executed):
    from stsched.executor.host import measure_host

    inst, plan, opts, res = executed
    host = measure_host(res, inst, plan)
    assert host.gap.count + host.wake.count == len(res.batches)
    assert host.wake.count >= 1  # the workers start idle: the first batch follows a wake-up
    assert 0 <= host.overhead.batch_s < 0.05 and 0 <= host.overhead.wake_s < 0.5
    q = host.exec_ratio
    assert set(q.ratios) == {(0, 0), (0, 1)} and sum(q.batches.values()) == len(res.batches)
    assert all(r[0] > 0 and list(r) == sorted(r) for r in q.ratios.values())
    # by tenant and class: partition 0 time-shares a and b; every batch counted once, back to back or after idling
    assert set(q.tenants) == {(0, 0, "a"), (0, 0, "b"), (0, 1, "a")} and q.conditioned
    for (g, p_, _), t in q.tenants.items():
        assert t.busy_batches + t.idle_batches == t.batches
    assert sum(t.batches for t in q.tenants.values()) == len(res.batches)
    assert sum(q.busy_batches.values()) == host.gap.count and sum(q.idle_batches.values()) == host.wake.count
    # and every batch's ratio in dispatch order with its tenant (the replay's trace): the same ratios
    tr = host.trace
    assert set(tr.ratios) == set(q.ratios) and sum(len(r) for r in tr.ratios.values()) == len(res.batches)
    for key, r in tr.ratios.items():
        assert np.allclose(np.percentile(r, q.levels), q.ratios[key])
        assert set(tr.tenants[key]) == set(range(len(plan.gpus[key[0]].partitions[key[1]].tenants)))
