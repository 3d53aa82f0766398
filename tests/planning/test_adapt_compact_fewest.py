"""Issue 18, session 17: step 4's compaction (`compact_slack`) takes the exact adapt solver's fewest-change plan on
the plan from scratch's GPU count where it changes fewer layouts than the plan from scratch aligned
(`AdaptiveKnobs.compact_fewest`)."""

from __future__ import annotations

import pytest

from stsched.errors import InputError
from stsched.plan import layout_changes
from stsched.planning.adapt import AdaptOptions
from stsched.planning.adapt.policies import Adaptive, PolicyOptions, min_gpus
from stsched.reconfig import align
from tests.conftest import make_mps_instance


def _case(fewest: bool):
    # two GPUs for (600, 300) req/s, laid out (60, 40) and (40, 40); a quarter of that fits one GPU: the plan from
    # scratch is one whole GPU (100), a rebuilt layout and a GPU off (2 changes), while keeping the (60, 40) GPU
    # and switching the other off carries the lower rates with one change
    inst = make_mps_instance(rates=(600.0, 300.0), gpus=8)
    policy = Adaptive(PolicyOptions(time_limit_s=5.0, compact_fewest=fewest))
    current = min_gpus(inst, policy.opts)
    low = inst.with_rates({"s0": 150.0, "s1": 75.0})
    fresh = min_gpus(low, policy.opts)
    assert (current.gpus_used, fresh.gpus_used, layout_changes(current, align(current, fresh))) == (2, 1, 2)
    return low, current, policy._slack_compaction(low, current, fresh)


def test_the_slack_compaction_takes_the_fewest_change_plan_on_as_many_gpus():
    low, current, (plan, how) = _case(True)
    assert plan.gpus_used == 1 and layout_changes(current, plan) == 1 and "adapt" in how
    from stsched.planning.adapt.rebalance import rebalance

    assert rebalance(low, plan) is not None  # it carries the rates


def test_without_compact_fewest_the_plan_from_scratch_as_before():
    _, current, (plan, how) = _case(False)
    assert layout_changes(current, plan) == 2 and how == "from scratch"


def test_compact_fewest_must_be_a_bool():
    with pytest.raises(InputError, match="compact_fewest must be a bool"):
        AdaptOptions(compact_fewest="yes")
