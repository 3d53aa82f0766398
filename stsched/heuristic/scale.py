"""Max-scale on large instances (more than `HeuristicOptions.scale_above` services): a root search on the GPU
count of the construction (cover-then-pack or the greedy, whichever a pilot on the first services packs tighter:
`choose_construction`) instead of a bisection.

The construction for alpha x rates, run without a GPU limit, needs N(alpha) GPUs; alpha fits when N(alpha) <= the
instance's GPUs G.  At scale N grows almost linearly in alpha (hundreds of GPUs, each one a small step), so the
alpha where N crosses G is found by interpolation: a first probe at a fraction of the LP bound, then the
proportional model alpha G / N, then regula falsi inside the bracket [largest alpha that fitted, smallest that did
not], each step kept at least a quarter of the bracket away from its ends so the bracket shrinks geometrically
whatever the steps of N.  The search stops at `SolveOptions.max_scale_tol` like the bisection, when the bracket's
ends need G and G + 1 GPUs (the resolution of N there: what is left is less than the bracket's width), or after
`HeuristicOptions.scale_probes` constructions (a work limit: the same probes and plan on any machine).  One
probe costs one construction, which is linear in the services (the blocked best fit of `ctp`, the greedy's
pool), so the whole search is too.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from stsched.heuristic.model import Context, TimeUp
from stsched.heuristic.state import WGpu

log = logging.getLogger(__name__)

FIRST_PROBE = 0.85  # the first probe, as a fraction of the LP bound (greedy plans reach 0.85-0.9 of it at scale)
KEEP_OUT = 0.25  # an interpolated probe stays this share of the bracket away from its ends


@dataclass(frozen=True)
class Probe:
    """One construction: its alpha, the GPUs it needed (inf: some demand could not be placed at all)."""

    alpha: float
    gpus: float


Build = Callable[[np.ndarray], tuple[list[WGpu], np.ndarray]]  # demand -> (GPUs, demand left unplaced)


def probe(build: Build, alpha: float, base: np.ndarray) -> tuple[Probe, list[WGpu] | None]:
    """The construction `build` for alpha x `base` with no GPU limit."""
    gpus, rem = build(alpha * base)
    if np.any(rem > 0):
        return Probe(alpha, math.inf), None
    return Probe(alpha, float(len(gpus))), gpus


def next_alpha(lo: Probe | None, hi: Probe | None, last: Probe, target: float, upper: float, tol: float) -> float:
    """The next alpha to try (`lo` fitted, `hi` did not, `upper` bounds alpha from above): until both ends of
    the bracket are known, the proportional model from the last probe (kept a step of `tol` inside the known
    end); then regula falsi between them, kept KEEP_OUT of the bracket's width away from its ends so that the
    bracket shrinks geometrically whatever the steps of N."""
    if lo is not None and hi is not None:
        width = hi.alpha - lo.alpha
        guess = lo.alpha + 0.5 * width
        if math.isfinite(hi.gpus) and hi.gpus > lo.gpus:
            guess = lo.alpha + (target - lo.gpus) * width / (hi.gpus - lo.gpus)
        return min(max(guess, lo.alpha + KEEP_OUT * width), hi.alpha - KEEP_OUT * width)
    guess = last.alpha * target / last.gpus if math.isfinite(last.gpus) and last.gpus > 0 else 0.5 * last.alpha
    if lo is not None:
        return min(max(guess, lo.alpha * (1 + tol)), upper)
    return max(min(guess, hi.alpha * (1 - tol)), 0.0)


def search_scale(ctx: Context, build: Build, base: np.ndarray, upper: float, deadline: float,
                 tol: float) -> tuple[float, list[WGpu] | None, int]:
    """The largest alpha found whose construction (`build`) fits the instance's GPUs, its GPUs, and the probes
    spent."""
    g = ctx.instance.gpus
    target = g + 0.5  # aim between G (fits) and G + 1 (does not)
    lo: Probe | None = None
    hi: Probe | None = None
    best: list[WGpu] | None = None
    alpha = FIRST_PROBE * upper
    spent = 0
    while spent < ctx.opts.scale_probes and time.perf_counter() <= deadline:
        try:
            p, gpus = probe(build, alpha, base)
        except TimeUp:
            break
        spent += 1
        log.debug("heuristic scale search: alpha %.5f needs %s GPUs of %d", alpha, p.gpus, g)
        if p.gpus <= g:
            lo, best = p, gpus
        else:
            hi = p
        a_lo = lo.alpha if lo is not None else 0.0
        a_hi = hi.alpha if hi is not None else upper
        if lo is not None and (a_hi - a_lo <= tol * a_hi or (hi is not None and hi.gpus <= lo.gpus + 1)):
            break  # converged, or the bracket's ends are one GPU apart (N's resolution at this alpha)
        if lo is not None and lo.alpha >= upper * (1 - tol):
            break
        alpha = next_alpha(lo, hi, p, target, upper, tol)
    return (lo.alpha if lo is not None else 0.0), best, spent


PILOT = 256  # services of the pilot that chooses the construction at scale


def choose_construction(ctx: Context, build: Callable[[str, np.ndarray], tuple[list[WGpu], np.ndarray]],
                        demand: np.ndarray) -> Context:
    """On a large instance whose `constructions` name several, the context with only the one that needs the
    fewest GPUs on a pilot: the demand of the first PILOT servable services (index order, zero elsewhere); ties
    go to the first named.  Cover-then-pack packs the A100 MPS instances tighter, the greedy the MIG ones
    (section "At scale" of docs/HEURISTIC.md); the pilot decides per instance at a fraction of the cost."""
    names = ctx.opts.construction_list()
    if len(names) < 2:
        return ctx
    pilot = np.zeros_like(demand)
    chosen = ctx.servable[:PILOT]
    pilot[chosen] = demand[chosen]
    best: tuple[float, str] | None = None
    for name in names:
        gpus, rem = build(name, pilot)
        n = math.inf if np.any(rem > 0) else len(gpus)
        log.debug("heuristic pilot: %s needs %s GPUs for the first %d services", name, n, len(chosen))
        if best is None or n < best[0]:
            best = (n, name)
    return replace(ctx, opts=replace(ctx.opts, constructions=best[1]))
