"""Poisson arrivals against a batch per cycle: how many requests a tenant may be credited with per cycle.

The plain throughput rule credits a tenant with batch b and duty cycle d with `1000 b / d` req/s, which under
Poisson arrivals is a queue at utilisation 1 (docs/SIMULATOR.md).  The Poisson margin (docs/RULES.md) credits it
with `1000 C / d` req/s instead, C the largest mean number of arrivals per cycle whose late share stays within
`late_share` in the following model of one tenant (`late_share_bound`), which bounds what the simulator does:

* Cycles.  The tenant takes up to b queued requests at each of its turns, and turns are at most d apart (round
  robin over the partition's tenants, each batch at most its full-batch time; the simulator's cycles are shorter
  when tenants idle or batches are partial).  A request that is among the first k x b queued at the first turn
  after its arrival starts within k x d, so it meets a latency budget S when k <= c = (S - e) / d (`slack_cycles`;
  the latency rule d + e <= S guarantees c >= 1).  With k = floor(c) and s = c - k, the requests at positions
  k b + 1 .. (k + 1) b wait their residual of the cycle they arrived in plus k cycles and are late when that
  residual exceeds s d: counted late with weight 1 - s (they are the latest arrivals of their cycle, whose
  residuals are shorter than a uniform one), the ones beyond (k + 1) b with weight 1.
* Arrivals per cycle, A, i.i.d. (conservative: the counts of a split stream in consecutive cycles are negatively
  correlated).  A tenant that receives the share f of its service's Poisson stream (the simulator's interleaved
  routing hands every (1/f)-th request to it) sees A = floor(N / m + U), N ~ Poisson(lambda m), m = 1/f, U uniform
  (the phase of the split): about lambda f of variance instead of lambda.  f = 1: A ~ Poisson(lambda).
* Backlog.  R, the requests left after a turn, follows R' = (R + A - b)+; its stationary tail is bounded by
  Lundberg's inequality P(R >= t) <= exp(-theta t), theta > 0 the root of E exp(theta (A - b)) = 1.  The requests
  of a cycle that end up beyond position j b number E[min(A, (R + A - j b)+)] =: L_j, so (1 - s) L_k + s L_(k+1)
  are late.

* Mixing.  A bound on the long-run late share says little about one window of a few minutes when the queue's
  excursions last long: near saturation the backlog forgets its past only after about Var(A) / (b - lambda)^2
  cycles (the diffusion approximation), and one long excursion in a window makes a service's requests late by the
  hundred.  So the credit is also capped where that relaxation time, in seconds, stays within RELAX_S
  (`relaxation_credit`): a window of minutes then averages over hundreds of excursions.

C grows with the batch (more requests per cycle, relatively less spread: the law of large numbers), with the
slack cycles and as the share shrinks.  The rule (`credit`) is the larger of this per-tenant credit and the
per-batch credit `batch_credit(b, x)` (one cycle of Poisson arrivals, the overflow beyond b late: no backlog),
the rule the project planned by before: at one slack cycle and the whole stream the per-tenant model is the
stricter of the two (its backlog term), and crediting less there over-provisioned light loads (docs/RESULTS.md,
"Safe default arrivals") although plans of the per-batch rule hold up in simulation with the attainment loop.
So the per-tenant model only ever adds credit where it shows slack (several cycles of waiting, a small share of a
split service), and `batch_credit` is what a planner may count on knowing nothing but the batch.  Shares are rounded up to the grid
2^(-j/2) (j <= SHARE_STEPS) and slack cycles rounded down (`round_cycles`), so that credits are a small cached
table.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from stsched.errors import InputError

MAX_CYCLES = 16  # slack cycles counted at most (more change C by less than the bisection's tolerance)
SHARE_STEPS = 16  # shares are rounded up to 2^(-j/2), j = 0..SHARE_STEPS (the least: 1/256)
RELAX_S = 1.0  # the longest relaxation time (s) of a tenant's queue (`relaxation_credit`); tuned on dev instances
_THETA_MAX = 60.0  # Lundberg exponent cap: a larger root only makes the bound smaller (the cap is conservative)


def overflow(lam: float, b: int) -> float:
    """E[(N - b)+] for N ~ Poisson(lam): lam - b + sum_{n < b} (b - n) P(N = n)."""
    if lam <= 0:
        return 0.0
    p = math.exp(-lam)
    below = 0.0
    for n in range(b):
        below += (b - n) * p
        p *= lam / (n + 1)
    return max(0.0, lam - b + below)


def round_share(share: float) -> float:
    """`share` rounded up to the grid 2^(-j/2) (at least 2^(-SHARE_STEPS/2)); 1 for shares >= 1."""
    if not share < 1.0:
        return 1.0
    if not share > 0.0:
        return 2.0 ** (-SHARE_STEPS / 2)
    j = min(SHARE_STEPS, math.floor(-2.0 * math.log2(share) + 1e-12))
    return 2.0 ** (-j / 2)


def slack_cycles(budget_ms: float, exec_ms: float, duty_ms: float) -> float:
    """Duty cycles a request may wait and still meet `budget_ms`: (budget - exec) / duty rounded down
    (`round_cycles`; 1 when the latency rule holds with no room to spare, or is broken: the checker says so)."""
    if not duty_ms > 0:
        return float(MAX_CYCLES)
    return round_cycles((budget_ms - exec_ms) / duty_ms * (1 + 1e-9))


def _poisson_pmf(mu: float) -> tuple[np.ndarray, np.ndarray]:
    """Support and pmf of Poisson(mu), truncated where the mass left is below 1e-15."""
    sd = math.sqrt(mu)
    lo = max(0, int(mu - 12 * sd - 5))
    hi = int(mu + 12 * sd + 20)
    n = np.arange(lo, hi + 1, dtype=float)
    logfact = np.cumsum(np.log(np.maximum(np.arange(0, hi + 1, dtype=float), 1.0)))[lo:]
    logp = n * math.log(mu) - mu - logfact
    return n, np.exp(logp)


def cycle_arrivals(lam: float, share: float = 1.0) -> np.ndarray:
    """pmf of the arrivals in one cycle (index = count) for mean `lam` and stream share `share` (module doc)."""
    if lam <= 0:
        return np.array([1.0])
    if share >= 1.0:
        n, p = _poisson_pmf(lam)
        out = np.zeros(int(n[-1]) + 1)
        out[n.astype(int)] = p
        return out / out.sum()
    m = 1.0 / share
    n, p = _poisson_pmf(lam * m)
    q = n / m
    base = np.floor(q)
    frac = q - base
    idx = base.astype(int)
    out = np.bincount(idx, p * (1.0 - frac), int(base[-1]) + 2) + np.bincount(idx + 1, p * frac, int(base[-1]) + 2)
    return out / out.sum()


def lundberg_exponent(pmf: np.ndarray, b: int) -> float:
    """theta > 0 with E exp(theta (A - b)) = 1 for A ~ `pmf` (capped at _THETA_MAX; 0 when E A >= b).  Newton's
    method from above the root (psi is convex: the iterates decrease to it), then a hair below it."""
    a = np.arange(len(pmf), dtype=float) - b
    keep = pmf > 0
    a, logp = a[keep], np.log(pmf[keep])
    pmf_kept = np.exp(logp)
    mean = float(np.dot(pmf_kept, a))
    if mean >= 0:
        return 0.0

    def psi(theta: float) -> tuple[float, float]:
        z = logp + theta * a
        top = float(z.max())
        w = np.exp(z - top)
        total = float(w.sum())
        return top + math.log(total), float(np.dot(w, a)) / total

    var = max(float(np.dot(pmf_kept, (a - mean) ** 2)), 1e-12)
    theta = min(_THETA_MAX, max(1e-6, -2.0 * mean / var))  # the diffusion approximation, then above the root
    while psi(theta)[0] < 0:
        theta *= 1.5
        if theta >= _THETA_MAX:
            return _THETA_MAX
    for _ in range(100):
        value, slope = psi(theta)
        step = value / slope
        theta -= step
        if step <= 1e-12 * theta:
            break
    return theta * (1 - 1e-9)  # Newton approaches from above: step just below the root


def _beyond(pmf: np.ndarray, q: float, kb: int) -> float:
    """E[min(A, (R + A - kb)+)] with P(R >= t) = q^t for t >= 1: sum_a P(a) sum_{t=kb-a+1}^{kb} P(R >= t)."""
    a = np.arange(len(pmf), dtype=float)
    tail = q * (1.0 - q ** kb) / (1.0 - q)  # sum_{t=1}^{kb} q^t
    inside = q ** np.maximum(kb - a + 1, 0) * (1.0 - q ** a) / (1.0 - q)  # sum_{t=kb-a+1}^{kb} q^t, a <= kb
    return float(np.dot(pmf, np.where(a <= kb, inside, (a - kb) + tail)))


def late_share_bound(lam: float, b: int, cycles: float = 1.0, share: float = 1.0) -> float:
    """The model's bound on the share of a tenant's requests that miss a budget of `cycles` duty cycles of waiting
    (>= 1; module doc)."""
    if lam <= 0:
        return 0.0
    pmf = cycle_arrivals(lam, share)
    theta = lundberg_exponent(pmf, b)
    if theta <= 0:
        return 1.0
    q = math.exp(-theta)
    k = math.floor(cycles)
    s = cycles - k
    late = _beyond(pmf, q, k * b)
    if s > 0:
        late = (1.0 - s) * late + s * _beyond(pmf, q, (k + 1) * b)
    return min(1.0, late / lam)


def _plain_rule(b: int, late_share: float) -> bool:
    """Whether a credit's arguments ask for the formulation's plain rule (late share 0: lam = b); bad arguments are
    refused with one line."""
    if b < 1:
        raise InputError(f"batch must be >= 1, got {b}")
    if not 0.0 <= late_share < 1.0:
        raise InputError(f"late share must lie in [0, 1), got {late_share!r}")
    return late_share == 0.0


def tenant_credit(b: int, late_share: float, cycles: float = 1.0, share: float = 1.0) -> float:
    """The largest mean per-cycle arrival count lam <= b with `late_share_bound(lam, b, cycles, share)` <=
    `late_share` (to 1e-7 relative; `share` rounded up to its grid, `cycles` down by `round_cycles`); `late_share`
    0 means the plain rule, lam = b."""
    if _plain_rule(b, late_share):
        return float(b)
    return _credit(int(b), float(late_share), round_cycles(cycles), round_share(share))


def round_cycles(cycles: float) -> float:
    """Slack cycles rounded down to a quarter below 4, to a whole number above, within [1, MAX_CYCLES]."""
    c = math.floor(4.0 * cycles) / 4.0 if cycles < 4 else float(math.floor(cycles))
    return max(1.0, min(float(MAX_CYCLES), c))


@lru_cache(maxsize=1 << 15)
def _credit(b: int, late_share: float, cycles: float, share: float) -> float:
    """Illinois (modified false position) on log late_share_bound(lam) - log late_share over [0, b] (the bound
    grows about exponentially in lam), to 1e-7 relative; the end whose bound is within late_share."""
    target = math.log(late_share)

    def h(lam: float) -> float:
        bound = late_share_bound(lam, b, cycles, share)
        return math.log(bound) - target if bound > 0 else -math.inf

    lo, hi = 0.0, float(b)
    h_hi = h(hi)
    if h_hi <= 0:
        return hi
    lo = 0.5 * b
    h_lo = h(lo)
    while h_lo > 0:  # halve down to a point within the share
        hi, h_hi, lo = lo, h_lo, 0.5 * lo
        h_lo = h(lo)
    side = 0
    for _ in range(200):
        if math.isinf(h_lo):
            mid = 0.5 * (lo + hi)
        else:
            mid = hi - h_hi * (hi - lo) / (h_hi - h_lo)
            if not lo < mid < hi:
                mid = 0.5 * (lo + hi)
        g = h(mid)
        if g <= 0:
            lo, h_lo = mid, g
            if side == -1:
                h_hi *= 0.5
            side = -1
        else:
            hi, h_hi = mid, g
            if side == 1 and not math.isinf(h_lo):
                h_lo *= 0.5
            side = 1
        if hi - lo <= 1e-7 * hi or -1e-9 < g <= 0:
            break
    return lo


def relaxation_credit(b: int, share: float, duty_ms: float, relax_s: float = RELAX_S) -> float:
    """The largest mean per-cycle count lam whose queue relaxes within `relax_s` seconds: (b - lam)^2 >=
    Var(A) x (duty_ms / 1000) / relax_s, Var(A) = lam f + (1 - f) / 4 (the split stream's, f the share rounded up;
    Poisson: lam), solved for lam (0 when even an empty queue is too slow)."""
    f = round_share(share)
    k = max(duty_ms, 0.0) / 1000.0 / relax_s
    c = (1.0 - f) / 4.0
    p = 2.0 * b + k * f
    disc = p * p - 4.0 * (b * b - k * c)
    lam = 0.5 * (p - math.sqrt(max(disc, 0.0)))
    return max(0.0, min(float(b), lam))


@lru_cache(maxsize=1 << 16)  # pure; a scan of 100,000 services asks it 3 M times for ~15,000 distinct arguments
def credit(b: int, late_share: float, cycles: float, share: float, duty_ms: float) -> float:
    """THE credit of the Poisson margin (docs/RULES.md): the larger of the per-batch credit (`batch_credit`, the
    rule before the per-tenant model) and the per-tenant model's credit (`tenant_credit` given the tenant's slack
    cycles and share, capped by `relaxation_credit`).  Never below the per-batch credit, so every plan valid under
    that rule stays valid and a planner that counts on it alone plans validly."""
    if late_share == 0.0:
        return float(b)
    capped = min(tenant_credit(b, late_share, cycles, share), relaxation_credit(b, share, duty_ms))
    return max(batch_credit(b, late_share), capped)


#: the share grid, largest first (`round_share` maps every share onto it)
SHARES = tuple(2.0 ** (-j / 2) for j in range(SHARE_STEPS + 1))


def max_rate(b: int, late_share: float, cycles: float, duty_ms: float, service_rate: float) -> float:
    """The largest rate r (req/s) with r <= 1000 credit(b, late_share, cycles, r / service_rate, duty_ms) /
    duty_ms: what a tenant of a service of `service_rate` req/s may serve (the share grows with r and the credit
    shrinks with the share; over the grid, r = min(1000 credit(g) / d, g x service_rate) always qualifies)."""
    if service_rate <= 0:
        return 1000.0 * credit(b, late_share, cycles, 1.0, duty_ms) / duty_ms
    best = 0.0
    for g in SHARES:  # g x service_rate falls with g: once below the best, no smaller share can beat it
        if g * service_rate <= best:
            break
        best = max(best, min(1000.0 * credit(b, late_share, cycles, g, duty_ms) / duty_ms, g * service_rate))
    return best


@lru_cache(maxsize=4096)
def batch_credit(b: int, late_share: float) -> float:
    """The per-batch credit (the rule before the per-tenant model, and its floor): the largest mean per-cycle
    arrival count lam <= b with overflow(lam, b) <= late_share x lam, N ~ Poisson(lam) arrivals in one cycle
    (bisection to 1e-9 relative); `late_share` 0 means the formulation's rule, lam = b.  Every tenant is credited
    with at least this (`credit`), so what a planner that knows only the batch may count on."""
    if _plain_rule(b, late_share):
        return float(b)
    lo, hi = 0.0, float(b)
    if overflow(hi, b) <= late_share * hi:
        return hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if overflow(mid, b) <= late_share * mid:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-9 * hi:
            break
    return lo


def best_credit(b: int, late_share: float) -> float:
    """The largest credit of batch b over every tenant (the most slack cycles, the least share): what a bound
    that holds for every plan may count on."""
    return max(batch_credit(b, late_share), tenant_credit(b, late_share, MAX_CYCLES, 2.0 ** (-SHARE_STEPS / 2)))
