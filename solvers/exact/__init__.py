"""The exact solvers: MILP (PuLP with CBC or HiGHS), CP-SAT (OR-Tools) and brute-force enumeration, built from one
set of partition configurations and GPU layouts (`patterns`), one driver (`driver`) and one plan assembly (`plans`).
Each registers itself with `stsched.registry.register`; the registry finds them through the `stsched.solvers`
entry-point group (pyproject.toml)."""
