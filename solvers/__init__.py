"""Exact solvers and re-implemented baselines.  Importing this package registers every solver it holds."""

import importlib
import logging

log = logging.getLogger(__name__)

# Every module registers its solvers with `stsched.solve.register` on import.
_MODULES = (
    "solvers.milp",
    "solvers.cpsat",
    "solvers.brute",
    "stsched.heuristic",
    "solvers.baselines.nexus",
    "solvers.baselines.gslice",
    "solvers.baselines.gpulet",
    "solvers.baselines.igniter",
    "solvers.baselines.parvagpu",
)

for _name in _MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _e:  # a solver module not written yet
        if not _name.startswith(_e.name or "?"):
            raise
