"""The heuristic on the SLO's edge under every interference form (session 17's review): its latency tests compare with
exactly the checker's limit (`stsched.checker.tolerant_limit`, `Context.limit`), so a plan it returns for services
whose SLO sits on that edge (a point's 2 e, or a pair's d + e of equal times, within a few 1e-7 of the budget, on
either side of the checker's tolerance) is one the checker accepts, whatever the neighbours' slowdown."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import linear_table
from stsched.checker import check
from stsched.devices import DEVICES, mps_mechanism
from stsched.interference import QUANTILE_SUFFIX
from stsched.problem import Instance, Interference, Margin, Service
from stsched.registry import Objective, SolveOptions, run_solver

SIZES = (25.0, 50.0, 100.0)
BATCHES = (1, 2, 4)
#: per form, its coefficients (small: slowdowns of up to about 2x)
COEFS = {
    "none": lambda draw: (),
    "gpulet-linear": lambda draw: tuple(draw(st.floats(0.0, 1.0)) for _ in range(4)) + (draw(st.floats(0.9, 1.2)),),
    "igniter": lambda draw: (draw(st.floats(0.0, 0.6)), draw(st.floats(0.0, 3.0))),
    "stsched-contention": lambda draw: tuple(draw(st.floats(0.0, 0.6)) for _ in range(3)),
    "stsched-regime": lambda draw: tuple(draw(st.floats(0.0, 0.6)) for _ in range(3)),
    "stsched-elastic": lambda draw: tuple(draw(st.floats(0.0, 0.6)) for _ in range(2)),
}
#: the latency's place against the budget: inside, on, and past the checker's relative tolerance (1e-6)
EDGES = (-1e-7, 0.0, 4e-7, 9e-7, 1.5e-6)


@st.composite
def edge_instances(draw) -> Instance:
    form = draw(st.sampled_from(sorted(COEFS)))
    coef = COEFS[form](draw)
    if form != "none" and draw(st.booleans()):  # the calibrated quantile twin: one more coefficient, a log factor
        form, coef = form + QUANTILE_SUFFIX, coef + (draw(st.floats(0.0, 0.2)),)
    factor = draw(st.sampled_from([1.0, 1.1]))
    n = draw(st.integers(1, 3))
    shapes = [(draw(st.floats(1.0, 6.0)), draw(st.floats(0.5, 3.0)), draw(st.floats(0.05, 0.6)),
               draw(st.floats(0.05, 0.6))) for _ in range(n)]
    services, used = [], set()
    for i in range(n):
        m = draw(st.integers(0, i))  # (services of one model have equal times: a pair's edge)
        used.add(m)
        base, per, _, _ = shapes[m]
        b, p = draw(st.sampled_from(BATCHES)), draw(st.sampled_from(SIZES))
        k = draw(st.sampled_from([2, 3]))  # 2 e: alone; 3 e: d + e of two tenants of equal times
        exec_ms = (base + per * b) * 100.0 / p * factor  # (linear_table's latency, the margin's factor)
        slo = k * exec_ms / (1 + draw(st.sampled_from(EDGES)))
        services.append(Service(f"s{i}", f"m{m}", draw(st.floats(5.0, 600.0)), slo, draw(st.floats(0.0, 2000.0))))
    tables = tuple(linear_table(f"m{m}", SIZES, BATCHES, shapes[m][0], shapes[m][1], l2=shapes[m][2],
                                dram=shapes[m][3]) for m in sorted(used))
    mech = mps_mechanism(SIZES, max_partitions=draw(st.integers(1, 3)), max_tenants=draw(st.integers(1, 3)))
    return Instance("slo-edge", tuple(services), DEVICES["a100-80gb"], mech, draw(st.integers(1, 3)), BATCHES, tables,
                    Margin(latency_factor=factor), Interference(form, coef))


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(inst=edge_instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_every_heuristic_plan_on_the_slo_edge_is_checker_valid(inst, objective):
    r = run_solver("heuristic", inst, SolveOptions(objective=objective, time_limit_s=10)).result
    if r.plan is not None:
        report = check(inst, r.plan)
        assert report.valid, [str(v) for v in report.violations]
