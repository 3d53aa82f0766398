"""`stsched.bounds`: the usable entries kept per model across services give the same efficiencies and GPU
throughputs as looking them up per service (the LP bound loops over thousands of services of a few models)."""

from __future__ import annotations

import pytest

from stsched.bounds import efficiency, gpu_throughput
from stsched.scenarios import random_instance


@pytest.mark.parametrize("device", ["a100-mps", "a100-mig"])
def test_per_model_entries_change_nothing(device):
    inst = random_instance(24, 12, 3, device, arrivals="poisson")
    per_model: dict = {}
    for s in inst.services:
        assert efficiency(inst, s.name, per_model) == efficiency(inst, s.name)
        assert gpu_throughput(inst, s.name, per_model) == gpu_throughput(inst, s.name)
    assert set(per_model) == {s.model for s in inst.services}
