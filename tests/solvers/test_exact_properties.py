"""Property tests of the exact solvers on random tiny instances (hypothesis): every returned plan passes the checker,
bound <= objective for min-gpus (>= for max-scale), CBC / HiGHS / CP-SAT agree with brute force, and instances that
no plan can serve are reported infeasible by all of them."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import linear_table
from stsched.devices import DEVICES, mig_mechanism, mps_mechanism
from stsched.problem import (Instance, Interference, LatencyTable, Margin, Mechanism, ProfileEntry, Service,
                             ThroughputRule)
from stsched.registry import Objective, SolveOptions, Status, run_solver

ENGINES = [("milp", "cbc"), ("milp", "highs"), ("cpsat", None)]
SETTINGS = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BATCHES = (1, 2, 4)


def _mps(draw) -> Instance:
    n = draw(st.integers(1, 3))
    sizes = (20.0, 50.0, 100.0)
    interference = Interference()
    form = draw(st.sampled_from(["none", "gpulet-linear", "stsched-elastic"])) if n <= 2 else "none"
    if form == "gpulet-linear":
        coef = tuple(draw(st.floats(0.0, 1.0)) for _ in range(4)) + (draw(st.floats(0.9, 1.2)),)
        interference = Interference(form, coef)
    elif form == "stsched-elastic":  # counter-free: the tables carry no L2/DRAM utilisation
        interference = Interference(form, (draw(st.floats(0.0, 0.6)), draw(st.floats(0.0, 0.6))))
    tables, services = [], []
    for i in range(n):
        base, per = draw(st.floats(1.0, 6.0)), draw(st.floats(0.5, 3.0))
        table = linear_table(f"m{i}", sizes, BATCHES, base, per, l2=draw(st.floats(0.05, 0.6)),
                             dram=draw(st.floats(0.05, 0.6)))
        if form == "stsched-elastic":
            table = LatencyTable(table.model, tuple(replace(e, l2_util=None, dram_util=None) for e in table.entries))
        tables.append(table)
        services.append(Service(f"s{i}", f"m{i}", draw(st.floats(5.0, 900.0)), draw(st.floats(8.0, 150.0)),
                                draw(st.floats(0.0, 3000.0))))
    mech = mps_mechanism(sizes, max_partitions=2, max_tenants=draw(st.integers(1, 3)))
    margin = Margin(latency_factor=draw(st.sampled_from([1.0, 1.1])))
    return Instance("rand-mps", tuple(services), DEVICES["a100-80gb"], mech, draw(st.integers(1, 3)), BATCHES,
                    tuple(tables), margin, interference)


def _mig(draw) -> Instance:
    n = draw(st.integers(1, 2))
    base = mig_mechanism(2)
    sizes = (2.0, 3.0, 4.0, 7.0)  # fewer slice sizes keep the brute force fast
    mech = Mechanism(base.kind, base.capacity, sizes, 3, None, 2, tuple(p for p in base.placements if p.size in sizes),
                     base.partition_memory_mb)
    tables, services = [], []
    for i in range(n):
        t = linear_table(f"m{i}", [s * 100 / 7 for s in sizes], BATCHES, draw(st.floats(1.0, 5.0)),
                         draw(st.floats(0.5, 2.0)), procs=(1, 2), throughput=True)
        tables.append(LatencyTable(t.model, tuple(ProfileEntry(e.batch, float(round(e.size * 7 / 100)), e.procs,
                                                               e.latency_ms, e.throughput_rps * draw(st.sampled_from(
                                                                   [0.9, 1.0])) if e.batch == 1 else e.throughput_rps)
                                                  for e in t.entries)))
        services.append(Service(f"s{i}", f"m{i}", draw(st.floats(5.0, 700.0)), draw(st.floats(8.0, 150.0)), 300.0))
    return Instance("rand-mig", tuple(services), DEVICES["a100-80gb"], mech, draw(st.integers(1, 3)), BATCHES,
                    tuple(tables), Margin(slo_factor=0.9), Interference(), ThroughputRule.MEASURED)


@st.composite
def instances(draw) -> Instance:
    return _mig(draw) if draw(st.booleans()) else _mps(draw)


def _run(name, backend, inst, objective):
    return run_solver(name, inst, SolveOptions(objective=objective, time_limit_s=10, engine=backend))


def _assert_consistent(known, got, objective):
    r = got.result
    assert r.status is not Status.UNKNOWN, r.message
    if r.plan is not None:
        assert got.valid, [str(v) for v in got.report.violations]
    if known.result.status is Status.INFEASIBLE:
        assert r.status is Status.INFEASIBLE and r.plan is None
        return
    assert r.status is Status.OPTIMAL, r.message
    if objective is Objective.MIN_GPUS:
        assert r.bound <= r.objective
        assert r.objective == known.result.objective
    else:
        assert r.bound >= r.objective * (1 - 1e-9)
        assert abs(r.objective - known.result.objective) <= 1e-3 * known.result.objective


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_random_tiny_instances_agree_with_brute_force(inst, objective):
    known = _run("brute", None, inst, objective)
    assume(known.result.status is not Status.UNKNOWN)  # the brute force declined: too many GPU multisets
    assert known.result.status in (Status.OPTIMAL, Status.INFEASIBLE), known.result.message
    if known.result.plan is not None:
        assert known.valid
    for name, backend in ENGINES:
        _assert_consistent(known, _run(name, backend, inst, objective), objective)


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]),
       victim=st.integers(0, 2))
def test_unservable_service_is_reported_by_every_engine(inst, objective, victim):
    names = inst.service_names
    bad = names[victim % len(names)]
    fastest = min(e.latency_ms for e in inst.table(inst.service(bad).model).entries)
    slo = fastest * inst.margin.latency_factor * 1.9 / inst.margin.slo_factor  # below 2 x the fastest execution
    inst = replace(inst, services=tuple(s if s.name != bad else replace(s, slo_ms=slo) for s in inst.services))
    for name, backend in ENGINES + [("brute", None)]:
        r = _run(name, backend, inst, objective).result
        assert r.status is Status.INFEASIBLE and bad in r.infeasible_services and r.plan is None
