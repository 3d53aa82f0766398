"""experiments.scale_eval's report from its rows: the summary tables (a line per instance and objective, a cell per
solver), the time exponents and the plots (results/scale/summary.md, *.png; `scale_eval --plot-only` redraws them).

Cells: a plan's GPUs (min-gpus) or alpha (max-scale) with its gap to the certified bound in brackets, `, limit` after
the gap where the run reached its time limit (`at_limit`: the plan is what the limit left, e.g. a baseline's
max-scale bisection cut short); `no plan` (the solver ran and found none on the instance's GPUs, e.g. a baseline that
needs more), `time limit` (it found none before its time limit), `skipped` (not run: the row's message says why),
`INVALID` (the checker rejected the plan), or the status.  The bound: the cg bound provider's, `(settled)` where a
min-gpus column generation stopped once no round could raise the whole-GPU bound (the bound a converged LP would
give), `(open)` where it stopped otherwise before converging (still a valid bound), `(LP)` where the registry loosened
it to the LP bound (a Poisson instance: cg's columns credit tenants with the least Poisson credit,
`stsched.registry`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from experiments.plots import number, series_plot
from experiments.runners import RUN_ERROR

SOLVER_ORDER = ("heuristic", "cg", "milp", "cpsat", "nexus", "gslice", "gpulet", "igniter", "parvagpu")
PLANNED = ("feasible", "optimal")
INSTANCE = ("device", "services", "seed", "objective")
SKIPPED = "skipped"  # the status of a row whose solver was not run (its message says why)
OBJECTIVE_ORDER = ("min-gpus", "max-scale")


def gap(objective: str, value: float | None, bound: float | None) -> float | None:
    """Relative gap of a plan to the certified bound (min-gpus: (GPUs - bound) / GPUs; max-scale: (bound - alpha) /
    bound)."""
    if value is None or bound is None or not math.isfinite(bound) or value <= 0:
        return None
    if objective == "min-gpus":
        return max(0.0, (value - bound) / value)
    return max(0.0, (bound - value) / bound)


def with_bounds(rows: Sequence[Mapping[str, object]], bounds: Sequence[Mapping[str, object]]) -> list[dict]:
    """The rows with the certified bound and the gap to it filled in from the bound rows of their instance where a
    row has none (its solve ran before the bound, e.g. with --no-bound, or the rows of several --out roots put
    together); a row's own bound and gap are kept."""
    by_bound = {_key(b): number(b.get("bound")) for b in bounds}
    out = []
    for r in rows:
        bound = by_bound.get(_key(r))
        if number(r.get("certified_bound")) is None and bound is not None:
            r = {**r, "certified_bound": bound, "gap": gap(str(r["objective"]), number(r.get("value")), bound)}
        out.append(dict(r))
    return out


def arrivals_of(row: Mapping[str, object]) -> str:
    """'deterministic', or 'poisson X' for a row on an instance under the Poisson margin late_share X."""
    late = number(row.get("late_share"))
    return f"poisson {late:g}" if late else "deterministic"


def note(row: Mapping[str, object]) -> str:
    """The table's note: why a solver gave no plan or did not run (its message), empty for a plan."""
    return "" if row.get("status") in PLANNED else str(
        row.get("message") or row.get("error") or row.get(RUN_ERROR) or "")


def fmt_cell(v):
    """A CSV cell for a table: numbers to 4 significant digits (integers whole), anything else as it is."""
    x = number(v)
    return v if x is None or not isinstance(v, str) or not v.replace(".", "").replace("-", "").replace("e", "")\
        .isdigit() else (f"{x:.4g}" if not x.is_integer() else str(int(x)))


def value_text(objective: str, v: float) -> str:
    return str(int(round(v))) if objective == "min-gpus" else f"{v:.4f}"


def at_limit(row: Mapping[str, object]) -> bool:
    """Whether a solver's run reached its time limit (its wall seconds at least the row's `time_limit`, the limit
    the run was given): a plan it returned is what the limit left, not the solver's answer."""
    wall, limit = number(row.get("wall_s")), number(row.get("time_limit"))
    return wall is not None and limit is not None and wall >= limit


def cell(row: Mapping[str, object]) -> str:
    """A solver's summary cell: its value and gap (`, limit`: the run reached its time limit), or why there is
    none."""
    status = str(row.get("status") or "")
    v = number(row.get("value"))
    if status in PLANNED and v is not None:
        if str(row.get("valid")) == "False":
            return "INVALID"
        g = number(row.get("gap"))
        text = value_text(str(row["objective"]), v)
        cut = ", limit" if at_limit(row) else ""
        return f"{text} ({100 * g:.1f} %{cut})" if g is not None else (f"{text} (limit)" if cut else text)
    if status == "unknown":  # none found: within its time (e.g. a baseline needing more GPUs), or out of time
        return "time limit" if at_limit(row) else "no plan"
    return status or ("error" if row.get("error") or row.get(RUN_ERROR) else "")


def _key(r: Mapping[str, object]) -> tuple:
    objective = str(r["objective"])
    return (arrivals_of(r), str(r["device"]), OBJECTIVE_ORDER.index(objective) if objective in OBJECTIVE_ORDER
            else len(OBJECTIVE_ORDER), objective, int(r["services"]), int(r["seed"]))


def solvers_in(rows: Sequence[Mapping[str, object]]) -> list[str]:
    names = list(dict.fromkeys(str(r["solver"]) for r in rows))
    return [s for s in SOLVER_ORDER if s in names] + [s for s in names if s not in SOLVER_ORDER]


def summary(rows: Sequence[Mapping[str, object]], bounds: Sequence[Mapping[str, object]]) -> tuple[list[dict], list]:
    """A line per instance and objective: the certified bound and every solver's cell (value (gap))."""
    solvers = solvers_in(rows)
    by_bound = {_key(b): b for b in bounds}
    lines: dict[tuple, dict] = {}
    for r in sorted(rows, key=_key):
        line = lines.setdefault(_key(r), {"arrivals": arrivals_of(r), **{k: r[k] for k in INSTANCE}})
        line[str(r["solver"])] = cell(r)
    for k, line in lines.items():
        b = by_bound.get(k)
        v = number(b.get("bound")) if b else None
        line["bound"] = "" if v is None else value_text(str(line["objective"]), v) + (
            "" if str(b.get("converged")) == "True" else " (settled)" if str(b.get("settled")) == "True"
            else " (open)") + (
            " (LP)" if b.get("method") == "lp-efficiency" else "")  # loosened to the LP bound (Poisson credit)
    cols = ["arrivals", *INSTANCE, "bound", *solvers]
    return [{c: line.get(c, "") for c in cols} for line in lines.values()], cols


def times(rows: Sequence[Mapping[str, object]], bounds: Sequence[Mapping[str, object]]) -> tuple[list[dict], list]:
    """A line per instance and objective: the bound's and every solver's wall / CPU seconds (CPU: the forked
    process's own, instance construction included, plus its worker processes') and the largest peak MB."""
    solvers = solvers_in(rows)
    by_bound = {_key(b): b for b in bounds}
    lines: dict[tuple, dict] = {}
    for r in sorted(rows, key=_key):
        line = lines.setdefault(_key(r), {"arrivals": arrivals_of(r), **{k: r[k] for k in INSTANCE}, "peak_mb": 0.0})
        if number(r.get("wall_s")) is not None and r.get("status") != SKIPPED:
            line[str(r["solver"])] = _wall_cpu(r)
            line["peak_mb"] = max(line["peak_mb"], number(r.get("peak_mb")) or 0.0)
    for k, line in lines.items():
        b = by_bound.get(k)
        line["bound"] = _wall_cpu(b) if b and number(b.get("wall_s")) is not None else ""
        line["peak_mb"] = f"{line['peak_mb']:.0f}"
    cols = ["arrivals", *INSTANCE, "bound", *solvers, "peak_mb"]
    return [{c: line.get(c, "") for c in cols} for line in lines.values()], cols


def _wall_cpu(r: Mapping[str, object]) -> str:
    cpu = (number(r.get("cpu_s")) or 0.0) + (number(r.get("workers_cpu_s")) or 0.0)
    return f"{number(r['wall_s']):.3g} / {cpu:.3g}"


def exponents(rows: Sequence[Mapping[str, object]], minimum: int = 256) -> list[dict]:
    """Per device, objective, solver and arrivals: the exponent k of time ~ services^k (least squares on log-log,
    seeds pooled) over the rows with a plan, at least `minimum` services and at least two sizes, for the solver's
    wall time and the CPU time of its run (`solve_cpu_s`: solve and judge, without building the instance).  A row
    without a plan is left out, and so is one that reached its time limit (`at_limit`), plan or not: a run stopped
    at its limit says nothing of how the time grows."""
    groups: dict[tuple[str, str, str, str], list] = {}
    for r in rows:  # (Poisson instances apart: their own fit)
        if int(r["services"]) >= minimum and number(r.get("wall_s")) and r.get("status", "feasible") in PLANNED \
                and not at_limit(r):
            groups.setdefault((str(r["device"]), str(r["objective"]), str(r["solver"]), arrivals_of(r)),
                              []).append(r)
    out = []
    for (device, objective, solver, arrivals), sub in sorted(groups.items()):
        xs = np.log([int(r["services"]) for r in sub])
        if len(set(xs.tolist())) < 2:
            continue
        row = {"device": device, "objective": objective, "solver": solver, "arrivals": arrivals,
               "services": f"{min(int(r['services']) for r in sub)}-{max(int(r['services']) for r in sub)}",
               "points": len(sub)}
        for metric in ("wall_s", "solve_cpu_s"):
            if any(number(r.get(metric)) is None for r in sub):
                continue
            ys = np.log([max(number(r[metric]), 1e-6) for r in sub])
            row[f"exponent_{metric[:-2]}"] = round(float(np.polyfit(xs, ys, 1)[0]), 3)
        out.append(row)
    return out


def plot(rows: Sequence[Mapping[str, object]], folder: Path) -> list[Path]:
    """Per metric (wall time, CPU time, gap to the certified bound) and objective, one figure against the services
    on log axes (wall_OBJECTIVE.png, cpu_OBJECTIVE.png, gap_OBJECTIVE.png): a series per solver, device and
    arrivals (Poisson rows apart; a colour per solver, squares MIG, circles MPS, hollow Poisson), every seed a
    point."""
    out = []
    for metric, ylabel, stem in (("wall_s", "wall time (s)", "wall"), ("cpu_s", "CPU time (s)", "cpu"),
                                 ("gap", "gap to the certified bound", "gap")):
        for objective in dict.fromkeys(str(r["objective"]) for r in rows):
            series: dict[str, tuple[list, list]] = {}
            styles: dict[str, dict] = {}  # a colour per solver, a marker per device (hollow: Poisson)
            for r in rows:
                if r["objective"] != objective or number(r.get(metric)) is None or r.get("status") == SKIPPED:
                    continue  # (a skipped row's CPU is its instance's construction only)
                late = " poisson" if number(r.get("late_share")) else ""
                name = f"{r['solver']} {r['device']}{late}"
                xs, ys = series.setdefault(name, ([], []))
                xs.append(int(r["services"]))
                ys.append(max(number(r[metric]), 1e-4))
                solver = str(r["solver"])
                colour = f"C{SOLVER_ORDER.index(solver) if solver in SOLVER_ORDER else len(SOLVER_ORDER)}"
                styles[name] = {"color": colour, "marker": "s" if "mig" in str(r["device"]) else "o",
                                **({"mfc": "none"} if late else {})}
            if series:
                out.append(series_plot(series, folder / f"{stem}_{objective}.png",
                                       xlabel="services (GPUs = services / 2)", ylabel=ylabel, log_x=True,
                                       log_scale=None, connect=False, title=f"scale_eval, {objective}: {ylabel}",
                                       styles=styles))
    return out
