"""Hostile input and faults, session 14: each test is one bug found by playing a hostile user of the command line,
the Python API and the studies; the docstring says what happened before the fix.  In-process through
`stsched.cli.main` on small hand-made instances."""

from __future__ import annotations

import pytest

import stsched as st
from stsched.errors import InputError
from tests.conftest import run_cli


_run = run_cli


@pytest.mark.parametrize("solver", ["heuristic", "cpsat", "gslice"])
def test_an_engine_for_a_solver_without_engines_is_refused(files, capsys, tmp_path, solver):
    """`solve --solver heuristic --engine highs` (and cpsat, brute, every baseline) solved and exit 0: the engine
    was silently ignored.  Now one line naming the solver and the solvers that take an engine, exit 2, no work."""
    out = tmp_path / "p.json"
    code, text = _run(capsys, "solve", files["inst"], "--solver", solver, "--engine", "highs", "--out", str(out))
    assert code == 2 and f"solver {solver!r} takes no --engine" in text and "cg, milp" in text, text
    assert not out.exists()


def test_the_api_refuses_an_engine_a_solver_does_not_have(files):
    inst = st.load_instance(files["inst"])
    with pytest.raises(InputError, match="solver 'heuristic' takes no --engine"):
        st.solve(inst, "heuristic", engine="highs")
    with pytest.raises(InputError, match=r"solver 'cg': engine 'gurobi' \(its engines: highs, cbc\)"):
        st.solve(inst, "cg", engine="gurobi", time_limit=5)
    assert st.solve(inst, "milp", engine="highs", time_limit=10).valid


@pytest.mark.parametrize("command", ["solve", "bound"])
def test_cg_bound_every_zero_is_bad_input(files, capsys, command):
    """`solve --solver cg --param bound_every=0` (and `bound --param bound_every=0`) was 'solver 'cg' failed:
    ZeroDivisionError: integer modulo by zero', exit 1, after the work had started."""
    argv = ["solve", files["inst"], "--solver", "cg"] if command == "solve" else ["bound", files["inst"]]
    code, text = _run(capsys, *argv, "--param", "bound_every=0", "--time-limit", "5")
    assert code == 2 and "bound_every must be >= 1, got 0" in text, text


@pytest.mark.parametrize("warm, words", [
    ("nope", "warm='nope': unknown solver 'nope' (known: brute, cg,"),
    ("gpulet", "warm='gpulet': solver 'gpulet' plans by its own published rule"),
])
def test_cg_warm_solver_is_checked_before_the_column_generation(files, capsys, monkeypatch, tmp_path, warm, words):
    """`solve --solver cg --param warm=nope` ran the whole column generation (up to half the time limit), then said
    'unknown solver 'nope'' without naming the option; a warm solver that refuses the instance (a baseline on a
    Poisson instance) did the same.  Now one line naming the option before any work."""
    import solvers.exact.cg as cg

    def no_work(*args, **kwargs):
        raise AssertionError("the column generation ran before the options were checked")

    monkeypatch.setattr(cg, "column_generation", no_work)
    inst = st.load_instance(files["inst"]).with_late_share(0.05)
    st.save(inst, tmp_path / "poisson.json")
    code, text = _run(capsys, "solve", str(tmp_path / "poisson.json"), "--solver", "cg", "--param", f"warm={warm}")
    assert code == 2 and f"solver 'cg': {words}" in text, text


@pytest.fixture
def no_execution(monkeypatch):
    """`stsched execute` fails the test if it starts executing (the checks must come first)."""
    import stsched.executor as executor

    def run(*args, **kwargs):
        raise AssertionError("the plan was executed before the options were checked")

    monkeypatch.setattr(executor, "execute", run)


_EXECUTE = ["--backend", "cpu", "--duration", "0.5", "--drain", "0.5", "--model-map", "m0=resnet-tiny", "m1=vgg-tiny"]


@pytest.mark.parametrize("extra, words", [
    (["--gpus", "0", "0"], "executor: gpus: GPU 0 is listed twice"),
    (["--compare-sim", "--noise-cv", "1e300"], "--noise-cv: noise CV 1e+300 is above 1e+150"),
    (["--compare-sim", "--host-overhead", "1e300"], "host overhead batch_s: expected a number <= 86400"),
])
def test_execute_refuses_before_running(files, capsys, no_execution, extra, words):
    """`execute --backend cpu --gpus 0 0` ran GPU 0 twice (30 s), then its own measurement of the host overhead
    came out negative: 'host overhead batch_s: expected a number >= 0', exit 2, the run lost.
    `--compare-sim --noise-cv 1e300` was refused by the simulator after the execution (20 s at load 9)."""
    code, text = _run(capsys, "execute", files["inst"], files["plan"], *_EXECUTE, *extra)
    assert code == 2 and words in text, text


@pytest.mark.parametrize("overhead", ["1e300", "0,1e308", "86401"])
def test_simulate_refuses_a_host_overhead_beyond_a_day(files, capsys, overhead):
    """`simulate --host-overhead 1e300` printed p50 5.5e+302 ms; `0,1e308` overflowed (a numpy RuntimeWarning),
    then reported 0 of 320 requests completed, exit 0.  A host overhead per batch is now at most a day of real
    time (validate.MAX_REAL_RUN_S), as every real-time duration."""
    code, text = _run(capsys, "simulate", files["inst"], files["plan"], "--duration", "1", "--host-overhead", overhead)
    assert code == 2 and "expected a number <= 86400" in text, text
    code, text = _run(capsys, "simulate", files["inst"], files["plan"], "--duration", "1", "--host-overhead", "0.001")
    assert code == 0, text


@pytest.mark.parametrize("argv, words", [
    (["--solver", "cpsat", "--threads", "1000000000000"], "--threads: expected a whole number <= 1024"),
    (["--solver", "milp", "--threads", "3000000000"], "--threads: expected a whole number <= 1024"),
    (["--solver", "cpsat", "--param", "workers=1000000000000"], "workers: expected a whole number <= 1024"),
    (["--solver", "heuristic", "--param", "workers=5000"], "workers: expected a whole number <= 1024"),
    (["--solver", "cg", "--param", "workers=5000"], "workers: expected a whole number <= 1024"),
])
def test_threads_and_workers_are_bounded(files, capsys, argv, words):
    """`solve --solver cpsat --threads 1000000000000` (or `--param workers=...`) was 'solver 'cpsat' failed:
    TypeError: incompatible function arguments', exit 1 (CP-SAT's worker count is a 32-bit int); milp and the
    others accepted any count.  Threads and workers of one process are now at most 1,024 (validate.MAX_THREADS)."""
    code, text = _run(capsys, "solve", files["inst"], *argv, "--time-limit", "5")
    assert code == 2 and words in text, text


def test_the_api_bounds_threads_as_the_cli():
    from stsched.registry import SolveOptions
    from stsched.validate import MAX_THREADS

    with pytest.raises(InputError, match="threads: expected a whole number <= 1024"):
        SolveOptions(threads=MAX_THREADS + 1)
    assert SolveOptions(threads=MAX_THREADS).threads == MAX_THREADS


@pytest.mark.parametrize("solver", ["milp", "heuristic"])
def test_max_scale_on_more_gpus_than_a_plan_can_hold_is_refused(files, capsys, tmp_path, solver):
    """max-scale on an instance of 10^9 GPUs: milp ran 152 s past its 5 s limit and died ('solver failed:
    SystemError', exit 1; MemoryError under a 3 GB cap): its plan holds a layout per GPU.  Now refused before any
    work, one line naming the GPUs and the limit; min-gpus reads the count as a cap only and still solves."""
    inst = st.load_instance(files["inst"]).with_gpus(10 ** 9)
    st.save(inst, tmp_path / "huge.json")
    code, text = _run(capsys, "solve", str(tmp_path / "huge.json"), "--solver", solver, "--objective", "max-scale")
    assert code == 2 and "max-scale plans on up to 1000000000 GPUs" in text and "at most 100000" in text, text
    with pytest.raises(InputError, match="at most 100000"):
        st.solve(inst, solver, "max-scale")
    code, text = _run(capsys, "solve", str(tmp_path / "huge.json"), "--solver", solver, "--time-limit", "10")
    assert code == 0, text


@pytest.mark.parametrize("argv", [["random", "--gpus", "10"], ["profile", "a100-mps"]])
def test_scenario_services_are_bounded(capsys, tmp_path, argv):
    """`scenario random --services 100000000 --gpus 10` was a numpy MemoryError traceback (4.1 GiB for the model
    draw alone under a 4 GB cap; without one it went on to take the machine's memory).  At most 100,000 services
    (validate.MAX_SERVICES; 100,000 took 4.3 s of CPU and 0.3 GB), one line, exit 2, nothing written."""
    out = tmp_path / "i.json"
    code, text = _run(capsys, "scenario", *argv, "--services", "100000000", "--out", str(out))
    assert code == 2 and "expected a whole number <= 100000" in text, text
    assert not out.exists()
    from stsched.scenarios import random_instance

    with pytest.raises(InputError, match="services: expected a whole number <= 100000"):
        random_instance(100_001, 1, 0)


def test_running_out_of_memory_is_one_line(capsys, monkeypatch):
    """A MemoryError inside a command was a traceback (exit 1).  Now one line saying so, exit 1."""
    import stsched.scenarios as scenarios

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 4.10 GiB for an array with shape (100000000,)")

    monkeypatch.setattr(scenarios, "random_instance", no_memory)
    code, text = _run(capsys, "scenario", "random", "--services", "4", "--gpus", "1")
    assert code == 1 and text.strip() == ("stsched: out of memory: Unable to allocate 4.10 GiB for an array with "
                                          "shape (100000000,)"), text


@pytest.mark.parametrize("spec, words", [
    ("TRACE:azure-functions-2019", "unknown kind 'TRACE'"),
    ("nope:1", "unknown kind 'nope'"),
    ("poisson:3", "poisson takes no argument"),
])
def test_an_unknown_arrival_kind_with_an_argument_is_named_unknown(files, capsys, spec, words):
    """`simulate --arrivals TRACE:azure-functions-2019` said 'TRACE takes no argument' (an unknown kind with an
    argument was explained as a known kind given one)."""
    code, text = _run(capsys, "simulate", files["inst"], files["plan"], "--duration", "1", "--arrivals", spec)
    assert code == 2 and words in text, text


@pytest.mark.parametrize("param", ["lns_free=20", "warm=none", "cg_share=0.9"])
def test_bound_refuses_options_of_the_solve_only(files, capsys, param):
    """`stsched bound --param lns_free=20` (or warm, cg_share, dive, reprice, ...: options of cg's plans) ran and
    exit 0, the option ignored.  Now one line naming it and the keys the bound reads; `solve --solver cg --bound cg`
    still takes them (its bound gets the keys it reads)."""
    code, text = _run(capsys, "bound", files["inst"], "--param", param, "--time-limit", "5")
    key = param.split("=")[0]
    assert code == 2 and f"bound provider 'cg': {key}: read by its solve only" in text and "bp_strong" in text, text
    code, text = _run(capsys, "solve", files["inst"], "--solver", "cg", "--bound", "cg", "--param", param,
                      "--param", "max_rounds=50", "--time-limit", "5")
    assert code == 0, text


def test_cg_refuses_min_gpus_options_under_max_scale(files, capsys):
    """`solve --solver cg --objective max-scale --param lns_free=20 --param dive=1` ran, exit 0: the neighbourhood
    search and the diving run for min-gpus only, so both were ignored without a word."""
    code, text = _run(capsys, "solve", files["inst"], "--solver", "cg", "--objective", "max-scale", "--param",
                      "lns_free=20", "--param", "dive=1")
    assert code == 2 and "solver 'cg': dive, lns_free: options of objective min-gpus; max-scale would ignore them" \
        in text, text


@pytest.mark.parametrize("knob, value, master", [("mpc_q", 0.5, "mpc_h"), ("mpc_window_s", 600.0, "mpc_h"),
                                                  ("mpc_change_h", 5.0, "mpc_h"), ("forecast_q", 0.5, "forecast_s")])
def test_adapt_knobs_read_with_another_are_refused_alone(files, knob, value, master):
    """`st.adapt(inst, mpc_q=0.5)` (no mpc_h) ran the default policy, the knob ignored without a word; so did
    mpc_window_s and mpc_change_h without mpc_h and forecast_q without forecast_s."""
    inst = st.load_instance(files["inst"])
    with pytest.raises(InputError, match=f"{knob} is read with {master} only"):
        st.adapt(inst, hours=0.2, simulate=False, **{knob: value})
