"""Packing partitions onto MIG GPUs (cover-then-pack's layout step, `ctp._place`, on a MIG mechanism).

On MIG a GPU's slices must sit at legal starts, so some multisets of sizes are dead ends: on an A100, two 3g slices
(3, 3) leave one slice free that no legal layout can use (there is no (3, 3, 1)).  A plain first-fit-decreasing
places the 3g partitions of cover-then-pack two by two and wasted a seventh of 161 of 378 GPUs on 1,024 random
services (seed 3), while the GPU-by-GPU greedy combined 3g with 2g and 1g partitions.  Here:

1. `waste(L)` = the capacity that no legal layout containing the sizes L can ever use (capacity minus the largest
   size sum of a legal superset of L; legality is the checker's, `stsched.layouts.legal_layout`);
2. first pass (partitions largest first): each partition goes to the first GPU where it is legal **and adds no
   waste**, else onto a new GPU;
3. second pass: a GPU left holding one partition of at most half the capacity moves it to the first other GPU
   where it is legal at all (two lone 3g slices end up as (3, 3) as before, only when no smaller partition was
   left to complete them).

Both passes find "the first GPU where size s may join" through one segment tree per size and rule (`FirstFit` over
0/1 values: the GPU's layout takes s or not), updated for the sizes once per placement, so a placement costs
O(sizes x log G) instead of a scan over GPUs whose free capacity looks large enough but whose slots are not.
"""

from __future__ import annotations

from stsched import layouts
from stsched.heuristic.index import FirstFit
from stsched.heuristic.model import Context
from stsched.heuristic.state import WGpu, WPart, refit_gpu

Sizes = tuple[float, ...]


def _key(sizes) -> Sizes:
    return tuple(sorted(sizes, reverse=True))


def legal(ctx: Context, sizes: Sizes) -> bool:
    """Whether one GPU can hold partitions of these sizes (the checker's rule), cached per instance."""
    key = ("slots-legal", sizes)
    hit = ctx.suffix_cache.get(key)
    if hit is None:
        hit = ctx.suffix_cache[key] = layouts.legal_layout(ctx.instance, sizes)
    return hit


def reach(ctx: Context, sizes: Sizes) -> float:
    """The largest size sum of a legal layout containing `sizes` (which must be legal); legality is closed under
    removal, so adding one size at a time reaches every legal superset."""
    key = ("slots-reach", sizes)
    hit = ctx.suffix_cache.get(key)
    if hit is None:
        best = float(sum(sizes))
        for s in ctx.sizes:
            more = _key(sizes + (s,))
            if legal(ctx, more):
                best = max(best, reach(ctx, more))
        hit = ctx.suffix_cache[key] = best
    return hit


def waste(ctx: Context, sizes: Sizes) -> float:
    """Capacity of a GPU with partitions of `sizes` that no legal layout can use."""
    return ctx.capacity - reach(ctx, sizes)


def joins(ctx: Context, sizes: Sizes, size: float, spare: bool) -> bool:
    """Whether a partition of `size` may join a GPU with `sizes`: legal, and with `spare` adding no waste."""
    key = ("slots-joins", sizes, size, spare)
    hit = ctx.suffix_cache.get(key)
    if hit is None:
        more = _key(sizes + (size,))
        hit = legal(ctx, more) and (not spare or waste(ctx, more) <= waste(ctx, sizes) + 1e-9)
        ctx.suffix_cache[key] = hit
    return hit


class SlotIndex:
    """Per size and rule (`spare`: no waste added, or legal at all) a segment tree over the GPUs whose layout may
    take that size (value 1) or not (0): the first such GPU from index k in O(log G)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.trees = {(s, spare): FirstFit(tol=0.25) for s in ctx.sizes for spare in (True, False)}

    def append(self, sizes: Sizes) -> None:
        for (s, spare), tree in self.trees.items():
            tree.append(1.0 if joins(self.ctx, sizes, s, spare) else 0.0)

    def update(self, k: int, sizes: Sizes | None) -> None:
        """GPU k now holds `sizes` (None: it takes nothing any more)."""
        for (s, spare), tree in self.trees.items():
            tree.set(k, 1.0 if sizes is not None and joins(self.ctx, sizes, s, spare) else 0.0)

    def first(self, size: float, k: int, spare: bool) -> int | None:
        return self.trees[(size, spare)].first(k, 1.0)


def _try(ctx: Context, gpu: WGpu, part: WPart) -> bool:
    """Add `part` to `gpu` if the GPU still fits (re-fitted); otherwise leave it as it was."""
    gpu.parts.append(part)
    if refit_gpu(ctx, gpu):
        return True
    gpu.parts.pop()
    refit_gpu(ctx, gpu)
    return False


def place_mig(ctx: Context, parts: list[WPart]) -> list[WGpu]:
    """Partitions (no start given) onto MIG GPUs: first fit decreasing without adding waste, then lone small
    partitions moved next to others (module docstring)."""
    gpus: list[WGpu] = []
    index = SlotIndex(ctx)
    for part in sorted(parts, key=lambda p: (-p.size, -sum(r for _, r in p.tenants))):
        ctx.tick()
        k = index.first(part.size, 0, spare=True)
        while k is not None and not _try(ctx, gpus[k], part):
            k = index.first(part.size, k + 1, spare=True)
        if k is None:
            g = WGpu([part])
            if not refit_gpu(ctx, g):
                raise RuntimeError("a partition that was fitted alone does not fit alone")
            gpus.append(g)
            index.append(g.sizes())
        else:
            index.update(k, gpus[k].sizes())
    for k, g in enumerate(gpus):  # lone small partitions join others even where that leaves slices unusable
        if len(g.parts) != 1 or 2 * g.parts[0].size > ctx.capacity:
            continue
        ctx.tick()
        part = g.parts[0]
        index.update(k, None)  # not a destination while its partition moves
        j = index.first(part.size, 0, spare=False)
        while j is not None and (j == k or not _try(ctx, gpus[j], part)):
            j = index.first(part.size, j + 1, spare=False)
        if j is None:
            index.update(k, g.sizes())
            continue
        g.parts = []
        index.update(j, gpus[j].sizes())
    return [g for g in gpus if g.parts]
