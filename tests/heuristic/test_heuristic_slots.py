"""The heuristic's MIG placement (`stsched.heuristic.slots`) and the derived option lists of the greedy's joint
choice (`contents._options_after`): waste is the checker's legality, placements stay legal and place every
partition once, lone partitions pair up only where nothing completes them, and an option list derived from its
parent demand equals the list computed afresh."""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stsched import layouts
from stsched.heuristic.construct import _single
from stsched.heuristic.contents import _options, _options_after
from stsched.heuristic.ctp import cover_then_pack
from stsched.heuristic.model import build_context
from stsched.heuristic.options import HeuristicOptions
from stsched.heuristic.slots import joins, place_mig, waste
from stsched.heuristic.state import to_plan
from stsched.checker import Rule, check
from stsched.scenarios import random_instance

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.lru_cache(maxsize=None)
def _ctx(device: str, services: int = 24):
    return build_context(random_instance(services, services // 2, 3, device, arrivals="deterministic"),
                         HeuristicOptions())


def test_waste_is_what_no_legal_layout_can_use():
    ctx = _ctx("a100-mig")
    assert waste(ctx, (3.0, 3.0)) == 1.0  # an A100 has no (3, 3, 1)
    assert waste(ctx, (3.0,)) == 0.0 and waste(ctx, (4.0, 3.0)) == 0.0 and waste(ctx, (3.0, 2.0, 2.0)) == 0.0
    assert not joins(ctx, (3.0,), 3.0, spare=True) and joins(ctx, (3.0,), 3.0, spare=False)
    assert joins(ctx, (3.0,), 2.0, spare=True) and not joins(ctx, (4.0,), 4.0, spare=False)
    for sizes in ((7.0,), (4.0, 2.0, 1.0), (2.0, 2.0, 2.0, 1.0), (1.0,) * 7):
        assert layouts.legal_layout(ctx.instance, sizes) and waste(ctx, sizes) == 0.0


def _part(ctx, size: float, service: int):
    """A one-tenant partition of `size` for `service` at a tenth of its capacity there (or None)."""
    j = ctx.size_index(size)
    if ctx.cap1[service, j] <= 0:
        return None
    return _single(ctx, service, size, 0.1 * ctx.cap1[service, j])


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([1.0, 2.0, 3.0, 4.0, 7.0]), st.integers(0, 23)), min_size=1,
                max_size=30))
def test_mig_placement_is_legal_and_places_every_partition_once(picks):
    ctx = _ctx("a100-mig")
    parts = [p for p in (_part(ctx, size, s) for size, s in picks) if p is not None]
    gpus = place_mig(ctx, parts)
    placed = [p for g in gpus for p in g.parts]
    assert sorted(map(id, placed)) == sorted(map(id, parts))
    assert all(layouts.legal_layout(ctx.instance, g.sizes()) for g in gpus)
    lone = [g for g in gpus if len(g.parts) == 1 and 2 * g.parts[0].size <= ctx.capacity]
    for a in lone:  # the second pass left no lone small partition that another GPU could legally take
        assert not any(b is not a and joins(ctx, b.sizes(), a.parts[0].size, spare=False) for b in gpus)
    # partial loads: only coverage (and the instance's GPU count) may fail, never a layout, latency or memory rule
    assert {v.rule for v in check(ctx.instance, to_plan(ctx, gpus)).violations} <= {Rule.COVERAGE, Rule.GPUS}


def test_lone_3g_partitions_take_small_ones_before_pairing_up():
    """3g, 3g and eight 1g partitions: first fit decreasing puts the 3g pair on one GPU, where no 1g fits, and
    needs three GPUs; completing each 3g with four 1g needs two."""
    ctx = _ctx("a100-mig")
    svc = next(i for i in range(len(ctx.names)) if ctx.cap1[i, ctx.size_index(3.0)] > 0
               and ctx.cap1[i, ctx.size_index(1.0)] > 0)
    parts = [_part(ctx, 3.0, svc), _part(ctx, 3.0, svc)] + [_part(ctx, 1.0, svc) for _ in range(8)]
    gpus = place_mig(ctx, parts)
    assert sorted(g.sizes() for g in gpus) == [(3.0, 1.0, 1.0, 1.0, 1.0)] * 2


def test_cover_then_pack_on_mig_gives_valid_plans():
    ctx = _ctx("a100-mig", 40)
    demand = np.array([ctx.instance.service(n).rate for n in ctx.names])
    gpus, rem = cover_then_pack(ctx, demand)
    assert not np.any(rem > 0)
    assert check(ctx.instance, to_plan(ctx, gpus)).valid


@SETTINGS
@given(st.sampled_from(["a100-mig", "a100-mps"]), st.integers(0, 2**31 - 1), st.integers(1, 4))
def test_derived_options_equal_options_computed_afresh(device, seed, changed):
    ctx = _ctx(device)
    rng = np.random.default_rng(seed)
    cand = np.sort(rng.choice(ctx.servable, size=min(12, len(ctx.servable)), replace=False))
    rem = np.array([ctx.instance.service(n).rate for n in ctx.names]) * rng.uniform(0.0, 2.0, len(ctx.names))
    rem[rng.uniform(size=len(rem)) < 0.2] = 0.0
    left = {int(s): float(rem[s] * rng.uniform(0.0, 1.0)) for s in rng.choice(cand, size=changed, replace=False)}
    cur = rem.copy()
    for s, r in left.items():
        cur[s] = r
    for j in range(len(ctx.sizes)):
        _options(ctx, j, rem, cand)  # the parent's ranking
        got = _options_after(ctx, j, rem, cand, left, cand.tobytes(), rem[cand].tobytes())
        ctx.memo.clear()
        want = _options(ctx, j, cur, cand)
        assert [(float(a), float(b), o) for a, b, o in got] == [(float(a), float(b), o) for a, b, o in want]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["a100-mig", "a100-mps"]), st.integers(0, 50))
def test_where_lost_splits_the_excess_over_the_lp_into_two_shares_of_at_most_one(device, seed):
    """No partition serves more work at best efficiency than its size, and partitions fill at most their GPUs:
    both shares lie in (0, 1], and GPUs x capacity x fill x efficiency is the work the LP bound counts."""
    from stsched.heuristic.driver import where_lost

    ctx = build_context(random_instance(16, 8, seed, device, arrivals="deterministic"), HeuristicOptions())
    demand = np.array([ctx.instance.service(n).rate for n in ctx.names])
    gpus, _ = cover_then_pack(ctx, demand)
    text = where_lost(ctx, gpus)
    fill, eff = (float(x.split("%")[0]) / 100 for x in text.replace("partitions fill ", "").split(
        " of the GPUs, work at best efficiency "))
    assert 0 < fill <= 1 and 0 < eff <= 1 + 1e-9
    work = sum(g.load(ctx) for g in gpus)
    assert abs(len(gpus) * ctx.capacity * fill * eff - work) <= 2e-3 * len(gpus) * ctx.capacity


@SETTINGS
@given(st.sampled_from(["a100-mig", "a100-mps"]), st.integers(0, 2**31 - 1))
def test_the_joint_choice_reports_the_value_of_its_contents(device, seed):
    """`construct._dfs` returns its contents with their value, the same float that `_sequence_value` sums for
    them (the greedy no longer recomputes it)."""
    from stsched.heuristic.construct import _dfs, _sequence_value

    ctx = _ctx(device)
    rng = np.random.default_rng(seed)
    rem = np.array([ctx.instance.service(n).rate for n in ctx.names]) * rng.uniform(0.0, 2.0, len(ctx.names))
    rem[rng.uniform(size=len(rem)) < 0.2] = 0.0
    cand = ctx.servable
    for layout in ctx.layouts:
        idx = [ctx.size_index(s) for s in layout]
        cands = [_options(ctx, j, rem, cand) for j in idx]
        combo, value = _dfs(ctx, idx, cands, [max((o[0] for o in c), default=0.0) for c in cands], rem, cand)
        assert len(combo) == len(idx) and value == _sequence_value(ctx, idx, combo, rem)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["a100-mig", "a100-mps"]), st.integers(0, 50))
def test_operating_points_count_the_knee_partitions_as_saturated(device, seed):
    """Cover-then-pack's knee partitions are saturated single tenants (`driver.operating_points`); their work at
    best efficiency never exceeds their capacity, and the note names both shares."""
    from stsched.heuristic.ctp import _saturated
    from stsched.heuristic.driver import operating_points, where_lost

    ctx = build_context(random_instance(16, 8, seed, device, arrivals="deterministic"), HeuristicOptions())
    demand = np.array([ctx.instance.service(n).rate for n in ctx.names])
    knees = sum(p.size for p in _saturated(ctx, demand.copy(), ctx.knee))
    gpus, _ = cover_then_pack(ctx, demand)
    size, work = operating_points(ctx, gpus)
    total = sum(p.size for g in gpus for p in g.parts if p.tenants)
    assert knees - 1e-9 <= size <= total + 1e-9 and work <= size * (1 + 1e-9)
    assert "saturated single tenants" in where_lost(ctx, gpus)
