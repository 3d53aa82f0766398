"""Legal GPU layouts: which multisets of partition sizes one GPU can hold under the instance's mechanism.

MIG: the placements of NVIDIA's slice table (`stsched.checker.find_mig_starts`); MPS / SM: sizes summing to at most
the capacity; either way at most `max_partitions`.  Legality is closed under removing a partition, which makes the
enumeration below exact with pruning.  Every solver, baseline and bound asks here rather than re-deriving it.
"""

from __future__ import annotations

from typing import Sequence

from stsched.checker import find_mig_starts, tolerant_limit
from stsched.errors import TooLarge
from stsched.plan import Partition
from stsched.problem import Instance, MechanismKind


def fits(value: float, limit: float) -> bool:
    """The checker's comparison (value <= limit up to its relative tolerance)."""
    return not value > tolerant_limit(limit)


def duty_room(exec_ms, budget_ms):
    """The longest duty cycle d at which a tenant of execution time `exec_ms` meets its SLO `budget_ms` by the
    checker's comparison (d + e <= budget (1 + REL_TOL) + 1e-9, `fits`); numpy arrays too.  Every tenant-set test
    compares a duty with it (the tolerance applied to the slack budget - e instead was stricter by e x 1e-6, so sets
    on that edge were left out: `solvers.exact.patterns.grow`, the pricing's bounds)."""
    return tolerant_limit(budget_ms) - exec_ms


def mig_starts(instance: Instance, sizes: Sequence[float]) -> tuple[int, ...] | None:
    """Start slots of a legal MIG placement of these slice sizes, or None."""
    return find_mig_starts(instance.mechanism.placements, tuple(Partition(s, ()) for s in sizes))


def legal_layout(instance: Instance, sizes: Sequence[float]) -> bool:
    """Can one GPU hold partitions of these sizes at once?"""
    mech = instance.mechanism
    if mech.max_partitions is not None and len(sizes) > mech.max_partitions:
        return False
    if mech.kind is MechanismKind.MIG:
        return mig_starts(instance, sizes) is not None
    return fits(sum(sizes), mech.capacity)


def enumerate_layouts(instance: Instance, maximal: bool, limit: int) -> list[tuple[float, ...]]:
    """Legal layouts as non-increasing size tuples (only the inclusion-maximal ones when `maximal`); raises
    `TooLarge` past `limit` layouts."""
    sizes = sorted(instance.mechanism.sizes, reverse=True)
    out: list[tuple[float, ...]] = []

    def rec(prefix: tuple[float, ...], start: int) -> None:
        if prefix:
            out.append(prefix)
            if len(out) > limit:
                raise TooLarge(f"more than {limit} layouts")
        for i in range(start, len(sizes)):
            cand = prefix + (sizes[i],)
            if legal_layout(instance, cand):  # legality is closed under removal, so pruning here is exact
                rec(cand, i)

    rec((), 0)
    if maximal:
        out = [L for L in out if not any(legal_layout(instance, tuple(sorted(L + (s,), reverse=True))) for s in sizes)]
    return out
