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

The pilot that chooses the construction (`choose_construction`) also gives the first probe: the chosen
construction's GPUs for the pilot's services, scaled by the work (requests / best efficiency) of all services
against the pilot's, estimate N at the pilot's alpha, and the proportional model aims the first probe at G from
there (`first_alpha`); where the pilot holds every service, it is the first probe itself.  The search also stops
when the bracket is narrower than what two GPUs serve (2 alpha / G): N(alpha) of a construction is not
monotone at that resolution (at 1,024 MIG services, seed 8, the greedy needed 508 GPUs at alpha 1.4955, 514 at
1.4999 and 510 at 1.4980), so a narrower bracket buys nothing but probes.

For the same reason the search stops at the first construction that fits with few GPUs idle (at least
(1 - `HeuristicOptions.scale_close`) G in use), and every probe aims at G - 1 (`aim`) rather than between G and
G + 1: a probe aimed just below G fits more often, and one that fits that close to G is as near the crossing as
N's noise lets the search tell.  In a simulation of the search with N = slope x alpha + Gaussian noise of 1.5-3.5
GPUs at G = 512 and a first probe off by 3 GPUs (the rule was chosen there, not on instances), this takes 1.6-2.2
probes on average instead of 3.4-3.8, for an alpha 0.3 % lower.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from stsched.heuristic.model import Context, TimeUp
from stsched.heuristic.state import WGpu

log = logging.getLogger(__name__)

FIRST_PROBE = 0.85  # the first probe, as a fraction of the LP bound (greedy plans reach 0.85-0.9 of it at scale)
KEEP_OUT = 0.25  # an interpolated probe stays this share of the bracket away from its ends
SPAN = 2.0  # N's resolution in GPUs: a one-sided probe moves at least SPAN GPUs' share of alpha (SPAN / G),
# and the search stops when the bracket is that narrow
REPAIR = 2  # `search_scale`: a construction at most this many GPUs over G is repaired before the next probe
BELOW = 1.0  # with `scale_close`: probes aim this many GPUs below G


def aim(ctx: Context) -> float:
    """The GPU count the probes aim at: G - BELOW with `scale_close`, else between G (fits) and G + 1."""
    g = ctx.instance.gpus
    return g - BELOW if ctx.opts.scale_close > 0 else g + 0.5


def close_enough(ctx: Context, fitted: Probe) -> bool:
    """Whether a probe that fits leaves at most `scale_close` of the GPUs idle (the search may stop there)."""
    close = ctx.opts.scale_close
    return close > 0 and fitted.gpus >= ctx.instance.gpus * (1 - close)


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


def next_alpha(lo: Probe | None, hi: Probe | None, last: Probe, target: float, upper: float, tol: float,
               step: float = 0.0) -> float:
    """The next alpha to try (`lo` fitted, `hi` did not, `upper` bounds alpha from above): until both ends of
    the bracket are known, the proportional model from the last probe, at least a relative step of max(`tol`,
    `step`) beyond the known end (a probe that needed exactly G GPUs would otherwise creep up by `tol`); then
    regula falsi between them, kept KEEP_OUT of the bracket's width away from its ends so that the bracket
    shrinks geometrically whatever the steps of N."""
    tol = max(tol, step)
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


Repair = Callable[[list[WGpu]], "list[WGpu] | None"]  # a construction a GPU or two over G -> one on G, or None


def search_scale(ctx: Context, build: Build, base: np.ndarray, upper: float, deadline: float,
                 tol: float, first: float | None = None,
                 known: tuple[Probe, list[WGpu] | None] | None = None,
                 repair: Repair | None = None) -> tuple[float, list[WGpu] | None, int]:
    """The largest alpha found whose construction (`build`) fits the instance's GPUs, its GPUs, and the probes
    spent.  `first`: the first alpha to probe (default FIRST_PROBE x `upper`); `known`: a probe already built
    (the pilot, where it held every service), taken as the first one without a construction; `repair`: tried
    on a construction that needs at most REPAIR GPUs more than G (emptying its lightest GPUs into the others'
    slack): where it brings the construction onto G GPUs, the probe fits without another construction."""
    g = ctx.instance.gpus
    target = aim(ctx)
    lo: Probe | None = None
    hi: Probe | None = None
    best: list[WGpu] | None = None
    alpha = FIRST_PROBE * upper if first is None else min(max(first, 0.0), upper)
    spent = 0
    pending = known
    while spent < ctx.opts.scale_probes and time.perf_counter() <= deadline:
        if pending is not None:
            (p, gpus), pending = pending, None
        else:
            try:
                p, gpus = probe(build, alpha, base)
            except TimeUp:
                break
            spent += 1
        log.debug("heuristic scale search: alpha %.5f needs %s GPUs of %d", p.alpha, p.gpus, g)
        if repair is not None and gpus is not None and g < p.gpus <= g + REPAIR:
            fixed = repair(gpus)
            if fixed is not None and len(fixed) <= g:
                log.debug("heuristic scale search: repaired onto %d GPUs", len(fixed))
                p, gpus = Probe(p.alpha, float(len(fixed))), fixed
        if p.gpus <= g:
            if lo is None or p.alpha > lo.alpha:
                lo, best = p, gpus
        elif hi is None or p.alpha < hi.alpha:
            hi = p
        a_lo = lo.alpha if lo is not None else 0.0
        a_hi = hi.alpha if hi is not None else upper
        if lo is not None and a_hi - a_lo <= max(tol * a_hi, SPAN * a_lo / max(g, 1)):
            break  # converged, or the bracket is within SPAN GPUs' share of alpha (N's resolution there)
        if lo is not None and (lo.alpha >= upper * (1 - tol) or close_enough(ctx, lo)):
            break
        alpha = next_alpha(lo, hi, p, target, upper, tol, step=SPAN / max(g, 1))
    return (lo.alpha if lo is not None else 0.0), best, spent


def work(ctx: Context, demand: np.ndarray) -> float:
    """The demand's work in capacity units at every service's best efficiency (the LP's measure)."""
    ok = ctx.eff > 0
    return float(np.sum(demand[ok] / ctx.eff[ok]))


def first_alpha(pilot: "Pilot", alpha: float, base: np.ndarray, ctx: Context) -> float:
    """The first probe of the root search from the pilot built at `alpha` x `base` on its services: the pilot's
    GPUs scaled by the work of all services against the pilot's estimate N(alpha), and the proportional model
    aims at `aim` (G - 1, or G + 0.5 without `scale_close`) from there."""
    share = pilot.work / work(ctx, alpha * base) if pilot.work > 0 else 0.0
    if not math.isfinite(pilot.gpus) or pilot.gpus <= 0 or share <= 0:
        return alpha  # no estimate: the pilot's own alpha
    return alpha * aim(ctx) * share / pilot.gpus


PILOT = 256  # services of the pilot that chooses the construction at scale


@dataclass(frozen=True)
class Pilot:
    """The pilot of `choose_construction`: the construction chosen, the GPUs it needed for the pilot's services
    (inf: some demand could not be placed), their work, whether they are every service with demand, and the
    chosen construction's GPUs (for a pilot of every service: a probe already built)."""

    name: str
    gpus: float
    work: float
    complete: bool
    built: list[WGpu] | None = field(default=None, compare=False, repr=False)


def choose_construction(ctx: Context,
                        build: Callable[[str, np.ndarray, int | None], tuple[list[WGpu], np.ndarray]],
                        demand: np.ndarray) -> tuple[Context, Pilot | None]:
    """On a large instance whose `constructions` name several, the context with only the one that needs the
    fewest GPUs on a pilot: the demand of the first PILOT servable services (index order, zero elsewhere); ties
    go to the first named.  Cover-then-pack packs the A100 MPS instances tighter, the greedy the MIG ones
    (section "At scale" of docs/HEURISTIC.md); the pilot decides per instance at a fraction of the cost.
    A construction after the first is built with a GPU limit one below the best so far (`build`'s third
    argument; None for the first), which it may stop at as soon as it cannot end below it (`construct`'s
    `hopeless`): only a strictly better one is chosen, so the choice is the same as without the limit.
    Returns the context and the pilot's outcome (None when only one construction is named: no pilot ran)."""
    names = ctx.opts.construction_list()
    if len(names) < 2:
        return ctx, None
    pilot = np.zeros_like(demand)
    chosen = ctx.servable[:PILOT]
    pilot[chosen] = demand[chosen]
    complete = len(chosen) == len(ctx.servable)
    best: tuple[float, str, list[WGpu] | None] | None = None
    for name in names:
        most = None if best is None or not math.isfinite(best[0]) else int(best[0]) - 1
        gpus, rem = build(name, pilot, most)
        n = math.inf if np.any(rem > 0) else len(gpus)
        log.debug("heuristic pilot: %s needs %s GPUs for the first %d services", name, n, len(chosen))
        if best is None or n < best[0]:
            best = (n, name, gpus if math.isfinite(n) else None)
    out = Pilot(best[1], float(best[0]), work(ctx, pilot), complete, best[2])
    return replace(ctx, opts=replace(ctx.opts, constructions=best[1])), out
