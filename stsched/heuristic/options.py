"""Typed options of the heuristic, read from `SolveOptions.params` (`--param key=value` on the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from stsched.errors import InputError


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
      fill_branching: primary services tried per partition when a layout is filled (exhaustive up to
        fill_combinations assignments, greedy beyond).
      fill_combinations: cap on the primary assignments tried per layout.
      interference_topk: layouts re-evaluated with the interference form before one is chosen (forms other than
        "none" only).
    Local search
      search_rounds: rounds of the bounded local search (each tries move, merge, resize, swap).
      merge_group: the most GPUs rebuilt together by the merge move (k GPUs into k - 1).
      merge_tries: the most GPU groups tried by the merge move per round.
      restarts: extra greedy constructions with seeded random tie-breaking; the best plan is kept.
    Max-scale
      scale_iterations: bisection steps on alpha (stops earlier at SolveOptions.max_scale_tol).
    Adapt
      adapt_resolve: when absorbing fails, also solve from scratch and keep that plan if it changes fewer layouts.
    """

    knee_tolerance: float = 0.05
    max_sizes: int = 6
    max_layout_partitions: int = 7
    share_candidates: int = 8
    fill_branching: int = 3
    fill_combinations: int = 27
    interference_topk: int = 3
    search_rounds: int = 3
    merge_group: int = 3
    merge_tries: int = 12
    restarts: int = 1
    scale_iterations: int = 20
    adapt_resolve: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.knee_tolerance < 1:
            raise InputError(f"heuristic: knee_tolerance must lie in [0, 1), got {self.knee_tolerance}")
        for name in ("max_sizes", "max_layout_partitions", "share_candidates", "fill_branching",
                     "fill_combinations", "interference_topk", "scale_iterations"):
            if getattr(self, name) < 1:
                raise InputError(f"heuristic: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("search_rounds", "merge_tries", "restarts"):
            if getattr(self, name) < 0:
                raise InputError(f"heuristic: {name} must be >= 0, got {getattr(self, name)}")
        if self.merge_group < 2:
            raise InputError(f"heuristic: merge_group must be >= 2, got {self.merge_group}")

    @classmethod
    def from_params(cls, params: tuple[tuple[str, str], ...] | dict[str, str]) -> "HeuristicOptions":
        """Options from `SolveOptions.params`; unknown keys are an error (a typo must not pass silently)."""
        items = dict(params)
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        for key, raw in items.items():
            if key not in known:
                raise InputError(f"heuristic: unknown parameter {key!r} (known: {', '.join(sorted(known))})")
            kind = known[key].type
            try:
                if kind in ("bool", bool):
                    if str(raw).lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError(raw)
                    values[key] = str(raw).lower() in ("1", "true", "yes")
                elif kind in ("int", int):
                    values[key] = int(raw)
                else:
                    values[key] = float(raw)
            except ValueError:
                raise InputError(f"heuristic: parameter {key}={raw!r} is not a {kind}") from None
        return replace(cls(), **values)
