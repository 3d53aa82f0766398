"""The column generation's integer-aware stop (min-gpus, `CgOptions.integer_stop`, issue 17 part 1): it stops once
the Lagrangian bound rounded up equals the restricted master's value rounded up, says so (`settled`, not
`converged`), and the whole-GPU bound it reports is the one the converged LP gives, never above an optimum."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given

from tests.solvers.test_colgen_packing import assert_round_bounds_hold
from tests.solvers.test_exact_properties import SETTINGS, instances
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.colgen import column_generation
from stsched.cli import main
from stsched.io import save_instance
from stsched.registry import Objective, SolveOptions, Status, run_bound, run_solver
from stsched.scenarios import random_instance


@pytest.mark.parametrize("dataset", ["a100-mps", "a100-mig"])
def test_settled_bound_is_the_converged_one_in_fewer_rounds(dataset):
    inst = random_instance(24, 12, 1, dataset, arrivals="deterministic")
    full = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60))
    early = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60, integer_stop=True))
    assert full.converged and not full.settled
    assert early.settled and not early.converged and early.rounds < full.rounds
    assert early.integer_bound == full.integer_bound
    assert early.bound <= full.lp_value * (1 + 1e-9) <= early.lp_value * (1 + 1e-9)


def test_max_scale_never_settles():
    inst = random_instance(24, 12, 1, arrivals="deterministic")
    r = column_generation(inst, Objective.MAX_SCALE, CgOptions(time_limit_s=60, integer_stop=True))
    assert r.converged and not r.settled


@SETTINGS
@given(inst=instances())
def test_settled_bound_never_beats_brute_force(inst):
    known = run_solver("brute", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    r = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=20, integer_stop=True))
    assert_round_bounds_hold(r, known, Objective.MIN_GPUS)
    assert r.integer_bound <= known.objective


def test_bound_cli_reports_settled(tmp_path, capsys):
    """`stsched bound --objective min-gpus` stops once settled and says so in its JSON (`settled`, the method)."""
    path, inst = tmp_path / "inst.json", random_instance(24, 12, 1, arrivals="deterministic")
    save_instance(inst, path)
    assert main(["bound", str(path), "--time-limit", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settled"] is True and out["converged"] is False and "settled" in out["method"]
    assert out["bound"] == column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60)).integer_bound
    b = run_bound("cg", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=60, params=(("bp_nodes", "4"),)))
    assert not b.settled  # branch-and-price needs the converged LP: no early stop there
