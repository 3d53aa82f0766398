"""stsched.forking: what every forked worker shares."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest

from stsched.forking import worker_signals


class _Raised(Exception):
    pass


def _raise(signum, frame):
    raise _Raised


def _wait_in_worker(ready, conn) -> None:
    worker_signals()
    ready.set()
    conn.recv()  # (blocks until the test ends it)


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="fork start method only")
def test_a_worker_dies_quietly_on_sigterm_under_the_clis_handler(capfd):
    """Under a SIGTERM handler that raises (the CLI's raises Terminated), a worker ended by its parent raised it and
    multiprocessing printed its traceback (scale_eval's runs at 256 and 1,024 services printed about 20): with
    worker_signals it dies of the signal, silently."""
    old = signal.signal(signal.SIGTERM, _raise)
    try:
        ctx = mp.get_context("fork")
        ready = ctx.Event()
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_wait_in_worker, args=(ready, recv))
        proc.start()
        assert ready.wait(30)
        os.kill(proc.pid, signal.SIGTERM)
        proc.join(30)
        assert proc.exitcode == -signal.SIGTERM
        assert "Traceback" not in capfd.readouterr().err
    finally:
        signal.signal(signal.SIGTERM, old)


def test_a_forked_worker_ends_with_its_parent():
    """Session 16: a forked worker (worker_signals, the studies' pool, the sharded simulator's) gets the
    parent-death signal SIGKILL on Linux, so a `kill -9` of its parent does not leave it behind."""
    import ctypes
    import sys

    from stsched.forking import die_with_parent

    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")

    def child(conn, parent):
        die_with_parent(parent)
        sig = ctypes.c_int(0)
        ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)  # 2: PR_GET_PDEATHSIG
        conn.send(sig.value)

    recv, send = mp.get_context("fork").Pipe(duplex=False)
    proc = mp.get_context("fork").Process(target=child, args=(send, os.getpid()))
    proc.start()
    assert recv.recv() == signal.SIGKILL
    proc.join(10)


def _dead(pid: int) -> bool:
    """The process is gone or a zombie (dead, not yet reaped by whoever adopted it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_worker_whose_parent_died_before_its_signals_ends():
    """worker_signals() set the parent-death signal without the parent's pid (the heuristic's and cg's workers):
    a parent that died between the fork and the prctl was missed, the worker left behind.  Given the pid that
    forked it, a worker whose parent is no longer that pid ends at once (here: a pid that is not its parent)."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")

    def worker():
        worker_signals(os.getpid())  # its own pid: never its parent, as a parent that died before the prctl
        os._exit(0)

    proc = mp.get_context("fork").Process(target=worker)
    proc.start()
    proc.join(10)
    assert proc.exitcode == 1


def test_a_worker_ends_when_its_parent_is_killed():
    """worker_signals (the heuristic's and cg's workers) in a grandchild: a SIGKILL of the process that forked it
    (its parent, the solve) ends it within a second or two (the test before only read PR_GET_PDEATHSIG back)."""
    import sys
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    ctx = mp.get_context("fork")

    def grandchild(ready, parent):
        worker_signals(parent)
        ready.set()
        time.sleep(60)

    def middle(ready, conn):
        proc = ctx.Process(target=grandchild, args=(ready, os.getpid()))
        proc.start()
        conn.send(proc.pid)
        time.sleep(60)

    ready = ctx.Event()
    recv, send = ctx.Pipe(duplex=False)
    mid = ctx.Process(target=middle, args=(ready, send))
    mid.start()
    try:
        pid = recv.recv()
        assert ready.wait(30)
        os.kill(mid.pid, signal.SIGKILL)
        mid.join(10)
        deadline = time.monotonic() + 2.0
        while not _dead(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _dead(pid), "the worker outlived its killed parent"
    finally:
        if mid.is_alive():
            mid.kill()
