"""Exact CP-SAT (OR-Tools) model of the spatial-temporal problem: the same formulations as `solvers.exact.milp`.

CP-SAT needs integers.  Times never enter the model: every configuration's execution times, duty cycle (the sum of
its tenants' times) and latency test are evaluated exactly, in floating point, when `solvers.exact.patterns` enumerates it,
so no time grid is needed.  Capacities are integers in units of 1/K of each service's demand (K = `coverage_units`,
default 10^6), floored, so an integer solution is always a valid plan (max-scale; min-gpus at exact capacities),
or rounded up in the min-gpus relaxation of the checker's tolerance (docs/SOLVERS.md: its bound is the problem's;
an incumbent the checker rejects is replaced by the floored model's); alpha (max-scale) is an integer A with
alpha = A / K.  Symbols as in solvers/exact/milp.py, kept inside `_build`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from ortools.sat.python import cp_model

from solvers.exact.driver import EngineOutcome, engine_limit, solve_exact
from solvers.exact.plans import Counts, counts_from
from solvers.exact.patterns import CpsatOptions, ModelData
from stsched.registry import Objective, SolveOptions, SolveResult, register

log = logging.getLogger(__name__)

COVERAGE_UNITS = CpsatOptions.coverage_units  # K: capacity / demand resolution (default)


@dataclass
class _Vars:
    y: dict
    x: dict
    u: dict
    xg: dict
    alpha: cp_model.IntVar | None
    k: int


def _units(a: float, k: int, up: bool = False) -> int:
    """`a` in units of 1/k: floored (the restriction: an integer solution is a valid plan) or, `up`, rounded up (the
    relaxation of the min-gpus rows that model the checker's tolerance: their bound is the problem's)."""
    return int(math.ceil(a * k)) if up else int(math.floor(a * k * (1 + 1e-9)))


def _build(data: ModelData, objective: Objective, k: int) -> tuple[cp_model.CpModel, _Vars]:
    G = data.instance.gpus
    m = cp_model.CpModel()
    maxi = objective is Objective.MAX_SCALE
    alpha = m.NewIntVar(0, _units(data.clip_alpha, k), "alpha") if maxi else None
    tolerant = data.tolerant_rows(objective)  # (min-gpus: the checker's tolerance, a relaxation)
    active = [s for s, r in enumerate(data.rates) if r > 0]
    cover: dict[int, list] = {s: [] for s in active}
    present: dict[int, list] = {s: [] for s in active}  # variables of partitions (GPUs) that serve s
    v = _Vars({}, {}, {}, {}, alpha, k)
    per_size = {p: max((data.slots(L, p) for L in data.layouts), default=0) for p in data.sizes}
    if data.formulation == "patterns":
        for i, P in enumerate(data.patterns):
            v.y[i] = m.NewIntVar(0, G, f"y_{i}")
            for s, a in data.row_coverage(P, tolerant).items():
                cover[s].append(_units(a, k, tolerant) * v.y[i])
                present[s].append(v.y[i])
        m.Add(sum(v.y.values()) <= G)
        used = sum(v.y.values())
    elif data.formulation == "slots":
        for li in range(len(data.layouts)):
            v.y[li] = m.NewIntVar(0, G, f"y_{li}")
        for ci, c in enumerate(data.configs):
            v.x[ci] = m.NewIntVar(0, G * per_size[c.size], f"x_{ci}")
            for s, a in data.row_coverage(c, tolerant).items():
                cover[s].append(_units(a, k, tolerant) * v.x[ci])
                present[s].append(v.x[ci])
        for p in data.sizes:
            xs = [v.x[ci] for ci, c in enumerate(data.configs) if c.size == p]
            if xs:
                m.Add(sum(xs) <= sum(data.slots(L, p) * v.y[li] for li, L in enumerate(data.layouts)))
        m.Add(sum(v.y.values()) <= G)
        used = sum(v.y.values())
    else:  # indexed
        rows = [tuple((s, _units(a, k, tolerant)) for s, a in data.row_coverage(c, tolerant).items())
                for c in data.configs]  # (once, not per GPU)
        for g in range(G):
            for li in range(len(data.layouts)):
                v.u[g, li] = m.NewBoolVar(f"u_{g}_{li}")
            for ci, c in enumerate(data.configs):
                v.xg[g, ci] = m.NewIntVar(0, per_size[c.size], f"x_{g}_{ci}")
                for s, units in rows[ci]:
                    cover[s].append(units * v.xg[g, ci])
                    present[s].append(v.xg[g, ci])
            m.AddAtMostOne(v.u[g, li] for li in range(len(data.layouts)))
            for p in data.sizes:
                xs = [v.xg[g, ci] for ci, c in enumerate(data.configs) if c.size == p]
                if xs:
                    m.Add(sum(xs) <= sum(data.slots(L, p) * v.u[g, li] for li, L in enumerate(data.layouts)))
            if data.gpu_memory_mb is not None:  # MB, integers: at exact capacities (the fallback) floored limit
                # and ceiled needs, a restriction that keeps the plan valid; `data.tolerant`, floored needs and the
                # checker's limit ceiled, a relaxation (`ModelData.gpu_memory_row`)
                row = data.gpu_memory_row()
                need = math.floor if data.tolerant else math.ceil
                m.Add(sum(need(c.memory_mb) * v.xg[g, ci] for ci, c in enumerate(data.configs))
                      <= (math.ceil(row) if data.tolerant else int(row)))
        for g in range(G - 1):  # symmetry breaking: GPUs ordered by layout index, unused ones last
            m.Add(sum((li + 1) * v.u[g, li] for li in range(len(data.layouts)))
                  >= sum((li + 1) * v.u[g + 1, li] for li in range(len(data.layouts))))
        used = sum(v.u.values())
    for s in active:
        # (the relaxed need floored below a relaxed integer: no valid plan is cut off by the float of its product)
        m.Add(sum(cover[s]) >= (alpha if maxi else k if not tolerant else
                                int(math.ceil(data.row_need(s, True) * k * (1 - 1e-9)))))
        if maxi:  # alpha > 0 needs every service somewhere (alpha = 0 is reported infeasible)
            m.Add(sum(present[s]) >= 1)
    if maxi:
        m.Maximize(alpha)
    else:
        m.Minimize(used)
    return m, v


def _hint(data: ModelData, m: cp_model.CpModel, v: _Vars, warm: Counts) -> None:
    if data.formulation == "patterns":
        for i, var in v.y.items():
            m.AddHint(var, warm.patterns.get(i, 0))
    elif data.formulation == "slots":
        for i, var in v.y.items():
            m.AddHint(var, warm.layouts.get(i, 0))
        for i, var in v.x.items():
            m.AddHint(var, warm.configs.get(i, 0))
    else:
        order = sorted(warm.per_gpu, key=lambda t: -(t[0] if t[0] is not None else -1))[:data.instance.gpus]
        for g in range(data.instance.gpus):
            li, cs = order[g] if g < len(order) else (None, {})
            for l2 in range(len(data.layouts)):
                m.AddHint(v.u[g, l2], 1 if l2 == li else 0)
            for ci in range(len(data.configs)):
                m.AddHint(v.xg[g, ci], cs.get(ci, 0))
    if v.alpha is not None and warm.alpha is not None:
        m.AddHint(v.alpha, min(_units(warm.alpha, v.k), _units(data.clip_alpha, v.k)))


def _extract(data: ModelData, solver: cp_model.CpSolver, v: _Vars) -> Counts:
    val = solver.Value
    alpha = None if v.alpha is None else val(v.alpha) / v.k
    return counts_from(data, v, val, alpha)


@contextlib.contextmanager
def _stop_on_signal(stop: Callable[[], None]) -> Iterator[None]:
    """Call `stop` as soon as SIGINT or SIGTERM arrives while CP-SAT searches, and leave the Python handlers in place.

    CP-SAT's own SIGINT handler (`catch_sigint_signal`, on by default) swallowed the interrupt (the search stopped,
    the command ran on) and, on the way out, set SIGINT to SIG_DFL for the rest of the process: a later Ctrl-C
    killed it without a word, its engines and temporary files left behind (found in `stsched experiment
    exact_parvagpu`).  Here the interpreter's C-level handler writes the signal number to a wake-up pipe (no GIL
    needed), a thread reads it and stops the search, and the Python handler runs once `Solve` returns."""
    if threading.current_thread() is not threading.main_thread():
        yield  # set_wakeup_fd is for the main thread only; the signal is then handled after Solve returns
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except ValueError:
        os.close(r)
        os.close(w)
        yield
        return

    def watch() -> None:
        while True:
            try:
                got = os.read(r, 64)
            except OSError:
                return
            if not got:  # the write end closed: the search is over
                return
            if any(b in (signal.SIGINT, signal.SIGTERM) for b in got):
                stop()

    t = threading.Thread(target=watch, name="cpsat-signal-watch", daemon=True)
    t.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(old)  # another wake-up fd (an event loop's) misses the signals of the search only
        os.close(w)
        t.join(timeout=5)
        os.close(r)


def _engine(data: ModelData, options: SolveOptions, warm: Counts | None, limit: float) -> EngineOutcome:
    started = time.perf_counter()
    xo = CpsatOptions.from_solve_options(options)
    k = xo.coverage_units
    m, v = _build(data, options.objective, k)
    if warm is not None:
        _hint(data, m, v, warm)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(engine_limit(limit, started))
    solver.parameters.num_workers = xo.workers or options.threads
    solver.parameters.random_seed = options.seed
    # the LP relaxation inside CP-SAT (level 2: all constraints) is what proves these covering models; level 1
    # left ParvaGPU rows 1-3 unproven after 60 s on one worker, level 2 proves them in seconds
    solver.parameters.linearization_level = xo.linearization_level
    if options.objective is Objective.MAX_SCALE:
        solver.parameters.relative_gap_limit = min(1e-4, options.max_scale_tol / 10)
    solver.parameters.catch_sigint_signal = False  # see _stop_on_signal
    with _stop_on_signal(solver.StopSearch):
        st = solver.Solve(m)
    if st == cp_model.INFEASIBLE:
        return EngineOutcome("infeasible", None, None)
    if st == cp_model.MODEL_INVALID:
        raise RuntimeError(f"CP-SAT model invalid: {m.Validate()}")
    bound = solver.BestObjectiveBound()
    if not math.isfinite(bound):
        bound = None
    elif options.objective is Objective.MAX_SCALE:
        # floored coefficients lose < 1/K per partition (patterns: per GPU): add that back for a bound on the
        # model with exact capacities, in which the extracted plan's alpha is measured
        most = data.instance.gpus * (1 if data.formulation == "patterns" else max(map(len, data.layouts), default=1))
        bound = (bound + most) / k
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return EngineOutcome("none", bound, None)
    status = "optimal" if st == cp_model.OPTIMAL else "feasible"
    return EngineOutcome(status, bound, _extract(data, solver, v))


@register("cpsat", "exact", "CP-SAT (OR-Tools) of configurations and GPU layouts, integer capacity units",
          options=CpsatOptions)
class CpSatSolver:
    """Exact CP-SAT model; `--param formulation=...`, `workers=N`, `coverage_units=K`, `linearization_level=L`."""

    def solve(self, instance, options: SolveOptions) -> SolveResult:
        return solve_exact(self.name, instance, options, _engine,
                           f"ortools cp-sat, coverage in 1/{CpsatOptions.from_solve_options(options).coverage_units} "
                           f"of demand (floored)")
