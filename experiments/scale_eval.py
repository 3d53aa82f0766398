"""Issue 17: solvers at cluster scale against the certified column-generation bound.

    python -m experiments.scale_eval --quick          # 16 and 32 services, work limits (machine-independent rows)
    python -m experiments.scale_eval                   # 16 .. 1,024 services (GPUs = services / 2), three seeds
    python -m experiments.scale_eval --services 256 1024 4096 --seeds 7 --solvers heuristic
    python -m experiments.scale_eval --services 256 1024 4096 --seeds 7 --solvers heuristic --no-bound
    python -m experiments.scale_eval --services 256 --seeds 7 --solvers heuristic:effort=full --no-bound
    python -m experiments.scale_eval --integrality     # how much of the integrality gap each bound step closes
    python -m experiments.scale_eval --plot-only

Instances: `stsched scenario random` on A100 MPS and A100 MIG data (deterministic arrivals, so that the baselines
take part), and with `--poisson X` also under the Poisson margin `late_share` X (the heuristic and cg only).  For every
instance and objective (min-gpus, max-scale) the certified bound is the `cg` bound provider's (the configuration LP
by column generation; `--bound-rounds` master solves or `--bound-time` seconds, whichever comes first; it is valid
either way and the row says whether it converged); every solver runs through the registry (so its plan is judged
by the checker) in a forked process whose peak resident memory is read back (VmHWM, which includes the parent's
interpreter and imports that the child shares, about 150-250 MB).  Rows: GPUs or alpha, gap to the bound, wall time,
the solving process's CPU time (on a shared machine wall time overstates the work), peak memory.  Every solver
asked for has a row at every size: one that did not run (milp/cpsat above 64 services; a baseline on a Poisson
instance, whose published rule ignores its margin; the registry's refusals) has status `skipped` and says why in
`message`, as a baseline that found no plan on the instance's GPUs (`unknown`) does.  The wall-time and CPU-time
exponents (time ~ services^k, from 256 services up, seeds pooled, Poisson rows apart) are printed per device,
objective and solver.  Plots: results/scale/wall_OBJECTIVE.png, cpu_OBJECTIVE.png and gap_OBJECTIVE.png (log
axes) against the services; the summary tables (a line per instance, a cell per solver: value (gap), and wall / CPU
seconds) in results/scale/summary.md (experiments/scale_eval_report.py); `--plot-only` redraws both from the rows.

`--integrality`: on small random instances (`--int-services`, default 8, 12 and 16 services, GPUs = services / 2)
where the optimum is proven (`proof`: milp proves its plan optimal for the full problem within `--time-limit`, or,
min-gpus, a bound below equals its GPUs), the layout LP (`stsched.bounds.lp_relaxation`), the configuration LP
(cg, converged or not), for min-gpus the cg bound rounded up, the bound after `--bp-nodes` node LPs of
branch-and-price on the slot and layout counts (solvers.exact.cg_branch; `bp_cpu_s` its CPU time, the root's
column generation included) and after `--rf-nodes` node LPs of branch-and-price on the configurations
(solvers.exact.cg_ryan, one column per `--bp-rule` and `--rf-strong` K: pairs, Ryan-Foster first, and usage, a
service's partitions of one size first, `_sK` with strong branching on K candidates; `rf_RULE_cpu_s`,
`rf_RULE_wall_s`; run on proven optima and on min-gpus rows whose rounded cg bound is below the plan), each against
the proven optimum: the share of the integrality gap (optimum - layout LP) each step closes
(results/scale/integrality.csv).  `--int-engine highs` proves the optima with milp's HiGHS engine instead of CBC.
`--cuts K` adds, on min-gpus rows, the configuration LP with K rounds of per-service rounding cuts
(solvers.exact.cg_cuts; `cg_cuts_lp` when it converged, `cg_cuts` its bound rounded up, `cuts_cpu_s`).

`--quick` sets work limits (`max_rounds` for the bound and cg, the heuristic's own deterministic budgets, no
time-limited solver) so that its rows do not depend on the machine; wall times and memory are still measured and
of course do.  cg too: its column generation stops at `max_rounds`, its warm start (the heuristic, inside cg) at the
heuristic's own budgets, and its integer master (HiGHS, one thread, seed 0) after QUICK_MASTER_NODES branch-and-bound
nodes (`--param master_nodes`, milp's `max_nodes`).  Its wall clock is only a safety net, QUICK_CG_SAFETY (600 s),
which each part of cg may use whole (`cg_share` and `warm_share` 1.0) and which the quick cg rows stay far below
(1.9-4.4 s of wall each at load 1-3, docs/RESULTS.md "The quick grid"); a row stopped by it has `wall_s` >= its `time_limit` and reads `, limit` in the
summary (until session 17 cg had 10 s of wall here, and its max-scale rows came out 0.5-8 % lower at load ~17).
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing as mp
import os
import resource
import time
from typing import Mapping

from experiments.common import (Study, markdown_table, read_rows, refuse_ignored, results_dir, run_grid, run_study,
                                study_args)
from experiments.plots import number
from experiments.runners import RUN_ERROR
from experiments.scale_eval_report import (SKIPPED, exponents, fmt_cell, gap, note, plot, summary, times,
                                          with_bounds)
from stsched.io import write_atomic
from stsched.registry import (Objective, SolveOptions, Status, available_solvers, run_bound, run_solver,
                              unknown_solver)
from stsched.scenarios import random_instance
from stsched.validate import count, fraction, seed as seed_arg, services as services_arg, time_limit, whole

log = logging.getLogger(__name__)

EXPERIMENT = "scale"
DEVICES = ("a100-mps", "a100-mig")
OBJECTIVES = (Objective.MIN_GPUS.value, Objective.MAX_SCALE.value)
BASELINES = ("nexus", "gslice", "gpulet", "igniter", "parvagpu")
EXACT = ("milp", "cpsat")
# --quick: cg is limited by work like the rest of the grid: its integer master by QUICK_MASTER_NODES branch-and-bound
# nodes (HiGHS, one thread, seed 0), its column generation by the bound's master solves, its warm start (the heuristic)
# by its own deterministic budgets; QUICK_CG_SAFETY seconds of wall is only a safety net (every part of cg may use it
# whole, so a row stopped by it has wall_s >= time_limit and reads `, limit` in the summary, `at_limit`)
QUICK_MASTER_NODES = 200
QUICK_CG_SAFETY = 600.0
EXACT_MAX_SERVICES = 64  # milp/cpsat are tried only up to here (their enumeration and 60 s limit end there)
POISSON_SOLVERS = ("heuristic", "cg")  # run on the Poisson instances; the others' rows say why not


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    return math.nan


def _child(conn, fn, args, parent: int) -> None:
    from stsched.forking import die_with_parent

    die_with_parent(parent)  # a killed driver must not leave a solve running to its time limit
    t0 = time.process_time()
    try:
        out = fn(*args)
        out["cpu_s"] = round(time.process_time() - t0, 3)  # this process's CPU time (the machine may be shared)
        out["peak_mb"] = round(_peak_mb(), 1)
        conn.send(out)
    except (ImportError, MemoryError, OSError) as e:  # the checkout's or the machine's, not the point's result:
        # a row with `run_error`, run again on resume (an `error` row was kept as a result for ever)
        conn.send({RUN_ERROR: f"{type(e).__name__}: {e}"[:300], "peak_mb": round(_peak_mb(), 1)})
    except Exception as e:  # noqa: BLE001 - a solver's failure is a row, not the end of the grid
        conn.send({"error": f"{type(e).__name__}: {e}"[:300], "peak_mb": round(_peak_mb(), 1)})
    finally:
        conn.close()


def forked(fn, *args, timeout: float = 3600.0) -> dict:
    """fn(*args) -> dict in a forked process, with its peak resident memory (MB) added."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, os.getpid()))
    proc.start()
    send.close()
    out = recv.recv() if recv.poll(timeout) else {"error": f"no result within {timeout:g} s"}
    proc.join(5)
    if proc.is_alive():
        proc.kill()
    return out


def instance_of(point: Mapping[str, object]):
    inst = random_instance(int(point["services"]), int(point["services"]) // 2, int(point["seed"]),
                           str(point["device"]), arrivals="deterministic")  # Poisson: late_share below
    late = float(point.get("late_share", 0.0) or 0.0)
    return inst.with_late_share(late) if late else inst


def _bound(point: Mapping[str, object]) -> dict:
    inst = instance_of(point)
    params = (("max_rounds", str(point["bound_rounds"])), ("clock", str(point.get("bound_clock") or "wall")))
    w0 = _children_cpu()
    b = run_bound("cg", inst, SolveOptions(objective=Objective(point["objective"]),
                                           time_limit_s=float(point["bound_time"]), params=params))
    return {"bound": b.bound, "lp_value": b.lp_value, "converged": b.converged, "settled": b.settled,
            "columns": b.columns,
            "pricing_calls": b.pricing_calls, "wall_s": round(b.wall_s, 3),
            "workers_cpu_s": round(_children_cpu() - w0, 3),  # its pricing workers' (cg_parallel), beside cpu_s
            # the largest worker's peak resident memory (pages shared with this process counted in both)
            "workers_peak_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, 1),
            # feasibility_checked false: the limit cut cg's feasibility scan, `infeasible` counts the services scanned
            "infeasible": len(b.infeasible_services), "feasibility_checked": b.feasibility_checked,
            "method": b.method}  # (lp-efficiency: loosened, Poisson)


def solver_spec(spec: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A solver spec NAME or NAME:key=value,key=value (its `--param`s): the name and the params."""
    name, _, rest = spec.partition(":")
    params = tuple(tuple(kv.split("=", 1)) for kv in rest.split(",") if kv)
    bad = [kv for kv in params if len(kv) != 2]
    if bad:
        raise ValueError(f"solver spec {spec!r}: params are key=value separated by commas")
    return name, params  # type: ignore[return-value]


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's ended children: the worker processes a solver forks (the
    heuristic's residual blocks, `HeuristicOptions.workers`), which `solve_cpu_s` does not count."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def not_tried(point: Mapping[str, object]) -> str | None:
    """Why a grid point's solver is not run without building its instance (milp/cpsat above
    EXACT_MAX_SERVICES), else None."""
    name = solver_spec(str(point["solver"]))[0]
    if name in EXACT and int(point["services"]) > EXACT_MAX_SERVICES:
        return f"{name} is tried up to {EXACT_MAX_SERVICES} services in this study (EXACT_MAX_SERVICES)"
    return None


def refused(name: str, inst, objective: Objective, late_share: float) -> str | None:
    """Why `name` does not run on this instance: the registry's own reason (mechanism, objective, a Poisson
    margin its published rule ignores), or, on a Poisson instance, the study's choice of POISSON_SOLVERS; else
    None."""
    reason = available_solvers()[name].supports(inst, objective)
    if reason is None and late_share and name not in POISSON_SOLVERS:
        reason = f"{name}: this study runs only {' and '.join(POISSON_SOLVERS)} on Poisson instances"
    return reason


def _solve(point: Mapping[str, object]) -> dict:
    inst = instance_of(point)
    name, params = solver_spec(str(point["solver"]))
    reason = refused(name, inst, Objective(point["objective"]), float(point.get("late_share") or 0.0))
    if reason:  # a row that says why, not a missing row
        return {"status": SKIPPED, "message": reason[:200]}
    limit = float(point["time_limit"])
    if name == "cg":
        params += (("max_rounds", str(point["bound_rounds"])),)
        if point["run"] == "quick":  # work limits, the wall clock a safety net only (QUICK_MASTER_NODES)
            limit = QUICK_CG_SAFETY
            params += (("cg_share", "1.0"), ("warm_share", "1.0"), ("master_nodes", str(QUICK_MASTER_NODES)))
    t0, c0, w0 = time.perf_counter(), time.process_time(), _children_cpu()
    j = run_solver(name, inst, SolveOptions(objective=Objective(point["objective"]), time_limit_s=limit,
                                            params=params, threads=1, seed=0))  # (HiGHS: one thread, one seed)
    r = j.result
    return {"status": r.status.value, "value": r.objective, "valid": j.valid, "wall_s": round(r.wall_s, 3),
            "time_limit": limit,  # the limit this run was given (cg --quick: QUICK_CG_SAFETY, not the point's)
            "total_s": round(time.perf_counter() - t0, 3), "solve_cpu_s": round(time.process_time() - c0, 3),
            "workers_cpu_s": round(_children_cpu() - w0, 3), "own_bound": r.bound,
            "message": r.message[:200]}


def _branched_bound(inst, obj: Objective, point: Mapping[str, object], nodes: int, rule: str,
                    strong: int = 0) -> tuple:
    """The cg bound after `nodes` node LPs of branch-and-price with `rule` (strong branching on `strong` candidates
    when > 1; on the CPU clock), its CPU and wall seconds (the root's column generation included); (None, None, None)
    when `nodes` <= 1."""
    if nodes <= 1:
        return None, None, None
    c0, t0 = time.process_time(), time.perf_counter()
    try:
        b = run_bound("cg", inst, SolveOptions(objective=obj, time_limit_s=float(point["bound_time"]), params=(
            ("bp_nodes", str(nodes)), ("bp_rule", rule), ("bp_strong", str(strong)), ("clock", "cpu"))))
    except RuntimeError as e:  # a step that fails is an empty cell (and a log line), not a lost row
        log.warning("branch-and-price (%s) failed: %s", rule, e)
        return None, round(time.process_time() - c0, 3), round(time.perf_counter() - t0, 3)
    return b.bound, round(time.process_time() - c0, 3), round(time.perf_counter() - t0, 3)


def rf_variants(point: Mapping[str, object]) -> list[tuple[str, int]]:
    """The configuration branchings of an integrality row: (rule, strong-branching candidates) for every rule of
    `bp_rule` and every count of `rf_strong`."""
    rules = [r for r in str(point.get("bp_rule") or "pairs").split("+") if r]
    strongs = [int(k) for k in str(point.get("rf_strong") or "0").split("+") if k]
    return [(r, k) for r in rules for k in strongs]


def rf_name(rule: str, strong: int) -> str:
    """The column name of a configuration branching: its rule, with `_sK` for strong branching on K candidates."""
    return rule if strong <= 1 else f"{rule}_s{strong}"


def _integrality(point: Mapping[str, object]) -> dict:
    from stsched.bounds import lp_relaxation

    inst = instance_of(point)
    obj = Objective(point["objective"])
    opt = run_solver("milp", inst, SolveOptions(objective=obj, time_limit_s=float(point["time_limit"]),
                                                engine=point.get("int_engine") or None)).result
    layout = lp_relaxation(inst, obj).value
    b = run_bound("cg", inst, SolveOptions(objective=obj, time_limit_s=float(point["bound_time"]),
                                           params=(("clock", "cpu"),)))  # (the CPU clock: a loaded machine)
    bp, bp_cpu, _ = _branched_bound(inst, obj, point, int(point.get("bp_nodes") or 0), "slots")
    out = {"milp_status": opt.status.value, "optimum": opt.objective, "layout_lp": layout, "cg_lp": b.lp_value,
           "cg_bound": b.bound, "cg_converged": b.converged, "cg_bp": bp, "bp_cpu_s": bp_cpu}
    cut_rounds = int(point.get("cuts") or 0)  # (min-gpus) the bound with rounding cuts (solvers.exact.cg_cuts)
    if cut_rounds and obj is Objective.MIN_GPUS:
        c0 = time.process_time()
        bc = run_bound("cg", inst, SolveOptions(objective=obj, time_limit_s=float(point["bound_time"]), params=(
            ("cuts", str(cut_rounds)), ("clock", "cpu"))))
        out.update({"cg_cuts_lp": bc.lp_value if bc.converged else None, "cg_cuts": bc.bound,
                    "cuts_cpu_s": round(time.process_time() - c0, 3)})
    # configuration branching runs where it can count: on a proven optimum, or (min-gpus) to try to prove one
    worth = opt.status is Status.OPTIMAL or (obj is Objective.MIN_GPUS and opt.objective is not None)
    if obj is Objective.MIN_GPUS and opt.objective is not None and b.bound >= opt.objective - 1e-9:
        worth = False  # the rounded LP bound already equals the plan's GPUs: nothing is left to close
    # (a bound is never above an optimum)
    names = {v: rf_name(*v) for v in rf_variants(point)}  # (rule, strong) -> its column name
    for (rule, strong), name in names.items():
        rf, rf_cpu, rf_wall = _branched_bound(inst, obj, point, int(point.get("rf_nodes") or 0) if worth else 0,
                                              rule, strong)
        out.update({f"cg_rf_{name}": rf, f"rf_{name}_cpu_s": rf_cpu, f"rf_{name}_wall_s": rf_wall})
    # a proof of the plan: milp's, or (min-gpus) a bound equal to its GPUs
    bounds = [v for k, v in out.items() if k in ("cg_bound", "cg_bp", "cg_cuts") or k.startswith("cg_rf_")]
    bounds = [v for v in bounds if v is not None]
    proof = "milp" if opt.status is Status.OPTIMAL else ""
    if not proof and opt.objective is not None and obj is Objective.MIN_GPUS and bounds \
            and max(bounds) >= opt.objective - 1e-9:
        proof = "bound"
    out["proof"] = proof
    if proof and opt.objective is not None:
        total = abs(opt.objective - layout)
        for name, v in [("cg_lp", b.lp_value if b.converged else None), ("cg_bound", b.bound), ("cg_bp", bp),
                        ("cg_cuts_lp", out.get("cg_cuts_lp")), ("cg_cuts", out.get("cg_cuts"))] + [
                (f"cg_rf_{x}", out[f"cg_rf_{x}"]) for x in names.values()]:
            out[f"closed_{name}"] = None if v is None or total < 1e-9 else round(
                min(1.0, abs(v - layout) / total), 4)
    return out


def solvers_for(services: int, chosen: list[str], quick: bool) -> list[str]:
    """The solvers run at `services`: those named, milp/cpsat for 'exact' up to EXACT_MAX_SERVICES (not with
    --quick), every baseline for 'baselines'."""
    known = available_solvers()
    out = [s for s in chosen if solver_spec(s)[0] in known]
    if not quick and services <= EXACT_MAX_SERVICES and "exact" in chosen:
        out += [s for s in EXACT if s in known]
    if "baselines" in chosen:
        out += [s for s in BASELINES if s in known]
    return [s for s in out if s not in ("exact", "baselines")]


def exact_beyond(services: int, chosen: list[str], quick: bool) -> list[str]:
    """milp/cpsat for 'exact' above EXACT_MAX_SERVICES: rows that say they were not tried (`not_tried`)."""
    if quick or services <= EXACT_MAX_SERVICES or "exact" not in chosen:
        return []
    return [s for s in EXACT if s in available_solvers()]


STUDY = Study("scale_eval", "cluster scale: certified bounds by column generation, cg, heuristic and baselines "
              "from 16 to 4,096 services", typical="hours (full grid); 2-5 min --quick",
              results="scale", quick="16 and 32 services, one seed, work limits only (machine-independent rows; cg's "
                                      "wall clock a 600 s safety net, QUICK_CG_SAFETY)")  # (a literal: read unimported)



def _size(point) -> float:
    """A grid point's work for the runners' start order (biggest first on several workers): its services."""
    return float(point["services"])

def _check_solvers(ap: argparse.ArgumentParser, chosen: list[str]) -> None:
    """--solvers: registered names (with NAME:key=value params), 'exact', 'baselines' and 'none' (the bounds only);
    an unknown one is a usage error before any point runs (it was dropped, and its rows silently missing)."""
    from stsched.errors import InputError

    known = available_solvers()
    for spec in chosen:
        try:
            name, params = solver_spec(spec)
            if name in known:
                known[name].parse(params)  # unknown keys and bad values, as `stsched solve --param`
        except (ValueError, InputError) as e:
            ap.error(f"argument --solvers: {e}")
        if name not in known and spec not in SOLVER_GROUPS:
            ap.error(f"argument --solvers: {unknown_solver(name, also=SOLVER_GROUPS)}")


SOLVER_GROUPS = ("exact", "baselines", "none")  # the words --solvers takes beside solver names
INTEGRALITY_ONLY = ("bp_nodes", "rf_nodes", "bp_rule", "rf_strong", "int_engine", "int_services", "cuts")
SCALE_ONLY = ("services", "solvers", "poisson", "bound_rounds", "bound_clock", "no_bound", "quick")
QUICK_SETS = ("services", "seeds", "bound_rounds", "bound_time", "time_limit")
BOUND_ONLY = ("bound_rounds", "bound_time", "bound_clock")


def _check_modes(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options the run would ignore are refused (they were, exit 0): the integrality study's without --integrality,
    the cluster-scale study's with it, those --quick sets, the bound's with --no-bound."""
    if args.integrality:
        refuse_ignored(ap, args, SCALE_ONLY, "an option of the cluster-scale study; --integrality would ignore it",
                       "options of the cluster-scale study; --integrality would ignore them")
        return
    refuse_ignored(ap, args, INTEGRALITY_ONLY, "an option of --integrality; without it, it would be ignored",
                   "options of --integrality; without it, they would be ignored")
    if args.quick:
        refuse_ignored(ap, args, QUICK_SETS, "--quick sets it (16 and 32 services, one seed, work limits); give "
                       "one or the other", "--quick sets them (16 and 32 services, one seed, work limits); give one "
                       "or the other")
    if args.no_bound:
        refuse_ignored(ap, args, BOUND_ONLY, "an option of the bound; --no-bound would ignore it",
                       "options of the bound; --no-bound would ignore them")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=services_arg, nargs="+", default=[16, 64, 256, 1024])
    ap.add_argument("--seeds", type=seed_arg, nargs="+", default=[1, 2, 3])
    ap.add_argument("--devices", nargs="+", default=list(DEVICES), choices=DEVICES)
    ap.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    ap.add_argument("--solvers", nargs="+", default=["heuristic", "cg", "exact", "baselines"],
                    help="solver names, plus 'exact' (milp, cpsat up to 64 services) and 'baselines'")
    ap.add_argument("--poisson", type=fraction, default=None, metavar="X",
                    help="also the instances under late_share X (heuristic and cg; the others get skipped rows saying why)")
    ap.add_argument("--bound-rounds", type=count, default=200, help="master solves of the bound (a work limit)")
    ap.add_argument("--bound-time", type=time_limit, default=60.0, help="seconds for the bound")
    ap.add_argument("--bound-clock", choices=("wall", "cpu"), default="wall",
                    help="what --bound-time counts: wall clock, or the bound's own CPU time (a loaded machine)")
    ap.add_argument("--time-limit", type=time_limit, default=60.0, help="seconds per solver run")
    ap.add_argument("--integrality", action="store_true", help="the integrality-gap study (see above)")
    ap.add_argument("--bp-nodes", type=count, default=40,
                    help="--integrality: node LPs of the cg bound's branch-and-price on slot and layout counts")
    ap.add_argument("--rf-nodes", type=count, default=20,
                    help="--integrality: node LPs of the branch-and-price on configurations (--param bp_nodes)")
    ap.add_argument("--bp-rule", choices=("pairs", "usage", "service"), nargs="+", default=["pairs", "usage"],
                    help="--integrality: what that branch-and-price branches on first (--param bp_rule), one "
                         "column each")
    ap.add_argument("--rf-strong", type=whole(0), nargs="+", default=[0], metavar="K",
                    help="--integrality: strong branching on K candidates for the branch-and-price on configurations "
                         "(--param bp_strong; 0 or 1: by fractionality), one column per rule and K")
    ap.add_argument("--int-engine", choices=("cbc", "highs"), default=None,
                    help="--integrality: milp's engine for the optima (default: milp's own, CBC)")
    ap.add_argument("--cuts", type=whole(0), default=0, metavar="K",
                    help="--integrality: also the min-gpus bound with K rounds of rounding cuts (--param cuts=K)")
    ap.add_argument("--int-services", type=services_arg, nargs="+", default=[8, 12, 16],
                    help="--integrality: the instances' services")
    ap.add_argument("--no-bound", action="store_true",
                    help="skip the certified bound (rows keep the solver's own bound, `own_bound`)")
    args = study_args(ap, argv, quick=STUDY.quick)
    _check_modes(ap, args)
    _check_solvers(ap, args.solvers)
    if args.plot_only:
        rows = read_rows(EXPERIMENT, "solves.csv")
        tag = "full" if any(r["run"] == "full" for r in rows) else "quick"
        path = results_dir(EXPERIMENT) / "bounds.csv"
        bounds = read_rows(EXPERIMENT, "bounds.csv") if path.exists() else []
        return _report_and_plot(with_bounds(rows, bounds), bounds, tag)
    if args.integrality:
        return integrality(args)
    if args.quick:
        args.services, args.seeds, args.bound_rounds = [16, 32], [1], 30
        args.bound_time, args.time_limit = 3600.0, 3600.0  # work limits only
        args.solvers = [s for s in args.solvers if s != "exact"]
    tag = "quick" if args.quick else "full"
    lates = [0.0] + ([args.poisson] if args.poisson else [])
    base = [{"run": tag, "device": d, "services": n, "seed": s, "objective": o, "late_share": x,
             "bound_rounds": args.bound_rounds, "bound_time": args.bound_time, "bound_clock": args.bound_clock}
            for x in lates for d in args.devices for n in args.services for s in args.seeds for o in args.objectives]
    keys = ["run", "device", "services", "seed", "objective", "late_share"]
    bounds = [] if args.no_bound else run_grid(EXPERIMENT, base, keys, lambda p: forked(_bound, p), fresh=args.fresh,
                                               filename="bounds.csv", cost=_size)
    by_key = {tuple(r[k] for k in keys): r for r in bounds}
    points = []
    for p in base:  # every solver at every size: a row says why one did not run (`not_tried`, `refused`)
        for name in solvers_for(int(p["services"]), args.solvers, args.quick) + exact_beyond(
                int(p["services"]), args.solvers, args.quick):
            points.append({**p, "solver": name, "time_limit": args.time_limit})

    def one(p: Mapping[str, object]) -> dict:
        reason = not_tried(p)
        if reason:
            return {"status": SKIPPED, "message": reason}
        out = forked(_solve, p)
        b = by_key.get(tuple(str(p[k]) for k in keys), {})
        bound = number(b.get("bound"))
        out["certified_bound"] = bound
        out["gap"] = gap(str(p["objective"]), number(out.get("value")), bound)
        return out

    every = run_grid(EXPERIMENT, points, keys + ["solver"], one, fresh=args.fresh, filename="solves.csv", cost=_size)
    every = with_bounds(every, bounds)
    rows = [r for r in every if r["run"] == tag]
    cols = ["device", "services", "seed", "objective", "late_share", "solver", "status", "value", "valid",
            "certified_bound", "own_bound", "gap", "wall_s", "solve_cpu_s", "workers_cpu_s", "cpu_s", "peak_mb",
            "note"]
    print(markdown_table([{**{c: fmt_cell(r.get(c)) for c in cols}, "note": note(r)} for r in rows], cols))
    print()
    print(markdown_table([{c: fmt_cell(b.get(c)) for c in keys + ["bound", "lp_value", "converged", "columns",
                                                                 "wall_s"]} for b in bounds if b["run"] == tag],
                         keys + ["bound", "lp_value", "converged", "columns", "wall_s"]))
    print()
    return _report_and_plot(every, bounds, tag)


def _report_and_plot(every: list[dict], bounds: list[dict], tag: str) -> int:
    """The report of the run `tag` (quick or full) and the plots of every run's rows (quick and full)."""
    print(report([r for r in every if r["run"] == tag], [b for b in bounds if b["run"] == tag]))
    print("\n".join(str(p) for p in plot(every, results_dir(EXPERIMENT))))
    return 0


def report(rows: list[dict], bounds: list[dict]) -> str:
    """The summary tables (values and gaps; wall / CPU seconds) and the time exponents from 256 services up, as
    Markdown, also written to results/scale/summary.md."""
    parts = []
    for title, (lines, cols) in (("Plans: GPUs or alpha (gap to the certified bound)", summary(rows, bounds)),
                                 ("Wall / CPU seconds", times(rows, bounds))):
        parts += [f"### {title}", "", markdown_table(lines, cols), ""]
    fits = exponents(rows, minimum=256)
    if fits:
        parts += ["### Time ~ services^k from 256 services up (seeds pooled)", "",
                  markdown_table(fits, list(dict.fromkeys(k for f in fits for k in f))), ""]
    text = "\n".join(parts)
    write_atomic(results_dir(EXPERIMENT) / "summary.md", text)
    return text


def integrality(args) -> int:
    variants = {"bp_rule": "+".join(args.bp_rule), "rf_strong": "+".join(str(k) for k in args.rf_strong)}
    pts = [{"device": d, "services": n, "seed": s, "objective": o, "time_limit": args.time_limit,
            "bound_time": args.bound_time, "bp_nodes": args.bp_nodes, "rf_nodes": args.rf_nodes, **variants,
            "cuts": args.cuts,
            "int_engine": args.int_engine or ""}
           for d in args.devices for n in args.int_services for s in args.seeds for o in args.objectives]
    keys = ["device", "services", "seed", "objective"]
    rows = run_grid(EXPERIMENT, pts, keys, lambda p: forked(_integrality, p), fresh=args.fresh,
                    filename="integrality.csv", cost=_size)
    rules = [rf_name(*v) for v in rf_variants(variants)]  # the rows' own columns (`_integrality`)
    cuts = ["cg_cuts_lp", "cg_cuts"] if args.cuts else []
    cols = keys + ["milp_status", "proof", "optimum", "layout_lp", "cg_lp", "cg_bound", "cg_bp"] + cuts + [
        f"cg_rf_{r}" for r in rules] + ["closed_cg_lp", "closed_cg_bound", "closed_cg_bp"] + [
        f"closed_{c}" for c in cuts] + [f"closed_cg_rf_{r}" for r in rules] + ["bp_cpu_s"] + (
        ["cuts_cpu_s"] if cuts else []) + [f"rf_{r}_{k}_s" for r in rules for k in ("cpu", "wall")]
    print(markdown_table([{c: fmt_cell(r.get(c)) for c in cols} for r in rows], cols))
    for label, proofs in (("proven by milp", ("milp",)), ("proven by milp or by a bound", ("milp", "bound"))):
        proven = [r for r in rows if r.get("proof") in proofs and number(r.get("closed_cg_bound")) is not None]
        for o in args.objectives:
            for col, what in [("closed_cg_lp", "the cg LP"), ("closed_cg_bound", "the cg bound"),
                              ("closed_cg_bp", "with B&P on slot/layout counts"),
                              ("closed_cg_cuts_lp", "the cg LP with rounding cuts"),
                              ("closed_cg_cuts", "the cg bound with rounding cuts"),
                              ] + [(f"closed_cg_rf_{r}", f"with B&P on configurations ({r})") for r in rules]:
                sub = [number(r[col]) for r in proven if r["objective"] == o and number(r.get(col)) is not None]
                if sub:
                    print(f"{o}, {label}: {len(sub)} optima with an integrality gap; {what} closes a mean "
                          f"{sum(sub) / len(sub):.1%} of it (min {min(sub):.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
