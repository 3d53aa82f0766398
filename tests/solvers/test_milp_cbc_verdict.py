"""CBC's verdict (solvers.exact.milp._solve): a proven optimum is read from CBC's solution file as well as from its
log, so a log that lost its 'Result -' line no longer turns a proven optimum into `feasible` (issue 17, session 17:
the one flaky failure of test_random_tiny_instances_agree_with_brute_force was a CBC optimum reported feasible)."""

from __future__ import annotations

import pulp

from stsched.bounds import lp_relaxation
from stsched.registry import Objective, SolveOptions, Status, run_solver
from tests.conftest import make_mps_instance


class _LostLog(pulp.PULP_CBC_CMD):
    """CBC as it is, its log emptied once it has ended (as a lost or cut log would read)."""

    def actualSolve(self, lp, **kw):
        status = super().actualSolve(lp, **kw)
        open(self.optionsDict["logPath"], "w").close()
        return status


# max-scale, where only CBC's proof closes the gap (the layout LP bound is 1.2 % above the optimum)
INSTANCE = make_mps_instance(rates=(900.0, 700.0), slos=(50.0, 80.0), gpus=4)
OPTIONS = SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=20, engine="cbc", params=(("ladder", "0"),))


def test_a_proven_optimum_stays_optimal_when_cbcs_log_has_no_verdict(monkeypatch):
    inst, opts = INSTANCE, OPTIONS
    plain = run_solver("milp", inst, opts).result
    assert plain.status is Status.OPTIMAL, plain.message
    assert lp_relaxation(inst, Objective.MAX_SCALE).value > 1.01 * plain.objective  # (the LP cannot prove it)
    monkeypatch.setattr(pulp, "PULP_CBC_CMD", _LostLog)
    lost = run_solver("milp", inst, opts).result
    assert lost.status is Status.OPTIMAL, lost.message
    assert lost.objective == plain.objective


class _CutOnTime(pulp.PULP_CBC_CMD):
    """CBC stopped by a time limit at once (as a stalled machine would stop it)."""

    def actualSolve(self, lp, **kw):
        self.timeLimit = 1e-4
        return super().actualSolve(lp, **kw)


def test_a_cbc_stopped_on_time_is_not_called_optimal_by_its_solution_file(monkeypatch):
    monkeypatch.setattr(pulp, "PULP_CBC_CMD", _CutOnTime)
    r = run_solver("milp", INSTANCE, OPTIONS).result
    assert r.bound - r.objective > 1e-3 * r.objective  # (cut at once: the greedy start against the LP bound)
    assert r.status is Status.FEASIBLE, r.message
