"""Valid inequalities for the configuration LP (min-gpus): per-service rounding cuts on the coverage rows.

Every plan is made of whole partitions, so its configurations' counts x_c are whole numbers, and every service s
is covered: sum_c a_{c,s} x_c >= 1 (a_{c,s} <= 1, the master's clipped coverage).  For any t > 0 the Chvatal-Gomory
rounding of t times that row,

    sum_{c holding s} ceil(t a_{c,s}) x_c >= ceil(t),

holds for every whole x (the left side is at least t sum_c a_{c,s} x_c >= t and is whole).  With t = 1 / a it
reads: "one partition covering more than a of s's rate, or two partitions" (t in (1, 2]), and so on; the
per-service partition-count row sum_{c holding s} x_c >= k_s (k_s = ceil(1 / the largest coverage any single
configuration gives s)) is the case t = 1 / that largest coverage.  At 256 services the LP covers most services by
fractions of a few efficient configurations (1.3 copies of a partition covering 79 % of a service's rate): such a
fraction is the integrality gap these cuts see; a count row with k_s = 1 is implied by the coverage row (a <= 1).

In the master each cut is a row scaled to a right-hand side of 1 (coefficients ceil(t a) / ceil(t)), so that the
Lagrangian bound of solvers.exact.colgen stays sum(duals) / max_L W_L over the coverage and cut duals together.  Its
dual sigma enters the pricing as a value per tenant s that depends only on s's coverage in the configuration:
sigma ceil(t a) / ceil(t), a nondecreasing step function of a (so the pricing's bound, which credits every tenant of
a duty interval at the interval's shortest duty, stays a bound).  The coefficients are rounded up by 1e-9 (a
coefficient never below its exact value keeps the cut valid) and ceil(t) down by it.

`CutPool` holds the cuts of one column generation, computes the coefficients of a column, the per-point values for
the pricing (`bonus`) and separates new cuts from the master's solution (`separate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stsched.errors import InputError

ROUND = 1e-9  # coefficients rounded up, the right-hand side down, by this much (validity under floating point)
T_SHRINK = 1e-7  # t = (1 - T_SHRINK) m / a: the column that suggested the cut counts m, not m + 1


@dataclass(frozen=True)
class CutOptions:
    """Rounds of separation after the column generation converges (`rounds`, 0: none), at most `per_round` new cuts
    per round (0: one per service), each violated by at least `min_violation` (of its right-hand side), multipliers
    t = m / a for the coverages a of the LP's columns and m = 1..`multiples`.  `early`: separate the next round as
soon as the rounded bound meets the rounded master value (further convergence cannot raise the bound rounded up),
not only at convergence (the last round still converges)."""

    rounds: int = 0
    per_round: int = 0
    min_violation: float = 0.02
    multiples: int = 3
    early: bool = False

    def __post_init__(self) -> None:
        # (the one check of these options: solver cg's `--param cuts`, `cut_per_round`, `cut_violation` build a
        # CutOptions to run it, so each message names the `--param` key too)
        for name, key in (("rounds", "cuts"), ("per_round", "cut_per_round")):
            if getattr(self, name) < 0:
                raise InputError(f"cuts: {name} (--param {key}) must be >= 0, got {getattr(self, name)}")
        if self.multiples < 1:
            raise InputError(f"cuts: multiples must be >= 1, got {self.multiples}")
        if not 0 < self.min_violation < 1:
            raise InputError(f"cuts: min_violation (--param cut_violation): expected a share in (0, 1), got "
                             f"{self.min_violation}")


@dataclass(frozen=True)
class Cut:
    """sum over the configurations c holding `service` of ceil(t a_{c,s}) x_c >= `rhs` = ceil(t)."""

    service: int
    t: float
    rhs: float

    def coef(self, a: float) -> float:
        """The scaled coefficient of a configuration covering `a` of the service (0 when it does not hold it)."""
        return math.ceil(self.t * a + ROUND) / self.rhs if a > 0 else 0.0


def make_cut(service: int, t: float) -> Cut:
    return Cut(service, t, float(math.ceil(t - ROUND)))


class CutPool:
    """The cuts of one column generation over `n` services; the dual vector the pricing sees is the n coverage
    duals followed by one dual per cut (in the order of `cuts`)."""

    def __init__(self, n: int, opts: CutOptions):
        self.n = n
        self.opts = opts
        self.cuts: list[Cut] = []
        self._keys: set[tuple[int, float]] = set()
        self._index: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # cuts by service (for `bonus`)

    def __len__(self) -> int:
        return len(self.cuts)

    def add(self, cuts: list[Cut]) -> list[Cut]:
        """The cuts of `cuts` not in the pool yet, added."""
        new = []
        for c in cuts:
            key = (c.service, round(c.t, 9))
            if key not in self._keys:
                self._keys.add(key)
                self.cuts.append(c)
                new.append(c)
        self._index = None
        return new

    def coefs(self, cov: dict[int, float], first: int = 0) -> dict[int, float]:
        """A column's coefficient in every cut from position `first` on (cut position -> coefficient), from its
        coverage per service."""
        return {j: cut.coef(cov[cut.service]) for j, cut in enumerate(self.cuts[first:], start=first)
                if cov.get(cut.service, 0.0) > 0}

    def value(self, cov: dict[int, float], duals: np.ndarray) -> float:
        """What the cuts add to a column's reduced value at `duals` (coverage duals, then the cuts')."""
        sigma = duals[self.n:]
        return float(sum(sigma[j] * h for j, h in self.coefs(cov).items()))

    def _by_service(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._index is None:
            svc = np.array([c.service for c in self.cuts], dtype=np.int64)
            order = np.argsort(svc, kind="stable")
            start = np.searchsorted(svc[order], np.arange(self.n + 1))
            self._index = (order, start, np.array([(c.t, c.rhs) for c in self.cuts], dtype=float).reshape(-1, 2))
        return self._index

    def bonus(self, svc: np.ndarray, a: np.ndarray, duals: np.ndarray) -> np.ndarray:
        """What the cuts add to the value of tenants of services `svc` covering `a` of their rates (per point)."""
        out = np.zeros(len(svc))
        if not self.cuts or not len(svc):
            return out
        order, start, tr = self._by_service()
        lo, hi = start[svc], start[svc + 1]
        cnt = hi - lo
        if not cnt.any():
            return out
        point = np.repeat(np.arange(len(svc)), cnt)
        cut = order[np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))]
        t, rhs = tr[cut, 0], tr[cut, 1]
        h = np.where(a[point] > 0, np.ceil(t * a[point] + ROUND) / rhs, 0.0)
        return np.bincount(point, weights=duals[self.n:][cut] * h, minlength=len(svc))

    def live(self, svc: np.ndarray, duals: np.ndarray) -> np.ndarray:
        """Per point: whether some cut of its service has a positive dual (the tenant is worth something)."""
        pos = np.zeros(self.n + 1, dtype=bool)
        sigma = duals[self.n:]
        for j in np.flatnonzero(sigma > 0):
            pos[self.cuts[j].service] = True
        return pos[svc]

    def separate(self, covs: list[dict[int, float]], x: np.ndarray) -> list[Cut]:
        """Cuts violated by the master's solution `x` (one per column, coverages `covs`), the most violated (relative
        to their right-hand sides) per service, at most `per_round` of them, most violated first; added to the pool."""
        support: dict[int, list[tuple[float, float]]] = {}
        for cov, v in zip(covs, x):
            if v > 1e-9:
                for s, a in cov.items():
                    if a > 0:
                        support.setdefault(s, []).append((a, float(v)))
        found: list[tuple[float, Cut]] = []
        for s, pts in support.items():
            a = np.array([p[0] for p in pts])
            xv = np.array([p[1] for p in pts])
            best: tuple[float, float] | None = None
            for t in {(1 - T_SHRINK) * m / ai for ai in a for m in range(1, self.opts.multiples + 1)}:
                rhs = math.ceil(t - ROUND)
                if rhs < 2 or (s, round(t, 9)) in self._keys:  # rhs 1: implied by the coverage row (a <= 1)
                    continue
                viol = (rhs - float(np.ceil(t * a + ROUND) @ xv)) / rhs
                if viol > self.opts.min_violation and (best is None or viol > best[0]):
                    best = (viol, t)
            if best is not None:
                found.append((best[0], make_cut(s, best[1])))
        found.sort(key=lambda x: -x[0])
        cap = self.opts.per_round or self.n
        return self.add([c for _, c in found[:cap]])


__all__ = ["Cut", "CutOptions", "CutPool", "make_cut"]
