"""Discrete-event simulation of a plan under Poisson, bursty or real-trace arrivals (docs/SIMULATOR.md).

    from stsched.simulation import ArrivalSpec, SimOptions, simulate
    result = simulate(instance, plan, ArrivalSpec.parse("gamma:2"), SimOptions(duration_s=600, seed=1))
    result.summary.slo_attainment, result.summary.p99_ms, result.records.to_frame()
"""

from stsched.simulation.arrivals import ArrivalSpec, generate, piecewise_poisson
from stsched.simulation.engine import PartitionOutcome, run_partition
from stsched.simulation.noise import MeasuredNoise, measured_noise
from stsched.simulation.simulator import PlanRun, SimOptions, SimResult, partition_timings, run_plan, simulate
from stsched.simulation.summary import PartitionUse, RequestRecords, ServiceSummary, Summary, summarize

__all__ = [
    "ArrivalSpec", "MeasuredNoise", "PartitionOutcome", "PartitionUse",
    "PlanRun", "RequestRecords", "ServiceSummary", "SimOptions", "SimResult", "Summary", "generate",
    "measured_noise", "partition_timings", "piecewise_poisson", 
    "run_partition", "run_plan", "simulate", "summarize",
]
