"""The solver protocol and registry: `solve(instance, options) -> SolveResult`.

A solver registers itself once under a name (`@register`); the CLI and the experiments look it up with
`get_solver(name)`.  `run_solver` times a solver and passes its plan through the checker, so no result leaves the
toolkit unjudged.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import MISSING, dataclass, field, fields, replace
from enum import Enum
from typing import Any, Callable, Protocol, get_type_hints

from stsched.checker import Report, check
from stsched.errors import InputError, SolverFailed, reraise_interrupt
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


def parse_objective(value: str | Objective) -> Objective:
    """An `Objective` from itself or its name; bad input naming the known ones otherwise."""
    try:
        return Objective(value)
    except ValueError:
        raise InputError(f"unknown objective {value!r} (known: {', '.join(o.value for o in Objective)})") from None


@dataclass(frozen=True)
class SolveOptions:
    objective: Objective = Objective.MIN_GPUS
    time_limit_s: float = 60.0
    seed: int = 0
    threads: int = 1
    engine: str | None = None  # engine inside one solver, e.g. "cbc" or "highs" for milp (None: the solver's own)
    warm_start: Plan | None = None
    current_plan: Plan | None = None  # the plan in force (objective adapt)
    max_scale_tol: float = 1e-3  # relative precision of alpha for max-scale searches
    params: tuple[tuple[str, str], ...] = ()  # solver options as typed (`--param k=v`), parsed by the solver's class
    progress: Callable[[str], None] | None = field(default=None, compare=False)  # incumbents of long solves

    HELP = {
        "objective": "min-gpus (fewest GPUs serving every rate), max-scale (largest alpha on the instance's GPUs) "
                     "or adapt (fewest reconfigurations from --current)",
        "time_limit_s": "seconds a solver may run (every solver stops within 10 percent + 1 s of it)",
        "seed": "random seed of the solver (>= 0)",
        "threads": "threads an exact engine may use (1 to 1024)",
        "engine": "engine inside a solver: cbc or highs for milp, milp-highs and cg (default: the solver's own; "
                  "other solvers have none and refuse it)",
    }

    def __post_init__(self) -> None:
        from stsched.validate import MAX_THREADS, check_int, check_real, check_time_limit

        # checked and stored as numbers: a time limit given as the text "5" passed the check and was a TypeError
        # inside the solver
        object.__setattr__(self, "time_limit_s", check_time_limit(self.time_limit_s, "time limit"))
        object.__setattr__(self, "seed", check_int(self.seed, "seed", minimum=0))
        object.__setattr__(self, "threads", check_int(self.threads, "threads", minimum=1,
                                                                 maximum=MAX_THREADS))
        object.__setattr__(self, "max_scale_tol", check_real(self.max_scale_tol, "max_scale_tol", minimum=0.0,
                                                             strict=True))
        object.__setattr__(self, "objective", parse_objective(self.objective))
        if self.engine is not None and not isinstance(self.engine, str):
            raise InputError(f"engine: expected None or the name of an engine, got {self.engine!r}")
        for name in ("warm_start", "current_plan"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Plan):
                raise InputError(f"{name}: expected None or a Plan, got {type(getattr(self, name)).__name__}")

    def param(self, key: str, default: str | None = None) -> str | None:
        return dict(self.params).get(key, default)

    def report(self, line: str) -> None:
        """A progress line of a long solve (an incumbent, a finished step), to `progress` when one is given."""
        if self.progress is not None:
            self.progress(line)

    def typed(self, cls: type, solver: str = "solver") -> Any:
        """The solver's options dataclass `cls` built from `params` (`parse_options`)."""
        return parse_options(cls, self.params, solver)


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
class NoOptions:
    """The solver takes no options."""


@dataclass(frozen=True)
class OptionInfo:
    """One solver option: its `--param` key, type, default and help."""

    name: str
    type: str
    default: Any
    help: str

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "default": self.default, "help": self.help}


MECHANISMS = ("mps", "sm", "mig")


@dataclass(frozen=True)
class SolverInfo:
    name: str
    factory: Callable[[], Solver]
    kind: str  # "exact", "heuristic" or "baseline"
    description: str = ""
    objectives: tuple[Objective, ...] = (Objective.MIN_GPUS, Objective.MAX_SCALE)
    late_share: bool = True  # plans by the checker's throughput rule including `Margin.late_share`
    #: models the Poisson margin's whole per-tenant credit (slack cycles, share of the service: docs/RULES.md);
    #: a solver that credits every tenant with the least credit of its batch (`Margin.credit`) plans validly but
    #: for a stricter rule, so its optimality and bounds do not carry over to a Poisson instance (`run_solver`)
    tenant_credit: bool = False
    options: type = NoOptions  # frozen dataclass of the solver's `--param` options
    mechanisms: tuple[str, ...] = MECHANISMS  # partition mechanisms it plans for
    alias_of: str | None = None  # a documented alias: the same solver with other defaults
    oracle: bool = False  # a test oracle for tiny instances (brute force), not for studies or the demo
    engines: tuple[str, ...] = ()  # the engines `SolveOptions.engine` may name (none: the solver has no engine)

    def option_info(self) -> tuple[OptionInfo, ...]:
        return option_info(self.options)

    def parse(self, params: tuple[tuple[str, str], ...]) -> Any:
        return parse_options(self.options, params, self.name)

    def check_engine(self, engine: str | None) -> None:
        """InputError unless `engine` is None or one of the solver's engines (a solver without engines ignored
        `--engine` silently; checked before any work by `run_solver` and `stsched solve`)."""
        if engine is None or engine in self.engines:
            return
        if not self.engines:
            able = ", ".join(n for n, info in sorted(REGISTRY.items()) if info.engines)
            raise InputError(f"solver {self.name!r} takes no --engine (got {engine!r}; solvers with engines: "
                             f"{able or 'none'})")
        raise InputError(f"solver {self.name!r}: engine {engine!r} (its engines: {', '.join(self.engines)})")

    def supports(self, instance: Instance, objective: Objective | None = None) -> str | None:
        """None when the solver plans for this instance (and objective), else the reason it does not."""
        if objective is not None and objective not in self.objectives:
            return (f"solver {self.name!r} does not support objective {objective.value!r} "
                    f"(its objectives: {', '.join(o.value for o in self.objectives)})")
        from stsched.validate import MAX_PLAN_GPUS

        if objective is Objective.MAX_SCALE and instance.gpus > MAX_PLAN_GPUS:
            return (f"objective max-scale plans on up to {instance.gpus} GPUs (instance {instance.name!r}): at most "
                    f"{MAX_PLAN_GPUS} (a plan holds a layout per GPU); min-gpus reads the count as a cap only")
        kind = instance.mechanism.kind.value
        if kind not in self.mechanisms:
            return f"solver {self.name!r} plans for {', '.join(self.mechanisms)} partitions, not {kind}"
        if instance.margin.late_share and not self.late_share:
            able = ", ".join(n for n, info in sorted(REGISTRY.items()) if info.late_share)
            return (f"solver {self.name!r} plans by its own published rule and ignores margin.late_share "
                    f"{instance.margin.late_share:g} (solvers that model it: {able})")
        return None

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "objectives": [o.value for o in self.objectives], "mechanisms": list(self.mechanisms),
                "late_share": self.late_share, "tenant_credit": self.tenant_credit, "alias_of": self.alias_of,
                "oracle": self.oracle, "engines": list(self.engines),
                "options": [o.to_dict() for o in self.option_info()]}


REGISTRY: dict[str, SolverInfo] = {}
KINDS = ("exact", "heuristic", "baseline")


def _declared_objective(name: str, value: str | Objective) -> Objective:
    """An objective of a solver's declaration, given as an `Objective` or its name (ValueError otherwise)."""
    try:
        return Objective(value)
    except ValueError:
        raise ValueError(f"solver {name}: objective {value!r} (known: {', '.join(o.value for o in Objective)})") \
            from None


def _check_name_free(name: str, cls: type) -> None:
    """ValueError when `name` belongs to another class: registered already (the same class imported again, e.g. a
    reloaded module, keeps its name), or declared by this package's own entry point for another class (a shipped
    name: the shipped solver keeps it whatever the import order).  A later `@register` of a shipped name replaced
    that solver without a word, its results reported under the name.  Only the shipped entry points' spellings are
    compared with where the class is defined: a third party's entry point may name its class by any importable
    spelling (a re-export from its package's __init__ was refused); a clash between third parties is the "already
    registered" refusal here or `_load_each`'s check that the loaded class is registered under the entry point's
    name."""
    spelled = f"{cls.__module__}:{cls.__qualname__}"
    held = REGISTRY.get(name)
    if held is not None and f"{held.factory.__module__}:{held.factory.__qualname__}" != spelled:
        raise ValueError(f"solver name {name!r} is already registered by {held.factory.__module__}."
                         f"{held.factory.__qualname__}: register {spelled} under another name")
    shipped = [f"{ep.module}:{ep.attr}" for ep in _entry_points()  # (a value may name [extras])
               if ep.name == name and getattr(ep.dist, "name", None) == SHIPPED]
    if shipped and spelled not in shipped:
        raise ValueError(f"solver name {name!r} is declared by entry point {shipped[0]} ({ENTRY_POINT_GROUP!r}, "
                         f"this package): register {spelled} under another name")


#: a solver's name: what `--solver NAME`, `--solvers NAME:key=value` and the studies' `NAME[knob=value]` can spell
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _check_name(name: Any) -> None:
    """TypeError / ValueError unless `name` is a name the command line can spell (a name of another type, e.g. an
    int, made every later listing of the registry a TypeError from `sorted`, for every solver)."""
    if not isinstance(name, str):
        raise TypeError(f"solver name {name!r}: expected a string, got {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"solver name {name!r}: use letters, digits, '_', '-' and '.' (a letter or digit first, "
                         f"at most 64): the command line's --solvers NAME:key=value and NAME[...] must spell it")


def _check_options_class(name: str, options: Any) -> None:
    """TypeError unless `options` is a frozen dataclass class whose fields `option_info` accepts (a class that is not
    a dataclass, or an instance given for the class, was a TypeError / AttributeError naming no solver).  Its
    defaults are tried at the first parse (`parse_options`), not here: building them may ask the registry (cg's
    default warm start names a solver), which is still loading."""
    import dataclasses

    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise TypeError(f"solver {name}: options must be a dataclass class, got {type(options).__name__} "
                        f"{options!r:.60}")
    if not options.__dataclass_params__.frozen:  # a solver could change its options while it runs
        raise TypeError(f"solver {name}: options class {options.__name__} must be a frozen dataclass "
                        f"(@dataclass(frozen=True))")
    option_info(options)


def _check_solver_class(name: str, cls: Any) -> None:
    """TypeError unless `cls` is a class with a `solve` method that can be built without arguments (a function, a
    class without `solve` or one whose constructor needs arguments registered, then failed at every solve)."""
    import inspect

    if not isinstance(cls, type):
        raise TypeError(f"solver {name}: @register decorates a class, got {type(cls).__name__} {cls!r:.60}")
    if not callable(getattr(cls, "solve", None)):
        raise TypeError(f"solver {name}: class {cls.__qualname__} has no solve(self, instance, options) method")
    try:
        inspect.signature(cls).bind()
    except TypeError as e:
        raise TypeError(f"solver {name}: class {cls.__qualname__} must be constructible without arguments "
                        f"({e})") from None
    except ValueError:  # no signature to read (a builtin base): its construction is tried at the first solve
        pass


def _entry_points() -> list:
    """The `stsched.solvers` entry points: those `load_solvers` is loading, else read now."""
    from importlib.metadata import entry_points

    return _LOADING if _LOADING is not None else list(entry_points(group=ENTRY_POINT_GROUP))


def register(name: str, kind: str, description: str = "",
             objectives: tuple[Objective, ...] = (Objective.MIN_GPUS, Objective.MAX_SCALE), late_share: bool = True,
             options: type = NoOptions, mechanisms: tuple[str, ...] = MECHANISMS, alias_of: str | None = None,
             oracle: bool = False, tenant_credit: bool = False, engines: tuple[str, ...] = ()):
    """Class decorator: register a solver class (constructed without arguments) under `name`.  `options`: the
    frozen dataclass of its `--param` options (typed fields with defaults; help from `field(metadata={"help":
    ...})` or from `name: text` lines of the class docstring); `mechanisms`: the partition kinds it plans for;
    `late_share` False for solvers that plan by a published rule of their own and ignore `Margin.late_share`;
    `alias_of`: a documented alias of another registered solver; `oracle`: a test oracle for tiny instances;
    `tenant_credit`: it models the Poisson margin's per-tenant credit (`SolverInfo.tenant_credit`); `engines`: the
    engines `--engine` may name, the first its default (none: `--engine` is refused)."""
    _check_name(name)
    for what, given in (("objectives", objectives), ("mechanisms", mechanisms), ("engines", engines)):
        if not isinstance(given, (tuple, list)):  # "mps" was read as the mechanisms 'm', 'p' and 's'
            raise TypeError(f"solver {name}: {what} must be a tuple of names, got {type(given).__name__} "
                            f"{given!r:.60}")
    bad = [m for m in mechanisms if m not in MECHANISMS]
    if bad:
        raise ValueError(f"solver {name}: unknown mechanisms {bad}")
    if kind not in KINDS:
        raise ValueError(f"solver {name}: kind {kind!r} (expected one of {', '.join(KINDS)})")
    objectives = tuple(_declared_objective(name, o) for o in objectives)
    _check_options_class(name, options)  # a declaration error shows at import, not at the first solve

    def wrap(cls):
        _check_solver_class(name, cls)
        _check_name_free(name, cls)
        REGISTRY[name] = cls.solver_info = SolverInfo(name, cls, kind,
                                                      description or (cls.__doc__ or "").strip().split("\n")[0],
                                                      objectives, late_share, tenant_credit, options,
                                                      tuple(mechanisms), alias_of, oracle, tuple(engines))
        cls.name = name
        return cls

    return wrap


# ---------------------------------------------------------------------------------------------- typed options
_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _doc_help(cls: type) -> dict[str, str]:
    """`name: text` entries of a class docstring (continuation lines indented deeper), by name."""
    out: dict[str, str] = {}
    current, indent = None, 0
    for line in (cls.__doc__ or "").splitlines():
        stripped = line.strip()
        lead = len(line) - len(line.lstrip())
        head, sep, rest = stripped.partition(":")
        if sep and head.isidentifier() and (current is None or lead <= indent):
            current, indent = head, lead
            out[current] = rest.strip()
        elif current is not None and stripped and lead > indent:
            out[current] += " " + stripped
        else:
            current = None
    return out


def option_info(cls: type) -> tuple[OptionInfo, ...]:
    """The declared options of a solver's options dataclass."""
    hints = get_type_hints(cls)
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):  # a subclass's docstring documents its own fields, its bases theirs
        docs.update(_doc_help(base))
    out = []
    for f in fields(cls):
        kind = hints.get(f.name)
        if kind not in _TYPES.values():
            raise TypeError(f"{cls.__name__}.{f.name}: option types are int, float, bool or str, got {kind}")
        if f.default is MISSING and f.default_factory is MISSING:  # refused at import, not blamed on --param
            raise TypeError(f"{cls.__name__}.{f.name}: an option needs a default (a solver runs without --param)")
        default = f.default if f.default is not MISSING else None
        out.append(OptionInfo(f.name, kind.__name__, default, f.metadata.get("help") or docs.get(f.name, "")))
    return tuple(out)


def _parse_value(kind: str, raw: str) -> Any:
    text = str(raw).strip()
    if kind == "bool":
        low = text.lower()
        if low not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(raw)
        return low in ("1", "true", "yes")
    if kind == "int":
        return int(text)
    if kind == "float":
        v = float(text)
        if not math.isfinite(v):
            raise ValueError(raw)
        return v
    return text


def parse_options(cls: type, params: tuple[tuple[str, str], ...] | dict[str, Any], solver: str = "solver") -> Any:
    """Build `cls` from `--param key=value` strings: an unknown key or a value of the wrong type is an InputError
    naming it and listing the valid keys (a typo must not pass silently); the class's own checks run too."""
    known = {o.name: o for o in option_info(cls)}
    valid = ", ".join(sorted(known)) or "none: this solver takes no options"
    values: dict[str, Any] = {}
    for key, raw in (params.items() if isinstance(params, dict) else params):
        if key not in known:
            raise InputError(f"solver {solver!r}: unknown option {key!r} (valid keys: {valid})")
        try:
            values[key] = _parse_value(known[key].type, raw)
        except ValueError:
            raise InputError(f"solver {solver!r}: option {key}={raw!r} is not a finite {known[key].type} "
                             f"(valid keys: {valid})") from None
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:  # InputError is a ValueError
        _check_defaults(cls, solver)
        if isinstance(e, InputError):
            raise InputError(f"solver {solver!r}: {e}") from None
        raise InputError(f"solver {solver!r}: bad option value: {e}") from None


def _check_defaults(cls: type, solver: str) -> None:
    """SolverFailed when options class `cls` refuses its own defaults: a fault of the solver's declaration, not of
    the `--param` values given (every solve of such a solver was refused as "bad option value" with none given)."""
    try:
        cls()
    except Exception as e:  # noqa: BLE001 - any failure of the declared defaults is the declaration's fault
        raise SolverFailed(f"solver {solver!r}: the defaults of its options class {cls.__name__} fail its own "
                           f"check ({type(e).__name__}: {e}): a fault of the solver's declaration, not of the "
                           f"options given") from None


ENTRY_POINT_GROUP = "stsched.solvers"
SHIPPED = "stsched"  # this package's distribution: its entry points' names are its solvers'
_LOADED = False
_LOADING: list | None = None  # the entry points while `load_solvers` loads them (read once, not per @register)
FAILED: dict[str, str] = {}  # entry points that did not load: name -> why (said when the name is asked for)


def load_solvers() -> None:
    """Load every solver declared in the `stsched.solvers` entry-point group (this package's and any installed
    third-party package's); each class registers itself with `@register` on import.  A plugin that fails to import
    is skipped with a warning naming it, so one broken package does not take the others down."""
    global _LOADED
    if _LOADED:
        return
    from importlib.metadata import entry_points

    global _LOADING
    FAILED.clear()
    _LOADING = list(entry_points(group=ENTRY_POINT_GROUP))
    try:
        _load_each(_LOADING)
    finally:
        _LOADING = None
    if not REGISTRY:
        raise InputError(f"no solver is registered: the {ENTRY_POINT_GROUP!r} entry points are missing "
                         "(install the package: pip install -e .)")
    _LOADED = True


def _load_each(eps: list) -> None:
    for ep in eps:
        try:
            cls = ep.load()
        except Exception as e:  # noqa: BLE001 - a third party's import error must not stop the registry
            reraise_interrupt(e)  # an interrupt during the import: not the plugin's failure
            FAILED[ep.name] = f"{ep.value}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            log.warning("solver plugin %s (%s) failed to load: %s", ep.name, ep.value, e)
            continue
        info = getattr(cls, "solver_info", None)  # what @register recorded, also when the module was imported before
        if not isinstance(info, SolverInfo) or info.name != ep.name:
            FAILED[ep.name] = f"{ep.value} is not registered under that name with @register"
            log.warning("solver plugin %s (%s) is not registered under that name with @register", ep.name, ep.value)
            continue
        REGISTRY[ep.name] = info


def unknown_solver(name: str, also: tuple[str, ...] = ()) -> InputError:
    """The refusal of a solver name that is not registered: an installed plugin that failed to load says so and why
    (it was "unknown solver", blaming the name typed), any other name lists the known ones (and `also`, the words
    a study's `--solvers` takes besides names)."""
    if name in FAILED:
        return InputError(f"solver {name!r} is installed but failed to load: {FAILED[name]}")
    return InputError(f"unknown solver {name!r} (known: {', '.join([*sorted(REGISTRY), *also])})")


def get_solver(name: str) -> Solver:
    load_solvers()
    if not isinstance(name, str) or name not in REGISTRY:
        raise unknown_solver(name)
    from stsched.claims import guarded

    return guarded(name, REGISTRY[name].factory)  # a constructor that raises: the solver's fault, one line


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
    info = REGISTRY[name]
    info.parse(options.params)  # unknown keys and bad values are refused before any work
    info.check_engine(options.engine)
    reason = info.supports(instance, options.objective)
    if reason:
        raise InputError(reason)
    from stsched.claims import check_shape, guarded, judge_result

    t0 = time.perf_counter()
    result = guarded(name, solver.solve, instance, options)
    wall = time.perf_counter() - t0
    check_shape(name, result)
    result = replace(result, solver=name, wall_s=wall)
    if instance.margin.late_share and not info.tenant_credit:
        result = _least_credit_claims(instance, options.objective, result)
    report = None
    if result.plan is not None:  # the plan judged is the plan returned (a scale-0 one could not be read back)
        result = replace(result, plan=_as_asked(name, options.objective, result.plan))
        report = check(instance, result.plan)
        if not report.valid:
            log.warning("solver %s returned a plan the checker rejects: %s", name,
                        "; ".join(str(v) for v in report.violations[:3]))
    return Judged(judge_result(name, instance, options, result, report), report)


def _as_asked(name: str, objective: Objective, plan: Plan) -> Plan:
    """The plan as the objective asks it to be judged and returned: min-gpus and adapt serve the offered rates, so a
    plan that says it serves them at a scale below 1 is set to scale 1 (a plugin's empty plan at scale 0 was called
    valid, 'optimal' with 0 GPUs: the checker judges a plan at its own scale, and scale 0 asks for no coverage)."""
    if objective is Objective.MAX_SCALE or plan.scale >= 1.0:
        return plan
    log.warning("solver %s returned a plan at scale %g for objective %s: judged and returned at the offered rates "
                "(scale 1)", name, plan.scale, objective.value)
    return replace(plan, scale=1.0)


def _lp_loosened(instance: Instance, objective: Objective, bound: float, lp_gpus: float | None = None
                 ) -> float | None:
    """A least-credit solver's bound loosened to the LP bound, which credits every point with the most any tenant
    of it gets (`stsched.bounds`): the larger alpha or the fewer GPUs of the two; None for other objectives.
    `lp_gpus`: the efficiency LP's fractional GPUs when the solver computed them (`BoundResult.lp_gpus`), else
    they are computed here (a scan of every service)."""
    from stsched.bounds import lp_bound_gpus, lp_bound_scale

    if objective is Objective.MAX_SCALE:
        return max(bound, lp_bound_scale(instance, lp_gpus))
    if objective is Objective.MIN_GPUS:
        return min(bound, lp_bound_gpus(instance, lp_gpus))
    return None


def _least_credit_claims(instance: Instance, objective: Objective, result: SolveResult) -> SolveResult:
    """What a solver that credits every tenant with its batch's least Poisson credit may claim on a Poisson
    instance: its plan (valid: the checker credits at least that), not optimality, infeasibility or its own bound
    (they hold for the stricter rule it planned by); its bound is loosened to the LP bound, which credits every
    point with the most any tenant of it gets (`stsched.bounds`)."""
    status, bound, note = result.status, result.bound, []
    if status is Status.OPTIMAL:
        status = Status.FEASIBLE
        note.append("optimal for the least Poisson credit per batch, not for the per-tenant credit")
    elif status is Status.INFEASIBLE:
        status = Status.UNKNOWN
        note.append("infeasible for the least Poisson credit per batch; the per-tenant credit may admit a plan")
    if bound is not None:
        bound = _lp_loosened(instance, objective, bound)
    if not note and bound == result.bound:
        return result
    message = "; ".join([result.message] * bool(result.message) + note)
    return replace(result, status=status, bound=bound, message=message,
                   bound_method=result.bound_method if bound == result.bound else "lp-efficiency")


# ------------------------------------------------------------------------------------------------- bounds
@dataclass(frozen=True)
class BoundResult:
    """A bound on the optimum of the full problem from a registered bound provider (a solver class with a
    `bound(instance, options)` method): `bound` is a lower bound on GPUs (min-gpus, whole GPUs) or an upper bound on
    alpha (max-scale), valid whether or not `converged`; `lp_value` the value of the LP it solved (its optimum when
    `converged`); `columns` and `pricing_calls` the work done; `settled` (min-gpus, not converged): the bound rounded
    up already equals the LP's value rounded up, so a converged LP would give the same whole GPUs;
    `feasibility_checked` false: the time limit cut the provider's feasibility scan (`stsched.bounds.Screen.complete`),
    so `infeasible_services` names those found among the services scanned only (empty: none found, not none)."""

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
    settled: bool = False
    feasibility_checked: bool = True
    # the efficiency LP's fractional GPUs (`stsched.bounds.lp_gpus`) when the provider computed them in its set-up:
    # `run_bound`'s loosening on Poisson instances reads them instead of scanning every service again
    lp_gpus: float | None = field(default=None, repr=False)

    @property
    def value(self) -> float | None:
        """The bound (the name `stsched.bounds.LpBound` uses, so `st.bound(...).value` reads either)."""
        return self.bound

    def to_dict(self) -> dict:
        return {"objective": self.objective.value, "bound": _num(self.bound), "lp_value": _num(self.lp_value),
                "converged": self.converged, "settled": self.settled, "columns": self.columns,
                "pricing_calls": self.pricing_calls,
                "wall_s": round(self.wall_s, 6), "method": self.method, "message": self.message,
                "infeasible_services": list(self.infeasible_services),
                "feasibility_checked": self.feasibility_checked}


def check_bound_provider(name: str, objective: Objective, params: tuple[tuple[str, str], ...] | None = None) -> None:
    """Raise InputError unless registered solver `name` provides a bound for `objective` and, with `params`, its
    bound reads each of them and takes their values (checked before any work: by `run_bound`, by `stsched bound`
    before the instance's load, by `stsched solve --bound`)."""
    load_solvers()
    able = ", ".join(n for n, info in sorted(REGISTRY.items()) if hasattr(info.factory, "bound"))
    if name not in REGISTRY or not hasattr(REGISTRY[name].factory, "bound"):
        raise InputError(f"{name!r} provides no bound (bound providers: {able or 'none'})")
    if objective not in (Objective.MIN_GPUS, Objective.MAX_SCALE):
        raise InputError(f"bound: objective {objective.value!r} (expected min-gpus or max-scale)")
    if params is None:
        return
    REGISTRY[name].parse(params)  # unknown keys and bad values
    reads = bound_params(name)
    unread = [k for k, _ in params if k not in reads]
    if unread:  # an option of the provider's solve only was ignored without a word (bound --param lns_free=20)
        raise InputError(f"bound provider {name!r}: {', '.join(unread)}: read by its solve only, not by its bound "
                         f"(the bound reads: {', '.join(reads) or 'none'})")


def bound_params(name: str) -> tuple[str, ...]:
    """The `--param` keys registered provider `name`'s bound reads: its class's `bound_params`, else every option."""
    info = REGISTRY[name]
    return tuple(getattr(info.factory, "bound_params", (o.name for o in info.option_info())))


def run_bound(name: str, instance: Instance, options: SolveOptions = SolveOptions()) -> BoundResult:
    """The bound of registered solver `name` (its class has `bound(instance, options)`), timed."""
    check_bound_provider(name, options.objective, options.params)  # (before any work)
    return checked_bound(name, instance, options)


def checked_bound(name: str, instance: Instance, options: SolveOptions) -> BoundResult:
    """`run_bound` once `check_bound_provider(name, options.objective, options.params)` has passed (`stsched bound`
    checks before the instance's load: before session 19 it was checked twice)."""
    solver = get_solver(name)
    from stsched.claims import guarded

    t0 = time.perf_counter()
    res = guarded(name, solver.bound, instance, options)
    if not isinstance(res, BoundResult):
        raise SolverFailed(f"bound provider {name!r} returned {type(res).__name__}, not a BoundResult")
    if instance.margin.late_share and not REGISTRY[name].tenant_credit and res.bound is not None:
        # its columns credit time-shared tenants with the least Poisson credit: loosened to the LP bound, which
        # holds for the checker's per-tenant credit (`_least_credit_claims`)
        loose = _lp_loosened(instance, options.objective, res.bound, res.lp_gpus)
        if loose != res.bound:
            res = replace(res, bound=loose, method="lp-efficiency",
                          message="; ".join([res.message] * bool(res.message)
                                            + ["the per-tenant Poisson credit: the LP bound"]))
    return replace(res, wall_s=time.perf_counter() - t0)
