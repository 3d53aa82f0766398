"""A knob set on a policy that does not read it is refused (session 20): `static-peak[compact_rent=6]` and
`adaptive[period=2]` ran as if the knob were not there."""

from dataclasses import fields

import pytest

from stsched.errors import InputError
from stsched.planning.adapt import AdaptOptions
from stsched.planning.adapt.policies import POLICIES, AdaptiveKnobs, knob_reader, knobs_read

from experiments.adapt_frontier import parse_policy


@pytest.mark.parametrize("policy, knobs, named", [
    ("static-peak", {"compact_rent": 6.0}, "compact_rent (a knob of adaptive)"),
    ("full-repartition", {"compact_off": False}, "compact_off (a knob of adaptive)"),
    ("periodic", {"save_for": 6}, "save_for (a knob of practitioner)"),
    ("practitioner", {"period": 2}, "period (a knob of periodic)"),
    ("adaptive", {"save_gpus": 2}, "save_gpus (a knob of practitioner)"),
])
def test_a_knob_the_policy_does_not_read_is_refused(policy, knobs, named):
    with pytest.raises(InputError, match=f"policy {policy} does not read {named.replace('(', '[(]').replace(')', '[)]')}"):
        AdaptOptions(policy=policy, **knobs)


@pytest.mark.parametrize("policy, knobs", [
    ("periodic", {"period": 2}), ("practitioner", {"save_gpus": 2, "save_for": 6}),
    ("adaptive", {"compact_rent": 6.0, "compact_off": False}), ("static-peak", {"decision_s": 3.0}),
    ("full-repartition", {"decision_s": 3.0}),
])
def test_the_knobs_a_policy_reads_are_taken(policy, knobs):
    assert all(getattr(AdaptOptions(policy=policy, **knobs), k) == v for k, v in knobs.items())


def test_every_knob_has_a_reader_among_the_policies():
    for f in fields(AdaptiveKnobs):
        assert any(f.name in knobs_read(p) for p in POLICIES), f.name
        assert f.name in knobs_read(knob_reader(f.name))


def test_the_frontier_study_refuses_it_before_any_point_runs():
    with pytest.raises(SystemExit, match="policy 'static-peak\\[compact_rent=6\\]': policy static-peak does not read"):
        parse_policy("static-peak[compact_rent=6]")
