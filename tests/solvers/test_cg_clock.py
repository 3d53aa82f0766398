"""The `cpu` clock of solver cg and of the column generation counts the CPU time of the process's pricing workers
(issue 17: before, outside the column generation it counted the parent alone, so with two workers a cg solve on the
cpu clock could overrun its limit by the workers' share)."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest

from solvers.exact import cg
from solvers.exact.colgen import _clock

FORK = "fork" in mp.get_all_start_methods()


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@pytest.mark.skipif(not FORK, reason="forks a worker")
def test_cpu_clock_counts_a_finished_worker():
    clock = _clock("cpu")
    c0, own0 = clock(), time.process_time()
    proc = mp.get_context("fork").Process(target=_burn, args=(0.3,))
    proc.start()
    proc.join()
    assert proc.exitcode == 0
    assert clock() - c0 >= 0.29 + (time.process_time() - own0)  # the worker's 0.3 s besides this process's own


def test_every_cg_phase_names_its_clock_right():
    """The clock name handed to the column generations inside solver cg (the neighbourhood search's sub-problems,
    the conservative columns) is the one the solver was given."""
    assert cg._clock_name(_clock("cpu")) == "cpu" and cg._clock_name(_clock("wall")) == "wall"
