"""Issue 17, the heuristic at scale (part 6): the residual blocks built by forked workers give exactly the plan
of one process (`parallel.py`), a worker's time-out and failure are handled, and cover-then-pack's whole GPUs for
MIG knee partitions that leave slices idle among themselves (`ctp._idle_groups`, option `whole_groups`)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from stsched.heuristic.ctp import _idle_groups, _saturated, cover_then_pack
from stsched.heuristic.model import TimeUp, build_context
from stsched.heuristic.options import HeuristicOptions
from stsched.heuristic.parallel import Background, map_pieces, worker_count
from stsched.heuristic.state import to_plan
from stsched.io import plan_to_dict
from stsched.errors import InputError
from stsched.scenarios import random_instance

PARENT = os.getpid()


def _square(x: int) -> int:
    return x * x


def _fails_in_a_worker(x: int) -> int:
    if os.getpid() != PARENT:
        raise RuntimeError("only in a worker")
    return -x


def _times_out_in_a_worker(x: int) -> int:
    if os.getpid() != PARENT:
        raise TimeUp
    return x


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_pieces_come_back_in_order_for_any_worker_count(workers):
    assert map_pieces(_square, list(range(7)), workers) == [x * x for x in range(7)]
    assert map_pieces(_square, [], workers) == []


def test_a_failed_worker_is_recomputed_here_and_a_time_out_is_raised():
    assert map_pieces(_fails_in_a_worker, [1, 2, 3, 4], 2) == [-1, -2, -3, -4]
    with pytest.raises(TimeUp):
        map_pieces(_times_out_in_a_worker, [1, 2], 2)


@pytest.mark.parametrize("enabled", [True, False])
def test_a_background_result_is_the_function_s_and_a_failed_worker_is_recomputed(enabled):
    job = Background(_square, 12, enabled=enabled)
    assert job.result() == 144 and job.result() == 144
    job.close()
    failing = Background(_fails_in_a_worker, 5, enabled=enabled)
    assert failing.result() == -5
    failing.close()


def test_worker_count_and_its_option():
    assert worker_count(1) == 1 and worker_count(3) == 3
    assert 1 <= worker_count(0) <= 2
    with pytest.raises(InputError):
        HeuristicOptions(workers=-1)


def test_residual_blocks_built_by_workers_give_the_same_plan():
    inst = random_instance(160, 80, 4, "a100-mig", arrivals="deterministic")
    rates = [s.rate for s in inst.services]
    demand = np.array(rates)
    plans = []
    for workers in (1, 2):
        ctx = build_context(inst, HeuristicOptions(residual_block=32, workers=workers), rates)
        gpus, rem = cover_then_pack(ctx, demand)
        assert not np.any(rem > 0)
        plans.append(plan_to_dict(to_plan(ctx, gpus, 1.0)))
    assert plans[0] == plans[1]


def test_idle_groups_of_an_a100():
    mig = build_context(random_instance(8, 4, 1, "a100-mig", arrivals="deterministic"), HeuristicOptions())
    assert {mig.sizes[j]: m for j, m in _idle_groups(mig).items()} == {2.0: 3, 3.0: 2}  # 2+2+2 and 3+3 leave one
    mps = build_context(random_instance(8, 4, 1, "a100-mps", arrivals="deterministic"), HeuristicOptions())
    assert _idle_groups(mps) == {}


def test_whole_gpus_replace_knee_partitions_that_leave_slices_idle():
    inst = random_instance(160, 80, 5, "a100-mig", arrivals="deterministic")
    ctx = build_context(inst, HeuristicOptions(), [s.rate for s in inst.services])
    rates = np.array([s.rate for s in inst.services])
    groups = _idle_groups(ctx)
    rem_on, rem_off = rates.copy(), rates.copy()
    on = _saturated(ctx, rem_on, ctx.knee, whole_groups=True)
    off = _saturated(ctx, rem_off, ctx.knee, whole_groups=False)
    whole, applied = ctx.sizes[-1], 0
    for i in range(len(rates)):
        j = ctx.size_index(ctx.knee[i])
        cap, cw = ctx.cap1[i, j], ctx.cap1[i, -1]
        mine_on = sorted(p.size for p in on if p.tenants[0][0] == i)
        mine_off = sorted(p.size for p in off if p.tenants[0][0] == i)
        m = groups.get(j, 0)
        if m and cap > 0 and int(rates[i] / cap * (1 + 1e-12)) >= m and cw >= m * cap:
            applied += 1
            nw = int(rates[i] / cw * (1 + 1e-12))
            assert mine_on.count(whole) == nw >= 1
            assert mine_on.count(ctx.knee[i]) == int((rates[i] - nw * cw) / cap * (1 + 1e-12))
            assert rem_on[i] == pytest.approx(rates[i] - nw * cw - mine_on.count(ctx.knee[i]) * cap, abs=1e-6)
        else:
            assert mine_on == mine_off and rem_on[i] == rem_off[i]
        served = sum(p.tenants[0][1] for p in on if p.tenants[0][0] == i)
        assert served + rem_on[i] == pytest.approx(rates[i], rel=1e-9)
    assert applied > 0  # the instance has such services (else the test would show nothing)
