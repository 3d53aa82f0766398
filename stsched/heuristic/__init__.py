"""stsched's own spatial-temporal scheduling heuristic (docs/HEURISTIC.md).

Public API:
- the registered solver "heuristic" (objectives min-gpus, max-scale, adapt), via `stsched.registry.run_solver`;
- `HeuristicOptions`: its typed options (`SolveOptions.params`, `--param key=value`);
- `adapt(instance, current_plan, options) -> Plan`: re-plan for new rates changing few layouts;
"""

from stsched.heuristic.adapt import adapt
from stsched.heuristic.options import HeuristicOptions
from stsched.heuristic.solver import HeuristicSolver

__all__ = ["HeuristicOptions", "HeuristicSolver", "adapt"]
