"""Review mends of the exact solvers at the tolerance edge (session 19, second review, mend F)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stsched import bounds
from stsched.checker import check
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import LatencyTable
from stsched.registry import Objective, SolveOptions, Status, run_solver
from tests.conftest import make_mps_instance


def _densenet_alone(rate: float = 2450.0):
    """ParvaGPU row 1's densenet121 alone on one GPU: 3g + 3g carries 2277.04 req/s, 2g + 2g + 3g 2476.35."""
    from stsched.scenarios import parvagpu

    inst = parvagpu(1)
    s = next(x for x in inst.services if x.model == "densenet121")
    return replace(inst, services=(replace(s, rate=rate),), gpus=1)


def _best(inst, service, size):
    """The best (req/s, batch, procs) of one partition of `size` serving `service` alone."""
    pts = [(c, b, k) for b in inst.batches for k in inst.procs_options()
           if (c := bounds.point_capacity(inst, service, b, size, k)) is not None]
    return max(pts)


def _plan(inst, service, sizes, rate):
    """One GPU of partitions of `sizes`, each serving `service` at its best point, the rate split by capacity."""
    best = [_best(inst, service, p) for p in sizes]
    total = sum(c for c, _, _ in best)
    return Plan((GpuLayout(tuple(Partition(p, (Tenant(service, b, rate * c / total),), procs=k)
                                 for p, (c, b, k) in zip(sizes, best))),))


def _faster_60():
    """An MPS GPU (gpulet sizes, at most 2 partitions) whose 60 % size runs twice as fast: 40 + 60 carries more
    than any one size repeated (60 + 60 does not fit; 50 + 50 and 100 carry what 40 + 60 would untouched)."""
    inst = make_mps_instance(rates=(1.0,), slos=(50.0,), gpus=1, memory=(1000.0,))
    t = inst.tables[0]
    fast = LatencyTable(t.model, tuple(replace(e, latency_ms=e.latency_ms / 2) if e.size == 60.0 else e
                                       for e in t.entries))
    inst = replace(inst, tables=(fast,))
    c40, c60 = _best(inst, "s0", 40.0)[0], _best(inst, "s0", 60.0)[0]
    single = max(_best(inst, "s0", p)[0] * n for p, n in ((20.0, 2), (40.0, 2), (50.0, 2), (60.0, 1), (100.0, 1)))
    assert c40 + c60 > 1.2 * single
    return inst.with_rates({"s0": 0.99 * (c40 + c60)})


def test_mixed_sizes_on_one_mig_gpu_are_servable():
    """(finding 1) the screen's per-GPU figure was the best size repeated (3g + 3g, 2277.04 req/s), no bound: the
    valid 2g + 2g + 3g plan serves 2450 req/s, yet `unservable` (every exact engine's screen) and the heuristic's
    twin of it said INFEASIBLE."""
    inst = _densenet_alone()
    plan = _plan(inst, "densenet121", (3.0, 2.0, 2.0), 2450.0)
    assert check(inst, plan).valid
    assert bounds.unservable(inst, Objective.MIN_GPUS) == {}
    assert bounds.gpu_throughput(inst, "densenet121") == pytest.approx(2476.353)
    r = run_solver("heuristic", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=30)).result
    assert r.status is not Status.INFEASIBLE, r.message
    # a rate beyond every layout is still refused, with the reach in the reason
    assert "2476.35 req/s" in bounds.unservable(_densenet_alone(2480.0), Objective.MIN_GPUS)["densenet121"]


def test_mixed_sizes_on_one_mps_gpu_are_servable():
    """(finding 1) MPS with the 60 % size made faster: 40 + 60 serves what no size repeated does."""
    inst = _faster_60()
    assert check(inst, _plan(inst, "s0", (60.0, 40.0), inst.services[0].rate)).valid
    assert bounds.infeasible_services(inst) == {}
    r = run_solver("heuristic", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=30)).result
    assert r.status is not Status.INFEASIBLE, r.message


def _over_memory():
    """MPS, two 50 % partitions a GPU, on 2 GPUs: two of s0's partitions need 1.5 MB (plus rounding) more than the
    GPU's memory, far beyond the memory rule's tolerance; s1's are small.  Memory binds (`gpu_memory_mb` set)."""
    from stsched.checker import gpu_memory_limit_mb
    from stsched.devices import mps_mechanism

    base = make_mps_instance(rates=(100.0, 10.0), slos=(50.0, 80.0), gpus=2, memory=(1000.0, 1000.0))
    base = replace(base, mechanism=mps_mechanism((50.0,), max_partitions=2, max_tenants=1))
    s0 = replace(base.services[0], memory_mb=(gpu_memory_limit_mb(base) + 1.5) / 2 - base.device.context_mb)
    return replace(base, services=(s0, base.services[1]))


def _max_scale(formulation: str):
    from solvers.exact.driver import prepare

    inst = _over_memory()
    opts = SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=10, params=(("formulation", formulation),))
    data = prepare(inst, opts)
    assert data.formulation == formulation and data.gpu_memory_mb is not None
    return inst, opts, data


def test_the_memory_fallback_gives_a_valid_plan():
    """(finding 3) max-scale, indexed: an incumbent 1-2 MB over a GPU's memory (an engine's own tolerance let it
    pass) is rejected; the model at exact capacities gives the plan.  `relaxed` by the coverage rows alone
    (`tolerant_rows`, false for max-scale) returned no plan and logged an error."""
    from solvers.exact.driver import EngineOutcome, _attempt
    from solvers.exact.plans import Counts

    inst, opts, data = _max_scale("indexed")
    c0, c1 = data.configs[0].cap[0], data.configs[1].cap[0]
    assert [c.tenants[0][0] for c in data.configs] == [0, 1]
    alpha = min(2 * c0 / 100.0, c1 / 10.0)
    calls = []

    def engine(d, options, warm, limit):
        calls.append(d.tolerant)
        gpus = ((0, {0: 2}), (0, {0: 1, 1: 1})) if d.tolerant else ((0, {0: 1, 1: 1}), (0, {0: 1}))
        return EngineOutcome("optimal", 2 * alpha, Counts(per_gpu=gpus, alpha=alpha))

    r = _attempt("milp", inst, opts, data, None, 10.0, engine, "fake", 2 * alpha)
    assert calls == [True, False], calls
    assert r.status is Status.FEASIBLE and r.objective == pytest.approx(alpha), r.message
    assert check(inst, r.plan).valid and "model at exact capacities (optimal)" in r.message


@pytest.mark.parametrize("formulation", ["slots", "patterns"])
def test_no_memory_fallback_without_the_memory_row(formulation):
    """(finding 2) `relaxed` was true whenever memory binds, but only the indexed formulation writes the memory row:
    a slots or patterns max-scale incumbent the checker rejected re-solved the identical model (tolerant=False
    changes nothing there) and was reported as "the plan from the model at exact capacities"."""
    _, _, data = _max_scale(formulation)
    assert not data.relaxed(Objective.MAX_SCALE)
    assert data.relaxed(Objective.MIN_GPUS)  # (its coverage rows, `tolerant_rows`)
    assert _max_scale("indexed")[2].relaxed(Objective.MAX_SCALE)


def test_a_ladder_rung_prepared_up_to_the_deadline_is_not_started():
    """(finding 5) `_ladder_up` gave the engine `deadline - now` after the rung's preparation (0.3 s here, or <= 0),
    which `_attempt` raised to 1 s: past the deadline.  Now the ladder stops there, and says so."""
    import time

    from solvers.exact import driver
    from solvers.exact.driver import EngineOutcome, _ladder_up, prepare
    from tests.core.test_bound_rounding_edge import _edge

    inst, plan = _edge(2, 0.0)
    opts = SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=10)
    data = replace(prepare(inst, opts), tenant_limited=True, conservative=False)
    res = replace(run_solver("brute", inst, opts).result, status=Status.FEASIBLE)
    deadline = time.perf_counter() + 2.5
    calls = []

    def slow_prepare(instance, options, until=None):
        time.sleep(max(0.0, deadline - 0.3 - time.perf_counter()))
        return replace(data, tenants=data.tenants + 1)

    def engine(d, options, warm, limit):
        calls.append(limit)
        return EngineOutcome("none", None, None)

    steps: list[str] = []
    original, driver.prepare = driver.prepare, slow_prepare
    try:
        out = _ladder_up("milp", inst, opts, data, res, deadline, engine, "fake", 2.0, steps)
    finally:
        driver.prepare = original
    assert calls == [] and out is res
    assert "not solved" in steps[-1], steps


def test_adapt_milp_skipped_fallback_logs_no_error(caplog):
    """(finding 6) with under FALLBACK_MIN_S left, the skipped fallback left `rejected` set: "extracted plan
    rejected by the checker" was logged as an ERROR for a plan never extracted.  Now said as the driver says it; and
    the exact model's status is named when it finds nothing."""
    import logging
    import time

    from solvers.exact.adapt_milp import solve_adapt
    from tests.core.test_bound_rounding_edge import _edge

    inst, plan = _edge(2, 2.5e-6)
    inst = replace(inst, gpus=3)
    opts = SolveOptions(objective=Objective.ADAPT, current_plan=plan, time_limit_s=5)

    def keep_both(prob):  # an incumbent keeping both GPUs in force: the checker rejects it
        for v in prob.variables():
            v.varValue = {"k_0": 2, "w_0": 2}.get(v.name, 0)

    calls = []

    def slow(prob, o, limit):
        calls.append(limit)
        keep_both(prob)
        time.sleep(max(0.0, limit - 0.5))  # (the limit spent)
        return "optimal", None

    with caplog.at_level(logging.ERROR):
        r = solve_adapt("milp", inst, opts, slow)
    assert len(calls) == 1 and r.status is Status.UNKNOWN and "no time left" in r.message, r.message
    assert not [x for x in caplog.records if x.levelno >= logging.ERROR], caplog.text

    def none_then(prob, o, limit):
        calls.append(limit)
        if len(calls) == 2:
            keep_both(prob)
            return "optimal", None
        return "none", None

    r = solve_adapt("milp", inst, replace(opts, time_limit_s=30), none_then)
    assert len(calls) == 3 and r.status is Status.UNKNOWN and "exact capacities (none)" in r.message, r.message
