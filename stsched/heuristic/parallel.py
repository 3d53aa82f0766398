"""Independent pieces of one construction computed in forked worker processes (`HeuristicOptions.workers`).

Cover-then-pack's residual blocks at scale (`ctp._residuals`) depend only on the context and each block's own
services and loads, and every evaluation they memoise is pure (`Context.remember`), so a block computed in a
forked copy of the process gives exactly what the parent would have computed: the plan does not depend on the
number of workers (test).  The parent computes every `workers`-th piece itself and the others' results come back
pickled through a pipe; a worker that fails (killed, out of memory, an error) is not trusted: the parent
computes its pieces itself.  Only the fork start method is used (the copy needs no pickling of the context);
where it is unavailable, or for fewer than two pieces, everything runs in the calling process.  The time limit
holds in the workers too: a worker that passes it reports `TimeUp`, which the parent raises.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from typing import Callable, Sequence, TypeVar

from stsched.forking import flush_streams as _flush
from stsched.forking import worker_count, worker_signals
from stsched.heuristic.model import TimeUp

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_OK, _TIMEUP = "ok", "timeup"


def _work(fn: Callable[[T], R], items: Sequence[T], conn, parent: int) -> None:
    """A worker's body: its pieces in order, sent back as one message (its signals: forking.worker_signals;
    `parent`: the pid that forked it)."""
    worker_signals(parent)
    try:
        out: tuple = (_OK, [fn(x) for x in items])
    except TimeUp:
        out = (_TIMEUP,)
    except BaseException as exc:  # reported, then recomputed by the parent (which raises it there if real)
        out = ("error", f"{type(exc).__name__}: {exc}")
    try:
        conn.send(out)
    finally:
        conn.close()


def map_pieces(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """[fn(x) for x in items], with piece k computed by worker k % `workers` (worker 0: this process; the others
    forked here).  The results are in `items`' order and equal to the serial ones where `fn` is a pure function
    of the process's state at the call (it must not rely on changes the calling process makes while it runs)."""
    if workers <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    workers = min(workers, len(items))
    ctx = mp.get_context("fork")
    _flush()
    started = []
    try:
        for w in range(1, workers):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_work, args=(fn, items[w::workers], send, os.getpid()))
            proc.start()
            send.close()
            started.append((w, proc, recv))
        results: list = [None] * len(items)
        for k in range(0, len(items), workers):
            results[k] = fn(items[k])
        for w, proc, recv in started:
            try:
                msg = recv.recv()
            except (EOFError, OSError):
                msg = ("error", "the worker ended without a result")
            if msg[0] == _TIMEUP:
                raise TimeUp
            if msg[0] == _OK:
                for k, r in zip(range(w, len(items), workers), msg[1]):
                    results[k] = r
            else:
                log.warning("heuristic: a worker failed (%s); its pieces are computed here", msg[1])
                for k in range(w, len(items), workers):
                    results[k] = fn(items[k])
        return results
    finally:
        for _, proc, recv in started:
            recv.close()
            if proc.is_alive():
                proc.terminate()
            proc.join()


class Background:
    """fn(*args) computed in a forked worker while this process goes on (`result` collects it), or here, on the first
    `result`, where `enabled` is false, fork is unavailable or the worker fails.  For a pure function of the
    process's state at the call whose result pickles small (a bound, a count)."""

    def __init__(self, fn: Callable[..., R], *args, enabled: bool) -> None:
        self._fn = lambda: fn(*args)
        self._proc = self._recv = None
        self._done: tuple | None = None
        if enabled and worker_count(2) > 1:
            ctx = mp.get_context("fork")
            _flush()
            self._recv, send = ctx.Pipe(duplex=False)
            self._proc = ctx.Process(target=_work, args=(lambda _: self._fn(), [None], send, os.getpid()))
            self._proc.start()
            send.close()

    def result(self) -> R:
        if self._done is None:
            msg: tuple = ("error", "not started")
            if self._proc is not None:
                try:
                    msg = self._recv.recv()
                except (EOFError, OSError):
                    msg = ("error", "the worker ended without a result")
                finally:
                    self.close()
            self._done = (msg[1][0],) if msg[0] == _OK else (self._fn(),)
        return self._done[0]

    def close(self) -> None:
        """End the worker (the result, if not collected yet, is computed here when asked)."""
        if self._proc is not None:
            self._recv.close()
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join()
            self._proc = None
