"""experiments.adapt_frontier's grids: --quick runs the baselines and the adaptive default only (its knob sweep,
six adaptive points per window, made the quick grid take over 20 minutes), and explicit policies are kept."""

from __future__ import annotations

from experiments.adapt_frontier import POLICIES, grid_points, parse
from experiments.common import current_runner, set_runner


def test_quick_grid_has_the_baselines_and_the_adaptive_default_only():
    runner = current_runner()
    try:
        quick = grid_points(parse(["--quick"]))
        assert {p["offset"] for p in quick} == {0, 8, 16, 24} and {p["hours"] for p in quick} == {2.0}
        policies = {p["policy"] for p in quick}
        assert "adaptive" in policies and not any(p.startswith("adaptive[") for p in policies)
        assert policies == {p for p in POLICIES if not p.startswith("adaptive[")}
        chosen = grid_points(parse(["--quick", "--policies", "adaptive[headroom=1.1]"]))
        assert {p["policy"] for p in chosen} == {"adaptive[headroom=1.1]"}
        full = grid_points(parse([]))
        assert {p["policy"] for p in full} == set(POLICIES) and len({p["offset"] for p in full}) == 20
    finally:
        set_runner(runner)
