"""Decision time at scale (issue 18): local re-planning, the incremental re-tenanting and the lazy plan from
scratch of the adaptive policy."""

from __future__ import annotations

import pytest

from stsched.checker import check
from stsched.errors import InputError
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.planning.adapt import Adaptive, AdaptOptions, PolicyOptions
from stsched.planning.adapt.local import local_adapt, neighbourhood
from stsched.planning.adapt.calls import min_gpus
from stsched.planning.adapt.rebalance import service_capacities
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import gpulet_mix, random_instance

LIMIT = 5.0  # the heuristic stops well before this when it is done; a shared CI machine needs the margin


@pytest.fixture(scope="module")
def twelve():
    """12 random A100 MPS services, a plan from scratch for them, and resnet50-2 raised beyond its capacity."""
    inst = random_instance(12, 12, 1, "a100-mps", arrivals="deterministic")
    plan = min_gpus(inst, PolicyOptions(time_limit_s=LIMIT))
    up = inst.with_rates({"resnet50-2": 1.5 * service_capacities(inst, plan)["resnet50-2"]})
    return inst, plan, up


def _heuristic_adapt(sub, cur):
    judged = run_solver("heuristic", sub, SolveOptions(objective=Objective.ADAPT, time_limit_s=LIMIT,
                                                       current_plan=cur))
    return judged.result.plan if judged.valid else None


def _key(g: GpuLayout) -> tuple:
    return tuple((p.size, tuple((t.service, t.batch) for t in p.tenants)) for p in g.partitions)


def test_local_adapt_changes_only_the_neighbourhood(twelve):
    """A service left short is re-planned on the GPUs that host it (with every service on them); the other GPUs
    keep their layouts and tenants, and the merged plan carries every rate (checker-valid)."""
    inst, plan, up = twelve
    near = neighbourhood(plan, {"resnet50-2"})
    assert 0 < len(near) < plan.gpus_used
    got = local_adapt(up, plan, {"resnet50-2"}, 2, _heuristic_adapt)
    assert got is not None and check(up, got).valid
    assert got.gpus_used <= plan.gpus_used + 1  # at most one GPU per mover is switched on
    for k, g in enumerate(plan.gpus):
        if k not in near:
            assert _key(got.gpus[k]) == _key(g)


def test_local_adapt_does_not_ask_for_a_large_neighbourhood(twelve):
    inst, plan, up = twelve

    def never(sub, cur):
        raise AssertionError("a neighbourhood above max_services must not be solved")

    assert local_adapt(up, plan, {"resnet50-2"}, 1, never, max_services=1) is None


def test_adaptive_in_local_mode_gives_a_valid_plan(twelve):
    inst, plan, up = twelve
    new, note = Adaptive(PolicyOptions(time_limit_s=LIMIT, local_above=4)).next(up, plan)
    assert check(up, new).valid, note
    with pytest.raises(InputError, match="local_above"):
        AdaptOptions(local_above=-1)


class _Counting(Adaptive):
    asked: int = 0

    def _fresh(self, instance):
        type(self).asked += 1
        return super()._fresh(instance)


def test_plan_from_scratch_only_when_a_decision_needs_it():
    """Two vgg16 GPUs of 60 %: at 2200 req/s (LP bound 2) rebalancing carries the rates and nothing is spare, so
    no plan from scratch is solved; at 600 req/s one GPU is spare and the rent needs one."""
    vgg = gpulet_mix("m2", 40, rate=800.0).subset(["vgg16"])
    two = Plan(tuple(GpuLayout((Partition(60.0, (Tenant("vgg16", 16, 900.0),)),)) for _ in range(2)))
    policy = _Counting(PolicyOptions(time_limit_s=1.0))
    plan, _ = policy.next(vgg.with_rates({"vgg16": 2200.0}), two)
    assert plan.gpus_used == 2 and _Counting.asked == 0
    policy.next(vgg.with_rates({"vgg16": 600.0}), plan)
    assert _Counting.asked == 1


def test_initial_deployment_retries_with_more_time():
    """A solver stopped by its time limit before any plan (a large instance on a loaded machine) is asked again
    with 5 x, then 25 x the limit; the error of the last try is raised."""
    from stsched.errors import InfeasibleError
    from stsched.planning.adapt.controller import _initial
    from stsched.planning.adapt.calls import _PATIENCE

    class Slow:
        def __init__(self, needs: float) -> None:
            self.needs, self.asked = needs, []

        def initial(self, instance):
            self.asked.append(_PATIENCE.get())
            if _PATIENCE.get() < self.needs:
                raise InfeasibleError("stopped at the time limit before a plan was complete")
            return Plan(())

    ok = Slow(5.0)
    assert _initial(ok, None) == Plan(()) and ok.asked == [1.0, 5.0]
    never = Slow(100.0)
    with pytest.raises(InfeasibleError):
        _initial(never, None)
    assert never.asked == [1.0, 5.0, 25.0] and _PATIENCE.get() == 1.0


def test_initial_deployment_is_not_retried_when_proved_infeasible():
    """An instance the solver proves cannot be served (a service beyond all its GPUs) is not asked again with 5 x and
    25 x the time limit (session 20: three solves, the same answer)."""
    from stsched.planning.adapt.calls import _PATIENCE, ProvedInfeasible
    from stsched.planning.adapt.controller import _initial
    from stsched.planning.adapt.policies import PolicyOptions, make_policy

    inst = gpulet_mix("m2", 40, rate=2500.0).with_gpus(1)
    policy = make_policy("full-repartition", inst, PolicyOptions(time_limit_s=5.0))
    asked = []
    real = policy.initial

    def spy(instance):
        asked.append(_PATIENCE.get())
        return real(instance)

    policy.initial = spy
    with pytest.raises(ProvedInfeasible, match="cannot be served"):
        _initial(policy, inst)
    assert asked == [1.0]
