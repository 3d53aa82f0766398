"""Column generation (solver `cg`, `stsched bound`): its bound is never above an optimum (below for max-scale),
its plans pass the checker, a work or time limit still returns a valid bound that says it did not converge, and an
infeasible instance names its services."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.solvers.test_exact_properties import SETTINGS, instances
from solvers.exact.cg_pricing import CgOptions, Pricer, _size_data
from solvers.exact.colgen import column_generation
from solvers.exact.patterns import _Timer, enumerate_configs, enumerate_layouts
from stsched.cli import main
from stsched.io import save_instance
from stsched.registry import Objective, SolveOptions, Status, run_bound, run_solver
from stsched.scenarios import random_instance


def _opts(objective, limit=20.0, **params):
    return SolveOptions(objective=objective, time_limit_s=limit, params=tuple((k, str(v)) for k, v in params.items()))


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_bound_never_beats_brute_force_and_plans_are_valid(inst, objective):
    known = run_solver("brute", inst, _opts(objective, 10)).result
    assume(known.status is Status.OPTIMAL)
    b = run_bound("cg", inst, _opts(objective))
    got = run_solver("cg", inst, _opts(objective))
    if objective is Objective.MIN_GPUS:
        assert b.bound <= known.objective
    else:
        assert b.bound >= known.objective * (1 - 1e-6)
    r = got.result
    assert r.plan is not None and got.valid, r.message
    if objective is Objective.MIN_GPUS:
        assert r.bound <= r.objective and r.objective >= known.objective
    else:
        assert r.bound >= r.objective * (1 - 1e-6) and r.objective <= known.objective * (1 + 1e-6)


def pricing_world(inst):
    """The pricing's operating points of `inst` per size (`data`), its `rates` and every configuration of up to 8
    tenants, listed by enumeration (the references of the pricing tests)."""
    import numpy as np

    layouts = enumerate_layouts(inst, maximal=True, limit=10 ** 6)
    timer = _Timer(inst, False, layouts)
    rates = np.array([s.rate for s in inst.services])
    levels, _ = enumerate_configs(inst, timer, 8, list(rates), False, False, 10 ** 6)
    return _size_data(inst, timer), rates, [c for level in levels for c in level]


def test_pricing_upper_bound_covers_every_configuration():
    """The oracle's bound is at least the value of every enumerated configuration, for random duals."""
    import numpy as np

    inst = random_instance(8, 4, 3, arrivals="deterministic")
    data, rates, configs = pricing_world(inst)
    rng = np.random.default_rng(1)
    for _ in range(3):
        pi = rng.uniform(0, 1, len(rates)) * (rng.uniform(size=len(rates)) < 0.8)
        pricer = Pricer(inst, data, rates, 1.0, CgOptions())
        for p, sd in data.items():
            best = max((sum(pi[s] * min(cap, rates[s]) / rates[s] for (s, _), cap in zip(c.tenants, c.cap))
                        for c in configs if c.size == p), default=0.0)
            ub, cols = pricer.upper(sd, pi, 0.0)
            assert ub >= best * (1 - 1e-9)
            for value, c in cols:  # the columns it returns are worth what it says
                assert value <= ub * (1 + 1e-9)


def test_work_limit_gives_valid_unconverged_bound():
    inst = random_instance(16, 8, 7, arrivals="deterministic")
    full = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60))
    short = column_generation(inst, Objective.MIN_GPUS, CgOptions(max_rounds=1, bound_every=1))
    assert full.converged and not short.converged
    assert short.bound <= full.lp_value * (1 + 1e-9) and full.bound <= full.lp_value * (1 + 1e-9)
    assert short.columns < full.columns
    plan = run_solver("heuristic", inst, SolveOptions(time_limit_s=10)).result
    assert short.integer_bound <= plan.objective


def test_time_limit_cli_json(tmp_path, capsys):
    path = tmp_path / "inst.json"
    save_instance(random_instance(16, 8, 7, arrivals="deterministic"), path)
    assert main(["bound", str(path), "--time-limit", "0.01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"bound", "lp_value", "converged", "columns", "pricing_calls", "wall_s", "method"}
    assert out["converged"] is False and out["bound"] >= 1 and "not converged" in out["method"]
    # (which bound it is, said: the set-up's, tests/solvers/test_cg_setup_clock.py, or the generation's Lagrangian)
    assert any(w in out["method"] for w in ("efficiency LP", "layout LP", "Lagrangian"))


def test_solve_reports_bound_method(tmp_path, capsys):
    path = tmp_path / "inst.json"
    save_instance(random_instance(8, 4, 5, arrivals="deterministic"), path)
    assert main(["solve", str(path), "--solver", "heuristic", "--json"]) == 0
    own = json.loads(capsys.readouterr().out)
    assert own["bound_method"] == "lp-efficiency"
    assert main(["solve", str(path), "--solver", "heuristic", "--bound", "cg", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert own["bound"] <= out["bound"] <= out["objective"]
    assert out["bound_method"].startswith("cg:") if out["bound"] > own["bound"] else "not tighter" in out["message"]


def test_infeasible_instance_exit_1_names_services(tmp_path, capsys):
    inst = random_instance(6, 3, 2, arrivals="deterministic")
    bad = inst.services[1]
    fastest = min(e.latency_ms for e in inst.table(bad.model).entries)
    inst = replace(inst, services=tuple(replace(s, slo_ms=fastest * 1.5) if s.name == bad.name else s
                                        for s in inst.services))
    path = tmp_path / "inst.json"
    save_instance(inst, path)
    assert main(["bound", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    assert bad.name in captured.err and json.loads(captured.out)["infeasible_services"] == [bad.name]
    assert main(["solve", str(path), "--solver", "cg", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "infeasible" and out["infeasible_services"] == [bad.name]


def test_bad_time_limit_is_bad_input(tmp_path, capsys):
    path = tmp_path / "inst.json"
    save_instance(random_instance(4, 2, 1, arrivals="deterministic"), path)
    assert main(["bound", str(path), "--time-limit", "0"]) == 2
    assert "--time-limit" in capsys.readouterr().err


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_cg_gap_is_certified(objective):
    inst = random_instance(8, 4, 7, arrivals="deterministic")
    j = run_solver("cg", inst, _opts(objective, 10))
    assert j.valid and j.result.bound_method.startswith("cg:")
    layout = run_bound("cg", inst, _opts(objective, 10))
    assert j.result.bound == layout.bound
