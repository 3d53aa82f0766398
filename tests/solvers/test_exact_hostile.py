"""The exact solvers and the layout LP on astronomical rates (session 12, hostile tester): a rate no GPU count serves
(1e308 req/s) on more than 1,000 GPUs made the layout LP fail numerically before the solver named the service
(`stsched solve --solver milp`: RuntimeError 'LP relaxation failed', exit 1 with a traceback); `st.bound(...,
method="layout-lp")` raised the same RuntimeError."""

from __future__ import annotations

import math

import pytest

import stsched as st
from stsched.registry import Objective
from tests.conftest import make_mps_instance


@pytest.fixture(scope="module")
def huge():
    return make_mps_instance(rates=(1e308, 50.0), gpus=2000)


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_an_exact_solver_names_the_service_no_gpu_count_serves(huge, solver):
    r = st.solve(huge, solver, objective="min-gpus", time_limit=5)
    assert r.result.status.value == "infeasible" and r.result.infeasible_services == ("s0",)


def test_the_layout_lp_through_the_api_answers_for_a_service_it_cannot_serve(huge):
    b = st.bound(huge, "min-gpus", method="layout-lp")
    assert math.isinf(b.value) and b.objective is Objective.MIN_GPUS


def _c_sigint_handler() -> int | None:
    """The process's SIGINT disposition at the C level (Python's signal.getsignal does not see a library's)."""
    import ctypes
    import signal

    class SigAction(ctypes.Structure):
        _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16), ("flags", ctypes.c_int),
                    ("restorer", ctypes.c_void_p)]

    sa = SigAction()
    assert ctypes.CDLL(None).sigaction(signal.SIGINT, None, ctypes.byref(sa)) == 0
    return sa.handler


def test_cpsat_leaves_the_sigint_handler_and_stops_at_an_interrupt(monkeypatch):
    """CP-SAT's own SIGINT handler set SIGINT to SIG_DFL after every solve (a later Ctrl-C in `stsched experiment
    exact_parvagpu` killed the process without a word, its engines left running) and swallowed an interrupt that
    came during the search (the search stopped, the command ran on)."""
    import signal

    # Python's own handler, whatever an earlier test left (one restored SIG_DFL: the check below then read 0)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _cpsat_keeps_the_handler_and_stops(monkeypatch)
    finally:
        signal.signal(signal.SIGINT, previous)


def _cpsat_keeps_the_handler_and_stops(monkeypatch):
    import os
    import signal
    import threading
    import time

    from ortools.sat.python import cp_model

    before = _c_sigint_handler()
    st.solve(make_mps_instance(), "cpsat", time_limit=5)
    assert _c_sigint_handler() == before and before not in (None, 0)

    original = cp_model.CpSolver.Solve

    def solve_then_interrupt(self, *args, **kwargs):  # SIGINT 0.5 s into the search itself
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cp_model.CpSolver, "Solve", solve_then_interrupt)
    inst = st.scenario("parvagpu", row=4)  # 32 GPUs: CP-SAT uses its whole time limit on it
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        st.solve(inst, "cpsat", objective="min-gpus", time_limit=120, params={"ladder": 0})
    assert time.monotonic() - t0 < 60
    assert _c_sigint_handler() == before
