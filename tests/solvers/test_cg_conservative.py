"""Solver cg under neighbour-dependent interference: the plans' columns come from a second column generation timed
with the worst neighbour (solvers.exact.cg.conservative_timer).  A service none of whose points holds there (its SLO
fails next to the worst neighbour) made that call raise Infeasible outside any handler: "solver 'cg' failed:
Infeasible: ..." (a fault of the solver).  Now it is reported: no plan (exit 1, naming the service) without a warm
plan, else a plan from the warm plan's partitions with a note."""

from __future__ import annotations

from solvers.exact import cg
from solvers.exact.colgen import Infeasible
from stsched.cli import main
from stsched.io import save_instance
from stsched.registry import Objective, SolveOptions, Status, run_solver
from tests.conftest import make_mps_instance


def _no_conservative_columns(monkeypatch) -> None:
    """As if s0 had no point that holds next to the worst neighbour (the solo columns unchanged)."""
    real = cg.column_generation

    def column_generation(instance, objective, opts, cuts=None, timer=None):
        if timer is not None:
            raise Infeasible({"s0": "no profiled point meets its SLO (as timed here) within the memory of one "
                                    "partition or GPU"})
        return real(instance, objective, opts, cuts=cuts)

    monkeypatch.setattr(cg, "neighbour_interference", lambda instance: True)
    monkeypatch.setattr(cg, "conservative_timer", lambda instance: object())
    monkeypatch.setattr(cg, "column_generation", column_generation)


def test_no_conservative_columns_without_a_warm_plan_is_no_plan(monkeypatch, tmp_path, capsys):
    _no_conservative_columns(monkeypatch)
    path = tmp_path / "i.json"
    save_instance(make_mps_instance(), path)
    code = main(["solve", str(path), "--solver", "cg", "--time-limit", "10", "--param", "warm=none"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1 and "failed" not in text and "Traceback" not in text, text
    assert "s0" in text and "worst neighbour" in text, text


def test_no_conservative_columns_plans_from_the_warm_plan(monkeypatch):
    _no_conservative_columns(monkeypatch)
    j = run_solver("cg", make_mps_instance(), SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=10))
    assert j.status in (Status.OPTIMAL, Status.FEASIBLE) and j.valid, j.result.message
    assert "warm plan's partitions only" in j.result.message
