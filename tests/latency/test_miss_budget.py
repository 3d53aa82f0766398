"""The miss budget of a plan (issue 19): late share and interference quantile from an attainment target."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from stsched.errors import InputError
from stsched.latency.miss_budget import TOP_LEVEL, MissBudget
from stsched.latency.uncertainty import LEVELS


def test_the_budget_is_split_evenly_and_the_quantile_capped_at_the_stored_levels():
    b = MissBudget(0.9)
    assert b.late_share == pytest.approx(0.05) and b.quantile == pytest.approx(0.95) and not b.capped
    b = MissBudget(0.99)
    assert b.late_share == pytest.approx(0.005) and b.uncapped_quantile == pytest.approx(0.995)
    assert b.quantile == TOP_LEVEL == LEVELS[-1] == 0.99 and b.capped


def test_each_source_may_take_the_whole_budget():
    b = MissBudget(0.99, "each")
    assert b.late_share == pytest.approx(0.01) and b.quantile == pytest.approx(0.99) and not b.capped
    assert MissBudget(0.9, "each").quantile == pytest.approx(0.9)
    assert MissBudget(0.995, "each").capped
    with pytest.raises(InputError, match="split"):
        MissBudget(0.99, "half")


@given(st.floats(0.5, 0.999))
def test_the_two_shares_never_exceed_the_budget_unless_capped(target):
    b = MissBudget(target)
    assert 0 < b.late_share < 1 and 0.5 <= b.quantile <= TOP_LEVEL
    spent = b.late_share + (1 - b.quantile)
    assert spent == pytest.approx(1 - target) if not b.capped else spent > 1 - target


@pytest.mark.parametrize("bad", [1.0, 0.3, -0.1, float("nan"), "0.9"])
def test_a_target_outside_the_range_is_bad_input(bad):
    with pytest.raises(InputError, match="target attainment"):
        MissBudget(bad)
