"""Session 20 (issue 18, decision time at 256 services): the LP pricing's coverage matrix vectorised and `grow`'s
scan of the services started at the set's last one give exactly what the scalar loops gave."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from solvers.exact.patterns import grow
from solvers.exact.pricing import _coverage_matrix
from stsched.checker import cycle_rate
from stsched.layouts import duty_room
from stsched.scenarios import random_instance

INSTANCES = {a: random_instance(6, 6, 3, "a100-mps", arrivals=a) for a in ("deterministic", "poisson")}


def _scalar(instance, cands, rates, clip_alpha):
    """The loop `priced_configs` ran before (the reference)."""
    width = max(len(c[1]) for c in cands)
    serv = [[0] * width for _ in cands]
    coef = [[0.0] * width for _ in cands]
    for i, (p, ss, bs, d) in enumerate(cands):
        for t, (s, bb) in enumerate(zip(ss, bs)):
            serv[i][t] = s
            coef[i][t] = min(cycle_rate(instance.margin.credit(bb), d), clip_alpha * rates[s]) / rates[s]
    return serv, coef


@st.composite
def candidates(draw):
    arrivals = draw(st.sampled_from(sorted(INSTANCES)))
    inst = INSTANCES[arrivals]
    n = len(inst.services)
    cands = []
    for _ in range(draw(st.integers(1, 12))):
        ss = tuple(sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=4))))
        bs = tuple(draw(st.sampled_from(inst.batches)) for _ in ss)
        d = draw(st.floats(0.01, 500.0))
        cands.append((draw(st.sampled_from(inst.mechanism.sizes)), ss, bs, d))
    rates = [draw(st.floats(0.1, 5000.0)) for _ in range(n)]
    clip = draw(st.sampled_from([1.0, 1.5, float("inf"), 1e-3]))
    return inst, cands, rates, clip


@settings(max_examples=60, deadline=None)
@given(candidates())
def test_coverage_matrix_is_the_scalar_rule(case):
    inst, cands, rates, clip = case
    serv, coef = _coverage_matrix(inst, cands, rates, clip)
    want_serv, want_coef = _scalar(inst, cands, rates, clip)
    assert serv.tolist() == want_serv
    assert coef.tolist() == want_coef  # bit for bit: the same operations in the same order


def _grow_scan(instance, layer, pts):
    """`grow` as it was: every active service scanned, those not above the set's last skipped (the reference)."""
    budgets = [instance.slo_budget_ms(n) for n in instance.service_names]
    active = sorted({s for _, s in pts})
    out = []
    for p, ss, bs, d, room in layer:
        for j in active:
            if j <= ss[-1]:
                continue
            for b, e in pts.get((p, j), ()):
                d2, room2 = d + e, min(room, duty_room(e, budgets[j]))
                if d2 > room2:
                    break
                out.append((p, ss + (j,), bs + (b,), d2, room2))
    return out


@pytest.mark.parametrize("arrivals", sorted(INSTANCES))
def test_grow_is_the_full_scan(arrivals):
    inst = INSTANCES[arrivals]
    n = len(inst.services)
    pts = {(p, j): [(b, 0.5 + 0.1 * b * (j + 1) / p * 10) for b in inst.batches[:3]]
           for p in inst.mechanism.sizes[:3] for j in range(0, n, 2 if arrivals == "poisson" else 1)}
    layer = [(p, (j,), (1,), e, duty_room(e, inst.slo_budget_ms(inst.service_names[j])))
             for (p, j), pl in pts.items() for _, e in pl[:1]]
    first = grow(inst, layer, pts, 10 ** 6)
    assert first == _grow_scan(inst, layer, pts) and first
    assert grow(inst, first, pts, 10 ** 6) == _grow_scan(inst, first, pts)
