"""A service whose memory no partition holds is infeasible, named with its reason, for every solver.

Session 16 (a leftover of session 15's hostile tester): with memory_mb 1e12, `stsched solve --solver milp` and
`cpsat` said "unknown: the restricted model has no plan (the problem itself may have one)", exit 1, where the
heuristic and cg named the service infeasible: `stsched.bounds.infeasible_services` knew only the SLO and rate
reasons.  The memory reason is now there too, judged by the checker's own memory rule
(`stsched.checker.exceeds_memory`), so no service that a valid plan can serve is ever called unservable."""

from __future__ import annotations

import dataclasses

import pytest

import stsched as st
from stsched.bounds import infeasible_services, unservable
from stsched.checker import check
from stsched.registry import Objective, SolveOptions, Status, get_solver
from tests.conftest import make_mig_instance, make_mps_instance


@pytest.mark.parametrize("solver", ["milp", "cpsat", "heuristic", "cg", "brute"])
@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_every_solver_names_a_service_no_partition_holds(solver, objective):
    inst = make_mps_instance(memory=(1e12, 2000.0))
    res = get_solver(solver).solve(inst, SolveOptions(objective=objective, time_limit_s=10))
    assert res.status is Status.INFEASIBLE, (res.status, res.message)
    assert "s0" in res.infeasible_services and "s1" not in res.infeasible_services
    assert "memory" in res.message


@pytest.mark.parametrize("make", [make_mps_instance, make_mig_instance])
def test_the_memory_reason_agrees_with_the_checker(make):
    """At the memory where a one-tenant plan of the service at batch 1 is just valid, it is not unservable; a little
    above every point's memory (on the largest partition), it is."""
    inst = make()
    res = st.solve(inst, solver="heuristic")
    assert res.plan is not None and check(inst, res.plan).valid
    assert infeasible_services(inst) == {}
    part = max(inst.mechanism.sizes)
    from stsched.checker import memory_limit_mb
    limit = memory_limit_mb(inst, part)
    svc = inst.services[0]
    over = limit / 1.0 - inst.device.context_mb + 1.0  # one process alone at batch 0 would already exceed it
    big = dataclasses.replace(inst, services=(dataclasses.replace(svc, memory_mb=over),) + inst.services[1:])
    assert svc.name in infeasible_services(big) and svc.name in unservable(big, Objective.MAX_SCALE)
    fits = limit - inst.device.context_mb - svc.activation_mb_per_sample * min(inst.batches) - 1.0
    ok = dataclasses.replace(inst, services=(dataclasses.replace(svc, memory_mb=fits),) + inst.services[1:])
    assert svc.name not in infeasible_services(ok)


def test_a_service_served_within_the_checkers_slo_tolerance_is_not_unservable():
    """entry_capacity compared 2 exec with budget (1 + 1e-9), stricter than the checker's (1 + REL_TOL) + 1e-9: a
    service whose only point meeting its SLO lies in that band was called unservable (and its LP efficiency 0)
    although the one-partition plan below is valid (review of session 16)."""
    from stsched.bounds import efficiency, usable_entries
    from stsched.plan import GpuLayout, Partition, Plan, Tenant

    base = make_mps_instance(rates=(100.0,), slos=(50.0,), memory=(1000.0,), gpus=1)
    svc = base.services[0]
    two_e = min(2 * e.latency_ms * base.margin.latency_factor for e in usable_entries(base, svc.model))
    slo = two_e / (1 + 5e-7) / base.margin.slo_factor  # 2 exec half the checker's tolerance above the budget
    inst = dataclasses.replace(base, services=(dataclasses.replace(svc, slo_ms=slo),))
    point = next(e for e in usable_entries(inst, svc.model) if 2 * e.latency_ms == two_e)
    plan = Plan((GpuLayout((Partition(point.size, (Tenant(svc.name, point.batch, svc.rate),), procs=point.procs),)),))
    assert check(inst, plan).valid
    assert infeasible_services(inst) == {} and unservable(inst, Objective.MAX_SCALE) == {}
    assert efficiency(inst, svc.name).per_unit > 0
