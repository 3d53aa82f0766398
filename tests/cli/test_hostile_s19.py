"""Session 19: a hostile user of the session's changes (the exact solvers' tolerance in min-gpus, `stsched bound`'s
checked provider, the adaptive policy's compact_off default and rent_at_epochs).  Each test is one finding; the
docstring says what happened before the fix.  Small instances (`_edge` of tests/core/test_bound_rounding_edge.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from stsched import bounds, cli
from stsched.checker import check
from stsched.io import save_instance, save_plan
from tests.core.test_bound_rounding_edge import _edge


def _edge_file(tmp_path, excess: float):
    """`_edge(2, excess)` with `gpus: 2` written to a file, and its valid 2-GPU plan."""
    inst, plan = _edge(2, excess)
    inst = replace(inst, gpus=2)
    path = tmp_path / "edge.json"
    save_instance(inst, path)
    return inst, plan, path


@pytest.mark.parametrize("excess", [5e-7, 9e-7])
@pytest.mark.parametrize("solver", ["milp", "milp-highs", "cpsat"])
def test_a_need_on_the_edge_with_as_many_gpus_as_its_valid_plan_is_solved(excess, solver, tmp_path, capsys):
    """`_edge(2, 5e-7)` with `gpus: 2`: the checker accepts its 2-GPU plan, yet every solver (milp, milp-highs,
    cpsat, brute, heuristic) and `stsched bound` answered infeasible, exit 1, "s0: rate 1600 req/s exceeds 1600
    req/s, all 2 GPUs serving it alone": the feasibility screen (`bounds._infeasible`) compared the rate with the
    GPUs' exact reach times 1 + 1e-9, not by the checker's tolerance as the bounds round (`whole_gpus`).  With the
    screen mended, at 9e-7 the exact solvers still said infeasible ("the layout LP bound needs 2 GPUs ..., the
    instance has 2": `solve_exact` compared the fractional LP with gpus + 1e-6); now optimal on 2 GPUs."""
    inst, plan, path = _edge_file(tmp_path, excess)
    assert check(inst, plan).valid
    assert bounds.infeasible_services(inst) == {}
    out = tmp_path / "plan.json"
    code = cli.main(["-q", "solve", str(path), "--solver", solver, "--time-limit", "5", "--json", "--out", str(out)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["status"] == "optimal" and result["gpus"] == 2 and result["bound"] <= 2
    assert cli.main(["-q", "check", str(path), str(out)]) == 0


@pytest.mark.parametrize("command", [["solve", "--solver", "heuristic"], ["bound"]])
def test_the_heuristic_and_bound_do_not_call_a_need_on_the_edge_infeasible(command, tmp_path, capsys):
    """(the same finding) the heuristic's own screen (`heuristic.solver._unservable`) had a copy of the rule: it
    now asks `bounds.beyond_gpus` over `bounds.gpu_reach` and leaves the verdict to `bounds.unservable`, and says what it found (3 GPUs, more than the instance's 2: unknown,
    exit 1), not infeasible; `stsched bound` answers 2 GPUs."""
    _, _, path = _edge_file(tmp_path, 9e-7)
    code = cli.main(["-q", command[0], str(path), *command[1:], "--time-limit", "5", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result.get("status") != "infeasible" and not result.get("infeasible_services")
    if command[0] == "bound":
        assert code == 0 and result["bound"] == 2
    else:
        assert code == 1 and result["status"] == "unknown"


@pytest.mark.parametrize("excess", [5e-6, 1e-3])
def test_a_need_past_the_edge_is_still_infeasible_naming_the_service(excess):
    """(the fix's other side) a need the checker's tolerance does not cover on the instance's GPUs stays
    infeasible, naming the service."""
    inst, plan = _edge(2, excess)
    inst = replace(inst, gpus=2)
    assert not check(inst, plan).valid
    assert list(bounds.infeasible_services(inst)) == ["s0"]


@pytest.mark.parametrize("share", [0.0, 9e-7])
def test_the_heuristic_serves_a_model_whose_memory_is_on_the_limit(share, tmp_path, capsys):
    """A service whose weights need the GPU's memory times (1 + 9e-7) (a100-mps, 40960 MB): the checker's memory
    rule accepts it (its tolerance) and milp and cpsat returned valid 4-GPU plans, but the heuristic answered
    infeasible, exit 1, "no profiled point meets its SLO within the memory of one partition or GPU": its points and
    packing compared memory with the exact limit (or 1 + 1e-9), not by the checker's rule (`tolerant_limit`)."""
    from tests.conftest import make_mps_instance

    inst = make_mps_instance(rates=(100.0, 50.0), slos=(50.0, 50.0), gpus=3, memory=(1000.0, 1000.0))
    limit = inst.device.memory_mb * inst.device.memory_cap
    inst = replace(inst, services=(replace(inst.services[0], memory_mb=limit * (1 + share)), *inst.services[1:]))
    path, out = tmp_path / "mem.json", tmp_path / "plan.json"
    save_instance(inst, path)
    code = cli.main(["-q", "solve", str(path), "--solver", "heuristic", "--time-limit", "5", "--out", str(out)])
    capsys.readouterr()
    assert code == 0 and cli.main(["-q", "check", str(path), str(out)]) == 0


@pytest.mark.parametrize("solver", ["milp", "milp-highs"])
def test_adapt_milp_keeps_a_plan_in_force_on_the_edge(solver, tmp_path, capsys):
    """`stsched solve edge.json --objective adapt --current plan.json --solver milp`, the plan in force valid on 2
    GPUs 9e-7 above its capacities: "infeasible: no plan on 2 GPUs serves the new rates" (exit 1; the heuristic
    kept it, 0 changes): adapt-milp's coverage rows were exact.  Now an infeasible exact model is solved again with
    the rows the checker's tolerance credits (`ModelData.row_coverage`, `row_need`); its plan is judged by the
    checker: 0 reconfigurations, optimal."""
    _, plan, path = _edge_file(tmp_path, 9e-7)
    current, out = tmp_path / "current.json", tmp_path / "plan.json"
    save_plan(plan, current)
    code = cli.main(["-q", "solve", str(path), "--objective", "adapt", "--current", str(current), "--solver", solver,
                     "--time-limit", "5", "--json", "--out", str(out)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["status"] == "optimal" and result["objective"] == 0
    assert cli.main(["-q", "check", str(path), str(out)]) == 0


def test_rent_at_epochs_without_a_compaction_rent_is_refused(tmp_path):
    """`python -m experiments.adapt_frontier --policies 'adaptive[compact_rent=none,rent_at_epochs=1]'` ran its grid
    (exit 0) with a knob that changed nothing: without compact_rent there is no rent to count at epoch decisions
    (the release band decides).  Now refused by AdaptOptions, one line, exit 2, before any point runs."""
    import subprocess
    import sys

    from stsched.errors import InputError
    from stsched.planning.adapt.controller import AdaptOptions

    with pytest.raises(InputError, match="rent_at_epochs is read with compact_rent only"):
        AdaptOptions(compact_rent=None, rent_at_epochs=True)
    r = subprocess.run([sys.executable, "-m", "experiments.adapt_frontier", "--offsets", "4", "--hours", "0.25",
                        "--out", str(tmp_path), "--policies", "adaptive[compact_rent=none,rent_at_epochs=1]"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "compact_rent only" in r.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("spec", ["adaptive[rent_at_epochs=1", "adaptive[rent_at_epochs=1]]",
                                  "adaptive[compact_off=0]x"])
def test_a_policy_point_with_unbalanced_brackets_is_refused(spec):
    """`--policies 'adaptive[rent_at_epochs=1'` (and `...]]`) ran the grid under that name: `parse_policy` took
    what followed the first '[' and stripped every trailing ']'; `'adaptive[compact_off=0]x'` read 'compact_off'
    as '0]x', refused as not a bool, but naming the wrong fault.  Now one line naming the point."""
    from experiments.adapt_frontier import parse_policy

    with pytest.raises(SystemExit, match="one pair of brackets"):
        parse_policy(spec)


def test_the_max_scale_bound_stays_above_a_valid_plan_when_alpha_is_tiny():
    """(the hostile user's report (a), mended) one rate of 1e30 req/s: the configuration LP's master read alpha
    2.8e-26 as 0 and `stsched bound --objective max-scale` certified -0.0, "converged", below the heuristic's valid
    plan at 2.78e-26.  Below TINY_SCALE the efficiency LP bound stands, unconverged, and says why."""
    from stsched.registry import Objective, SolveOptions, run_bound, run_solver
    from tests.conftest import make_mps_instance

    inst = make_mps_instance(rates=(1e30, 50.0), slos=(50.0, 50.0), gpus=2, memory=(1000.0, 1000.0))
    plan = run_solver("heuristic", inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=5)).result
    assert plan.plan is not None and check(inst, plan.plan).valid and plan.objective > 0
    b = run_bound("cg", inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=10))
    assert b.bound >= plan.objective and not b.converged and "under the LP engine's tolerances" in b.method


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_the_exact_solvers_do_not_call_a_tiny_alpha_infeasible(solver):
    """(finding A of session 19's last pass) the same instance: milp and cpsat said `infeasible` (HiGHS dropped the
    layout LP's coefficients of about 1e-27, the LP said alpha 0, every coverage was clipped to 0), while the
    heuristic's plan at alpha 2.78e-26 is valid.  Below TINY_SCALE no model is built: unknown with the efficiency
    LP bound, or feasible with a valid warm start, never a bound below it."""
    from stsched.registry import Objective, SolveOptions, run_solver
    from tests.conftest import make_mps_instance

    inst = make_mps_instance(rates=(1e30, 50.0), slos=(50.0, 50.0), gpus=2, memory=(1000.0, 1000.0))
    heur = run_solver("heuristic", inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=5)).result
    assert heur.plan is not None and check(inst, heur.plan).valid and 0 < heur.objective < bounds.TINY_SCALE
    res = run_solver(solver, inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=5)).result
    assert res.status.value == "unknown" and res.bound >= heur.objective and "TINY_SCALE" in res.message
    warm = run_solver(solver, inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=5,
                                                 warm_start=heur.plan)).result
    assert warm.status.value == "feasible" and warm.objective == heur.objective and warm.bound >= warm.objective
    assert bounds.lp_relaxation(inst, Objective.MAX_SCALE).value >= heur.objective  # (`api.bound(layout-lp)`)


@pytest.mark.parametrize("solver", ["milp", "milp-highs", "cpsat", "cg"])
def test_just_above_tiny_scale_every_bound_stays_above_the_valid_plan(solver):
    """Just above TINY_SCALE (the 1e30 rate scaled so that alpha is about 1e-5) the models are solved: every
    engine's bound (and the layout LP's) is at least the heuristic's valid plan's alpha, and no exact solver
    calls the instance infeasible (the measurement behind TINY_SCALE's margin)."""
    from stsched.registry import Objective, SolveOptions, run_bound, run_solver
    from tests.conftest import make_mps_instance

    inst = make_mps_instance(rates=(1.5e8, 50.0), slos=(50.0, 50.0), gpus=2, memory=(1000.0, 1000.0))
    opts = SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=5)
    heur = run_solver("heuristic", inst, opts).result
    assert heur.plan is not None and check(inst, heur.plan).valid and 5e-6 < heur.objective < 5e-5
    assert bounds.lp_bound_scale(inst) > bounds.TINY_SCALE
    assert bounds.lp_relaxation(inst, Objective.MAX_SCALE).value >= heur.objective
    if solver == "cg":
        b = run_bound("cg", inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=10))
        assert b.bound >= heur.objective
        return
    res = run_solver(solver, inst, opts).result
    assert res.status.value in ("optimal", "feasible", "unknown"), res.message
    assert res.bound is None or res.bound >= heur.objective


@pytest.mark.parametrize("solver", ["milp", "milp-highs", "cpsat", "brute"])
def test_the_band_above_an_edge_where_solvers_answer_unknown_holds_no_false_claim(solver):
    """(item 6(b) of docs/RESULTS.md, session 19) `_edge(2, 1.5e-6)` with `gpus: 2`: the checker accepts the 2-GPU
    plan, but between about (1 + 1e-6) and (1 + 2e-6) above an edge the solvers answer unknown (the models at exact
    capacities need 3 GPUs; the relaxed rows' incumbents are rejected).  Pinned: unknown or feasible, a bound of at
    most 2, never infeasible or a bound above the valid plan."""
    from stsched.registry import Objective, SolveOptions, Status, run_solver

    from stsched.checker import tolerant_limit
    from stsched.plan import GpuLayout, Partition, Tenant

    inst, plan = _edge(2, 1.5e-6)
    inst = replace(inst, gpus=2)
    part = plan.gpus[0].partitions[0]  # each tenant at its capacity widened by the tolerance, the rate covered short
    at = Partition(part.size, (replace(part.tenants[0], rate=float(tolerant_limit(800.0)) * (1 - 1e-12)),),
                   procs=part.procs)
    plan = replace(plan, gpus=(GpuLayout((at,)),) * 2)
    assert part.tenants[0].rate == pytest.approx(800.0 * (1 + 1.5e-6)) and check(inst, plan).valid
    r = run_solver(solver, inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=10)).result
    assert r.status in (Status.UNKNOWN, Status.FEASIBLE, Status.OPTIMAL), r.message
    assert r.bound is None or r.bound <= 2
    if r.plan is not None:
        assert check(inst, r.plan).valid and r.objective == 2
