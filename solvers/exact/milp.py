"""Exact MILP of the spatial-temporal problem, one PuLP model solved by CBC or HiGHS (`options.engine`).

The model is built from `solvers.exact.patterns` data (configurations with precomputed capacities, legal GPU layouts,
GPU patterns); see docs/SOLVERS.md for the three formulations and why the aggregated ones scale.  Symbols, kept
inside `_build`:

slots      min sum_L y_L  |  max alpha                         y_L  GPUs with layout L (integer)
           s.t. sum_{c: size p} x_c <= sum_L n_L(p) y_L   all p   x_c  partitions with configuration c (integer)
                sum_c a_{c,s} x_c >= alpha               all s   a_{c,s} = min(cap_{c,s}, alpha_max r_s) / r_s
                sum_L y_L <= G                                    (alpha = 1 for min-gpus)
           min-gpus writes the coverage rows as the checker's tolerance credits them (`ModelData.row_coverage`,
           `row_need`): a relaxation of the checker's problem, so its bound is the problem's (docs/SOLVERS.md)
patterns   y_P GPUs with pattern P: sum_P a_{P,s} y_P >= alpha, sum_P y_P <= G
indexed    per GPU g: sum_L u_{g,L} <= 1, sum_{c: size p} x_{g,c} <= sum_L n_L(p) u_{g,L}, memory row when it can
           bind, coverage over all g; symmetry breaking: sum_L (L+1) u_{g,L} >= sum_L (L+1) u_{g+1,L}

Identical GPUs need no symmetry breaking in slots and patterns: GPUs are never indexed there, only counted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import pulp

from solvers.exact.driver import EngineOutcome, engine_limit, solve_exact
from solvers.exact.plans import Counts, counts_from
from solvers.exact.patterns import MilpOptions, ModelData
from stsched.registry import Objective, SolveOptions, SolveResult, register

log = logging.getLogger(__name__)

BACKENDS = ("cbc", "highs")


@dataclass
class _Vars:
    y: dict  # slots: layout -> var; patterns: pattern -> var
    x: dict  # slots: config -> var
    u: dict  # indexed: (g, layout) -> var
    xg: dict  # indexed: (g, config) -> var
    alpha: pulp.LpVariable | None


def alpha_unit(data: ModelData) -> float:
    """Max-scale: the model's alpha variable is alpha / this (its clip, the layout LP bound widened), so that the
    objective and the coverage rows are about 1 at any rate: CBC's absolute tolerances on an objective of 1e-4
    proved alpha 9.67e-5 optimal under a valid plan at 9.84e-5 (tests/cli/test_hostile_s19.py, one rate of 1.5e7)."""
    clip = data.clip_alpha
    return clip if 0 < clip < 1e9 else 1.0


def _build(data: ModelData, objective: Objective) -> tuple[pulp.LpProblem, _Vars]:
    G = data.instance.gpus
    maxi = objective is Objective.MAX_SCALE
    prob = pulp.LpProblem("stsched", pulp.LpMaximize if maxi else pulp.LpMinimize)
    # no upper bound on alpha: HiGHS 1.16's presolve declared max{a : a <= 0.5 y, y <= 2 integer, a <= 1.000001}
    # infeasible (it derives y >= 2.000002, then y >= 3); coverage bounds alpha anyway
    alpha = pulp.LpVariable("alpha", 0) if maxi else None
    tolerant = data.tolerant_rows(objective)  # (min-gpus: the checker's tolerance, a relaxation)
    active = [s for s, r in enumerate(data.rates) if r > 0]
    cover: dict[int, list] = {s: [] for s in active}
    present: dict[int, list] = {s: [] for s in active}  # variables of partitions (GPUs) that serve s
    v = _Vars({}, {}, {}, {}, alpha)
    per_size = {p: max((data.slots(L, p) for L in data.layouts), default=0) for p in data.sizes}
    if data.formulation == "patterns":
        for i, P in enumerate(data.patterns):
            v.y[i] = pulp.LpVariable(f"y_{i}", 0, G, cat=pulp.LpInteger)
            for s, a in data.row_coverage(P, tolerant).items():
                cover[s].append(a * v.y[i])
                present[s].append(v.y[i])
        prob += pulp.lpSum(v.y.values()) <= G, "gpus"
        used = pulp.lpSum(v.y.values())
    elif data.formulation == "slots":
        for li in range(len(data.layouts)):
            v.y[li] = pulp.LpVariable(f"y_{li}", 0, G, cat=pulp.LpInteger)
        for ci, c in enumerate(data.configs):
            v.x[ci] = pulp.LpVariable(f"x_{ci}", 0, G * per_size[c.size], cat=pulp.LpInteger)
            for s, a in data.row_coverage(c, tolerant).items():
                cover[s].append(a * v.x[ci])
                present[s].append(v.x[ci])
        for p in data.sizes:
            xs = [v.x[ci] for ci, c in enumerate(data.configs) if c.size == p]
            if xs:
                prob += (pulp.lpSum(xs) <= pulp.lpSum(data.slots(L, p) * v.y[li] for li, L in enumerate(data.layouts)),
                         f"slots_{p:g}")
        prob += pulp.lpSum(v.y.values()) <= G, "gpus"
        used = pulp.lpSum(v.y.values())
    else:  # indexed
        rows = [tuple(data.row_coverage(c, tolerant).items()) for c in data.configs]  # (once, not per GPU)
        for g in range(G):
            for li in range(len(data.layouts)):
                v.u[g, li] = pulp.LpVariable(f"u_{g}_{li}", cat=pulp.LpBinary)
            for ci, c in enumerate(data.configs):
                v.xg[g, ci] = pulp.LpVariable(f"x_{g}_{ci}", 0, per_size[c.size], cat=pulp.LpInteger)
                for s, a in rows[ci]:
                    cover[s].append(a * v.xg[g, ci])
                    present[s].append(v.xg[g, ci])
            prob += pulp.lpSum(v.u[g, li] for li in range(len(data.layouts))) <= 1, f"one_layout_{g}"
            for p in data.sizes:
                xs = [v.xg[g, ci] for ci, c in enumerate(data.configs) if c.size == p]
                if xs:
                    prob += (pulp.lpSum(xs) <= pulp.lpSum(data.slots(L, p) * v.u[g, li]
                                                          for li, L in enumerate(data.layouts)), f"slots_{g}_{p:g}")
            if data.gpu_memory_mb is not None:  # (`data.tolerant`: the checker's memory rule, a relaxation)
                prob += (pulp.lpSum(c.memory_mb * v.xg[g, ci] for ci, c in enumerate(data.configs))
                         <= data.gpu_memory_row(), f"memory_{g}")
        for g in range(G - 1):  # symmetry breaking: GPUs ordered by layout index, unused ones last
            prob += (pulp.lpSum((li + 1) * v.u[g, li] for li in range(len(data.layouts)))
                     >= pulp.lpSum((li + 1) * v.u[g + 1, li] for li in range(len(data.layouts))), f"order_{g}")
        used = pulp.lpSum(v.u.values())
    for s in active:
        prob += ((pulp.lpSum(cover[s]) * (1.0 / alpha_unit(data)) >= alpha) if maxi
                 else (pulp.lpSum(cover[s]) >= data.row_need(s, tolerant))), f"cover_{s}"
        if maxi:  # alpha > 0 needs every service somewhere (alpha = 0 is reported infeasible): tightens the LP
            prob += pulp.lpSum(present[s]) >= 1, f"present_{s}"
    prob += alpha if maxi else used
    return prob, v


def _set_warm(data: ModelData, v: _Vars, warm: Counts) -> None:
    for var in [*v.y.values(), *v.x.values(), *v.u.values(), *v.xg.values()]:
        var.setInitialValue(0)
    if data.formulation == "patterns":
        for i, n in warm.patterns.items():
            v.y[i].setInitialValue(n)
    elif data.formulation == "slots":
        for li, n in warm.layouts.items():
            v.y[li].setInitialValue(n)
        for ci, n in warm.configs.items():
            v.x[ci].setInitialValue(n)
    else:
        for g, (li, cs) in enumerate(sorted(warm.per_gpu, key=lambda t: -(t[0] if t[0] is not None else -1))):
            if g >= data.instance.gpus:
                break
            if li is not None:
                v.u[g, li].setInitialValue(1)
            for ci, n in cs.items():
                v.xg[g, ci].setInitialValue(n)
    if v.alpha is not None and warm.alpha is not None:
        v.alpha.setInitialValue(min(warm.alpha, data.clip_alpha) / alpha_unit(data))


@contextlib.contextmanager
def _quiet_stdout():
    """HiGHS prints a banner on stdout from C++ when created; keep stdout clean for `stsched solve --json`."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def quiet_highs():
    """A fresh `highspy.Highs` that prints nothing (no banner on stdout, no log) and runs on one thread: the LPs that
    column generation, diving and re-pricing build directly."""
    import highspy

    with _quiet_stdout():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    return h


class _HighsWarm(pulp.HiGHS):
    """PuLP's highspy interface plus an optional MIP start from the variables' initial values.

    Off by default: HiGHS 1.16 with presolve on and a MIP start (`setSolution`) returned the start as "optimal" with
    objective and dual bound 1.0 on a 12-variable model whose start and true optimum are 2 (reproduced with highspy
    alone; correct with presolve off or without the start).  `--param highs_start=1` turns the start on, with presolve
    off.
    """

    def __init__(self, warm: bool, **kw):
        super().__init__(**kw)
        self._warm = warm

    def createAndConfigureSolver(self, lp):
        with _quiet_stdout():
            super().createAndConfigureSolver(lp)

    def callSolver(self, lp):
        if self._warm:
            lp.solverModel.setOptionValue("presolve", "off")
            import highspy
            sol = highspy.HighsSolution()
            sol.col_value = [float(var.varValue or 0.0) for var in lp.variables()]
            sol.value_valid = True
            lp.solverModel.setSolution(sol)
        if self.timeLimit is not None:
            interrupt_at(lp.solverModel, time.perf_counter() + float(self.timeLimit))
        lp.solverModel.run()

    def findSolutionValues(self, lp):
        """PuLP's, plus HiGHS's stop at its node limit (`max_nodes`, mip_max_nodes: status kSolutionLimit), which
        PuLP 3.3's status map lacks: `--engine highs --param max_nodes=N` raised KeyError whenever the limit bound (cg's
        quick-grid master, session 17).  Read as PuLP reads a time limit: a plan if HiGHS has one."""
        import highspy

        if lp.solverModel.getModelStatus() != highspy.HighsModelStatus.kSolutionLimit:
            return super().findSolutionValues(lp)
        h = lp.solverModel
        if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
            return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound
        values = list(h.getSolution().col_value)
        for var in lp.variables():
            var.varValue = values[var.index]
        return pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible


def interrupt_at(h, deadline: float, clock=time.perf_counter):
    """Stop HiGHS `h` at `deadline` on `clock` (default the wall clock, time.perf_counter) from its simplex and MIP
    interrupt callbacks, which it calls far more often than it reads its own wall clock: cg's integer master (r1024
    max-scale, a 1 s limit) ran 5.1 s of wall at load 1.2 in the root's separation (docs/RESULTS.md, "Limits and
    faults"), and here 5.4 s of wall with 0.64 s of CPU at load 15.  A CPU clock (cg's `clock=cpu`) stops it at CPU
    seconds, which HiGHS's own `time_limit` (wall seconds) cannot.  Interrupted, HiGHS keeps its incumbent (status
    kInterrupt: read as a time limit).  Returns a function that unsubscribes the callbacks (for an `h` solved again
    with no deadline)."""

    def stop(event) -> None:
        if clock() > deadline:
            event.interrupt()

    h.cbSimplexInterrupt.subscribe(stop)
    h.cbMipInterrupt.subscribe(stop)

    def release() -> None:
        h.cbSimplexInterrupt.unsubscribe(stop)
        h.cbMipInterrupt.unsubscribe(stop)

    return release


def _solve(prob: pulp.LpProblem, backend: str, options: SolveOptions, limit: float, warm: bool):
    """Solve; returns (status, bound) with status optimal / feasible / infeasible / none."""
    gap = min(1e-4, options.max_scale_tol / 10)
    maxi = prob.sense == pulp.LpMaximize
    milp_options = MilpOptions.from_solve_options(options)
    nodes = milp_options.max_nodes or None  # a work limit: the same stop at any machine load
    if backend == "highs":
        warm = warm and milp_options.highs_start
        solver = _HighsWarm(warm, msg=False, timeLimit=limit, threads=options.threads, gapRel=gap,
                            random_seed=options.seed, **({} if nodes is None else {"mip_max_nodes": nodes}))
        prob.solve(solver)
        import highspy
        h = prob.solverModel
        st = h.getModelStatus()
        info = h.getInfo()
        bound = info.mip_dual_bound  # internal sense: minimisation
        has = info.primal_solution_status == 2  # kSolutionStatusFeasible
        if has and abs(info.objective_function_value * (-1 if maxi else 1) - pulp.value(prob.objective)) > 1e-6 * max(
                1.0, abs(info.objective_function_value)):
            log.warning("HiGHS objective %s disagrees with its solution's %s: its bound is not trusted",
                        info.objective_function_value, pulp.value(prob.objective))
            return "feasible", None
        if st == highspy.HighsModelStatus.kOptimal:
            # optimal means within the gap tolerances; HiGHS 1.16 can leave mip_dual_bound stale (seen: 1.0 with a
            # proven optimum of 2 after a MIP start), so the bound is also taken from the objective and tolerances
            obj = info.objective_function_value
            bound = max(bound, obj - max(gap * abs(obj), 1e-6))
            return "optimal", -bound if maxi else bound
        bound = -bound if maxi else bound
        if st in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return "infeasible", None
        return ("feasible" if has else "none"), (bound if abs(bound) < 1e30 else None)
    # PuLP's .mps/.mst/.sol files and CBC's log go to a private folder, removed on every exit path (an interrupt,
    # and SIGTERM, which the CLI turns into an exception, included)
    with tempfile.TemporaryDirectory(prefix="stsched-milp-") as private:
        log_path = os.path.join(private, "cbc.log")
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=limit, threads=options.threads, gapRel=gap,
                                   warmStart=warm, logPath=log_path, maxNodes=nodes,
                                   options=[f"randomCbcSeed {options.seed + 1}"])
        solver.tmpDir = private
        solver.path = _cbc_launcher(solver.path, private)
        prob.solve(solver)
        try:
            with open(log_path) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
    result = next((line.strip() for line in text.splitlines() if line.startswith("Result - ")), None)
    if result is None:  # CBC ended without its verdict (killed, or its log lost): said, since it then reads "feasible"
        log.warning("CBC's log has no result line (%d characters; limit %.3g s, pulp status %s)", len(text), limit,
                    pulp.LpStatus.get(prob.status, prob.status))
    else:
        log.info("CBC: %s", result)
    if prob.status == pulp.LpStatusInfeasible or "Problem is infeasible" in text:
        return "infeasible", None
    # CBC's proof: its log's verdict, or its solution file's first word "Optimal" (pulp's sol_status; a stop on time
    # or nodes writes "Stopped on ..."): a proven optimum whose log line was lost read "feasible" before
    if "Result - Optimal solution found" in text or prob.sol_status == pulp.LpSolutionOptimal:  # within gapRel
        obj = pulp.value(prob.objective)
        return "optimal", obj + gap * abs(obj) * (1 if maxi else -1)
    bound = _cbc_bound(text, maxi)
    if prob.sol_status in (pulp.LpSolutionIntegerFeasible, pulp.LpSolutionOptimal):
        return "feasible", bound
    return "none", bound


@functools.cache
def _dies_with_parent() -> str | None:
    """util-linux `setpriv` where it sets the parent-death signal (Linux), else None."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return None
    try:
        ok = subprocess.run([setpriv, "--pdeathsig", "KILL", "--", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return setpriv if ok.returncode == 0 else None


_LAUNCHES: dict[str, bool] = {}  # per CBC: whether its launcher ran it (tried once per process)


def _launches(launcher: str, cbc: str) -> bool:
    """Whether `launcher` runs CBC (`cbc -quit` through it, about 10 ms, once per CBC and process): it passes
    os.access but can fail when run (no /bin/sh, setpriv refused under it), and pulp then raised "Error while
    executing" instead of running CBC alone."""
    if cbc not in _LAUNCHES:
        try:
            ok = subprocess.run([launcher, "-quit"], capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
            _LAUNCHES[cbc] = ok.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _LAUNCHES[cbc] = False
    return _LAUNCHES[cbc]


def _cbc_launcher(cbc: str, folder: str) -> str:
    """A launcher of CBC in `folder` that the kernel kills when this process dies: a `kill -9` of `stsched solve
    --solver milp` left CBC running to its own time limit, an orphan (SIGTERM and Ctrl-C stopped it).  CBC itself
    where the parent-death signal cannot be set (no setpriv, another OS), the folder cannot hold a program, or the
    launcher fails when tried (`_launches`)."""
    setpriv = _dies_with_parent()
    if setpriv is None:
        return cbc
    path = os.path.join(folder, "cbc-launcher")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec {shlex.quote(setpriv)} --pdeathsig KILL -- {shlex.quote(cbc)} "$@"\n')
    os.chmod(path, 0o700)
    return path if os.access(path, os.X_OK) and _launches(path, cbc) else cbc


def _cbc_bound(text: str, maxi: bool) -> float | None:
    """CBC's final bound from its log ("Upper bound" when maximising, "Lower bound" when minimising, in the problem's
    own sense), widened by the half unit of the last digit it printed (it prints about 6 significant digits)."""
    m = re.findall(rf"{'Upper' if maxi else 'Lower'} bound:\s+(-?[\d.]+(?:[eE][+-]?\d+)?)", text)
    if not m:
        return None
    token = m[-1]
    value = float(token)
    mantissa = token.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exp = int(token.lower().split("e")[1]) if "e" in token.lower() else 0
    slack = 0.5 * 10.0 ** (exp - decimals) + 1e-9 * abs(value)
    return value + slack if maxi else value - slack


def _extract(data: ModelData, v: _Vars) -> Counts:
    def val(var) -> int:
        return int(round(var.varValue or 0.0))

    alpha = None if v.alpha is None else float(v.alpha.varValue or 0.0) * alpha_unit(data)
    return counts_from(data, v, val, alpha)


def _engine(backend: str):
    def run(data: ModelData, options: SolveOptions, warm: Counts | None, limit: float) -> EngineOutcome:
        started = time.perf_counter()
        prob, v = _build(data, options.objective)
        if warm is not None:
            _set_warm(data, v, warm)
        status, bound = _solve(prob, backend, options, engine_limit(limit, started), warm is not None)
        if bound is not None and v.alpha is not None:  # (the model's alpha is alpha / alpha_unit)
            bound *= alpha_unit(data)
        if status in ("infeasible", "none"):
            return EngineOutcome(status, bound, None)
        return EngineOutcome(status, bound, _extract(data, v))

    return run


OBJECTIVES = (Objective.MIN_GPUS, Objective.MAX_SCALE, Objective.ADAPT)


@register("milp", "exact", "MILP (PuLP) of configurations and GPU layouts; engine cbc (default) or highs",
          objectives=OBJECTIVES, options=MilpOptions, engines=BACKENDS)
class MilpSolver:
    """Exact MILP; `options.engine` picks CBC or HiGHS; `--param formulation=slots|patterns|indexed|auto`; the
    adapt objective is `solvers.exact.adapt_milp` (fewest layout reconfigurations from `options.current_plan`)."""

    def solve(self, instance, options: SolveOptions) -> SolveResult:
        self.solver_info.check_engine(options.engine)  # (run_solver checked it already; a direct call too)
        backend = options.engine or self.solver_info.engines[0]  # (the registered engines: the first the default)
        if options.objective is Objective.ADAPT:
            from solvers.exact.adapt_milp import solve_adapt

            return solve_adapt(self.name, instance, options,
                               lambda prob, opts, limit: _solve(prob, backend, opts, limit, False))
        return solve_exact(self.name, instance, options, _engine(backend), f"pulp/{backend}")


@register("milp-highs", "exact", "alias of `milp --engine highs`: the milp model solved by HiGHS",
          objectives=OBJECTIVES, options=MilpOptions, alias_of="milp", engines=BACKENDS[::-1])
class MilpHighsSolver(MilpSolver):
    """The same model as `milp`, HiGHS by default (its engines registered with highs first)."""
