"""Issue 18, session 19: the compaction rent counted at epoch decisions only (`rent_at_epochs`).  Without it an
emergency or detector decision within an epoch that keeps the layouts pays a whole decision of rent when GPUs are
spare and starts the rent again when its burst floor leaves nothing spare (windows 14..17, 20..23, 28..31)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stsched.errors import InputError
from stsched.planning.adapt import AdaptOptions
from stsched.planning.adapt.policies import Adaptive, PolicyOptions


def _rents(rent_setting, opts: PolicyOptions) -> list[float]:
    """The rent after each of: epoch (spare), detector (nothing spare: its burst floor needs both GPUs), epoch
    (spare), emergency (spare), epoch (spare), all keeping the layouts."""
    inst, plan, one = rent_setting
    pol = Adaptive(opts)
    need = {"plan": one}
    pol._fresh = lambda instance: need["plan"]  # the plan from scratch the rent is measured against
    paid = []
    for t, kind, fresh in ((300.0, "epoch", one), (365.0, "detector", plan), (600.0, "epoch", one),
                           (660.0, "emergency", one), (900.0, "epoch", one)):
        need["plan"] = fresh
        pol.set_time(t, kind)
        pol._begin(inst)
        out, _ = pol._compact_spare(inst, plan, plan, "")
        assert out is plan  # a rent of 1000 per change buys nothing
        paid.append(pol._rent_paid)
    return paid


def test_decisions_within_an_epoch_that_keep_the_layouts_leave_the_rent_with_rent_at_epochs(rent_setting):
    assert _rents(rent_setting, PolicyOptions(compact_rent=1000.0, rent_at_epochs=True)) == [1.0, 1.0, 2.0, 2.0, 3.0]


def test_every_decision_pays_or_restarts_the_rent_by_default(rent_setting):
    assert _rents(rent_setting, PolicyOptions(compact_rent=1000.0)) == [1.0, 0.0, 1.0, 2.0, 3.0]


def test_a_layout_change_within_an_epoch_still_starts_the_rent_again(rent_setting):
    inst, plan, one = rent_setting
    pol = Adaptive(PolicyOptions(compact_rent=1000.0, rent_at_epochs=True))
    pol._fresh = lambda instance: one
    pol.set_time(300.0)
    pol._begin(inst)
    pol._compact_spare(inst, plan, plan, "")
    assert pol._rent_paid == 1.0
    pol.set_time(365.0, "detector")
    pol._begin(inst)
    pol._compact_spare(inst, plan, replace(plan, gpus=plan.gpus[:1]), "")
    assert pol._rent_paid == 0.0


def test_rent_at_epochs_must_be_a_bool():
    with pytest.raises(InputError, match="rent_at_epochs must be a bool"):
        AdaptOptions(rent_at_epochs=1)


@pytest.mark.parametrize("knob", [{"rent_gpu_h": 1.0}, {"mpc_h": 3}, {"hours_budget": 0.1}])
def test_rent_at_epochs_refuses_the_knobs_read_at_every_decision(knob):
    """Review mend: `_compact_spare` returns early at a decision within an epoch under `rent_at_epochs`, before the
    GPU-hour rent (`rent_gpu_h`, whose clock `set_time` still moved), the budget check (`hours_budget`) and the
    forecast (`mpc_h`): the combinations are refused, one line naming the knobs."""
    (name,) = knob
    with pytest.raises(InputError, match=f"rent_at_epochs .* got it with {name}$") as e:
        AdaptOptions(rent_at_epochs=True, **knob)
    assert "\n" not in str(e.value)
    AdaptOptions(**knob)  # alone, each is fine
