"""The pricing calls of one column-generation round (solvers.exact.colgen) shared between this process and forked
workers (`CgOptions.workers`): the greedy columns and the proven upper bound of each partition size are independent
given the round's duals, so a size priced in a forked copy of the pricer gives exactly what this process would
have computed, and the bound, the columns and the rounds do not depend on the number of workers (test), only the
wall time does.

The workers are forked once, after the pricer is built (the copy needs no pickling of its data), and serve one
message per round: the sizes given to them, the duals, the pricer's current node and refinement budgets and the
time left.  The sizes are split by the CPU seconds each took in its last call (longest first, each to the least
loaded process: this one is process 0).  A worker reports its results, the pricer's counters it moved and the CPU
seconds it spent (`worker_cpu`: what the column generation adds to its own CPU time on the `cpu` clock, so that the
CPU time is the process's and its workers' together).  On that clock (`split`) each busy process gets an equal share
of the time left (on the wall clock, all of it): a last round that runs into the limit spends at most the time left
in all, not that much in every process.  A worker that fails (killed, an error) is not trusted: its
sizes are priced here and the pool runs serially from then on.  The time limit holds in the workers: each gets
the time left of the round on its own clock.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass

import numpy as np

from solvers.exact.cg_cuts import CutPool
from solvers.exact.cg_pricing import Pricer
from stsched.forking import flush_streams, worker_count, worker_signals

log = logging.getLogger(__name__)

KINDS = ("columns", "upper")  # the pricing calls a round makes per size
CUTS = "cuts"  # a message that gives the workers the column generation's rounding cuts (before the next round)
PARALLEL_FROM = 512  # `CgOptions.workers` 0 (automatic): two processes from this many active services up (below,
# a round's pricing takes milliseconds to tens of milliseconds and the messages would eat much of the gain)


@dataclass(frozen=True)
class Priced:
    """One size's answer: `kind` "columns" -> (value, Config) list in `result`; "upper" -> (bound, columns).
    `fallbacks`, `short_refines`, `calls` are the pricer's counters it moved, `steps` its refinement steps,
    `cpu_s` the CPU seconds it took, `pack_skip` the greedy's packing rest for its size afterwards."""

    result: object
    fallbacks: int
    short_refines: int
    calls: int
    steps: int
    cpu_s: float
    pack_skip: int


def price(pricer: Pricer, kind: str, size: float, pi: np.ndarray, mu: float, exact: bool) -> Priced:
    """One pricing call of `kind` for `size` (the same in this process and in a worker)."""
    fb, sr, calls, c0 = pricer.fallbacks, pricer.short_refines, pricer.calls, time.process_time()
    sd = pricer.data[size]
    out = pricer.columns(sd, pi, mu) if kind == "columns" else pricer.upper(sd, pi, mu, exact=exact)
    return Priced(out, pricer.fallbacks - fb, pricer.short_refines - sr, pricer.calls - calls, pricer.steps,
                  time.process_time() - c0, pricer._pack_skip.get(size, 0))


def _serve(pricer: Pricer, conn, parent: int) -> None:
    """A worker's body: one message per round (None ends it); its signals: stsched.forking.worker_signals
    (`parent`: the pid that forked it)."""
    worker_signals(parent)
    try:
        while True:
            try:
                msg = _receive(pricer, conn)
            except (EOFError, OSError, KeyboardInterrupt):
                raise
            except Exception:  # noqa: BLE001 - a message it cannot take (the cuts): it ends quietly, and the
                break  # parent, finding it gone (EOFError), prices its sizes itself
            if msg is None:
                break
            kind, items, nodes, refine, left, skips = msg
            c0 = time.process_time()
            try:
                pricer.nodes, pricer.refine = nodes, refine
                pricer.deadline = pricer.clock() + left
                pricer._pack_skip.update(skips)
                out: tuple = ("ok", [price(pricer, kind, p, pi, mu, exact) for p, pi, mu, exact in items])
            except Exception as exc:  # noqa: BLE001 - reported; the parent prices these sizes itself
                out = ("error", f"{type(exc).__name__}: {exc}")
            conn.send(out + (time.process_time() - c0,))
    except (EOFError, OSError, KeyboardInterrupt):
        pass
    finally:
        conn.close()


def _receive(pricer: Pricer, conn):
    """The next round's message (None: the end); a CUTS message before it replaces the pricer's rounding cuts with
    the parent's (solvers.exact.cg_cuts: the duals of a round end with one per cut, in the pool's order)."""
    while True:
        msg = conn.recv()
        if msg is None or msg[0] != CUTS:
            return msg
        _, n, opts, cuts = msg
        pricer.cuts = CutPool(n, opts)
        pricer.cuts.add(list(cuts))


STALL_MARGIN_S = 30.0  # beyond the time left, how long a round waits for a worker before pricing its sizes here


class PricingPool:
    """Per-size pricing calls of a round, in this process and `workers` - 1 forked ones (1: all here)."""

    def __init__(self, pricer: Pricer, workers: int, split: bool = False):
        self.pricer = pricer
        self.split = split  # the time left is CPU time of all processes together: each busy one gets its share
        self.worker_cpu = 0.0  # CPU seconds the workers spent on their sizes (their idle waits not counted)
        self.span_cpu = 0.0  # per call, the CPU seconds of its busiest process, summed: the pricing's wall time on
        # idle cores (the rest of the CPU time runs beside it)
        self._cost: dict[tuple[str, float], float] = {}
        self._procs: list[tuple[mp.Process, object]] = []
        workers = worker_count(workers) if workers != 1 else 1
        workers = min(workers, max(1, len(pricer.data)))  # no more processes than sizes to price
        if workers > 1:
            ctx = mp.get_context("fork")
            flush_streams()
            for _ in range(workers - 1):
                mine, theirs = ctx.Pipe(duplex=True)
                proc = ctx.Process(target=_serve, args=(pricer, theirs, os.getpid()), daemon=True)
                proc.start()
                theirs.close()
                self._procs.append((proc, mine))
        log.debug("pricing pool: %d process(es)", 1 + len(self._procs))

    @property
    def workers(self) -> int:
        return 1 + len(self._procs)

    def map(self, kind: str, items: list[tuple[float, np.ndarray, float, bool]], left: float) -> dict[float, Priced]:
        """The calls `items` ((size, duals, size's dual, exact) each) of `kind`, `left` seconds of the time limit
        left on the column generation's clock; returns size -> its answer."""
        pricer = self.pricer
        bins: list[list] = [[] for _ in range(self.workers)]
        load = [0.0] * self.workers
        for it in sorted(items, key=lambda it: -self._cost.get((kind, it[0]), 1.0)):
            k = min(range(self.workers), key=lambda j: load[j])
            bins[k].append(it)
            load[k] += self._cost.get((kind, it[0]), 1.0)
        if self.split:  # (on the wall clock every process has all the time left)
            left /= max(1, sum(1 for b in bins if b))
        pricer.deadline = pricer.clock() + left
        sent = []
        for (proc, conn), mine in zip(self._procs, bins[1:]):
            if not mine:
                continue
            skips = {p: pricer._pack_skip.get(p, 0) for p, *_ in mine}
            try:
                conn.send((kind, mine, pricer.nodes, pricer.refine, left, skips))
                sent.append((conn, mine))
            except (OSError, ValueError):
                bins[0] += mine
        out = {p: price(pricer, kind, p, pi, mu, exact) for p, pi, mu, exact in bins[0]}
        spans = [sum(got.cpu_s for got in out.values())]
        failed = []
        for conn, mine in sent:
            try:  # a worker that stalls past the time left (and a margin) is treated as failed, not waited for
                msg = conn.recv() if conn.poll(max(left, 0.0) + STALL_MARGIN_S) else (
                    "error", f"no answer within the time left and {STALL_MARGIN_S:g} s", 0.0)
            except (EOFError, OSError):
                msg = ("error", "the worker ended without a result", 0.0)
            self.worker_cpu += msg[-1]
            spans.append(msg[-1])
            if msg[0] != "ok":
                log.warning("column generation: a pricing worker failed (%s); its sizes are priced here", msg[1])
                failed += mine
                continue
            for (p, *_), got in zip(mine, msg[1]):
                out[p] = got
                pricer.fallbacks += got.fallbacks
                pricer.short_refines += got.short_refines
                pricer.calls += got.calls
                pricer._pack_skip[p] = got.pack_skip
        if failed:
            self.close()
            c0 = time.process_time()
            out.update({p: price(pricer, kind, p, pi, mu, exact) for p, pi, mu, exact in failed})
            spans[0] += time.process_time() - c0
        self.span_cpu += max(spans)
        for p, got in out.items():
            self._cost[(kind, p)] = got.cpu_s
        return out

    def send_cuts(self, cuts: CutPool) -> None:
        """Give every worker the rounding cuts of `cuts` (after each separation, before the next round, so that the
        sizes priced there see the cuts' duals as this process does); if one cannot take them, the workers are
        ended and every size is priced here from then on (a worker without the cuts would overrate columns: a
        bound too high)."""
        msg = (CUTS, cuts.n, cuts.opts, tuple(cuts.cuts))
        for _, conn in self._procs:
            try:
                conn.send(msg)
            except (OSError, ValueError):
                log.warning("column generation: a pricing worker could not take the cuts; pricing here from now on")
                self.close()
                return

    def close(self) -> None:
        """End the workers (the pool prices everything here afterwards)."""
        for proc, conn in self._procs:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            conn.close()
            proc.join(5)
            if proc.is_alive():  # (SIGKILL: a stopped worker would hold SIGTERM pending and the join forever)
                proc.kill()
                proc.join()
        self._procs = []


__all__ = ["CUTS", "KINDS", "PARALLEL_FROM", "Priced", "PricingPool", "price"]
