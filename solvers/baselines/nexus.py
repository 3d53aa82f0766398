"""Nexus's squishy bin packing (Shen et al., "Nexus: A GPU Cluster Engine for Accelerating DNN-Based Video
Analysis", SOSP'19, Section 6.1 and Algorithm 1), re-implemented from the paper: temporal sharing of whole GPUs.

1. Saturated GPUs.  A service's largest batch B whose execution meets the one-cycle rule (2 l(B) <= SLO) gives the
   throughput T = B / l(B) of one GPU running it back to back; the service gets floor(rate / T) such GPUs.
2. Residual load r.  Its node runs the largest batch b with l(b) + b / r <= SLO (the batch is collected over the
   duty cycle d = b / r, then executes), with occupancy l(b) / d.
3. Merging.  Residual nodes are taken in decreasing occupancy; each is merged into the existing node that gives
   the highest occupancy after the merge (best fit), else it opens a GPU.  A merge keeps the smaller duty cycle d and
   re-derives every session's batch from its rate (b_k = d r_k, rounded up to an allowed batch so the rate is still
   served); it is valid when the batches fit the cycle (sum of l(b_k) <= d) and every session meets d + l(b_k) <= SLO.

Nexus has no partitions: every GPU is one whole-GPU partition (the mechanism's largest size, one process).  The
instance's own rules also apply (tenant limit per partition, memory, measured throughput where the instance
credits it): every merge is vetted by the checker's per-GPU rules.  Ties keep the earlier node.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Instance
from stsched.registry import Objective, SolveOptions, SolveResult, register

from solvers.baselines.common import (TOL, covering_batch, finish, full_size, gpu_ok, largest_batch_point,
                                      make_plan, residual_point, scale_result, solo_exec, within_time_limit)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Node:
    """A whole-GPU node: its sessions (service, batch, rate) and duty cycle."""

    tenants: tuple[tuple[str, int, float], ...]
    duty_ms: float
    busy_ms: float  # sum of the sessions' execution times

    @property
    def occupancy(self) -> float:
        return self.busy_ms / self.duty_ms

    def partition(self, size: float) -> Partition:
        return Partition(size, tuple(Tenant(s, b, r) for s, b, r in self.tenants), duty_ms=self.duty_ms)


def _merge(instance: Instance, size: float, a: Node, b: Node) -> Node | None:
    duty = min(a.duty_ms, b.duty_ms)
    tenants, busy = [], 0.0
    for svc, _, rate in a.tenants + b.tenants:
        batch = covering_batch(instance, rate, duty)
        if batch is None:
            return None
        e = solo_exec(instance, svc, batch, size)
        if e is None:
            return None
        tenants.append((svc, batch, rate))
        busy += e
    if busy > duty * (1 + TOL):
        return None
    node = Node(tuple(tenants), duty, busy)
    return node if gpu_ok(instance, GpuLayout((node.partition(size),))) else None


def nexus_nodes(instance: Instance) -> tuple[list[Node] | None, str]:
    """Squishy bin packing: the list of GPU nodes (saturated ones first), or None with the reason."""
    size = full_size(instance)
    saturated: list[Node] = []
    residual: list[Node] = []
    for s in instance.services:
        if s.rate <= 0:
            continue
        sat = largest_batch_point(instance, s.name, size)
        if sat is None:
            return None, f"{s.name}: no batch meets 2 l(b) <= SLO on a whole GPU"
        n = math.floor(s.rate / sat.capacity * (1 + TOL))
        saturated.extend(Node(((s.name, sat.batch, sat.capacity),), sat.exec_ms, sat.exec_ms) for _ in range(n))
        rest = s.rate - n * sat.capacity
        if rest <= s.rate * TOL:
            continue
        res = residual_point(instance, s.name, size, rest)
        if res is not None:
            residual.append(Node(((s.name, res.batch, rest),), res.duty_ms, res.exec_ms))
        else:  # no batch can wait for the residual rate: the residue gets a saturated node of its own
            residual.append(Node(((s.name, sat.batch, rest),), sat.exec_ms, sat.exec_ms))
    for node in saturated + residual:
        if not gpu_ok(instance, GpuLayout((node.partition(size),))):
            return None, f"node {node.tenants} breaks a per-GPU rule on its own (memory?)"
    residual.sort(key=lambda n: -n.occupancy)
    merged: list[Node] = []
    for node in residual:
        best, best_occ = None, -1.0
        for i, other in enumerate(merged):
            m = _merge(instance, size, other, node)
            if m is not None and m.occupancy > best_occ + TOL:
                best, best_occ = (i, m), m.occupancy
        if best is None:
            merged.append(node)
        else:
            merged[best[0]] = best[1]
    return saturated + merged, ""


def nexus_plan(instance: Instance) -> tuple[Plan | None, str]:
    nodes, msg = nexus_nodes(instance)
    if nodes is None:
        return None, msg
    size = full_size(instance)
    return make_plan(([n.partition(size)] for n in nodes), "nexus"), msg


@register("nexus", "baseline", "Nexus (SOSP'19): squishy bin packing, temporal sharing of whole GPUs",
          (Objective.MIN_GPUS, Objective.MAX_SCALE), late_share=False)
class Nexus:
    @within_time_limit
    def solve(self, instance: Instance, options: SolveOptions) -> SolveResult:
        def pack(inst: Instance) -> Plan | None:
            plan, _ = nexus_plan(inst)
            return plan if plan is not None and plan.gpus_used <= inst.gpus else None

        if options.objective is Objective.MAX_SCALE:
            return scale_result("nexus", instance, pack, options)
        plan, msg = nexus_plan(instance)
        return finish("nexus", instance, plan, options, msg)
