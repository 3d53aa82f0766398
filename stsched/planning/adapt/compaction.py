"""Compaction of the adaptive policy: paying layout changes to give back GPUs that a plan from scratch would not use.

The adaptive policy keeps layouts; the price is GPUs above what a min-gpus plan from scratch (what full
re-partitioning runs) needs for the same rates.  Two rules decide when that price has been paid long enough to
be worth some layout changes, both measured against that plan from scratch, computed once per decision:

* `compact_rent` r (ski rental): every decision that keeps the layouts while the plan from scratch needs fewer
  GPUs pays the difference as rent (GPU-decisions); a compaction that changes c layouts is bought once the rent
  reaches r x c.  The rent is paid over consecutive decisions: one with nothing spare starts it again from zero,
  or with `rent_pause` only pauses it (a need that flips between n and n + 1 GPUs pays rent on its n-GPU
  decisions until a compaction is bought); a layout change always starts it again.  Every decision counts, the
  emergency and detector decisions within an epoch too; with `rent_at_epochs` only epoch decisions pay it or start
  it again (`set_time`'s kind): one within an epoch that keeps the layouts leaves it as it is.
* `rent_gpu_h` h (the rent in GPU-hours, off by default; replaces `compact_rent`'s count when set): every decision
  pays the GPUs held above the plan from scratch times the hours since the previous decision (the controller tells
  the time, `set_time`; an emergency decision minutes after an epoch boundary pays minutes, not an epoch), the rent
  is kept through decisions with nothing spare (a need flipping between n and n + 1 GPUs does not start it again)
  and started again only by a layout change; a compaction of c changes is bought once the rent reaches h x c GPU-hours
  (ski rental on the saving: once the GPU-hours lost by keeping the spare GPUs would have paid for the changes).
  `compact_rent` 12 at 5-minute epochs prices a change at 1 GPU-hour.
* `hours_budget` e (a GPU-hours budget): the policy keeps count of its GPU-decisions and of those of the plans
  from scratch; while its own would exceed (1 + e) times theirs, it is under pressure: it buys the compaction
  freeing most GPUs at once, whatever its changes.

Switch-offs (`_switch_offs`: one GPU off, the other layouts kept, rebalanced or with `shed` their slack filled,
`stsched.planning.adapt.shed`) change one layout per GPU freed; with `off_rent` they are bought at that rent per
change, and while the rent paid is below every other compaction's price only they are tried.
Compactions (`_compactions`, each carries the reserved rates): one GPU off with the rest rebalanced, or re-fitted
by the policy's adapt objective; the adapt objective of `adapt_solver` on as many GPUs as the plan from scratch
and on one GPU fewer; the plan from scratch, aligned; a max-scale plan on that many GPUs, aligned.  Among those
bought, the one freeing most GPUs, then with the most spare capacity (a tight plan is undone by the next small
rise), then changing fewest layouts, is taken.

The same accounting ranks scale-ups (`scale_up_rank`): with `compact_rent` set and without `hours_budget`, or
under pressure, every GPU above the plan from scratch counts as `extra_gpu_changes` layout changes (default 2: its
later compaction and the rent paid until then), and rebuilding inside as many GPUs as that plan is among the
candidates; otherwise a scale-up changes as few layouts as it can (extra GPUs are cheap while the budget lasts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterator

from stsched.plan import gpu_layout, layout_changes
from stsched.reconfig import align
from stsched.planning.adapt.baselines import min_gpus_memo
from stsched.planning.adapt.budget import ShadowFull
from stsched.planning.adapt.mpc import CountValue, NeedForecast, count_values
from stsched.planning.adapt.rebalance import gpu_load, rebalance, retenant, without_gpu
from stsched.planning.adapt.reuse import LayoutCache
from stsched.planning.adapt.shed import switch_offs
from stsched.errors import InfeasibleError
from stsched.plan import Plan
from stsched.problem import Instance
from stsched.registry import Objective

log = logging.getLogger(__name__)

COMPACT_SPARE = (0.025, 0.05, 0.1, 0.2)  # spare capacity levels by which compactions are ranked
UNTIMED_DECISION_H = 300.0 / 3600.0  # `rent_gpu_h` without a clock (`set_time` never called): one 5-minute epoch
Maker = tuple[str, Callable[[Instance, Plan], Plan | None]]


@dataclass(kw_only=True)
class Compaction:
    """Mixin of `stsched.planning.adapt.policies.Adaptive` (which provides `opts`, `_adapt`, `_adapt_by`,
    `_is_local`, `_reserved`, `_solve_with`)."""

    _rent_paid: float = 0.0  # GPU-decisions held above a fresh plan, summed over consecutive decisions
    _rent_due: float = 0.0  # rent at which the cheapest compaction seen would be bought
    _own_hours: float = 0.0  # GPU-decisions of the plans taken so far
    _fresh_hours: float = 0.0  # GPU-decisions of the plans from scratch at the same decisions
    _fresh_for: Instance | None = None  # this decision's reserved rates (None: no plan from scratch tracked)
    _fresh_plan: Plan | None = None  # the plan from scratch for them, once asked for (None: not found)
    _fresh_asked: bool = False
    _shadow: ShadowFull = field(default_factory=ShadowFull)  # full re-partitioning, replayed (`change_budget`)
    _cache: LayoutCache = field(default_factory=LayoutCache)  # plans run before (`reuse`)
    _clock_s: float | None = None  # the time of the decision being made (`set_time`), seconds into the trace
    _since_h: float = UNTIMED_DECISION_H  # hours since the previous decision (or the initial deployment)
    _epoch_h: float = UNTIMED_DECISION_H  # the epoch's length (`set_epoch`), one step of the `mpc_h` horizon
    _needs: NeedForecast | None = None  # the needs seen at past decisions (`mpc_h`)
    _rent_waived: bool = False  # the next decision buys a compaction without rent (`waive_rent`: the cold start's end)
    _waived_now: bool = False  # this decision does (`_begin` takes the waiver for its own decision only)
    _within_epoch: bool = False  # the decision being made is an emergency or detector one (`set_time`'s kind)

    def set_time(self, t_s: float, kind: str = "epoch") -> None:
        """The time of the next decision, seconds into the trace, and its kind (`LayoutChange.kind`: "epoch", or
        "emergency" / "detector" within an epoch; the controller calls it before `next`): the rent in GPU-hours
        (`rent_gpu_h`) counts the hours since the previous one; `rent_at_epochs` reads the kind."""
        self._since_h = max(0.0, t_s - (self._clock_s or 0.0)) / 3600.0
        self._clock_s = t_s
        self._within_epoch = kind != "epoch"

    def waive_rent(self) -> None:
        """The next decision buys the compaction freeing most GPUs without rent (the controller calls it at the
        first decision after the cold start's floor, `stsched.planning.adapt.cold`: the GPUs held above the plan from
        scratch then were held for the declared rates, not for a need that may come back)."""
        self._rent_waived = True

    def set_epoch(self, epoch_s: float) -> None:
        """The length of an epoch (the controller calls it once): one step of the `mpc_h` horizon."""
        self._epoch_h = epoch_s / 3600.0

    def _rent_rate(self) -> float | None:
        """The rent per layout change: GPU-hours (`rent_gpu_h`) or GPU-decisions (`compact_rent`); None: off."""
        return self.opts.rent_gpu_h if self.opts.rent_gpu_h is not None else self.opts.compact_rent

    def _tracks_fresh(self) -> bool:
        return self.opts.compact_rent is not None or self.opts.hours_budget is not None or self._mpc

    @property
    def _mpc(self) -> bool:
        """Whether the GPU count is decided by model-predictive control (`mpc_h`, `stsched.planning.adapt.mpc`)."""
        return self.opts.mpc_h is not None

    def _values(self, need_now: int, down_changes: float, top: int) -> CountValue:
        """V(u) of `stsched.planning.adapt.mpc` for this decision: the later epochs' needs forecast from the needs
        seen and this epoch's `need_now` (`NeedForecast`), a GPU given back later priced at `down_changes` changes."""
        # this epoch: any count (every plan weighed carries the estimate: the checker or rebalance judged it)
        return count_values(0, self._needs.later(need_now, self._clock_s), self._epoch_h, self.opts.mpc_change_h, top,
                            down_changes)

    def _record_need(self, plan: Plan) -> None:
        """Once per decision, after it (`mpc_h`): the need seen, the GPUs of the plan from scratch when this
        decision solved it (the plan taken when that holds fewer), else the plan taken's (a plan within the LP
        bound, or one that changed layouts without asking for it)."""
        if not self._mpc:
            return
        fresh = self._fresh_plan if self._fresh_asked else None
        need = min(plan.gpus_used, fresh.gpus_used) if fresh is not None else plan.gpus_used
        self._needs.record(self._clock_s or 0.0, need)

    def _begin(self, instance: Instance) -> None:
        """Once per decision, before any step: the reserved rates whose plan from scratch the decision may ask
        for (`_fresh_now`, solved on first use only: a decision that neither scales up nor holds GPUs above the
        LP bound never needs it)."""
        if self._mpc and self._needs is None:
            self._needs = NeedForecast(self.opts.mpc_h, self.opts.mpc_q, self.opts.mpc_window_s)
        self._fresh_for = self._reserved(instance) if self._tracks_fresh() else None
        self._fresh_plan, self._fresh_asked = None, False
        self._waived_now, self._rent_waived = self._rent_waived, False  # a decision that stops keeps it not
        if self.opts.change_budget is not None:  # the shadow decides first: the budget includes this decision
            self._shadow.step(self._from_scratch(instance))

    def _budget_rent(self, rent: float | None, changes: int) -> float | None:
        """The rent per change at which a compaction of `changes` layout changes is bought: `budget_rent` while
        it fits the change budget (`stsched.planning.adapt.budget`), else `compact_rent`."""
        b = self.opts.change_budget
        if b is not None and self._shadow.fits(b, changes):
            return self.opts.budget_rent if rent is None else min(rent, self.opts.budget_rent)
        return rent

    @property
    def _fresh_now(self) -> Plan | None:
        """This decision's plan from scratch for the reserved rates (None: not tracked or not found)."""
        if not self._fresh_asked and self._fresh_for is not None:
            self._fresh_plan, self._fresh_asked = self._fresh(self._fresh_for), True
        return self._fresh_plan

    def _account(self, plan: Plan) -> None:
        """Once per decision, after it: count the GPU-decisions of the plan taken and of the plan from scratch
        (only the GPU-hours budget reads them)."""
        if self.opts.hours_budget is not None and self._fresh_now is not None:
            self._own_hours += plan.gpus_used
            self._fresh_hours += self._fresh_now.gpus_used

    def _pressed(self, gpus: int) -> bool:
        """Whether holding `gpus` GPUs at this decision would break the GPU-hours budget."""
        e = self.opts.hours_budget
        fresh = self._fresh_now if e is not None else None
        if e is None or fresh is None:
            return False
        return self._own_hours + gpus > (1.0 + e) * (self._fresh_hours + fresh.gpus_used) + 1e-9

    def _fresh(self, instance: Instance) -> Plan | None:
        """A min-gpus plan for `instance` by the policy's solver, memoised per process (`min_gpus_memo`: the same
        rates give the plan found the first time, so a 30-minute peak estimate that did not move is not solved
        again); None when the solver finds none."""
        try:
            return min_gpus_memo(instance, self.opts)
        except InfeasibleError as e:
            log.info("no plan from scratch: %s", e)
            return None

    # -- scale-ups -------------------------------------------------------------------------------------------
    def scale_up_makers(self, current: Plan) -> list[Maker]:
        """Extra scale-up candidates: rebuilding inside as many GPUs as the plan from scratch (the policy's adapt
        objective, and `adapt_solver`'s if set), and that plan aligned; none when the ranking ignores GPUs."""
        fresh = self._fresh_now
        if fresh is None or not self._weighs_gpus(current):
            return []
        cap = max(fresh.gpus_used, current.gpus_used, 1)  # an instance has a GPU at least
        out: list[Maker] = [(f"{self.opts.solver} adapt within {cap} GPUs",
                             lambda g, c: self._adapt(g.with_gpus(cap), c))]
        if self.opts.adapt_solver:
            out.append((f"{self.opts.adapt_solver} adapt within {cap} GPUs",
                        lambda g, c: self._adapt_by(self.opts.adapt_solver, g.with_gpus(cap), c)))
        out.append(("from scratch", lambda g, c: align(c, fresh)))
        return out

    def _weighs_gpus(self, current: Plan) -> bool:
        if self._mpc:
            return True
        if self.opts.hours_budget is not None:
            return self._pressed(current.gpus_used)
        return self.opts.compact_rent is not None

    def scale_up_rank(self, instance: Instance, current: Plan) -> Callable[[tuple[tuple[int, int], str, Plan]], tuple]:
        """Key of a scale-up candidate ((changes, GPUs), how, plan): layout changes first, then GPUs; when GPUs
        above the plan from scratch are weighed, each counts as two changes."""
        fresh = self._fresh_now
        if fresh is None or not self._weighs_gpus(current):
            return lambda c: c[0]
        w = self.opts.extra_gpu_changes
        if self._mpc:  # the forecast cost over the horizon; a GPU given back later costs `extra_gpu_changes`
            v = self._values(fresh.gpus_used, max(1.0, w), instance.gpus)  # every candidate passed the checker
            return lambda c: (v.move(c[2].gpus_used, c[0][0]), c[0])
        return lambda c: (c[0][0] + w * max(0, c[2].gpus_used - fresh.gpus_used), c[0])

    # -- compaction ------------------------------------------------------------------------------------------
    def _compact_spare(self, instance: Instance, current: Plan, plan: Plan, note: str,
                       lp: int | None = None) -> tuple[Plan, str]:
        """Buy a compaction by rent or under budget pressure (module docstring).  `lp`: the LP bound of the
        estimated rates, rounded up; the reserved rates are no lower, so a plan within it holds nothing spare and
        the plan from scratch is not solved."""
        rent = self._rent_rate()
        waived = self._waived_now
        within = lp is not None and plan.gpus_used <= lp and self.opts.hours_budget is None
        changed = layout_changes(current, plan) > 0
        if self.opts.rent_at_epochs and self._within_epoch and not (changed or waived):
            return plan, note  # a burst answered inside the layouts: the rent is the epochs'
        fresh = None if within or changed else self._fresh_now
        if fresh is None or fresh.gpus_used >= plan.gpus_used:
            keep = self.opts.rent_pause or self.opts.rent_gpu_h is not None  # a decision with nothing spare keeps it
            if changed or not keep:
                self._rent_paid = self._rent_due = 0.0  # nothing spare, or the layouts just changed anyway
            return plan, note
        if self._mpc:
            return self._compact_by_forecast(instance, plan, note, fresh)
        per = self._since_h if self.opts.rent_gpu_h is not None else 1.0  # GPU-hours or GPU-decisions
        self._rent_paid += (plan.gpus_used - fresh.gpus_used) * per
        pressed = waived or self._pressed(plan.gpus_used)
        low = self._budget_rent(rent, 1)  # the lowest rent any compaction could be bought at now
        full = pressed or (low is not None and self._rent_paid >= (max(rent, self._rent_due) if low == rent else low))
        off = self.opts.off_rent
        if not full and (off is None or self._rent_paid < off):
            return plan, note
        reserved = self._reserved(instance)
        options = []
        # below the rent of every other compaction only switch-offs can be bought: only they are tried (CPU)
        found = self._compactions(reserved, plan, fresh) if full else self._switch_offs(reserved, plan)
        for how, cand in found:
            if (cand := _kept(instance, reserved, plan, cand)) is not None:
                options.append((layout_changes(plan, cand), plan.gpus_used - cand.gpus_used, _spare(reserved, cand),
                                how, cand))
        bought = options if pressed else [o for o in options if (r := self._price(rent, o[0], o[1])) is not None
                                          and r <= self._rent_paid]
        if not bought:
            if rent is not None and full:
                self._rent_due = rent * min((o[0] for o in options), default=plan.gpus_used)
            return plan, note
        changes, freed, spare, how, cand = max(bought, key=lambda o: (o[1], o[2], -o[0]))
        unit = "GPU-hours" if self.opts.rent_gpu_h is not None else "GPU-decisions"
        why = ("at the cold start's end" if waived else "under the GPU-hours budget") if pressed else f"after {self._rent_paid:.1f} {unit} of rent"
        log.info("compaction bought %s: %s, %d change(s), %d GPU(s) freed, %.0f%% spare", why, how, changes,
                 freed, 100 * spare)
        self._rent_paid = self._rent_due = 0.0
        return cand, note + f"; compacted {why} ({how}: {changes} change(s), {freed} GPU(s) freed)"

    def _compact_by_forecast(self, instance: Instance, plan: Plan, note: str, fresh: Plan) -> tuple[Plan, str]:
        """`mpc_h` (`stsched.planning.adapt.mpc`): a compaction of c changes freeing k GPUs is bought when
        `mpc_change_h` x c + V(its GPUs) < V(the GPUs in force), V priced with a later fall at c / k changes per
        GPU; the largest forecast saving is taken (then the most spare capacity).  Skipped without a solver call
        when not even switch-offs (one change per GPU) would be bought."""
        n, top = fresh.gpus_used, instance.gpus
        ideal = self._values(n, 1.0, top)
        if all(ideal.move(u, plan.gpus_used - u) >= ideal.of(plan.gpus_used) - 1e-9 for u in range(n, plan.gpus_used)):
            return plan, note
        reserved = self._reserved(instance)
        best = None
        for how, cand in self._compactions(reserved, plan, fresh):
            if (cand := _kept(instance, reserved, plan, cand)) is None:
                continue
            changes, freed = layout_changes(plan, cand), plan.gpus_used - cand.gpus_used
            v = self._values(n, changes / freed, top)
            gain = v.of(plan.gpus_used) - v.move(cand.gpus_used, changes)
            if gain <= 1e-9:
                continue
            spare = _spare(reserved, cand)
            if best is None or (gain, spare, -changes) > best[:3]:
                best = (gain, spare, -changes, freed, how, cand)
        if best is None:
            return plan, note
        gain, spare, changes, freed, how, cand = best
        log.info("compaction bought on the forecast: %s, %d change(s), %d GPU(s) freed, %.2f GPU-hours saved",
                 how, -changes, freed, gain)
        return cand, note + f"; compacted on the forecast ({how}: {-changes} change(s), {freed} GPU(s) freed)"

    def _price(self, rent: float | None, changes: int, freed: int) -> float | None:
        """The rent (GPU-decisions) at which a compaction of `changes` layout changes freeing `freed` GPUs is
        bought: `off_rent` per change for a switch-off (changes <= freed), else per change at `compact_rent` (or
        the change budget's rent); None: never by rent."""
        if self.opts.off_rent is not None and changes <= freed:
            r = self.opts.off_rent if rent is None else min(rent, self.opts.off_rent)
        else:
            r = self._budget_rent(rent, changes)
        return None if r is None else r * changes

    def _release_order(self, reserved: Instance, plan: Plan) -> list[int]:
        """The GPUs in use that a switch-off tries, least loaded first (at most `release_tries`)."""
        used = [k for k, g in enumerate(plan.gpus) if gpu_layout(g)]
        return sorted(used, key=lambda k: gpu_load(reserved, plan, k))[:self.opts.release_tries]

    def _switch_offs(self, reserved: Instance, plan: Plan, order: list[int] | None = None
                     ) -> Iterator[tuple[str, Plan | None]]:
        """One GPU off (those of `order`, default `_release_order`), the other layouts kept: rate shares
        rebalanced, and with `shed` the slack of the kept partitions filled (`stsched.planning.adapt.shed`)."""
        order = self._release_order(reserved, plan) if order is None else order
        yield from switch_offs(reserved, plan, order, fill=self.opts.shed and not self._is_local(reserved))

    def _compactions(self, reserved: Instance, plan: Plan, fresh: Plan) -> Iterator[tuple[str, Plan | None]]:
        """Candidate compactions of `plan` for the reserved rates, lazily (module docstring)."""
        order = self._release_order(reserved, plan)
        yield from self._switch_offs(reserved, plan, order)
        if self.opts.reuse and not self._is_local(reserved):  # tenants moved inside the kept layouts; old plans
            for k in order:
                yield "one GPU off, re-tenanted", retenant(reserved, without_gpu(plan, k))
            yield from self._cache.candidates(reserved, plan, fewer=True)
        for k in order:
            yield f"one GPU off, {self.opts.solver} adapt", self._adapt(reserved, without_gpu(plan, k))
        if self._is_local(reserved):  # bounded: neighbourhoods of the GPUs switched off, and the plan from scratch
            if self.opts.adapt_solver:
                for k in order:
                    yield (f"one GPU off, {self.opts.adapt_solver} adapt",
                           self._adapt_by(self.opts.adapt_solver, reserved, without_gpu(plan, k)))
            yield "from scratch", align(plan, fresh)
            return
        if self.opts.adapt_solver:  # an instance has a GPU at least: no GPUs (every rate 0) is the plan from scratch
            for n in sorted({fresh.gpus_used, plan.gpus_used - 1} - {0}):
                yield (f"{self.opts.adapt_solver} adapt on {n} GPUs",
                       self._try(self.opts.adapt_solver, reserved.with_gpus(n), Objective.ADAPT, plan))
        yield "from scratch", align(plan, fresh)
        big = (self._try(self.opts.solver, reserved.with_gpus(fresh.gpus_used), Objective.MAX_SCALE)
               if fresh.gpus_used else None)
        yield "max-scale from scratch", align(plan, big.compact()) if big is not None else None

    def _try(self, solver: str, instance: Instance, objective: Objective, current: Plan | None = None) -> Plan | None:
        try:
            return self._solve_with(solver, instance, objective, current)
        except InfeasibleError as e:
            log.info("%s (%s) on %d GPUs failed: %s", solver, objective.value, instance.gpus, e)
            return None


def _kept(instance: Instance, reserved: Instance, plan: Plan, cand: Plan | None) -> Plan | None:
    """A compaction candidate rebalanced for the estimate, kept only when it holds fewer GPUs than `plan` and also
    carries the reserved rates (None otherwise)."""
    cand = rebalance(instance, cand) if cand is not None and cand.gpus_used < plan.gpus_used else None
    return cand if cand is not None and rebalance(reserved, cand) is not None else None


def _spare(reserved: Instance, cand: Plan) -> float:
    """The largest margin of `COMPACT_SPARE` by which `cand` still carries the reserved rates (0 if none)."""
    return max((m for m in COMPACT_SPARE if rebalance(reserved.scaled(1.0 + m), cand) is not None), default=0.0)
