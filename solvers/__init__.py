"""Solvers of the scheduling problem, each a plugin of `stsched.registry`'s registry: `exact/` (MILP, CP-SAT, brute
force) and `baselines/` (re-implemented published schedulers).  The registry finds them through the `stsched.solvers`
entry-point group declared in pyproject.toml; importing this package registers nothing by itself."""
