"""Execute a plan on real hardware (PyTorch models from `profiler.zoo` on a `profiler.partitions` backend).

    from profiler.partitions import get_backend
    from stsched.executor import ExecOptions, execute
    result = execute(instance, plan, get_backend("cpu"), ExecOptions(duration_s=5, seed=1))
    result.summary.slo_attainment, result.summary.p99_ms, result.exec_table()

The summary is the simulator's `stsched.simulation.Summary`, computed by the same `summarize` from per-request
records, so simulated and executed runs compare field for field.  Importing this package does not import torch;
the cpu and mps backends import it only in their worker processes.
"""

from stsched.executor.run import ExecOptions, ExecResult, execute, route, spin_ms_for

__all__ = ["ExecOptions", "ExecResult", "execute", "route", "spin_ms_for"]
