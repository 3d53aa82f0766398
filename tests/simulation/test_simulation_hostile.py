"""Simulator options at the edge of floating point (session 12, hostile tester): gamma:1e-300 was a
ZeroDivisionError traceback and gamma:1e300 an OverflowError; --noise-cv 1e300 gave batches of 0 ms and of inf ms
(p50 0.00 ms) without a word; the streaming simulator looped for ever with --window 1e-300 and drew no request at
all with a window much longer than the duration (--window 1e300: 100 % of 0 requests)."""

from __future__ import annotations

import pytest

from stsched.errors import InputError
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.simulation import ArrivalSpec, SimOptions, simulate
from stsched.simulation.stream import StreamOptions, simulate_stream
from tests.conftest import make_mps_instance


@pytest.mark.parametrize("cv", [1e-300, 1e-160, 1e300])
def test_a_gamma_cv_whose_shape_is_not_a_float_is_refused(cv):
    with pytest.raises(InputError, match="out of range"):
        ArrivalSpec.parse(f"gamma:{cv!r}")


@pytest.mark.parametrize("make", [lambda cv: SimOptions(noise_cv=cv), lambda cv: StreamOptions(noise_cv=cv)])
def test_a_noise_cv_with_an_infinite_variance_is_refused(make):
    with pytest.raises(InputError, match="would be infinite"):
        make(1e300)
    make(10.0)


def test_stream_windows_are_bounded_and_a_long_window_still_draws():
    with pytest.raises(InputError, match="windows"):
        StreamOptions(duration_s=1.0, window_s=1e-300)
    inst = make_mps_instance()
    plan = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),))
    long = simulate_stream(inst, plan, StreamOptions(duration_s=2.0, window_s=1e300)).summary
    short = simulate_stream(inst, plan, StreamOptions(duration_s=2.0, window_s=2.0)).summary
    assert long.requests == short.requests > 0
    assert simulate(inst, plan, ArrivalSpec.parse("gamma:1e-150"), SimOptions(duration_s=1.0)).summary.requests > 0
