"""Issue 18, session 17: step 4's compaction (`compact_slack`) takes the exact adapt solver's fewest-change plan on
the plan from scratch's GPU count where it carries the reserved rates with no less spare capacity and changes fewer
layouts than the plan from scratch aligned (`AdaptiveKnobs.compact_fewest`)."""

from __future__ import annotations

import pytest

from stsched.errors import InputError
from stsched.plan import gpu_layout, layout_changes
from stsched.planning.adapt import AdaptOptions
from stsched.planning.adapt.compaction import _spare
from stsched.planning.adapt.calls import min_gpus
from stsched.planning.adapt.policies import Adaptive, PolicyOptions
from stsched.planning.adapt.rebalance import rebalance
from stsched.reconfig import align
from tests.conftest import make_mps_instance


def _case(high: tuple[float, float], fall: float, fewest: bool = True, off: bool = False):
    inst = make_mps_instance(rates=high, gpus=8)
    policy = Adaptive(PolicyOptions(time_limit_s=5.0, compact_fewest=fewest, compact_off=off))
    current = min_gpus(inst, policy.opts)
    low = inst.with_rates({"s0": high[0] * fall, "s1": high[1] * fall})
    fresh = min_gpus(low, policy.opts)
    step4 = policy._slack_compaction(low, policy._reserved(low), current, current, fresh)
    return low, current, align(current, fresh), step4


def test_the_slack_compaction_takes_the_fewest_change_plan_on_as_many_gpus():
    # three whole GPUs for (1200, 600) req/s; at half the rates the plan from scratch re-lays both GPUs it keeps
    # ((60, 40), (40, 40): 3 changes), while keeping two whole GPUs carries them with as much spare (1 change)
    low, current, scratch, (plan, how) = _case((1200.0, 600.0), 0.5)
    assert [gpu_layout(g) for g in current.gpus] == [(100.0,)] * 3 and layout_changes(current, scratch) == 3
    assert plan.gpus_used == 2 and layout_changes(current, plan) == 1 and "adapt" in how
    assert rebalance(low, plan) is not None and _spare(low, plan) >= _spare(low, scratch)


def test_a_fewest_change_plan_with_less_spare_capacity_is_not_taken():
    # (60, 40) + (40, 40) for (600, 300) req/s; at a quarter the (40, 40) GPU alone carries them with no spare (1
    # change), the plan from scratch (one whole GPU, 2 changes) with 20 %: the spare capacity decides
    low, current, scratch, (plan, how) = _case((600.0, 300.0), 0.25)
    assert layout_changes(current, scratch) == 2 and _spare(low, scratch) == pytest.approx(0.2)
    assert how == "from scratch" and layout_changes(current, plan) == 2


def test_without_compact_fewest_the_plan_from_scratch_as_before():
    _, current, scratch, (plan, how) = _case((1200.0, 600.0), 0.5, fewest=False)
    assert how == "from scratch" and layout_changes(current, plan) == 3


def test_compact_fewest_must_be_a_bool():
    with pytest.raises(InputError, match="compact_fewest must be a bool"):
        AdaptOptions(compact_fewest="yes")


@pytest.mark.parametrize("off", [False, True])
def test_compact_off_reaches_the_count_from_scratch_by_switch_offs_alone(off):
    # session 19 (`compact_off`): three whole GPUs for (1200, 600) req/s; at half the rates one GPU switched off
    # leaves two whole GPUs that carry them (1 change) where the plan from scratch re-lays both GPUs it keeps (3)
    low, current, scratch, (plan, how) = _case((1200.0, 600.0), 0.5, fewest=False, off=off)
    assert layout_changes(current, scratch) == 3 and plan.gpus_used == 2
    if off:
        assert layout_changes(current, plan) == 1 and "switch-offs" in how
        assert [gpu_layout(g) for g in plan.gpus if gpu_layout(g)] == [(100.0,)] * 2  # the kept GPUs not rebuilt
    else:
        assert plan == scratch and how == "from scratch"


def test_switch_offs_tighter_than_the_plan_from_scratch_are_not_taken():
    # review mend (session 19, `compact_off`): (100) + (80, 20) + (100) for (700, 700) req/s; at 27 % the two GPUs
    # left by switch-offs carry the rates with 5 % spare (2 changes), the plan from scratch with 10 % (3 changes):
    # fewer changes, but the spare capacity decides, as for `compact_fewest`
    low, current, scratch, (plan, how) = _case((700.0, 700.0), 0.27, fewest=False, off=True)
    assert [gpu_layout(g) for g in current.gpus if gpu_layout(g)] == [(100.0,), (80.0, 20.0), (100.0,)]
    assert layout_changes(current, scratch) == 3 and _spare(low, scratch) == pytest.approx(0.1)
    assert how == "from scratch" and plan == scratch
