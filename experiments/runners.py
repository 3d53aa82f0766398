"""Where grid points run: in this process, in a local process pool, or as Ray tasks (docs/SCALE_OUT.md).

`run_grid` (experiments.common) is the only caller: it hands a runner the function and the points still to do and
receives `(index, row)` pairs as they finish, in any order; the driver alone writes rows.  A runner never raises
for a point: an exception inside `fn` becomes `{RUN_ERROR: "Type: first line of the message"}`, and a worker that
dies (killed, out of memory) turns the points it may have been running into such error rows, so that the next run
retries them.  Every task pins its thread pools (BLAS/OpenMP through threadpoolctl and the usual environment
variables) to `threads`, one by default, so that timings of points run side by side stay comparable.

- `local`, jobs 1: every point in this process, one after another (the default; no pickling needed).
- `local`, jobs N > 1: a pool of N forked processes; `fn` and the points reach the workers through the fork, so a
  lambda or closure works as in the serial case (Linux/macOS: the fork start method).
- `ray`: one Ray task per point (`num_cpus` = threads), at most `jobs` in flight (on a cluster with the default
  jobs 1: as many as its CPUs hold); `fn` travels by cloudpickle.  `address` "auto" or "HOST:PORT" joins a
  running cluster; without one a local Ray instance of `jobs` CPUs is started.  Ray is an
  optional extra (`pip install -e '.[ray]'`) imported only here, only for this runner.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Callable, Iterator, Mapping, Sequence

log = logging.getLogger(__name__)

RUN_ERROR = "run_error"  # the column of a point that failed to run (retried on the next run)
RUNNERS = ("local", "ray")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


@dataclass(frozen=True)
class Runner:
    """`kind`: local | ray; `jobs`: local workers (ray: CPUs of a local instance); `address`: a Ray cluster
    ("auto" or HOST:PORT; None: a local instance); `threads`: threads per task (solver and BLAS)."""

    kind: str = "local"
    jobs: int = 1
    address: str | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        if self.kind not in RUNNERS:
            raise ValueError(f"runner must be one of {', '.join(RUNNERS)}, got {self.kind!r}")
        if self.jobs < 1 or self.threads < 1:
            raise ValueError(f"--jobs and --threads must be >= 1, got {self.jobs} and {self.threads}")
        if self.address and self.kind != "ray":
            raise ValueError("--address needs --runner ray")
        if self.kind == "ray":  # refused before any point runs; only imported here, Ray starts in `init_ray`
            from stsched.errors import InputError
            from stsched.ray_runtime import import_ray

            try:
                import_ray()
            except InputError as e:
                raise ValueError(str(e)) from None

    def describe(self) -> str:
        where = f", address {self.address}" if self.address else ""
        return f"{self.kind} runner, {self.jobs} job(s), {self.threads} thread(s) per task{where}"


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def pin_threads(threads: int) -> None:
    """Set the thread environment variables (for libraries loaded later) of this process."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)


def call_point(fn: Callable[[Mapping[str, object]], Mapping[str, object]], point: Mapping[str, object],
               threads: int) -> dict[str, object]:
    """`fn(point)` with the thread pools limited to `threads`; an exception becomes an error row."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        threadpool_limits = None
    try:
        if threadpool_limits is None:
            return dict(fn(point))
        with threadpool_limits(limits=threads):
            return dict(fn(point))
    except Exception as e:  # noqa: BLE001 - any failure of a point is recorded, not raised
        log.warning("point %s failed: %s", dict(point), one_line(e))
        return {RUN_ERROR: one_line(e)}


# what forked workers inherit: set just before a pool forks them
_FN: Callable | None = None
_POINTS: Sequence[Mapping[str, object]] = ()


def _forked_task(i: int, threads: int) -> dict[str, object]:
    assert _FN is not None
    return call_point(_FN, _POINTS[i], threads)


def _forked_init(threads: int, parent: int) -> None:
    from stsched.forking import die_with_parent

    die_with_parent(parent)  # a `kill -9` of the driver alone left its workers alive forever
    pin_threads(threads)


def execute(runner: Runner, fn: Callable[[Mapping[str, object]], Mapping[str, object]],
            points: Sequence[Mapping[str, object]]) -> Iterator[tuple[int, dict[str, object]]]:
    """Run `fn` on every point; yield `(index into points, row)` as each finishes."""
    if not points:
        return
    if runner.kind == "ray":
        yield from _ray(runner, fn, points)
    elif runner.jobs == 1:
        for i, p in enumerate(points):
            yield i, call_point(fn, p, runner.threads)
    else:
        yield from _pool(runner, fn, points)


def _pool(runner: Runner, fn, points) -> Iterator[tuple[int, dict[str, object]]]:
    global _FN, _POINTS
    _FN, _POINTS = fn, points
    todo = list(range(len(points)))[::-1]  # popped from the end: grid order
    ctx = get_context("fork")
    while todo:
        # never more workers than points left: a fork pool starts every worker at once (`--jobs 99999` forked
        # that many processes for a grid of a few points)
        pool = ProcessPoolExecutor(max_workers=min(runner.jobs, len(todo)), mp_context=ctx, initializer=_forked_init,
                                   initargs=(runner.threads, os.getpid()))
        running: dict[Future, int] = {}
        broken = False
        try:
            while todo or running:
                while todo and len(running) < runner.jobs and not broken:  # at most one point per worker
                    i = todo.pop()
                    try:
                        running[pool.submit(_forked_task, i, runner.threads)] = i
                    except BrokenProcessPool:  # a worker died since the last wait: this point goes to the next pool
                        todo.append(i)  # (it raised out of run_grid, 1 run in ~5 of the full suite on 2 loaded cores)
                        broken = True
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = running.pop(fut)
                    try:
                        yield i, fut.result()
                    except BrokenProcessPool:
                        broken = True
                        yield i, {RUN_ERROR: "worker died (this point or one beside it killed its process)"}
                if broken and not running:
                    break
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)
        if broken:
            log.warning("a worker process died; %d points left, starting a new pool", len(todo))


def init_ray(address: str | None, num_cpus: int | None = None):
    """`stsched.ray_runtime.init_ray` with the workers' output kept off the driver's terminal."""
    from stsched.ray_runtime import init_ray as _init

    return _init(address, num_cpus, log_to_driver=False)


def _ray(runner: Runner, fn, points) -> Iterator[tuple[int, dict[str, object]]]:
    ray = init_ray(runner.address, runner.jobs)
    slots = runner.jobs
    if runner.address and runner.jobs == 1:  # a cluster: as many tasks at a time as its CPUs hold
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // runner.threads)

    def task(f, point, threads):
        pin_threads(threads)
        return call_point(f, point, threads)

    remote = ray.remote(num_cpus=runner.threads, max_retries=0)(task)
    fn_ref = ray.put(fn)
    todo = list(range(len(points)))[::-1]
    refs: dict = {}
    try:
        while todo or refs:
            while todo and len(refs) < slots:  # at most `slots` tasks in flight (--jobs)
                i = todo.pop()
                refs[remote.remote(fn_ref, points[i], runner.threads)] = i
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                i = refs.pop(ref)
                try:
                    yield i, ray.get(ref)
                except Exception as e:  # noqa: BLE001 - the task's worker died (its own errors are rows)
                    yield i, {RUN_ERROR: f"ray task failed: {one_line(e)}"}
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
