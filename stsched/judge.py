"""A plan given as input (to simulate, execute, warm-start or re-plan from) is judged by the checker first: the CLI
and the Python API refuse an invalid one the same way (`InvalidPlanError`: exit 1 with its first violation)."""

from __future__ import annotations

import logging

from stsched.checker import Report, Rule, check
from stsched.errors import InvalidPlanError
from stsched.io import check_plan_services, load_plan
from stsched.plan import Plan
from stsched.problem import Instance

log = logging.getLogger(__name__)

# rules that hold whatever the rates a plan meets: a plan in force or a warm start is judged by these alone
RATE_FREE = frozenset(Rule) - {Rule.COVERAGE}


HINT = "`stsched check` lists them, --allow-invalid uses it anyway"


def judge_plan(inst: Instance, plan: Plan, source: str, *, allow_invalid: bool = False, what: str = "plan",
               rules: frozenset[Rule] = frozenset(Rule), hint: str = HINT) -> Report:
    """The checker's verdict on a plan given as input (only `rules` count): an invalid one raises
    InvalidPlanError with its first violation and `hint` (exit 1) unless `allow_invalid`, which logs a warning
    instead."""
    check_plan_services(inst, plan, source)
    report = check(inst, plan)
    bad = [v for v in report.violations if v.rule in rules]
    if bad:
        text = (f"{what} {source} is not valid for instance {inst.name!r}: {bad[0]}"
                + (f" (and {len(bad) - 1} more violations)" if len(bad) > 1 else ""))
        if not allow_invalid:
            raise InvalidPlanError(f"{text}; {hint}")
        log.warning("%s (--allow-invalid: used anyway)", text)
    return report


def load_judged_plan(inst: Instance, path: str, *, allow_invalid: bool = False, what: str = "plan",
                     rules: frozenset[Rule] = frozenset(Rule), hint: str = HINT) -> Plan:
    plan = load_plan(path)
    judge_plan(inst, plan, path, allow_invalid=allow_invalid, what=what, rules=rules, hint=hint)
    return plan
