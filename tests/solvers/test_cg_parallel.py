"""The column generation's pricing in forked workers (`CgOptions.workers`, solvers.exact.cg_parallel): the same
rounds, columns and bound as in one process, a bound never above brute force's optimum, a failed worker's sizes
priced in the parent, and a bad `workers` value refused as bad input before any work."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from solvers.exact import cg_parallel
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.colgen import column_generation
from stsched.cli import main
from stsched.errors import InputError
from stsched.io import save_instance
from stsched.registry import Objective, SolveOptions, Status, run_bound, run_solver
from stsched.scenarios import random_instance
from tests.solvers.test_exact_properties import SETTINGS, instances

FORK = "fork" in mp.get_all_start_methods()
pytestmark = pytest.mark.skipif(not FORK, reason="the pricing workers are forked")


def _same(a, b) -> None:
    assert (a.bound, a.lp_value, a.converged, a.rounds, a.columns, a.pricing_calls) == \
        (b.bound, b.lp_value, b.converged, b.rounds, b.columns, b.pricing_calls)
    assert [(c.size, c.procs, c.tenants) for c in a.configs] == [(c.size, c.procs, c.tenants) for c in b.configs]


def _record_processes(monkeypatch) -> list[int]:
    """The process count every PricingPool is built with, in order (the pools still built as asked)."""
    asked: list[int] = []
    real = cg_parallel.PricingPool.__init__

    def record(self, pricer, workers, split=False):
        asked.append(workers)
        real(self, pricer, workers, split)

    monkeypatch.setattr(cg_parallel.PricingPool, "__init__", record)
    return asked


def _serial_against_first_worker_signalled(monkeypatch, signum: int) -> list:
    """Column generation on two processes whose first worker gets `signum` before the first round's pricing, checked
    against the one-process run; the signalled worker processes are returned."""
    inst = random_instance(16, 8, 3, arrivals="deterministic")
    opts = dict(time_limit_s=1e6, max_rounds=6, bound_every=2)
    serial = column_generation(inst, Objective.MIN_GPUS, CgOptions(**opts, workers=1))
    real = cg_parallel.PricingPool.map
    hit = []

    def map_after_a_signal(self, kind, items, left):
        if not hit and self._procs:
            proc = self._procs[0][0]
            os.kill(proc.pid, signum)
            hit.append(proc)
        return real(self, kind, items, left)

    monkeypatch.setattr(cg_parallel.PricingPool, "map", map_after_a_signal)
    _same(column_generation(inst, Objective.MIN_GPUS, CgOptions(**opts, workers=2)), serial)
    return hit


@pytest.mark.parametrize("device", ["a100-mps", "a100-mig"])
@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_two_workers_give_the_serial_rounds(device, objective):
    inst = random_instance(24, 12, 7, device, arrivals="deterministic")
    opts = CgOptions(time_limit_s=1e6, max_rounds=12, bound_every=3)  # a work limit: no clock in the outcome
    serial = column_generation(inst, objective, CgOptions(**{**opts.__dict__, "workers": 1}))
    _same(column_generation(inst, objective, CgOptions(**{**opts.__dict__, "workers": 2})), serial)


def test_a_failed_worker_is_replaced_by_the_parent(monkeypatch):
    """A worker killed before a round: its sizes are priced here, the outcome is the serial one."""
    assert _serial_against_first_worker_signalled(monkeypatch, signal.SIGKILL)


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_parallel_bound_never_beats_brute_force(inst, objective):
    known = run_solver("brute", inst, SolveOptions(objective=objective, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    b = run_bound("cg", inst, SolveOptions(objective=objective, time_limit_s=20, params=(("workers", "2"),)))
    if objective is Objective.MIN_GPUS:
        assert b.bound <= known.objective
    else:
        assert b.bound >= known.objective * (1 - 1e-6)


@SETTINGS
@given(inst=instances())
def test_bound_with_cuts_on_two_processes_never_beats_brute_force(inst):
    """Rounding cuts priced in the workers too (PricingPool.send_cuts): the bound stays below the optimum."""
    known = run_solver("brute", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    b = run_bound("cg", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=20,
                                           params=(("workers", "2"), ("cuts", "3"), ("cut_violation", "0.001"))))
    assert b.bound <= known.objective


def test_pool_answers_as_this_process_and_counts_its_workers_cpu():
    """Every size's proof from a pool of two equals this process's, and the worker's CPU seconds are counted (what
    the cpu clock adds to this process's own time)."""
    import numpy as np

    from solvers.exact.cg_common import pricing_setup
    from solvers.exact.cg_pricing import Pricer
    from solvers.exact.patterns import enumerate_layouts

    inst = random_instance(24, 12, 5, arrivals="deterministic")
    layouts = tuple(enumerate_layouts(inst, maximal=True, limit=10 ** 6))
    setup = pricing_setup(inst, layouts, CgOptions())
    pi = np.random.default_rng(2).uniform(0.0, 1.0, len(setup.rates))
    pricer = Pricer(inst, setup.data, setup.rates, 1.0, setup.opts)
    items = [(p, pi, 0.5, True) for p in setup.data]
    here = {p: cg_parallel.price(pricer, "upper", p, pi, mu, exact) for p, pi, mu, exact in items}
    pool = cg_parallel.PricingPool(Pricer(inst, setup.data, setup.rates, 1.0, setup.opts), 2)
    try:
        assert pool.workers == 2
        got = pool.map("upper", items, 1e6)
    finally:
        pool.close()
    assert {p: g.result[0] for p, g in got.items()} == {p: g.result[0] for p, g in here.items()}
    assert pool.worker_cpu > 0 and pool.workers == 1  # (closed: the pool prices here from now on)


def test_on_the_cpu_clock_the_time_left_is_shared():
    """On the cpu clock (`split`) each of two busy processes gets half the time left (a last round that runs into
    the limit spends it once in all, not once per process: at 4,096 services it overran by 14 s before); on the
    wall clock each gets all of it."""
    import time

    import numpy as np

    from solvers.exact.cg_common import pricing_setup
    from solvers.exact.cg_pricing import Pricer
    from solvers.exact.patterns import enumerate_layouts

    inst = random_instance(12, 6, 5, arrivals="deterministic")
    layouts = tuple(enumerate_layouts(inst, maximal=True, limit=10 ** 6))
    setup = pricing_setup(inst, layouts, CgOptions())
    pi = np.full(len(setup.rates), 0.5)
    for split, share in ((True, 0.5), (False, 1.0)):
        pricer = Pricer(inst, setup.data, setup.rates, 1.0, setup.opts)
        pricer.clock = time.process_time
        pool = cg_parallel.PricingPool(pricer, 2, split=split)
        try:
            c0 = time.process_time()
            pool.map("upper", [(p, pi, 0.5, True) for p in setup.data], 1000.0)
            assert pricer.deadline - c0 == pytest.approx(1000.0 * share, abs=5.0)
        finally:
            pool.close()


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_bad_workers_is_bad_input(tmp_path, capsys, value):
    path = tmp_path / "inst.json"
    save_instance(random_instance(4, 2, 1, arrivals="deterministic"), path)
    assert main(["bound", str(path), "--param", f"workers={value}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "workers" in err[0] and "Traceback" not in err[0]
    with pytest.raises(InputError, match="workers"):
        column_generation(random_instance(4, 2, 1, arrivals="deterministic"), Objective.MIN_GPUS,
                          CgOptions(workers=-1))


def test_automatic_workers_from_parallel_from(monkeypatch):
    """`workers` 0: one process below `PARALLEL_FROM` active services, two (where two CPUs are free) from there."""
    from solvers.exact import colgen
    from stsched.forking import worker_count

    asked = _record_processes(monkeypatch)
    inst = random_instance(12, 6, 5, arrivals="deterministic")
    column_generation(inst, Objective.MIN_GPUS, CgOptions(max_rounds=2))
    monkeypatch.setattr(colgen, "PARALLEL_FROM", 12)
    column_generation(inst, Objective.MIN_GPUS, CgOptions(max_rounds=2))
    assert asked == [1, 0] and worker_count(0) == min(2, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize("device", ["a100-mps", "a100-mig"])
def test_cuts_are_sent_to_the_workers(monkeypatch, device):
    """Rounding cuts are separated after the workers are forked; each separation is sent to them (PricingPool.
    send_cuts), so two processes give the one-process rounds, columns, cuts and bound (before, the cuts kept every
    size in this process: a worker's copy would have priced without their duals, a bound too high)."""
    from solvers.exact.cg_cuts import CutOptions

    asked = _record_processes(monkeypatch)
    inst = random_instance(12, 6, 5, device, arrivals="deterministic")
    opts = dict(time_limit_s=1e6, max_rounds=40)  # a work limit: no clock in the outcome
    cuts = CutOptions(rounds=2, min_violation=0.001)
    two = column_generation(inst, Objective.MIN_GPUS, CgOptions(**opts, workers=2), cuts=cuts)
    one = column_generation(inst, Objective.MIN_GPUS, CgOptions(**opts, workers=1), cuts=cuts)
    assert asked == [2, 1] and two.cuts == one.cuts > 0
    _same(two, one)


def test_a_worker_that_cannot_take_the_cuts_ends_the_pool(monkeypatch):
    """A worker killed before the cuts are sent: the pool ends its workers and prices every size here from then on,
    and the outcome is the one-process one."""
    from solvers.exact.cg_cuts import CutOptions

    inst = random_instance(12, 6, 5, arrivals="deterministic")
    opts = dict(time_limit_s=1e6, max_rounds=40)
    cuts = CutOptions(rounds=2, min_violation=0.001)
    one = column_generation(inst, Objective.MIN_GPUS, CgOptions(**opts, workers=1), cuts=cuts)
    real = cg_parallel.PricingPool.send_cuts
    ended = []

    def send_to_a_dead_worker(self, pool):
        for proc, conn in self._procs:
            proc.kill()
            proc.join()
            conn.close()  # (a send on it raises: the worker cannot take the cuts)
            ended.append(proc)
        return real(self, pool)

    monkeypatch.setattr(cg_parallel.PricingPool, "send_cuts", send_to_a_dead_worker)
    _same(column_generation(inst, Objective.MIN_GPUS, CgOptions(**opts, workers=2), cuts=cuts), one)
    assert ended


def test_a_stalled_worker_is_not_waited_for(monkeypatch):
    """A worker that stops answering (SIGSTOP) past the time left and the margin: its sizes are priced here, the
    pool is closed (a stopped worker killed, not left behind), and the outcome is the serial one (the round waited
    on conn.recv() without a limit before session 14's review)."""
    monkeypatch.setattr(cg_parallel, "STALL_MARGIN_S", -2e6)  # the time left and the margin: no wait at all
    stopped = _serial_against_first_worker_signalled(monkeypatch, signal.SIGSTOP)
    assert stopped and not stopped[0].is_alive()


def test_the_cpu_clock_counts_the_workers_cpu(monkeypatch):
    """On the cpu clock the limit counts the workers' CPU too: workers that report a day of CPU in the first round's
    pricing end the generation there (deleting the workers' share from the clock passed every test before)."""
    real = cg_parallel.PricingPool.map

    def map_with_a_days_work(self, kind, items, left):
        out = real(self, kind, items, left)
        self.worker_cpu += 86400.0
        return out

    inst = random_instance(16, 8, 3, arrivals="deterministic")
    opts = CgOptions(clock="cpu", workers=2, time_limit_s=3600)
    assert column_generation(inst, Objective.MIN_GPUS, opts).rounds > 3
    monkeypatch.setattr(cg_parallel.PricingPool, "map", map_with_a_days_work)
    got = column_generation(inst, Objective.MIN_GPUS, opts)  # (round 2 finds the time spent: its last pricing)
    assert got.rounds <= 2 and not got.converged


def test_the_cpu_clock_does_not_count_closed_workers_twice(monkeypatch):
    """A pool closed mid-run (a failed worker, cuts a worker cannot take) has joined its workers: their CPU is in
    this process's ended children (stsched.forking.cpu_seconds), so the clock stops adding their reported CPU
    (before, it counted them twice for the rest of the generation, and a CPU limit stopped early by their share).
    Workers that report a day of CPU and are then closed after the first pricing: the generation runs on."""
    real = cg_parallel.PricingPool.map

    def map_then_close(self, kind, items, left):
        out = real(self, kind, items, left)
        if self._procs:
            self.worker_cpu += 86400.0  # (reported by workers now joined: the clock must not add it any more)
            self.close()
        return out

    monkeypatch.setattr(cg_parallel.PricingPool, "map", map_then_close)
    inst = random_instance(16, 8, 3, arrivals="deterministic")
    got = column_generation(inst, Objective.MIN_GPUS, CgOptions(clock="cpu", workers=2, time_limit_s=3600))
    assert got.rounds > 3


def test_a_worker_that_fails_taking_the_cuts_ends_quietly(monkeypatch, capfd):
    """A worker whose copy of the cuts fails (any error, not only a closed pipe) ends without a traceback on stderr
    (before, the error escaped `_serve` and multiprocessing printed it); the parent prices its sizes itself and the
    outcome is the one-process one."""
    from solvers.exact.cg_cuts import CutOptions

    inst = random_instance(12, 6, 5, arrivals="deterministic")
    opts = dict(time_limit_s=1e6, max_rounds=40)
    cuts = CutOptions(rounds=2, min_violation=0.001)
    one = column_generation(inst, Objective.MIN_GPUS, CgOptions(**opts, workers=1), cuts=cuts)

    def broken(*args):
        raise ValueError("a cut pool that cannot be built")

    monkeypatch.setattr(cg_parallel, "CutPool", broken)  # (the workers are forked after this: they see it)
    capfd.readouterr()
    _same(column_generation(inst, Objective.MIN_GPUS, CgOptions(**opts, workers=2), cuts=cuts), one)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "cannot be built" not in err
