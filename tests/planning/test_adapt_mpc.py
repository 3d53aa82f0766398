"""Issue 18: the GPU count decided on a forecast of the need (`stsched.planning.adapt.mpc`, knob `mpc_h`), and the
adaptive rebalance's capacities being the checker's own."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from stsched.checker import capacities, check, share_one_capacities
from stsched.errors import InputError
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.planning.adapt import Adaptive, AdaptOptions, PolicyOptions
from stsched.planning.adapt.mpc import NeedForecast, count_values
from stsched.planning.adapt.calls import min_gpus
from stsched.planning.adapt.rebalance import _CAPS, gpu_capacities, tenant_capacities
from stsched.scenarios import gpulet_mix, random_instance

LIMIT = 5.0


def _brute(forecast: list[int], step_h: float, price: float, down: float, top: int, first: int) -> float:
    """The cheapest count sequence from `first` at step 1 over the later steps' needs, by enumeration."""
    best = float("inf")
    for rest in itertools.product(range(top + 1), repeat=len(forecast)):
        if any(u < n for u, n in zip(rest, forecast)):
            continue
        seq = (first, *rest)
        moves = sum(price * (b - a) if b > a else price * down * (a - b) for a, b in zip(seq, seq[1:]))
        best = min(best, sum(seq) * step_h + moves)
    return best


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=0, max_size=3), st.integers(0, 3),
       st.sampled_from([0.0, 0.5, 1.0, 2.5]), st.sampled_from([1.0, 2.0, 3.5]))
def test_count_values_is_the_cheapest_sequence(forecast, need_now, price, down):
    v = count_values(need_now, forecast, 1 / 12, price, 3, down)
    for u in range(4):
        expect = _brute(forecast, 1 / 12, price, down, 3, u) if u >= need_now else float("inf")
        assert v.of(u) == pytest.approx(expect)
        assert v.move(u, 2) == pytest.approx(2 * price + expect)


def test_a_compaction_is_bought_when_the_forecast_saving_exceeds_its_price():
    """Need held at 10 over H epochs of 5 minutes, 1 GPU-hour per change: holding an 11th GPU costs H / 12
    GPU-hours, or the price of giving it back later; a c-change compaction is worth it iff c < H / 12."""
    for horizon, changes, worth in ((12, 1, False), (24, 1, True), (24, 2, False), (48, 3, True)):
        v = count_values(10, [10] * (horizon - 1), 1 / 12, 1.0, 11, down_changes=changes)
        assert (v.move(10, changes) < v.of(11) - 1e-9) is worth, (horizon, changes)


def test_need_forecast_holds_or_takes_the_quantile_of_the_window():
    held = NeedForecast(4)
    held.record(0.0, 12)
    assert held.later(9) == [9, 9, 9]
    q = NeedForecast(3, quantile=1.0, window_s=600.0)
    for t, n in ((0.0, 12), (300.0, 10), (600.0, 9)):
        q.record(t, n)
    assert q.later(8) == [12, 12]  # the window's peak, the current need included
    q.record(1200.0, 9)  # the 12 and the 10 are older than 600 s now
    assert q.later(8) == [9, 9]
    median = NeedForecast(2, quantile=0.5)
    for t, n in enumerate((10, 11, 10, 11)):
        median.record(300.0 * t, n)
    assert median.later(11) == [11]  # 10.5 rounds up: a need of 10.5 GPUs is 11


def test_mpc_knobs_are_checked():
    for bad, match in (({"mpc_h": 0}, "horizon"), ({"mpc_h": 12, "mpc_q": 1.5}, "quantile"),
                       ({"mpc_h": 12, "mpc_window_s": 0.0}, "window"),
                       ({"mpc_h": 12, "mpc_change_h": float("nan")}, "mpc_change_h"),
                       ({"mpc_h": 12, "rent_gpu_h": 1.0}, "mpc_h")):
        with pytest.raises(InputError, match=match):
            AdaptOptions(**bad)
    AdaptOptions(mpc_h=12, mpc_q=0.9)


def _two_gpus_for_one():
    vgg = gpulet_mix("m2", 40, rate=800.0).subset(["vgg16"])
    two = Plan(tuple(GpuLayout((Partition(60.0, (Tenant("vgg16", 16, 300.0),)),)) for _ in range(2)))
    return two, vgg.with_rates({"vgg16": 600.0})


@pytest.mark.parametrize("horizon, kept", [(6, True), (24, False)])
def test_the_spare_gpu_goes_only_when_the_forecast_pays_for_it(horizon, kept):
    """Two vgg16 GPUs where one carries the rate (the plan from scratch has one): with a held forecast over 2 hours
    (24 epochs) the switch-off (1 change, 1 GPU-hour) saves more than it costs and is bought at the first decision;
    over half an hour (6 epochs) it never pays, and the GPU is kept (the rent of the default would buy it after 12
    decisions)."""
    two, low = _two_gpus_for_one()
    policy = Adaptive(PolicyOptions(time_limit_s=LIMIT, mpc_h=horizon))
    policy.set_epoch(300.0)
    plan, used = two, []
    for k in range(3):
        policy.set_time(300.0 * (k + 1))
        plan, _ = policy.next(low, plan)
        assert check(low, plan).valid
        used.append(plan.gpus_used)
    assert used == ([2, 2, 2] if kept else [1, 1, 1])
    assert [n for _, n in policy._needs._seen] == [1, 1, 1]  # the need seen: the plan from scratch's GPUs


def test_a_need_that_was_higher_within_the_window_keeps_the_gpu():
    """With the past hour's peak need as the forecast (`mpc_q` 1), the spare GPU is kept while a decision of the
    last hour needed two GPUs, and given back once that decision has left the window."""
    two, low = _two_gpus_for_one()
    policy = Adaptive(PolicyOptions(time_limit_s=LIMIT, mpc_h=24, mpc_q=1.0, mpc_window_s=900.0))
    policy.set_epoch(300.0)
    policy._needs = NeedForecast(24, 1.0, 900.0)
    policy._needs.record(0.0, 2)
    plan, used = two, []
    for k in range(4):
        policy.set_time(300.0 * (k + 1))
        plan, _ = policy.next(low, plan)
        used.append(plan.gpus_used)
    assert used == [2, 2, 2, 1]


@pytest.mark.parametrize("late_share", [0.0, 0.05])
def test_rebalance_capacities_are_the_checkers(late_share):
    """The memoised per-GPU capacities of the adaptive rebalance are the checker's count at share 1: equal to
    `capacities` without a Poisson margin, never above it with one (the credit only grows as a share shrinks)."""
    inst = random_instance(6, 3, 4, "a100-mps", arrivals="deterministic")
    plan = min_gpus(inst, PolicyOptions(time_limit_s=LIMIT))
    inst = inst.with_late_share(late_share) if late_share else inst
    assert any(len(p.tenants) > 1 or len(g.partitions) > 1 for g in plan.gpus for p in g.partitions)
    _CAPS.clear()
    mine, judge = tenant_capacities(inst, plan), capacities(inst, plan)
    assert mine.keys() == judge.keys()
    for key, c in mine.items():
        if late_share:
            assert c <= judge[key] * (1 + 1e-9)
        else:
            assert c == pytest.approx(judge[key], rel=1e-12)
    for g in plan.gpus:  # the memo returns what the checker counts, a copy
        assert gpu_capacities(inst, g) == share_one_capacities(inst, g)
