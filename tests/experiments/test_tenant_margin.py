"""experiments.tenant_margin: one row per tenant of the default Poisson plan, each within its credit and its
model's late-share bound (the simulated late share is the study's output, not asserted here)."""

from __future__ import annotations

from experiments.tenant_margin import tenant_rows
from stsched.problem import POISSON_LATE_SHARE


def test_every_tenant_within_its_credit_and_bound():
    rows = tenant_rows(4, 4, 5.0)
    assert rows and {"batch", "load_of_batch", "credit_of_batch", "cycles", "share", "credited_by", "bound",
                            "late"} <= set(rows[0])
    for r in rows:
        assert float(r["load_of_batch"]) <= float(r["credit_of_batch"]) * (1 + 1e-3) + 1e-3
        assert 1.0 <= float(r["cycles"]) <= 16.0 and 0.0 < float(r["share"]) <= 1.0
        assert r["credited_by"] in ("batch", "tenant")
        if r["bound"] != "" and r["credited_by"] == "tenant":  # the per-tenant model's own bound holds
            assert float(r["bound"]) <= POISSON_LATE_SHARE + 1e-3
        if r["late"] != "":
            assert 0.0 <= float(r["late"]) <= 1.0
