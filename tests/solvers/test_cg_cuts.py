"""Rounding cuts in the configuration LP (solvers/exact/cg_cuts.py): valid for every whole plan, priced exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from solvers.exact.cg import _plan_configs
from solvers.exact.cg_cuts import CutOptions, CutPool, make_cut
from solvers.exact.cg_pricing import CgOptions, Pricer
from solvers.exact.colgen import column_generation
from solvers.exact.patterns import coverage
from stsched.cli import main
from stsched.io import save_instance
from stsched.registry import Objective, SolveOptions, Status, run_bound, run_solver
from stsched.scenarios import random_instance
from tests.solvers.test_colgen import pricing_world
from tests.solvers.test_exact_properties import SETTINGS, instances

# cuts forced often: every violated cut, at least 0.1 % of its right-hand side
FORCED = (("cuts", "3"), ("cut_violation", "0.001"))


def _opts(objective, limit=20.0, params=FORCED):
    return SolveOptions(objective=objective, time_limit_s=limit, params=params)


@SETTINGS
@given(inst=instances())
def test_bound_with_cuts_never_beats_brute_force_and_every_cut_holds_for_its_plan(inst):
    known = run_solver("brute", inst, _opts(Objective.MIN_GPUS, 10, ())).result
    assume(known.status is Status.OPTIMAL)
    for early in (False, True):  # (cuts at convergence, or as soon as the rounded bound meets the master's)
        r = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=20),
                              cuts=CutOptions(rounds=3, min_violation=0.001, early=early))
        assert r.bound <= known.objective * (1 + 1e-9)
    assert run_bound("cg", inst, _opts(Objective.MIN_GPUS)).bound <= known.objective
    got = run_solver("cg", inst, _opts(Objective.MIN_GPUS))
    assert got.valid and got.result.bound <= got.result.objective
    # the pool of cuts of that generation, rebuilt: each holds for the optimal plan's partitions
    rates = [s.rate for s in inst.services]
    covs = [coverage(c, rates, 1.0) for c in _plan_configs(inst, known.plan)]
    pool = CutPool(len(rates), CutOptions(rounds=1, min_violation=0.001))
    for s in range(len(rates)):
        for t in (1.3, 1.7, 2.2, 3.1):
            pool.add([make_cut(s, t)])
    for cut in pool.cuts:
        assert sum(cut.coef(cv.get(cut.service, 0.0)) for cv in covs) >= 1 - 1e-12


def test_pricing_bound_with_cuts_covers_every_configuration():
    """With cut duals the oracle's bound is at least every enumerated configuration's value (coverage and cut terms),
    for random duals and random cuts."""
    inst = random_instance(8, 4, 3, arrivals="deterministic")
    data, rates, configs = pricing_world(inst)
    rng = np.random.default_rng(2)
    for _ in range(3):
        pool = CutPool(len(rates), CutOptions(rounds=1))
        pool.add([make_cut(int(s), float(t)) for s, t in zip(rng.integers(0, len(rates), 12),
                                                             rng.uniform(1.05, 3.5, 12))])
        duals = np.r_[rng.uniform(0, 1, len(rates)) * (rng.uniform(size=len(rates)) < 0.7),
                      rng.uniform(0, 0.5, len(pool))]
        pricer = Pricer(inst, data, rates, 1.0, CgOptions())
        pricer.cuts = pool
        for p, sd in data.items():
            vals = [pricer.value(c, duals) for c in configs if c.size == p]
            for c in configs[:50]:  # the pricer's value is the coverage terms plus the cuts' terms
                cov = coverage(c, rates, 1.0)
                want = sum(duals[s] * a for s, a in cov.items()) + sum(
                    duals[len(rates) + j] * math.ceil(cut.t * cov[cut.service] + 1e-9) / cut.rhs
                    for j, cut in enumerate(pool.cuts) if cov.get(cut.service, 0) > 0)
                assert pricer.value(c, duals) == pytest.approx(want, rel=1e-12, abs=1e-12)
            ub, cols = pricer.upper(sd, duals, 0.0)
            assert ub >= max(vals, default=0.0) * (1 - 1e-9)
            for value, c in cols:
                assert value == pytest.approx(pricer.value(c, duals)) and value <= ub * (1 + 1e-9)


@given(cuts=st.lists(st.tuples(st.integers(0, 4), st.floats(1.01, 4.0)), min_size=1, max_size=10),
       points=st.lists(st.tuples(st.integers(0, 4), st.floats(0.0, 1.0)), min_size=1, max_size=20),
       seed=st.integers(0, 10))
def test_bonus_equals_the_sum_of_the_cut_terms(cuts, points, seed):
    pool = CutPool(5, CutOptions(rounds=1))
    pool.add([make_cut(s, t) for s, t in cuts])
    duals = np.r_[np.zeros(5), np.random.default_rng(seed).uniform(0, 1, len(pool))]
    svc = np.array([s for s, _ in points])
    a = np.array([v for _, v in points])
    want = [sum(duals[5 + j] * cut.coef(v) for j, cut in enumerate(pool.cuts) if cut.service == s) for s, v in points]
    assert np.allclose(pool.bonus(svc, a, duals), want)


def test_separation_finds_the_fractional_partition():
    """A service covered by 1.263 copies of a partition covering 79.2 % of its rate needs two partitions (or one
    covering more): the cut t = 1 / 0.792 (right-hand side 2) is violated; a service covered by one whole partition
    gets none."""
    pool = CutPool(2, CutOptions(rounds=1))
    new = pool.separate([{0: 0.792}, {1: 1.0}], np.array([1.263, 1.0]))
    assert [c.service for c in new] == [0] and new[0].rhs == 2
    assert new[0].coef(0.792) == 0.5 and new[0].coef(0.8) == 1.0
    again = pool.separate([{0: 0.792}, {1: 1.0}], np.array([1.263, 1.0]))  # the next most violated: t = 2 / 0.792
    assert [(c.service, c.rhs) for c in again] == [(0, 3.0)] and again[0].t != new[0].t


def test_cuts_raise_the_lp_and_stay_below_the_plan():
    inst = random_instance(16, 8, 7, arrivals="deterministic")
    plain = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60))
    cut = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60), cuts=CutOptions(rounds=2))
    assert plain.converged and plain.cuts == 0 and cut.cuts > 0
    assert cut.lp_value >= plain.lp_value - 1e-6 and cut.bound >= plain.bound - 1e-6
    plan = run_solver("heuristic", inst, SolveOptions(time_limit_s=10)).result
    assert cut.integer_bound <= plan.objective


@pytest.mark.parametrize("params", [("cuts", "-1"), ("cut_violation", "2"), ("cut_per_round", "-3"),
                                    ("cuts", "x"), ("cut_early", "maybe")])
def test_bad_cut_options_exit_2(tmp_path, capsys, params):
    path = tmp_path / "i.json"
    save_instance(random_instance(4, 2, 1, arrivals="deterministic"), path)
    code = main(["bound", str(path), "--objective", "min-gpus", "--param", f"{params[0]}={params[1]}"])
    err = capsys.readouterr().err
    assert code == 2 and params[0] in err and "Traceback" not in err


def test_cuts_for_max_scale_exit_2(tmp_path, capsys):
    path = tmp_path / "i.json"
    save_instance(random_instance(4, 2, 1, arrivals="deterministic"), path)
    code = main(["bound", str(path), "--objective", "max-scale", "--param", "cuts=1", "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "cuts" in err and "Traceback" not in err


def test_bound_json_names_the_cuts(tmp_path, capsys):
    path = tmp_path / "i.json"
    save_instance(random_instance(16, 8, 7, arrivals="deterministic"), path)
    assert main(["bound", str(path), "--objective", "min-gpus", "--param", "cuts=2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "rounding cuts" in out["method"] and out["bound"] >= 1


def test_every_key_the_bound_reads_is_accepted_by_stsched_bound(monkeypatch):
    """`stsched bound` refuses the `--param` keys outside CgSolver.bound_params; every key the bound's option builders
    read (CgSolverOptions.column_generation_options, cut_options) must be among them (cuts and workers were refused
    after a merge)."""
    from dataclasses import fields

    from solvers.exact.cg import CgSolver, CgSolverOptions

    typed = CgSolverOptions()
    keys = {f.name for f in fields(CgSolverOptions)}
    read: set[str] = set()
    real = CgSolverOptions.__getattribute__

    def spy(self, name):
        if name in keys:
            read.add(name)
        return real(self, name)

    monkeypatch.setattr(CgSolverOptions, "__getattribute__", spy)
    typed.column_generation_options(5.0)
    typed.cut_options()
    assert {"max_rounds", "cuts"} <= read <= set(CgSolver.bound_params)


@pytest.mark.parametrize("value, early", [("0", False), ("00", False), (" 0", False), ("1", True), ("2", True)])
def test_cut_early_is_read_as_its_check_reads_it(value, early):
    """cut_options compared the raw text with "0" where CgSolverOptions parsed it as a number: `cut_early=00` passed
    the check as 0 (off) and turned early separation on (as `dive`, `reprice` and `lns_singles`: every key is now read
    from the parsed options, session 20)."""
    from solvers.exact.cg import cut_options

    opts = SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=5, params=(("cuts", "1"), ("cut_early", value)))
    assert cut_options(opts).early is early


@pytest.mark.parametrize("params", [("cut_early", "1"), ("cut_per_round", "4"), ("cut_violation", "0.2")])
def test_cut_settings_without_cuts_exit_2(tmp_path, capsys, params):
    """The cuts' settings without cuts=K were accepted and ignored (session 14's review)."""
    path = tmp_path / "i.json"
    save_instance(random_instance(4, 2, 1, arrivals="deterministic"), path)
    code = main(["bound", str(path), "--objective", "min-gpus", "--param", "=".join(params)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and params[0] in err[0] and "without cuts=K" in err[0]
