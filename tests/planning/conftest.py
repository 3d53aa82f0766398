"""Fixtures shared by the re-planning tests."""

from __future__ import annotations

import pytest

from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.planning.adapt.rebalance import rebalance
from stsched.scenarios import gpulet_mix


@pytest.fixture(scope="module")
def rent_setting():
    """Two services of gpulet's m2 at 50 req/s each: `plan` serves them on two GPUs (one tenant each), `one` on a
    single GPU (both tenants in one partition): the compaction rent's tests compact the first into the second."""
    inst = gpulet_mix("m2", 4, rate=100.0)
    a, b = inst.services[0].name, inst.services[1].name
    inst = inst.subset({a: 1.0, b: 1.0}).with_rates({a: 50.0, b: 50.0})
    plan = rebalance(inst, Plan((GpuLayout((Partition(100.0, (Tenant(a, 4, 0.0),)),)),
                                 GpuLayout((Partition(100.0, (Tenant(b, 4, 0.0),)),)))))
    one = Plan((GpuLayout((Partition(100.0, (Tenant(a, 4, 0.0), Tenant(b, 4, 0.0))),)),))
    assert plan is not None and plan.gpus_used == 2
    return inst, plan, one


@pytest.fixture
def decision_kinds(monkeypatch) -> list[str]:
    """The kinds `Compaction.set_time` is told, decision by decision (the controller passes "epoch", "emergency" or
    "detector"; `rent_at_epochs` reads them), collected while the real method runs."""
    from stsched.planning.adapt.compaction import Compaction

    kinds: list[str] = []
    real = Compaction.set_time

    def spy(self, t_s, kind="epoch"):
        kinds.append(kind)
        return real(self, t_s, kind)

    monkeypatch.setattr(Compaction, "set_time", spy)
    return kinds
