"""Session 20 (issue 18, decision time at 256 services): min-gpus at scale re-uses a complete pilot's construction
instead of building it again in `pack`; the plan is the one built twice before."""

from __future__ import annotations

import pytest

from stsched.heuristic import driver
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import random_instance

PILOT_BUILT = driver._pilot_built  # the real one (each run below wraps it)


def _plan(inst, monkeypatch, reuse: bool):
    calls = []
    real = PILOT_BUILT

    def spy(ctx, pilot, demand):
        got = real(ctx, pilot, demand)
        calls.append(got is not None)
        return got if reuse else None

    monkeypatch.setattr(driver, "_pilot_built", spy)
    judged = run_solver("heuristic", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=600, seed=0))
    assert judged.valid
    return judged.result.plan, calls


@pytest.mark.parametrize("n, seed", [(140, 1), (160, 2)])
def test_min_gpus_at_scale_is_the_same_with_the_pilot_reused(monkeypatch, n, seed):
    inst = random_instance(n, n, seed, "a100-mps", arrivals="deterministic")
    again, calls_again = _plan(inst, monkeypatch, reuse=False)
    reused, calls = _plan(inst, monkeypatch, reuse=True)
    assert calls == [True] and calls_again == [True]  # at scale, a complete pilot: re-used (or, first, not)
    assert reused == again


def test_pilot_not_reused_below_scale(monkeypatch):
    inst = random_instance(12, 12, 1, "a100-mps", arrivals="deterministic")
    _, calls = _plan(inst, monkeypatch, reuse=True)
    assert calls == [False]
