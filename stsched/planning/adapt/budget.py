"""A change budget for the adaptive policy: a shadow of full re-partitioning, tracked online.

Full re-partitioning (a min-gpus plan from scratch at every decision, aligned onto the old GPU indices) is what the
adaptive policy is measured against: its GPU-hours are the saving to capture, its layout reconfigurations the count
to undercut.  `ShadowFull` replays it beside the policy, from the same initial plan and at the same decisions, on
plans from scratch the policy asks for anyway (`stsched.planning.adapt.compaction`, memoised per rates), and counts
its layout changes (`stsched.plan.layout_changes`, the one measure).  With `change_budget` b the policy may spend,
on compactions (giving back GPUs), layout changes while its own count stays within b times the shadow's so far:
such a compaction is bought at the lower rent `budget_rent` per change instead of `compact_rent`.  On a calm window
the shadow changes little, so the budget stays small; on a volatile one it grows with the changes that full
re-partitioning pays to follow the rates, and the policy captures more of the saving while it stays a fraction of
them.  Only the past is used: the shadow is at the decision the policy is at.
"""

from __future__ import annotations

from dataclasses import dataclass

from stsched.plan import Plan, layout_changes
from stsched.reconfig import align


@dataclass
class ShadowFull:
    """Full re-partitioning's plan in force and its layout changes so far, next to the policy's own count."""

    plan: Plan | None = None
    changes: int = 0
    own: int = 0

    def start(self, plan: Plan) -> None:
        """Both begin with the same initial deployment (not counted)."""
        self.plan, self.changes, self.own = plan, 0, 0

    def step(self, fresh: Plan | None) -> None:
        """One decision of full re-partitioning: `fresh` (its plan from scratch for the rates) aligned onto its
        plan in force; without a plan from scratch it keeps its plan (as the controller does)."""
        if self.plan is None or fresh is None:
            return
        new = align(self.plan, fresh)
        self.changes += layout_changes(self.plan, new)
        self.plan = new

    def spent(self, current: Plan, plan: Plan) -> None:
        """The policy's own decision from `current` to `plan`."""
        self.own += layout_changes(current, plan)

    def fits(self, budget: float, more: int) -> bool:
        """Whether `more` changes keep the policy within `budget` x the shadow's changes."""
        return self.own + more <= budget * self.changes + 1e-9
