"""Session 16, limits and faults: time limits at medium scale, memory guards, outputs that fail.  Each test is one
finding; the docstring says what happened before the fix.  Tiny instances only (the medium-scale measurements
behind them are in docs/RESULTS.md, "Limits and faults (s16)")."""

from __future__ import annotations

from experiments.common import results_dir, run_grid


def test_a_resumed_study_runs_again_the_row_cut_short(tmp_path, monkeypatch):
    """A rows file whose last line was cut mid-row (copied or restored while being written) was resumed with the
    cut row taken as done: its point never ran again and its truncated cell ('lo' for 'long note') stayed."""
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    points = [{"n": n} for n in range(3)]
    run_grid("cut", points, ["n"], lambda p: {"value": p["n"] * 1.5, "note": "long note"})
    path = results_dir("cut") / "rows.csv"
    text = path.read_text()
    path.write_text(text[:text.rstrip("\n").rfind(",") + 3])  # the last row ends in 'lo'
    ran = []

    def again(p):
        ran.append(p["n"])
        return {"value": p["n"] * 1.5, "note": "long note"}

    rows = run_grid("cut", points, ["n"], again)
    assert ran == [2]
    assert [r["note"] for r in rows] == ["long note"] * 3 and path.read_text() == text


def test_the_greedy_start_computes_each_configurations_coverage_once(monkeypatch):
    """`greedy_counts` (the start of every milp, cpsat and cg model) computed every one-tenant configuration's
    coverage once per service: 6.2 M calls at 1,024 services (6,080 configurations), 10.9 s of CPU, so
    `stsched solve r1024.json --solver cg --time-limit 2` ran 19.2 s (at load 5)."""
    from solvers.exact.driver import prepare
    from solvers.exact.patterns import ModelData
    from solvers.exact.plans import greedy_counts
    from stsched.registry import Objective, SolveOptions
    from tests.conftest import make_mps_instance

    inst = make_mps_instance(rates=(100.0, 50.0, 80.0, 40.0), slos=(50.0, 80.0, 60.0, 90.0),
                             memory=(1000.0,) * 4, gpus=4)
    data = prepare(inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=5))
    calls = []
    real = ModelData.config_coverage
    monkeypatch.setattr(ModelData, "config_coverage", lambda self, c: calls.append(c) or real(self, c))
    start = greedy_counts(data, Objective.MIN_GPUS)
    assert start.layouts or start.patterns or start.per_gpu
    one_tenant = sum(len(c.tenants) == 1 for c in data.configs)
    assert len(calls) < 2 * one_tenant  # once each for the choice (then a few for the packed start), not per service


def test_cg_keeps_its_greedy_start_when_the_integer_master_finds_nothing(monkeypatch):
    """cg's integer master started from the greedy start but, finding no plan in its time, returned none and the
    start was dropped: `stsched solve r1024.json --solver cg --time-limit 10` (at load 5, the heuristic's warm start
    out of its 2 s) ended 'unknown, no integer plan from the columns' where `--time-limit 2` gave 508 GPUs."""
    import solvers.exact.cg as cg
    from solvers.exact.driver import EngineOutcome
    from stsched.registry import Objective, SolveOptions, Status, run_solver
    from tests.conftest import make_mps_instance

    given = []

    def engine(backend):
        def run(data, options, warm, limit):
            given.append(warm)
            return EngineOutcome("none", None, None)
        return run

    monkeypatch.setattr(cg, "_engine", engine)
    inst = make_mps_instance(rates=(100.0, 50.0, 80.0), slos=(50.0, 80.0, 60.0), memory=(1000.0,) * 3, gpus=3)
    judged = run_solver("cg", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=5,
                                                 params=(("warm", "none"),)))  # (as when the heuristic's share ran out)
    assert given and given[0] is not None  # the master was given a start
    assert judged.status in (Status.FEASIBLE, Status.OPTIMAL) and judged.plan is not None and judged.report.valid
    assert "greedy start" in judged.message


def test_the_layout_lp_bound_grows_linearly_in_memory():
    """`stsched.bounds.lp_relaxation` (every solve's LP bound, and the exact solvers' finalise reserve) built a dense
    matrix of services x columns: 2.9 GB and 9.4 s of CPU at 4,096 services (`stsched solve r4096.json --solver milp`
    ran 17.6 s past its 10 s limit to say 'model too large'), hundreds of GB at 100,000.  Sparse rows: the same
    value, bit for bit, on 17 to 1,024 services (docs/RESULTS.md)."""
    import tracemalloc

    from stsched.bounds import lp_relaxation
    from stsched.registry import Objective
    from stsched.scenarios import random_instance

    inst = random_instance(800, 400, 3, arrivals="deterministic")
    tracemalloc.start()
    try:
        bound = lp_relaxation(inst, Objective.MAX_SCALE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dense = 800 * 6 * 800 * 8  # one dense copy of services x (services x sizes) float64: 31 MB
    assert 0 < bound.value < float("inf") and peak < dense / 4


def test_the_simulators_memory_guard_counts_the_address_space_limit(monkeypatch):
    """The simulator's refusal of runs that do not fit read the machine's MemAvailable only: under `ulimit -v 6G`
    a 87 M-request run (`stsched simulate p64.json plan.json --duration 1500`, 21.8 GiB available) was let through
    and stopped 'out of memory' after 34 s of work."""
    import resource

    import pytest

    from stsched.errors import InputError
    from stsched.simulation import arrivals

    real = resource.getrlimit
    cap = 2 ** 28  # 256 MiB of address space, most of it mapped already: 1 M requests (224 MB) cannot fit
    monkeypatch.setattr(resource, "getrlimit",
                        lambda which: (cap, cap) if which == resource.RLIMIT_AS else real(which))
    with pytest.raises(InputError, match="would not fit in memory"):
        arrivals.generate(arrivals.ArrivalSpec("poisson"), ["a"], [1000.0], 1000.0)  # 1 M requests, 224 MB


def test_an_exact_model_with_more_services_than_configurations_is_refused_before_enumerating(monkeypatch):
    """milp on 100,000 services (`--time-limit 10`) enumerated 594,833 one-tenant configurations and paid the
    layout LP bound for 83.9 s before saying 'model too large' (more than `max_configs`); each service needs a
    configuration, so more services than that is refused first."""
    import solvers.exact.driver as driver
    from stsched.registry import Objective, SolveOptions, Status, run_solver
    from tests.conftest import make_mps_instance

    def never(*args, **kwargs):
        raise AssertionError("enumerated or bounded before the refusal")

    monkeypatch.setattr(driver, "enumerate_configs", never)
    monkeypatch.setattr(driver, "lp_relaxation", never)
    inst = make_mps_instance(rates=(100.0, 50.0, 80.0), slos=(50.0, 80.0, 60.0), memory=(1000.0,) * 3, gpus=3)
    judged = run_solver("milp", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=5,
                                                   params=(("max_configs", "2"),)))
    assert judged.status is Status.UNKNOWN and "3 services with a rate" in judged.message


def test_a_better_warm_plan_beats_the_greedy_start_kept_when_the_master_finds_nothing(monkeypatch):
    """Review mend (session 16): the greedy start kept above was returned before the caller's checker-valid warm
    plan was compared with it, so a warm plan the columns cannot express (warm_counts None) was dropped for a start
    that may use more GPUs.  Now the warm plan is weighed against the greedy start as against any plan."""
    import solvers.exact.cg as cg
    from solvers.exact.driver import EngineOutcome
    from stsched.registry import Objective, SolveOptions, Status, run_solver
    from tests.conftest import make_mps_instance
    import stsched as st

    monkeypatch.setattr(cg, "_engine", lambda backend: lambda data, options, warm, limit: EngineOutcome("none", None,
                                                                                                         None))
    monkeypatch.setattr(cg, "warm_counts", lambda data, plan: None)  # a warm plan the columns cannot express
    monkeypatch.setattr(cg, "_better", lambda a, b, obj: True)  # and better than the greedy start
    inst = make_mps_instance(rates=(100.0, 50.0, 80.0), slos=(50.0, 80.0, 60.0), memory=(1000.0,) * 3, gpus=3)
    warm = st.solve(inst, solver="heuristic").plan
    judged = run_solver("cg", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=5, warm_start=warm,
                                                 params=(("warm", "none"),)))
    assert judged.status in (Status.FEASIBLE, Status.OPTIMAL) and judged.report.valid
    assert "warm start kept" in judged.message, judged.message
