"""A partition worker's failure has a type (session 13, review debt): the sweep recognised it by its message
starting with 'worker ('; now `WorkerFailed` carries the status ("error" or "died"), the worker's traceback and
its exit code, and the sweep's one line takes the traceback's last line from it."""

from __future__ import annotations

from profiler.partitions.base import WorkerFailed


def test_a_worker_error_keeps_its_traceback_and_last_line():
    e = WorkerFailed(1.0, "measure", "error", "Traceback (most recent call last):\n  ...\nValueError: batch 2\n")
    assert isinstance(e, RuntimeError) and e.status == "error" and e.last_line == "ValueError: batch 2"
    assert str(e).startswith("worker (size 1) failed in 'measure':")


def test_a_worker_that_died_says_how():
    e = WorkerFailed(64.0, "load", "died", exit_code=-9)
    assert e.status == "died" and e.exit_code == -9
    assert e.last_line == str(e) == "worker (size 64) died during 'load' (exit code -9)"
