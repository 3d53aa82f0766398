"""What several commands share: judging a plan given as input before any work, printing a result as JSON."""

from __future__ import annotations

import json
import logging
import math
import sys
from typing import Any

from stsched.checker import Report, Rule, check
from stsched.errors import InvalidPlanError
from stsched.io import check_plan_services, load_plan
from stsched.plan import Plan
from stsched.problem import Instance

log = logging.getLogger(__name__)

# rules that hold whatever the rates a plan meets: a plan in force or a warm start is judged by these alone
RATE_FREE = frozenset(Rule) - {Rule.COVERAGE}


def judge_plan(inst: Instance, plan: Plan, source: str, *, allow_invalid: bool = False, what: str = "plan",
               rules: frozenset[Rule] = frozenset(Rule)) -> Report:
    """The checker's verdict on a plan given as input (only `rules` count): an invalid one raises
    InvalidPlanError with its first violation (exit 1) unless `allow_invalid`, which logs a warning instead."""
    check_plan_services(inst, plan, source)
    report = check(inst, plan)
    bad = [v for v in report.violations if v.rule in rules]
    if bad:
        text = (f"{what} {source} is not valid for instance {inst.name!r}: {bad[0]}"
                + (f" (and {len(bad) - 1} more violations)" if len(bad) > 1 else ""))
        if not allow_invalid:
            raise InvalidPlanError(text + "; `stsched check` lists them, --allow-invalid uses it anyway")
        log.warning("%s (--allow-invalid: used anyway)", text)
    return report


def load_judged_plan(inst: Instance, path: str, *, allow_invalid: bool = False, what: str = "plan",
                     rules: frozenset[Rule] = frozenset(Rule)) -> Plan:
    plan = load_plan(path)
    judge_plan(inst, plan, path, allow_invalid=allow_invalid, what=what, rules=rules)
    return plan


def json_safe(x: Any) -> Any:
    """A JSON-safe copy: numpy scalars -> Python, NaN/inf -> None, tuples -> lists, other objects -> str."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "item") and callable(x.item) and type(x).__module__ == "numpy":
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)


def print_json(obj: Any) -> None:
    """One JSON object on stdout (strict JSON: NaN and infinities become null)."""
    json.dump(json_safe(obj), sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


def progress(args) -> bool:
    """Progress on stderr unless `--quiet`."""
    return not getattr(args, "quiet", False)
