"""The Python API: what the CLI does, as functions with the CLI's defaults.

    import stsched as st
    inst = st.scenario("gpulet-m2", gpus=2)
    a = st.solve(inst, "heuristic", objective="max-scale")
    assert st.check(inst, a.plan).valid
    sim = st.simulate(inst, a.plan, arrivals="poisson", duration=30, seed=1)
    print(a.objective, sim.slo_attainment)

Every default is read from the option class the CLI reads it from (`SolveOptions`, `SimOptions`, `AdaptOptions`),
so a call here and the same command line give the same result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from stsched.checker import Report
from stsched.checker import check as _check
from stsched.errors import InputError
from stsched.io import load_instance, load_plan, save_instance, save_plan
from stsched.plan import Plan, Reconfiguration
from stsched.problem import Instance
from stsched.registry import Judged, Objective, SolveOptions, parse_objective as _objective
from stsched.validate import check_int, check_real

_SOLVE = SolveOptions()


def _need(value: Any, kind: type, what: str, optional: bool = False) -> Any:
    """`value` if it is a `kind` (or None when optional), else InputError naming the argument: a plan given where
    an instance belongs, or a path, was an AttributeError from deep inside."""
    if (value is None and optional) or isinstance(value, kind):
        return value
    path = isinstance(value, (str, os.PathLike)) and kind in (Instance, Plan)
    hint = f" (load a file with st.load_{kind.__name__.lower()})" if path else ""
    names = {str: "string", bool: "bool (True or False)", os.PathLike: "path"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    said = " or ".join(names.get(k, k.__name__) for k in kinds)
    raise InputError(f"{what}: expected {'None or ' if optional else ''}a{'n' if said[0].upper() in 'AEIOU' else ''} "
                     f"{said}, got {type(value).__name__} {value!r:.60}{hint}")


def _check_types(cls: type, given: Mapping[str, Any], what: str) -> None:
    """Options of dataclass `cls` whose field is a number, a string or a bool (or None where allowed) given as
    another type: InputError naming the option (the text "5" for a number was a TypeError from inside)."""
    import dataclasses
    import types
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in given:
            continue
        hint, v = hints[f.name], given[f.name]
        allowed = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
        if v is None and type(None) in allowed:
            continue
        simple = allowed & {int, float, str, bool}
        if not simple or allowed - simple - {type(None)}:
            continue  # a richer type (costs, params): its own class checks it
        ok = (isinstance(v, bool) if bool in simple else
              isinstance(v, str) if str in simple else
              isinstance(v, (int, float)) and not isinstance(v, bool) and (float in simple or isinstance(v, int)))
        if not ok:
            want = " or ".join(sorted(k.__name__ for k in simple)) + (" or None" if type(None) in allowed else "")
            raise InputError(f"{what}: {f.name}: expected {want}, got {type(v).__name__} {v!r:.60}")


def scenario(name: str, **kwargs: Any) -> Instance:
    """An instance by scenario name, as `stsched scenario NAME`: `parvagpu` (row=...), `gpulet-MIX` (gpus, rate,
    latency_factor), `igniter-example` (gpus), `random` (services, gpus, seed, dataset, load), `profile` (dataset
    or folder, services, seed, slo_factor, load, gpus), `services` (path of a CSV, dataset)."""
    from stsched import scenarios

    _need(name, str, "name")
    if name == "parvagpu":
        return _call_scenario(name, scenarios.parvagpu, **kwargs)
    if name.startswith("gpulet-") and name[len("gpulet-"):] in scenarios.GPULET_MIXES:
        return _call_scenario(name, scenarios.gpulet_mix, name[len("gpulet-"):], **{"gpus": 1, **kwargs})
    if name == "igniter-example":
        return _call_scenario(name, scenarios.igniter_example, **kwargs)
    if name == "random":
        if "dataset" in kwargs:
            kwargs["device"] = kwargs.pop("dataset")
        return _call_scenario(name, scenarios.random_instance, **kwargs)
    if name == "profile":
        from stsched.planning.scenarios import profile_scenario
        return _call_scenario(name, profile_scenario, **kwargs)
    if name == "services":
        from stsched.planning.scenarios import services_scenario
        return _call_scenario(name, services_scenario, **kwargs)
    known = ["parvagpu", "igniter-example", "random", "profile", "services"]
    known += [f"gpulet-{m}" for m in scenarios.GPULET_MIXES]
    raise InputError(f"unknown scenario {name!r} (known: {', '.join(known)})")


#: a scenario's whole-number and real arguments, checked before its builder runs (a string or a float GPU count was a
#: TypeError from deep inside)
_SCENARIO_INTS = ("gpus", "services", "seed", "row")
_SCENARIO_REALS = ("rate", "load", "latency_factor", "slo_factor")


def _call_scenario(name: str, build, *args: Any, **kwargs: Any) -> Instance:
    """`build(*args, **kwargs)` after its arguments are bound to its signature and the numbers checked: one
    InputError naming the argument, never a TypeError from inside."""
    import inspect

    signature = inspect.signature(build)
    unknown = sorted(set(kwargs) - set(signature.parameters))
    if unknown:  # named first: a misspelt argument was reported as the missing one it stood for
        takes = ", ".join(n for n in list(signature.parameters)[len(args):])
        raise InputError(f"scenario {name}: unknown argument(s) {', '.join(unknown)} (it takes: {takes})")
    try:
        signature.bind(*args, **kwargs)
    except TypeError as e:
        raise InputError(f"scenario {name}: {e}") from None
    for key in _SCENARIO_INTS:
        if kwargs.get(key) is not None:
            kwargs[key] = check_int(kwargs[key], f"scenario {name}: {key}", minimum=0 if key == "seed" else 1)
    for key in _SCENARIO_REALS:
        if kwargs.get(key) is not None:
            kwargs[key] = check_real(kwargs[key], f"scenario {name}: {key}", minimum=0.0, strict=True)
    for key in ("max_partitions", "max_tenants"):
        if kwargs.get(key) is not None:
            kwargs[key] = check_int(kwargs[key], f"scenario {name}: {key}", minimum=1)
    for key in ("sizes", "batches"):
        v = kwargs.get(key)
        if v is not None:
            if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
                raise InputError(f"scenario {name}: {key}: expected a list of numbers, got {v!r}")
            kwargs[key] = tuple(check_real(x, f"scenario {name}: {key}", minimum=0.0, strict=True) if key == "sizes"
                                else check_int(x, f"scenario {name}: {key}", minimum=1) for x in v)
    return build(*args, **kwargs)


def solve(instance: Instance, solver: str = "heuristic", objective: str | Objective = _SOLVE.objective, *,
          time_limit: float = _SOLVE.time_limit_s, seed: int = _SOLVE.seed, threads: int = _SOLVE.threads,
          engine: str | None = _SOLVE.engine, warm_start: Plan | None = None, current: Plan | None = None,
          headroom: float = 1.0, attainment: float | None = None, attainment_scope: str | None = None,
          params: Mapping[str, Any] | None = None, allow_invalid: bool = False) -> Judged:
    """Solve with a registered solver (`stsched solvers`), as `stsched solve` does; the result carries the checker's
    report of its plan (`.valid`, `.report`) and the solver's `.plan`, `.objective`, `.bound`, `.gap`, `.status`.
    `headroom` H >= 1 plans for H x every rate and judges the plan at the offered rates; `attainment` T re-plans
    until a simulation reaches SLO attainment T (None: 0.99 for every service when the instance is planned for
    Poisson arrivals and the objective is min-gpus; 0: off; `stsched.planning.solve`); `time_limit` then bounds the
    whole loop, all its solves and simulations.  `warm_start` and `current`
    are judged by the checker first, as `stsched solve` judges them (rules that hold whatever the rates): an invalid
    one is refused with its first violation (`InvalidPlanError`) unless `allow_invalid`."""
    from stsched.judge import RATE_FREE, judge_plan
    from stsched.planning.solve import PlanOptions, check_scope, plan

    _need(instance, Instance, "instance")
    _need(warm_start, Plan, "warm_start", optional=True)
    _need(current, Plan, "current", optional=True)
    _need(params, Mapping, "params", optional=True)
    objective = _objective(objective)
    headroom = check_real(headroom, "headroom", minimum=1.0)
    if attainment is not None:
        attainment = check_real(attainment, "attainment", minimum=0.0)
    _need(attainment_scope, str, "attainment_scope", optional=True)
    _need(engine, str, "engine", optional=True)
    if current is not None and objective is not Objective.ADAPT:
        raise InputError(f"current: the plan in force is read by objective 'adapt' only, not {objective.value!r} "
                         f"(a plan to start from is warm_start)")
    _need(allow_invalid, bool, "allow_invalid")
    for given, what in ((warm_start, "warm_start"), (current, "current")):
        if given is not None:  # a plan of another instance was used (current) or dropped with a log line (warm)
            judge_plan(instance, given, "(given)", allow_invalid=allow_invalid, what=what, rules=RATE_FREE)
    options = SolveOptions(objective=objective, time_limit_s=time_limit, seed=seed, threads=threads, engine=engine,
                           warm_start=warm_start, current_plan=current,
                           params=tuple((str(k), str(v)) for k, v in (params or {}).items()))
    how = PlanOptions(headroom=headroom, attainment=attainment, attainment_scope=attainment_scope)
    check_scope(instance, solver, objective, how)  # as `stsched solve --attainment-scope` without a loop
    return plan(solver, instance, options, how).judged


def check(instance: Instance, plan: Plan) -> Report:
    """The checker's verdict on a plan (`stsched check`)."""
    return _check(_need(instance, Instance, "instance"), _need(plan, Plan, "plan"))


def reconfiguration(old: Plan, new: Plan) -> Reconfiguration:
    """What moving from `old` to `new` changes (`stsched check --current OLD`)."""
    return Reconfiguration.between(_need(old, Plan, "old"), _need(new, Plan, "new"))


def simulate(instance: Instance, plan: Plan, arrivals: str = "poisson", *, duration: float | None = None,
             seed: int | None = None, noise_cv: float | None = None, routing: str | None = None,
             allow_invalid: bool = False):
    """Simulate a plan (`stsched simulate`) and return its `Summary` (`.slo_attainment`, `.p99_ms`,
    `.per_service`, ...).  An invalid plan is refused with the checker's first violation (`InvalidPlanError`,
    as `stsched simulate`) unless `allow_invalid`."""
    from stsched.simulation import ArrivalSpec, SimOptions
    from stsched.simulation import simulate as _simulate

    from stsched.judge import judge_plan

    _need(instance, Instance, "instance"), _need(plan, Plan, "plan"), _need(arrivals, str, "arrivals")
    _need(allow_invalid, bool, "allow_invalid")  # "no" is truthy: an invalid plan would have been simulated
    _need(routing, str, "routing", optional=True)
    spec = ArrivalSpec.parse(arrivals)
    d = SimOptions()
    options = SimOptions(duration_s=d.duration_s if duration is None else check_real(duration, "duration"),
                         seed=d.seed if seed is None else seed,
                         noise_cv=d.noise_cv if noise_cv is None else check_real(noise_cv, "noise_cv"),
                         routing=d.routing if routing is None else routing)
    judge_plan(instance, plan, "(given plan)", allow_invalid=allow_invalid)
    return _simulate(instance, plan, spec, options).summary


def adapt(instance: Instance, trace: str | None = None, **options: Any):
    """Re-plan over a per-minute rate trace (`stsched adapt`); `options` are `AdaptOptions` fields (policy, epoch_s,
    headroom, function_offset, simulate, downtime, time_limit_s, ...).  Returns an `AdaptResult`."""
    from dataclasses import fields

    from stsched.planning.adapt import AdaptOptions, run_adapt

    _need(instance, Instance, "instance")
    known = {f.name for f in fields(AdaptOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown adapt option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if trace is not None:
        options["trace"] = trace
    _check_types(AdaptOptions, options, "adapt")
    return run_adapt(instance, AdaptOptions(**options))  # run_adapt checks the function offset before any work


def bound(instance: Instance, objective: str | Objective = _SOLVE.objective, *, method: str = "cg",
          time_limit: float = _SOLVE.time_limit_s, params: Mapping[str, Any] | None = None):
    """A certified bound (`stsched bound`): a lower bound on GPUs (min-gpus) or an upper bound on alpha (max-scale)
    that every valid plan respects, from registered bound provider `method` (default `cg`, the configuration LP by
    column generation; a `BoundResult` with `.bound`, `.lp_value`, `.converged`, `.method`).  `method="layout-lp"`
    returns the cheap layout LP of `stsched.bounds.lp_relaxation` instead (an `LpBound`)."""
    from stsched.registry import run_bound

    _need(instance, Instance, "instance")
    _need(params, Mapping, "params", optional=True)
    objective = _objective(objective)
    if method == "layout-lp":
        from stsched.bounds import lp_relaxation

        if objective is Objective.ADAPT:  # as the cg provider: a bound on GPUs or on alpha only
            raise InputError("bound: objective 'adapt' (expected min-gpus or max-scale)")
        if params:  # it takes none: they would be ignored
            raise InputError(f"bound: method 'layout-lp' takes no params, got {', '.join(map(str, params))}")
        SolveOptions(objective=objective, time_limit_s=time_limit)  # the time limit checked as for cg
        return lp_relaxation(instance, objective)
    options = SolveOptions(objective=objective, time_limit_s=time_limit,
                           params=tuple((str(k), str(v)) for k, v in (params or {}).items()))
    return run_bound(method, instance, options)


def save(obj: Instance | Plan, path: str | os.PathLike) -> None:
    """Write an instance or a plan as JSON, atomically."""
    _need(path, (str, os.PathLike), "path")
    if isinstance(obj, Instance):
        save_instance(obj, Path(path))
    elif isinstance(obj, Plan):
        save_plan(obj, Path(path))
    else:
        raise InputError(f"save: expected an Instance or a Plan, got {type(obj).__name__}")


__all__ = ["scenario", "solve", "check", "reconfiguration", "simulate", "adapt", "bound", "load_instance",
           "load_plan", "save"]
