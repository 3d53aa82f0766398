"""stsched's own spatial-temporal scheduling heuristic (docs/HEURISTIC.md).

Public API:
- the registered solver "heuristic" (objectives min-gpus, max-scale, adapt), via `stsched.solve.run_solver`;
- `HeuristicOptions`: its typed options (`SolveOptions.params`, `--param key=value`);
- `adapt(instance, current_plan, options) -> Plan`: re-plan for new rates changing few layouts;
- `layout_changes(old_plan, new_plan) -> int`: GPUs whose layout changed, matched by GPU index.
"""

from stsched.heuristic.adapt import adapt, layout_changes
from stsched.heuristic.options import HeuristicOptions
from stsched.heuristic.solver import HeuristicSolver

__all__ = ["HeuristicOptions", "HeuristicSolver", "adapt", "layout_changes"]
