"""The solver protocol and registry: `solve(instance, options) -> SolveResult`.

A solver registers itself once under a name (`@register`); the CLI and the experiments look it up with
`get_solver(name)`.  `run_solver` times a solver and passes its plan through the checker, so no result leaves the
toolkit unjudged.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Callable, Protocol

from stsched.checker import Report, check
from stsched.errors import InputError
from stsched.plan import Plan
from stsched.problem import Instance

log = logging.getLogger(__name__)


class Objective(str, Enum):
    MIN_GPUS = "min-gpus"  # serve every rate at its SLO with the fewest GPUs
    MAX_SCALE = "max-scale"  # on instance.gpus GPUs, the largest alpha such that alpha * rates are served
    ADAPT = "adapt"  # from options.current_plan, least reconfiguration first, then fewest GPUs


class Status(str, Enum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SolveOptions:
    objective: Objective = Objective.MIN_GPUS
    time_limit_s: float = 60.0
    seed: int = 0
    threads: int = 1
    backend: str | None = None  # engine choice inside one solver, e.g. "cbc" or "highs" for milp
    warm_start: Plan | None = None
    current_plan: Plan | None = None  # the plan in force (objective adapt)
    max_scale_tol: float = 1e-3  # relative precision of alpha for max-scale searches
    params: tuple[tuple[str, str], ...] = ()  # solver-specific options, documented by each solver

    def param(self, key: str, default: str | None = None) -> str | None:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class SolveResult:
    """What a solver returns.  `objective` is GPUs (min-gpus), alpha (max-scale) or the reconfiguration cost
    (adapt); `bound` is a proven bound on it (lower for min-gpus/adapt, upper for max-scale) or None."""

    solver: str
    status: Status
    objective: float | None = None
    bound: float | None = None
    wall_s: float = 0.0
    plan: Plan | None = None
    discretisation: str = ""
    message: str = ""
    infeasible_services: tuple[str, ...] = ()
    bound_method: str = ""  # how `bound` was obtained (e.g. "lp-efficiency", "layout-lp", "cg-lagrangian")

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        if self.objective == self.bound:
            return 0.0
        # relative to the larger of the two, so the gap lies in [0, 1] for min-gpus and max-scale alike
        return abs(self.objective - self.bound) / max(abs(self.objective), abs(self.bound), 1e-12)

    @property
    def gpus(self) -> int | None:
        return None if self.plan is None else self.plan.gpus_used

    @property
    def scale(self) -> float | None:
        return None if self.plan is None else self.plan.scale


class Solver(Protocol):
    name: str

    def solve(self, instance: Instance, options: SolveOptions) -> SolveResult: ...


@dataclass(frozen=True)
class SolverInfo:
    name: str
    factory: Callable[[], Solver]
    kind: str  # "exact", "heuristic" or "baseline"
    description: str = ""
    objectives: tuple[Objective, ...] = (Objective.MIN_GPUS, Objective.MAX_SCALE)
    late_share: bool = True  # plans by the checker's throughput rule including `Margin.late_share`


REGISTRY: dict[str, SolverInfo] = {}


def register(name: str, kind: str, description: str = "",
             objectives: tuple[Objective, ...] = (Objective.MIN_GPUS, Objective.MAX_SCALE), late_share: bool = True):
    """Class decorator: register a solver class (constructed without arguments) under `name`; `late_share` False
    for solvers that plan by a published rule of their own and ignore `Margin.late_share`."""

    def wrap(cls):
        REGISTRY[name] = cls.solver_info = SolverInfo(name, cls, kind,
                                                      description or (cls.__doc__ or "").strip().split("\n")[0],
                                                      objectives, late_share)
        cls.name = name
        return cls

    return wrap


ENTRY_POINT_GROUP = "stsched.solvers"
_LOADED = False


def load_solvers() -> None:
    """Load every solver declared in the `stsched.solvers` entry-point group (this package's and any installed
    third-party package's); each class registers itself with `@register` on import.  A plugin that fails to import
    is skipped with a warning naming it, so one broken package does not take the others down."""
    global _LOADED
    if _LOADED:
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as e:  # noqa: BLE001 - a third party's import error must not stop the registry
            log.warning("solver plugin %s (%s) failed to load: %s", ep.name, ep.value, e)
            continue
        info = getattr(cls, "solver_info", None)  # what @register recorded, also when the module was imported before
        if not isinstance(info, SolverInfo) or info.name != ep.name:
            log.warning("solver plugin %s (%s) is not registered under that name with @register", ep.name, ep.value)
            continue
        REGISTRY[ep.name] = info
    if not REGISTRY:
        raise InputError(f"no solver is registered: the {ENTRY_POINT_GROUP!r} entry points are missing "
                         "(install the package: pip install -e .)")
    _LOADED = True


def get_solver(name: str) -> Solver:
    load_solvers()
    try:
        return REGISTRY[name].factory()
    except KeyError:
        raise InputError(f"unknown solver {name!r} (known: {', '.join(sorted(REGISTRY))})") from None


def available_solvers() -> dict[str, SolverInfo]:
    load_solvers()
    return dict(sorted(REGISTRY.items()))


@dataclass(frozen=True)
class Judged:
    """A solver's result with the checker's verdict on its plan."""

    result: SolveResult
    report: Report | None = field(default=None)

    @property
    def valid(self) -> bool | None:
        return None if self.report is None else self.report.valid

    # the solver's result, read through: `judged.plan`, `judged.objective`, ... (the Python API returns a Judged)
    @property
    def plan(self) -> Plan | None:
        return self.result.plan

    @property
    def objective(self) -> float | None:
        return self.result.objective

    @property
    def bound(self) -> float | None:
        return self.result.bound

    @property
    def gap(self) -> float | None:
        return self.result.gap

    @property
    def status(self) -> Status:
        return self.result.status

    @property
    def message(self) -> str:
        return self.result.message

    def to_dict(self) -> dict:
        r = self.result
        return {
            "solver": r.solver, "status": r.status.value, "objective": _num(r.objective), "bound": _num(r.bound),
            "gap": _num(r.gap), "wall_s": round(r.wall_s, 6), "gpus": r.gpus, "scale": _num(r.scale),
            "valid": self.valid, "discretisation": r.discretisation, "message": r.message,
            "infeasible_services": list(r.infeasible_services), "bound_method": r.bound_method,
        }


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def run_solver(name: str, instance: Instance, options: SolveOptions = SolveOptions()) -> Judged:
    """Run a registered solver, time it and check its plan."""
    solver = get_solver(name)
    if options.objective not in REGISTRY[name].objectives:
        raise InputError(f"solver {name!r} does not support objective {options.objective.value!r}")
    if instance.margin.late_share and not REGISTRY[name].late_share:
        able = ", ".join(n for n, info in sorted(REGISTRY.items()) if info.late_share)
        raise InputError(f"solver {name!r} plans by its own published rule and ignores margin.late_share "
                         f"{instance.margin.late_share:g} (solvers that model it: {able})")
    t0 = time.perf_counter()
    result = solver.solve(instance, options)
    wall = time.perf_counter() - t0
    result = replace(result, solver=name, wall_s=wall)
    report = None
    if result.plan is not None:
        report = check(instance, result.plan)
        if not report.valid:
            log.warning("solver %s returned a plan the checker rejects: %s", name,
                        "; ".join(str(v) for v in report.violations[:3]))
    return Judged(result, report)


# ------------------------------------------------------------------------------------------------- bounds
@dataclass(frozen=True)
class BoundResult:
    """A bound on the optimum of the full problem from a registered bound provider (a solver class with a
    `bound(instance, options)` method): `bound` is a lower bound on GPUs (min-gpus, whole GPUs) or an upper bound on
    alpha (max-scale), valid whether or not `converged`; `lp_value` the value of the LP it solved (its optimum when
    `converged`); `columns` and `pricing_calls` the work done."""

    objective: Objective
    bound: float | None
    lp_value: float | None
    converged: bool
    columns: int
    pricing_calls: int
    wall_s: float
    method: str
    message: str = ""
    infeasible_services: tuple[str, ...] = ()

    @property
    def value(self) -> float | None:
        """The bound (the name `stsched.bounds.LpBound` uses, so `st.bound(...).value` reads either)."""
        return self.bound

    def to_dict(self) -> dict:
        return {"objective": self.objective.value, "bound": _num(self.bound), "lp_value": _num(self.lp_value),
                "converged": self.converged, "columns": self.columns, "pricing_calls": self.pricing_calls,
                "wall_s": round(self.wall_s, 6), "method": self.method, "message": self.message,
                "infeasible_services": list(self.infeasible_services)}


def run_bound(name: str, instance: Instance, options: SolveOptions = SolveOptions()) -> BoundResult:
    """The bound of registered solver `name` (its class has `bound(instance, options)`), timed."""
    solver = get_solver(name)
    if not hasattr(solver, "bound"):
        able = ", ".join(n for n, info in sorted(REGISTRY.items()) if hasattr(info.factory, "bound"))
        raise InputError(f"solver {name!r} provides no bound (bound providers: {able or 'none'})")
    if options.objective not in (Objective.MIN_GPUS, Objective.MAX_SCALE):
        raise InputError(f"bound: objective {options.objective.value!r} (expected min-gpus or max-scale)")
    t0 = time.perf_counter()
    res = solver.bound(instance, options)
    return replace(res, wall_s=time.perf_counter() - t0)
