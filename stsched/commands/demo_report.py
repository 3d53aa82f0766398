"""The demo's report: one short line per scenario with rounded numbers (best exact, heuristic, gap, each baseline).

Pure functions of the demo's solve records (dicts with case, objective, solver, status, objective_value, valid),
so that the table is tested without solving anything.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

MIN_GPUS, MAX_SCALE = "min-gpus", "max-scale"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def value_text(objective: str, value: float | None) -> str:
    """GPUs as an integer, a scale factor with one decimal."""
    if value is None:
        return "-"
    return f"{value:.0f}" if objective == MIN_GPUS else f"{value:.1f}"


def _better(objective: str, a: float, b: float) -> bool:
    return a < b if objective == MIN_GPUS else a > b


def best_exact(records: Sequence[Mapping], kinds: Mapping[str, str]) -> Mapping | None:
    """The best valid exact result of one scenario (a proven optimum first among equals)."""
    best = None
    for r in records:
        if kinds.get(r["solver"]) != "exact" or not r["valid"] or r["objective_value"] is None:
            continue
        if (best is None or _better(r["objective"], r["objective_value"], best["objective_value"])
                or (r["objective_value"] == best["objective_value"] and r["status"] == "optimal"
                    and best["status"] != "optimal")):
            best = r
    return best


def gap(objective: str, heuristic: float | None, exact: float | None) -> float | None:
    """How much worse the heuristic is than the best exact value (0 when equal; None when either is missing)."""
    if heuristic is None or exact is None or exact == 0:
        return None
    return (heuristic - exact) / exact if objective == MIN_GPUS else (exact - heuristic) / exact


def _cell(r: Mapping | None) -> str:
    if r is None:
        return "n/a"
    if not r["valid"] or r["objective_value"] is None:
        return "none" if r["objective_value"] is None else "invalid"
    return value_text(r["objective"], r["objective_value"])


def report_table(records: Sequence[Mapping], kinds: Mapping[str, str]) -> list[str]:
    """A markdown table, one line per scenario: best exact (proven or not), heuristic, its gap, each baseline
    (n/a: the baseline does not apply to the scenario's mechanism; none: no plan)."""
    cases: dict[str, list[Mapping]] = {}
    for r in records:
        cases.setdefault(r["case"], []).append(r)
    baselines = sorted({r["solver"] for r in records if kinds.get(r["solver"]) == "baseline"})
    head = ["scenario", "objective", "best exact", "heuristic", "gap", *baselines]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case, rows in cases.items():
        objective = rows[0]["objective"]
        ex = best_exact(rows, kinds)
        heur = next((r for r in rows if kinds.get(r["solver"]) == "heuristic"), None)
        ex_text = "-" if ex is None else (value_text(objective, ex["objective_value"])
                                          + (" (proven)" if ex["status"] == "optimal" else f" ({ex['status']})"))
        hv = heur["objective_value"] if heur is not None and heur["valid"] else None
        g = gap(objective, hv, None if ex is None else ex["objective_value"])
        by_solver = {r["solver"]: r for r in rows}
        g_text = "-" if g is None else f"{g:.1%}" + (" (heuristic better)" if g < 0 else "")
        cells = [case, objective, ex_text, _cell(heur), g_text,
                 *(_cell(by_solver.get(b)) for b in baselines)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def next_steps(out: str) -> list[str]:
    return ["## Where to look next", "",
            f"- `{out}/rows.csv`: every solve (status, value, bound, wall time, checker verdict).",
            f"- `{out}/plans/`: the pictures above; draw any plan with `stsched show INSTANCE PLAN --out plan.png` "
            "(or `--text`), deploy it with `stsched export INSTANCE PLAN --format mig|mps|sm`.",
            "- `stsched simulate INSTANCE PLAN --arrivals poisson`: what users would feel; plan for it with "
            "`stsched solve --attainment 0.99` (docs/SIMULATOR.md).",
            "- README.md, \"Measured figures\": each figure with the command that reproduces it; docs/RULES.md: the "
            "rules every plan is checked by."]
