"""Typed options of the heuristic, read from `SolveOptions.params` (`--param key=value` on the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from stsched.errors import InputError
from stsched.registry import parse_options
from stsched.validate import MAX_THREADS, check_int


@dataclass(frozen=True)
class HeuristicOptions:
    """Every tunable of the heuristic; the defaults are the ones the experiments report.

    Spatial step
      knee_tolerance: a partition size is "at the knee" of a service while its throughput per unit of capacity is
        within this fraction of the service's best; the largest such size is the service's knee.
      max_sizes: mechanisms with more allowed sizes than this build layouts only from the services' knees, their
        complements and the whole GPU ("layouts from few sizes").
      max_layout_partitions: cap on the partitions per enumerated layout (the mechanism's own cap applies too).
    Temporal step
      share_candidates: services tried as extra tenants of a partition that a primary tenant leaves unsaturated.
      fill_branching: services tried alone per partition.
      share_sets: the best services at a partition's size whose tenant sets (2 .. max_tenants of them) are tried
        as shared partitions serving them in proportion to their remaining demand.
      fill_combinations: cap on the option evaluations of the depth-first joint choice of a layout's partition
        contents (its first leaf is the greedy choice).
      fill_layouts: layouts filled completely (temporal step included) per GPU, the best by their chosen contents.
    Local search
      search_rounds: rounds of the bounded local search (each tries move, merge, resize, swap).
      search_starts: constructions (the best by GPU count) that the local search improves.
      merge_group: the most GPUs rebuilt together by the merge move (k GPUs into k - 1).
      merge_tries: the most GPU groups tried by the merge move per round.
      descent_rounds: rounds of the coordinate descent on partition contents that closes the deficit a removed
        GPU leaves (each partition in turn takes the content that covers most of what is still missing);
        0 disables it.
      descent_pool: services (those missing most) whose pairs are tried in one descent step.
      descent_triples: the first of those whose triples are tried too.
      descent_bank: up to this many services, every pair of them is tried (stacked once per size), beyond it
        only the pairs of the descent_pool.
      descent_branching: contents of the first partition tried in a two-partition move (0: no such moves).
      descent_kicks: breakout steps when the descent stalls: the services still missing load weigh
        (1 + descent_reweight) times more, and the descent resumes.
      descent_reweight: the extra weight of the services still missing load at each breakout step.
      descent_patience: breakout steps in a row without a smaller deficit before the descent gives up.
      descent_budget: best-response evaluations one descent may spend per partition it starts from (bounds its
        time deterministically).
      restarts: extra greedy constructions with seeded random tie-breaking; the best plan is kept.
      load_probes: comma-separated factors f > 1; when the local search ends above the LP bound, the greedy
        construction runs again for f x the demand and a plan on fewer GPUs is scaled back down to the demand (the
        greedy's choices depend on the load, so a little more load can lead to a tighter structure: without the
        probes min-gpus was not monotone in the load on the H100 SM data); empty: none.
    Max-scale
      scale_iterations: bisection steps on alpha with the construction alone (stops earlier at
        SolveOptions.max_scale_tol).
      scale_search_steps: further bisection steps where the local search may also remove the GPUs in excess, and
        as many again where the coordinate descent re-chooses the best plan's contents and layouts.
      scale_descent_budget: best-response evaluations per partition of each such descent (0: none).
      scale_full_search: the search steps bisect again up to the LP bound (a construction that failed proves
        nothing) and use the full packer with its coordinate descent, as min-gpus does: closer to the optimum, at
        several times the time (heuristic_eval section poisson).
    Constructions and effort
      constructions: the constructions `pack` tries, in order, comma separated: greedy (GPU by GPU), cover
        (cover-then-pack), balanced (the greedy aimed at the target GPU count), second / third (the greedy
        started from the first GPU's second / third best layout), whole (cover-then-pack with whole GPUs for the
        saturated loads; tried only with a neighbour-dependent interference form, where a GPU with one partition
        meets no slowdown).
      effort: "full", "fast", or "auto" (= fast for more than fast_above services): the fast profile builds with
        the greedy alone, fewer contents per partition and a shorter search (the online setting of the speed
        target, 64 services on 32 GPUs).
      fast_above: the service count above which "auto" means fast.
    Scale (instances of more than scale_above services, effort auto or fast)
      scale_above: the service count above which the scale settings below apply, and the fast profile builds
        with cover-then-pack or the greedy, whichever needs fewer GPUs on a pilot of the first 256 services
        (`scale.choose_construction`).
      pool: each GPU of a construction chooses among a pool of this many services only (the first ones, in
        index order, with demand left, refilled as they are served), so that building a GPU costs the same at
        any instance size; 0: every service.
      scale_probes: max-scale: the constructions the root search on the GPU count may spend (`scale.py`; a work
        limit, it stops earlier at SolveOptions.max_scale_tol); the bisection, local search and raise steps of
        smaller instances are not run.
      residual_block: cover-then-pack's best fit of the residual loads runs in blocks of this many services
        (index order), each block's residuals sharing partitions among themselves only, on instances of more
        than 2 x residual_block services (up to that, one block); 0: one block.
      repack_budget: after the best fit of a block, its residual partitions are emptied into each other's slack
        where they can be, least efficient first (`residual.repack`), with at most this many head-room
        evaluations per residual partition (a work limit); 0: no repacking.
      whole_groups: on MIG, cover-then-pack gives a service whose knee partitions leave slices idle among
        themselves (two 3g slices of an A100 leave the seventh) whole GPUs first, wherever a whole GPU serves at
        least what those partitions serve on one GPU (`ctp._idle_groups`); false: knee partitions only.
      size_mix: at scale on MIG without interference, cover-then-pack re-cuts every service's single-tenant load
        into partitions and chooses the GPUs' layouts together with them (shared partitions keep their sizes), by a
        pattern LP and a small integer program (`mix.py`), so that few slices stay idle; its plan is kept where it
        needs fewer GPUs than the partitions as they were; false: first fit decreasing of the partitions as they
        are (`slots.place_mig`).
      workers: processes that build cover-then-pack's residual blocks not yet built (`parallel.py`: this one
        and workers - 1 forked copies; the plan is the same for every count): 0 = automatic (2 where the process
        may use two CPUs or more, else 1), 1 = none forked.
      scale_close: the root search also stops at a construction that fits with at most this share of the GPUs
        idle (it needs at least (1 - scale_close) G GPUs), and its probes aim one GPU below G: N(alpha) of a
        construction is noisy by a few GPUs near G, so further probes mostly buy nothing (`scale.py`); 0: only
        the bracket rule, probes aimed at G + 0.5 (the behaviour before).
      layout_shortlist: the greedy chooses the contents of only this many layouts per GPU, those whose
        partitions' best options (each partition on its own) serve the most work, instead of every layout whose
        bound competes (0: every one).  The bounds of MIG's twelve A100 layouts are all about a whole GPU, so
        without it nearly every layout's contents were searched for every GPU.
    Adapt
      adapt_resolve: when absorbing fails, also solve from scratch and keep that plan if it changes fewer layouts.
    """

    knee_tolerance: float = 0.05
    max_sizes: int = 8
    max_layout_partitions: int = 10
    share_candidates: int = 8
    fill_branching: int = 3
    share_sets: int = 3
    fill_combinations: int = 64
    fill_layouts: int = 4
    search_rounds: int = 3
    search_starts: int = 2
    merge_group: int = 3
    merge_tries: int = 12
    descent_rounds: int = 40
    descent_pool: int = 6
    descent_triples: int = 4
    descent_kicks: int = 40
    descent_reweight: float = 0.5
    descent_patience: int = 24
    descent_budget: int = 1000
    descent_bank: int = 24
    descent_branching: int = 3
    restarts: int = 1
    load_probes: str = "1.05,1.1,1.2"
    scale_iterations: int = 20
    scale_search_steps: int = 8
    scale_descent_budget: int = 300
    scale_full_search: bool = False
    constructions: str = "greedy,cover,balanced,second,third,whole"
    effort: str = "auto"
    fast_above: int = 32
    scale_above: int = 128
    pool: int = 64
    scale_probes: int = 8
    residual_block: int = 128
    repack_budget: int = 32
    layout_shortlist: int = 4
    scale_close: float = 0.008
    whole_groups: bool = True
    size_mix: bool = True
    workers: int = 0
    adapt_resolve: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.knee_tolerance < 1:
            raise InputError(f"heuristic: knee_tolerance must lie in [0, 1), got {self.knee_tolerance}")
        for name in ("max_sizes", "max_layout_partitions", "share_candidates", "fill_branching", "share_sets",
                     "search_starts",
                     "descent_pool", "descent_triples", "descent_bank", "scale_probes",
                     "fill_combinations", "fill_layouts", "scale_iterations"):
            if getattr(self, name) < 1:
                raise InputError(f"heuristic: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("search_rounds", "merge_tries", "restarts", "scale_search_steps", "scale_descent_budget",
                     "descent_rounds", "descent_kicks", "descent_branching", "descent_budget",
                     "descent_patience", "pool", "scale_above", "residual_block", "repack_budget",
                     "layout_shortlist"):
            if getattr(self, name) < 0:
                raise InputError(f"heuristic: {name} must be >= 0, got {getattr(self, name)}")
        check_int(self.workers, "heuristic: workers", minimum=0, maximum=MAX_THREADS)
        if not 0 <= self.scale_close < 1:
            raise InputError(f"heuristic: scale_close must lie in [0, 1), got {self.scale_close}")
        if self.merge_group < 2:
            raise InputError(f"heuristic: merge_group must be >= 2, got {self.merge_group}")
        if self.effort not in ("auto", "full", "fast"):
            raise InputError(f"heuristic: effort must be auto, full or fast, got {self.effort!r}")
        try:
            probes = self.probe_factors()
        except ValueError:
            probes = [0.0]
        if any(not f > 1.0 for f in probes):
            raise InputError(f"heuristic: load_probes must be factors > 1 separated by commas, got {self.load_probes!r}")
        bad = [c for c in self.construction_list()
               if c not in ("greedy", "cover", "balanced", "second", "third", "whole")]
        if bad or not self.construction_list():
            raise InputError("heuristic: constructions must name greedy, cover, balanced, second, third or whole, "
                             f"got {self.constructions!r}")

    def probe_factors(self) -> list[float]:
        return [float(f) for f in self.load_probes.split(",") if f.strip()]

    def construction_list(self) -> list[str]:
        return [c.strip() for c in self.constructions.split(",") if c.strip()]

    def effective(self, services: int) -> "HeuristicOptions":
        """The options in force for an instance of `services` services (the fast profile when effort says so)."""
        if self.effort == "full" or (self.effort == "auto" and services <= self.fast_above):
            return self
        fast = dict(restarts=0, share_sets=1, fill_layouts=1, fill_combinations=8, search_rounds=1, search_starts=1,
                    merge_group=2,
                    merge_tries=1, descent_budget=0, scale_descent_budget=0)
        large = self.at_scale(services)  # scale: the better of the two on a pilot (`scale.choose_construction`)
        return replace(self, constructions="cover,greedy" if large else "greedy", effort="fast", load_probes="",
                       **{k: min(v, getattr(self, k)) for k, v in fast.items()})

    def at_scale(self, services: int) -> bool:
        """Whether the scale settings apply to an instance of `services` services (effort auto or fast, more than
        `scale_above` services)."""
        return self.effort != "full" and services > self.scale_above

    def shortlist_for(self, services: int) -> int:
        """The greedy's layout shortlist on an instance of `services` services (0: every layout)."""
        return self.layout_shortlist if self.at_scale(services) else 0

    def pool_for(self, services: int) -> int:
        """The construction's pool size on an instance of `services` services (0: every service)."""
        if not self.at_scale(services) or self.pool >= services:
            return 0
        return self.pool

    @classmethod
    def from_params(cls, params: tuple[tuple[str, str], ...] | dict[str, str]) -> "HeuristicOptions":
        """Options from `SolveOptions.params`; unknown keys are an error (a typo must not pass silently)."""
        return parse_options(cls, params, "heuristic")
