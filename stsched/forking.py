"""What every part that forks worker processes shares (the heuristic's residual blocks, stsched.heuristic.parallel;
the column generation's pricing, solvers.exact.cg_parallel; the studies' pool, experiments.runners; the sharded
simulator's, stsched.simulation.stream): how many processes to use, the flush before a fork, a worker's signals and
its end with its parent (`die_with_parent`), and the CPU clock that counts the children (`cpu_seconds`)."""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
import sys
import time


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return os.cpu_count() or 1


def worker_count(requested: int) -> int:
    """The processes in force for `requested` (`HeuristicOptions.workers`, `CgOptions.workers`): 0 = automatic (2
    where this process may use two CPUs or more: the pieces forked so far gain little from more processes than two
    against their start), else the number asked; 1 wherever fork is not available."""
    if "fork" not in mp.get_all_start_methods() or mp.current_process().daemon:
        return 1  # a daemonic process (a multiprocessing pool's worker) may not start processes
    return min(2, available_cpus()) if requested == 0 else requested


def flush_streams() -> None:
    """A forked copy must not write the parent's buffered output again: flushed before every fork."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def worker_signals(parent: int | None = None) -> None:
    """A forked worker's signals: it ignores SIGINT (an interrupt reaches the whole process group, and the parent,
    which handles it, ends its workers) and dies quietly on SIGTERM: the handler it inherits from the CLI
    (stsched.cli) raised Terminated inside it, which printed a traceback whenever the parent ended a worker that
    was still sending (the parent treats a worker that ends without a result as failed).  It also ends with its
    parent (`die_with_parent`): a `kill -9` of the solve must not leave its workers behind.  `parent`: the pid of
    the process that forked it (its `os.getpid()` before the fork), so that a parent dying between the fork and
    the parent-death signal ends it too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent)


def die_with_parent(parent: int | None = None) -> None:
    """Called in a forked worker: it ends when the process that forked it dies, even by SIGKILL (Linux: the
    parent-death signal, prctl PR_SET_PDEATHSIG; elsewhere nothing).  A `kill -9` of a study's driver run with
    `--jobs N` left its N pool workers alive forever, blocked on a queue they themselves kept open.  `parent`, the
    pid that forked it where the caller knows it: a parent that died before the signal was set ends it too."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def cpu_seconds() -> float:
    """The CPU seconds of this process and of its children that have ended and been waited for (RUSAGE_CHILDREN):
    a forked worker counts once joined, a solver subprocess (CBC) once finished.  Any other child of this process
    that ends and is reaped in the meantime counts as well (a caller's own subprocess, reaped by multiprocessing
    when a pool of workers starts, shortens a limit read on this clock).  The `cpu` clock of solver cg and of
    `stsched bound` (solvers.exact.colgen, which adds its running workers' reported CPU) and the adaptive
    controller's decision CPU time (stsched.planning.adapt.controller)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def clock_named(name: str):
    """The clock a time limit is on, by its name (the `clock` option of solver cg and `stsched bound`'s
    `--param clock=`): `wall` (`time.perf_counter`) or `cpu` (`cpu_seconds`); any other name is refused."""
    if name not in ("wall", "cpu"):
        from stsched.errors import InputError

        raise InputError(f"clock: expected wall or cpu, got {name!r}")
    return time.perf_counter if name == "wall" else cpu_seconds


__all__ = ["available_cpus", "clock_named", "cpu_seconds", "flush_streams", "worker_count", "worker_signals"]
