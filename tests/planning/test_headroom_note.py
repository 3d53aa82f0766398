"""The head-room note names the factor as given (session 20: `--headroom 1.0000009` said "planned for 1 x")."""

import pytest

from stsched.planning.headroom import solve_with_headroom
from stsched.scenarios import random_instance
from stsched.registry import Objective, SolveOptions


@pytest.mark.parametrize("factor", ["1.0000009", "1.00000000001", "1.25"])
def test_the_note_names_a_factor_just_above_one(factor):
    inst = random_instance(4, 4, 1, "a100-mps", arrivals="deterministic")
    judged = solve_with_headroom("heuristic", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=5),
                                 float(factor))
    assert f"planned for {factor} x every rate" in judged.result.message
