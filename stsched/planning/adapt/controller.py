"""The control loop: estimate rates, re-plan with a policy, pay the reconfigurations, simulate what users feel.

Time runs minute by minute over a count trace (`azure-functions-2019`: per-minute rates of the services; the
instance's rates are each service's peak, `stsched.simulation.traces`).  The controller decides at every epoch
boundary (every `epoch_s` seconds) and, with `trigger` > 0, also at the end of any minute in which some service's
observed rate exceeded `trigger` times the rate the plan in force serves it at (an emergency re-plan; with
`emergency_floor`, the default, it plans every service so overloaded for at least that minute's rate x head-room,
whatever the estimate says).  With `detect_s` (default 5 s; `stsched.planning.adapt.detect`) the controller also
decides `detect_s` seconds into a minute whose arrivals so far are clearly above `trigger` x a service's served rate
(the burst detector, on a seeded Poisson draw of the arrivals so far): the minute is then simulated in pieces cut at
its decisions and at the ends of the builds they started (a GPU rebuilt by an emergency decision serves its old
layout until built, `minutes.Builds`), and GPU-hours are charged for each span's GPUs.  A decision
estimates the rates (`stsched.planning.adapt.estimate`), asks the policy for a plan (`stsched.planning.adapt.policies`), counts the
layout reconfigurations and the downtime they cause (`stsched.reconfig`).  GPUs in use are charged minute by
minute.  With `downtime="standby"` decisions use data up to `cost` seconds earlier, so that the new layouts can be
built beside the old ones in the meantime.

What users feel is simulated with `stsched.simulation.run_plan` (work-conserving round robin, the checker's
execution times, Poisson arrivals at the trace's per-minute rates).  `sampling="full"` simulates every minute.
`sampling="sampled"` (default; the 8-hour study) simulates in full every minute that can hurt: one in which a GPU is
down (reconfiguration), one in which some service is offered more than `risky_load` times the rate the plan serves
it at, and one that inherits a backlog of more than `backlog_s` seconds of some service's arrivals from the minute
before; those minutes carry their queues and busy partitions into the next (a smaller leftover is served first in
the next minute's sample and counted as it is).  Every other minute is a calm steady state: it is represented by a sample of
`sample_s` seconds at its rates after a `warmup_s` warm-up from empty queues, whose per-service attainment is
applied to the minute's expected number of requests.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
from tqdm import tqdm

from stsched.reconfig import ReconfigCosts, Transition, keep_tenants, transition
from stsched.planning.adapt.burst import BurstMemory, check_hold
from stsched.planning.adapt.cold import ColdStart, check_count, cold_start, observed_start
from stsched.planning.adapt.detect import Observed, check_detect, flagged, observed_counts
from stsched.planning.adapt.estimate import RateEstimator
from stsched.planning.adapt.forecast import Forecast, robust_rates
from stsched.planning.adapt.minutes import Builds, Minutes, loads, planned
from stsched.planning.adapt.mpc import NeedForecast
from stsched.planning.adapt.calls import ProvedInfeasible, clock_watch, decision_deadline, patience, takes_nodes
from stsched.planning.adapt.policies import (POLICIES, AdaptiveKnobs, PolicyOptions, knob_reader, knobs_read,
                                            make_policy)
from stsched.checker import check
from stsched.errors import InfeasibleError, InputError
from stsched.plan import Plan, layout_change_kinds
from stsched.problem import Instance
from stsched.simulation.traces import COUNT_TRACES, check_function_offset, load_count_trace, rate_schedule

log = logging.getLogger(__name__)

INITIAL_PATIENCE = 5.0  # the initial deployment retries with this factor on the solver's time limit


@dataclass(frozen=True)
class AdaptOptions(AdaptiveKnobs):
    """Everything the control loop needs (module docstring), with the adaptive policy's knobs."""

    trace: str = "azure-functions-2019"
    policy: str = "adaptive"
    epoch_s: float = 300.0
    headroom: float = 1.2  # plan for headroom x the estimated rates (a factor >= 1, as `stsched solve --headroom`)
    estimate_window_s: float = 1800.0
    statistic: str = "peak"
    # the short-burst decay (`stsched.planning.adapt.estimate`): the peak over the last `burst_s` seconds only, the
    # `burst_q` quantile over the whole window (None: the peak over the whole window)
    burst_s: float | None = None
    burst_q: float = 0.9
    trigger: float = 0.95  # emergency re-plan above this load (0: never)
    # an emergency decision sees the minute that triggered it (else only data up to the standby lead, like an epoch
    # boundary's, so it answers a minute later); either way, with `standby`, the GPUs any emergency decision
    # switches on serve only after the build time, and a GPU it rebuilds (or re-tenants) while in use serves its old
    # layout until then (`minutes.Builds`): its trigger exists only at its instant
    emergency_fresh: bool = False
    # an emergency decision plans every service overloaded in the triggering minute (rate > `trigger` x its served
    # rate) for at least that minute's rate x head-room, so it never lowers the capacity of a service while it is
    # overloaded (issue 18: the decision answering bert's burst cut its share from 2,890 to 2,248 req/s in its
    # 8,000 req/s minute).  False: the estimate alone (the rows before this session)
    emergency_floor: bool = True
    # the burst detector (`stsched.planning.adapt.detect`): an emergency decision this many seconds into a minute
    # whose arrivals so far (a seeded Poisson count) are clearly above `trigger` x a service's served rate,
    # planning it for at least the observed rate x head-room; its GPUs serve after the standby build time (None:
    # off, the end-of-minute trigger alone)
    detect_s: float | None = 5.0
    # the burst reserve (`stsched.planning.adapt.burst`): a service whose minute exceeded `trigger` x its served rate
    # is planned for at least that rate x head-room for this many seconds after the minute (None: off)
    burst_hold_s: float | None = None
    # the cold start (`stsched.planning.adapt.cold`): the declared rates x head-room floor the estimate of the initial
    # deployment and of the decisions up to this many seconds into the trace (0: the initial deployment only);
    # None: off (the initial deployment is planned for the trace's first minute).  Default 300 s with `cold_release`
    # (issue 18: chosen on windows 4, 12 and 14 of the frontier study, docs/RESULTS.md)
    cold_start_s: float | None = 300.0
    # with `cold_start_s`: the first decision after the floor buys the compaction freeing most GPUs without the rent
    # (`Compaction.waive_rent`; the policies without a rent ignore it): the GPUs the declared rates held are given
    # back at once, not after the rent of GPUs the estimate never needed
    cold_release: bool = True
    # the observed start (`stsched.planning.adapt.cold`): the initial deployment planned for the Poisson upper bound
    # of each service's arrivals in the first this many seconds (the detector's count) x head-room, instead of the
    # declared rates (it reads the first this many seconds of minute 0 ahead; the plan serves from t = 0); it needs
    # cold_start_s=None (None: off)
    cold_count_s: float | None = None
    hours: float | None = None  # only the first H hours of the trace
    function_offset: int = 0  # service i follows the (offset + i)-th busiest function (other data for development)
    function_pool: int | None = None  # service i follows function (offset + i) mod pool (None: no wrap)
    simulate: bool = True  # False: plans, reconfigurations and GPU-hours only (attainment not measured: nan)
    downtime: str = "stop"
    costs: ReconfigCosts = ReconfigCosts()
    sampling: str = "sampled"
    sample_s: float = 5.0
    warmup_s: float = 2.0
    risky_load: float = 0.95
    backlog_s: float = 1.0
    reroute: bool = True
    seed: int = 0
    solver: str = "heuristic"
    time_limit_s: float = 2.0  # per decision: the one default of the CLI, the API and the studies
    solver_params: tuple[tuple[str, str], ...] = ()
    progress: bool = False

    def __post_init__(self) -> None:
        if self.trace not in COUNT_TRACES:
            raise InputError(f"adapt needs a per-minute count trace ({', '.join(COUNT_TRACES)}), got {self.trace!r}")
        if self.policy not in POLICIES:
            raise InputError(f"unknown policy {self.policy!r} (known: {', '.join(POLICIES)})")
        if self.sampling not in ("sampled", "full"):
            raise InputError(f"sampling must be 'sampled' or 'full', got {self.sampling!r}")
        if self.downtime not in ("stop", "standby"):
            raise InputError(f"downtime must be 'stop' or 'standby', got {self.downtime!r}")
        if self.adapt_solver and "adapt_solver" in knobs_read(self.policy):  # a baseline never asks it
            from stsched.registry import Objective, available_solvers

            able = sorted(n for n, info in available_solvers().items() if Objective.ADAPT in info.objectives)
            if self.adapt_solver not in able:
                raise InputError(f"adapt_solver {self.adapt_solver!r}: not a registered solver with the adapt "
                                 f"objective ({', '.join(able)})")
        from stsched.validate import check_int, check_real, check_time_limit

        check_int(self.function_offset, "function_offset", minimum=0)
        check_real(self.headroom, "headroom", minimum=1.0)
        check_int(self.seed, "seed", minimum=0)
        check_time_limit(self.time_limit_s, "time_limit_s")
        for name in ("epoch_s", "sample_s", "risky_load", "backlog_s"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise InputError(f"{name} must be a finite number > 0, got {v!r}")
        for name in ("warmup_s", "trigger", "up_margin", "reserve", "release_margin"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise InputError(f"{name} must be a finite number >= 0, got {v!r}")
        if abs(self.epoch_s / 60.0 - round(self.epoch_s / 60.0)) > 1e-9:
            raise InputError(f"epoch must be a whole number of minutes (the trace's bins), got {self.epoch_s!r} s")
        if self.sample_s + self.warmup_s > 60.0:
            raise InputError("sample_s + warmup_s must fit in one minute")
        if self.hours is not None and not (self.hours > 0 and math.isfinite(self.hours)):
            raise InputError(f"hours must be a finite number > 0, got {self.hours!r}")
        if min(self.release_slack, self.compact_slack, self.release_budget) < 1 or min(
                self.hold, self.release_backoff, self.release_after or 0, self.compact_after or 0) < 0:
            raise InputError("release_slack, compact_slack, release_budget must be >= 1; hold, release_backoff, "
                             "release_after, compact_after >= 0")
        for name in ("period", "save_gpus", "save_for"):
            check_int(getattr(self, name), name, minimum=1)
        if not (self.extra_gpu_changes >= 0 and math.isfinite(self.extra_gpu_changes)):
            raise InputError(f"extra_gpu_changes must be a finite number >= 0, got {self.extra_gpu_changes!r}")
        if self.hours_budget is not None and not (self.hours_budget >= 0 and math.isfinite(self.hours_budget)):
            raise InputError(f"hours_budget must be a finite number >= 0 (a fraction of GPU-hours), got "
                             f"{self.hours_budget!r}")
        if self.decision_s is not None and not (self.decision_s > 0 and math.isfinite(self.decision_s)):
            raise InputError(f"decision_s must be a finite number > 0 (seconds per decision), got {self.decision_s!r}")
        if self.compact_rent is not None and not (self.compact_rent > 0 and math.isfinite(self.compact_rent)):
            raise InputError(f"compact_rent must be a finite number > 0 (GPU-decisions per layout change), got "
                             f"{self.compact_rent!r}")
        if self.change_budget is not None and not (self.change_budget >= 0 and math.isfinite(self.change_budget)):
            raise InputError(f"change_budget must be a finite number >= 0 (a fraction of full re-partitioning's "
                             f"layout changes), got {self.change_budget!r}")
        if self.off_rent is not None and not (self.off_rent > 0 and math.isfinite(self.off_rent)):
            raise InputError(f"off_rent must be a finite number > 0 (GPU-decisions per layout change), got "
                             f"{self.off_rent!r}")
        if self.rent_gpu_h is not None:
            if not (self.rent_gpu_h > 0 and math.isfinite(self.rent_gpu_h)):
                raise InputError(f"rent_gpu_h must be a finite number > 0 (GPU-hours per layout change), got "
                                 f"{self.rent_gpu_h!r}")
            if self.compact_rent is None or self.off_rent is not None or self.change_budget is not None:
                raise InputError("rent_gpu_h replaces compact_rent's count: it needs compact_rent set and neither "
                                 "off_rent nor change_budget (rents in GPU-decisions)")
        if not (self.budget_rent > 0 and math.isfinite(self.budget_rent)):
            raise InputError(f"budget_rent must be a finite number > 0 (GPU-decisions per layout change), got "
                             f"{self.budget_rent!r}")
        check_int(self.local_services, "local_services", minimum=1)
        if self.adapt_nodes is not None:
            check_int(self.adapt_nodes, "adapt_nodes", minimum=1)
        if not self.adapt_solver and self.adapt_nodes != AdaptiveKnobs.adapt_nodes:
            if not takes_nodes(self.solver):  # no call would read it (`calls._params`)
                raise InputError(f"adapt_nodes is read with adapt_solver (or a solver with max_nodes) only; set "
                                 f"adapt_solver or drop adapt_nodes={self.adapt_nodes!r}")
        if self.scale_out_above is not None:
            check_int(self.scale_out_above, "scale_out_above", minimum=0)
        if self.function_pool is not None:
            check_int(self.function_pool, "function_pool", minimum=1)
        if self.local_above is not None:
            check_int(self.local_above, "local_above", minimum=0)
        if self.forecast_s is not None and not (self.forecast_s > 0 and math.isfinite(self.forecast_s)):
            raise InputError(f"forecast_s must be a finite number > 0 (seconds of rates), got {self.forecast_s!r}")
        if not 0.0 <= self.forecast_q <= 1.0:
            raise InputError(f"forecast_q must be a quantile in [0, 1], got {self.forecast_q!r}")
        cold_start([], 1.0, self.cold_start_s)  # ColdStart checks it (one check)
        check_count(self.cold_count_s, self.cold_start_s)
        check_hold(self.burst_hold_s)
        check_detect(self.detect_s)
        if not isinstance(self.compact_fewest, bool):
            raise InputError(f"compact_fewest must be a bool (True: step 4's compaction takes the adapt_solver's "
                             f"fewest-change plan where it changes fewer layouts), got {self.compact_fewest!r}")
        if not isinstance(self.compact_off, bool):
            raise InputError(f"compact_off must be a bool (True: step 4's compaction tries switch-offs alone first), "
                             f"got {self.compact_off!r}")
        if not isinstance(self.rent_at_epochs, bool):
            raise InputError(f"rent_at_epochs must be a bool (True: only epoch decisions pay the compaction rent or "
                             f"start it again), got {self.rent_at_epochs!r}")
        clocked = [k for k in ("rent_gpu_h", "mpc_h", "hours_budget") if getattr(self, k) is not None]
        if self.rent_at_epochs and clocked:  # a decision within an epoch that skipped the rent skipped them too
            raise InputError(f"rent_at_epochs (compact_rent's count at epoch decisions only) takes none of rent_gpu_h, "
                             f"mpc_h, hours_budget (read at every decision), got it with {', '.join(clocked)}")
        if self.rent_at_epochs and self.compact_rent is None:  # no rent to count: it changed nothing, without a word
            raise InputError("rent_at_epochs is read with compact_rent only (its count at epoch decisions); set "
                             "compact_rent or drop rent_at_epochs")
        if not isinstance(self.emergency_floor, bool):
            raise InputError(f"emergency_floor must be a bool (True: an emergency decision plans an overloaded "
                             f"service for at least its rate in the triggering minute), got {self.emergency_floor!r}")
        if not isinstance(self.cold_release, bool):
            raise InputError(f"cold_release must be a bool (True: the first decision after the cold start gives "
                             f"back the GPUs the floor held without rent), got {self.cold_release!r}")
        if self.mpc_h is not None:
            NeedForecast(self.mpc_h, self.mpc_q, self.mpc_window_s)  # it checks them (one check)
            if not (self.mpc_change_h >= 0 and math.isfinite(self.mpc_change_h)):
                raise InputError(f"mpc_change_h must be a finite number >= 0 (GPU-hours per layout change), got "
                                 f"{self.mpc_change_h!r}")
            if self.rent_gpu_h is not None or self.off_rent is not None or self.change_budget is not None \
                    or self.hours_budget is not None:
                raise InputError("mpc_h decides compactions on the forecast: it takes none of rent_gpu_h, off_rent, "
                                 "change_budget, hours_budget")
        defaults = {f.name: f.default for f in fields(self)}
        ignored = [k for k in self.knobs() if k not in knobs_read(self.policy) and getattr(self, k) != defaults[k]]
        if ignored:  # `static-peak[compact_rent=6]` ran static peak as if the knob were not there
            raise InputError(f"policy {self.policy} does not read " + ", ".join(
                f"{k} (a knob of {knob_reader(k)})" for k in ignored) + "; drop it or choose that policy")
        for knob, master in (("mpc_q", "mpc_h"), ("mpc_window_s", "mpc_h"), ("mpc_change_h", "mpc_h"),
                             ("forecast_q", "forecast_s")):  # set alone, it was ignored without a word
            if getattr(self, master) is None and getattr(self, knob) != defaults[knob]:
                raise InputError(f"{knob} is read with {master} only; set {master} or drop {knob}")
        if not (self.estimate_window_s > 0 and math.isfinite(self.estimate_window_s)):
            raise InputError(f"estimate_window_s must be > 0, got {self.estimate_window_s!r}")
        self.estimator()

    # the run's setup, shared by `run_adapt` and `stsched.planning.adapt.offline`
    def estimator(self) -> RateEstimator:
        """The rate estimator of these options."""
        return RateEstimator(self.estimate_window_s, self.headroom, self.statistic, self.burst_s, self.burst_q)

    def policy_options(self) -> PolicyOptions:
        """The options handed to the policy: solver, time limit, seed, solver parameters and the adaptive knobs."""
        return PolicyOptions(solver=self.solver, time_limit_s=self.time_limit_s, seed=self.seed,
                             params=self.solver_params, **self.knobs())

    def cold(self, instance: Instance, schedule: np.ndarray) -> ColdStart | None:
        """The cold start of `instance` (its declared rates; the observed start: the first `cold_count_s` seconds of
        `schedule`, the services' per-minute rates), None when off."""
        if self.cold_count_s is not None:
            return observed_start(schedule[:, 0], self.headroom, self.cold_count_s, self.seed)
        return cold_start([s.rate for s in instance.services], self.headroom, self.cold_start_s)

    def lead(self, instance: Instance) -> float:
        """The standby lead: a decision reads the rates up to this many seconds before it (0 without standby)."""
        return self.costs.of(instance.mechanism.kind) if self.downtime == "standby" else 0.0


@dataclass(frozen=True)
class EpochRow:
    epoch: int
    start_s: float
    gpus: float  # mean GPUs in use over the epoch
    decisions: int
    emergencies: int
    reconfigurations: int
    downtime_s: float
    requests: float  # counted (full minutes) plus expected (sampled minutes)
    within_slo: float
    attainment: float
    max_load: float  # largest per-minute actual / planned rate of any service
    full_minutes: int
    solve_s: float
    note: str
    solve_cpu_s: float = 0.0  # CPU seconds of the decisions (this process and its finished solver subprocesses)
    clock_cut: int = 0  # decisions with a solver call the wall clock may have cut (`AdaptResult.clock_cut`)


@dataclass(frozen=True)
class LayoutChange:
    """One decision that changed layouts (`AdaptResult.changes`): when, why it was made ("epoch": a boundary;
    "emergency": the minute after an overloaded one; "detector": within a minute, `detect_s`), the layout
    reconfigurations and tenant changes it paid, the GPUs in use before and after it, the policy's note, and its
    reconfigurations by what the changed GPU did (`stsched.plan.layout_change_kinds`: switched on, switched off,
    rebuilt in use; they add up to `reconfigurations`)."""

    t_s: float
    kind: str
    reconfigurations: int
    tenant_changes: int
    gpus_before: int
    gpus_after: int
    note: str
    switched_on: int = 0
    switched_off: int = 0
    rebuilt: int = 0


@dataclass(frozen=True)
class AdaptResult:
    policy: str
    trace: str
    epoch_s: float
    hours: float
    reconfigurations: int
    downtime_s: float  # GPU-seconds without service
    gpu_hours: float
    slo_attainment: float
    standby_extra_mb: float  # largest extra memory one GPU held while double-buffering (standby)
    tenant_changes: int  # partitions of kept layouts whose tenants changed (free, reported for transparency)
    decisions: int
    emergencies: int
    full_minutes: int
    sampled_minutes: int
    simulated_requests: int
    simulated_s: float  # seconds of trace time simulated
    per_service: dict[str, float]
    rows: tuple[EpochRow, ...]
    settings: dict = field(default_factory=dict)
    wall_s: float = 0.0
    # sum over decisions of |GPUs in use after - before|: the layout changes that are GPUs switched on or off (each
    # is one, `stsched.planning.adapt.offline`); the rest of `reconfigurations` rebuilt GPUs that stayed on
    gpu_switches: int = 0
    # decisions (the initial deployment included) with a solver call that the wall clock may have cut
    # (`stsched.planning.adapt.calls.clock_watch`); 0: every call stopped on its work limits, so the run's plans,
    # reconfigurations and GPU-hours are the same at any machine load
    clock_cut: int = 0
    # emergency decisions the burst detector made within a minute (`detect_s`; counted in `emergencies` too)
    detections: int = 0
    # every decision that changed layouts, in order (the attribution of `reconfigurations`: experiments.adapt_frontier)
    changes: tuple[LayoutChange, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = [asdict(r) for r in self.rows]
        d["changes"] = [asdict(c) for c in self.changes]
        return d

    def format(self) -> str:
        simulated = math.isfinite(self.slo_attainment)  # a plan-only run simulates nothing (attainment NaN)
        sim = (f"SLO attainment {self.slo_attainment:.4%}; " if simulated else "not simulated (plan only); ")
        tail = (f"; simulated {self.simulated_requests} requests over {self.simulated_s:.0f} s ({self.full_minutes} "
                f"full minutes, {self.sampled_minutes} sampled)" if simulated else "")
        lines = [f"{self.policy} on {self.trace} ({self.hours:.2f} h, epochs of {self.epoch_s:g} s): "
                 f"{self.reconfigurations} layout reconfigurations, downtime {self.downtime_s:.1f} GPU-s, "
                 f"{self.gpu_hours:.2f} GPU-hours, {sim}{self.decisions} decisions ({self.emergencies} "
                 f"emergency, {self.detections} of them within a minute){tail} in {self.wall_s:.1f} s"
                 + (f"; {self.clock_cut} decision(s) may have been cut by the {self.settings.get('time_limit_s', 0):g} s "
                    "time limit (wall clock): not reproducible at another machine load" if self.clock_cut else "")]
        for r in self.rows:
            att = f"attainment {r.attainment:8.4%}" if simulated else "attainment      n/a"
            lines.append(f"  epoch {r.epoch:3d} t={r.start_s:6.0f}s GPUs {r.gpus:5.1f} reconf {r.reconfigurations:2d} "
                         f"down {r.downtime_s:5.1f} load {r.max_load:5.2f} {att}  {r.note}")
        return "\n".join(lines)


def _cpu_s() -> float:
    """CPU seconds of this process and of its solver subprocesses that have finished (CBC runs as one)."""
    from stsched.forking import cpu_seconds

    return cpu_seconds()


def _initial(policy, instance: Instance) -> Plan:
    """The policy's initial plan; when the solver found none in its time limit (a large instance on a loaded
    machine), again with `INITIAL_PATIENCE` times the limit, then that squared (the deployment is not a decision);
    not when the solver proved that no plan exists (`ProvedInfeasible`: more time would find none)."""
    factors = (1.0, INITIAL_PATIENCE, INITIAL_PATIENCE ** 2)
    for i, factor in enumerate(factors):
        try:
            with patience(factor):
                return policy.initial(instance)
        except ProvedInfeasible:
            raise
        except InfeasibleError as err:
            if i == len(factors) - 1:
                raise
            log.warning("initial deployment: %s; again with %g x the time limit", err, factors[i + 1])
    raise AssertionError("unreachable")


def _decide(policy, inst: Instance, current: Plan | None, forecast: Callable[[], dict[str, float]] | None,
            options: AdaptOptions, t0: float, kind: str) -> tuple[Plan, str, Transition]:
    """One decision at time `t0` (or the initial deployment when `current` is None), with the forecast rates of
    `forecast_s` if any (`forecast()`, read only by a policy that takes them), `kind` one of `LayoutChange.kind`
    (told to a policy with a rent, `set_time`): the plan, its note and the transition."""
    if current is None:
        return _initial(policy, inst), "initial deployment (not counted)", Transition(0)
    if hasattr(policy, "set_time"):  # the rent in GPU-hours counts the time between decisions
        policy.set_time(t0, kind)
    if forecast is not None and hasattr(policy, "set_forecast"):
        policy.set_forecast(forecast())
    try:
        with decision_deadline(options.decision_s):
            plan, note = policy.next(inst, current)
    except InfeasibleError as err:
        plan, note = current, f"no new plan ({err}); kept the plan in force"
    if plan is not current:  # equal layouts placed where their tenants already are
        plan = keep_tenants(current, plan)
    return plan, note, transition(inst, current, plan, options.costs, options.downtime)


def with_headroom(message: str, headroom: float) -> str:
    """A no-plan message whose rates are after head-room, saying so: a "rate 1800 req/s" of a service whose instance
    says 1500 read as a wrong rate."""
    if headroom == 1.0:
        return message
    return (f"{message} (rates after head-room: {float(headroom)!r} x those estimated from the trace, which peaks at "
            f"each service's rate in the instance)")


def overload_floor(schedule: np.ndarray, m: int, names: tuple[str, ...], plan: Plan, trigger: float,
                   headroom: float) -> np.ndarray:
    """Per service: the rate of minute `m` x `headroom` where that minute loaded the service above `trigger` under
    `plan` (the minute that triggers an emergency decision), 0 elsewhere."""
    return np.where(loads(schedule, m, names, plan) > trigger, schedule[:, m] * headroom, 0.0)


def check_hours(hours: float | None, name: str = "azure-functions-2019") -> float | None:
    """`hours` of a re-planning run: None (the whole trace) or a number > 0 no longer than the count trace (a
    longer run was silently cut to the trace's span before) and no shorter than one of its one-minute bins (a
    shorter run followed no minute and reported 0.00 h as a result)."""
    if hours is None:
        return None
    span_h = load_count_trace(name).span_s / 3600.0
    if not (hours > 0 and math.isfinite(hours)) or hours > span_h * (1 + 1e-9):
        raise InputError(f"hours {hours!r}: trace {name!r} spans {span_h:g} h ({span_h * 60:.0f} minutes); "
                         f"ask for at most {span_h:g}")
    if hours * 60.0 < 1 - 1e-9:
        raise InputError(f"hours {hours!r}: shorter than one minute, the trace's bin; ask for at least "
                         f"{1 / 60:.4g}")
    return hours


def service_schedule(instance: Instance, options: AdaptOptions) -> tuple[np.ndarray, float, int]:
    """(per-minute rates of every service, the span in seconds, its minutes) as `run_adapt` follows them: service
    i on the (offset + i)-th busiest function, peak-normalised to its rate (or on (offset + i) mod pool)."""
    trace = load_count_trace(options.trace)
    off = check_function_offset(options.function_offset, options.trace)  # a whole number below its functions
    check_hours(options.hours, options.trace)
    if options.function_pool is None:
        schedule = rate_schedule([s.rate for s in instance.services], options.trace, "peak", offset=off)
    else:  # every function peak-normalised to 1, then service i on function (offset + i) mod pool at its rate
        shapes = rate_schedule([1.0] * options.function_pool, options.trace, "peak")
        idx = (off + np.arange(len(instance.services))) % options.function_pool
        schedule = shapes[idx] * np.array([s.rate for s in instance.services])[:, None]
    span = trace.span_s if options.hours is None else min(trace.span_s, options.hours * 3600.0)
    return schedule, span, int(math.ceil(span / trace.bin_s - 1e-9))


def run_adapt(instance: Instance, options: AdaptOptions = AdaptOptions()) -> AdaptResult:
    """Run one policy over the trace and report reconfigurations, downtime, GPU-hours and SLO attainment."""
    t_start = time.perf_counter()
    trace = load_count_trace(options.trace)
    names = instance.service_names
    schedule, span, minutes = service_schedule(instance, options)
    per_epoch = int(round(options.epoch_s / trace.bin_s))
    estimator = options.estimator()
    peak = instance.with_rates({n: float(r) for n, r in zip(names, schedule[:, :minutes].max(axis=1)
                                                            * options.headroom)})
    popts = options.policy_options()
    policy = make_policy(options.policy, peak, popts)
    if hasattr(policy, "set_epoch"):  # one step of the `mpc_h` horizon
        policy.set_epoch(options.epoch_s)
    forecaster = None if options.forecast_s is None else Forecast(options.forecast_s, options.forecast_q,
                                                                  options.headroom)
    cold = options.cold(instance, schedule)
    bursts = None if options.burst_hold_s is None else BurstMemory(options.burst_hold_s)
    lead = options.lead(instance)
    sim = Minutes(schedule, names, np.array([s.slo_ms for s in instance.services]), options, trace.bin_s)
    observed = Observed()  # floors of the detector's decisions, until the estimate sees their minutes
    builds = Builds()  # GPUs an emergency decision rebuilt in use: their old layout serves until built
    tot_n = np.zeros(len(names))
    tot_good = np.zeros(len(names))
    rows: list[EpochRow] = []
    acc: dict = {}
    current: Plan | None = None
    cold_over = False  # whether a decision after the cold start's floor has been made
    down_until: dict[int, float] = {}
    gpu_hours = downtime = standby_mb = 0.0
    reconf = decisions = emergencies = detections = tenants = switches = clock_cut = 0
    note = ""

    change_log: list[LayoutChange] = []

    def decide(t: float, kind: str, seen: float, floor: np.ndarray | None) -> tuple[Transition, float, float, int]:
        """One decision at time `t` (the initial deployment when nothing is in force), the estimate read up to
        `seen`, every service planned for at least `floor` (an emergency's observed rates x head-room, or None),
        `kind` one of `LayoutChange.kind`: the plan in force and the GPUs' availability updated; (its
        transition, wall s, CPU s, clock cut)."""
        nonlocal current, cold_over, down_until, switches, decisions, emergencies, clock_cut, note
        emergency = kind != "epoch"
        est = estimator.estimate(schedule, trace.bin_s, seen)
        if cold is not None:  # the declared rates under the estimate while the window fills
            est = cold.rates(est, t, current is None)
            if current is not None and not cold_over and t > cold.until_s:
                cold_over = True
                # the observed start holds no GPUs above the plan from scratch: nothing to give back
                if options.cold_release and not cold.observed and hasattr(policy, "waive_rent"):
                    policy.waive_rent()
        if bursts is not None:
            est = np.maximum(est, bursts.floor(len(names), seen))
        est = np.maximum(est, observed.floor(len(names), seen))
        if floor is not None:
            est = np.maximum(est, floor)
        inst = instance.with_rates({n: float(r) for n, r in zip(names, est)})
        forecast = None if forecaster is None else (lambda est=est, seen=seen: {n: float(r) for n, r in zip(
            names, robust_rates(est, forecaster.rates(schedule, trace.bin_s, seen)))})
        s0, c0 = time.perf_counter(), _cpu_s()
        with clock_watch() as cut:
            try:
                plan, note, trans = _decide(policy, inst, current, forecast, options, t, kind)
            except InfeasibleError as err:  # (the initial deployment's: a later decision keeps the plan in force)
                raise InfeasibleError(with_headroom(str(err), options.headroom)) from None
        if current is not None:
            switches += abs(plan.gpus_used - current.gpus_used)
            decisions += 1
            emergencies += int(emergency)
        clock_cut += int(bool(cut))
        if cut:
            log.warning("t=%.0f s: solver call(s) %s ran into half their time limit (wall clock): this decision "
                        "may differ at another machine load", t, ", ".join(cut))
        solve_s, cpu_s = time.perf_counter() - s0, _cpu_s() - c0
        if plan is not current and not check(peak if options.policy == "static-peak" else inst, plan).valid:
            raise RuntimeError(f"t={t:.0f} s: policy {options.policy} produced a plan the checker rejects")
        previous = current  # the plan this decision replaces
        before = current.gpus if current is not None else ()
        current = plan
        down_until = {g: u for g, u in down_until.items() if u > t and g not in trans.down}
        down_until.update({g: t + d for g, d in trans.down.items()})
        # an emergency's trigger exists only at t (whatever estimate it reads, `emergency_fresh`): nothing was built
        # ahead, so a GPU switched on serves once built, at t + lead, and is charged from t only (not its prep time)
        fresh = emergency and lead > 0
        if fresh:
            down_until.update({g: max(down_until.get(g, t), t + lead) for g in trans.standby
                               if g >= len(before) or not before[g].used})
            trans = replace(trans, prep_gpu_s=0.0)
        if previous is not None:  # and a GPU rebuilt in use serves its old layout until then (`Builds`)
            builds.record(t, previous, plan, trans.standby, tuple(trans.down), t + lead if fresh else None)
            if trans.reconfigurations:
                on, off, rebuilt = layout_change_kinds(previous, plan)
                change_log.append(LayoutChange(t, kind, trans.reconfigurations, trans.tenant_changes,
                                               previous.gpus_used, plan.gpus_used, note, on, off, rebuilt))
        return trans, solve_s, cpu_s, int(bool(cut))

    for m in tqdm(range(minutes), desc=f"adapt {options.policy}", disable=None if options.progress else True):
        t0, t1 = m * trace.bin_s, min((m + 1) * trace.bin_s, span)
        boundary = m % per_epoch == 0
        emergency = (current is not None and not boundary and options.trigger > 0
                     and loads(schedule, m - 1, names, current).max(initial=0.0) > options.trigger)
        steps: list[Transition] = []  # the minute's decisions: at its start, and the detector's within it
        solve_s = cpu_s = 0.0
        cut_now = 0
        if current is None or boundary or emergency:
            floor = None
            if emergency and options.emergency_floor:  # the triggering minute (m - 1) is seen: plan for it
                floor = overload_floor(schedule, m - 1, names, current, options.trigger, options.headroom)
            seen = t0 if emergency and options.emergency_fresh else max(0.0, t0 - lead)
            trans, solve_s, cpu_s, cut_now = decide(t0, "emergency" if emergency else "epoch", seen, floor)
            steps.append(trans)
        # the minute's spans: (start, the plan in force, its GPUs' availability, the builds under way)
        spans = [(t0, current, dict(down_until), builds.copy())]
        # the detector (`stsched.planning.adapt.detect`): an emergency decision `detect_s` into this minute
        count = (None if options.detect_s is None or options.trigger <= 0 or t0 + options.detect_s >= t1 else
                 observed_counts(schedule[:, m], options.detect_s, options.seed, m))  # (trigger 0: never flags)
        if count is None:
            hit = np.zeros(len(names), dtype=bool)
        else:
            hit = flagged(count, planned(current, names), options.trigger, options.detect_s)
        if hit.any():
            t_d = t0 + options.detect_s
            floor = np.where(hit, count / options.detect_s * options.headroom, 0.0)
            observed.add(t1, floor)
            seen = t_d if options.emergency_fresh else max(0.0, t_d - lead)
            more, s2, c2, k2 = decide(t_d, "detector", seen, floor)
            spans.append((t_d, current, dict(down_until), builds.copy()))
            detections += 1
            steps.append(more)
            solve_s, cpu_s, cut_now = solve_s + s2, cpu_s + c2, cut_now + k2
        load_m = loads(schedule, m, names, spans[0][1])  # this minute's, under the plan in force at its start
        if bursts is not None:  # this minute, as the decisions from its end on see it
            bursts.record(t1, load_m, schedule[:, m], options.trigger, options.headroom)
        if options.simulate:  # each span cut where a build ends, with the layouts serving then
            pieces = [(c, b.serving(p, c), d) for i, (a, p, d, b) in enumerate(spans)
                      for c in [a, *b.ends(a, spans[i + 1][0] if i + 1 < len(spans) else t1)]]
            n, good, full = sim.minute(m, instance, pieces, t1, last=m == minutes - 1)
        else:
            n, good, full = np.zeros(len(names)), np.zeros(len(names)), False
        tot_n += n
        tot_good += good
        ends = [x[0] for x in spans[1:]] + [t1]  # GPUs in use over the minute, time-weighted
        gpus = sum(x[1].gpus_used * (e - x[0]) for x, e in zip(spans, ends)) / (t1 - t0)
        gpu_hours += gpus * (t1 - t0) / 3600.0 + sum(x.prep_gpu_s for x in steps) / 3600.0
        down_s = sum(x.downtime_s for x in steps)
        changes = sum(x.reconfigurations for x in steps)
        downtime += down_s
        standby_mb = max([standby_mb, *(x.standby_extra_mb for x in steps)])
        reconf += changes
        tenants += sum(x.tenant_changes for x in steps)
        if boundary:
            acc = {"epoch": m // per_epoch, "start": t0, "gpus": 0.0, "minutes": 0, "decisions": 0, "emergencies": 0,
                   "reconf": 0, "down": 0.0, "n": 0.0, "good": 0.0, "load": 0.0, "full": 0, "solve": 0.0,
                   "cpu": 0.0, "cut": 0}
        acc["gpus"] += gpus
        acc["minutes"] += 1
        acc["decisions"] += int(boundary or emergency) + len(spans) - 1
        acc["emergencies"] += int(emergency) + len(spans) - 1
        acc["reconf"] += changes
        acc["down"] += down_s
        acc["n"] += float(n.sum())
        acc["good"] += float(good.sum())
        acc["load"] = max(acc["load"], float(load_m.max(initial=0.0)))
        acc["full"] += int(full)
        acc["solve"] += solve_s
        acc["cpu"] += cpu_s
        acc["cut"] += cut_now
        if (m + 1) % per_epoch == 0 or m == minutes - 1:
            rows.append(EpochRow(acc["epoch"], acc["start"], acc["gpus"] / acc["minutes"], acc["decisions"],
                                 acc["emergencies"], acc["reconf"], acc["down"], acc["n"], acc["good"],
                                 acc["good"] / max(acc["n"], 1e-12), acc["load"], acc["full"], acc["solve"], note,
                                 acc["cpu"], acc["cut"]))
    settings = {"sampling": options.sampling, "sample_s": options.sample_s, "warmup_s": options.warmup_s,
                "risky_load": options.risky_load, "headroom": options.headroom, "statistic": options.statistic,
                "trigger": options.trigger, "emergency_fresh": options.emergency_fresh,
                "emergency_floor": options.emergency_floor,
                "burst_hold_s": options.burst_hold_s, "detect_s": options.detect_s, "downtime": options.downtime,
                "reconfig_s": options.costs.of(instance.mechanism.kind),
                "reconfig_source": options.costs.source(instance.mechanism.kind), "reroute": options.reroute,
                "solver": options.solver, "solver_params": dict(options.solver_params), "instance": instance.name,
                "estimate_window_s": options.estimate_window_s, "burst_s": options.burst_s,
                "burst_q": options.burst_q, "forecast_s": options.forecast_s,
                "forecast_q": options.forecast_q, "cold_start_s": options.cold_start_s,
                "cold_release": options.cold_release, "cold_count_s": options.cold_count_s,
                "function_offset": options.function_offset,
                "function_pool": options.function_pool,
                "simulate": options.simulate, "time_limit_s": options.time_limit_s,
                "adaptive": options.knobs()}
    nan = not options.simulate
    per_service = {n: math.nan if nan else float(g / c) if c > 0 else 1.0 for n, g, c in zip(names, tot_good, tot_n)}
    attainment = math.nan if nan else float(tot_good.sum() / max(tot_n.sum(), 1e-12))
    return AdaptResult(options.policy, options.trace, options.epoch_s, span / 3600.0, reconf, downtime, gpu_hours,
                       attainment, standby_mb, tenants, decisions, emergencies, sim.full_minutes,
                       sim.sampled_minutes, sim.simulated_requests, sim.simulated_s, per_service, tuple(rows),
                       settings, time.perf_counter() - t_start, switches, clock_cut, detections, tuple(change_log))
