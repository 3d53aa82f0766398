"""Re-planning policies: what plan to run next, given the estimated rates and the plan in force.

* `static-peak`: one plan for every service's peak rate over the whole trace (hindsight), times the same
  headroom as the others, never changed.
* `full-repartition` (gpulet-style): at every decision a min-gpus plan from scratch for the estimated rates.  Its
  GPUs are aligned onto the old indices so that identical layouts stay in place (`stsched.reconfig.align`): the
  most favourable count of its reconfigurations.
* `periodic` (full re-partitioning every `period` decisions) and `practitioner` (re-plan when a fresh plan saves
  >= `save_gpus` GPUs at `save_for` decisions in a row, scale up at once): `stsched.planning.adapt.baselines`.
* `adaptive` (stsched):
  1. rebalance the rate shares of the plan in force (`stsched.planning.adapt.rebalance`: no layout change at all); if
     that cannot carry the new rates, hand partitions over to the services left short, as long as the services
     they served stay covered (`retenant`: tenant changes inside kept layouts, free per docs/RULES.md, counted
     separately as tenant changes);
  2. only if that cannot carry the new rates either: the solver's adapt objective (`Objective.ADAPT` with the plan in
     force as `current_plan`, which rebuilds as few GPU layouts as possible), and optionally a scale-out candidate
     (keep every layout, add GPUs from a min-gpus plan for each service's deficit; with `fill`, the GPUs switched
     on are planned for the short services' full rates at the largest scale instead, since they are paid for
     whole), the one changing fewer layouts (then using fewer GPUs; a filled scale-out wins ties on changes)
     wins; a min-gpus plan from scratch (aligned) if both fail.  Services the plan in force could not carry are
     provisioned at (1 + `up_margin`) times their rate and keep that reserve for `hold` decisions; with
     `reserve` > 0 the adapt objective is also asked for the short services at (1 + `reserve`) (then half that)
     and that plan is taken if it changes no more layouts and uses no more GPUs;
  3. (only without `compact_rent`, which replaces it: step 5) release, with a hysteresis band: the plan scales up
     only when the estimate exceeds what its layouts carry (steps 1-2), and gives a GPU back at once only when the
     others carry (1 + `release_margin`) times the reserved rates; a GPU that the others carry at no margin is given
     back once the plan has held a GPU above the LP bound of the reserved rates for more than `release_after`
     consecutive decisions (ski rental: a GPU kept in the band costs at most that long before it is released
     anyway).  Without the band (margin 0, `release_after` 0) a GPU given back when the load dips to exactly what
     the others carry is switched on again at the next small rise: two reconfigurations for a few minutes of one
     GPU.  A release switches GPUs off one at a time, the least-loaded first, while the others absorb its load (at
     the margin in question) by rebalancing alone (one reconfiguration, no downtime for anyone) or through the
     solver's adapt rebuilding at most `release_budget` - 1 more layouts; when that frees nothing, a min-gpus plan
     for those rates (aligned) is taken if it rebuilds at most `release_budget` layouts per GPU freed; after an
     attempt that freed nothing it waits `release_backoff` decisions;
  4. if it still holds `compact_slack` or more GPUs above a min-gpus plan for the rates, it comes down to that
     plan's GPU count: by switch-offs alone where they get there (`compact_off`, the default since issue 18
     session 19: one GPU off at a time, the others' layouts kept and their slack filled, `shed.shed_down`), else by
     re-planning from scratch (aligned), like full re-partitioning; with `compact_fewest` (default off, tried in
     issue 18) `adapt_solver`'s fewest-change plan on as many GPUs is tried before the plan from scratch; either is
     taken only where it changes fewer layouts than the plan from scratch with no less spare capacity (the plan
     from scratch rebuilds GPUs that stay on);
  5. compaction (`stsched.planning.adapt.compaction`): with `compact_rent` r (ski rental; the default, 12) every GPU given
     back is bought: a compaction that changes c layouts (switching one GPU off is one) is bought once the GPUs
     held above a min-gpus plan for the reserved rates, summed over consecutive decisions, reach r x c; with
     `hours_budget` e, whenever the policy's GPU-decisions would exceed (1 + e) times those of the min-gpus plans
     at the same decisions.  Then scale-ups (step 2) also try rebuilding inside as
     many GPUs as the plan from scratch, and count every GPU above it as two layout changes (its later
     compaction and the rent until then), so a rise does not add a GPU that rebuilding one more layout saves.
  `adapt_solver` (default "milp", the exact adapt objective of `solvers/exact/adapt_milp.py`; "" = off) adds its
  fewest-change plans to the candidates of releases (one GPU fewer), compactions (as many GPUs as the plan from
  scratch, and one fewer) and scale-ups (within the plan from scratch's GPU count): the heuristic's adapt rebuilds
  more layouts than needed on some transitions (docs/SOLVERS.md), and every change it spends is counted here.
  At scale (more than `local_above` services, default 32) every adapt question of steps 2 and 5 is asked only for
  the neighbourhood of the services that must move (`stsched.planning.adapt.local`: their GPUs and every service on
  them, at most one GPU switched on per service), the policy's solver only for neighbourhoods of at most
  `local_services` (24) services and the exact `adapt_solver` for at most 16; a scale-up also asks the scale-out
  (one min-gpus call packing every short service's deficit onto GPUs switched on, the layouts in force kept); above
  `scale_out_above` (128) services a scale-up is ranked by layout changes then GPUs without a plan from scratch
  (solved only when no candidate exists) and step 4 is left to the rent of step 5; the whole-plan compaction
  candidates (exact adapt on n GPUs, max-scale) are skipped.  The plan from scratch is solved at most once per decision (memoised per rates), and only when a
  scale-up or GPUs held above the LP bound need it.
  `change_budget` b (default off, `stsched.planning.adapt.budget`): full re-partitioning is replayed beside the
  policy, and compactions are bought at `budget_rent` per change while the policy's layout changes stay within b
  times the replay's.
  `forecast_s` (default off, `stsched.planning.adapt.forecast`): the reserved rates are at least the `forecast_q`
  quantile of the last `forecast_s` seconds' per-minute rates times the head-room (the controller hands them over
  with `set_forecast`), so every layout change (scale-ups, compactions, the rent's and step 4's plan from scratch)
  is planned for that forecast while rate shares follow the estimate.  `rent_pause` (default off): a decision with
  nothing spare pauses the compaction rent instead of starting it again.  `rent_at_epochs` (default off): only
  epoch decisions pay the rent or start it again (an emergency or detector decision that keeps the layouts leaves
  it as it is; the controller tells the kind with `set_time`).  `rent_gpu_h` (default off): the rent
  counted in GPU-hours (spare GPUs times the hours since the previous decision; the controller tells the time with
  `set_time`), kept through decisions with nothing spare, a compaction of c changes bought at `rent_gpu_h` x c.
  `mpc_h` (default off, `stsched.planning.adapt.mpc`): model-predictive control of the GPU count; compactions are
  bought, and scale-ups ranked, by the offline bound's DP run over the next `mpc_h` epochs on a forecast of the need
  (replacing the rent of step 5 and step 4).
  The controller's own knobs `cold_start_s` and `cold_count_s` (`stsched.planning.adapt.cold`), `burst_s`, `burst_q`
  (`stsched.planning.adapt.estimate`), `emergency_floor` (`stsched.planning.adapt.controller`) and `burst_hold_s`
  (`stsched.planning.adapt.burst`) change the rates the policy is asked for, not the policy.
All plans come from the solver registry (the calls: `stsched.planning.adapt.calls`) and are judged by the checker
(`run_solver`) or, for rebalanced plans, by `stsched.checker.check`; a plan the checker rejects is never used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace
from typing import Protocol

from stsched.planning.adapt.baselines import Periodic, Practitioner
from stsched.planning.adapt.calls import _solve, min_gpus
from stsched.planning.adapt.compaction import Compaction, _kept, _spare
from stsched.planning.adapt.local import EXACT_SERVICES, local_adapt
from stsched.planning.adapt.shed import first_switch_off, shed_down
from stsched.plan import gpu_layout, layout_changes
from stsched.reconfig import align
from stsched.planning.adapt.rebalance import rebalance, retenant, service_capacities, without_gpu
from stsched.bounds import lp_bound_gpus
from stsched.errors import InfeasibleError, InputError
from stsched.plan import Plan
from stsched.problem import Instance
from stsched.registry import Objective

log = logging.getLogger(__name__)

POLICIES = ("static-peak", "full-repartition", "adaptive", "periodic", "practitioner")


@dataclass(frozen=True)
class AdaptiveKnobs:
    """The adaptive policy's knobs (module docstring), shared by `PolicyOptions` and the control loop's
    `stsched.planning.adapt.AdaptOptions`: `up_margin`, `hold`, `release_slack`, `release_tries`, `release_budget`,
    `release_backoff`, `compact_slack`, `scale_out`, `retenant`, `reserve`, `release_after`, `fill`,
    `release_margin`, `adapt_solver` (a registered solver whose adapt objective also proposes the
    fewest-reconfiguration plans of releases, compactions and scale-ups within a fresh plan's GPU count; default the
    exact "milp", chosen on development data (docs/SIMULATOR.md); "" = off), `compact_after` (re-plan from
    scratch once a plan from scratch has needed fewer GPUs for more than this many decisions in a row; None = off),
    `compact_rent` (ski rental on spare GPUs: a compaction that changes c layouts is bought once the GPUs held above a
    plan from scratch, summed over consecutive decisions, reach `compact_rent` x c; None = off), `hours_budget` (e:
    compactions are bought, and scale-ups weigh extra GPUs, whenever the policy's GPU-decisions would exceed (1 + e)
    times those of the plans from scratch at the same decisions; None = off), `extra_gpu_changes` (what a scale-up
    counts per GPU above a plan from scratch, in layout changes, when it weighs GPUs); `stsched.planning.adapt.compaction`.
    At scale: `local_above`, `local_services`, `scale_out_above` (module docstring).  Off by default, tried on
    development windows (docs/RESULTS.md): `compact_fewest` (step 4's fewest-change compaction; `compact_off`, step 4
    by switch-offs alone, is on), `change_budget`, `budget_rent` (`stsched.planning.adapt.budget`),
    `reuse` (`stsched.planning.adapt.reuse`), `off_rent` and `shed` (switch-offs bought at their own rent, the
    switched-off GPU's services moved into the kept partitions' slack: `stsched.planning.adapt.shed`),
    `forecast_s`, `forecast_q` (forecast-robust layouts: `stsched.planning.adapt.forecast`), `rent_pause` and
    `rent_gpu_h` (the rent kept through flips, and counted in GPU-hours: `stsched.planning.adapt.compaction`),
    `rent_at_epochs` (the rent paid and started again at epoch decisions only),
    `mpc_h`, `mpc_q`, `mpc_window_s`, `mpc_change_h` (the GPU count decided on a forecast of the need, as the
    clairvoyant bound does: `stsched.planning.adapt.mpc`).  Work limit: `adapt_nodes` (the exact `adapt_solver`'s
    branch-and-bound nodes per call; with the heuristic's own counts it makes a decision the same at any machine load
    while no call runs into its wall-clock limit, `stsched.planning.adapt.calls.clock_watch`)."""

    up_margin: float = 0.0
    hold: int = 6
    release_slack: int = 1
    release_tries: int = 3
    release_budget: int = 2
    release_backoff: int = 3
    compact_slack: int = 3
    scale_out: bool = False
    retenant: bool = True
    reserve: float = 0.0
    release_after: int | None = None
    fill: bool = False
    release_margin: float = 0.05
    adapt_solver: str = "milp"
    compact_after: int | None = None
    compact_rent: float | None = 12.0
    hours_budget: float | None = None
    extra_gpu_changes: float = 2.0
    # with more services than this, adapt questions (scale-ups, compactions) are asked only for the GPUs the change
    # touches (`stsched.planning.adapt.local`), and the whole-plan compaction candidates are skipped; None: never
    local_above: int | None = 32
    # at scale, the policy's own adapt solver is asked only for neighbourhoods of at most this many services;
    # beyond, a scale-up is one scale-out for every deficit or the plan from scratch, aligned (`_scale_up`)
    local_services: int = 24
    # with more services than this, a scale-up is ranked by layout changes then GPUs, not weighed against a plan from
    # scratch (solved only when no candidate exists), and step 4 is left to the rent (CPU: at this size one plan
    # from scratch costs about a second); None: never
    scale_out_above: int | None = 128
    # a change budget (`stsched.planning.adapt.budget`): compactions are bought at `budget_rent` per change while
    # the policy's layout changes stay within `change_budget` x those of full re-partitioning replayed beside it
    change_budget: float | None = None
    budget_rent: float = 3.0
    # re-use (`stsched.planning.adapt.reuse`): compactions also try one GPU off with tenants moved inside the kept
    # layouts, and plans run before (aligned, re-fitted); scale-ups try plans run before; not at scale
    reuse: bool = False
    # switch-offs (`stsched.planning.adapt.compaction`): a compaction that only switches GPUs off (one change per
    # GPU freed: the others' layouts kept, their slack filled by `stsched.planning.adapt.shed` when `shed`) is
    # bought at `off_rent` GPU-decisions per change instead of `compact_rent` (None: at `compact_rent`)
    off_rent: float | None = None
    shed: bool = False
    # the baselines' knobs (`stsched.planning.adapt.baselines`): full re-partitioning every `period` decisions;
    # the practitioner re-plans when a fresh plan saves >= `save_gpus` GPUs at `save_for` decisions in a row
    period: int = 1
    save_gpus: int = 1
    save_for: int = 3
    # one time budget for all solver calls of a decision (`calls.decision_deadline`); None: only the per-call limit
    decision_s: float | None = None
    # forecast-robust layouts (`stsched.planning.adapt.forecast`): every layout change (scale-up, release,
    # compaction, the rent's plan from scratch) carries the `forecast_q` quantile of the last `forecast_s` seconds'
    # per-minute rates x head-room where that is above the estimate; rate shares and tenants follow the estimate
    # (None: off)
    forecast_s: float | None = None
    forecast_q: float = 0.9
    # the compaction rent is kept (not started again) through decisions with nothing spare; a layout change still
    # starts it again (`stsched.planning.adapt.compaction`)
    rent_pause: bool = False
    # the compaction rent counted at epoch decisions only (issue 18, session 19): an emergency or detector decision
    # (within an epoch, `set_time`'s kind) that keeps the layouts neither pays the rent nor starts it again (its
    # burst floor is not the estimate the rent measures spare GPUs against, and one 5 s after a boundary is not
    # another epoch of rent); one that changes layouts still starts it again (`stsched.planning.adapt.compaction`);
    # refused with `rent_gpu_h`, `mpc_h` or `hours_budget` (read at every decision, `AdaptOptions`)
    rent_at_epochs: bool = False
    # the compaction rent in GPU-hours (`stsched.planning.adapt.compaction`): the GPUs held above the plan from
    # scratch times the hours since the previous decision, kept through decisions with nothing spare, started again
    # by a layout change; a compaction of c changes is bought at `rent_gpu_h` x c (None: `compact_rent`'s count)
    rent_gpu_h: float | None = None
    # model-predictive control of the GPU count (`stsched.planning.adapt.mpc`): compactions bought, and scale-ups
    # ranked, by the forecast cost over the next `mpc_h` epochs (GPU-hours + `mpc_change_h` GPU-hours per layout
    # change), the later epochs' need forecast as the current one held (`mpc_q` None) or the `mpc_q` quantile of the
    # needs seen at the decisions of the last `mpc_window_s` seconds; replaces the rent and step 4 (None: off)
    mpc_h: int | None = None
    mpc_q: float | None = None
    mpc_window_s: float = 3600.0
    mpc_change_h: float = 1.0
    # the work limit of the exact `adapt_solver`: its branch and bound stops after this many nodes (milp's
    # `max_nodes`), so that its answer does not depend on the machine's load (the heuristic's work is bounded by its
    # own counts); the time limit stays as the safety net (`calls.clock_watch`); None: the clock alone
    adapt_nodes: int | None = 500
    # step 4 (`compact_slack`) takes the `adapt_solver`'s fewest-change plan on the plan from scratch's GPU count
    # where it changes fewer layouts than that plan aligned with no less spare capacity (issue 18, session 17: off,
    # it met the targets on one more window and lost them on another, docs/RESULTS.md); False: the plan from scratch
    compact_fewest: bool = False
    # step 4 (`compact_slack`) first tries to reach the plan from scratch's GPU count by switch-offs alone (`shed_down`:
    # one GPU off at a time, the other layouts kept, their slack filled), taken where it changes fewer layouts than
    # that plan aligned with no less spare capacity (issue 18, session 19: the default, judged on 20 windows,
    # docs/RESULTS.md; False: the plan from scratch, as before)
    compact_off: bool = True

    def knobs(self) -> dict[str, object]:
        """The knobs by name (to pass on, or to report)."""
        return {f.name: getattr(self, f.name) for f in fields(AdaptiveKnobs)}


BASELINE_KNOBS = {"periodic": ("period",), "practitioner": ("save_gpus", "save_for")}  # the baselines' own knobs
EVERY_POLICY_KNOBS = ("decision_s",)  # read by the control loop around any policy's decision


def knobs_read(policy: str) -> frozenset[str]:
    """The knobs of `AdaptiveKnobs` that a run of `policy` reads: the adaptive policy all but the baselines' own, a
    baseline its own (`BASELINE_KNOBS`), and every policy `EVERY_POLICY_KNOBS`."""
    if policy == "adaptive":
        return frozenset(f.name for f in fields(AdaptiveKnobs)) - {k for ks in BASELINE_KNOBS.values() for k in ks}
    return frozenset(BASELINE_KNOBS.get(policy, ()) + EVERY_POLICY_KNOBS)


def knob_reader(knob: str) -> str:
    """The policy that reads `knob` (of `AdaptiveKnobs`; every policy reads `EVERY_POLICY_KNOBS`)."""
    return next((p for p, ks in BASELINE_KNOBS.items() if knob in ks), "adaptive")


@dataclass(frozen=True)
class PolicyOptions(AdaptiveKnobs):
    """`solver`, `time_limit_s`, `seed`, `params`: the registered solver, its time limit per call, seed and
    solver-specific parameters; the knobs of `AdaptiveKnobs`."""

    solver: str = "heuristic"
    time_limit_s: float = 30.0
    seed: int = 0
    params: tuple[tuple[str, str], ...] = ()


class Policy(Protocol):
    name: str

    def initial(self, instance: Instance) -> Plan: ...

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]: ...


@dataclass
class StaticPeak:
    peak: Instance
    opts: PolicyOptions = PolicyOptions()
    name: str = "static-peak"

    def initial(self, instance: Instance) -> Plan:
        return min_gpus(self.peak, self.opts)

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]:
        return current, "static: plan for the peak kept"


@dataclass
class FullRepartition:
    opts: PolicyOptions = PolicyOptions()
    name: str = "full-repartition"

    def initial(self, instance: Instance) -> Plan:
        return min_gpus(instance, self.opts)

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]:
        fresh = align(current, min_gpus(instance, self.opts))
        return fresh, f"min-gpus from scratch: {fresh.gpus_used} GPUs"


@dataclass
class Adaptive(Compaction):
    opts: PolicyOptions = PolicyOptions()
    name: str = "adaptive"
    _decision: int = 0
    _retry_at: int = 0
    _grown_at: dict[str, int] = field(default_factory=dict)  # service -> decision of its last scale-up
    _surplus_since: int | None = None  # first of the consecutive decisions at which a GPU looked releasable
    _spare_since: int | None = None  # first of the consecutive decisions at which a fresh plan needed fewer GPUs
    _forecast: dict[str, float] | None = None  # the rates new layouts are planned for (`set_forecast`)

    def initial(self, instance: Instance) -> Plan:
        plan = min_gpus(instance, self.opts)
        self._shadow.start(plan)
        self._cache.remember(plan)
        return plan

    def _adapt(self, instance: Instance, current: Plan) -> Plan | None:
        return self._adapt_by(self.opts.solver, instance, current)

    def _is_local(self, instance: Instance) -> bool:
        """Whether adapt questions are cut down to their neighbourhood (more than `local_above` services)."""
        return self.opts.local_above is not None and len(instance.services) > self.opts.local_above

    def _is_large(self, instance: Instance) -> bool:
        """Whether scale-ups skip the plan from scratch (more than `scale_out_above` services)."""
        return self.opts.scale_out_above is not None and len(instance.services) > self.opts.scale_out_above

    def _adapt_by(self, solver: str, instance: Instance, current: Plan) -> Plan | None:
        """`solver`'s adapt objective from `current` (None when it fails): for the whole instance, or with more
        than `local_above` services only for the GPUs of the services `current` cannot carry
        (`stsched.planning.adapt.local`), the rest of the plan kept; there `adapt_solver` (exact) is asked only
        for neighbourhoods of at most `EXACT_SERVICES` services."""
        def ask(inst: Instance, cur: Plan) -> Plan | None:
            try:
                return _solve(inst, self.opts, Objective.ADAPT, cur, solver)
            except InfeasibleError as e:
                log.info("adapt (%s) failed: %s", solver, e)
                return None

        if not self._is_local(instance):
            return ask(instance, current)
        caps = service_capacities(instance, current)
        movers = {s.name for s in instance.services if s.rate > caps.get(s.name, 0.0) * (1 + 1e-9)}
        if not movers:
            return rebalance(instance, current)
        bound = EXACT_SERVICES if solver == self.opts.adapt_solver else self.opts.local_services
        return local_adapt(instance, current, movers, instance.gpus - current.gpus_used, ask, bound)

    def _solve_with(self, solver: str, instance: Instance, objective: Objective, current: Plan | None = None) -> Plan:
        return _solve(instance, self.opts, objective, current, solver)

    def set_forecast(self, rates: dict[str, float] | None) -> None:
        """The forecast rates for the next decision's layout changes (`forecast_s`; the controller sets them before
        `next`); None: the estimate alone."""
        self._forecast = rates

    def _reserved(self, instance: Instance) -> Instance:
        """The rates the plan must keep carrying: (1 + up_margin) times the rate of services scaled up within
        the last `hold` decisions, the rate of the others; with a forecast (`set_forecast`), the forecast rate
        where it is higher (forecast-robust layouts, `stsched.planning.adapt.forecast`)."""
        m = 1.0 + self.opts.up_margin
        recent = {n for n, d in self._grown_at.items() if self._decision - d <= self.opts.hold}
        fc = self._forecast or {}
        return instance.with_rates({s.name: max(s.rate * m if s.name in recent else s.rate, fc.get(s.name, 0.0))
                                    for s in instance.services})

    def next(self, instance: Instance, current: Plan) -> tuple[Plan, str]:
        self._decision += 1
        self._begin(instance)
        plan = rebalance(instance, current)
        if plan is not None:
            note = "rebalanced inside the layouts"
        elif self.opts.retenant and (plan := retenant(instance, current)) is not None:
            note = "tenants changed inside the layouts"
        else:
            caps = service_capacities(instance, current)
            for s in instance.services:
                if s.rate > caps.get(s.name, 0.0) * (1 + 1e-9):
                    self._grown_at[s.name] = self._decision
            plan, note = self._scale_up(instance, current)
            self._surplus_since = None  # a rise: whatever looked spare was needed
        plan, freed = self._release_step(instance, plan) if self.opts.compact_rent is None else (plan, 0)
        if freed:
            note += f", {freed} GPU(s) freed"
        lp = lp_bound_gpus(instance)
        if (plan.gpus_used - lp >= self.opts.compact_slack and not self._is_large(instance)  # large: the rent
                and not self._mpc):  # with `mpc_h` the forecast decides every compaction
            reserved = self._reserved(instance)  # the estimate's rates unless a forecast or margin
            fresh = self._from_scratch(reserved)
            if fresh is not None and plan.gpus_used - fresh.gpus_used >= self.opts.compact_slack:
                plan, how = self._slack_compaction(instance, reserved, current, plan, fresh)
                note += f"; compacted {how} ({plan.gpus_used} GPUs)"
        plan, note = self._compact_when_patient(instance, current, plan, note, lp)
        plan, note = self._compact_spare(instance, current, plan, note, lp)
        self._account(plan)
        self._record_need(plan)
        self._shadow.spent(current, plan)
        self._cache.remember(plan)
        return plan, note + f" ({plan.gpus_used} GPUs)"

    def _slack_compaction(self, instance: Instance, reserved: Instance, current: Plan, plan: Plan,
                          fresh: Plan) -> tuple[Plan, str]:
        """Step 4's plan in place of `plan` (this decision's so far): the plan from scratch aligned onto `current`;
        with `compact_off`, `plan` brought down to as many GPUs by switch-offs alone (`shed_down`), and with
        `compact_fewest` the `adapt_solver`'s fewest-change plan on as many GPUs, each instead where it carries the
        reserved rates with no less spare capacity and changes fewer layouts (the plan from scratch rebuilds GPUs
        that need not change: issue 18, windows 20..23 and 28..31).  The spare capacity condition was added
        (commit 61fc0b2) after `compact_fewest`'s first version paid more changes on 26..29 and 6..9; it changed
        no row of the 20 windows (docs/RESULTS.md), so those two still pay them."""
        scratch = align(current, fresh)
        if self._is_local(instance):
            return scratch, "from scratch"
        n = max(fresh.gpus_used, 1)
        if self.opts.compact_off:
            off = shed_down(reserved, plan, n, lambda p: self._release_order(reserved, p),
                            lambda p: _spare(reserved, p))
            if (kept := _fewer_changes(instance, reserved, current, plan, off, scratch)) is not None:
                return kept, f"by switch-offs on {n} GPUs"
        if not (self.opts.compact_fewest and self.opts.adapt_solver):
            return scratch, "from scratch"
        cand = self._try(self.opts.adapt_solver, reserved.with_gpus(n), Objective.ADAPT, current)
        if (kept := _fewer_changes(instance, reserved, current, plan, cand, scratch)) is not None:
            return kept, f"by {self.opts.adapt_solver} adapt on {fresh.gpus_used} GPUs"
        return scratch, "from scratch"

    def _from_scratch(self, instance: Instance) -> Plan | None:
        """A min-gpus plan for `instance`'s rates: this decision's plan from scratch when the reserved rates are
        the same (one solver call per decision, not two), else solved (memoised: `min_gpus_memo`); None when the
        solver finds none."""
        if self._fresh_for is not None and self._fresh_for.services == instance.services:
            return self._fresh_now
        return self._fresh(instance)

    def _compact_when_patient(self, instance: Instance, current: Plan, plan: Plan, note: str,
                              lp: int) -> tuple[Plan, str]:
        """`compact_after`: a GPU more than a plan from scratch needs, held for more than k decisions, is paid
        back by re-planning from scratch (aligned, so identical layouts stay in place)."""
        if self.opts.compact_after is None:
            return plan, note
        fresh = min_gpus(instance, self.opts) if plan.gpus_used > lp else None
        if fresh is None or fresh.gpus_used >= plan.gpus_used:
            self._spare_since = None
            return plan, note
        if self._spare_since is None:
            self._spare_since = self._decision
        if self._decision - self._spare_since < self.opts.compact_after:
            return plan, note
        self._spare_since = None
        return align(current, fresh), note + f"; compacted from scratch after a patient wait ({fresh.gpus_used} GPUs)"

    def _scale_up(self, instance: Instance, current: Plan) -> tuple[Plan, str]:
        grown = self._reserved(instance)
        makers = [(f"{self.opts.solver} adapt", self._adapt)]
        if self.opts.reuse and not self._is_local(instance):
            makers.append(("layouts seen before", self._seen_before))
        if self.opts.scale_out or self._is_local(instance):  # at scale: one call for all deficits at once
            makers.insert(0, ("scale-out", self._scale_out))
        candidates = []

        def evaluate(makers_: list) -> None:
            for how, make in makers_:
                cand = make(grown, current)
                cand = rebalance(instance, cand) if cand is not None else None
                if cand is not None:
                    # a filled scale-out wins ties on changes: its GPU's spare capacity is reserve for the growth
                    more = 0 if how == "scale-out" and self.opts.fill else cand.gpus_used
                    candidates.append(((layout_changes(current, cand), more), how, cand))

        evaluate(makers)  # first, so that a decision's time budget goes to them before the plan from scratch
        if not (candidates and self._is_large(instance)):  # at scale a scale-up is not weighed against a plan
            evaluate(self.scale_up_makers(current))  # from scratch (CPU): the rent's compactions give GPUs back
        if candidates:
            rank = (lambda c: c[0]) if self._is_large(instance) else self.scale_up_rank(instance, current)
            key, how, plan = min(candidates, key=rank)
            if self.opts.reserve > 0:
                plan, how = self._with_reserve(instance, current, grown, key, plan, how)
            return plan, f"{how}: {key[0]} change(s)"
        return align(current, min_gpus(instance, self.opts)), "min-gpus from scratch"

    def _seen_before(self, grown: Instance, current: Plan) -> Plan | None:
        """The cached plan with more GPUs than `current` that changes fewest layouts (`stsched.planning.adapt.reuse`),
        or None."""
        found = [plan for _, plan in self._cache.candidates(grown, current, fewer=False)]
        return min(found, key=lambda p: (layout_changes(current, p), p.gpus_used), default=None)

    def _with_reserve(self, instance: Instance, current: Plan, grown: Instance, key: tuple[int, int], plan: Plan,
                      how: str) -> tuple[Plan, str]:
        """A scale-up pays for the layouts it rebuilds or switches on whole: ask the adapt objective for the grown
        services at (1 + `reserve`) times their rate (then half that), and keep the first such plan that changes
        no more layouts and uses no more GPUs than `plan`; its spare capacity absorbs the next rises by
        rebalancing."""
        short = {n for n, d in self._grown_at.items() if d == self._decision}
        for margin in (self.opts.reserve, self.opts.reserve / 2):
            ask = grown.with_rates({s.name: s.rate * (1 + margin) if s.name in short else s.rate
                                    for s in grown.services})
            cand = self._adapt(ask, current)
            cand = rebalance(instance, cand) if cand is not None else None
            if cand is not None and (layout_changes(current, cand), cand.gpus_used) <= key:
                return cand, f"{how} with {margin:.0%} reserve"
        return plan, how

    def _surplus_held(self, reserved: Instance, plan: Plan) -> bool:
        """Whether the plan has held a GPU above the LP bound of the reserved rates for `release_after`
        consecutive decisions before this one (0: at once); called once per decision."""
        surplus = plan.gpus_used - lp_bound_gpus(reserved) >= self.opts.release_slack
        if not surplus:
            self._surplus_since = None
            return False
        if self._surplus_since is None:
            self._surplus_since = self._decision
        return self._decision - self._surplus_since >= (self.opts.release_after or 0)

    def _release_step(self, instance: Instance, plan: Plan) -> tuple[Plan, int]:
        """Step 3 (module docstring): at once when the rest carries the reserved rates with `release_margin` to
        spare; at no margin once a GPU has looked releasable for more than `release_after` decisions in a row (None:
        never, unless the margin is 0: then at once)."""
        reserved = self._reserved(instance)
        patient = self._surplus_held(reserved, plan)
        if self._decision < self._retry_at:
            return plan, 0
        margin, after = self.opts.release_margin, self.opts.release_after
        targets = [reserved.scaled(1.0 + margin)] if margin > 0 else []
        if (margin == 0 and after is None) or (after is not None and patient):
            targets.append(reserved)
        tried = False
        for target in targets:
            if plan.gpus_used - lp_bound_gpus(target) < self.opts.release_slack:
                continue
            tried = True
            plan, freed = self._release(target, instance, plan)
            if freed:
                self._surplus_since = None
                return plan, freed
        if tried:
            self._retry_at = self._decision + self.opts.release_backoff
        return plan, 0

    def _release(self, reserved: Instance, instance: Instance, plan: Plan) -> tuple[Plan, int]:
        """Switch GPUs off while the rest carries the `reserved` rates."""
        freed = 0
        while True:
            better = self._release_one(reserved, plan)
            if better is None:
                break
            plan, freed = rebalance(instance, better) or better, freed + 1
        if not freed:
            lean = min_gpus(reserved, self.opts)
            cand = rebalance(instance, align(plan, lean)) if lean.gpus_used < plan.gpus_used else None
            if cand is not None and rebalance(reserved, cand) is not None:
                gone = plan.gpus_used - cand.gpus_used
                if gone > 0 and layout_changes(plan, cand) <= self.opts.release_budget * gone:
                    plan, freed = cand, gone
        return plan, freed

    def _release_one(self, reserved: Instance, plan: Plan) -> Plan | None:
        """One GPU fewer for `_release`: the first GPU of `_release_order` whose switch-off with the rest rebalanced
        carries `reserved` (`first_switch_off` without filling slack), else the `adapt_solver` on one GPU fewer,
        else one GPU off re-fitted by the adapt objective, each within `release_budget` changes; or None."""
        order = self._release_order(reserved, plan)
        if (trial := first_switch_off(reserved, plan, order, fill=False)) is not None:
            return trial
        if self.opts.adapt_solver and plan.gpus_used > 1:  # fewest changes on one GPU fewer (exact with milp)
            try:
                trial = self._solve_with(self.opts.adapt_solver, reserved.with_gpus(plan.gpus_used - 1),
                                         Objective.ADAPT, plan)
            except InfeasibleError as e:
                log.info("release through %s failed: %s", self.opts.adapt_solver, e)
                trial = None
            if (trial is not None and trial.gpus_used < plan.gpus_used
                    and layout_changes(plan, trial) <= self.opts.release_budget):
                return trial
        for k in order:
            without = without_gpu(plan, k)
            trial = self._adapt(reserved, without)
            if (trial is not None and trial.gpus_used < plan.gpus_used
                    and layout_changes(without, trial) <= self.opts.release_budget - 1):
                return trial
        return None

    def _scale_out(self, instance: Instance, current: Plan) -> Plan | None:
        """Keep every layout and add GPUs for what the plan in force cannot carry: a min-gpus plan for each
        service's deficit (its rate minus its tenants' capacity), on free GPU indices, then rebalance."""
        caps = service_capacities(instance, current)
        deficit = {s.name: s.rate - caps.get(s.name, 0.0) for s in instance.services}
        deficit = {n: d * (1 + 1e-6) for n, d in deficit.items() if d > 1e-9 * max(1.0, instance.service(n).rate)}
        if not deficit:
            return None
        try:
            extra = min_gpus(instance.subset(deficit).with_rates(deficit), self.opts)
        except (InfeasibleError, InputError) as e:
            log.info("scale-out failed: %s", e)
            return None
        if self.opts.fill:
            extra = self._filled(instance, deficit, extra)
        gpus = list(current.gpus)
        free = [k for k, g in enumerate(gpus) if not gpu_layout(g)]
        for g in extra.gpus:
            if not gpu_layout(g):
                continue
            if free:
                gpus[free.pop(0)] = g
            else:
                gpus.append(g)
        return rebalance(instance, replace(current, gpus=tuple(gpus)))

    def _filled(self, instance: Instance, deficit: dict[str, float], extra: Plan) -> Plan:
        """The GPUs switched on are paid for whole: the same number of GPUs planned for the short services'
        full rates at the largest scale (max-scale), if that still covers each deficit; else `extra`."""
        sub = instance.subset(deficit).with_gpus(extra.gpus_used)
        try:
            big = _solve(sub, self.opts, Objective.MAX_SCALE)
        except InfeasibleError as e:
            log.info("filled scale-out failed: %s", e)
            return extra
        served = big.served()
        if all(served.get(n, 0.0) >= d * (1 - 1e-9) for n, d in deficit.items()):
            return big
        return extra


def _fewer_changes(instance: Instance, reserved: Instance, current: Plan, plan: Plan, cand: Plan | None,
                   scratch: Plan) -> Plan | None:
    """Step 4's candidate `cand` as taken (`_kept`: rebalanced for the estimate, fewer GPUs than `plan`, carrying the
    reserved rates) where it also holds no more GPUs than the plan from scratch aligned (`scratch`), changes fewer
    layouts than it and keeps no less spare capacity (as `_compact_spare` ranks compactions of as many GPUs: a tight
    plan is undone by the next small rise); None otherwise."""
    # (the layout test first: it is cheap, and `_kept`'s rebalancing changes rates only, never a layout)
    if cand is None or cand.gpus_used > scratch.gpus_used or layout_changes(current, cand) >= layout_changes(current,
                                                                                                             scratch):
        return None
    kept = _kept(instance, reserved, plan, cand)
    if kept is None:
        return None
    return kept if _spare(reserved, kept) >= _spare(reserved, scratch) else None


def make_policy(name: str, peak: Instance, opts: PolicyOptions = PolicyOptions()) -> Policy:
    if name == "static-peak":
        return StaticPeak(peak, opts)
    if name == "full-repartition":
        return FullRepartition(opts)
    if name == "adaptive":
        return Adaptive(opts)
    if name == "periodic":
        return Periodic(opts)
    if name == "practitioner":
        return Practitioner(opts)
    raise InputError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")

