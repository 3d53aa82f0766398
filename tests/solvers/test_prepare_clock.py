"""The exact solvers' model preparation polls the clock (issue 17, session 17): milp and cpsat ran 12.7 s of a 10 s
limit in it before (docs/RESULTS.md, "Limits and faults").  Tested by its mechanism, not by timing: a deadline
already passed stops the enumeration at its first poll, with a work counter (execution times looked up)."""

from __future__ import annotations

import pytest

from solvers.exact import patterns
from solvers.exact.driver import prepare
from solvers.exact.patterns import OutOfTime
from stsched.registry import Objective, SolveOptions, Status, run_solver
from stsched.scenarios import random_instance


@pytest.fixture
def lookups(monkeypatch) -> list[int]:
    """How many execution times the preparation looked up (its work)."""
    count = [0]
    exec_ms = patterns._Timer.exec_ms

    def counted(self, *args):
        count[0] += 1
        return exec_ms(self, *args)

    monkeypatch.setattr(patterns._Timer, "exec_ms", counted)
    return count


def _instance():
    return random_instance(24, 12, 3, arrivals="deterministic")


def test_prepare_stops_at_its_first_poll_once_the_deadline_has_passed(lookups):
    inst = _instance()
    full = prepare(inst, SolveOptions(objective=Objective.MIN_GPUS))
    assert lookups[0] > 100 and full.configs
    lookups[0] = 0
    with pytest.raises(OutOfTime):
        prepare(inst, SolveOptions(objective=Objective.MIN_GPUS), deadline=0.0)
    assert lookups[0] == 0


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_a_limit_spent_before_the_model_is_prepared_returns_unknown_without_the_rest(solver, lookups):
    inst = _instance()
    r = run_solver(solver, inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=1e-6)).result
    assert r.status is Status.UNKNOWN and r.plan is None
    assert "while preparing the model" in r.message
    assert lookups[0] < patterns.POLL_EVERY  # stopped at the first poll, not after the enumeration
