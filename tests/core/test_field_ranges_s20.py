"""Session 20: the ranges of the numbers that the problem and the plan both hold are written once
(`stsched.problem.BATCH`, `SIZE`, `PROCS`, `START`, `RATE`; `stsched.plan.DUTY_MS`; `stsched.validate.Range`).  Each
range's fast path (`Range.plain`, built once per range) must pass exactly what its check returns unchanged, as
`plain_in_range` (the fast path before) did, so that skipping the check changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.errors import FieldError
from stsched.plan import DUTY_MS, Partition, Tenant
from stsched.problem import _SERVICE_RANGES, BATCH, PROCS, RATE, SIZE, START, ProfileEntry
from stsched.validate import Range, plain_in_range

RANGES = [BATCH, SIZE, PROCS, START, RATE, DUTY_MS, *_SERVICE_RANGES.values(), Range(maximum=5.0),
          Range(minimum=2, maximum=9, whole=True)]
VALUES = st.one_of(st.integers(), st.integers(min_value=-10, max_value=10), st.floats(), st.booleans(),
                   st.sampled_from([10 ** 400, -10 ** 400, 86_400_000.0, 86_400_000.5, 0.0, -0.0, 1e-320]),
                   st.integers(-2 ** 63, 2 ** 63 - 1).map(np.int64), st.floats().map(np.float64),
                   st.text(max_size=2), st.none())


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_a_ranges_fast_path_passes_only_what_its_check_returns_unchanged(value):
    for rng in RANGES:
        kinds = (int,) if rng.whole else (int, float)
        assert rng.plain(value) == plain_in_range(value, kinds, minimum=rng.minimum, strict=rng.strict,
                                                  maximum=rng.maximum)
        try:
            checked = rng.checked(value, "x")
        except FieldError as e:
            assert not rng.plain(value)
            with pytest.raises(FieldError, match="^x: "):
                rng.of(value, "x")
            assert str(e).startswith("x: ")
            continue
        if rng.plain(value):
            assert checked is value
        got = rng.of(value, "x")
        assert got == checked and type(got) is type(checked)


def test_a_strict_range_needs_a_real_minimum():
    with pytest.raises(ValueError):
        Range(minimum=1, strict=True, whole=True)
    with pytest.raises(ValueError):
        Range(strict=True)


@pytest.mark.parametrize("build, text", [
    (lambda: Tenant("s", 0, 1.0), "tenant 's': batch: expected a whole number >= 1, got 0"),
    (lambda: Tenant("s", 2, -1.0), "tenant 's': rate: expected a number >= 0, got -1.0"),
    (lambda: Partition(0, ()), "partition size: expected a number > 0, got 0"),
    (lambda: Partition(50.0, (), None, 0), "partition procs: expected a whole number >= 1, got 0"),
    (lambda: Partition(50.0, (), None, 1, -1), "partition start: expected a whole number >= 0, got -1"),
    (lambda: Partition(50.0, (), 1e300), "partition duty_ms (at most a day): expected a number <= 8.64e+07"),
    (lambda: ProfileEntry(0, 50.0, 1, 3.0), "profile entry: batch: expected a whole number >= 1, got 0"),
    (lambda: ProfileEntry(4, 0.0, 1, 3.0), "profile entry at batch 4: size: expected a number > 0, got 0.0"),
    (lambda: ProfileEntry(4, 50.0, 0, 3.0), "profile entry at batch 4: procs: expected a whole number >= 1"),
])
def test_the_plan_and_the_problem_name_the_same_ranges_as_before(build, text):
    """The messages of the shared ranges, as each class gave them before they were written once."""
    with pytest.raises(FieldError) as e:
        build()
    assert text in str(e.value), str(e.value)
