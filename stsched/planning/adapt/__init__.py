"""Adaptive re-planning over time-varying rates, with reconfiguration cost (docs/SIMULATOR.md).

    from stsched.planning.adapt import AdaptOptions, run_adapt
    result = run_adapt(instance, AdaptOptions(trace="azure-functions-2019", policy="adaptive", epoch_s=600))
    result.reconfigurations, result.downtime_s, result.gpu_hours, result.slo_attainment
"""

from stsched.planning.adapt.controller import AdaptOptions, AdaptResult, EpochRow, run_adapt
from stsched.plan import changed_gpus, gpu_layout, layout_changes, tenant_changes
from stsched.reconfig import ReconfigCosts, Transition, align, keep_tenants, standby_fits, transition
from stsched.planning.adapt.rebalance import rebalance, retenant, tenant_capacities
from stsched.planning.adapt.estimate import RateEstimator
from stsched.planning.adapt.policies import POLICIES, Adaptive, FullRepartition, PolicyOptions, StaticPeak, make_policy

__all__ = [
    "AdaptOptions", "AdaptResult", "Adaptive", "EpochRow", "FullRepartition", "POLICIES", "PolicyOptions",
    "RateEstimator", "ReconfigCosts", "StaticPeak", "Transition", "align", "changed_gpus", "gpu_layout", "keep_tenants",
    "layout_changes", "make_policy", "rebalance", "retenant", "run_adapt", "standby_fits", "tenant_capacities",
    "tenant_changes", "transition",
]
